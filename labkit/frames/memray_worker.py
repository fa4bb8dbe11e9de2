"""Every pass labkit makes over a memray capture's allocation records, run in a second
process: a damaged capture can crash memray's C++ reader (a segfault, an abort), which no
``try`` catches, so labkit's own process only opens the file and reads its memory
snapshots. The passes: the statistics (``stats``), the short-lived allocations
(``churn``), the temporal high-water mark (``held``) and everything allocated per stack
(``allocated``).

:class:`labkit.frames.memray.MemrayCapture` runs this file by its path,
``python -P memray_worker.py TASK FILE``, so the worker imports memray and nothing of
labkit. ``stats`` prints JSON (``total_num_allocations``, ``total_bytes_allocated``); the
others write a pickle (see each function). A capture memray cannot read makes it print
``{"error": DETAIL}`` as JSON and exit 3; a capture that crashes the reader kills it by
the signal, which the caller reports.
"""

from __future__ import annotations

import json
import pickle
import sys
from typing import Any

Stack = list[tuple[str, str, int]]
ERROR_EXIT = 3
NEVER_FREED = -1  # ``deallocated_before_snapshot`` of an interval never freed


def _reader(path: str) -> Any:
    import memray

    memray.set_log_level(50)
    return memray.FileReader(path)


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
    records = _reader(path).get_temporary_allocation_records(merge_threads=True, threshold=1)
    return [(r.stack_trace(), r.size, r.n_allocations, r.tid) for r in records]


def held(path: str) -> dict[str, Any]:
    """memray's temporal high-water-mark pass, threads merged: ``marks`` (the heap at each
    snapshot) and ``records``, per call stack ``(stack, tid, intervals, hybrid)`` with
    intervals ``(allocated_before, deallocated_before or NEVER_FREED, n_bytes,
    n_allocations)`` and ``hybrid`` its hybrid stack (``None`` without native traces)."""
    reader = _reader(path)
    native = bool(reader.metadata.has_native_traces)
    records, marks = reader.get_temporal_high_water_mark_allocation_records(merge_threads=True)
    out = []
    for r in records:
        ivs = [(iv.allocated_before_snapshot,
                NEVER_FREED if iv.deallocated_before_snapshot is None
                else iv.deallocated_before_snapshot, iv.n_bytes, iv.n_allocations)
               for iv in r.intervals]
        out.append((r.stack_trace(), r.tid, ivs, r.hybrid_stack_trace() if native else None))
    return {"marks": list(marks), "records": out}


def allocated(path: str) -> list[tuple[Stack, int, int, int]]:
    """Per call stack, everything allocated (frees excluded), in order of first use:
    ``(stack, bytes, count, tid of its first allocation)``; what ``memray stats`` totals."""
    import memray

    frees = {int(a) for a in (memray.AllocatorType.FREE, memray.AllocatorType.PYMALLOC_FREE,
                              memray.AllocatorType.MUNMAP)}
    totals: dict[int, list[Any]] = {}
    for rec in _reader(path).get_allocation_records():
        if rec.size and int(rec.allocator) not in frees:
            t = totals.get(rec.stack_id)
            if t is None:
                totals[rec.stack_id] = [rec, rec.size, rec.n_allocations]
            else:
                t[1] += rec.size
                t[2] += rec.n_allocations
    return [(rec.stack_trace(), size, n, rec.tid) for rec, size, n in totals.values()]


PASSES: dict[str, Any] = {"stats": stats, "churn": churn, "held": held, "allocated": allocated}
_READ_ERRORS = (OSError, ValueError, RuntimeError, UnicodeDecodeError, KeyError, IndexError,
                NotImplementedError)


def main(argv: list[str]) -> int:
    """``TASK FILE``: the pass's result on stdout, 0; a read error as JSON, 3; 2 on a bad
    call."""
    if len(argv) != 2 or argv[0] not in PASSES:
        print(f"usage: memray_worker.py {'|'.join(PASSES)} FILE", file=sys.stderr)
        return 2
    try:
        result = PASSES[argv[0]](argv[1])
    except _READ_ERRORS as exc:
        detail = str(exc).split(":")[0].strip().rstrip(".") or type(exc).__name__
        sys.stdout.write(json.dumps({"error": detail}))
        return ERROR_EXIT
    if argv[0] == "stats":
        sys.stdout.write(json.dumps(result))
    else:
        sys.stdout.buffer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
