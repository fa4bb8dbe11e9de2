# culprit: handle_request
# Each request attaches a buffering handler to a shared logger and never removes it:
# every later record is copied into every handler's buffer.
import logging
import logging.handlers

log = logging.getLogger("svc")
log.setLevel(logging.INFO)
log.propagate = False

def handle_request(i):
    log.addHandler(logging.handlers.BufferingHandler(capacity=10**9))
    log.info("request %d served with payload %s", i, "p" * 200)

for i in range(700):
    handle_request(i)
