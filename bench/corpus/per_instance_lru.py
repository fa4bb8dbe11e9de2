# culprit: lookup
# lru_cache on a method keys on self: every short-lived client stays alive with its rows.
import functools

class Client:
    def __init__(self, n):
        self.n = n

    @functools.lru_cache(maxsize=None)
    def lookup(self, key):
        return [key] * 2000

def request(i):
    c = Client(i)
    return len(c.lookup(i % 7))

for i in range(3000):
    request(i)
