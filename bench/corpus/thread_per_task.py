# culprit: dispatch
# Each task gets a thread that waits on a queue nobody feeds: a goroutine leak, in Python.
import queue
import threading
import time

def dispatch(task):
    q = queue.Queue()
    threading.Thread(target=q.get, name=f"task-{task}", daemon=True).start()

for t in range(120):
    dispatch(t)
time.sleep(0.5)
