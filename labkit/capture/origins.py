"""Where threads and file descriptors come from: Python's answer to Go's "created by".

Started by the in-process agent (:mod:`labkit.capture.bootstrap`), this module wraps the
few calls that create a thread or a descriptor and remembers the call stack of each:

* ``threading.Thread.start``: every thread started, with its name and creation stack;
* ``asyncio``'s ``BaseEventLoop.create_task`` (which ``asyncio.create_task``,
  ``ensure_future``, ``gather`` and task groups all go through), wrapped when asyncio is
  first imported: every task created, named by its coroutine, with its creation stack;
* ``open``/``io.open``, ``os.open``, ``os.pipe``, ``socket.socket()`` (``accept`` and
  ``socketpair`` included): the stack that last opened each descriptor number.

:meth:`Origins.write` (at the end of the run) lists the threads still alive, the tasks
not yet done and the descriptors still open, each with its creation stack, into
``origins.json``; and, like a high-water mark, the same lists at the moment the most
descriptors (the most threads, the most pending tasks) were open, as seen by
:meth:`Origins.sample`, which the GC tracer's sampler thread calls about every 0.25 s (a
leak that is cleaned up before exit still shows there). A descriptor
number reused later belongs to its latest opener, so what is reported for an open fd is the
code that opened the file now behind it. Descriptors that existed before the program ran,
or that were opened by calls not wrapped here (C extensions, ``os.dup``), are listed with
an empty stack.

Stacks are lists of ``[file, line, function]``, innermost first, at most :data:`DEPTH`
deep; identical stacks are stored once. Recording stops in a forked child (the parent's
record is the run's). Standard library only: it runs inside the program's interpreter.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib.abc
import io
import json
import os
import socket
import sys
import threading
import time
import weakref
from typing import Any

ORIGINS_FILE = "origins.json"
DEPTH = 24
_SELF = os.path.abspath(__file__)


def _open_fds() -> list[int]:
    """The descriptors open now. Listing ``/proc/self/fd`` takes a descriptor itself, which
    a process at its limit does not have (the fd-leak case), so then each number up to the
    limit is probed with ``fstat``, which takes none."""
    try:
        return sorted(int(x) for x in os.listdir("/proc/self/fd") if x.isdigit())
    except OSError:
        pass
    import resource

    limit = min(resource.getrlimit(resource.RLIMIT_NOFILE)[0], 1 << 16)
    found = []
    for fd in range(limit):
        try:
            os.fstat(fd)
        except OSError:
            continue
        found.append(fd)
    return found


class _AfterImport(importlib.abc.MetaPathFinder):
    """A meta path entry that calls ``hook(module)`` right after ``name`` is first
    executed, so a module is wrapped without being imported before the program does."""

    def __init__(self, name: str, hook: Any) -> None:
        self.name, self.hook, self._busy = name, hook, False

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.name or self._busy:
            return None
        self._busy = True
        try:
            spec = next((s for f in sys.meta_path if f is not self and hasattr(f, "find_spec")
                         and (s := f.find_spec(fullname, path, target)) is not None), None)
        finally:
            self._busy = False
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run, hook = loader.exec_module, self.hook

        def exec_module(module: Any) -> None:
            run(module)
            with contextlib.suppress(Exception):  # never break the program's import
                hook(module)

        loader.exec_module = exec_module
        return spec


def _coroutine_name(task: Any) -> str:
    coro = task.get_coro() if hasattr(task, "get_coro") else None
    return str(getattr(coro, "__qualname__", None) or task.get_name())


class Origins:
    """Records creation stacks while installed; see the module docstring."""

    def __init__(self, own_dir: str, ignore_fds: tuple[int, ...] = ()) -> None:
        self._pid = 0
        self._stacks: dict[tuple, int] = {}
        self._threads: list[tuple[int, weakref.ref, str, int]] = []  # t_ns, thread, name, stack
        self._tasks: list[tuple[int, weakref.ref, str, int]] = []  # t_ns, task, coroutine, stack
        self._fd_owner: dict[int, int] = {}
        self._own_dir = os.path.abspath(own_dir) + os.sep  # labkit's files: never reported
        self._ignore = set(ignore_fds)
        self._saved: list[tuple[Any, str, Any]] = []
        self._lock = threading.Lock()
        self._peak_fds: tuple[int, list[dict[str, Any]]] = (0, [])
        self._peak_threads: tuple[int, list[dict[str, Any]]] = (0, [])
        self._peak_tasks: tuple[int, list[dict[str, Any]]] = (0, [])
        self._finder: _AfterImport | None = None

    # -- recording ------------------------------------------------------------------------
    def _stack(self) -> int:
        frames = []
        f: Any = sys._getframe(1)
        while f is not None and len(frames) < DEPTH:
            code = f.f_code
            if code.co_filename != _SELF:
                frames.append((code.co_filename, f.f_lineno, code.co_name))
            f = f.f_back
        key = tuple(frames)
        with self._lock:
            return self._stacks.setdefault(key, len(self._stacks))

    def _fd(self, fd: int) -> None:
        if os.getpid() == self._pid and isinstance(fd, int) and fd >= 0:
            self._fd_owner[fd] = self._stack()

    def install(self) -> None:
        """Wrap the creating calls (in this process only)."""
        self._pid = os.getpid()
        rec = self

        start = threading.Thread.start

        def start_wrapper(thread: threading.Thread) -> None:
            stack = rec._stack() if os.getpid() == rec._pid else -1
            start(thread)
            if stack >= 0:
                with rec._lock:
                    rec._threads.append((time.perf_counter_ns(), weakref.ref(thread),
                                         thread.name, stack))

        real_open = io.open

        def open_wrapper(*args: Any, **kw: Any) -> Any:
            f = real_open(*args, **kw)
            with contextlib.suppress(AttributeError, OSError, ValueError):
                rec._fd(f.fileno())
            return f

        os_open = os.open

        def os_open_wrapper(*args: Any, **kw: Any) -> int:
            fd = os_open(*args, **kw)
            rec._fd(fd)
            return fd

        os_pipe = os.pipe

        def pipe_wrapper() -> tuple[int, int]:
            r, w = os_pipe()
            rec._fd(r)
            rec._fd(w)
            return r, w

        sock_init = socket.socket.__init__

        def socket_init_wrapper(s: socket.socket, *args: Any, **kw: Any) -> None:
            sock_init(s, *args, **kw)
            rec._fd(s.fileno())

        if "asyncio.base_events" in sys.modules:
            self._wrap_asyncio(sys.modules["asyncio.base_events"])
        else:
            self._finder = _AfterImport("asyncio.base_events", self._wrap_asyncio)
            sys.meta_path.insert(0, self._finder)
        for owner, name, new in ((threading.Thread, "start", start_wrapper),
                                 (io, "open", open_wrapper), (builtins, "open", open_wrapper),
                                 (os, "open", os_open_wrapper), (os, "pipe", pipe_wrapper),
                                 (socket.socket, "__init__", socket_init_wrapper)):
            self._saved.append((owner, name, getattr(owner, name)))
            setattr(owner, name, new)

    def _wrap_asyncio(self, base_events: Any) -> None:
        rec = self
        loop_class = base_events.BaseEventLoop
        create_task = loop_class.create_task

        def create_task_wrapper(loop: Any, coro: Any, *args: Any, **kw: Any) -> Any:
            task = create_task(loop, coro, *args, **kw)
            if os.getpid() == rec._pid:
                with contextlib.suppress(TypeError):  # a task class without weakrefs
                    entry = (time.perf_counter_ns(), weakref.ref(task), _coroutine_name(task),
                             rec._stack())
                    with rec._lock:
                        rec._tasks.append(entry)
            return task

        self._saved.append((loop_class, "create_task", create_task))
        loop_class.create_task = create_task_wrapper

    def uninstall(self) -> None:
        """Put the original calls back."""
        if self._finder is not None:
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(self._finder)
            self._finder = None
        for owner, name, old in reversed(self._saved):
            setattr(owner, name, old)
        self._saved.clear()

    # -- the record -----------------------------------------------------------------------
    def sample(self) -> None:
        """Keep the descriptors (threads) open now if there are more than ever before."""
        if os.getpid() != self._pid:
            return
        n = len(_open_fds())
        if n > self._peak_fds[0]:
            self._peak_fds = (n, self._fds())
        alive = threading.active_count()
        if alive > self._peak_threads[0]:
            self._peak_threads = (alive, self._thread_rows())
        pending = self._task_rows()
        if len(pending) > self._peak_tasks[0]:
            self._peak_tasks = (len(pending), pending)
        # only live threads (pending tasks) are ever reported: forget the ended ones, so a
        # program that starts millions of short ones keeps these lists as short as its live set
        with self._lock:
            self._threads = [t for t in self._threads
                             if t[1]() is not None and t[1]().is_alive()]
            self._tasks = [t for t in self._tasks if t[1]() is not None and not t[1]().done()]

    def _thread_rows(self) -> list[dict[str, Any]]:
        threads = []
        for t_ns, ref, name, stack in self._threads:
            thread = ref()
            threads.append({"t_ns": t_ns, "name": name, "stack": stack,
                            "alive": thread is not None and thread.is_alive()})
        return threads

    def _task_rows(self) -> list[dict[str, Any]]:
        with self._lock:
            tasks = list(self._tasks)
        rows = []
        for t_ns, ref, name, stack in tasks:
            task = ref()
            if task is not None and not task.done():
                rows.append({"t_ns": t_ns, "name": name, "stack": stack, "alive": True})
        return rows

    def _fds(self) -> list[dict[str, Any]]:
        fds = []
        for n in _open_fds():
            if n in self._ignore:
                continue
            try:
                target = os.readlink(f"/proc/self/fd/{n}")
            except OSError:
                continue  # the listing's own descriptor, already closed
            if target.startswith(self._own_dir):
                continue
            fds.append({"fd": n, "target": target, "stack": self._fd_owner.get(n, -1)})
        return fds

    def snapshot(self) -> dict[str, Any]:
        """Threads alive and descriptors open now (and at their peaks), each with its
        creation stack."""
        threads, fds, tasks = self._thread_rows(), self._fds(), self._task_rows()
        peak_fds = self._peak_fds[1] if len(self._peak_fds[1]) > len(fds) else fds
        alive = sum(t["alive"] for t in threads)
        peak_threads = self._peak_threads[1] if self._peak_threads[0] > alive + 1 else threads
        with self._lock:
            by_id = sorted(self._stacks.items(), key=lambda kv: kv[1])
        peak_tasks = self._peak_tasks[1] if self._peak_tasks[0] > len(tasks) else tasks
        return {"pid": os.getpid(), "threads": threads, "fds": fds, "tasks": tasks,
                "threads_at_peak": peak_threads, "fds_at_peak": peak_fds,
                "tasks_at_peak": peak_tasks,
                "stacks": [[list(fr) for fr in key] for key, _ in by_id]}

    def write(self, out_dir: str) -> None:
        """Write :meth:`snapshot` to ``origins.json`` (atomically; owner process only)."""
        if os.getpid() != self._pid:
            return
        data = self.snapshot()
        self.uninstall()
        path = os.path.join(out_dir, ORIGINS_FILE)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
