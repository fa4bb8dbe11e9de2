"""What the GC tracer runs per collection: its callback, the chunks it writes into, and
the calibration of its cost. Standard library only (see :mod:`labkit.capture.gctrace`,
which loads it by path).

Two recorders write the same records into preallocated ``array('q')`` chunks: the
compiled one (``_gcevents.c``, built at install time when a compiler is there; its
callback is a C function, so no Python frame runs per collection) and, where it is not
built for this interpreter or ``LABKIT_GC_CALLBACK=python``, :class:`PyRecorder`. Either
callback takes no lock, does no I/O and keeps no container objects of its own; the Python
one keeps the ``start`` phase's figures in closure cells and packs the record with one
``struct.pack_into``. ``gc.get_count()`` is read in the ``start`` phase; its tuple is
freed at once.
"""

from __future__ import annotations

import gc
import importlib.machinery
import importlib.util
import os
import struct
import sys
import threading
import time
from array import array
from types import ModuleType
from typing import Any

STRIDE = 9  # int64 fields a record: gctrace.EVENT_FIELDS
CHUNK = 4096  # records a chunk
_PACK = struct.Struct(f"{STRIDE}q").pack_into
ENV_CALLBACK = "LABKIT_GC_CALLBACK"  # "python": the Python callback even when compiled


class Chunks:
    """Event storage: fixed-size chunks of int64, filled by a recorder, drained by a thread.
    ``full`` chunks wait for the drain, which returns them to ``spares``."""

    def __init__(self) -> None:
        self.full: list[array] = []
        self.spares: list[array] = [self.new()]
        self.grown_in_callback = 0

    @staticmethod
    def new() -> array:
        """An empty chunk of ``CHUNK`` records."""
        return array("q", bytes(8 * STRIDE * CHUNK))

    def rollover(self, buf: array) -> array:
        """``buf`` is full: queue it for the drain and give the next chunk (a spare, or a
        fresh one when the drain fell behind)."""
        self.full.append(buf)
        if self.spares:
            return self.spares.pop()
        self.grown_in_callback += 1
        return self.new()


class PyRecorder:
    """The recorder in Python: ``current`` (the chunk being filled), ``pos`` (records in it)
    and ``callback`` (the ``gc.callbacks`` entry), as :mod:`_gcevents`'s ``Recorder``."""

    kind = "python"

    def __init__(self, chunks: Chunks, current: array) -> None:
        self.chunks = chunks
        self.current = current
        self._pos = [0]
        self.callback = _make_callback(self, self._pos)

    @property
    def pos(self) -> int:
        return self._pos[0]

    @pos.setter
    def pos(self, value: int) -> None:
        self._pos[0] = value


def _make_callback(rec: PyRecorder, pos: list[int]) -> Any:
    get_count = gc.get_count
    now = time.perf_counter_ns
    ident = threading.get_ident
    pack = _PACK
    rollover = rec.chunks.rollover
    t0 = c0 = c1 = c2 = 0

    def _labkit_gc_callback(phase: str, info: dict) -> None:
        nonlocal t0, c0, c1, c2
        if phase == "start":
            c0, c1, c2 = get_count()
            t0 = now()
            return
        t1 = now()
        n = pos[0]
        buf = rec.current
        pack(buf, n * STRIDE * 8, t0, t1, info["generation"], info["collected"],
             info["uncollectable"], ident(), c0, c1, c2)
        n += 1
        if n == CHUNK:
            rec.current = rollover(buf)
            n = 0
        pos[0] = n

    return _labkit_gc_callback


def load_native() -> ModuleType | None:
    """The compiled ``_gcevents`` beside this file built for this interpreter, or None
    (not built: no compiler at install time, another interpreter's build, or an import
    error)."""
    here = os.path.dirname(os.path.abspath(__file__))
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = os.path.join(here, "_gcevents" + suffix)
        if not os.path.isfile(path):
            continue
        key = "_labkit_capture._gcevents"  # the last part names its PyInit function
        if key in sys.modules:
            return sys.modules[key]
        try:
            spec = importlib.util.spec_from_file_location(key, path)
            assert spec is not None and spec.loader is not None
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
        except (ImportError, OSError):
            return None
        if getattr(mod, "STRIDE", None) != STRIDE:
            return None
        sys.modules[key] = mod
        return mod
    return None


def make_recorder(chunks: Chunks) -> Any:
    """The compiled recorder when it loads, else :class:`PyRecorder`; the environment
    variable ``LABKIT_GC_CALLBACK=python`` forces the Python one. Either has ``kind``
    ("c" or "python"), ``current``, ``pos`` and ``callback``."""
    native = None if os.environ.get(ENV_CALLBACK) == "python" else load_native()
    if native is None:
        return PyRecorder(chunks, chunks.new())
    rec = native.Recorder(chunks, chunks.new())
    return _NativeRecorder(rec, chunks)


class _NativeRecorder:
    """The compiled ``Recorder`` with the Python one's ``kind`` and one stable callback."""

    kind = "c"

    def __init__(self, rec: Any, chunks: Chunks) -> None:
        self._rec = rec
        self.chunks = chunks
        self.callback = rec.callback

    @property
    def current(self) -> array:
        return self._rec.current

    @current.setter
    def current(self, value: array) -> None:
        self._rec.current = value

    @property
    def pos(self) -> int:
        return self._rec.pos

    @pos.setter
    def pos(self, value: int) -> None:
        self._rec.pos = value


EVICT_BYTES = 256 * 1024  # walked between calibrating collections: past L1, a quarter of L2
LINE = 64  # bytes a cache line
DRAIN = 100  # dicts and lists held across a calibrating collection: past CPython's free lists (80)


def calibrate(rec: Any, n: int = 16, pairs: int = 31) -> float:
    """Nanoseconds the callback adds to one collection as CPython invokes it (its info
    dict, the call, the body), >= 0: ``pairs`` pairs of ``n`` young collections, one
    round without the callback and one with it (the order alternating), each round's
    figure its median collection; the median of the pairs' differences. Its records go to
    a scratch position.

    As in a program, not in a tight loop of ``gc.collect(0)``, where the callback costs
    0.6x what it costs inside an allocating workload (bench/README.md). In a program a
    collection comes after the program ran, which evicted the collector's and the
    callback's code and data from the caches; and it comes when container allocations
    outran deallocations, so CPython's dict and list free lists are empty and the info
    dict CPython builds for each callback is a fresh allocation. So before each collection
    ``DRAIN`` dicts and lists are made and held across it, and a buffer of ``EVICT_BYTES``
    is walked a cache line at a time; each collection is timed on its own in this thread's
    CPU time, the preparation outside the timed span (the clock's own cost cancels in the
    difference). Automatic collection is off meanwhile (``gc.collect`` still collects), so
    another thread's allocations pile up in the young generation while it holds the GIL,
    and the first collection after a thread switch walks them all: the rounds' medians
    leave such collections out (their sums gave 0 in a test process beside an allocating
    thread).

    Robust where a best-of-rounds comparison was not: a pair counts only if each of its
    rounds made exactly ``n`` collections. While another thread is inside a collection
    (waiting for the GIL in a ``gc.callbacks`` entry, say), ``gc.collect()`` returns at once
    without collecting, so such a round measures nothing; a round in which another thread
    collected is set aside too. Thread CPU time does not count the time other threads or
    processes held the CPU. At most ``3 * pairs`` pairs are tried (31: 40-60 ms).

    The callback never costs nothing, so a calibration that measured nothing (no whole
    pair, or a median difference of 0 or less, both seen on a loaded CI machine beside an
    allocating thread) is made again, at most :data:`ATTEMPTS` times in all."""
    got = 0.0
    for _ in range(ATTEMPTS):
        if (got := _calibrated(rec, n, pairs)) > 0:
            break
    return got


ATTEMPTS = 3  # calibrations made at most, while one measures nothing


def _calibrated(rec: Any, n: int, pairs: int) -> float:
    """One calibration (:func:`calibrate`'s), >= 0."""
    saved_current, saved_pos = rec.current, rec.pos
    rec.current = Chunks.new()
    lines = memoryview(bytearray(EVICT_BYTES))[::LINE]
    diffs: list[float] = []
    enabled = gc.isenabled()
    gc.disable()  # the held containers must not trigger collections of their own
    try:
        _calibrate_pairs(rec, n, pairs, lines, diffs)
    finally:
        if enabled:
            gc.enable()
        rec.current, rec.pos = saved_current, saved_pos
    if not diffs:
        return 0.0
    diffs.sort()
    return max(0.0, diffs[len(diffs) // 2])


def _calibrate_pairs(rec: Any, n: int, pairs: int, lines: memoryview,
                     diffs: list[float]) -> None:
    collect, cbs, cb, clock = gc.collect, gc.callbacks, rec.callback, time.thread_time_ns
    stats = gc.get_stats
    for r in range(3 * pairs):
        if len(diffs) == pairs:
            break
        took = {False: 0, True: 0}
        whole = True
        for on in ((False, True) if r % 2 == 0 else (True, False)):
            if on:
                cbs.append(cb)
            rec.pos = 0
            before = stats()[0]["collections"]
            times = []
            for _ in range(n):
                held = [{} for _ in range(DRAIN)], [[] for _ in range(DRAIN)]
                lines.tobytes()  # reads every line of the buffer
                t = clock()
                collect(0)
                times.append(clock() - t)
                del held
            times.sort()
            took[on] = times[n // 2]
            whole = whole and stats()[0]["collections"] - before == n
            if on:
                cbs.remove(cb)
            rec.chunks.full.clear()
        if whole:
            diffs.append(took[True] - took[False])
        else:
            time.sleep(0.001)  # let the thread inside a collection finish it
