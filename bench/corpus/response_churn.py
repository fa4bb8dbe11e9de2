# culprit: render
# A response body rebuilt by concatenation: every += copies the whole body so far. Nothing
# leaks; the heap stays small while gigabytes are allocated and freed at once.
import time


def render(rows):
    body = b""
    for row in rows:
        body += row
    return body


rows = [b"x" * 512 for _ in range(1500)]
t = time.monotonic()
while time.monotonic() - t < 1.5:
    render(rows)
