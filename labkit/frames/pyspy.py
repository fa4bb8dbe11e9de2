"""py-spy files -> DataFrames: ``samples`` and ``functions`` (speedscope), ``threads`` (dump).

Stacks are written leaf first, ``function (file:line) < caller (file:line) < ...``; labkit's
own frames (the tracer, the bootstrap, the origins agent's wrappers, runpy) are removed.
"""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from labkit.errors import CorruptCaptureError, InputError
from labkit.frames.speedscope import line_number
from labkit.safefile import read_json
from labkit.stacks import AGENT_FILES

Frame = tuple[str, str, int]
SAMPLE_COLUMNS = ("thread_id", "thread_name", "function", "file", "line", "stack", "count",
                  "frames")
THREAD_COLUMNS = ("thread_id", "os_thread_id", "name", "idle", "owns_gil", "function", "file",
                  "line", "stack", "depth", "frames")


def _read_json(path: Path, what: str) -> Any:
    return read_json(path, what)


def stack_text(frames: list[Frame]) -> str:
    """Leaf-first text of a stack."""
    return " < ".join(f"{fn} ({_basename(f)}:{ln})" for fn, f, ln in frames)


@functools.lru_cache(maxsize=65536)
def _basename(file: str) -> str:
    return Path(file).name


def load_speedscope(path: Path | str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(samples, functions)`` from a py-spy speedscope file.

    ``samples``: one row per distinct (thread, stack): ``thread_id``, ``thread_name``, leaf
    ``function``/``file``/``line``, ``stack``, ``count``, ``frames`` (``(file, line,
    function)`` tuples, leaf first); largest first.
    ``functions``: ``function``, ``file``, ``self_count``, ``total_count``, ``self_share``,
    ``total_share`` (of all samples; total counts a function once per sample).
    """
    from labkit.frames.speedscope import read_stacks

    counts = read_stacks(Path(path), AGENT_FILES)
    rows = [(tid, tname, st[0][0], st[0][1], st[0][2], stack_text(list(st)), n,
             tuple((f, ln, fn) for fn, f, ln in st)) for (tid, tname, st), n in counts.items()]
    samples = pd.DataFrame.from_records(rows, columns=list(SAMPLE_COLUMNS))
    samples = samples.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)
    self_c: Counter = Counter()
    total_c: Counter = Counter()
    for (_tid, _tn, st), n in counts.items():
        self_c[(st[0][0], st[0][1])] += n
        for key in dict.fromkeys((fn, f) for fn, f, _ in st):  # in stack order: stable ties
            total_c[key] += n
    all_n = sum(counts.values()) or 1
    functions = pd.DataFrame(
        [(fn, f, self_c.get((fn, f), 0), t) for (fn, f), t in total_c.items()],
        columns=["function", "file", "self_count", "total_count"],
    )
    functions["self_share"] = functions["self_count"] / all_n
    functions["total_share"] = functions["total_count"] / all_n
    functions = functions.sort_values(["self_count", "total_count"], ascending=False,
                                      kind="stable").reset_index(drop=True)
    return samples, functions


def load_dump(path: Path | str) -> pd.DataFrame:
    """``threads`` from ``py-spy dump --json``: one row per thread, ``idle`` when not active."""
    doc = _read_json(Path(path), "py-spy dump")
    if not isinstance(doc, list) or not doc:
        raise CorruptCaptureError(
            f"py-spy dump {path} holds no threads (expected the list that `py-spy dump --json` "
            "prints); re-take the dump")
    from labkit.schemas import check

    check(doc, "pyspy_dump", path, "py-spy dump", "re-take it with `py-spy dump --json`")
    rows = []
    try:
        for t in doc:
            frames = [(str(f["name"]), str(f.get("filename") or ""),
                       line_number(f.get("line"))) for f in t["frames"]]
            own = [fr for fr in frames if not fr[1].endswith(AGENT_FILES)] or frames
            leaf = own[0] if own else ("<no python frames>", "", 0)
            rows.append((int(t["thread_id"]), int(t.get("os_thread_id") or 0),
                         t.get("thread_name") or "", not bool(t.get("active")),
                         bool(t.get("owns_gil")), leaf[0], leaf[1], leaf[2], stack_text(own),
                         len(own), tuple((f, ln, fn) for fn, f, ln in own)))
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        raise CorruptCaptureError(
            f"py-spy dump {path} is not `py-spy dump --json` output; re-take the dump"
        ) from None
    return pd.DataFrame.from_records(rows, columns=list(THREAD_COLUMNS))


class PySpyCapture:
    """A speedscope profile and/or a thread dump; frames are built on first use."""

    def __init__(self, speedscope: Path | str | None = None,
                 dump: Path | str | None = None) -> None:
        self.speedscope_path = Path(speedscope) if speedscope else None
        self.dump_path = Path(dump) if dump else None
        self._loaded: tuple[pd.DataFrame, pd.DataFrame] | None = None

    def _profile(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        if self.speedscope_path is None:
            raise InputError("no py-spy profile in this capture; record one with --pyspy")
        if self._loaded is None:
            self._loaded = load_speedscope(self.speedscope_path)
        return self._loaded

    @property
    def samples(self) -> pd.DataFrame:
        """See :func:`load_speedscope`."""
        return self._profile()[0]

    @property
    def functions(self) -> pd.DataFrame:
        """See :func:`load_speedscope`."""
        return self._profile()[1]

    @property
    def threads(self) -> pd.DataFrame:
        """See :func:`load_dump`."""
        if self.dump_path is None:
            raise InputError("no py-spy thread dump in this capture; take one with --dump")
        return load_dump(self.dump_path)
