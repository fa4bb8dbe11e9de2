"""Run directories: atomic publishing, no overwrites, schema and checksum checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labkit.artifacts import GC_HEAP, Artifact
from labkit.errors import CorruptCaptureError, InputError
from labkit.rundir import MANIFEST, SCHEMA_VERSION, RunWriter, read_manifest
from tests.conftest import assert_clean_error, labkit


def _make(tmp_path: Path) -> Path:
    w = RunWriter(tmp_path / "run", "test", ["labkit", "test"], {"n": 3})
    w.file(Artifact("a.csv", "unit", "test data", "--unit")).write_text("x\n1\n")
    w.file(Artifact("never-written.bin", "unit", "test data", "--unit"))
    assert not (tmp_path / "run").exists()  # nothing under the final name until published
    return w.publish(outcome={"reason": "exited"})


def test_publish_writes_manifest_with_checksums(tmp_path: Path) -> None:
    run = _make(tmp_path)
    m = json.loads((run / MANIFEST).read_text())
    assert m["schema_version"] == SCHEMA_VERSION
    assert m["params"] == {"n": 3}
    assert [a["name"] for a in m["artifacts"]] == ["a.csv"]
    art = m["artifacts"][0]
    assert art["producer"] == "unit" and art["bytes"] == 4 and len(art["sha256"]) == 64
    for key in ("labkit_version", "argv", "start_utc", "end_utc", "host", "t0_ns"):
        assert key in m
    assert {"version", "implementation", "free_threaded", "gc_threshold", "platform"} <= set(
        m["host"])
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
    assert read_manifest(run)["kind"] == "test"


def test_existing_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    with pytest.raises(InputError, match="already exists"):
        RunWriter(tmp_path / "run", "test", [])


def test_modified_file_fails_the_checksum(tmp_path: Path) -> None:
    run = _make(tmp_path)
    (run / "a.csv").write_text("x\n2\n")
    with pytest.raises(CorruptCaptureError, match="checksum"):
        read_manifest(run)


def test_missing_file_and_wrong_schema(tmp_path: Path) -> None:
    run = _make(tmp_path)
    m = json.loads((run / MANIFEST).read_text())
    m["schema_version"] = 99
    (run / MANIFEST).write_text(json.dumps(m))
    with pytest.raises(CorruptCaptureError, match="schema_version 99"):
        read_manifest(run)
    m["schema_version"] = SCHEMA_VERSION
    (run / MANIFEST).write_text(json.dumps(m))
    (run / "a.csv").unlink()
    with pytest.raises(CorruptCaptureError, match="missing"):
        read_manifest(run)


def test_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        read_manifest(tmp_path / "nope")
    with pytest.raises(InputError, match=r"no manifest\.json"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(CorruptCaptureError, match="not valid JSON"):
        read_manifest(tmp_path)


@pytest.mark.slow
def test_cli_wrong_checksum_and_unreadable_run(tmp_path: Path) -> None:
    run = _make(tmp_path)
    (run / "a.csv").write_text("x\n9\n")
    assert_clean_error(labkit("summary", str(run)), "checksum", "a.csv")
    assert_clean_error(labkit("summary", str(tmp_path / "missing")), "not a run directory")
    (tmp_path / "locked" / MANIFEST).mkdir(parents=True)
    assert_clean_error(labkit("summary", str(tmp_path / "locked")), "manifest", "a directory")
    (tmp_path / "plain-file").write_text("x")
    assert_clean_error(labkit("summary", str(tmp_path / "plain-file")), "not a run directory")


def test_pack_run_gzips_large_files_and_keeps_them_loadable(tmp_path: Path) -> None:
    import gzip

    from labkit.frames import load

    w = RunWriter(tmp_path / "run", "test", [])
    w.file(GC_HEAP).write_text(
        "t_ns,rss_bytes,allocated_blocks,count0,count1,count2\n"
        + "".join(f"{i},{i * 4096},{i},1,2,3\n" for i in range(50_000)))
    w.file(Artifact("small.txt", "unit", "test data", "--unit")).write_text("x")
    run = w.publish()
    before = load(run).heap
    from labkit.rundir import pack_run

    assert pack_run(run, min_bytes=1000) == ["heap.csv"]
    m = read_manifest(run)  # checksums of the packed file verified
    assert sorted(a["name"] for a in m["artifacts"]) == ["heap.csv.gz", "small.txt"]
    assert not (run / "heap.csv").exists()
    assert gzip.decompress((run / "heap.csv.gz").read_bytes()).startswith(b"t_ns,")
    assert load(run).heap.equals(before)
