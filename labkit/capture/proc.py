"""Process sampler: watch a pid from outside (RSS, threads, open fds, CPU%).

The Python stand-in for watching ``runtime.NumGoroutine()``. A daemon thread samples every
``interval_s`` into ``proc.csv`` (``t_ns`` on the same monotonic clock as the GC tracer), one
flushed line per sample, so a sampler cut short still leaves every sample it took. It stops
by itself when the process is gone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

COLUMNS = ("t_ns", "rss_bytes", "threads", "fds", "cpu_percent", "children")


class ProcSampler:
    """Samples ``pid`` (and, summed in, its children when ``children=True``)."""

    def __init__(
        self,
        pid: int,
        path: Path,
        *,
        interval_s: float = 0.1,
        children: bool = True,
        on_sample: Callable[[int], None] | None = None,
    ) -> None:
        self.pid = pid
        self.path = Path(path)
        self.interval_s = interval_s
        self.children = children
        self.on_sample = on_sample
        self.samples = 0
        self.peak_rss = 0
        self.children_seen: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ProcSampler:
        """Start sampling in a daemon thread; returns self."""
        self._thread = threading.Thread(target=self._run, name="labkit-proc", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Take no more samples and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def manifest_extra(self) -> dict[str, int]:
        """For the manifest: how many distinct child processes the samples saw."""
        return {"children_seen": len(self.children_seen)}

    def _run(self) -> None:
        try:
            proc = psutil.Process(self.pid)
        except psutil.Error:
            return
        cpu: dict[int, psutil.Process] = {}
        with open(self.path, "w", encoding="ascii") as fh:
            fh.write(",".join(COLUMNS) + "\n")
            while True:
                row = self._sample(proc, cpu)
                if row is None:
                    break
                fh.write(",".join(map(str, row)) + "\n")
                fh.flush()
                self.samples += 1
                self.peak_rss = max(self.peak_rss, row[1])
                if self.on_sample is not None:
                    self.on_sample(row[1])
                if self._stop.wait(self.interval_s):
                    break

    def _sample(self, proc: psutil.Process, cpu: dict[int, psutil.Process]) -> tuple | None:
        """One row, or None once the watched process is gone (children may come and go)."""
        t = time.perf_counter_ns()
        try:
            kids = proc.children(recursive=True) if self.children else []
        except psutil.Error:
            return None
        self.children_seen.update(k.pid for k in kids)
        rss = threads = fds = 0
        pct = 0.0
        alive = 0
        for p in [proc, *kids]:
            p = cpu.setdefault(p.pid, p)  # cpu_percent() measures since the same object's last call
            try:
                with p.oneshot():
                    if p.status() == psutil.STATUS_ZOMBIE:
                        raise psutil.ZombieProcess(p.pid)
                    rss += p.memory_info().rss
                    threads += p.num_threads()
                    fds += p.num_fds()
                    pct += p.cpu_percent(None)
                alive += 1
            except psutil.Error:
                if p.pid == proc.pid:
                    return None
        return (t, rss, threads, fds, round(pct, 1), alive - 1)
