"""The GC tracer's two recorders: the compiled callback and the Python one write the same
records; the Python one takes over where the compiled one is not built or not wanted."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit.capture import gctrace
from labkit.frames.gctrace import read_event_records

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("c", "python")


def _trace(out: Path, kind: str, monkeypatch: pytest.MonkeyPatch) -> dict:
    if kind == "python":
        monkeypatch.setenv("LABKIT_GC_CALLBACK", "python")
    else:
        monkeypatch.delenv("LABKIT_GC_CALLBACK", raising=False)
    t = gctrace.GCTracer(str(out), interval_s=0.05)
    t.start()
    before = [s["collections"] for s in gc.get_stats()]
    for _ in range(gctrace._CHUNK + 10):  # past one chunk: the rollover
        gc.collect(0)
    gc.collect(1)
    gc.collect(2)
    after = [s["collections"] for s in gc.get_stats()]
    t.stop()
    meta = json.loads((out / gctrace.META_FILE).read_text())
    return {"meta": meta, "counted": [a - b for a, b in zip(after, before, strict=True)],
            "rows": read_event_records(out / gctrace.EVENTS_FILE)}


@pytest.mark.parametrize("kind", KINDS)
def test_each_recorder_records_every_collection(tmp_path: Path, kind: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN the compiled callback (built with the package) or the forced Python one
    got = _trace(tmp_path, kind, monkeypatch)
    # THEN the meta names it, and the records are complete and well-formed
    assert got["meta"]["callback_kind"] == kind
    rows = got["rows"]
    fields = gctrace.EVENT_FIELDS
    gens = [int(r[fields.index("generation")]) for r in rows]
    assert [gens.count(g) for g in range(3)] == got["counted"]
    me = __import__("threading").get_ident()
    for r in rows:
        rec = dict(zip(fields, map(int, r), strict=True))
        assert rec["t_stop_ns"] >= rec["t_start_ns"] > 0
        assert rec["thread_id"] == me
        assert rec["collected"] >= 0 and rec["uncollectable"] >= 0
        assert min(rec["count0"], rec["count1"], rec["count2"]) >= 0
    starts = [int(r[0]) for r in rows]
    assert starts == sorted(starts)


def test_the_compiled_callback_costs_less_than_the_python_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Calibrated on real collections (CPython's invocation included) as the tracer does at
    # start. This VM's speed can halve for a while (a busy neighbour), which moves one
    # calibration by as much as the two recorders differ: the least of three each, taken
    # alternately, is compared
    c = _trace(tmp_path / "c", "c", monkeypatch)["meta"]["per_event_ns"]
    py = _trace(tmp_path / "py", "python", monkeypatch)["meta"]["per_event_ns"]
    assert c > 0 and py > 0
    recs = {}
    for kind in KINDS:
        if kind == "python":
            monkeypatch.setenv("LABKIT_GC_CALLBACK", "python")
        else:
            monkeypatch.delenv("LABKIT_GC_CALLBACK", raising=False)
        recs[kind] = gctrace.GCTracer(str(tmp_path / "unused"))._rec
    got: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for _ in range(3):
        for kind in KINDS:
            got[kind].append(gctrace._cb.calibrate(recs[kind]))
    assert 0 < min(got["c"]) < min(got["python"]), got


def test_compiled_stop_phase_creates_no_tracked_objects(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABKIT_GC_CALLBACK", raising=False)
    t = gctrace.GCTracer("/nonexistent-not-used", interval_s=0.05)
    assert t._rec.kind == "c"
    cb = t._callback
    info = {"generation": 0, "collected": 0, "uncollectable": 0}
    cb("start", info)
    gc.disable()
    try:
        before = gc.get_count()[0]
        for _ in range(1000):
            cb("stop", info)
        after = gc.get_count()[0]
    finally:
        gc.enable()
    assert after - before < 5, (before, after)
    assert cb in [t._rec.callback]  # a fresh function object compares equal: remove() works


def test_compiled_callback_rejects_bad_calls_without_crashing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABKIT_GC_CALLBACK", raising=False)
    t = gctrace.GCTracer("/nonexistent-not-used", interval_s=0.05)
    cb = t._callback
    with pytest.raises(TypeError):
        cb("stop")
    with pytest.raises(KeyError):
        cb("stop", {})
    with pytest.raises(ValueError):
        t._rec.pos = -1
    assert t._rec.pos == 0


def test_without_the_compiled_module_the_python_callback_runs(tmp_path: Path) -> None:
    # GIVEN the tracer's files copied without any build (another interpreter's, or none)
    for name in ("gctrace.py", "gccallback.py", "gcsys.py"):
        (tmp_path / name).write_bytes((ROOT / "labkit" / "capture" / name).read_bytes())
    src = str(tmp_path / "gctrace.py")
    code = ("import importlib.util, sys, gc, json\n"
            f"spec = importlib.util.spec_from_file_location('g', {src!r})\n"
            "g = importlib.util.module_from_spec(spec); spec.loader.exec_module(g)\n"
            f"t = g.GCTracer({str(tmp_path / 'out')!r}); t.start(); gc.collect(); t.stop()\n"
            f"print(json.load(open({str(tmp_path / 'out' / 'gctrace.json')!r}))['callback_kind'])")
    env = {k: v for k, v in os.environ.items() if k != "LABKIT_GC_CALLBACK"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env).stdout.split()
    assert out == ["python"]


def test_setup_py_builds_only_the_optional_extension() -> None:
    # pyproject.toml stays the single source of the package's metadata and dependencies
    import ast

    tree = ast.parse((ROOT / "setup.py").read_text())
    calls = {n.func.id: n for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert [k.arg for k in calls["setup"].keywords] == ["ext_modules"]
    ext = {k.arg: k.value for k in calls["Extension"].keywords}
    assert isinstance(ext["optional"], ast.Constant) and ext["optional"].value is True


def test_compiled_callback_reads_info_in_any_key_order(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # CPython's own order is read by position; any other shape by key
    monkeypatch.delenv("LABKIT_GC_CALLBACK", raising=False)
    t = gctrace.GCTracer("/nonexistent-not-used", interval_s=0.05)
    cb = t._callback
    infos = [{"generation": 1, "collected": 7, "uncollectable": 3},
             {"uncollectable": 3, "collected": 7, "generation": 1},
             {"generation": 1, "collected": 7, "uncollectable": 3, "extra": 0}]
    for info in infos:
        cb("start", info)
        cb("stop", info)
    stride = gctrace._STRIDE
    rows = [t._rec.current[i * stride:(i + 1) * stride] for i in range(t._rec.pos)]
    assert [list(r[2:5]) for r in rows] == [[1, 7, 3]] * 3


def test_compiled_sampler_samples_and_wakes_at_once_on_its_pipe() -> None:
    from array import array

    native = gctrace._cb.load_native()
    fields = gctrace._SAMPLE_FIELDS
    buf = array("q", bytes(8 * fields * 4))
    statm = os.open("/proc/self/statm", os.O_RDONLY)
    r, w = os.pipe()
    try:
        # GIVEN nothing on the pipe: it samples every interval, then returns
        assert native.sample_until(buf, 1, 3, statm, r, os.sysconf("SC_PAGE_SIZE"),
                                   10_000_000) == (3, 0)
        rows = [buf[i * fields:(i + 1) * fields] for i in range(4)]
        assert list(rows[0]) == [0] * fields  # row 0 untouched
        times = [row[0] for row in rows[1:]]
        assert times == sorted(times) and times[-1] - times[0] >= 15_000_000
        assert all(row[1] > 1 << 20 and row[2] > 1000 for row in rows[1:])  # RSS, blocks
        # WHEN the pipe is written (stop or pause) THEN a long sleep ends at once
        os.write(w, b"x")
        t = time.perf_counter()
        assert native.sample_until(buf, 0, 4, statm, r, 4096, 5_000_000_000) == (0, 1)
        assert time.perf_counter() - t < 1
        with pytest.raises(ValueError):
            native.sample_until(buf, 2, 3, statm, r, 4096, 10_000_000)  # past the buffer
    finally:
        for fd in (statm, r, w):
            os.close(fd)


@pytest.mark.parametrize("kind", KINDS)
def test_each_sampler_writes_heap_rows_and_idles_while_paused(
        tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if kind == "python":
        monkeypatch.setenv("LABKIT_GC_CALLBACK", "python")
    else:
        monkeypatch.delenv("LABKIT_GC_CALLBACK", raising=False)
    t = gctrace.GCTracer(str(tmp_path), interval_s=0.02)
    assert (t._native_sampler is not None) == (kind == "c")
    t.start()
    time.sleep(0.2)
    t.pause()
    paused_at = time.perf_counter_ns()
    time.sleep(0.3)
    resumed_at = time.perf_counter_ns()
    t.resume()
    time.sleep(0.2)
    t.stop()
    lines = (tmp_path / gctrace.HEAP_FILE).read_text().splitlines()
    assert lines[0].split(",") == list(gctrace.HEAP_COLUMNS)
    rows = [[int(x) for x in ln.split(",")] for ln in lines[1:]]
    stamps = [row[0] for row in rows]
    assert stamps == sorted(stamps) and all(row[1] > 0 and row[2] > 0 for row in rows)
    during = [s for s in stamps if paused_at + 25_000_000 < s < resumed_at]
    assert not during, "sampled while paused"
    assert sum(s > resumed_at for s in stamps) >= 3  # it resumed
