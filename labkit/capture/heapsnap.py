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
from itertools import chain, filterfalse
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


class _TypeIndex(dict[type, int]):
    """Type -> its index in ``names``; a new type is numbered on its first lookup."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def __missing__(self, t: type) -> int:
        self[t] = len(self.names)
        self.names.append(_type_name(t))
        return self[t]


class _Writer:
    """One block of objects at a time: memory stays bounded whatever the heap's size."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.types = _TypeIndex()
        self.objects = self.edges = 0

    def walk(self, objs: list[Any]) -> None:
        """Write every object of ``objs`` and the untracked objects they reach, each once.

        This loop is the program's pause, so each block's columns are built by C-level
        passes (``map`` of ``id``, ``type``, ``gc.get_referents``...) rather than a Python
        step per object; a block's untracked referents are the next block, until none is new.
        """
        seen: set[int] = set()  # untracked objects already written
        for start in range(0, len(objs), BLOCK):
            batch = objs[start:start + BLOCK]
            while batch:
                referents = list(map(gc.get_referents, batch))
                self._block(batch, referents)
                flat = list(filterfalse(gc.is_tracked, chain.from_iterable(referents)))
                by_id = dict(zip(map(id, flat), flat, strict=False))
                new = by_id.keys() - seen
                seen |= new
                batch = list(map(by_id.__getitem__, new))

    def _block(self, batch: list[Any], referents: list[list[Any]]) -> None:
        types = list(map(type, batch))
        tix = array("I", map(self.types.__getitem__, types))
        try:
            sizes = array("Q", map(sys.getsizeof, batch))
        except Exception:  # a class's __sizeof__ may raise: that object's size is 0
            sizes = array("Q", map(_size_or_zero, batch))
        nref = array("I", map(len, referents))
        lens = array("I", [min(len(o), 0xFFFFFFFF) if t in _SIZED else 0
                           for o, t in zip(batch, types, strict=True)])
        refs = array("Q", map(id, chain.from_iterable(referents)))
        self.f.write(b"O" + struct.pack("=II", len(batch), len(refs)))
        for col in (array("Q", map(id, batch)), tix, sizes, lens, nref, refs):
            col.tofile(self.f)
        self.objects += len(batch)
        self.edges += len(refs)


def _size_or_zero(o: Any) -> int:
    try:
        return sys.getsizeof(o, 0)
    except Exception:
        return 0


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
        with open(tmp, "wb", buffering=1 << 20) as f:
            hdr = {"format": "labkit heap snapshot", "version": VERSION,
                   "byteorder": sys.byteorder}
            f.write(MAGIC)
            _chunk(f, b"H", hdr)
            w = _Writer(f)
            w.walk(objs)
            names, describe, roots = _names_and_roots(program_globals, objs)
            del objs
            _chunk(f, b"J", {"types": w.types.names, "names": names, "describe": describe,
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
