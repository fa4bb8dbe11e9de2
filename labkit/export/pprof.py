"""A run's profiles as pprof ``profile.proto`` (gzipped), for ``go tool pprof``, Pyroscope,
Parca and the rest.

Written with a small protobuf encoder (the format is a handful of messages of varints and
length-delimited fields, documented in google/pprof's ``proto/profile.proto``), so labkit
needs no protobuf library.

- Memory (``memory.pb.gz``), from memray: ``alloc_objects``/``alloc_space`` (everything
  allocated over the run, as ``memray stats`` totals it) and ``inuse_objects``/
  ``inuse_space`` (held at the high-water mark, memray's peak view; the default type).
- CPU (``cpu.pb.gz``), from py-spy: ``samples`` (count) and ``cpu`` (nanoseconds at the
  sampling rate).
- GC (``gc.pb.gz``), from labkit's GC tracer: ``collections`` (count) and ``pause``
  (nanoseconds), one pseudo-frame per generation (``gc: full collection (generation 2)``),
  so ``-top`` says which generation the pauses went to; the wall time is the profile's
  duration.

Locations are Python functions with their file and line, leaf first as pprof expects.
Each sample carries a ``thread`` label and the run's own: ``run``, ``host``, ``python`` and
every ``--label`` given at capture (``-tagfocus``/``-tags`` work on them); the profile's
comments carry the run's command and start time.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from labkit.stacks import Frame

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


class ValueTooLarge(ValueError):
    """A value does not fit pprof's int64 fields (the export refuses rather than wrap it)."""


def _varint(n: int) -> bytes:
    if not INT64_MIN <= n <= INT64_MAX:
        raise ValueTooLarge(n)
    n &= (1 << 64) - 1  # two's complement for negative int64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(num: int, value: int | bytes) -> bytes:
    if isinstance(value, bytes):
        return _varint(num << 3 | 2) + _varint(len(value)) + value
    return _varint(num << 3) + _varint(value)


def _packed(num: int, values: Iterable[int]) -> bytes:
    return _field(num, b"".join(_varint(v) for v in values))


class ProfileBuilder:
    """Accumulates samples (a stack and its values) into one ``Profile`` message."""

    def __init__(self, sample_types: Sequence[tuple[str, str]],
                 period: tuple[str, str, int] | None = None, *, default: str | None = None,
                 labels: dict[str, str] | None = None, duration_ns: int = 0) -> None:
        self.strings: dict[str, int] = {"": 0}
        self.functions: dict[tuple[str, str], int] = {}
        self.locations: dict[tuple[int, int], int] = {}
        self.samples: list[bytes] = []
        self.sample_types = [(self._s(t), self._s(u)) for t, u in sample_types]
        self.period = period
        self.comments: list[int] = []
        self.default = default
        self.labels = dict(labels or {})  # on every sample
        self.duration_ns = duration_ns

    def _s(self, text: str) -> int:
        return self.strings.setdefault(text, len(self.strings))

    def _location(self, frame: Frame) -> int:
        file, line, function = frame
        fid = self.functions.setdefault((function, file), len(self.functions) + 1)
        return self.locations.setdefault((fid, int(line)), len(self.locations) + 1)

    def comment(self, text: str) -> None:
        """A line for the profile's comments (``go tool pprof -comments``)."""
        self.comments.append(self._s(text))

    def add(self, frames: Sequence[Frame], values: Sequence[int],
            labels: dict[str, str] | None = None) -> None:
        """One sample: ``frames`` leaf first, one value per sample type."""
        body = _packed(1, (self._location(f) for f in frames)) + _packed(2, values)
        for k, v in {**self.labels, **(labels or {})}.items():
            body += _field(3, _field(1, self._s(k)) + _field(2, self._s(v)))
        self.samples.append(body)

    def encode(self) -> bytes:
        """The serialized ``Profile``."""
        out = bytearray()
        for t, u in self.sample_types:
            out += _field(1, _field(1, t) + _field(2, u))
        for s in self.samples:
            out += _field(2, s)
        for (fid, line), lid in self.locations.items():
            out += _field(4, _field(1, lid) + _field(4, _field(1, fid) + _field(2, line)))
        names = {fid: key for key, fid in self.functions.items()}
        for fid in sorted(names):
            function, file = names[fid]
            out += _field(5, _field(1, fid) + _field(2, self._s(function)) +
                          _field(3, self._s(function)) + _field(4, self._s(file)))
        if self.period is not None:
            kind, unit, every = self.period
            out += _field(11, _field(1, self._s(kind)) + _field(2, self._s(unit)))
            out += _field(12, every)
        if self.duration_ns:
            out += _field(10, self.duration_ns)
        out += b"".join(_field(13, c) for c in self.comments)
        if self.default:
            out += _field(14, self._s(self.default))
        strings = sorted(self.strings.items(), key=lambda kv: kv[1])
        return bytes(out) + b"".join(_field(6, s.encode()) for s, _ in strings)


def _builder(run: Any, sample_types: Sequence[tuple[str, str]], **kw: Any) -> ProfileBuilder:
    """A builder carrying ``run``'s identity as labels and its command as comments."""
    from labkit.export.parquet import identity

    ids = identity(run)
    labels = {"run": ids["run_id"], "host": ids["host"], "python": ids["python"],
              **{k.removeprefix("label_"): v for k, v in ids.items() if k.startswith("label_")}}
    b = ProfileBuilder(sample_types, labels={k: v for k, v in labels.items() if v}, **kw)
    m = run.meta
    b.comment(f"labkit run {run.path.name} ({m.kind or None}), started {m.start_utc or None}")
    b.comment("command: " + " ".join(m.command))
    return b


def memray_profile(run: Any) -> bytes:
    """``alloc_objects``/``alloc_space`` over the run and ``inuse_objects``/``inuse_space``
    at memray's high-water mark of ``run`` (labkit's own allocations and those made while
    importing modules left out). An aggregated capture has no ``alloc_*`` (memray does not
    record it): only ``inuse_*``, and a comment says why."""
    cap = _memray_started(run)
    types = [("inuse_objects", "count"), ("inuse_space", "bytes")]
    if not cap.aggregated:
        types = [("alloc_objects", "count"), ("alloc_space", "bytes"), *types]
    b = _builder(run, types, default="inuse_space")
    for m in cap.missing:
        b.comment(f"not in this profile: {m['evidence']} ({m['why']})")
    views = [(len(types) - 2, cap.peak_stacks)]
    if not cap.aggregated:
        views.insert(0, (0, cap.allocated_stacks))
    values: dict[tuple[Frame, ...], list[int]] = {}
    threads: dict[tuple[Frame, ...], str] = {}
    for col, view in views:
        for frames, nbytes, count, thread in view():
            v = values.setdefault(frames, [0] * len(types))
            v[col] += int(count)
            v[col + 1] += int(nbytes)
            threads.setdefault(frames, str(thread))
    for frames, v in values.items():
        b.add(list(frames), v, {"thread": threads[frames]})
    return b.encode()


def _memray_started(run: Any) -> Any:
    """``run``'s memray capture with the passes the memory profile needs started in
    workers: if it was not open yet, the totals and the peak alone, memray's opening pass
    made by the peak's worker only (not in this process too)."""
    if "memray" not in run.__dict__:  # else the command started them (MEMRAY_PASSES)
        run.background_held, run.background_stats, run.open_memray_here = False, True, False
    cap = run.memray
    cap.peak_in_background()
    return cap


def pyspy_profile(run: Any, rate_hz: int = 100) -> bytes:
    """``samples``/``cpu`` from ``run``'s py-spy profile, sampled at ``rate_hz``."""
    ns = 1_000_000_000 // max(1, rate_hz)
    b = _builder(run, [("samples", "count"), ("cpu", "nanoseconds")],
                 period=("cpu", "nanoseconds", ns))
    for r in run.pyspy.samples.itertuples():
        if r.frames:
            b.add(list(r.frames), [int(r.count), int(r.count) * ns],
                  {"thread": str(r.thread_name or r.thread_id)})
    return b.encode()


GENERATIONS = {0: "young collection (generation 0)", 1: "middle collection (generation 1)",
               2: "full collection (generation 2)"}


def gc_profile(run: Any) -> bytes:
    """``collections``/``pause`` (nanoseconds) per generation and thread from ``run``'s GC
    trace; the profile's duration is the traced wall time."""
    import numpy as np

    e = run.gc_columns  # numpy arrays: no DataFrame needed here
    pause_ms = e["pause_ms"]
    b = _builder(run, [("collections", "count"), ("pause", "nanoseconds")],
                 default="pause", duration_ns=int(run.gc_wall_s * 1e9))
    if len(pause_ms):
        share = 100 * pause_ms.sum() / 1000 / run.gc_wall_s
        b.comment(f"{len(pause_ms):,} collections, {pause_ms.sum():,.1f} ms of pauses over "
                  f"{run.gc_wall_s:.2f} s ({share:.2f}% of wall time in GC)")
    keys = np.unique(np.stack([e["generation"].astype(np.int64), e["thread_id"]], axis=1),
                     axis=0) if len(pause_ms) else ()
    for gen, tid in keys:  # sorted, as a groupby by generation and thread
        mine = (e["generation"] == gen) & (e["thread_id"] == tid)
        frame = ("<garbage collector>", int(gen), f"gc: {GENERATIONS.get(int(gen), gen)}")
        b.add([frame], [int(mine.sum()), round(pause_ms[mine].sum() * 1e6)],
              {"thread": str(tid), "generation": str(gen)})
    return b.encode()


def export_pprof(run: Any, out_dir: Path, *, force: bool = False) -> list[Path]:
    """Write ``memory.pb.gz`` (from memray), ``cpu.pb.gz`` (from py-spy) and ``gc.pb.gz``
    (from the GC tracer), for whichever ``run`` holds, into ``out_dir`` (checked first:
    never inside a run, an existing file replaced only with ``force``); a run with none of
    them is a one-line error."""
    from labkit import artifacts as A
    from labkit.errors import CorruptCaptureError, InputError
    from labkit.outputs import check_dir_output, check_file_output, write_bytes_atomic

    made = [(name, make) for art, name, make in (
        (A.MEMRAY, "memory.pb.gz", memray_profile), (A.PYSPY_PROFILE, "cpu.pb.gz", pyspy_profile),
        (A.GC_EVENTS, "gc.pb.gz", gc_profile)) if run.has(art)]
    if not made:
        raise InputError(f"{run.path} has no memray, py-spy or GC capture to export; capture "
                         "it with --memray, --pyspy or --gc")
    out_dir = check_dir_output(out_dir)
    paths = [check_file_output(out_dir / name, force=force, flag="export") for name, _ in made]
    if run.has(A.MEMRAY):
        _memray_started(run)  # its workers first: the other profiles are built meanwhile
    profiles = []  # all built before any is written: a refusal leaves no partial export
    for path, (name, make) in sorted(zip(paths, made, strict=True),
                                     key=lambda pm: pm[1][1] is memray_profile):
        try:
            profiles.append((path, make(run)))
        except ValueTooLarge as exc:
            text = str(exc)
            raise CorruptCaptureError(
                f"{run.path}: a value for {name} ({text if len(text) < 30 else text[:27] + '...'})"
                " does not fit pprof's 64-bit integers; the capture is damaged: re-capture it"
            ) from None
    profiles.sort(key=lambda pd: paths.index(pd[0]))
    for path, data in profiles:
        write_bytes_atomic(path, gzip.compress(data, mtime=0))
    return [path for path, _ in profiles]
