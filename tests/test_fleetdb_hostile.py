"""Hostile names through export and fleet: no folder name, path, label or ``--by`` key is
ever SQL to DuckDB, and every run is counted exactly once.

Two recorded pods are exported once; each example renames and rewrites copies of those
exports under hostile names (cheap) and asks the fleet in process, with a canary table in
its DuckDB connection and a canary file on disk that must stay untouched.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from labkit.errors import InputError
from labkit.export.parquet import FRAMES
from labkit.options import LABEL_KEY, label, label_column
from tests.conftest import assert_clean_error, labkit

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "datasets" / "fleet"
INJECTION = "x AS SELECT 42; COPY (SELECT 42) TO $$pwned.csv$$; CREATE VIEW y"

# Names a shell, a glob, a SQL string or a terminal would take for something else
NASTY = ["it's \"x\"", "$$", "a$$b$$", "\\", "back\\slash", "new\nline", "\x1b[2J", "br[1]",
         "[", "]", "*", "?", "**", "{a,b}", "a,b", "k=v", "run_id=x", "frame=runs", "-rf",
         "--by", "'; DROP TABLE canary; --", "\"; DROP TABLE canary; --", "é漢字🙂", " ",
         "x" * 200, "%s%n", "NULL", "label_host", "..."]
NAMES = st.one_of(st.sampled_from(NASTY), st.text(min_size=1, max_size=60),
                  st.text(alphabet="'\"$\\[]*?{},=-;\n\x1b ", min_size=1, max_size=30))


def _fs_name(name: str) -> bool:
    """Whether ``name`` can be one folder's name here."""
    return name not in (".", "..") and "/" not in name and "\x00" not in name and \
        len(("run_id=" + name).encode()) <= 255


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every path below ``root``, with its size and modification time."""
    return {os.path.relpath(p, root): (os.lstat(p).st_size, os.lstat(p).st_mtime_ns)
            for d, _, files in os.walk(root) for p in [d, *(os.path.join(d, f)
                                                             for f in files)]}


def _rename_runs(root: Path, old: str, new: str) -> None:
    for frame in root.iterdir():
        src = frame / f"run_id={old}"
        if src.is_dir():
            src.rename(frame / f"run_id={new}")


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """pod-01 exported twice (two copies) and pod-02 once, with their run ids."""
    from labkit import load
    from labkit.export.parquet import export_parquet, run_id

    base = tmp_path_factory.mktemp("hostile-fleet")
    out: dict[str, object] = {"base": base}
    for pod, key in (("pod-01", "a"), ("pod-02", "b")):
        run = load(next(p.parent for p in (FLEET / pod).glob("*/manifest.json")),
                   background_stats=False)
        export_parquet(run, base / key / "export")
        out[f"rid_{key}"] = run_id(run)
        for frame in (base / key / "export").iterdir():  # the runs and one other frame:
            if frame.name not in ("frame=runs", "frame=heap"):  # cheaper examples, more
                shutil.rmtree(frame)
        odd = base / key / "export" / "frame=odd"  # a folder that is no frame: renamed
        shutil.copytree(base / key / "export" / "frame=runs", odd)  # to hostile names
    shutil.copytree(base / "a" / "export", base / "c" / "export")
    out["runs_part"] = next((base / "a" / "export" / "frame=runs").glob("*/*")).read_bytes()
    (base / "canary.txt").write_text("canary\n")
    import duckdb

    out["con"] = duckdb.connect()  # one for every example: its canary must outlive them all
    out["con"].execute("CREATE TABLE canary AS SELECT 42 AS x")
    cwd = os.getcwd()
    os.chdir(base)  # where a relative COPY ... TO would write: watched by every example
    yield out
    os.chdir(cwd)


@pytest.mark.slow  # 1,000 examples, about a minute: in make test, not in make check
@settings(max_examples=1000, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=NAMES, copy_name=NAMES, rid=NAMES, key=NAMES, value=st.text(max_size=40),
       by=NAMES)
@example(name="R", copy_name="S", rid="ID", key="a b", value="$$pwned$$", by="x; DROP")
@example(name="frame=x AS SELECT 42; COPY (SELECT 42) TO $$pwned.csv$$; CREATE VIEW y",
         copy_name="br[1]", rid="a*b?", key="zone", value="'); DROP TABLE canary; --",
         by="zone")
@example(name="-", copy_name="\\\n\x1b", rid="x" * 200, key="requests", value="12",
         by="requests")
def test_hostile_names_are_never_sql_and_runs_count_once(
        exports: dict, name: str, copy_name: str, rid: str, key: str, value: str,
        by: str) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from labkit.fleetdb import Fleet, collect, fleet

    assume(_fs_name(name) and _fs_name(copy_name) and _fs_name(rid))
    assume(rid not in (exports["rid_a"], exports["rid_b"]))
    base: Path = exports["base"]
    # label keys: accepted exactly when they follow the documented rule
    plain = LABEL_KEY.fullmatch(key) is not None
    k, _, v = f"{key}={value}".partition("=")
    try:
        assert label(f"{key}={value}") == (k, v) and LABEL_KEY.fullmatch(k)
    except argparse.ArgumentTypeError:
        assert not LABEL_KEY.fullmatch(k)
    # --by: refused in one line before any work, unless plain
    if LABEL_KEY.fullmatch(by) is None:
        with pytest.raises(InputError, match="not a plain name") as exc:
            fleet(base / "nowhere", by=by)
        assert "\n" not in str(exc.value)
    # two copies of pod-01 under hostile folder and run names, a hostile label value
    # (and a hostile frame folder, which is no frame), pod-02 as it is
    one, two = base / "a" / name, base / "c" / copy_name
    (base / "a" / "export").rename(one)
    (base / "c" / "export").rename(two)
    odd = f"frame={name}" if name not in FRAMES else "frame=odd"
    try:
        for root in (one, two):
            _rename_runs(root, exports["rid_a"], rid)
        col = label_column(key) if plain else "label_x"
        part = one / "frame=runs" / f"run_id={rid}" / "part-0.parquet"
        t = pq.read_table(part)
        t = t.drop_columns([c for c in (col,) if c in t.column_names])
        pq.write_table(t.append_column(col, pa.array([value], pa.string())), part)
        shutil.copy(part, two / "frame=runs" / f"run_id={rid}" / "part-0.parquet")
        for root in (one, two):
            (root / "frame=odd").rename(root / odd)
        before = _tree(base)
        con = exports["con"]
        parts = collect([one, two, base / "b" / "export"])
        fl = Fleet(parts, con=con)
        runs = fl.runs
        assert sorted(runs.run_id) == sorted([rid, exports["rid_b"]])  # once each
        assert fl.copies_skipped == 1
        assert runs.set_index("run_id").loc[rid, col] == value
        if LABEL_KEY.fullmatch(by):  # a plain --by: an answer, or one line saying why not
            try:
                assert len(Fleet(parts, by=by, con=con).runs) == 2
            except InputError as exc:
                assert "\n" not in str(exc) and by in str(exc)
        assert con.execute("SELECT * FROM canary").fetchall() == [(42,)]
        tables = con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        assert tables == [("canary",)]
        assert _tree(base) == before  # nothing written, the canary file untouched
        assert (base / "canary.txt").read_text() == "canary\n"
    finally:
        for root in (one, two):
            if (root / odd).is_dir():
                (root / odd).rename(root / "frame=odd")
            runs = root / "frame=runs" / f"run_id={rid}" / "part-0.parquet"
            if runs.is_file():  # as exported, for the next example
                runs.write_bytes(exports["runs_part"])
            _rename_runs(root, rid, exports["rid_a"])
        one.rename(base / "a" / "export")
        two.rename(base / "c" / "export")


def _export(run: Path, out: Path, *labels: str) -> None:
    cp = labkit("export", str(run), "--to", "parquet", "--out", str(out),
                *(a for lab in labels for a in ("--label", lab)))
    assert cp.returncode == 0, cp.stderr


def _pod(n: int) -> Path:
    return next(p.parent for p in (FLEET / f"pod-{n:02d}").glob("*/manifest.json"))


def test_cli_fleet_reads_a_hostile_path_and_counts_copies_once(tmp_path: Path) -> None:
    hostile = tmp_path / "it's \"x\" br[1] $$ * ? \\ \x1b[2J" / INJECTION
    _export(_pod(4), hostile)
    injected = hostile / f"frame={INJECTION}" / "run_id=ID"
    injected.mkdir(parents=True)
    shutil.copy(next((hostile / "frame=runs").glob("*/part-0.parquet")), injected)
    shutil.copytree(hostile, tmp_path / "copyA")
    shutil.copytree(hostile, tmp_path / "copyB")
    out = tmp_path / "fleet.json"
    cp = labkit("fleet", str(_pod(1)), str(tmp_path / "copyA"), str(tmp_path / "copyB"),
                str(hostile), "--store", str(tmp_path / "store"), "--json", str(out),
                cwd=tmp_path)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.startswith("fleet: 2 runs on 2 nodes"), cp.stdout
    assert "skipped 2 copies" in cp.stdout
    data = json.loads(out.read_text())
    assert (data["runs"], data["copies_skipped"]) == (2, 2)
    assert not list(tmp_path.rglob("pwned*")) and not list(Path.cwd().glob("pwned*"))


def test_cli_fleet_refuses_a_by_key_that_is_not_a_name(tmp_path: Path) -> None:
    for by in ("x; DROP TABLE runs", "a b", "requests)", "é"):
        cp = labkit("fleet", str(FLEET / "pod-01"), "--by", by, "--store",
                    str(tmp_path / "s"))
        assert_clean_error(cp, "--by", "not a plain name")
    assert not (tmp_path / "s").exists()  # refused before any export


def test_json_output_is_checked_before_any_export(tmp_path: Path) -> None:
    taken = tmp_path / "taken.json"
    taken.write_text("{}")
    cp = labkit("fleet", str(FLEET / "pod-01"), "--json", str(taken), "--store",
                str(tmp_path / "s"))
    assert_clean_error(cp, "exists", "--force")
    assert not (tmp_path / "s").exists()


def test_label_keys_follow_one_rule_and_values_are_anything(tmp_path: Path) -> None:
    bad = labkit("export", str(_pod(1)), "--to", "parquet", "--out", str(tmp_path / "x"),
                 "--label", "a b=1")
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "x").exists()
    value = "it's \"x\"; DROP TABLE runs; $$ \\ \x1b[2J"
    _export(_pod(1), tmp_path / "e", f"zone={value}")
    from labkit.fleetdb import fleet

    assert list(fleet(tmp_path / "e").runs.label_zone) == [value]
    # a manifest whose label key breaks the rule: one line, nothing written
    run = tmp_path / "run"
    shutil.copytree(_pod(2), run)
    m = json.loads((run / "manifest.json").read_text())
    m["labels"] = {"x) AS load FROM runs; --": "1"}
    (run / "manifest.json").write_text(json.dumps(m))
    assert_clean_error(labkit("export", str(run), "--to", "parquet", "--out",
                              str(tmp_path / "m")), "invalid labels", "does not match")
    assert_clean_error(labkit("fleet", str(run), "--store", str(tmp_path / "s")),
                       "invalid labels", "does not match")
    assert not (tmp_path / "m").exists()


def test_fleet_refuses_parts_that_are_not_regular_files(tmp_path: Path) -> None:
    root = tmp_path / "e"
    _export(_pod(1), root)
    # memray_growth: a frame the fleet's questions read (a frame no query names is never opened)
    part = next((root / "frame=memray_growth").glob("*/part-0.parquet"))
    fifo = part.with_name("part-1.parquet")
    os.mkfifo(fifo)
    assert_clean_error(labkit("fleet", str(root), timeout=60), "FIFO", str(fifo.name))
    fifo.unlink()
    fifo.symlink_to(part)
    assert_clean_error(labkit("fleet", str(root)), "symbolic link")
    fifo.unlink()
    fifo.write_bytes(b"PAR1 not really PAR1")
    assert_clean_error(labkit("fleet", str(root)), "cannot read the memray_growth frame",
                       "re-export")
    fifo.unlink()
    assert labkit("fleet", str(root)).returncode == 0


def test_export_refuses_what_is_in_its_way(tmp_path: Path) -> None:
    run = _pod(1)
    file_root = tmp_path / "f"
    file_root.mkdir()
    (file_root / "frame=runs").write_text("mine")
    assert_clean_error(labkit("export", str(run), "--to", "parquet", "--out",
                              str(file_root), "--force"), "frame=runs", "not a folder")
    assert (file_root / "frame=runs").read_text() == "mine"
    root = tmp_path / "e"
    _export(run, root)
    part = next((root / "frame=runs").glob("*/part-0.parquet"))
    part.unlink()
    part.mkdir()
    assert_clean_error(labkit("export", str(run), "--to", "parquet", "--out", str(root),
                              "--force"), "part-0.parquet", "a folder")
    part.rmdir()
    elsewhere = tmp_path / "elsewhere"
    heap = next((root / "frame=heap").glob("run_id=*"))
    heap.rename(elsewhere)
    heap.symlink_to(elsewhere, target_is_directory=True)
    before = {p: p.stat().st_mtime_ns for p in elsewhere.iterdir()}
    assert_clean_error(labkit("export", str(run), "--to", "parquet", "--out", str(root),
                              "--force"), "symbolic link")
    assert {p: p.stat().st_mtime_ns for p in elsewhere.iterdir()} == before


def test_concurrent_fleets_share_the_cache(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    args = [sys.executable, "-m", "labkit", "fleet", str(_pod(1)), str(_pod(2)), str(_pod(3))]
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert re.match(r"fleet: 3 runs on 3 nodes", out), out
    assert not list((tmp_path / "cache").rglob("*.tmp"))


@pytest.mark.parametrize("inside", ["", "v1/answers.json"])
def test_fleet_json_in_its_own_store_is_refused_first(tmp_path: Path, inside: str) -> None:
    store = tmp_path / "store"
    cp = labkit("fleet", str(FLEET), "--store", str(store), "--json",
                str(store / inside) if inside else str(store))
    assert_clean_error(cp, "--json", "inside the store")
    assert not store.exists()
