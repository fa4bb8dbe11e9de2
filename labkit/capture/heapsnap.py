"""The heap snapshot, written by the in-process agent: the object graph, streamed to a file.

Runs inside the traced interpreter with the standard library only. Objects are the
collector's (``gc.get_objects()``) plus every untracked object they reach (str, bytes,
int, untracked tuples and dicts). The collector is paused while the graph is walked; no
code of the program runs (sizes come from ``sys.getsizeof``, which a class may override:
its error is caught and the shallow size taken as 0).

Format (version 1, native byte order, named in the header), blocks after the magic::

    b"LKHEAPS\\n", then b"H" u32 n + JSON {"format", "version", "byteorder"}
    b"O" u32 n u32 m: u64 id[n], u32 type[n], u64 size[n], u32 length[n],
                      u32 nref[n], u64 referent[m]          (objects, 65,536 a block)
    b"J" u32 n + JSON {"types": [...], "names": [[holder, target, label]],
                       "describe": [[id, text]], "roots": [[label, id]]}
    b"E" u32 n + JSON {"objects", "edges", "pause_s", "pause_cpu_s", "when", "t_epoch_s"}

``length`` is ``len()`` of dicts, lists, sets and tuples (0 otherwise); ``names`` label
the edges a path shows by name (globals, class attributes, closure variables);
``describe`` says what functions, classes and modules are. A file without its ``E``
block is incomplete. The file is written beside its final name and renamed into place.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import struct
import sys
import threading
import time
from array import array
from collections.abc import Callable
from typing import Any, BinaryIO

WHEN = ("exit", "peak", "signal", "cap")
PEAK_STEP = 1.25  # at the peak: a new snapshot each time RSS passes the last one's x this
PEAK_MIN = 32 * 1024 * 1024  # ... from this RSS on
CAP_WAIT_S = 30.0  # at the cap: how long the snapshot may take before the kill
MAGIC = b"LKHEAPS\n"
VERSION = 1
SNAPSHOT_FILE = "heapsnap.bin"
BLOCK = 65536
_AGENT_FILES = ("bootstrap.py", "heapsnap.py", "gctrace.py", "origins.py")
_SIZED = (dict, list, set, frozenset, tuple)


def _chunk(f: BinaryIO, tag: bytes, data: Any) -> None:
    raw = json.dumps(data, separators=(",", ":"), default=str).encode()
    f.write(tag + struct.pack("=I", len(raw)) + raw)


def _type_name(t: type) -> str:
    mod = getattr(t, "__module__", "builtins")
    name = getattr(t, "__qualname__", t.__name__)
    return name if mod == "builtins" else f"{mod}.{name}"


def _is_agent(code: Any) -> bool:
    return os.path.basename(code.co_filename) in _AGENT_FILES and "labkit" in code.co_filename


class _Writer:
    """One block of objects at a time: memory stays bounded whatever the heap's size."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.types: dict[type, int] = {}
        self.type_names: list[str] = []
        self.objects = self.edges = 0
        self._reset()

    def _reset(self) -> None:
        self.ids, self.tix, self.sizes = array("Q"), array("I"), array("Q")
        self.lens, self.nref, self.refs = array("I"), array("I"), array("Q")

    def add(self, o: Any, referents: list[Any]) -> None:
        t = type(o)
        ti = self.types.get(t)
        if ti is None:
            ti = self.types[t] = len(self.type_names)
            self.type_names.append(_type_name(t))
        try:
            size = sys.getsizeof(o, 0)
        except Exception:
            size = 0
        self.ids.append(id(o))
        self.tix.append(ti)
        self.sizes.append(size)
        self.lens.append(min(len(o), 0xFFFFFFFF) if t in _SIZED else 0)
        self.nref.append(len(referents))
        self.refs.extend(map(id, referents))
        if len(self.ids) >= BLOCK:
            self.flush()

    def flush(self) -> None:
        n, m = len(self.ids), len(self.refs)
        if n == 0:
            return
        self.f.write(b"O" + struct.pack("=II", n, m))
        for a in (self.ids, self.tix, self.sizes, self.lens, self.nref, self.refs):
            a.tofile(self.f)
        self.objects += n
        self.edges += m
        self._reset()


def _names_and_roots(program_globals: dict[str, Any] | None, objs: list[Any]
                     ) -> tuple[list[Any], list[Any], list[Any]]:
    """Edge labels (globals, class attributes, closure variables), what functions, classes
    and modules are, and the roots, the program's own globals first."""
    names: list[Any] = []
    describe: list[Any] = []
    roots: list[Any] = []
    if program_globals is not None:
        file = program_globals.get("__file__")
        where = f" ({os.path.basename(file)})" if isinstance(file, str) else ""
        roots.append([f"module __main__{where}", id(program_globals)])
        names += [[id(program_globals), id(v), k] for k, v in program_globals.items()]
    for name, mod in list(sys.modules.items()):
        d = getattr(mod, "__dict__", None)
        if not isinstance(d, dict):
            continue
        if name == "__main__" and program_globals is not None and d is not program_globals:
            name = "__main__ of labkit's agent"
        roots.append([f"module {name}", id(mod)])
        describe.append([id(mod), f"module {name}"])
        names.append([id(mod), id(d), "__dict__"])
        names += [[id(d), id(v), k] for k, v in list(d.items()) if isinstance(k, str)]
    me = threading.current_thread()
    by_ident = {t.ident: t for t in threading.enumerate()}
    for tid, frame in sys._current_frames().items():
        thread = by_ident.get(tid)
        tname = thread.name if thread is not None else str(tid)
        f: Any = frame
        while f is not None:
            if not _is_agent(f.f_code) and not (thread is me and _is_runpy(f.f_code)):
                code = f.f_code
                roots.append([f"thread {tname}: frame {code.co_name} "
                              f"({os.path.basename(code.co_filename)}:{f.f_lineno})", id(f)])
            f = f.f_back
    roots += [[f"thread {t.name}", id(t)] for t in threading.enumerate()]
    roots += [["sys.modules", id(sys.modules)], ["gc.garbage", id(gc.garbage)]]
    for o in objs:
        if isinstance(o, type):
            qual = _type_name(o)
            roots.append([f"class {qual}", id(o)])
            describe.append([id(o), f"class {qual}"])
            tp_dict = next((r for r in gc.get_referents(o) if type(r) is dict), None)
            if tp_dict is not None:
                names.append([id(o), id(tp_dict), "__dict__"])
                names += [[id(tp_dict), id(v), f"{o.__name__}.{k}"]
                          for k, v in list(tp_dict.items()) if isinstance(k, str)]
        elif type(o).__name__ == "function":
            code = o.__code__
            describe.append([id(o), f"function {o.__qualname__} "
                             f"({os.path.basename(code.co_filename)}:{code.co_firstlineno})"])
            if o.__closure__:
                names.append([id(o), id(o.__closure__), "__closure__"])
                names += [[id(o.__closure__), id(c), f"closure variable {v}"]
                          for v, c in zip(code.co_freevars, o.__closure__, strict=False)]
    return names, describe, roots


def _is_runpy(code: Any) -> bool:
    return "runpy" in os.path.basename(code.co_filename) or code.co_filename.startswith(
        "<frozen runpy")


def write_snapshot(path: str, *, when: str, program_globals: dict[str, Any] | None = None
                   ) -> dict[str, Any]:
    """Write the heap's object graph to ``path`` (atomically); returns the ``E`` block's
    figures. The program's threads keep running, but the collector is off meanwhile."""
    t0, c0 = time.perf_counter(), time.process_time()
    enabled = gc.isenabled()
    gc.disable()
    tmp = f"{path}.partial-{os.getpid()}"
    try:
        objs = gc.get_objects()
        skip = {id(objs)}
        with open(tmp, "wb", buffering=1 << 20) as f:
            hdr = {"format": "labkit heap snapshot", "version": VERSION,
                   "byteorder": sys.byteorder}
            f.write(MAGIC)
            _chunk(f, b"H", hdr)
            w = _Writer(f)
            seen: set[int] = set()  # untracked objects already written
            get_referents, is_tracked = gc.get_referents, gc.is_tracked
            pending: list[Any] = []
            for o in objs:
                if id(o) in skip:
                    continue
                pending.append(o)  # then the untracked objects it reaches, depth first
                while pending:
                    u = pending.pop()
                    urefs = get_referents(u)
                    w.add(u, urefs)
                    for r in urefs:
                        if not is_tracked(r) and id(r) not in seen:
                            seen.add(id(r))
                            pending.append(r)
            w.flush()
            names, describe, roots = _names_and_roots(program_globals, objs)
            del objs, seen
            _chunk(f, b"J", {"types": w.type_names, "names": names, "describe": describe,
                             "roots": roots})
            stats = {"objects": w.objects, "edges": w.edges, "when": when,
                     "t_epoch_s": time.time(), "pause_s": round(time.perf_counter() - t0, 4),
                     "pause_cpu_s": round(time.process_time() - c0, 4)}
            _chunk(f, b"E", stats)
        os.replace(tmp, path)
        return stats
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if enabled:
            gc.enable()


def refusal(when: str | None, memory_cap: int | None) -> str | None:
    """Why ``--heap-snapshot=WHEN`` cannot be done (one line), or None."""
    if when is not None and when not in WHEN:
        return f"--heap-snapshot={when}: give one of {', '.join(WHEN)}"
    if when == "cap" and not memory_cap:
        return "--heap-snapshot=cap needs --memory-cap"
    return None


def backstop(memory_cap: int | None, when: str | None) -> int | None:
    """The cgroup's ``memory.max`` for a cap: the cap itself, but with a snapshot at the
    cap, 25% + 64 MiB above it, so that the kernel does not kill the program before
    labkit's sampler (which holds the cap itself) has asked for the snapshot."""
    if memory_cap is None or when != "cap":
        return memory_cap
    return memory_cap + memory_cap // 4 + 64 * 1024 * 1024


def hold_signal(when: str | None) -> None:
    """In the program's process before it execs: keep SIGUSR2 pending until the agent's
    handler is in place (it unblocks it), so one sent early is a snapshot a little late,
    never the program's death."""
    if when not in (None, "exit"):
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])


def ask(pid: int, path: os.PathLike[str] | str, *, wait_s: float,
        alive: Callable[[], bool]) -> bool:
    """From labkit's side: SIGUSR2 to the program (its agent snapshots the heap), then wait
    up to ``wait_s`` while ``alive()`` for a new file at ``path``; whether one came."""
    def stamp() -> int | None:
        try:
            return os.stat(path).st_mtime_ns
        except OSError:
            return None

    before = stamp()
    try:
        os.kill(pid, signal.SIGUSR2)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and alive():
        if stamp() != before:
            return True
        time.sleep(0.05)
    return stamp() != before
