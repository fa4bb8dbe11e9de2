# culprit: make_retry
# A retry callback closes over the whole response body it only needs the length of.
pending = []

def make_retry(body):
    def retry():
        return len(body)
    return retry

def fetch(i):
    body = b"x" * 20_000
    pending.append(make_retry(body))

for i in range(2500):
    fetch(i)
