"""Fleet: many runs' Parquet exports asked the same questions at once, with DuckDB in process.

Each path given is a run directory, a folder of runs (found up to three levels down) or a
Parquet export root (a folder holding ``frame=runs``, see :mod:`labkit.export.parquet`).
Runs are exported on the fly into a cache keyed by the run's manifest checksum, the labels
and the schema version, so a run is exported once. A run is counted once: its id is its
folder's name and its manifest's checksum, and a second copy of the same id (an export
copied elsewhere, or given again as its run directory) is skipped and counted in
:attr:`Fleet.copies_skipped`. Every frame becomes a view of the same name; ``fleet_runs``
adds ``node`` (the ``host`` label, else the host name, else the run id) and ``load`` (the
label named by ``by``, else the run's duration: uptime). A frame other than ``runs`` is read
when a query (:meth:`Fleet.sql`) first names it; the three questions read only the columns
they use (:data:`QUESTION_COLUMNS`), a query of the user's and :attr:`Fleet.runs` every
column (a frame is read again, whole, the first time one asks). A fleet of many runs
is read through the store's compacted copies (:mod:`labkit.fleetcache`).

No SQL is built from data: part files are listed in Python (regular files only), read with
pyarrow and handed to DuckDB as Arrow tables, so no path, folder name or glob character
ever reaches DuckDB; ``run_id`` comes from the partition folder as a value; the one name
from data, a label key, becomes a column only through :func:`labkit.options.label_column`,
and any other identifier through :func:`ident`.

The three questions are plain SQL over those views (:data:`GROWING_SITES_SQL`,
:data:`OUTLIERS_SQL`, :data:`TOP_SUSPECTS_SQL`); the README shows the first for Spark.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.analysis.fleet import FleetVerdict, fleet_verdict
from labkit.errors import InputError
from labkit.options import label_column

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
       STRING_AGG(DISTINCT top_kind, ', ' ORDER BY top_kind) AS kinds
FROM fleet_runs
WHERE top_function IS NOT NULL
GROUP BY top_function, top_file, top_line
ORDER BY nodes_strong DESC, nodes DESC
""".strip()


# The columns of each frame that the questions and ``fleet_runs`` read (``run_id`` always,
# and the ``by`` label): a frame's other columns (``memray_growth``'s stacks are most of its
# bytes) are never decoded for them. A column missing here fails a query (DuckDB: not
# found), never changes a row.
# ``memray_growth``'s, with their types: a fleet without a memray capture answers from an
# empty table of them (:data:`EMPTY_FRAMES`).
GROWTH_COLUMNS: dict[str, str] = {"site_function": "string", "site_file": "string",
                                  "site_line": "int64", "peak_bytes": "int64",
                                  "gain_bytes": "int64"}
QUESTION_COLUMNS: dict[str, frozenset[str]] = {
    "runs": frozenset({"schema_version", "host", "label_host", "duration_s",
                       "memray_peak_bytes", "rss_peak_bytes", "threads_max", "fds_max",
                       "gc_share", "top_function", "top_file", "top_line", "top_score",
                       "top_kind"}),
    "memray_growth": frozenset(GROWTH_COLUMNS),
}

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# A frame the questions read that a run may lack, by its questions' columns and types.
EMPTY_FRAMES: dict[str, dict[str, str]] = {"memray_growth": {"run_id": "string",
                                                             **GROWTH_COLUMNS}}


def ident(name: str) -> str:
    """``name`` as an SQL identifier: a plain name as it is (so the SQL reads the same on
    DuckDB and Spark), anything else double-quoted with its quotes doubled."""
    return name if _PLAIN.fullmatch(name) else '"' + name.replace('"', '""') + '"'


def fleet_runs_sql(*, host_label: bool, by: str | None) -> str:
    """The ``fleet_runs`` view: ``runs`` with ``node`` and ``load`` (module docstring);
    ``by`` is a label key (:func:`labkit.options.label_column` refuses any other)."""
    host = "label_host, " if host_label else ""
    load = f"TRY_CAST({ident(label_column(by, '--by'))} AS DOUBLE)" if by else "duration_s"
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


def _export_run_ids(root: Path) -> list[str]:
    """The run ids of an export root: its ``frame=runs/run_id=ID`` folders' ``ID``."""
    try:
        with os.scandir(root / "frame=runs") as entries:
            return sorted(e.name.removeprefix("run_id=") for e in entries
                          if e.name.startswith("run_id=") and e.is_dir())
    except OSError as exc:
        raise InputError(f"cannot list {root / 'frame=runs'} ({exc.strerror}); check its "
                         "permissions") from None


def collect(paths: list[Path | str], labels: dict[str, str] | None = None,
            store: Path | None = None) -> list[tuple[Path, str]]:
    """The runs behind ``paths`` as ``(Parquet root, run id)``: every run of an export root,
    and each run directory exported (once) into ``store`` (default :func:`cache_root`, one
    folder per schema version and set of labels). The same pair is listed once; copies of
    a run in other roots are all listed (:class:`Fleet` counts each run once)."""
    from labkit.export.parquet import SCHEMA_VERSION, export_parquet, run_id
    from labkit.frames import load

    for key in labels or {}:
        label_column(key, "--label key")
    found: list[tuple[Path, str]] = []
    runs: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise InputError(f"{p} not found; give run directories, folders of runs or "
                             "Parquet exports")
        if (p / "frame=runs").is_dir():
            found += [(p, rid) for rid in _export_run_ids(p)]
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


def _part_files(root: Path, frame: str, rid: str) -> list[tuple[Path, os.stat_result]]:
    """The Parquet files of one partition, exactly (no glob), with their lstat: regular
    files only; names starting with ``.`` or ``_`` (temporary files, Spark's markers) are
    not parts."""
    d = root / f"frame={frame}" / f"run_id={rid}"
    try:
        with os.scandir(d) as it:
            entries = sorted(it, key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise InputError(f"cannot list {d} ({exc.strerror}); check its permissions") from None
    parts = []
    for e in entries:
        if e.name.startswith((".", "_")) or not e.name.endswith(".parquet"):
            continue
        if not e.is_file(follow_symlinks=False):
            kind = stat.S_IFMT(e.stat(follow_symlinks=False).st_mode)
            what = {stat.S_IFLNK: "a symbolic link", stat.S_IFIFO: "a FIFO",
                    stat.S_IFDIR: "a folder"}.get(kind, "not a regular file")
            raise InputError(f"{d / e.name} is {what}; a fleet reads only the regular "
                             "Parquet files an export wrote: remove it or re-export the run")
        parts.append((d / e.name, e.stat(follow_symlinks=False)))
    return parts


def _read_part(path: Path, frame: str, rid: str,
               columns: frozenset[str] | None = None) -> Any:
    """One part as an Arrow table with the partition's ``run_id`` as a column: its
    ``columns`` that it has, or every column (None)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from labkit.safefile import open_regular

    try:
        with open_regular(path, "Parquet part", follow_symlinks=False) as fh:
            table = pq.ParquetFile(pa.BufferReader(fh.read()), pre_buffer=False).read(
                None if columns is None else sorted(columns),  # missing ones: absent
                use_threads=False)  # parts are read READERS at once (labkit.fleetcache)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"cannot read the {frame} frame of this fleet ({path}: "
                         f"{_first_line(exc)}); re-export its runs") from None
    if "run_id" in table.column_names:  # the partition says which run, as Hive does
        table = table.drop_columns(["run_id"])
    return table.append_column("run_id", pa.array([rid] * len(table), pa.string()))


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


@dataclass
class Fleet:
    """Runs queried together: :meth:`sql`, :meth:`growing_sites`, :meth:`outliers`,
    :meth:`top_suspects`, :attr:`runs`. ``con``: a DuckDB connection to use (default a new
    one); ``store``: where compacted frames are kept (None: none, every part is read);
    :attr:`copies_skipped`: parts naming a run already counted."""

    parts: list[tuple[Path, str]]  # (Parquet root, run id), from :func:`collect`
    by: str | None = None
    con: Any = field(default=None, repr=False)
    store: Path | None = None
    copies_skipped: int = field(default=0, init=False)
    _columns: dict[str, frozenset[str]] = field(default_factory=dict, init=False, repr=False)
    _host_label: bool | None = field(default=None, init=False, repr=False)  # None: no view
    _runs: dict[str, Path] = field(default_factory=dict, init=False, repr=False)
    # frame -> the columns read (None: every one)
    _loaded: dict[str, frozenset[str] | None] = field(default_factory=dict, init=False,
                                                       repr=False)
    # frames a question reads that no run has (a fleet captured without memray), answered
    # from an empty table of the question's columns
    absent: set[str] = field(default_factory=set, init=False)

    def __post_init__(self) -> None:
        if self.by is not None:
            label_column(self.by, "--by")
        try:
            import duckdb
            import pyarrow  # noqa: F401
        except ImportError:
            raise InputError("labkit fleet needs DuckDB and pyarrow: pip install "
                             "'labkit[fleet]'") from None
        from labkit.export.parquet import FRAMES

        for root, rid in dict.fromkeys(self.parts):  # run id -> the first root that holds it
            self._runs.setdefault(rid, root)
        self.copies_skipped = len(dict.fromkeys(self.parts)) - len(self._runs)
        if self.con is None:
            self.con = duckdb.connect()
        for name in FRAMES:  # a frame of an earlier fleet on a shared connection is not ours
            self.con.unregister(name)
        by_column = frozenset({label_column(self.by)} if self.by is not None else ())
        self._columns = {**QUESTION_COLUMNS, "runs": QUESTION_COLUMNS["runs"] | by_column}
        if not self._load("runs", self._columns["runs"]):
            raise InputError("no run in this fleet: give run directories or Parquet exports")
        self._check_versions()
        cols = self._runs_columns()
        if not by_column <= cols:
            self._load("runs")  # every label, to name them
            known = sorted(c.removeprefix("label_") for c in self._runs_columns()
                           if c.startswith("label_"))
            raise InputError(f"no run is labelled {self.by!r}; labels here: "
                             f"{', '.join(known) or 'none'}")
        self._host_label = "label_host" in cols
        self.con.execute(fleet_runs_sql(host_label=self._host_label, by=self.by))
        if self.by is not None and self.con.execute(
                "SELECT COUNT(load) FROM fleet_runs").fetchall()[0][0] < 2:
            raise InputError(f"label {self.by!r} is not a number on two runs or more; --by "
                             "needs a measure of load (requests, uptime_s, ...)")

    def _runs_columns(self) -> set[str]:
        result = self.con.execute("SELECT * FROM runs LIMIT 0")
        cols = {d[0] for d in result.description}
        result.fetchall()  # DuckDB 2: a result left open blocks the connection
        return cols

    def _load(self, name: str, columns: frozenset[str] | None = None) -> bool:
        """Register frame ``name`` of this fleet's runs with at least ``columns`` (None:
        every column), read again only for columns not read yet; False if no run has it."""
        import duckdb
        import pyarrow as pa

        from labkit.export.parquet import SCHEMA_VERSION
        from labkit.fleetcache import read_frame, union_by_name

        if name in self._loaded:
            have = self._loaded[name]
            if have is None or (columns is not None and columns <= have):
                return True
            columns = None if columns is None else columns | have
        listed = [(rid, f, st) for rid, root in self._runs.items()
                  for f, st in _part_files(root, name, rid)]
        if not listed:
            return False
        tables = read_frame(name, listed,
                            lambda path, rid: _read_part(path, name, rid, columns),
                            self.store, SCHEMA_VERSION, columns)
        try:
            self.con.register(name, union_by_name(tables))
        except (pa.ArrowException, duckdb.Error) as exc:
            raise InputError(f"cannot read the {name} frame of this fleet: "
                             f"{_first_line(exc)}; re-export its runs") from None
        if name == "runs" and self._host_label is not None:  # the view bound the old columns
            self.con.execute(fleet_runs_sql(host_label=self._host_label, by=self.by))
        self._loaded[name] = columns
        return True

    def _need(self, query: str, columns: dict[str, frozenset[str]] | None = None) -> None:
        """Read the frames ``query`` names (a word that is a frame's name, ``fleet_runs``
        naming ``runs``) not read yet: the ``columns`` given for a frame, every column of
        any other."""
        from labkit.export.parquet import FRAMES

        words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", query))
        for name in FRAMES.keys() & (words | ({"runs"} if "fleet_runs" in words else set())):
            if not self._load(name, (columns or {}).get(name)) and name in EMPTY_FRAMES:
                self._register_empty(name)

    def _register_empty(self, name: str) -> None:
        import pyarrow as pa

        self.con.register(name, pa.table({c: pa.array([], type=pa.type_for_alias(t))
                                          for c, t in EMPTY_FRAMES[name].items()}))
        self.absent.add(name)
        self._loaded[name] = None

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
        """Any SQL over the fleet's views (each frame it names read, every column, if it
        was not); a pandas DataFrame."""
        return self._ask(query, {})

    def _ask(self, query: str, columns: dict[str, frozenset[str]] | None = None) -> Any:
        """``query``'s answer, reading for each frame it names only its ``columns``
        (default the questions' ones)."""
        import duckdb

        self._need(query, self._columns if columns is None else columns)
        try:
            return self.con.execute(query).df()
        except duckdb.CatalogException as exc:  # a user's query naming a frame no run has
            raise InputError(f"{_first_line(exc)} (no run in this fleet has it)") from None

    @property
    def runs(self) -> Any:
        """One row per run: node, load, labels, measures, verdict and top suspect."""
        return self.sql("SELECT * FROM fleet_runs ORDER BY node, run_id")

    def growing_sites(self) -> Any:
        """:data:`GROWING_SITES_SQL`: sites that grew on two nodes or more, and their slope
        in bytes per unit of ``load``."""
        return self._ask(GROWING_SITES_SQL)

    def outliers(self) -> Any:
        """:data:`OUTLIERS_SQL`: nodes far above the fleet in heap, RSS, threads, fds or GC
        share."""
        return self._ask(OUTLIERS_SQL)

    def top_suspects(self) -> Any:
        """:data:`TOP_SUSPECTS_SQL`: each run's top suspect, by how many nodes it leads."""
        return self._ask(TOP_SUSPECTS_SQL)

    def summary(self) -> dict[str, Any]:
        """The three answers as JSON-ready records, with the fleet's size."""
        def records(df: Any) -> list[dict[str, Any]]:
            return [{k: (None if v != v else v) for k, v in r.items()}  # NaN -> None
                    for r in df.astype(object).to_dict("records")]

        runs, nodes = self.counts()
        sites, outliers, tops = self.growing_sites(), self.outliers(), self.top_suspects()
        return {"runs": runs, "nodes": nodes,
                "copies_skipped": self.copies_skipped,
                "absent_frames": sorted(self.absent),  # after the questions: they find it
                "verdict": self.verdict().to_json(),
                "load": self.by or "duration_s",
                "growing_sites": records(sites),
                "outliers": records(outliers),
                "top_suspects": records(tops)}

    def verdict(self) -> FleetVerdict:
        """:func:`labkit.analysis.fleet.fleet_verdict` over this fleet's answers."""
        sites = self.growing_sites()
        grew_on = (self.nodes_where(sites.function.iloc[0], int(sites.line.iloc[0]))
                   if len(sites) else [])
        return fleet_verdict(self.counts()[1], sites, self.outliers(), grew_on,
                             memory="memray_growth" not in self.absent)

    def counts(self) -> tuple[int, int]:
        """How many runs and how many nodes (without reading every column of ``runs``)."""
        n = self._ask("SELECT COUNT(*), COUNT(DISTINCT node) FROM fleet_runs").iloc[0]
        return int(n.iloc[0]), int(n.iloc[1])

    def nodes_where(self, function: str, line: int) -> list[str]:
        """The nodes on which the site ``function`` at ``line`` grew during the run."""
        self._need("memray_growth", self._columns)
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
    if by is not None:
        label_column(by, "--by")  # before any export
    return Fleet(collect(list(paths), labels, store), by=by,
                 store=store if store is not None else cache_root())
