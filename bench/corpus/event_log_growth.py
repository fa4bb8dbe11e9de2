# culprit: record_event
# An in-memory event log for debugging is appended to on every request, never trimmed.
EVENTS = []

def record_event(i):
    EVENTS.append({"id": i, "payload": "e" * 300, "tags": ["a", "b", str(i)]})

for i in range(60_000):
    record_event(i)
