"""Damaged captures: truncations and mutations of real files raise only labkit's own error."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labkit import CaptureOptions, run_program
from labkit.errors import LabkitError
from labkit.frames.gctrace import load_gc_events, load_heap
from labkit.frames.memray import MemrayCapture
from labkit.frames.proc import load_proc
from labkit.frames.pyspy import load_dump, load_speedscope
from tests.conftest import PY, assert_clean_error, labkit

pytestmark = pytest.mark.slow

PROG = """
import queue, threading, time
q = queue.Queue()
for i in range(3):
    threading.Thread(target=q.get, daemon=True).start()
def work():
    junk = [[i] * 50 for i in range(20000)]
    t = time.perf_counter()
    while time.perf_counter() - t < 0.6:
        junk.append({"x": [1]})
work()
"""


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("orig")
    (d / "prog.py").write_text(PROG)
    res = run_program([PY, str(d / "prog.py")], out=d / "run",
                      options=CaptureOptions(gc=True, proc=True, memray=True, pyspy=True,
                                             proc_interval_s=0.02))
    files = {n: res.path / n for n in
             ("memray.bin", "pyspy.speedscope.json", "gc_events.bin", "heap.csv", "proc.csv")}
    from labkit.capture import pyspy

    target = __import__("subprocess").Popen([PY, "-c", PROG + "\ntime.sleep(30)"])
    try:
        __import__("time").sleep(1.0)
        (d / "dump.json").write_text(pyspy.dump(target.pid))
        files["dump.json"] = d / "dump.json"
        import gzip

        for plain in ("gc_events.bin", "heap.csv"):
            files[f"{plain}.gz"] = d / f"{plain}.gz"
            files[f"{plain}.gz"].write_bytes(gzip.compress(files[plain].read_bytes()))
    finally:
        target.kill()
        target.wait()
    return files


def _load(name: str, path: Path) -> None:
    if name == "memray.bin":
        c = MemrayCapture(path)
        _ = c.memory, c.allocations_at_peak, c.summary
    elif name == "pyspy.speedscope.json":
        load_speedscope(path)
    elif name == "dump.json":
        load_dump(path)
    elif name.endswith(".gz"):  # a packed copy: the loaders read .gz by its suffix
        _load(name.removesuffix(".gz"), path)
    elif name == "gc_events.bin":
        load_gc_events(path, 0)
    elif name == "heap.csv":
        load_heap(path, 0)
    elif name == "proc.csv":
        load_proc(path, 0)


NAMES = ["memray.bin", "pyspy.speedscope.json", "dump.json", "gc_events.bin",
         "gc_events.bin.gz", "heap.csv", "heap.csv.gz", "proc.csv"]


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(name=st.sampled_from(NAMES), data=st.data())
def test_truncated_or_mutated_capture_raises_only_labkit_errors(
        originals: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, name: str,
        data: st.DataObject) -> None:
    raw = bytearray(originals[name].read_bytes())
    cut = data.draw(st.integers(0, len(raw)), label="keep")
    raw = raw[:cut]
    for _ in range(data.draw(st.integers(0, 4), label="mutations")):
        if raw:
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = data.draw(st.integers(0, 255))
    d = tmp_path_factory.mktemp("fuzz")
    p = d / ("in-" + name)
    p.write_bytes(bytes(raw))
    try:
        _load(name, p)
    except LabkitError as exc:
        assert "\n" not in str(exc)


def test_cli_truncated_memray_and_bad_speedscope(originals: dict[str, Path],
                                                 tmp_path: Path) -> None:
    p = tmp_path / "cut.bin"
    p.write_bytes(originals["memray.bin"].read_bytes()[:300])
    before = p.read_bytes()
    assert_clean_error(labkit("summary", str(p)), "not a readable memray capture")
    assert p.read_bytes() == before  # nothing overwritten
    j = tmp_path / "cut.json"
    j.write_bytes(originals["pyspy.speedscope.json"].read_bytes()[:100])
    assert_clean_error(labkit("summary", str(j)), "not valid JSON")
    e = tmp_path / "empty.bin"
    e.write_bytes(b"")
    assert_clean_error(labkit("summary", str(e)), "memray")
