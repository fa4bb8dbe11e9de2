# culprit: subscribe
# Each request subscribes a handler to a class-level listener list and never unsubscribes.
# The line that allocates (load_document) is innocent: it must read the document. The guilty
# line is the append in subscribe: the handler's closure keeps the whole document alive.
class EventBus:
    listeners = []


def load_document(i):
    return bytes(32 * 1024) + str(i).encode()


def subscribe(doc):
    def on_saved(event):
        return len(doc) + len(event)
    EventBus.listeners.append(on_saved)


def handle(i):
    doc = load_document(i)
    subscribe(doc)
    return len(doc)


for i in range(400):
    handle(i)
