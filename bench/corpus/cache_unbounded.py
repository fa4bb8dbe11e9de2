# culprit: remember
# A memo cache keyed by request id: every key is new, nothing is evicted.
_cache = {}

def remember(key):
    _cache[key] = bytes(4096) + key.encode()
    return _cache[key]

def serve(n):
    for i in range(n):
        remember(f"request-{i}")

serve(12_000)
