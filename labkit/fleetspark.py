"""The fleet's main question on Spark, over the same Parquet export root DuckDB reads.

What the README's Spark snippet does, as functions: read ``runs`` and ``memray_growth`` with
schema merging, define ``fleet_runs`` as :func:`labkit.fleetdb.fleet_runs_sql` does, run
:data:`labkit.fleetdb.GROWING_SITES_SQL` unchanged. Needs pyspark (the test extra) and Java
17 or later; nothing is imported until a function is called.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from labkit.errors import InputError
from labkit.options import label_column

_GLOB = re.compile(r"[*?\[\]{}\\]")  # Hadoop path globs: a root is a path, never a pattern


def local_session(cores: int = 2, shuffle_partitions: int = 4) -> Any:
    """A local-mode SparkSession (``local[cores]``, no UI, bound to loopback) sized for a
    fleet on one machine: few shuffle partitions, as the fleet's tables are small."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise InputError("Spark needs pyspark: pip install 'pyspark>=4' (and Java 17+, "
                         "scripts/install-java)") from None
    session = (SparkSession.builder.master(f"local[{cores}]").appName("labkit-fleet")
               .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
               .config("spark.default.parallelism", str(cores))
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.driver.host", "127.0.0.1")
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    return session


def register(spark: Any, root: Path | str, by: str | None = "requests") -> None:
    """``runs``, ``memray_growth`` and ``fleet_runs`` as temporary views of the export
    ``root`` (``frame=NAME/run_id=ID/`` folders), as the README's snippet makes them."""
    from labkit.fleetdb import fleet_runs_sql

    root = str(root)
    if _GLOB.search(root):
        raise InputError(f"{root!r} has a character Spark reads as a glob; give Spark an "
                         "export root whose path has none of * ? [ ] { } \\")
    if by is not None:
        label_column(by, "by")
    for frame in ("runs", "memray_growth"):
        (spark.read.option("mergeSchema", "true").parquet(f"{root}/frame={frame}")
         .createOrReplaceTempView(frame))
    cols = set(spark.table("runs").columns)
    spark.sql(fleet_runs_sql(host_label="label_host" in cols, by=by))


def growing_sites(spark: Any, root: Path | str, by: str | None = "requests"
                  ) -> list[dict[str, Any]]:
    """:data:`labkit.fleetdb.GROWING_SITES_SQL` on Spark over ``root``: one dict a row, in
    the query's order."""
    from labkit.fleetdb import GROWING_SITES_SQL

    register(spark, root, by)
    return [r.asDict() for r in spark.sql(GROWING_SITES_SQL).collect()]
