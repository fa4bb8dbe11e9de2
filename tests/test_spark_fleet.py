"""The fleet query on real Spark (pyspark, local mode, Java 17+) against DuckDB's rows.

Over the recorded fleet (datasets/fleet, exported as ``labkit fleet`` exports it), the README's
Spark snippet and SQL are executed as printed; over a generated fleet of 1,000 runs
(:mod:`labkit.export.fleetgen`), :mod:`labkit.fleetspark`, against DuckDB reading every part
and through the store's compacted frames. One SparkSession for the module.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "datasets" / "fleet"
GENERATED_RUNS = 1000

pytestmark = pytest.mark.slow  # Spark starts in seconds; make test, not make check


@pytest.fixture(scope="module")
def spark():
    from labkit.fleetspark import local_session

    session = local_session(cores=2, shuffle_partitions=4)
    yield session
    session.stop()


@pytest.fixture(scope="module")
def recorded() -> Path:
    """The recorded fleet's export root (the session's fleet cache, as labkit exports it)."""
    from labkit.fleetdb import collect

    roots = {root for root, _ in collect([FLEET])}
    assert len(roots) == 1
    return roots.pop()


def _duckdb_rows(fl) -> list[dict]:
    df = fl.growing_sites()
    return [{k: (None if v != v else v) for k, v in r.items()}
            for r in df.astype(object).to_dict("records")]


def _same_rows(got: list[dict], want: list[dict]) -> None:
    """Spark's rows are DuckDB's: same order, same keys; floats to 1e-9 relative."""
    assert len(got) == len(want) > 0, (got, want)
    for g, w in zip(got, want, strict=True):
        assert set(g) == set(w)
        for k, v in w.items():
            if isinstance(v, float):
                assert math.isclose(g[k], v, rel_tol=1e-9), (k, g[k], v)
            else:
                assert g[k] == v, (k, g[k], v)


def test_readme_spark_snippet_gives_duckdbs_rows_on_the_recorded_fleet(spark, recorded) -> None:
    readme = (ROOT / "README.md").read_text()
    snippet = re.search(r"```python\n(from pyspark.sql import.*?)```", readme, re.S).group(1)
    sql = re.search(r"```sql\n(.*?)```", readme, re.S).group(1)
    assert 'root = "fleet"' in snippet
    snippet = snippet.replace('root = "fleet"', f"root = {str(recorded)!r}")
    snippet = snippet.replace(".show()", ".collect()")
    ns: dict = {"GROWING_SITES": sql}
    exec(compile(snippet, "README.md (Spark snippet)", "exec"), ns)
    assert ns["spark"] is spark  # getOrCreate: the module's local session
    rows = [r.asDict() for r in spark.sql(sql).collect()]
    from labkit.fleetdb import Fleet, collect

    want = _duckdb_rows(Fleet(collect([recorded]), by="requests"))
    _same_rows(rows, want)
    canaries = len(list(FLEET.glob("*/leaky/manifest.json")))  # the leaky release's pods
    assert rows[0]["function"] == "serve" and rows[0]["nodes_growing"] == canaries


def test_a_generated_fleet_of_1000_runs_gives_the_same_rows(spark, recorded,
                                                             tmp_path: Path) -> None:
    from labkit.export.fleetgen import generate_fleet
    from labkit.fleetdb import Fleet, collect
    from labkit.fleetspark import growing_sites

    out = tmp_path / "fleet1000"
    ids = generate_fleet(recorded, out, GENERATED_RUNS, frames=("memray_growth",))
    assert len(ids) == len(set(ids)) == GENERATED_RUNS
    store = tmp_path / "store"
    fl = Fleet(collect([out]), by="requests", store=store)  # every part read, compacted
    runs = fl.runs
    assert len(runs) == GENERATED_RUNS and runs.node.nunique() == GENERATED_RUNS
    assert runs.load.nunique() > GENERATED_RUNS // 4  # loads vary, not 20 values
    want = _duckdb_rows(fl)
    got = growing_sites(spark, out)
    _same_rows(got, want)
    assert list((store / "compact").glob("v*/memray_growth-*.parquet"))
    _same_rows(got, _duckdb_rows(Fleet(collect([out]), by="requests", store=store)))
    # the leaky pods' copies are the growing nodes
    top = want[0]
    assert top["function"] == "serve"
    assert top["nodes_growing"] == sum("-leaky-" in rid for rid in ids) > 0
    assert top["bytes_per_load"] > 0 and top["r"] > 0.9  # bytes scale with load
