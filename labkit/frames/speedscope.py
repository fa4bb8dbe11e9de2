"""Reading a speedscope profile streaming, in memory that does not grow with the file's text.

A py-spy profile is mostly ``samples`` (one list of frame indices a sample) and ``weights``;
both are read with ijson's event parser, one number at a time. Memory is the distinct
stacks (interned), the frame table, and 4 bytes a sample while a profile's weights have
not been read yet (py-spy writes them after the samples). Every value is range-checked:
frame indices are ints that name a frame, weights finite, non-negative and
at most ``MAX_WEIGHT`` times the profile's first one; the frame table is checked against
``labkit/schemas/speedscope_frames.schema.json``.
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from pathlib import Path
from typing import Any

from labkit.errors import CorruptCaptureError, LabkitError
from labkit.safefile import open_regular

Frame = tuple[str, str, int]
MAX_WEIGHT = 1e9  # a sample worth more than a billion of the first: not a profile
MAX_DEPTH = 64  # py-spy's profiles nest 5 deep


class _Bad(ValueError):
    """The document is JSON but not a speedscope profile (the message says why)."""


def parse_thread(name: str) -> tuple[int, str]:
    """``(os thread id, name)`` from py-spy's profile name ``Thread 1234 "name"``."""
    parts = name.split(" ", 2)
    if len(parts) >= 2 and parts[0] == "Thread" and parts[1].isdigit() and \
            len(parts[1]) <= 18:
        tname = parts[2].strip('"') if len(parts) == 3 else ""
        return int(parts[1]), tname
    return 0, name


class _Profile:
    """One profile's counts by stack (a tuple of frame indices), filled as events arrive."""

    def __init__(self) -> None:
        self.name = ""
        self.stacks: dict[tuple[int, ...], int] = {}  # interned: stack -> its id
        self.ids = array("I")  # each sample's stack id, until the weights are read
        self.early = array("d")  # weights read before the samples (not py-spy's order)
        self.unit = 0.0  # the first weight: every count is a weight over it
        self.weighted = 0  # samples already counted with their weight
        self.counts: Counter[int] = Counter()
        self.has_samples = False

    def sample(self, indices: list[int]) -> None:
        self.ids.append(self.stacks.setdefault(tuple(indices), len(self.stacks)))

    def weight(self, w: Any, i: int) -> None:
        if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) \
                or w < 0:
            raise _Bad(f"a weight that is not a finite non-negative number ({str(w)[:40]!r})")
        if i == 0:
            self.unit = float(w)
        if i < len(self.ids):  # py-spy's order: the sample is known, count it now
            self.counts[self.ids[i]] += self._count(w)
            self.weighted = i + 1
        elif not self.ids:
            self.early.append(float(w))
        # a weight past the last sample weighs nothing (as speedscope reads it)

    def _count(self, w: float) -> int:
        if not self.unit:
            return 1
        ratio = w / self.unit
        if ratio > MAX_WEIGHT:
            raise _Bad(f"a weight {ratio:.3g} times the profile's first")
        return round(ratio)

    def finish(self) -> Counter[tuple[int, ...]]:
        """Counts by stack; a sample without a weight counts 1."""
        early = self.early
        for i in range(self.weighted, len(self.ids)):
            self.counts[self.ids[i]] += self._count(early[i]) if i < len(early) else 1
        by_id = {sid: st for st, sid in self.stacks.items()}
        return Counter({by_id[sid]: n for sid, n in self.counts.items()})


def _events(path: Path) -> Any:
    """``(prefix, event, value)`` as ``ijson.parse`` yields them, built here from
    ``basic_parse`` so that nesting past ``MAX_DEPTH`` stops the read (ijson's own prefixes
    grow with the depth: quadratic time on a file of brackets)."""
    import ijson

    open_prefixes: list[str] = []  # of the containers open, innermost last
    in_array: list[bool] = []
    prefix = ""  # of the next value
    with open_regular(path, "py-spy profile") as fh:
        for event, value in ijson.basic_parse(fh, use_float=True):
            if event == "number":  # the most frequent: first
                yield prefix, event, value
            elif event == "map_key":
                yield open_prefixes[-1], event, value
                prefix = f"{open_prefixes[-1]}.{value}" if open_prefixes[-1] else str(value)
            elif event == "start_array" or event == "start_map":
                if len(open_prefixes) >= MAX_DEPTH:
                    raise _Bad(f"lists or objects nested deeper than {MAX_DEPTH}")
                yield prefix, event, value
                open_prefixes.append(prefix)
                in_array.append(event == "start_array")
                if event == "start_array":
                    prefix = f"{prefix}.item" if prefix else "item"
            elif event == "end_array" or event == "end_map":
                closed = open_prefixes.pop()
                in_array.pop()
                yield closed, event, value
                if in_array and in_array[-1]:
                    prefix = f"{open_prefixes[-1]}.item" if open_prefixes[-1] else "item"
            else:
                yield prefix, event, value


def _parse(path: Path) -> tuple[list[Any], list[_Profile]]:
    """The frame table (as JSON values) and each profile's counts, in one streaming pass."""
    import ijson

    frames: list[Any] = []
    profiles: list[_Profile] = []
    prof = _Profile()
    cur: list[int] = []
    n_weights = 0
    builder: Any = None  # builds one entry of the frame table
    arrays = set()
    for prefix, event, value in _events(path):
        if prefix == "profiles.item.samples.item.item":  # the hot path: one frame index
            cur.append(value)  # checked once per distinct stack, in read_stacks
        elif prefix == "profiles.item.samples.item":
            if event == "start_array":
                cur = []
            elif event == "end_array":
                prof.sample(cur)
            elif event == "null":
                prof.sample([])
            else:
                raise _Bad("a sample that is not a list of frame indices")
        elif prefix == "profiles.item.weights.item":
            prof.weight(value, n_weights)
            n_weights += 1
        elif prefix.startswith("shared.frames.item"):
            if builder is None and event not in ("start_map", "start_array"):
                frames.append(value)
                continue
            if builder is None:
                builder = ijson.ObjectBuilder()
            builder.event(event, value)
            if prefix == "shared.frames.item" and event in ("end_map", "end_array"):
                frames.append(builder.value)
                builder = None
        elif prefix == "profiles.item" and event != "map_key":
            if event == "start_map":
                prof, n_weights = _Profile(), 0
                profiles.append(prof)
            elif event != "end_map":
                raise _Bad("a profile that is not an object")
            elif not prof.has_samples:
                raise _Bad("a profile without samples")
        elif prefix == "profiles.item.samples" and event == "start_array":
            prof.has_samples = True
        elif prefix == "profiles.item.name" and event in ("string", "number"):
            prof.name = str(value)
        elif prefix in ("profiles", "shared.frames") and event == "start_array":
            arrays.add(prefix)
    if arrays != {"profiles", "shared.frames"}:
        raise _Bad("no list of profiles or no frame table")
    return frames, profiles


LINE_MAX = 2**31 - 1  # a line beyond int32 (or below 0) is unknown: 0


def line_number(value: object) -> int:
    """A frame's line as py-spy wrote it, or 0 (unknown) when absent or out of the range
    of a line (py-spy can write a garbage line for a frame it misread): that frame loses
    its line, the profile is still read."""
    try:
        line = int(value) if value is not None and not isinstance(value, bool) else 0
    except (TypeError, ValueError, OverflowError):
        return 0
    return line if 0 <= line <= LINE_MAX else 0


def read_stacks(path: Path, hidden: tuple[str, ...]) -> Counter[tuple[int, str, tuple[Frame, ...]]]:
    """Sample counts by ``(thread id, thread name, stack)`` of a speedscope file, the stack
    as ``(function, file, line)`` frames leaf first without those whose file ends with one
    of ``hidden``; threads named ``labkit-*`` are left out. Any damage is one line."""
    import ijson

    from labkit.schemas import check

    fix = "record it with `py-spy record --format speedscope`"
    try:
        raw, profiles = _parse(path)
    except LabkitError:
        raise
    except _Bad as exc:
        raise CorruptCaptureError(f"py-spy profile {path} holds {exc}; {fix}") from None
    except ijson.JSONError as exc:
        reason = exc.args[0] if exc.args else ""
        reason = (reason.decode(errors="replace") if isinstance(reason, bytes) else
                  str(reason)).splitlines()[0][:80] if reason else "a syntax error"
        raise CorruptCaptureError(f"py-spy profile {path} is not valid JSON ({reason}); "
                                  f"{fix}") from None
    except (ValueError, TypeError, AttributeError, RecursionError, OSError):
        raise CorruptCaptureError(f"py-spy profile {path} is not in speedscope format (not "
                                  f"valid JSON or not its shape); {fix}") from None
    check(raw, "speedscope_frames", path, "py-spy profile", fix)
    frames = [(str(f["name"]), str(f.get("file") or ""), line_number(f.get("line")))
              for f in raw]
    counts: Counter = Counter()
    for prof in profiles:
        tid, tname = parse_thread(prof.name)
        if tname.startswith("labkit-"):
            continue
        for stack, n in prof.finish().items():
            if not all(type(j) is int and 0 <= j < len(frames) for j in stack):
                bad = next(j for j in stack if type(j) is not int or not 0 <= j < len(frames))
                raise CorruptCaptureError(f"py-spy profile {path} holds a frame index that "
                                          f"names none of its {len(frames)} frames "
                                          f"({str(bad)[:40]!r}); {fix}")
            own = tuple(frames[j] for j in reversed(stack) if not frames[j][1].endswith(hidden))
            if own:
                counts[(tid, tname, own)] += n
    return counts
