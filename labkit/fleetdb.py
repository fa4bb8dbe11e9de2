"""Fleet: many runs' Parquet exports asked the same questions at once, with DuckDB in process.

Each path given is a run directory, a folder of runs (found up to three levels down) or a
Parquet export root (a folder holding ``frame=runs``, see :mod:`labkit.export.parquet`).
Runs are exported on the fly into a cache keyed by the run's manifest checksum, the labels
and the schema version, so a run is exported once. Every frame becomes a view of the same
name; ``fleet_runs`` adds ``node`` (the ``host`` label, else the host name, else the run id)
and ``load`` (the label named by ``by``, else the run's duration: uptime).

The three questions are plain SQL over those views (:data:`GROWING_SITES_SQL`,
:data:`OUTLIERS_SQL`, :data:`TOP_SUSPECTS_SQL`); the README shows the first for Spark.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.errors import InputError

GREW_BYTES = 1048576  # steady growth (postmortem.steady_gain) that counts as "grew", per run

# Sites of the user's code that grew during the run (GREW_BYTES or more of steady growth, as
# the postmortem counts it) on at least two nodes: how their bytes at the peak follow load
# across the nodes where they grew.
GROWING_SITES_SQL = f"""
WITH per_run AS (
  SELECT run_id, site_function, site_file, site_line,
         SUM(peak_bytes) AS peak_bytes, SUM(gain_bytes) AS gain_bytes
  FROM memray_growth
  WHERE site_function IS NOT NULL
  GROUP BY run_id, site_function, site_file, site_line
), grew AS (
  SELECT p.*, r.node, r.load, p.gain_bytes >= {GREW_BYTES} AS grew
  FROM per_run p JOIN fleet_runs r ON p.run_id = r.run_id
)
SELECT site_function AS function,
       regexp_extract(site_file, '([^/]*)$', 1) AS file,
       site_line AS line,
       COUNT(DISTINCT CASE WHEN grew THEN node END) AS nodes_growing,
       COUNT(DISTINCT node) AS nodes,
       MAX(peak_bytes) AS max_peak_bytes,
       REGR_SLOPE(peak_bytes, load) FILTER (WHERE grew) AS bytes_per_load,
       CORR(peak_bytes, load) FILTER (WHERE grew) AS r
FROM grew
GROUP BY site_function, site_file, site_line
HAVING COUNT(DISTINCT CASE WHEN grew THEN node END) >= 2
ORDER BY nodes_growing DESC, max_peak_bytes DESC
""".strip()

# Nodes far above the fleet's median in a measure: robust z-score (median and MAD) over 3.5,
# or, where most nodes are alike (MAD 0), 1.5x the median; either way past a floor so that
# 4 fds against 3 is never news.
OUTLIERS_SQL = """
WITH m AS (
  UNPIVOT (SELECT node, run_id,
                  CAST(memray_peak_bytes AS DOUBLE) AS heap_peak_bytes,
                  CAST(rss_peak_bytes AS DOUBLE) AS rss_peak_bytes,
                  CAST(threads_max AS DOUBLE) AS threads, CAST(fds_max AS DOUBLE) AS fds,
                  CAST(gc_share AS DOUBLE) AS gc_share FROM fleet_runs)
  ON heap_peak_bytes, rss_peak_bytes, threads, fds, gc_share INTO NAME measure VALUE value
), floors(measure, floor) AS (
  VALUES ('heap_peak_bytes', 8 * 1048576), ('rss_peak_bytes', 16 * 1048576),
         ('threads', 5), ('fds', 5), ('gc_share', 0.02)
), s AS (
  SELECT measure, MEDIAN(value) AS median, MAD(value) AS mad, COUNT(*) AS nodes
  FROM m GROUP BY measure
)
SELECT m.node, m.run_id, m.measure, m.value, s.median,
       CASE WHEN s.mad > 0 THEN (m.value - s.median) / (1.4826 * s.mad) END AS z
FROM m JOIN s USING (measure) JOIN floors USING (measure)
WHERE s.nodes >= 3 AND m.value - s.median >= floors.floor
  AND ((s.mad > 0 AND (m.value - s.median) / (1.4826 * s.mad) > 3.5)
       OR (s.mad = 0 AND m.value >= 1.5 * s.median))
ORDER BY m.measure, m.value DESC
""".strip()

# Each run's top suspect, grouped: on how many nodes a line leads, and how strongly.
TOP_SUSPECTS_SQL = """
SELECT top_function AS function, top_file AS file, top_line AS line,
       COUNT(DISTINCT node) AS nodes,
       COUNT(DISTINCT CASE WHEN top_score >= 0.5 THEN node END) AS nodes_strong,
       MEDIAN(top_score) AS median_score, MAX(top_score) AS max_score,
       STRING_AGG(DISTINCT top_kind, ', ') AS kinds
FROM fleet_runs
WHERE top_function IS NOT NULL
GROUP BY top_function, top_file, top_line
ORDER BY nodes_strong DESC, nodes DESC
""".strip()


def fleet_runs_sql(*, host_label: bool, by: str | None) -> str:
    """The ``fleet_runs`` view: ``runs`` with ``node`` and ``load`` (module docstring)."""
    host = "label_host, " if host_label else ""
    load = f"TRY_CAST(label_{by} AS DOUBLE)" if by else "duration_s"
    return (f"CREATE OR REPLACE TEMP VIEW fleet_runs AS SELECT *, COALESCE({host}"
            f"NULLIF(host, ''), run_id) AS node, {load} AS load FROM runs")


def cache_root() -> Path:
    """Where runs exported on the fly are kept: ``$XDG_CACHE_HOME/labkit/fleet``, its real
    path (a cache folder is often a link to a larger disk; the user chose it, not a path)."""
    from labkit.outputs import real_path

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return real_path(Path(base) / "labkit" / "fleet", "XDG_CACHE_HOME", allow_symlinks=True)


def _runs_under(path: Path) -> list[Path]:
    if (path / "manifest.json").is_file():
        return [path]
    return sorted(m.parent for pattern in ("*/manifest.json", "*/*/manifest.json",
                                           "*/*/*/manifest.json")
                  for m in path.glob(pattern))


def collect(paths: list[Path | str], labels: dict[str, str] | None = None,
            store: Path | None = None) -> list[tuple[Path, str]]:
    """The runs behind ``paths`` as ``(Parquet root, run id)``: every run of an export root,
    and each run directory exported (once) into ``store`` (default :func:`cache_root`, one
    folder per schema version and set of labels)."""
    from labkit.export.parquet import SCHEMA_VERSION, export_parquet, run_id
    from labkit.frames import load

    found: list[tuple[Path, str]] = []
    runs: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise InputError(f"{p} not found; give run directories, folders of runs or "
                             "Parquet exports")
        if (p / "frame=runs").is_dir():
            found += [(p, d.name.removeprefix("run_id="))
                      for d in sorted((p / "frame=runs").glob("run_id=*"))]
        elif under := _runs_under(p):
            runs += under
        else:
            raise InputError(f"{p} holds no labkit run and no Parquet export (frame=runs/)")
    if runs:
        key = hashlib.sha256(repr(sorted((labels or {}).items())).encode()).hexdigest()[:8]
        out = (store or cache_root()) / f"v{SCHEMA_VERSION}-{key}"
        for path in runs:
            run = load(path, background_stats=False)
            rid = run_id(run)
            if not (out / "frame=runs" / f"run_id={rid}").is_dir():  # written last
                export_parquet(run, out, labels, force=True)  # over an interrupted one
            found.append((out, rid))
    return list(dict.fromkeys(found))


@dataclass
class Fleet:
    """Runs queried together: :meth:`sql`, :meth:`growing_sites`, :meth:`outliers`,
    :meth:`top_suspects`, :attr:`runs`."""

    parts: list[tuple[Path, str]]  # (Parquet root, run id), from :func:`collect`
    by: str | None = None
    con: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        try:
            import duckdb
        except ImportError:
            raise InputError("labkit fleet needs DuckDB and pyarrow: pip install "
                             "'labkit[fleet]'") from None

        self.con = duckdb.connect()
        files: dict[str, list[str]] = {}
        for root, rid in self.parts:
            for d in root.glob(f"frame=*/run_id={rid}"):
                files.setdefault(d.parent.name.removeprefix("frame="), []).extend(
                    str(f) for f in sorted(d.glob("*.parquet")))
        if not files.get("runs"):
            raise InputError("no run in this fleet: give run directories or Parquet exports")
        for name, globs in sorted(files.items()):
            try:
                self.con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet("
                                 f"{globs!r}, hive_partitioning=true, union_by_name=true)")
            except duckdb.Error as exc:
                raise InputError(f"cannot read the {name} frame of this fleet: "
                                 f"{str(exc).splitlines()[0]}; re-export its runs") from None
        self._check_versions()
        cols = set(self.con.execute("SELECT * FROM runs LIMIT 0").df().columns)
        if self.by is not None and f"label_{self.by}" not in cols:
            known = sorted(c.removeprefix("label_") for c in cols if c.startswith("label_"))
            raise InputError(f"no run is labelled {self.by!r}; labels here: "
                             f"{', '.join(known) or 'none'}")
        self.con.execute(fleet_runs_sql(host_label="label_host" in cols, by=self.by))
        if self.by is not None and self.con.execute(
                "SELECT COUNT(load) FROM fleet_runs").fetchone()[0] < 2:
            raise InputError(f"label {self.by!r} is not a number on two runs or more; --by "
                             "needs a measure of load (requests, uptime_s, ...)")

    def _check_versions(self) -> None:
        from labkit.export.parquet import SCHEMA_VERSION

        rows = self.con.execute("SELECT schema_version, MIN(run_id), COUNT(*) FROM runs "
                                "GROUP BY schema_version ORDER BY 1").fetchall()
        other = [(v, rid, n) for v, rid, n in rows if v != SCHEMA_VERSION]
        if other:
            v, rid, n = other[0]
            raise InputError(
                f"this fleet mixes Parquet schema versions: {n} run(s) (e.g. {rid}) are "
                f"version {v}, this labkit reads version {SCHEMA_VERSION}; re-export them "
                "with this labkit (labkit export RUN --to parquet)")

    def sql(self, query: str) -> Any:
        """Any SQL over the fleet's views; a pandas DataFrame."""
        return self.con.execute(query).df()

    @property
    def runs(self) -> Any:
        """One row per run: node, load, labels, measures, verdict and top suspect."""
        return self.sql("SELECT * FROM fleet_runs ORDER BY node, run_id")

    def growing_sites(self) -> Any:
        """:data:`GROWING_SITES_SQL`: sites that grew on two nodes or more, and their slope
        in bytes per unit of ``load``."""
        return self.sql(GROWING_SITES_SQL)

    def outliers(self) -> Any:
        """:data:`OUTLIERS_SQL`: nodes far above the fleet in heap, RSS, threads, fds or GC
        share."""
        return self.sql(OUTLIERS_SQL)

    def top_suspects(self) -> Any:
        """:data:`TOP_SUSPECTS_SQL`: each run's top suspect, by how many nodes it leads."""
        return self.sql(TOP_SUSPECTS_SQL)

    def summary(self) -> dict[str, Any]:
        """The three answers as JSON-ready records, with the fleet's size."""
        def records(df: Any) -> list[dict[str, Any]]:
            return [{k: (None if v != v else v) for k, v in r.items()}  # NaN -> None
                    for r in df.astype(object).to_dict("records")]

        runs = self.runs
        return {"runs": len(runs), "nodes": int(runs["node"].nunique()),
                "load": self.by or "duration_s",
                "growing_sites": records(self.growing_sites()),
                "outliers": records(self.outliers()),
                "top_suspects": records(self.top_suspects())}

    def nodes_where(self, function: str, line: int) -> list[str]:
        """The nodes on which the site ``function`` at ``line`` grew during the run."""
        return [r[0] for r in self.con.execute(
            "SELECT DISTINCT r.node FROM memray_growth g JOIN fleet_runs r USING (run_id) "
            "WHERE g.site_function = ? AND g.site_line = ? GROUP BY r.node, g.run_id "
            "HAVING SUM(g.gain_bytes) >= ? ORDER BY 1",
            [function, int(line), GREW_BYTES]).fetchall()]



def fleet(paths: list[Path | str] | Path | str, *, labels: dict[str, str] | None = None,
          by: str | None = None, store: Path | None = None) -> Fleet:
    """Open runs and exports as one :class:`Fleet` (see the module docstring)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    return Fleet(collect(list(paths), labels, store), by=by)
