"""A large fleet made from a few recorded runs: for benches and tests at 1,000 runs and more.

:func:`generate_fleet` reads the runs of a Parquet export root (:mod:`labkit.export.parquet`
layout) and writes ``runs`` new runs in the same layout: run ``i`` is recorded run
``i % len(recorded)`` on node ``node-NNNNN`` (``label_host``) under a load that is the recorded
run's (``label_<by>``) times a factor drawn from ``[0.5, 2]`` (seeded, so the same call
writes the same fleet). Every byte count of ``memray_growth`` and the run's peak heap scale
with that factor, as a leak of a buffer per request does; everything else is the recorded
run's. Synthetic, and said so: ``label_generated`` is ``"1"`` on every row.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

from labkit.errors import InputError
from labkit.options import label_column

# Columns that scale with load, per frame (bytes; the rest is as recorded)
SCALED = {"memray_growth": ("peak_bytes", "end_bytes", "first_bytes", "last_bytes",
                            "growth_bytes", "gain_bytes"),
          "runs": ("memray_peak_bytes",)}


def _recorded(source: Path, frames: tuple[str, ...] | None) -> dict[str, dict[str, Any]]:
    """frame -> run id -> its Arrow table, for every frame of ``source`` (or ``frames``)."""
    import pyarrow.parquet as pq

    out: dict[str, dict[str, Any]] = {}
    for frame_dir in sorted(source.glob("frame=*")):
        name = frame_dir.name.removeprefix("frame=")
        if frames is not None and name not in frames:
            continue
        for part in sorted(frame_dir.glob("run_id=*/part-0.parquet")):
            rid = part.parent.name.removeprefix("run_id=")
            out.setdefault(name, {})[rid] = pq.read_table(part)
    if not out.get("runs"):
        raise InputError(f"{source} holds no exported run (frame=runs/); export the "
                         "recorded runs first: labkit export RUN --to parquet --out ROOT")
    return out


def _with(table: Any, column: str, values: Any) -> Any:
    import pyarrow as pa

    arr = values if isinstance(values, pa.Array) else pa.array([values] * len(table),
                                                                pa.string())
    i = table.schema.get_field_index(column)
    return table.set_column(i, column, arr) if i >= 0 else table.append_column(column, arr)


def _scaled(table: Any, frame: str, factor: float) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    for col in SCALED.get(frame, ()):
        i = table.schema.get_field_index(col)
        if i < 0:
            continue
        typ = table.schema.field(i).type
        scaled = pc.multiply(table.column(i).cast(pa.float64()), factor)
        if pa.types.is_integer(typ):
            scaled = pc.round(scaled)
        table = table.set_column(i, col, scaled.cast(typ))
    return table


def generate_fleet(source: Path, out: Path, runs: int, *, by: str = "requests",
                   seed: int = 0, frames: tuple[str, ...] | None = None) -> list[str]:
    """Write ``runs`` generated runs (module docstring) from the export root ``source`` into
    the new folder ``out`` (refused if it exists; written beside it, then renamed); only
    ``frames`` when given (``runs`` always). Returns the generated run ids."""
    import pyarrow.parquet as pq

    load_col = label_column(by, "by")
    if runs < 1:
        raise InputError(f"a generated fleet needs at least one run, not {runs}")
    if out.exists() or out.is_symlink():
        raise InputError(f"{out} already exists; choose a new folder for the generated fleet")
    wanted = None if frames is None else (*frames, "runs")
    recorded = _recorded(source, wanted)
    sources = sorted(recorded["runs"])
    for rid in sources:
        if load_col not in recorded["runs"][rid].column_names:
            raise InputError(f"recorded run {rid} has no label {by!r}; label the runs with "
                             f"--label {by}=N, or pass another by")
    rng = random.Random(seed)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    ids = []
    try:
        for i in range(runs):
            src = sources[i % len(sources)]
            factor = round(rng.uniform(0.5, 2.0), 3)
            recorded_load = float(recorded["runs"][src].column(load_col)[0].as_py())
            labels = {"label_host": f"node-{i + 1:05d}",
                      load_col: str(round(recorded_load * factor)), "label_generated": "1"}
            rid = f"gen{i + 1:05d}-{src}"
            for frame, tables in recorded.items():
                if src not in tables:
                    continue
                t = _scaled(tables[src], frame, factor)
                for col, value in labels.items():
                    t = _with(t, col, value)
                d = tmp / f"frame={frame}" / f"run_id={rid}"
                d.mkdir(parents=True)
                pq.write_table(t, d / "part-0.parquet")
            ids.append(rid)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ids
