# culprit: register
# Every instance registers itself in a class-level registry and is never removed.
class Session:
    registry = []

    def __init__(self, user):
        self.user = user
        self.buffer = bytearray(16_384)

def register(user):
    s = Session(user)
    Session.registry.append(s)
    return s

for i in range(3000):
    register(i)
