# culprit: build_graph
# Every request builds a graph of cyclic nodes: the collector runs constantly.
class Node:
    def __init__(self, parent):
        self.parent = parent
        self.children = []
        if parent is not None:
            parent.children.append(self)

def build_graph(n):
    root = Node(None)
    for _ in range(n):
        Node(root)
    return root

keep = []
for i in range(300):
    g = build_graph(2000)
    if i % 10 == 0:
        keep.append(g)
