"""The fleet view over the recorded fleet (datasets/fleet: 20 pods, a leaky release on some of
them): DuckDB's answers checked against labkit's own frames of each run, the README's Spark
SQL kept identical to the query labkit runs, and bad input refused in one line."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import assert_clean_error, labkit

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "datasets" / "fleet"


def _runs() -> dict[str, Path]:
    """node -> run directory, from the runs' own labels."""
    return {json.loads(m.read_text())["labels"]["host"]: m.parent
            for m in sorted(FLEET.glob("*/*/manifest.json"))}


@pytest.fixture(scope="module")
def fleet():
    import labkit

    return labkit.fleet(FLEET, by="requests")  # exported into the session's cache


def test_the_recorded_fleet_is_a_fleet() -> None:
    runs = _runs()
    assert len(runs) >= 20
    variants = {json.loads((p / "manifest.json").read_text())["params"]["variant"]
                for p in runs.values()}
    assert variants == {"leaky", "fixed"}


def test_fleet_finds_the_growing_site_on_exactly_the_leaky_nodes(fleet) -> None:
    from labkit import load

    leaky = {n for n, p in _runs().items() if p.name == "leaky"}
    sites = fleet.growing_sites()
    top = sites.iloc[0]
    assert (top.function, top.file) == ("serve", "pool_misuse.py"), sites.head()
    assert set(fleet.nodes_where(top.function, int(top.line))) == leaky
    assert top.bytes_per_load > 0 and top.r > 0.9  # the pool leaks a buffer per request
    out = fleet.outliers()
    heap = set(out[out.measure == "heap_peak_bytes"].node)
    assert heap == leaky, out
    tops = fleet.top_suspects()
    serve = tops[(tops.function == "serve")].iloc[0]
    assert serve.nodes_strong == len(leaky)
    # the fleet's per-node figures are labkit's own frames of each run
    runs = fleet.runs.set_index("node")
    for node, path in list(_runs().items())[:4]:
        assert runs.loc[node, "memray_peak_bytes"] == load(path).memray.metadata.peak_memory


def test_fleet_cli_prints_the_verdict_and_writes_json(fleet, tmp_path: Path) -> None:
    out = tmp_path / "fleet.json"
    cp = labkit("fleet", str(FLEET), "--by", "requests", "--json", str(out))
    assert cp.returncode == 0, cp.stderr
    leaky = sorted(n for n, p in _runs().items() if p.name == "leaky")
    assert re.search(rf"verdict: serve \(pool_misuse.py:\d+\) grew on {len(leaky)} of "
                     rf"{len(_runs())} nodes \({', '.join(leaky)}\)", cp.stdout), cp.stdout
    data = json.loads(out.read_text())
    assert data["runs"] == len(_runs()) and data["load"] == "requests"
    assert data["growing_sites"][0]["function"] == "serve"
    again = labkit("fleet", str(FLEET), "--json", str(out))
    assert_clean_error(again, "exists", "--force")


def test_readme_spark_sql_is_the_query_labkit_runs() -> None:
    from labkit.fleetdb import GROWING_SITES_SQL, fleet_runs_sql

    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sql\n(.*?)```", readme, re.S)
    assert GROWING_SITES_SQL.strip() in [b.strip() for b in blocks]
    view = fleet_runs_sql(host_label=True, by="requests")
    assert view in readme


def test_fleet_refuses_mixed_schema_versions(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from labkit.fleetdb import fleet

    store = tmp_path / "store"
    fleet(FLEET / "pod-01", store=store)
    root = next(store.iterdir())
    mixed = tmp_path / "mixed"
    shutil.copytree(root, mixed)
    part = next((mixed / "frame=runs").glob("*/*.parquet"))
    t = pq.read_table(part)
    i = t.schema.get_field_index("schema_version")
    t = t.set_column(i, "schema_version", pa.array([2] * len(t), pa.int32()))
    later = mixed / "frame=runs" / "run_id=from-a-later-labkit"
    later.mkdir()
    pq.write_table(t, later / "part-0.parquet")
    cp = labkit("fleet", str(mixed), str(root))
    assert_clean_error(cp, "mixes Parquet schema versions", "version 2", "re-export")
    assert cp.stdout == ""


def test_fleet_and_export_refuse_what_they_cannot_read(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_clean_error(labkit("fleet", str(empty)), "holds no labkit run")
    assert_clean_error(labkit("fleet", str(tmp_path / "nope")), "not found")
    assert_clean_error(labkit("fleet", str(FLEET / "pod-01"), "--by", "release", "--store",
                              str(tmp_path / "s")), "not a number")
    bare = tmp_path / "bare-run"
    bare.mkdir()
    (bare / "manifest.json").write_text(json.dumps({"schema_version": 1, "kind": "capture",
                                                    "artifacts": []}))
    for cmd in (("export", str(bare), "--to", "parquet", "--out", str(tmp_path / "p")),
                ("export", str(bare), "--to", "pprof", "--out", str(tmp_path / "q")),
                ("fleet", str(bare), "--store", str(tmp_path / "s2"))):
        assert_clean_error(labkit(*cmd), "no", "capture")


def test_a_fleet_without_memray_says_so_and_answers_the_rest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN runs captured without memray (the fd-leak datasets: GC, process sampler, origins),
    # exported into a cache of this test's own (the session's holds the recorded fleet alone,
    # which tests/test_spark_fleet.py generates its 1,000 runs from)
    from labkit.errors import InputError
    from labkit.fleetdb import fleet as open_fleet

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    runs = [ROOT / "datasets" / "fd-leak" / v for v in ("leaky", "fixed")]
    assert not any((r / "memray.bin").exists() for r in runs)
    fl = open_fleet(runs)
    # THEN the growth question has no rows and the verdict says why, not "nothing grew"
    assert len(fl.growing_sites()) == 0
    summary = fl.summary()
    assert summary["absent_frames"] == ["memray_growth"]
    assert "no run in this fleet has a memray capture" in summary["verdict"]["text"]
    assert len(fl.top_suspects()) >= 1  # the other questions still answer
    with pytest.raises(InputError, match="no run in this fleet has it"):
        fl.sql("SELECT * FROM pyspy_samples")
    # AND the CLI prints it, exit 0, no traceback
    cp = labkit("fleet", *map(str, runs))
    assert cp.returncode == 0, cp.stderr
    assert "(no run has a memray capture)" in cp.stdout and "Traceback" not in cp.stderr

