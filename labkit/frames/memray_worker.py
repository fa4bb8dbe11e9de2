"""Every pass labkit makes over a memray capture's allocation records, run in a second
process: a damaged capture can crash memray's C++ reader (a segfault, an abort), which no
``try`` catches, so labkit's own process at most opens the file and reads its memory
snapshots (``held`` and ``peak`` also return what opening gave them, :func:`_opened`, for
a process that does not open it). The passes: the statistics, with everything allocated
per stack (``stats``), the short-lived allocations (``churn``), the temporal high-water
mark (``held``; for an aggregated capture, memray's high-water-mark and leaks views
instead) and the plain one (``peak``).

:class:`labkit.frames.memray.MemrayCapture` runs this file by its path,
``python -P memray_worker.py TASK FILE``, so the worker imports memray and nothing of
labkit. Each pass writes its result as a pickle (see each function); ``held_churn`` writes
two, the churn pass's first. A capture memray
cannot read makes it print ``{"error": DETAIL}`` as JSON and exit 3 (with
``"cut_short": true`` for an aggregated capture memray reports as ending early); a capture
that crashes the reader kills it by the signal, which the caller reports.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import sys
from array import array
from collections.abc import Iterator
from typing import Any

Stack = list[tuple[str, str, int]]
ERROR_EXIT = 3
NEVER_FREED = -1  # ``deallocated_before_snapshot`` of an interval never freed
MAX_STEPS = 128  # growth is followed over at most this many steps of snapshots
CHURN_MAX_RECORDS = 4_000_000  # the churn pass reads at most this many records


def _reader(path: str, log_level: int = 50) -> Any:
    import memray

    memray.set_log_level(log_level)
    return memray.FileReader(path)


class Frames:
    """Each distinct frame ``(function, file, line)`` numbered once: a stack becomes a
    tuple of numbers into :attr:`table` (stacks share most of their frames, so the result
    is several times smaller to pickle, and its reader judges each frame once)."""

    def __init__(self) -> None:
        self.ids: dict[tuple[str, str, int], int] = {}

    def __call__(self, stack: Stack) -> tuple[int, ...]:
        ids = self.ids
        return tuple([ids.setdefault(tuple(f), len(ids)) for f in stack])

    @property
    def table(self) -> list[tuple[str, str, int]]:
        return list(self.ids)


def _opened(reader: Any) -> dict[str, Any]:
    """What memray's reader learnt on opening (its first pass): ``metadata``
    (:func:`metadata_fields`) and ``snapshots``, ``(time, rss, heap)`` each; for a caller
    that does not open the file itself (``MemrayCapture(..., open_here=False)``)."""
    return {"metadata": metadata_fields(reader.metadata),
            "snapshots": [tuple(s) for s in reader.get_memory_snapshots()]}


def metadata_fields(metadata: Any) -> dict[str, Any]:
    """memray's ``Metadata`` as plain values, ``file_format`` by its name: what a worker
    hands over, so that its reader need not import memray to unpickle it."""
    got = {name: getattr(metadata, name) for name in metadata.__dataclass_fields__}
    got["file_format"] = metadata.file_format.name
    return got


def stats(path: str) -> dict[str, Any]:
    """What ``memray stats`` counts, from its own pass (``compute_statistics``):
    ``total_num_allocations`` and ``total_bytes_allocated`` (deallocations excluded), and
    ``stacks``, per call stack ``(stack, bytes, count, tid)``, the same totals by stack
    (threads merged: ``tid`` 0), for ``alloc_*`` views; each stack a tuple of numbers into
    ``frames`` (:class:`Frames`), the largest ``bytes`` first.

    memray adds each stack's counts up in C++ and hands every distinct stack to its module
    resolver, once, to total them by module; a resolver that names each stack as its own
    module gets them per stack, with no second pass and nothing per record in Python."""
    import memray
    from memray._memray import compute_statistics
    from memray.reporters import module_tools

    memray.set_log_level(50)
    stacks: list[Stack] = []

    class PerStack:
        def __init__(self, *args: Any, **kw: Any) -> None:
            pass

        def get_module_for_stack(self, stack: Stack) -> int:
            stacks.append(stack)
            return len(stacks) - 1

    real = module_tools.ModuleResolver
    module_tools.ModuleResolver = PerStack  # compute_statistics imports it on each call
    try:
        s = compute_statistics(path, num_largest=2**31 - 1)
    finally:
        module_tools.ModuleResolver = real
    frames = Frames()
    rows = [(frames(stacks[i]), int(nbytes), int(n), 0)
            for i, n, nbytes in s.top_modules_by_allocation_size]
    return {"total_num_allocations": s.total_num_allocations,
            "total_bytes_allocated": s.total_memory_allocated,
            "stacks": sorted(rows, key=lambda r: -r[1]), "frames": frames.table}


def churn(path: str) -> dict[str, Any]:
    """memray's temporary-allocations view (threshold 1), threads merged, over the first
    :data:`CHURN_MAX_RECORDS` allocation records at most: ``records``, one row per call
    stack ``(stack, bytes, count, tid)`` (a stack as numbers into ``frames``); ``read``
    and ``total``, the records the view covers and the capture's. memray keeps every
    short-lived allocation of the pass until its end (about 20 bytes a record), so a pass
    over the whole of a large capture would need memory in proportion to it; the bound
    keeps it flat."""
    return _churn(_reader(path))


def _churn(reader: Any) -> dict[str, Any]:
    """:func:`churn` with memray's reader already open."""
    total = int(reader.metadata.total_allocations)
    read = min(total, CHURN_MAX_RECORDS)
    if read == total:  # memray's public call; it refuses an aggregated capture
        records = reader.get_temporary_allocation_records(merge_threads=True, threshold=1)
    else:  # the same call (memray 1.20), stopped after ``read`` records
        records = reader._aggregate_allocations(read, True, temporary_buffer_size=2)
    frames = Frames()
    return {"records": [(frames(r.stack_trace()), r.size, r.n_allocations, r.tid)
                        for r in records],
            "read": read, "total": total, "frames": frames.table}


class CutShort(ValueError):
    """memray logged an error reading an aggregated capture: it ends early."""


@contextlib.contextmanager
def _memray_errors() -> Iterator[list[str]]:
    """The ``Memray ERROR`` lines memray's reader writes to fd 2 while inside, collected
    into the yielded list on exit (fd 2 goes to a temporary file meanwhile)."""
    import memray

    found: list[str] = []
    import tempfile  # here: labkit's process imports this module first, before its passes

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


def _die_with(parent: int) -> None:
    """Linux: this process gets SIGKILL when ``parent``, the worker labkit stops when it no
    longer wants its result, dies (a fork does not inherit the worker's own setting)."""
    import ctypes
    import signal

    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the setting took
        os._exit(1)


def held_churn(path: str) -> dict[str, Any]:
    """:func:`held` and :func:`churn` from one opening of the file: the churn pass runs in
    a forked copy of this process while this one makes the temporal pass, each on its own
    core. The copy writes its result to stdout first, as soon as it has it, before this
    process's own (see :func:`_churn_to_stdout`), so that its reader can use it while the
    temporal pass goes on. An aggregated capture gives :func:`held`'s views only."""
    return held(path, churn_too=True)


def _churn_to_stdout(reader: Any) -> int:
    """Fork a copy that writes ``pickle(("churn", KIND, RESULT))`` to stdout, ``KIND``
    ``"ok"`` (RESULT :func:`churn`'s) or ``"error"`` (RESULT the read error, and the copy
    exits :data:`ERROR_EXIT`); returns its pid, for :func:`_waited`."""
    sys.stdout.flush()
    worker = os.getpid()
    pid = os.fork()
    if pid == 0:
        _die_with(worker)
        try:
            got: tuple[str, str, Any] = ("churn", "ok", _churn(reader))
        except _READ_ERRORS as exc:
            got = ("churn", "error", exc)
        data = memoryview(pickle.dumps(got, protocol=pickle.HIGHEST_PROTOCOL))
        while data:
            data = data[os.write(1, data):]
        os._exit(ERROR_EXIT if got[1] == "error" else 0)
    return pid


def _waited(pid: int) -> None:
    """Wait for a :func:`_churn_to_stdout` copy: killed by a signal (memray's reader
    crashed), it kills this process by the same one; refused, :class:`ChurnRefused`."""
    import signal

    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    if os.waitstatus_to_exitcode(status) != 0:
        raise ChurnRefused("memray refused the churn pass")


class ChurnRefused(ValueError):
    """The forked churn pass met a read error (its copy wrote which, first, to stdout)."""


def held(path: str, *, churn_too: bool = False) -> dict[str, Any]:
    """memray's temporal high-water-mark pass, threads merged: ``marks`` (the heap at each
    snapshot), ``records``, per call stack ``(stack, tid, (), hybrid)`` (the stack as
    numbers into ``frames``, ``hybrid`` its hybrid stack, ``None`` without native traces),
    and their ``intervals`` as columns of int64 (``array('q')``, for numpy to read as
    they are): ``count`` per record, then per interval, record after record,
    ``allocated_before``, ``deallocated_before`` (or NEVER_FREED), ``n_bytes``,
    ``n_allocations``. A stack that held no byte at the peak, at the end, or across the
    end of any of :func:`step_ends`' steps is left out: it says nothing (its reader would drop
    it), and its stack is not read. An aggregated capture gives :func:`_aggregated`'s views
    instead; one that memray reports as ending early raises :class:`CutShort`."""
    from memray import FileFormat

    with _memray_errors() as errors:
        reader = _reader(path, log_level=40)
        native = bool(reader.metadata.has_native_traces)
        aggregated = reader.metadata.file_format == FileFormat.AGGREGATED_ALLOCATIONS
        views = _aggregated(reader, native) if aggregated else None
    if aggregated and errors:
        raise CutShort(errors[0].rstrip("."))
    if views is not None:
        if churn_too:  # no churn pass on this format: say so first all the same
            sys.stdout.buffer.write(pickle.dumps(("churn", "none", None),
                                                 protocol=pickle.HIGHEST_PROTOCOL))
        return {**views, "opened": _opened(reader)}
    child = _churn_to_stdout(reader) if churn_too else None
    records, marks = reader.get_temporal_high_water_mark_allocation_records(merge_threads=True)
    out, frames, ivs = [], Frames(), []
    held_across = _held_across(marks)
    for r in records:
        got = r.intervals
        if not held_across(got):
            continue
        ivs.append(got)
        out.append((frames(r.stack_trace()), r.tid, (),
                    r.hybrid_stack_trace() if native else None))
    flat = [iv for got in ivs for iv in got]
    intervals = {
        "count": array("q", map(len, ivs)),
        "allocated_before": array("q", [iv.allocated_before_snapshot for iv in flat]),
        "deallocated_before": array("q", [NEVER_FREED if (d := iv.deallocated_before_snapshot)
                                          is None else d for iv in flat]),
        "n_bytes": array("q", [iv.n_bytes for iv in flat]),
        "n_allocations": array("q", [iv.n_allocations for iv in flat])}
    if child is not None:
        _waited(child)
    return {"marks": list(marks), "records": out, "intervals": intervals,
            "frames": frames.table, "opened": _opened(reader)}


def step_ends(n: int) -> list[int]:
    """The last snapshot of each of at most :data:`MAX_STEPS` equal steps of ``n``."""
    steps = min(n, MAX_STEPS)
    return [((k + 1) * n - 1) // steps for k in range(steps)]


def _held_across(marks: list[int]) -> Any:
    """Whether intervals (memray's, of one stack) held a byte at the peak (the first
    snapshot of the largest heap in ``marks``), at the end, or across the end of a step
    (:func:`step_ends`): else the bytes it held at each step's end are all 0."""
    from bisect import bisect_left

    peak = marks.index(max(marks)) if marks else 0
    last_of = step_ends(max(1, len(marks)))

    def held(intervals: list[Any]) -> bool:
        for iv in intervals:
            d = iv.deallocated_before_snapshot
            if iv.n_bytes > 0 and (d is None or iv.allocated_before_snapshot <= peak < d or
                                   bisect_left(last_of, iv.allocated_before_snapshot)
                                   != bisect_left(last_of, d)):
                return True
        return False
    return held


def peak(path: str) -> dict[str, Any]:
    """memray's high-water-mark view, threads merged (what ``memray flamegraph`` shows):
    ``records``, per call stack ``(stack, bytes, count, tid)`` (a stack as numbers into
    ``frames``), and ``opened``. A pass up to the peak only, for a caller that wants the
    peak and not how memory moved (:func:`held` gives both)."""
    reader = _reader(path)
    records = reader.get_high_watermark_allocation_records(merge_threads=True)
    frames = Frames()
    return {"records": [(frames(r.stack_trace()), r.size, r.n_allocations, r.tid)
                        for r in records],
            "frames": frames.table, "opened": _opened(reader)}


PASSES: dict[str, Any] = {"stats": stats, "churn": churn, "held": held, "peak": peak,
                          "held_churn": held_churn}
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
    sys.stdout.buffer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    return 0


class _Later:
    """A stand-in for ``module.name`` that imports ``module`` when it is first used."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def _real(self) -> Any:
        import importlib

        return getattr(importlib.import_module(self.module), self.name)

    def __call__(self, *args: Any, **kw: Any) -> Any:
        return self._real()(*args, **kw)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._real(), attr)


# what memray's reader module takes from rich when it is imported: its progress bar (shown
# only with ``report_progress``, which no pass asks for) and its print (the tracker's)
RICH_AT_IMPORT = {"rich": ("print",), "rich.progress": ("Progress", "SpinnerColumn")}


def import_memray() -> None:
    """Import memray with rich's names bound to :class:`_Later` stand-ins: rich is 35-45 ms
    of the 65-75 of a worker's ``import memray``, on every pass's critical path, and the
    passes never show it. The stand-ins leave ``sys.modules`` once memray is in, so that a
    later ``import rich`` gets rich; if memray wants anything else of rich at import, it is
    imported as it is."""
    stubs = {}
    for module, names in RICH_AT_IMPORT.items():
        if module not in sys.modules:
            stubs[module] = stub = type(sys)(module)
            for name in names:
                setattr(stub, name, _Later(module, name))
    sys.modules.update(stubs)
    try:
        import memray
    except ImportError:
        for module in [m for m in sys.modules if m == "memray" or m.startswith("memray.")]:
            del sys.modules[module]
    finally:
        for module, stub in stubs.items():
            if sys.modules.get(module) is stub:
                del sys.modules[module]
    import memray  # noqa: F401  # as it is, if the stand-ins did not do


if __name__ == "__main__":
    import_memray()
    code = main(sys.argv[1:])
    sys.stdout.flush()
    # its reader waits for the end of stdout: the result is written whole, and tearing
    # down memray's reader and the pass's index (tens of ms on a large capture) is not
    # worth that wait
    os._exit(code)
