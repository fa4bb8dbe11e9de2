"""Process sampler: watch a pid from outside (RSS, threads, open fds, CPU%).

The Python stand-in for watching ``runtime.NumGoroutine()``. A daemon thread samples every
``interval_s`` into ``proc.csv`` (``t_ns`` on the same monotonic clock as the GC tracer), one
flushed line per sample, so a sampler cut short still leaves every sample it took. It stops
by itself when the process is gone.

Like a high-water mark, it also keeps the process's descriptor table as it was when the
most descriptors were open (read from ``/proc/PID/fd``, sockets resolved to their
endpoints through psutil) and, given ``fds_path`` (``proc_fds.json`` in a run),
writes it there when it stops: from outside, without the in-process agent, what kind of
descriptors leaked and to where.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

COLUMNS = ("t_ns", "rss_bytes", "threads", "fds", "cpu_percent", "children")


def _address(addr: tuple[str, int] | tuple[()], family: int) -> str:
    if not addr:  # not connected: listening, bound, or never connected
        return "[::]:0" if family == socket.AF_INET6 else "0.0.0.0:0"
    ip, port = addr
    return f"[{ip}]:{port}" if family == socket.AF_INET6 else f"{ip}:{port}"


def socket_endpoints(pid: int) -> dict[int, str]:
    """``{fd: "tcp 127.0.0.1:4711 -> 127.0.0.1:80 ESTABLISHED", ...}`` for ``pid``'s sockets
    (tcp and udp over v4 and v6 in every state psutil reports, unix sockets by path); empty
    when the process is gone or cannot be read."""
    try:
        conns = psutil.Process(pid).net_connections(kind="all")
    except (psutil.Error, OSError):
        return {}
    found: dict[int, str] = {}
    for c in conns:
        if c.fd < 0:
            continue
        if c.family == socket.AF_UNIX:
            found[c.fd] = f"unix {c.laddr or c.raddr or '(unnamed)'}"
            continue
        proto = "tcp" if c.type == socket.SOCK_STREAM else "udp"
        state = "" if c.status == psutil.CONN_NONE else c.status
        found[c.fd] = (f"{proto} {_address(c.laddr, c.family)} -> "
                       f"{_address(c.raddr, c.family)} {state}").rstrip()
    return found


def fd_table(pid: int) -> list[dict[str, object]]:
    """``pid``'s open descriptors: ``fd``, ``target`` (the ``/proc`` link) and, for a
    socket, ``endpoint``. Descriptors closed while the table is read are skipped."""
    base = f"/proc/{pid}/fd"
    rows: list[dict[str, object]] = []
    sockets: dict[str, str] | None = None
    for name in os.listdir(base):
        try:
            target = os.readlink(f"{base}/{name}")
        except OSError:
            continue
        row: dict[str, object] = {"fd": int(name), "target": target}
        if target.startswith("socket:["):
            sockets = socket_endpoints(pid) if sockets is None else sockets
            row["endpoint"] = sockets.get(int(name), "")
        rows.append(row)
    return sorted(rows, key=lambda r: r["fd"])


class ProcSampler:
    """Samples ``pid`` (and, summed in, its children when ``children=True``, or every pid
    that ``tree()`` names: the members of its process tree, orphans included)."""

    def __init__(
        self,
        pid: int,
        path: Path,
        *,
        interval_s: float = 0.1,
        children: bool = True,
        fds_path: Path | None = None,
        on_sample: Callable[[int], None] | None = None,
        tree: Callable[[], list[int]] | None = None,
    ) -> None:
        self.pid = pid
        self.path = Path(path)
        self.fds_path = fds_path
        self.interval_s = interval_s
        self.children = children
        self.on_sample = on_sample
        self.tree = tree
        self.samples = 0
        self.peak_rss = 0
        self.children_seen: set[int] = set()
        self._peak_fds: tuple[int, int, list[dict[str, object]]] = (0, 0, [])  # n, t_ns, table
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
        self._write_fd_table()

    def _keep_fd_table(self, proc: psutil.Process, t_ns: int) -> None:
        if self.fds_path is None:
            return
        try:
            n = proc.num_fds()
            if n > self._peak_fds[0]:
                self._peak_fds = (n, t_ns, fd_table(proc.pid))
        except (psutil.Error, OSError):
            pass

    def _write_fd_table(self) -> None:
        _, t_ns, table = self._peak_fds
        if not table or self.fds_path is None:
            return
        path = Path(self.fds_path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"pid": self.pid, "t_ns": t_ns, "fds": table}),
                       encoding="utf-8")
        os.replace(tmp, path)

    def _tree(self) -> list[psutil.Process]:
        assert self.tree is not None
        kids = []
        for pid in self.tree():
            if pid != self.pid:
                with contextlib.suppress(psutil.Error):
                    kids.append(psutil.Process(pid))
        return kids

    def _sample(self, proc: psutil.Process, cpu: dict[int, psutil.Process]) -> tuple | None:
        """One row, or None once the watched process is gone (children may come and go)."""
        t = time.perf_counter_ns()
        try:
            kids = self._tree() if self.tree else (
                proc.children(recursive=True) if self.children else [])
        except psutil.Error:
            return None
        self.children_seen.update(k.pid for k in kids)
        self._keep_fd_table(proc, t)
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
