"""Every pass labkit makes over a memray capture's allocation records, run in a second
process: a damaged capture can crash memray's C++ reader (a segfault, an abort), which no
``try`` catches, so labkit's own process only opens the file and reads its memory
snapshots. The passes: the statistics (``stats``), the short-lived allocations
(``churn``), the temporal high-water mark (``held``; for an aggregated capture, memray's
high-water-mark and leaks views instead) and everything allocated per stack
(``allocated``).

:class:`labkit.frames.memray.MemrayCapture` runs this file by its path,
``python -P memray_worker.py TASK FILE``, so the worker imports memray and nothing of
labkit. ``stats`` prints JSON (``total_num_allocations``, ``total_bytes_allocated``); the
others write a pickle (see each function). A capture memray cannot read makes it print
``{"error": DETAIL}`` as JSON and exit 3 (with ``"cut_short": true`` for an aggregated
capture memray reports as ending early); a capture that crashes the reader kills it by the
signal, which the caller reports.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

Stack = list[tuple[str, str, int]]
ERROR_EXIT = 3
NEVER_FREED = -1  # ``deallocated_before_snapshot`` of an interval never freed


def _reader(path: str, log_level: int = 50) -> Any:
    import memray

    memray.set_log_level(log_level)
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


class CutShort(ValueError):
    """memray logged an error reading an aggregated capture: it ends early."""


@contextlib.contextmanager
def _memray_errors() -> Iterator[list[str]]:
    """The ``Memray ERROR`` lines memray's reader writes to fd 2 while inside, collected
    into the yielded list on exit (fd 2 goes to a temporary file meanwhile)."""
    import memray

    found: list[str] = []
    with tempfile.TemporaryFile() as tmp:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            yield found
        finally:
            memray.set_log_level(50)
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            found += [ln.removeprefix("Memray ERROR: ") for ln in
                      tmp.read().decode(errors="replace").splitlines()
                      if ln.startswith("Memray ERROR")]


def _aggregated(reader: Any, native: bool) -> dict[str, Any]:
    """memray's two views of an aggregated capture, threads merged: ``peak`` and
    ``leaks``, each a list of ``(stack, tid, bytes, count, hybrid)``."""
    def rows(records: Any) -> list[tuple[Any, ...]]:
        return [(r.stack_trace(), r.tid, r.size, r.n_allocations,
                 r.hybrid_stack_trace() if native else None) for r in records]

    return {"format": "aggregated",
            "peak": rows(reader.get_high_watermark_allocation_records(merge_threads=True)),
            "leaks": rows(reader.get_leaked_allocation_records(merge_threads=True))}


def held(path: str) -> dict[str, Any]:
    """memray's temporal high-water-mark pass, threads merged: ``marks`` (the heap at each
    snapshot) and ``records``, per call stack ``(stack, tid, intervals, hybrid)`` with
    intervals ``(allocated_before, deallocated_before or NEVER_FREED, n_bytes,
    n_allocations)`` and ``hybrid`` its hybrid stack (``None`` without native traces).
    An aggregated capture gives :func:`_aggregated`'s views instead; one that memray
    reports as ending early raises :class:`CutShort`."""
    from memray import FileFormat

    with _memray_errors() as errors:
        reader = _reader(path, log_level=40)
        native = bool(reader.metadata.has_native_traces)
        aggregated = reader.metadata.file_format == FileFormat.AGGREGATED_ALLOCATIONS
        views = _aggregated(reader, native) if aggregated else None
    if aggregated and errors:
        raise CutShort(errors[0].rstrip("."))
    if views is not None:
        return views
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
        sys.stdout.write(json.dumps({"error": detail, "cut_short": isinstance(exc, CutShort)}))
        return ERROR_EXIT
    if argv[0] == "stats":
        sys.stdout.write(json.dumps(result))
    else:
        sys.stdout.buffer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
