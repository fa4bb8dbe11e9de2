"""Hostile run directories and JSON inputs: confined, bounded, one-line errors.

A manifest may name anything and a run may hold links, devices or FIFOs; JSON may hold
non-finite numbers, deep nesting or the wrong shapes. Loading must raise only labkit's own
error (or succeed), and never hang: every case runs under an alarm.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit import load
from labkit.artifacts import GC_HEAP, Artifact
from labkit.errors import LabkitError
from labkit.frames.pyspy import load_dump, load_speedscope
from labkit.rundir import MANIFEST, RunWriter
from tests.conftest import assert_clean_error, labkit

HEAP = "t_ns,rss_bytes,allocated_blocks,count0,count1,count2\n1,4096,10,1,2,3\n"


@contextlib.contextmanager
def bounded(seconds: int = 5) -> Iterator[None]:
    """Fail (rather than hang) if the block takes longer than ``seconds``."""
    def _alarm(signum: int, frame: object) -> None:
        raise TimeoutError(f"hung for {seconds} s")

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _run(root: Path) -> Path:
    w = RunWriter(root / "run", "test", ["labkit", "test"])
    w.file(GC_HEAP).write_text(HEAP)
    w.file(Artifact("note.txt", "unit", "a note", "--unit")).write_text("x")
    return w.publish(outcome={"reason": "exited"})


def _rewrite(run: Path, edit) -> None:
    m = json.loads((run / MANIFEST).read_text())
    edit(m)
    (run / MANIFEST).write_text(json.dumps(m))


def _only_labkit_errors(run: Path) -> None:
    with bounded():
        try:
            r = load(run)
            _ = r.heap
        except LabkitError as exc:
            assert "\n" not in str(exc)


NAMES = st.one_of(
    st.sampled_from(["../../../../etc/passwd", "/etc/passwd", "..", ".", "", "a/b", "a\\b",
                     "x\x00y", "manifest.json", "\x1b[2J", "heap.csv/..", "./heap.csv"]),
    st.text(max_size=40),
)
JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
              st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8,
)


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAMES, field=st.sampled_from(["name", "bytes", "sha256", "producer", None]),
       value=JSONISH, top=st.sampled_from(["artifacts", "t0_ns", "t0_epoch_s",
                                           "schema_version", None]), data=st.data())
def test_manifest_mutations_raise_only_labkit_errors(
        tmp_path_factory: pytest.TempPathFactory, name: str, field: str | None,
        value: object, top: str | None, data: st.DataObject) -> None:
    run = _run(tmp_path_factory.mktemp("m"))

    def edit(m: dict) -> None:
        m["artifacts"][0]["name"] = name
        if field is not None:
            if data.draw(st.booleans(), label="drop"):
                m["artifacts"][1].pop(field)
            else:
                m["artifacts"][1][field] = value
        if top is not None:
            m[top] = value

    _rewrite(run, edit)
    _only_labkit_errors(run)


@pytest.mark.parametrize("name", ["../../../../etc/passwd", "/etc/passwd", "sub/heap.csv",
                                  "..", "manifest.json"])
def test_artifact_names_outside_the_run_are_refused(tmp_path: Path, name: str) -> None:
    run = _run(tmp_path)
    target = Path("/etc/passwd")
    data = target.read_bytes()

    def edit(m: dict) -> None:
        m["artifacts"][1].update(name=name, bytes=len(data),
                                 sha256=hashlib.sha256(data).hexdigest())

    _rewrite(run, edit)
    with pytest.raises(LabkitError, match=r"outside the run|plain file names"):
        load(run)


def _replace_with(run: Path, name: str, make) -> None:
    p = run / name
    p.unlink()
    make(p)


def _same_checksum_as(run: Path, name: str, content: bytes) -> None:
    _rewrite(run, lambda m: [a.update(bytes=len(content),
                                      sha256=hashlib.sha256(content).hexdigest())
                             for a in m["artifacts"] if a["name"] == name])


def test_symlink_out_of_the_run_is_refused_even_with_a_matching_checksum(
        tmp_path: Path) -> None:
    run = _run(tmp_path)
    outside = tmp_path / "outside.csv"
    outside.write_text(HEAP + "2,8192,11,1,2,3\n")
    _replace_with(run, "heap.csv", lambda p: p.symlink_to(outside))
    _same_checksum_as(run, "heap.csv", outside.read_bytes())
    with bounded(), pytest.raises(LabkitError, match="symbolic link"):
        load(run)
    assert_clean_error(labkit("summary", str(run)), "symbolic link")


@pytest.mark.parametrize("kind", ["fifo", "dev-zero-link", "directory"])
def test_special_files_are_refused_without_hanging(tmp_path: Path, kind: str) -> None:
    run = _run(tmp_path)
    make = {"fifo": os.mkfifo, "dev-zero-link": lambda p: p.symlink_to("/dev/zero"),
            "directory": os.mkdir}[kind]
    _replace_with(run, "heap.csv", make)
    with bounded(), pytest.raises(LabkitError):
        load(run)


def test_manifest_that_is_a_fifo_does_not_hang(tmp_path: Path) -> None:
    run = _run(tmp_path)
    _replace_with(run, MANIFEST, os.mkfifo)
    with bounded(), pytest.raises(LabkitError, match="FIFO"):
        load(run)


def test_loose_capture_that_is_a_fifo_or_device_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "capture.bin"
    os.mkfifo(fifo)
    with bounded(20):
        assert_clean_error(labkit("summary", str(fifo)), "FIFO")
        assert_clean_error(labkit("summary", "/dev/zero"), "device")


@pytest.mark.parametrize("text,words", [
    ('{"schema_version": 1, "t0_ns": Infinity, "artifacts": []}', "non-finite"),
    ('{"schema_version": 1, "t0_ns": NaN, "artifacts": []}', "non-finite"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"schema_version": 1, "t0_ns": "soon", "artifacts": []}', "invalid t0_ns"),
    ('{"schema_version": 1, "artifacts": {"name": "heap.csv"}}', "not of type 'array'"),
    ('{"schema_version": 1, "artifacts": [{"name": "heap.csv"}]}', "invalid artifacts[0]"),
    ('{"schema_version": 1, "artifacts": ["heap.csv"]}', "not of type 'object'"),
    ('{"schema_version": "1"}', "schema_version"),
])
def test_malformed_manifests_are_one_line_errors(tmp_path: Path, text: str, words: str) -> None:
    run = _run(tmp_path)
    (run / MANIFEST).write_text(text)
    with bounded():
        assert_clean_error(labkit("summary", str(run)), words)


@pytest.mark.parametrize("text", ["[]", "{}", "[1]", '[{"thread_id": 1, "frames": 5}]',
                                  '[{"thread_id": 1, "frames": [{"name": "f", "line": 1e400}]}]',
                                  "[" * 50_000 + "]" * 50_000, '{"a": Infinity}'])
def test_bad_py_spy_json_raises_only_labkit_errors(tmp_path: Path, text: str) -> None:
    p = tmp_path / "dump.json"
    p.write_text(text)
    for loader in (load_dump, load_speedscope):
        with bounded(), pytest.raises(LabkitError):
            loader(p)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=JSONISH, shape=st.sampled_from(["as-is", "dump-list", "speedscope"]))
def test_json_of_any_shape_raises_only_labkit_errors(
        tmp_path_factory: pytest.TempPathFactory, doc: object, shape: str) -> None:
    if shape == "dump-list":
        doc = [{"thread_id": doc, "frames": [doc], "thread_name": doc, "active": doc}]
    elif shape == "speedscope":
        doc = {"shared": {"frames": [doc]}, "profiles": [{"name": doc, "samples": [[0], doc],
                                                          "weights": doc}]}
    p = tmp_path_factory.mktemp("j") / "capture.json"
    p.write_text(json.dumps(doc))
    for loader in (load_dump, load_speedscope):
        with bounded():
            try:
                loader(p)
            except LabkitError as exc:
                assert "\n" not in str(exc)


def test_process_samples_past_int64_are_one_line(tmp_path: Path) -> None:
    p = tmp_path / "proc.csv"
    p.write_text("t_ns,rss_bytes,threads,fds,cpu_percent,children\n"
                 f"1,{2**70},1,1,0.0,0\n")
    assert_clean_error(labkit("postmortem", "--proc", str(p), "--out",
                              str(tmp_path / "r.html")), "not a labkit process sample file")
