# culprit: subscribe
# Each request subscribes a listener that holds its payload; nobody unsubscribes.
LISTENERS = []

def subscribe(payload):
    def on_event(event, payload=payload):
        return len(payload) + len(event)
    LISTENERS.append(on_event)

def handle(i):
    subscribe(bytearray(8192))

for i in range(6000):
    handle(i)
