"""memray's passes that labkit runs in a second process while the first reads the same
capture: the statistics (``stats``) and the short-lived allocations (``churn``).

:class:`labkit.frames.memray.MemrayCapture` runs this file by its path,
``python memray_worker.py stats|churn FILE``, so the worker imports memray and nothing of
labkit. ``stats`` prints JSON (``total_num_allocations``, ``total_bytes_allocated``);
``churn`` writes a pickle of ``[(stack, size, n_allocations, tid), ...]``. A capture memray
cannot read makes it exit non-zero with nothing on stdout, and the caller reads it itself.
"""

from __future__ import annotations

import json
import pickle
import sys
from typing import Any

Stack = list[tuple[str, str, int]]


def stats(path: str) -> dict[str, int]:
    """What ``memray stats`` counts: allocations (deallocations excluded) and their bytes."""
    import memray
    from memray._memray import compute_statistics

    memray.set_log_level(50)
    s = compute_statistics(path)
    return {"total_num_allocations": s.total_num_allocations,
            "total_bytes_allocated": s.total_memory_allocated}


def churn(path: str) -> list[tuple[Stack, int, int, int]]:
    """memray's temporary-allocations view, threads merged: one row per call stack."""
    import memray

    memray.set_log_level(50)
    records = memray.FileReader(path).get_temporary_allocation_records(
        merge_threads=True, threshold=1)
    return [(r.stack_trace(), r.size, r.n_allocations, r.tid) for r in records]


PASSES: dict[str, Any] = {"stats": stats, "churn": churn}


def main(argv: list[str]) -> int:
    """``stats FILE`` or ``churn FILE``: the pass's result on stdout; 2 on a bad call."""
    if len(argv) != 2 or argv[0] not in PASSES:
        print("usage: memray_worker.py stats|churn FILE", file=sys.stderr)
        return 2
    result = PASSES[argv[0]](argv[1])
    if argv[0] == "stats":
        sys.stdout.write(json.dumps(result))
    else:
        sys.stdout.buffer.write(pickle.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
