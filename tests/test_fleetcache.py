"""The store's compacted frames (labkit.fleetcache) and frames read on first use: the same
answers as reading every part, a changed run rewrites its bucket alone, and a compacted file
that is damaged or removed is read around, never trusted."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from labkit import fleetcache

ROOT = Path(__file__).resolve().parent.parent
FLEET = ROOT / "datasets" / "fleet"


@pytest.fixture(scope="module")
def recorded() -> Path:
    from labkit.fleetdb import collect

    return {root for root, _ in collect([FLEET])}.pop()  # the session's cache, shared


@pytest.fixture
def small_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fleetcache, "COMPACT_MIN_RUNS", 2)  # the 20 pods count as big


def _records(df) -> list[dict]:
    return [{k: (None if v != v else v) for k, v in r.items()}  # NaN, NA -> None
            for r in df.astype(object).to_dict("records")]


def _answers(fl) -> list:
    return [_records(df) for df in (fl.runs, fl.growing_sites(), fl.outliers(),
                                    fl.top_suspects())]


def _compacted(store: Path) -> set[str]:
    return {p.name for p in (store / "compact").glob("v*/*.parquet")}


def test_compacted_frames_give_every_parts_answers(recorded: Path, tmp_path: Path,
                                                   small_threshold,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit import fleetdb
    from labkit.fleetdb import Fleet, collect

    parts = collect([recorded])
    want = _answers(Fleet(parts, by="requests"))
    store = tmp_path / "store"
    assert _answers(Fleet(parts, by="requests", store=store)) == want  # writes them
    files = _compacted(store)
    frames = {name.rsplit("-", 1)[0] for name in files}
    assert frames == {"runs", "memray_growth"}  # read when a query names them, no other
    # runs twice (the questions' columns, then every one for .runs), memray_growth once
    assert len(files) <= 3 * fleetcache.BUCKETS

    def no_part(*_):
        raise AssertionError("a part was read: the compacted copy should have been")

    monkeypatch.setattr(fleetdb, "_read_part", no_part)
    assert _answers(Fleet(parts, by="requests", store=store)) == want
    assert _compacted(store) == files


def test_a_changed_run_rewrites_its_bucket_alone(recorded: Path, tmp_path: Path,
                                                 small_threshold) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from labkit.fleetdb import Fleet, collect

    root = tmp_path / "fleet"
    shutil.copytree(recorded, root, ignore=shutil.ignore_patterns("frame=memray_*"))
    store = tmp_path / "store"
    parts = collect([root])
    assert len(Fleet(parts, store=store).runs) == len(parts)
    before = _compacted(store)
    rid = parts[0][1]
    part = root / "frame=runs" / f"run_id={rid}" / "part-0.parquet"
    t = pq.read_table(part)
    i = t.schema.get_field_index("label_release")
    pq.write_table(t.set_column(i, "label_release", pa.array(["9.9.9"])), part)
    runs = Fleet(parts, store=store).runs.set_index("run_id")
    assert runs.loc[rid, "label_release"] == "9.9.9"  # never a stale copy
    after = _compacted(store)
    # one bucket written anew, once per set of columns read (the questions', every one)
    assert len(after - before) == 2 and before <= after


def test_a_damaged_or_removed_compacted_file_is_read_around(recorded: Path, tmp_path: Path,
                                                            small_threshold) -> None:
    from labkit.fleetdb import Fleet, collect

    parts = collect([recorded])
    store = tmp_path / "store"
    want = Fleet(parts, by="requests", store=store).runs.pipe(_records)
    for f in (store / "compact").glob("v*/runs-*.parquet"):
        f.write_bytes(f.read_bytes()[:40])  # truncated
    assert Fleet(parts, by="requests", store=store).runs.pipe(_records) == want
    shutil.rmtree(store / "compact")
    assert Fleet(parts, by="requests", store=store).runs.pipe(_records) == want


def test_a_frame_is_read_when_a_query_names_it(recorded: Path) -> None:
    import duckdb

    from labkit.fleetdb import Fleet, collect

    con = duckdb.connect()
    fl = Fleet(collect([recorded]), con=con)
    with pytest.raises(duckdb.Error):  # not read yet
        con.execute("SELECT COUNT(*) FROM heap").fetchall()
    n = fl.sql("SELECT COUNT(DISTINCT run_id) AS n FROM heap").n.iloc[0]
    assert n == len(fl.runs)
    # a second fleet on the same connection never sees the first one's frames
    one = collect([recorded])[:1]
    Fleet(one, con=con)
    with pytest.raises(duckdb.Error):
        con.execute("SELECT COUNT(*) FROM heap").fetchall()


def test_compacted_files_unused_for_a_week_are_removed(recorded: Path, tmp_path: Path,
                                                      small_threshold) -> None:
    import os
    import time

    from labkit.fleetdb import Fleet, collect

    store = tmp_path / "store"
    folder = store / "compact" / "v1"
    folder.mkdir(parents=True)
    week = time.time() - (fleetcache.UNUSED_DAYS + 1) * 86400
    stale, recent = folder / "runs-stale.parquet", folder / "runs-recent.parquet"
    for p in (stale, recent):
        p.write_bytes(b"x")
    os.utime(stale, (week, week))
    parts = collect([recorded])
    Fleet(parts, store=store)
    assert not stale.exists() and recent.exists()
    used = next(p for p in folder.glob("runs-*.parquet") if p != recent)
    os.utime(used, (week, week))
    Fleet(parts, store=store)  # reads it: touched, so kept
    assert used.stat().st_mtime > week + 86400


def test_the_questions_read_only_their_columns_and_a_query_every_one(
        recorded: Path, tmp_path: Path, small_threshold,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit import fleetdb
    from labkit.fleetdb import QUESTION_COLUMNS, Fleet, collect

    parts = collect([recorded])
    want = _records(Fleet(parts, by="requests").growing_sites())
    asked: list[tuple[str, frozenset | None]] = []
    read = fleetdb._read_part

    def spy(path, frame, rid, columns=None):
        asked.append((frame, columns))
        return read(path, frame, rid, columns)

    monkeypatch.setattr(fleetdb, "_read_part", spy)
    store = tmp_path / "store"
    fl = Fleet(parts, by="requests", store=store)
    assert _records(fl.growing_sites()) == want
    fl.outliers(), fl.top_suspects(), fl.verdict()
    growth = {cols for frame, cols in asked if frame == "memray_growth"}
    assert growth == {QUESTION_COLUMNS["memray_growth"]}  # never the stacks
    asked.clear()
    # a query of the user's sees every column: the frame is read again, whole
    n = fl.sql("SELECT COUNT(stack) AS n FROM memray_growth").n.iloc[0]
    assert n > 0 and {cols for _, cols in asked} == {None}
    assert _records(fl.growing_sites()) == want
    runs, growth = (len([f for f in _compacted(store) if f.startswith(frame + "-")])
                    for frame in ("runs", "memray_growth"))
    assert growth == 2 * runs  # a copy per set of columns read, in the same buckets
    # a fresh fleet answers from the projected copies without reading a part
    asked.clear()
    assert _records(Fleet(parts, by="requests", store=store).growing_sites()) == want
    assert asked == []


def test_runs_read_for_the_questions_then_whole(recorded: Path) -> None:
    from labkit.errors import InputError
    from labkit.fleetdb import QUESTION_COLUMNS, Fleet, collect

    parts = collect([recorded])
    fl = Fleet(parts, by="requests")
    assert fl._loaded["runs"] == QUESTION_COLUMNS["runs"] | {"label_requests"}
    fl.growing_sites(), fl.outliers(), fl.top_suspects()
    before = fl.counts()  # from the questions' columns
    runs = fl.runs  # every column now, through fleet_runs made again
    assert fl._loaded["runs"] is None
    assert _records(runs) == _records(Fleet(parts, by="requests").runs)
    assert before == fl.counts() == (len(parts), runs["node"].nunique())
    labels = sorted(c.removeprefix("label_") for c in runs.columns if c.startswith("label_"))
    assert len(labels) >= 2  # more labels than the questions read
    with pytest.raises(InputError, match="no run is labelled 'nosuch'; labels here: "
                       + ", ".join(labels) + "$"):
        Fleet(parts, by="nosuch")
