# culprit: fetch_all
# A thread pool made per call, kept on the request's client and never shut down: its
# workers wait forever for work.
import time
from concurrent.futures import ThreadPoolExecutor

clients = []

def fetch_all(urls):
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fetch")
    clients.append(pool)
    return [pool.submit(len, u) for u in urls]

for i in range(40):
    fetch_all(["a", "bb", "ccc"])
time.sleep(0.5)
