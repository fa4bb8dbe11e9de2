"""In-process GC tracer: every collection through ``gc.callbacks``, plus heap samples.

Contract:

* The callback (:mod:`labkit.capture.gccallback`) takes no lock, does no I/O and keeps
  no container objects: one record into a preallocated chunk a collection, written by a
  C function where ``_gcevents`` is built for this interpreter, else by Python
  (``gctrace.json``: ``callback_kind``).
* A background thread (``labkit-gctrace``) samples heap indicators every ``interval_s``
  (>= 10 ms) into a preallocated array, and every 0.1 s appends those samples to
  ``heap.csv`` and the recorded chunks to ``gc_events.bin`` as raw int64 records: it never
  wakes per collection and builds no per-event Python objects (the drain does not feed
  the collector); its reads and writes keep the GIL (:mod:`labkit.capture.gcsys`). Where
  the compiled module is built, its loop runs in C (``_gcevents.sample_until``): it
  sleeps and reads RSS with the GIL released, holds the GIL only to read the interpreter's
  figures, and runs Python once a drain. Either loop sleeps on a pipe that stop and pause
  write to, so it wakes at once. With
  ``echo`` it prints one line per collection to stderr, like Go's ``GODEBUG=gctrace=1``
  (the one per-event cost, opt-in). Its thread id tells the collections it triggers apart.
* ``stop()`` drains everything and writes ``gctrace.json`` (clock origin, thresholds,
  interpreter, and what the tracer cost: the callback as CPython invokes it, calibrated on
  real collections at start, times the events; plus the sampler thread's CPU time and the
  final drain). ``pause()``/``resume()`` detach it for a while (a scenario measuring its
  own work without the tracer); ``active()`` is the tracer started in this process.
* The tracer belongs to the process that started it. In a forked child it detaches at
  once (``os.register_at_fork``): the callback is removed and the child closes its copies of
  the output descriptors without writing, so a child can never add to the parent's run.
  The files are unbuffered for the same reason: no parent data waits in a buffer that a
  child could flush a second time.

This module imports only the standard library: it runs inside the traced interpreter,
which need not have labkit's dependencies. The child-side bootstrap that starts it is
:mod:`labkit.capture.bootstrap`.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import io
import json
import os
import select
import sys
import sysconfig
import threading
import time
from array import array
from types import ModuleType
from typing import Any, TextIO

EVENTS_FILE = "gc_events.bin"
EVENTS_MAGIC = b"LKGCEV01"  # then int64 records of EVENT_FIELDS, native little-endian
HEAP_FILE = "heap.csv"
META_FILE = "gctrace.json"
EVENT_FIELDS = (
    "t_start_ns", "t_stop_ns", "generation", "collected", "uncollectable",
    "thread_id", "count0", "count1", "count2",
)
HEAP_COLUMNS = ("t_ns", "rss_bytes", "allocated_blocks", "count0", "count1", "count2")
TRACEMALLOC_COLUMNS = ("traced_bytes", "traced_peak_bytes")
FLOOD_PER_S = 10_000
MIN_INTERVAL_S = 0.010



def _sibling(name: str) -> ModuleType:
    """``NAME.py`` beside this file, by path (labkit need not be importable here)."""
    key = f"_labkit_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            key, os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py"))
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[key] = mod
        spec.loader.exec_module(mod)
    return sys.modules[key]


_cb = _sibling("gccallback")
_sys = _sibling("gcsys")
_STRIDE, _CHUNK = _cb.STRIDE, _cb.CHUNK  # a record's position in the file is its sequence number
_SAMPLE_FIELDS = 8  # HEAP_COLUMNS + TRACEMALLOC_COLUMNS
_ACTIVE: list[GCTracer] = []


def active() -> GCTracer | None:
    """The tracer running in this process, if any."""
    for t in _ACTIVE:
        if t.owned:
            return t
    return None


class GCTracer:
    """Records every collection of this interpreter; see the module docstring for the contract."""

    def __init__(
        self,
        out_dir: str,
        *,
        interval_s: float = 0.02,
        echo: TextIO | None = None,
        tracemalloc: bool = False,
        on_tick: Any = None,
    ) -> None:
        if interval_s < MIN_INTERVAL_S:
            raise ValueError(f"interval_s must be >= {MIN_INTERVAL_S}")
        self.out_dir = out_dir
        self.interval_s = interval_s
        self.echo = echo
        self.tracemalloc = tracemalloc
        self.on_tick = on_tick  # called from the sampler thread about every 0.25 s
        self._chunks = _cb.Chunks()
        self._io: Any = None  # gcsys.HeldCalls, made at start
        self._rec = _cb.make_recorder(self._chunks)
        self._callback = self._rec.callback
        self._stop = threading.Event()
        self._wake_r = self._wake_w = -1  # the sampler sleeps on it; stop and pause write
        self._native_sampler = self._compiled_sampler()
        self._active = threading.Event()  # cleared while paused
        self._active.set()
        self._thread: threading.Thread | None = None
        self._events_fh: io.FileIO | None = None
        self._heap_fh: io.FileIO | None = None
        self._thread_id = self._pid = self._forks = 0
        self._statm_fd = -1
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._seq = self._gc_ns = self._last_rss = self._max_per_s = self._done = 0
        self._last_drain_ns = 0
        self._flood_warned = False
        self._samples = array("q", bytes(8 * _SAMPLE_FIELDS * 64))  # drained with the events
        self._nsamples = 0
        # the sampler thread's CPU time (its on_tick excluded); stop()'s final drain
        self._sampler_ns = self._drain_ns = self._paused_ns = self._paused_at = 0
        self.t0_ns, self.per_event_ns = 0, 0.0

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Calibrate, open the output files, install the callback and start the sampler."""
        self.out_dir = os.path.abspath(self.out_dir)  # the program may chdir
        os.makedirs(self.out_dir, exist_ok=True)
        self.per_event_ns = _cb.calibrate(self._rec)
        self._io = _sys.HeldCalls()
        self._pid = os.getpid()
        self._wake_r, self._wake_w = os.pipe()
        os.register_at_fork(before=self._count_fork, after_in_child=self._detach_in_child)
        self._events_fh = io.FileIO(os.path.join(self.out_dir, EVENTS_FILE), "w")
        self._io.write_all(self._events_fh.fileno(), EVENTS_MAGIC)
        self._heap_fh = io.FileIO(os.path.join(self.out_dir, HEAP_FILE), "w")
        cols = HEAP_COLUMNS + (TRACEMALLOC_COLUMNS if self.tracemalloc else ())
        self._io.write_all(self._heap_fh.fileno(), (",".join(cols) + "\n").encode())
        try:
            self._statm_fd = os.open("/proc/self/statm", os.O_RDONLY)
        except OSError:
            self._statm_fd = -1
        if self.tracemalloc:
            import tracemalloc

            tracemalloc.start()
        self._write_meta(finished=False)
        self.t0_ns = self._last_drain_ns = time.perf_counter_ns()
        self._sample()
        gc.callbacks.append(self._callback)
        _ACTIVE.append(self)
        self._thread = threading.Thread(target=self._run, name="labkit-gctrace", daemon=True)
        self._thread.start()

    def pause(self) -> None:
        """Detach the callback and idle the sampler until :meth:`resume` (collections in
        between are not recorded: the program runs as if untraced)."""
        if self.owned and self._active.is_set() and not self._stop.is_set():
            gc.callbacks.remove(self._callback)
            self._active.clear()
            self._paused_at = time.perf_counter_ns()
            self._poke()

    def resume(self) -> None:
        """Undo :meth:`pause`."""
        if self.owned and not self._active.is_set() and not self._stop.is_set():
            self._paused_ns += time.perf_counter_ns() - self._paused_at
            gc.callbacks.append(self._callback)
            self._active.set()

    def _count_fork(self) -> None:
        if self.owned:
            self._forks += 1

    def _detach_in_child(self) -> None:
        """After ``fork``, in the child: stop tracing and let go of the parent's files."""
        if self._pid == 0 or os.getpid() == self._pid:
            return
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)
        for fh in (self._events_fh, self._heap_fh):
            if fh is not None:
                fh.close()  # unbuffered: closing writes nothing
        if self._statm_fd >= 0:
            os.close(self._statm_fd)
        self._close_pipe()
        self._events_fh = self._heap_fh = None
        self._statm_fd = -1
        self.echo = None
        self._stop.set()
        self._active.set()

    @property
    def statm_fd(self) -> int:
        """The descriptor the tracer reads RSS through (-1 when none)."""
        return self._statm_fd

    @property
    def owned(self) -> bool:
        """Whether this process is the one the tracer was started in."""
        return self._pid == os.getpid()

    def stop(self) -> None:
        """Remove the callback, drain every event, write the meta file. Idempotent; does
        nothing in a forked child."""
        if not self.owned:
            self._detach_in_child()
            return
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)
        if self in _ACTIVE:
            _ACTIVE.remove(self)
        self._stop.set()
        self._poke()
        self._active.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self._events_fh is None:
            return
        t = time.perf_counter_ns()
        self._sample()
        self._drain()
        self._drain_ns = time.perf_counter_ns() - t
        self._write_meta(finished=True)
        for fh in (self._events_fh, self._heap_fh):
            if fh is not None:
                fh.close()
        self._events_fh = self._heap_fh = None
        if self._statm_fd >= 0:
            os.close(self._statm_fd)
            self._statm_fd = -1

    def _poke(self) -> None:
        """Wake the sampler (stop or pause)."""
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):  # full: it is awake already
                os.write(self._wake_w, b"x")

    def _woken(self) -> bool:
        """Empty the wake-up pipe after a poke; False if it was closed under the sampler
        (stop() gave up waiting for it)."""
        try:
            os.read(self._wake_r, 64)
        except OSError:
            return False
        return True

    def _close_pipe(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1

    def _compiled_sampler(self) -> Any:
        """``_gcevents.sample_until`` where the compiled recorder runs and the samples need
        nothing else (no tracemalloc figures), else None (the sampler loop in Python)."""
        if self._rec.kind != "c" or self.tracemalloc:
            return None
        native = _cb.load_native()
        fn = getattr(native, "sample_until", None)
        return fn if getattr(native, "SAMPLE_FIELDS", None) == _SAMPLE_FIELDS else None

    # -- sampling and draining (background thread only, or after stop) --------------------
    def _run(self) -> None:
        self._thread_id = threading.get_ident()
        if self._native_sampler is not None:
            self._run_compiled()
            return
        ticks = 0
        flush_every = max(1, round(0.1 / self.interval_s))
        tick_every = max(1, round(0.25 / self.interval_s))
        cpu, tick_ns = time.thread_time_ns, 0
        wait, wake, interval = select.select, [self._wake_r], self.interval_s
        while not self._stop.is_set():
            if not self._active.is_set():
                self._drain()
                self._active.wait()
                continue
            if wait(wake, (), (), interval)[0]:
                if not self._woken():
                    return
                continue
            self._sample()
            ticks += 1
            if ticks % flush_every == 0:
                self._drain()
            if self.on_tick is not None and ticks % tick_every == 0:
                t = cpu()
                self.on_tick()
                tick_ns += cpu() - t
            self._sampler_ns = cpu() - tick_ns

    def _run_compiled(self) -> None:
        """The same loop with its sleeping and sampling in C: Python runs once a drain."""
        flush_every = max(1, round(0.1 / self.interval_s))
        tick_every = max(1, round(0.25 / self.interval_s))
        cpu, tick_ns, ticks = time.thread_time_ns, 0, 0
        sample, interval_ns = self._native_sampler, int(self.interval_s * 1e9)
        while not self._stop.is_set():
            if not self._active.is_set():
                self._drain()
                self._active.wait()
                continue
            if self._nsamples == 64:
                self._flush_samples()
            want = min(flush_every - ticks % flush_every, 64 - self._nsamples)
            if self.on_tick is not None:
                want = min(want, tick_every - ticks % tick_every)
            got, woken = sample(self._samples, self._nsamples, want, self._statm_fd,
                                self._wake_r, self._page, interval_ns)
            self._nsamples += got
            if got:
                self._last_rss = self._samples[(self._nsamples - 1) * _SAMPLE_FIELDS + 1]
            if woken:
                if not self._woken():
                    return
                continue
            ticks += got
            if ticks % flush_every == 0:
                self._drain()
            if self.on_tick is not None and ticks % tick_every == 0:
                t = cpu()
                self.on_tick()
                tick_ns += cpu() - t
            self._sampler_ns = cpu() - tick_ns

    def _rss(self) -> int:
        if self._statm_fd < 0:
            return 0
        try:
            return int(self._io.pread(self._statm_fd, 64).split()[1]) * self._page
        except (OSError, ValueError, IndexError):
            return 0

    def _sample(self) -> None:
        if self._heap_fh is None:
            return
        if self._nsamples == 64:
            self._flush_samples()
        b = self._nsamples * _SAMPLE_FIELDS
        buf = self._samples
        buf[b] = time.perf_counter_ns()
        buf[b + 1] = self._last_rss = self._rss()
        buf[b + 2] = sys.getallocatedblocks()
        buf[b + 3], buf[b + 4], buf[b + 5] = gc.get_count()
        if self.tracemalloc:
            import tracemalloc

            buf[b + 6], buf[b + 7] = tracemalloc.get_traced_memory()
        self._nsamples += 1

    def _flush_samples(self) -> None:
        fh, n = self._heap_fh, self._nsamples
        if fh is None or n == 0:
            return
        width = len(HEAP_COLUMNS) + (len(TRACEMALLOC_COLUMNS) if self.tracemalloc else 0)
        buf = self._samples
        rows = [",".join(map(str, buf[i * _SAMPLE_FIELDS:i * _SAMPLE_FIELDS + width])) + "\n"
                for i in range(n)]
        self._nsamples = 0
        self._io.write_all(fh.fileno(), bytearray("".join(rows).encode()))  # writable: GIL kept

    def _drain(self) -> None:
        self._flush_samples()
        # Chunks leave `full` only here, so the oldest one may be partly emitted already
        # (`_done` entries); entries below `pos` are complete and never rewritten until
        # their chunk is recycled below.
        ch = self._chunks
        while True:
            while ch.full:
                buf = ch.full.pop(0)
                self._emit(buf, self._done, _CHUNK)
                self._done = 0
                ch.spares.append(buf)
            buf, n = self._rec.current, self._rec.pos
            if not ch.full:
                break
        if n > self._done:
            self._emit(buf, self._done, n)
            self._done = n

    def _emit(self, buf: array, start: int, stop: int) -> None:
        fh = self._events_fh
        if fh is not None:
            self._io.write_all(fh.fileno(), memoryview(buf)[start * _STRIDE:stop * _STRIDE])
        first = self._seq
        self._seq += stop - start
        self._track_rate(stop - start)
        if self.echo is not None:
            self._echo(buf, start, stop, first)

    def _echo(self, buf: array, start: int, stop: int, seq: int) -> None:
        echo = self.echo
        assert echo is not None
        for i in range(start, stop):
            b = i * _STRIDE
            t_start, t_stop, gen, coll, uncoll = buf[b], buf[b + 1], buf[b + 2], buf[b + 3], \
                buf[b + 4]
            pause = t_stop - t_start
            self._gc_ns += pause
            since = (t_stop - self.t0_ns) / 1e9
            share = 100.0 * self._gc_ns / max(1, t_stop - self.t0_ns)
            echo.write(
                f"gc {seq} @{since:.3f}s {share:.2f}%: gen{gen} {pause / 1e6:.3f} ms, "
                f"{coll}/{uncoll} collected/uncollectable, young {buf[b + 6]}, "
                f"rss {self._last_rss / 1048576:.1f} MiB\n"
            )
            seq += 1
        echo.flush()

    def _track_rate(self, n: int) -> None:
        """Collections a second over the span since the last drain (about 0.1 s)."""
        now = time.perf_counter_ns()
        span = now - self._last_drain_ns
        self._last_drain_ns = now
        if n == 0 or span < 50_000_000:
            return
        rate = int(n * 1e9 / span)
        if rate > self._max_per_s:
            self._max_per_s = rate
        if rate > FLOOD_PER_S and not self._flood_warned and self.echo is not None:
            self._flood_warned = True
            self.echo.write(
                f"labkit gctrace: warning: more than {FLOOD_PER_S:,} collections a second; "
                "the tracer's own cost is now visible (see the summary)\n"
            )

    # -- meta -----------------------------------------------------------------------------
    def _write_meta(self, *, finished: bool) -> None:
        events = self._seq
        meta = {
            "finished": finished,
            "t0_ns": self.t0_ns,
            "t_end_ns": time.perf_counter_ns() if finished else None,
            "interval_s": self.interval_s,
            "events": events,
            "tracer_thread_id": self._thread_id,
            "max_collections_per_s_approx": self._max_per_s,
            "per_event_ns": round(self.per_event_ns, 1),  # callback, CPython's invocation too
            "callback_ns": round(events * self.per_event_ns),
            "sampler_ns": self._sampler_ns,
            "drain_ns": self._drain_ns,
            "overhead_ns": round(events * self.per_event_ns) + self._sampler_ns + self._drain_ns,
            "paused_ns": self._paused_ns,
            "callback_chunk_grows": self._chunks.grown_in_callback,
            "callback_kind": self._rec.kind,  # "c" (compiled) or "python"
            "forks": self._forks,  # os.fork() calls in this process (its children untraced)
            "tracemalloc": self.tracemalloc,
            "sampler_holds_gil": bool(self._io is not None and self._io.holds_gil),
            "python": interpreter_facts(),
        }
        path = os.path.join(self.out_dir, META_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=1)
        os.replace(tmp, path)


def interpreter_facts() -> dict[str, Any]:
    """The facts about this interpreter that a GC measurement depends on."""
    return {
        "version": sys.version.split()[0],
        "version_full": sys.version,
        "implementation": sys.implementation.name,
        "executable": sys.executable,
        "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        "gc_threshold": list(gc.get_threshold()),
        "gc_enabled": gc.isenabled(),
    }
