"""A run's frames as Parquet, in a Hive-partitioned layout any engine reads without labkit.

Layout (schema version :data:`SCHEMA_VERSION`, a contract like the manifest's)::

    ROOT/frame=<name>/run_id=<id>/part-0.parquet

One ``frame`` per frame the run holds (:data:`FRAMES`): the captures as labkit loads them
(``gc_events``, ``heap``, ``proc``, ``memray_peak``, ``memray_growth``, ``memray_churn``,
``pyspy_functions``, ``pyspy_samples``, ``threads``, ``thread_origins``, ``fd_origins``)
and what labkit concluded from them: ``runs`` (one row: the run's size in memory, threads,
fds and GC, its verdict and top suspect) and ``suspects`` (the postmortem's ranked
suspects, with ``package``, ``version`` and ``site`` when one is a package's code).
Every row carries the run's identity (:data:`IDENTITY`) and one ``label_<key>``
column per label (the run's own, given at capture with ``--label``, then those given to the
export; a key must match :data:`labkit.options.LABEL_KEY`). Memory frames carry
``site_function``, ``site_file``, ``site_line``: the first frame in the user's own code, as
the postmortem attributes it; ``memray_growth`` also has ``gain_bytes``, the growth the
postmortem counts (steady growth in full, a one-off less).
Stacks are text (``stack``, leaf first). A column is never typed null, even in a run with no
row (Spark's schema merge refuses one): such a column is written as text. Contract: a
version adds columns or frames without changing its number; renaming or removing one, or
changing a meaning, makes a new version. Each part is written to a temporary file of its own
in its folder and renamed over the part, so concurrent exports of a run never collide.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

from labkit import artifacts as A
from labkit.errors import InputError
from labkit.options import label_column

SCHEMA_VERSION = 1
BACKGROUND_BYTES = 1 << 20  # a capture this large, open already, reads its churn aside
IDENTITY = ("run_id", "run_kind", "host", "pid", "python", "scenario", "variant",
            "start_utc", "duration_s", "schema_version")


def _sites(df: Any) -> Any:
    """``df`` with the user's own frame of each stack as ``site_*`` columns (each stack
    judged once: :meth:`labkit.attribution.Attribution.user_frame` keeps what it found)."""
    from labkit.attribution import DEFAULT

    site = [DEFAULT.user_frame(frames) for frames in df["frames"]]
    return df.assign(site_function=[s[2] if s else None for s in site],
                     site_file=[s[0] if s else None for s in site],
                     site_line=[int(s[1]) if s else None for s in site]).astype(
        {"site_function": "string", "site_file": "string", "site_line": "Int64"})


def _growth(df: Any) -> Any:
    """Growth with ``gain_bytes``: what the postmortem counts as steady growth."""
    from labkit.analysis.growth import steady_gain

    return _sites(df.drop(columns=["record"], errors="ignore")).assign(
        gain_bytes=steady_gain(df))


def _suspects(ctx: _Context) -> Any:
    import pandas as pd

    rows = [{"rank": s.rank, "kind": s.kind, "function": s.function,
             "file": s.file, "line": s.line, "score": s.score,
             "explains": "; ".join(s.explains), "stack": s.stack,
             "package": s.library.package if s.library else None,
             "version": s.library.version if s.library else None,
             "site": s.library.site.where if s.library else None}
            for s in ctx.findings.suspects]
    return pd.DataFrame(rows, columns=["rank", "kind", "function", "file", "line", "score",
                                       "explains", "stack", "package", "version",
                                       "site"]).astype(
        {"rank": "Int64", "kind": "string", "function": "string", "file": "string",
         "line": "Int64", "score": "Float64", "explains": "string", "stack": "string",
         "package": "string", "version": "string", "site": "string"})


class _Context:
    """One run, its evidence and findings, computed once for every frame."""

    def __init__(self, run: Any) -> None:
        from labkit.frames.evidence import evidence_of

        self.run = run
        path = run.path_of(A.MEMRAY)
        if path is not None and "memray" not in run.__dict__:
            # memray's opening pass made once, in the worker of the held pass, whose forked
            # copy makes the churn pass meanwhile (not in this process too)
            run.open_memray_here, run.background_churn = False, True
        elif path is not None and path.stat().st_size > BACKGROUND_BYTES:  # already open
            run.memray.churn_in_background()
        self.evidence = evidence_of(run)

    @cached_property
    def findings(self) -> Any:
        from labkit.analysis.findings import findings

        return findings(self.evidence)


FRAMES: dict[str, tuple[Any, Callable[[_Context], Any]]] = {
    "runs": (None, lambda c: run_row(c)),
    "suspects": (None, _suspects),
    "gc_events": (A.GC_EVENTS, lambda c: c.run.gc_events),
    "heap": (A.GC_HEAP, lambda c: c.run.heap),
    "proc": (A.PROC, lambda c: c.run.proc),
    "memray_peak": (A.MEMRAY, lambda c: _sites(c.run.memray.allocations_at_peak)),
    "memray_growth": (A.MEMRAY, lambda c: _growth(c.run.memray.growth)),
    "memray_churn": (A.MEMRAY, lambda c: _sites(c.run.memray.churn)),
    "pyspy_functions": (A.PYSPY_PROFILE, lambda c: c.run.pyspy.functions),
    "pyspy_samples": (A.PYSPY_PROFILE, lambda c: c.run.pyspy.samples),
    "threads": (A.PYSPY_DUMP, lambda c: c.run.pyspy.threads),
    "thread_origins": (A.ORIGINS, lambda c: c.run.origins.threads),
    "fd_origins": (A.ORIGINS, lambda c: c.run.origins.fds),
}


# the frames that wait for memray's temporal pass (``held``), or for the findings
_AFTER_HELD = frozenset({"runs", "suspects", "memray_peak", "memray_growth"})


def run_id(run: Any) -> str:
    """The run's partition name: its folder name and its manifest's checksum prefix."""
    import hashlib

    digest = hashlib.sha256((run.path / A.MANIFEST).read_bytes()).hexdigest()[:10]
    return f"{run.path.name}-{digest}"


def identity(run: Any, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The columns every exported row of ``run`` carries (:data:`IDENTITY` and labels)."""
    import datetime as dt

    m = run.meta
    params = m.params
    try:
        duration = (dt.datetime.fromisoformat(m.end_utc) -
                    dt.datetime.fromisoformat(m.start_utc)).total_seconds()
    except (TypeError, ValueError):
        duration = None
    pid = m.target.pid if "pid" in (m.data.get("target") or {}) else params.get("pid")
    return {"run_id": run_id(run), "run_kind": m.kind, "host": m.hostname,
            "pid": int(pid) if isinstance(pid, int) else None,
            "python": m.target.version,
            "scenario": params.get("scenario"), "variant": m.variant,
            "start_utc": m.start_utc, "duration_s": duration,
            "schema_version": SCHEMA_VERSION,
            **{label_column(k, f"{run.path}: label key"): str(v)
               for k, v in {**m.labels, **(labels or {})}.items()}}


def run_row(ctx: _Context) -> Any:
    """One row: the run's peak heap and RSS, threads, fds, GC share and pauses, CPU
    samples, and the postmortem's verdict and top suspect (None where not captured)."""
    import pandas as pd

    ev, f = ctx.evidence, ctx.findings
    row: dict[str, Any] = {"memray_peak_bytes": None, "rss_peak_bytes": None,
                           "threads_max": None, "fds_max": None, "gc_share": None,
                           "gc_collections": None, "gc_pause_max_ms": None,
                           "cpu_samples": None}
    if ev.memray is not None:
        row["memray_peak_bytes"] = int(ev.memray.metadata.peak_memory)
    if ev.proc is not None and len(ev.proc):
        row.update(rss_peak_bytes=int(ev.proc.rss_bytes.max()),
                   threads_max=int(ev.proc.threads.max()), fds_max=int(ev.proc.fds.max()))
    elif ev.heap is not None and len(ev.heap):
        row["rss_peak_bytes"] = int(ev.heap.rss_bytes.max())
    if ev.gc_events is not None:
        from labkit.analysis import gc_summary

        s = gc_summary(ev.gc_events, ev.gc_wall_s or 1e-9)
        row.update(gc_share=s.gc_percent / 100, gc_collections=int(s.collections),
                   gc_pause_max_ms=float(s.pause_max_ms))
    if ev.pyspy is not None and ev.pyspy.speedscope_path is not None:
        row["cpu_samples"] = int(ev.pyspy.samples["count"].sum())
    top = f.suspects[0] if f.suspects else None
    row.update(verdict=f.verdict, top_function=top and top.function,
               top_file=top and Path(top.file).name, top_line=top and int(top.line),
               top_score=top and float(top.score), top_kind=top and top.kind)
    return pd.DataFrame([row]).astype(_RUN_TYPES)


_RUN_TYPES = {"memray_peak_bytes": "Int64", "rss_peak_bytes": "Int64", "threads_max": "Int64",
              "fds_max": "Int64", "gc_share": "Float64", "gc_collections": "Int64",
              "gc_pause_max_ms": "Float64", "cpu_samples": "Int64", "verdict": "string",
              "top_function": "string", "top_file": "string", "top_line": "Int64",
              "top_score": "Float64", "top_kind": "string"}


def _identity_columns(ids: dict[str, Any], n: int) -> dict[str, Any]:
    """Arrow columns of ``n`` rows for the identity (typed even where a value is None)."""
    import pyarrow as pa

    types = {"pid": pa.int64(), "duration_s": pa.float64(), "schema_version": pa.int32()}
    return {k: pa.array([v] * n, type=types.get(k, pa.string()))
            for k, v in ids.items() if k != "run_id"}  # run_id: the partition, in the path


def export_parquet(run: Any, root: Path, labels: dict[str, str] | None = None, *,
                   force: bool = False, own_process: bool = False) -> list[Path]:
    """Write every frame ``run`` holds under ``root`` (layout in the module docstring);
    an existing partition of the same run is replaced only with ``force``.
    ``own_process``: this process is the export's alone (the ``labkit`` command), so once
    pandas and pyarrow are imported every object is put out of the collector's reach
    (:func:`gc.freeze`) and the collector is turned off for good: what the export makes
    lives until the process ends anyway. A full collection after memray's temporal result
    walked pandas' and pyarrow's modules (40-50 ms of a large capture's export), and the
    young generations' took 4% of the instructions after it (callgrind); peak RSS is the
    same either way."""
    import importlib.util

    if importlib.util.find_spec("pyarrow") is None:
        raise InputError("Parquet export needs pyarrow: pip install 'labkit[fleet]'")
    from labkit.outputs import check_dir_output, check_output

    root = check_dir_output(root)
    ids = identity(run, labels)
    rid = ids["run_id"]
    captured = [name for name, (art, _) in FRAMES.items() if art is not None and run.has(art)]
    if not captured:
        raise InputError(f"{run.path} holds no capture to export; capture it with --gc, "
                         "--memray, --pyspy or --proc")
    chosen = [name for name in FRAMES if name != "runs" and (
        FRAMES[name][0] is None or name in captured)] + ["runs"]  # last: marks it complete
    parts = [(name, root / f"frame={name}" / f"run_id={rid}" / PART) for name in chosen]
    for _, p in parts:  # a partition folder linked elsewhere (into a run) is refused too
        check_output(p, "file")
    taken = [p for _, p in parts if p.exists()]
    if taken and not force:
        raise InputError(f"{taken[0].parent} already exists (this run was exported there); "
                         "pass --force to replace it")
    for _, path in parts:
        _check_way(root, path)
    ctx = _Context(run)  # a large capture's churn pass starts elsewhere: import meanwhile
    import pyarrow as pa
    import pyarrow.parquet  # loaded here, so that the writer thread loads nothing

    if own_process:
        gc.freeze()
        gc.disable()

    # what needs no temporal pass first, while memray's worker still makes it (the churn
    # pass ends sooner); ``runs`` stays last
    order = sorted(parts, key=lambda p: p[0] in _AFTER_HELD)
    from concurrent.futures import Future, ThreadPoolExecutor

    # each part written by a second thread (pyarrow lets go of the GIL) while this one
    # builds the next; a failed write is raised before the next is started
    with ThreadPoolExecutor(1, thread_name_prefix="labkit-parquet") as writer:
        pending: Future[None] | None = None
        for name, path in order:
            df = FRAMES[name][1](ctx).drop(columns=["frames"], errors="ignore")
            table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
            for i, f in enumerate(table.schema):
                if pa.types.is_null(f.type):
                    table = table.set_column(i, f.name, table.column(i).cast(pa.string()))
            for k, col in _identity_columns(ids, len(df)).items():
                table = table.append_column(k, col)
            if pending is not None:
                pending.result()
            pending = writer.submit(_write_part, root, path, table)
        if pending is not None:
            pending.result()
    return [path for _, path in parts]


PART = "part-0.parquet"


def _check_way(root: Path, part: Path) -> None:
    """Refuse, in one line, anything in the way of ``part`` below ``root``: a file where a
    partition folder goes, a symbolic link (never written through), a folder or a special
    file where the part goes."""
    for d in (part.parent.parent, part.parent):
        if d.is_symlink() or (d.exists() and not d.is_dir()):
            what = "a symbolic link" if d.is_symlink() else "not a folder"
            raise InputError(f"{d} is {what}, in the way of this export; remove it or "
                             f"choose another --out than {root}")
    if part.is_symlink() or (part.exists() and not part.is_file()):
        raise InputError(f"{part} is not a Parquet file labkit wrote, in the way of this "
                         f"export; remove it or choose another --out than {root}")


def _write_part(root: Path, path: Path, table: Any) -> None:
    """Write ``table`` to ``path`` through a temporary file of its own in the same folder,
    renamed over it: concurrent exports of the same run never share a temporary file, and
    the last rename wins (same content)."""
    import tempfile

    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _check_way(root, path)  # again: another process may have put something there
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise InputError(f"cannot write {path} ({exc.strerror or exc}); check --out "
                         f"{root}") from None
    try:
        # made in Arrow's memory, then written at once: Arrow writing to a Python file calls
        # its write about 4 times a column, and each call waits for the GIL, which the
        # export's thread making the next part holds for up to 5 ms at a time
        with os.fdopen(fd, "wb") as fh:
            made = pa.BufferOutputStream()
            pq.write_table(table, made)
            fh.write(made.getvalue())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
