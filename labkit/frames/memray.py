"""memray capture -> DataFrames: ``memory``, ``allocations_at_peak``, ``leaks``, ``growth``,
``churn``, ``summary``.

Streaming contract: every pass over the allocation records runs inside memray's C++ reader
(``FileReader`` and ``compute_statistics``); labkit only sees records memray has already
aggregated per call stack, so a capture with millions of allocations never becomes a Python
object or a DataFrame row per allocation. Memory stays flat as captures grow: the one
view whose memray pass keeps something per record (the short-lived allocations behind
``churn``) reads a bounded prefix of the records, and says so (``churn_records``).

Isolation: a damaged capture can crash memray's reader (SIGSEGV, SIGABRT), so every pass
over the records runs once, in a worker process (:mod:`labkit.frames.memray_worker`), and
labkit's process only opens the file (memray computes the high-water mark then) and reads
its memory snapshots. ``allocations_at_peak``, ``leaks`` and ``growth`` share the ``held``
pass (memray's temporal high-water-mark records, which hold what each stack held at every
snapshot), started on opening since nearly every consumer needs it (a caller wanting only
the peak turns it off and reads memray's plain high-water-mark view); ``stats_in_background``
(what :func:`load_memray` and ``Run.memray`` use) and ``churn_in_background`` start those
passes on opening too, so they overlap; any other pass starts on first use. A worker killed
by a signal is a one-line :class:`CorruptCaptureError`. The exports go further
(``open_here=False``): labkit's process does not open the file at all, the worker of the
``held`` or ``peak`` pass hands over what memray learnt on opening it, and with both
``held`` and ``churn`` wanted the churn pass runs in a fork of the held pass's worker,
after one opening of the file for both, and its result comes first, as soon as it is made
(a caller can use it while the temporal pass goes on). Workers hand stacks over as
numbers into a table of distinct frames; each frame is judged once
(:func:`program_stacks` gives a caller that needs no DataFrame the rows
:func:`own_allocations` would keep).

Aggregated captures (``memray run --aggregate``): memray keeps only the high-water mark
and the leaks per call stack, so the ``held`` pass reads those two views
(:mod:`labkit.frames.memray_aggregated`); ``growth``'s history columns are NaN, ``churn``
is empty, ``allocated`` is refused and ``summary``'s totals are None; :attr:`missing`
says so. One that memray reports as ending early is a one-line :class:`CorruptCaptureError`
of its own.

Tested against memray 1.20, pinned in pyproject.toml: ``FileReader`` is public but not in
memray's API docs; the bounded churn pass calls its ``_aggregate_allocations`` and the
per-stack totals hook ``compute_statistics``' module resolver (see
:mod:`labkit.frames.memray_worker`), both checked against memray's public views in
``tests/test_frames_memray.py``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import pickle
import signal
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from labkit.errors import CorruptCaptureError, InputError
from labkit.frames import memray_aggregated as agg
from labkit.frames.memray_start import planned, spawn, stop
from labkit.frames.memray_worker import NEVER_FREED, step_ends
from labkit.safefile import open_regular
from labkit.stacks import SNAPSHOT_FILE, TRACER_FILE, Frame, is_agent, is_import_time, stack_text

if TYPE_CHECKING:
    import pandas as pd

    from labkit.frames.memray_start import Started

ALLOCATION_COLUMNS = ("function", "file", "line", "stack", "bytes", "count", "thread",
                      "in_labkit", "frames")

_READ_ERRORS = (OSError, ValueError, RuntimeError, UnicodeDecodeError, KeyError, IndexError,
                NotImplementedError)


def _corrupt(path: Path, exc: BaseException | str) -> CorruptCaptureError:
    detail = exc if isinstance(exc, str) else (
        str(exc).split(":")[0].strip().rstrip(".") or type(exc).__name__)
    return CorruptCaptureError(
        f"{path} is not a readable memray capture ({detail}); it may be truncated or "
        "corrupt: re-capture it, or check you gave the right file"
    )


def _cut_short(path: Path, detail: str) -> CorruptCaptureError:
    return CorruptCaptureError(
        f"{path} is an aggregated memray capture that ends early ({detail}); memray writes "
        "it whole when tracking stops, so the program was killed first or the file was cut: "
        "re-capture it")


def _crashed(path: Path, returncode: int) -> CorruptCaptureError:
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return CorruptCaptureError(f"{path} crashes memray's reader ({name}); the capture is "
                               "damaged: re-capture it, or check you gave the right file")


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """memray quiet while it reads ``path``, and whatever it raises reading it as one
    :class:`CorruptCaptureError`."""
    import memray

    memray.set_log_level(logging.CRITICAL)
    try:
        yield
    except _READ_ERRORS as exc:
        raise _corrupt(path, exc) from None
    finally:
        memray.set_log_level(logging.WARNING)


class _Refused:
    """A pass's read error, kept until its result is asked for."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def own_allocations(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of an allocation frame that are the program's own: neither labkit's tracer
    nor made while importing modules (what a learner or a postmortem should look at).
    A frame without ``in_labkit`` or ``frames`` is filtered on the column it has."""
    if not len(df):
        return df
    keep = ~df["in_labkit"].astype(bool) if "in_labkit" in df else True
    if "frames" in df:
        keep = keep & ~df["frames"].map(is_import_time)
    return df[keep] if keep is not True else df


def _interned(records: Iterable[tuple[Any, ...]], table: Sequence[Any] | None
              ) -> tuple[list[tuple[Any, ...]], Sequence[tuple[str, str, int]]]:
    """``(stack, ...)`` records with each stack as numbers into a table of distinct frames
    (as a worker gives them; memray's own frames numbered here when ``table`` is None)."""
    if table is not None:
        return list(records), table
    ids: dict[tuple[str, str, int], int] = {}
    out = [(tuple([ids.setdefault(tuple(f), len(ids)) for f in r[0]]), *r[1:])
           for r in records]
    return out, list(ids)


def _judged(table: Sequence[tuple[str, str, int]]) -> tuple[list[Frame], set[int], set[int],
                                                            set[int], set[int], list[str]]:
    """Each distinct frame (memray's ``(function, file, line)``) judged once: the frames,
    the numbers of labkit's agent's, the heap snapshot's, the GC tracer's and importlib's,
    and each frame's text."""
    frames = [Frame(file, line, fn) for fn, file, line in table]
    agent = {i for i, f in enumerate(frames) if is_agent(f.file)}
    snap = {i for i, f in enumerate(frames) if f.file.endswith(SNAPSHOT_FILE)}
    tracer = {i for i, f in enumerate(frames) if f.file.endswith(TRACER_FILE)}
    importing = {i for i, f in enumerate(frames) if f.file.startswith("<frozen importlib")}
    return frames, agent, snap, tracer, importing, [stack_text((f,)) for f in frames]


def _rows(records: Iterable[tuple[Any, ...]], table: Sequence[tuple[str, str, int]] | None
          ) -> Iterator[tuple[Any, ...]]:
    """One :data:`ALLOCATION_COLUMNS` tuple per ``(stack, bytes, count, tid)`` record."""
    records, table = _interned(records, table)
    frames, agent, snap, tracer, _, text = _judged(table)
    frame_of, text_of = frames.__getitem__, text.__getitem__
    unknown = Frame("<unknown>", 0, "<unknown>")
    for stack, size, n, tid in records:  # memray's stacks: leaf first
        own_ids = [i for i in stack if i not in agent] if agent else stack
        own = tuple(map(frame_of, own_ids))
        in_labkit = bool(stack) and (stack[0] in tracer or not snap.isdisjoint(stack))
        leaf = frames[stack[0]] if in_labkit else (own[0] if own else unknown)
        line = (" < ".join(map(text_of, own_ids)) if own else
                text[stack[0]] if stack else "") or "<no Python stack>"
        yield (leaf.function, leaf.file, leaf.line, line, size, n, tid, in_labkit, own)


def program_stacks(records: Iterable[tuple[Any, ...]],
                   table: Sequence[tuple[str, str, int]] | None = None
                   ) -> Iterator[tuple[tuple[Frame, ...], int, int, int]]:
    """The rows :func:`own_allocations` keeps of ``(stack, bytes, count, tid)`` records,
    as ``(frames, bytes, count, tid)`` (``frames`` leaf first, never empty), with no
    DataFrame: for a caller that needs nothing else (the pprof export)."""
    records, table = _interned(records, table)
    frames, agent, snap, tracer, importing, _ = _judged(table)
    for stack, size, n, tid in records:
        # labkit's own (in_labkit) and what importing modules made are left out
        if (not stack or stack[0] in tracer or not snap.isdisjoint(stack)
                or not importing.isdisjoint(stack)):
            continue
        own = tuple([frames[i] for i in stack if i not in agent])
        if own:
            yield own, size, n, tid


def _records_frame(records: Iterable[tuple[Any, ...]],
                   table: Sequence[tuple[str, str, int]] | None = None, *,
                   sort: bool = True) -> pd.DataFrame:
    """``(stack, bytes, count, tid)`` records (a stack as memray's frames, or numbers into
    ``table``) as a frame of :data:`ALLOCATION_COLUMNS`, largest ``bytes`` first."""
    import pandas as pd

    df = pd.DataFrame.from_records(list(_rows(records, table)),
                                   columns=list(ALLOCATION_COLUMNS))
    df = df.astype({"line": "int64", "bytes": "int64", "count": "int64", "in_labkit": bool})
    if not sort:
        return df
    return df.sort_values("bytes", ascending=False, kind="stable").reset_index(drop=True)


class _Kept:
    """The ``held`` pass's kept records, ``(stack, tid, intervals, hybrid)`` each, a stack
    as memray's frames: turned from numbers into ``table`` only for the record asked for
    (:meth:`MemrayCapture.native_frames`, a capture with native stacks)."""

    def __init__(self, table: Sequence[tuple[str, str, int]],
                 records: list[tuple[Any, ...]]) -> None:
        self.table, self.records = table, records

    def __getitem__(self, i: int) -> tuple[Any, ...]:
        stack, tid, ivs, hybrid = self.records[i]
        return [self.table[k] for k in stack], tid, ivs, hybrid


class MemrayCapture:
    """One memray capture file. Raises :class:`CorruptCaptureError` if memray cannot read it.

    ``origin_epoch_s``, when given, puts ``memory.t_s`` on the run's time axis; otherwise
    ``t_s`` counts from the capture's own start. The ``held`` pass (behind
    :attr:`allocations_at_peak`, :attr:`leaks`, :attr:`growth`) starts in a worker process
    at once, unless ``held_in_background`` is False (for a caller that wants only the
    peak: see :meth:`peak_in_background`); ``stats_in_background`` starts the statistics
    pass (:attr:`summary`, :attr:`allocated`) too, ``churn_in_background`` the pass behind
    :attr:`churn` (see the module docstring). With ``open_here`` False this process does not
    open the file at all (memray's opening pass is in the worker of the ``held`` pass, or of
    the ``peak`` one, started now): :attr:`metadata` and :attr:`memory` come from that
    worker, and a capture memray cannot read is refused on first use, not here.
    ``started``, workers started for the same flags (:meth:`from_started`), are used
    instead of starting them again, and stopped if the capture cannot be opened.
    """

    def __init__(self, path: Path | str, *, origin_epoch_s: float | None = None,
                 stats_in_background: bool = False, churn_in_background: bool = False,
                 held_in_background: bool = True, open_here: bool = True,
                 started: dict[str, subprocess.Popen[bytes]] | None = None) -> None:
        self.path = Path(path)
        self._workers: dict[str, subprocess.Popen] = dict(started or {})
        try:
            open_regular(self.path, "memray capture").close()  # not a FIFO, device, folder
        except BaseException:
            self._stop_worker()
            raise
        self._early: dict[str, Any] = {}  # results read before their frame asked for them
        self._via: dict[str, str] = {}  # a pass whose result another pass's worker gives
        self._churn_read = False  # a held_churn worker's first result (churn's) taken
        self._churn_torn = False  # ... and cut short: its worker's status says why
        self._origin = origin_epoch_s
        self._metadata: Any = None
        self._reader: Any = None
        for task, command in planned(held_in_background=held_in_background,
                                     churn_in_background=churn_in_background,
                                     stats_in_background=stats_in_background,
                                     open_here=open_here):
            if command == "held_churn":  # one opening of the file for both passes
                self._via["churn"] = "held"
            self._spawn(task, command)
        if not open_here:
            return
        import memray

        try:
            with _reading(self.path):
                self._reader = memray.FileReader(str(self.path))
                self._metadata = self._reader.metadata
        except CorruptCaptureError:
            self._stop_worker()
            raise
        self._check_opened()

    @classmethod
    def from_started(cls, started: Started, *, origin_epoch_s: float | None = None
                     ) -> MemrayCapture:
        """The capture whose passes ``started`` started
        (:func:`labkit.frames.memray_start.start_first`), its workers handed over."""
        workers, started.workers = started.workers, {}
        return cls(started.path, origin_epoch_s=origin_epoch_s, open_here=False,
                   started=workers, **started.passes)

    def _check_opened(self) -> None:
        """Once the metadata is known: an aggregated capture's refused passes stopped, and
        one whose records end early refused."""
        if not self.aggregated:
            return
        for task in ("churn", "stats"):  # memray refuses them on this format
            self._early.pop(task, None)
            if (w := self._workers.pop(task, None)) is not None:
                w.kill()
                w.communicate()
        heap = max((int(s[2]) for s in self._snapshots), default=0)
        if heap > int(self.metadata.peak_memory):  # the records' end is missing
            self.close()
            raise _cut_short(self.path, f"its snapshots saw a heap of {heap:,} bytes, its "
                             f"records peak at {int(self.metadata.peak_memory):,}")

    @property
    def metadata(self) -> Any:
        """memray's metadata of the capture (read on opening it): memray's ``Metadata``
        when opened here; from a worker, the same fields as plain values
        (:func:`labkit.frames.memray_worker.metadata_fields`, ``file_format`` by name), so
        that this process need not import memray."""
        if self._metadata is None:  # opened in a worker: wait for the one that opens
            task = "held" if "held" in self._workers else "peak"
            self._early[task] = self._result(task)
        return self._metadata

    @property
    def origin_epoch_s(self) -> float:
        """The run's origin (epoch seconds) ``memory.t_s`` counts from."""
        return (self._origin if self._origin is not None
                else self.metadata.start_time.timestamp())

    @origin_epoch_s.setter
    def origin_epoch_s(self, value: float | None) -> None:
        if "memory" in self.__dict__:
            raise ValueError("memory is already on another time axis")
        self._origin = value

    @property
    def aggregated(self) -> bool:
        """Whether this is an aggregated capture (``memray run --aggregate``)."""
        return agg.is_aggregated(self.metadata)

    @property
    def missing(self) -> list[dict[str, str]]:
        """The evidence this capture cannot give, each ``{"evidence", "why"}``: for an
        aggregated capture, :data:`labkit.frames.memray_aggregated.MISSING`; else empty."""
        return [dict(m) for m in agg.MISSING] if self.aggregated else []

    def _spawn(self, task: str, command: str | None = None) -> None:
        """Start :mod:`labkit.frames.memray_worker`'s ``task`` (or the pass ``command``,
        which gives ``task``'s result and more) on this capture in a second process, unless
        it is running."""
        if task not in self._workers:
            self._workers[task] = spawn(command or task, self.path)

    def _result(self, task: str) -> Any:
        """The worker's result for ``task`` (started now if it was not); a worker killed by
        a signal or refusing the capture is a one-line :class:`CorruptCaptureError`."""
        via = self._via.get(task)
        if task not in self._early and via in self._workers:
            self._churn_first(self._workers[via])  # which gives this task's first
            if task not in self._early:  # cut short, or not written: its worker says why
                self._early[via] = self._result(via)
        if task in self._early:
            got = self._early.pop(task)
            if isinstance(got, _Refused):
                raise _corrupt(self.path, got.exc)
            return got
        self._spawn(task)
        w = self._workers[task]
        if self._via.get("churn") == task:
            self._churn_first(w)
        out, _ = w.communicate()
        del self._workers[task]
        if w.returncode < 0:
            raise _crashed(self.path, w.returncode)
        if w.returncode != 0:
            try:
                got = json.loads(out)
                detail, cut = str(got["error"]), bool(got.get("cut_short"))
            except (ValueError, KeyError, TypeError, AttributeError):
                detail, cut = f"its reader exited with status {w.returncode}", False
            raise (_cut_short if cut else _corrupt)(self.path, detail)
        if self._churn_torn:
            self._churn_torn = False
            raise _corrupt(self.path, "its churn pass's result was cut short")
        got = pickle.loads(out)  # our child's
        opened = got.pop("opened", None) if isinstance(got, dict) else None
        if opened is not None and self._metadata is None:  # not opened here
            self._metadata = SimpleNamespace(**opened["metadata"])  # memray's fields
            self.__dict__["_snapshots"] = opened["snapshots"]
            self._check_opened()
        return got

    def _churn_first(self, w: subprocess.Popen) -> None:
        """Read the churn result a ``held_churn`` worker writes first (see
        :func:`labkit.frames.memray_worker.held_churn`) into ``_early``, once; a read
        error kept for whoever asks for churn, a result cut short (its copy crashed) left
        for the worker's exit status to explain."""
        if self._churn_read or w.stdout is None:
            return
        self._churn_read = True
        if w.stdout.peek(1)[:1] != b"\x80":  # no pickle: the worker's error, or nothing
            return
        try:
            got = pickle.load(w.stdout)  # our child's
            _, kind, result = got
        except Exception:  # a copy killed mid-write: its worker says why
            self._churn_torn = True
            return
        if kind == "ok":
            self._early["churn"] = result
        elif kind == "error":
            self._early["churn"] = _Refused(result)

    def close(self) -> None:
        """Release the file and any background worker."""
        self._stop_worker()
        if self._reader is not None:
            self._reader.close()

    def __del__(self) -> None:
        self._stop_worker()

    def _stop_worker(self) -> None:
        stop(getattr(self, "_workers", {}))

    @cached_property
    def _snapshots(self) -> list[Any]:
        if self._reader is None:  # opened in a worker, which gave them
            _ = self.metadata
            return self.__dict__["_snapshots"]
        with _reading(self.path):
            return list(self._reader.get_memory_snapshots())  # a pass over the file

    @cached_property
    def memory(self) -> pd.DataFrame:
        """``t_s``, ``rss_bytes``, ``heap_bytes`` from memray's snapshots (about every 10 ms)."""
        import pandas as pd

        df = pd.DataFrame(self._snapshots, columns=["time", "rss_bytes", "heap_bytes"])
        df.insert(0, "t_s", df.pop("time") / 1000.0 - self.origin_epoch_s)
        return df.astype({"rss_bytes": "int64", "heap_bytes": "int64"})

    @cached_property
    def _held(self) -> pd.DataFrame:
        """One pass over memray's temporal high-water-mark records: per call stack, what it
        held at the peak, at the end, and over the run (see :attr:`growth`); stacks that
        held nothing at the peak, at the end or in the first or last quarter, and never
        grew, are left out."""
        import numpy as np

        got = self._result("held")
        if got.get("format") == "aggregated":
            return self._held_aggregated(got)
        marks, records, iv = got["marks"], got["records"], got["intervals"]
        n = max(1, len(marks))
        peak = int(np.argmax(marks)) if len(marks) else 0
        m = len(records)
        rid = np.repeat(np.arange(m), np.asarray(iv["count"], dtype=np.int64))
        a = np.asarray(iv["allocated_before"], dtype=np.int64)
        d = np.asarray(iv["deallocated_before"], dtype=np.int64)
        never = d == NEVER_FREED
        d = np.where(never, n, d)
        nbytes = np.asarray(iv["n_bytes"], dtype=np.int64).astype(np.float64)
        nallocs = np.asarray(iv["n_allocations"], dtype=np.int64).astype(np.float64)
        at_peak = (a <= peak) & (peak < d)  # held at a snapshot: allocated before, freed after
        # held at the last snapshot of each step (memray_worker.step_ends), as a running sum
        last_of = np.array(step_ends(n), dtype=np.int64)  # the worker's steps, the same
        steps = len(last_of)
        cells = np.concatenate([rid * (steps + 1) + np.searchsorted(last_of, a),
                                rid * (steps + 1) + np.searchsorted(last_of, d)])
        delta = np.bincount(cells, np.concatenate([nbytes, -nbytes]),
                            m * (steps + 1)).reshape(m, steps + 1)
        held = delta.cumsum(axis=1)[:, :steps]
        q = max(1, steps // 4)
        first, last = held[:, :q].mean(axis=1), held[:, -q:].mean(axis=1)
        diff = delta[:, 1:steps]  # held's steps: whole bytes, so exactly np.diff(held)
        cols = {"peak_bytes": np.bincount(rid, nbytes * at_peak, m).astype("int64"),
                "peak_count": np.bincount(rid, nallocs * at_peak, m).astype("int64"),
                "end_bytes": np.bincount(rid, nbytes * never, m).astype("int64"),
                "end_count": np.bincount(rid, nallocs * never, m).astype("int64"),
                "first_bytes": first, "last_bytes": last, "growth_bytes": last - first,
                "rising": (diff >= 0).mean(axis=1) if steps > 1 else np.ones(m),
                "increases": (diff > 0).sum(axis=1) if steps > 1 else np.zeros(m, dtype=int)}
        # a stack that held nothing at any of these moments and never grew says nothing
        keep = np.flatnonzero((cols["peak_bytes"] > 0) | (cols["end_bytes"] > 0) |
                              (first > 0) | (last > 0) | (cols["increases"] > 0))
        table = got["frames"]
        self._kept = _Kept(table, [records[i] for i in keep])  # for native_frames
        base = _records_frame(((records[i][0], 0, 0, records[i][1]) for i in keep), table,
                              sort=False)
        return base.drop(columns=["bytes", "count"]).assign(
            record=np.arange(len(keep)), **{k: v[keep] for k, v in cols.items()})

    def _held_aggregated(self, got: dict[str, Any]) -> pd.DataFrame:
        """:attr:`_held` from an aggregated capture's two views (no history)."""
        self._kept, cols = agg.merge_views(got["peak"], got["leaks"])
        base = _records_frame(((stack, 0, 0, tid) for stack, tid, _, _ in self._kept),
                              sort=False)
        return agg.held_frame(base, cols)

    def native_frames(self, record: int) -> tuple[Frame, ...]:
        """The native frames (innermost first) below the Python stack of row ``record`` of
        :attr:`growth`, for a capture made with ``--native``; empty otherwise. Native frames
        name their source file when memray could symbolize it, else ``<unknown>``."""
        if not self.metadata.has_native_traces:
            return ()
        _ = self._held
        stack, _tid, _ivs, hybrid = self._kept[record]
        python = {(fn, f) for fn, f, _ln in stack}
        native = []
        for fn, f, ln in hybrid:
            if (fn, f) in python:
                break
            native.append(Frame(f, int(ln), fn))
        return tuple(native)

    def _held_as(self, size: str, count: str) -> pd.DataFrame:
        """The held stacks with ``size`` bytes above 0, as ``bytes`` and ``count``, largest
        first (ties in their order), the rows taken once (its text columns are copied)."""
        import numpy as np

        h = self._held
        sizes = h[size].to_numpy()
        rows = np.flatnonzero(sizes > 0)
        rows = rows[np.argsort(-sizes[rows], kind="stable")]
        df = h[["function", "file", "line", "stack", size, count, "thread", "in_labkit",
                "frames"]].iloc[rows]
        return df.rename(columns={size: "bytes", count: "count"}).reset_index(drop=True)

    def peak_in_background(self) -> None:
        """For a capture opened with ``held_in_background=False``: start memray's plain
        high-water-mark pass (up to the peak only) behind :attr:`allocations_at_peak` now,
        in a second process; nothing if the ``held`` pass runs or ran."""
        if not ({"_held", "_peak", "allocations_at_peak"} & self.__dict__.keys()
                or {"held", "peak"} & (self._workers.keys() | self._early.keys())):
            self._spawn("held" if self.aggregated else "peak")  # see _held_aggregated

    @cached_property
    def _peak(self) -> dict[str, Any]:
        return self._result("peak")

    def _peak_alone(self) -> pd.DataFrame:
        """memray's plain high-water-mark view (a pass up to the peak), when the ``held``
        pass was not started and nothing but the peak is wanted."""
        df = _records_frame(self._peak["records"], self._peak["frames"])
        return df[df["bytes"] > 0].reset_index(drop=True)

    def _peak_from_held(self) -> bool:
        return (self.aggregated or bool({"_held", "allocations_at_peak"} & self.__dict__.keys())
                or "held" in self._workers or "held" in self._early)

    def peak_stacks(self) -> Iterator[tuple[tuple[Frame, ...], int, int, int]]:
        """The program's own rows of :attr:`allocations_at_peak` (:func:`own_allocations`,
        in the same order) as ``(frames, bytes, count, thread)``, ``frames`` never empty;
        with no DataFrame when it comes from memray's plain high-water-mark view."""
        if self._peak_from_held():
            df = own_allocations(self.allocations_at_peak)
            return ((r.frames, r.bytes, r.count, r.thread) for r in df.itertuples() if r.frames)
        records = sorted((r for r in self._peak["records"] if r[1] > 0), key=lambda r: -r[1])
        return program_stacks(records, self._peak["frames"])

    @cached_property
    def allocations_at_peak(self) -> pd.DataFrame:
        """Per call stack, what was allocated and not yet freed at the high-water mark.

        Columns: ``function``, ``file``, ``line`` (the leaf frame, labkit's own frames
        removed), ``stack`` (leaf first), ``bytes``, ``count``, ``thread``, ``in_labkit``
        (allocated by labkit's tracer itself), ``frames`` (the stack as ``(file, line,
        function)`` tuples, leaf first, for :mod:`labkit.attribution`). Sorted by
        ``bytes``, largest first. Exactly what memray's high-water-mark view reports: from
        the ``held`` pass, or, for a capture opened with ``held_in_background=False`` whose
        ``held`` pass has not been asked for, from memray's high-water-mark view itself.
        """
        if not self._peak_from_held():
            return self._peak_alone()
        return self._held_as("peak_bytes", "peak_count")

    @cached_property
    def leaks(self) -> pd.DataFrame:
        """Allocations never freed before tracking stopped; same columns as
        :attr:`allocations_at_peak` (memray's leaks view). Meaningful for captures made for
        it: with ``--trace-python-allocators`` (or ``PYTHONMALLOC=malloc``), else pymalloc
        hides small objects inside its arenas."""
        return self._held_as("end_bytes", "end_count")

    @cached_property
    def growth(self) -> pd.DataFrame:
        """Per call stack, how the bytes it holds moved over the run.

        Columns: ``function``, ``file``, ``line``, ``stack``, ``frames``, ``in_labkit`` as
        in :attr:`allocations_at_peak`; ``peak_bytes``/``end_bytes`` (held at the peak and
        when tracking stopped), ``peak_count`` (blocks held at the peak); and, over the run
        cut into at most :data:`memray_worker.MAX_STEPS` equal steps of memray snapshots
        (about 10 ms each), ``first_bytes``/``last_bytes`` (mean bytes held over the first and
        the last quarter of the steps), ``growth_bytes`` (``last_bytes - first_bytes``), ``rising``
        (share of steps in which it did not shrink), ``increases`` (steps in which it
        grew), ``record`` (for :meth:`native_frames`). A site that grows steadily has
        large ``growth_bytes`` and many ``increases``; a one-off, however large and
        whenever it happens, grows in one
        step."""
        cols = ["function", "file", "line", "stack", "frames", "in_labkit", "peak_bytes",
                "peak_count", "end_bytes", "first_bytes", "last_bytes", "growth_bytes", "rising",
                "increases", "record"]
        return self._held[cols].sort_values("growth_bytes", ascending=False,
                                            kind="stable").reset_index(drop=True)

    def churn_in_background(self) -> None:
        """Start computing :attr:`churn` in a second process now (a pass over the file as
        long as the peak's), for a caller that will want both."""
        if "churn" not in self.__dict__ and "churn" not in self._via:
            self._spawn("churn")

    @cached_property
    def churn(self) -> pd.DataFrame:
        """Per call stack, short-lived allocations (memray's temporary-allocations view:
        freed before any other allocation was made): ``bytes`` and ``count`` allocated
        that way; other columns as in :attr:`allocations_at_peak`. This is where a program
        that allocates and frees at a high rate spends.

        Bounded: over the first ``memray_worker.CHURN_MAX_RECORDS`` allocation records at
        most, so that memory stays flat however large the capture; :attr:`churn_records`
        says how many of how many it covers. Empty for an aggregated capture (see
        :attr:`missing`)."""
        if self._via.get("churn") in self._workers:  # its result comes first, and only
            self._churn_first(self._workers[self._via["churn"]])  # from a non-aggregated one
        if "churn" not in self._early and self.aggregated:
            self._churn_records = (0, 0)
            return _records_frame(())
        got = self._result("churn")
        self._churn_records = (int(got["read"]), int(got["total"]))
        return _records_frame(got["records"], got["frames"])

    @property
    def churn_records(self) -> tuple[int, int]:
        """``(covered, total)``: the allocation records :attr:`churn` covers (the first
        ones) and the capture's; equal unless the capture has more than
        ``memray_worker.CHURN_MAX_RECORDS``."""
        _ = self.churn
        return self._churn_records

    @cached_property
    def _stats(self) -> dict[str, Any]:
        return self._result("stats")

    @cached_property
    def allocated(self) -> pd.DataFrame:
        """Per call stack, everything allocated over the run, freed or not: ``bytes`` and
        ``count`` (what ``memray stats`` totals, from the same pass as :attr:`summary`);
        ``thread`` is 0 (threads merged); other columns as in :attr:`allocations_at_peak`.
        An aggregated capture has no such record: a one-line :class:`InputError`."""
        self._refuse_aggregated()
        return _records_frame(self._stats["stacks"], self._stats["frames"])

    def allocated_stacks(self) -> Iterator[tuple[tuple[Frame, ...], int, int, int]]:
        """The program's own rows of :attr:`allocated` (:func:`own_allocations`, in the same
        order) as ``(frames, bytes, count, thread)``, ``frames`` never empty, with no
        DataFrame."""
        self._refuse_aggregated()
        records = sorted(self._stats["stacks"], key=lambda r: -r[1])
        return program_stacks(records, self._stats["frames"])

    def _refuse_aggregated(self) -> None:
        if self.aggregated:
            raise InputError(f"{self.path} is an aggregated memray capture: memray kept no "
                             "record of what was allocated over the run, only what was held "
                             "at the peak and never freed")

    def _summary_from(self, stats: dict[str, Any] | None) -> pd.Series:
        import pandas as pd

        m = self.metadata
        return pd.Series({
            "peak_bytes": int(m.peak_memory),
            "total_allocated_bytes": None if stats is None else int(
                stats["total_bytes_allocated"]),
            "allocations": None if stats is None else int(stats["total_num_allocations"]),
            "duration_s": (m.end_time - m.start_time).total_seconds(),
            "native_traces": bool(m.has_native_traces),
            "trace_python_allocators": bool(m.trace_python_allocators),
            "python_allocator": m.python_allocator,
            "aggregated": self.aggregated,
        })

    @cached_property
    def summary(self) -> pd.Series:
        """``peak_bytes``, ``total_allocated_bytes``, ``allocations`` (as ``memray stats``
        counts them: deallocations excluded; None for an aggregated capture, which does not
        record them), ``duration_s`` and how it was captured (``aggregated`` among it)."""
        return self._summary_from(None if self.aggregated else self._stats)

    def load_all(self) -> MemrayCapture:
        """Compute every frame except ``leaks``; returns self."""
        _ = self.memory, self.allocations_at_peak, self.summary
        return self


def load_memray(path: Path | str, *, origin_epoch_s: float | None = None) -> MemrayCapture:
    """Open a capture and compute its frames, the statistics pass in parallel."""
    return MemrayCapture(path, origin_epoch_s=origin_epoch_s, stats_in_background=True).load_all()
