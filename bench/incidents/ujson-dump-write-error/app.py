"""ujson (CVE-2026-44660, PR #727): dump() leaks the encoded string when write() fails."""
import contextlib
import resource

import ujson


class FullDisk:
    """A file whose write always fails, like a full disk or a closed pipe."""
    def write(self, data):
        raise OSError(28, "No space left on device")


def save(record, out):
    with contextlib.suppress(OSError):
        ujson.dump(record, out)


def main():
    record = {"payload": "x" * 200_000, "ids": list(range(1000))}
    out = FullDisk()
    for i in range(600):
        save(record, out)
        if i % 150 == 0:
            print(i, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "MiB", flush=True)
    print("end", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, "MiB")


main()
