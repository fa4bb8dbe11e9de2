"""The scenario suite: specs, the CLI, signatures on 3.11 and 3.13, caps, and no orphans."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from labkit.scenarios import NAMES, get_spec
from labkit.scenarios.base import parse
from tests.conftest import PY, alive, assert_clean_error, labkit

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", NAMES)
def test_spec_is_complete(name: str) -> None:
    spec = get_spec(name)
    assert spec.name == name and spec.title and spec.incident and spec.shows
    assert len(spec.variants) >= 2
    assert spec.settings or spec.variants == ("leaky", "fixed")
    assert set(spec.variant_help) == set(spec.variants)
    assert spec.memory_cap_mb > 0 and 0 < spec.quick_time_cap_s <= spec.time_cap_s
    assert spec.params and all(p.help for p in spec.params.values())
    _variant, vals = parse(spec, ["--variant", spec.variants[0], "--quick"])
    assert vals == spec.values(quick=True)


def test_parameter_overrides_are_typed_and_checked() -> None:
    spec = get_spec("pool-misuse")
    assert spec.values(True, {"requests": "10"})["requests"] == 10
    with pytest.raises(KeyError, match="unknown parameter"):
        spec.values(True, {"nope": "1"})


def test_cli_rejects_unknown_scenario_variant_and_param() -> None:
    assert_clean_error(labkit("run", "no-such"), "unknown scenario", "pool-misuse")
    assert_clean_error(labkit("run", "pool-misuse", "--variant", "sideways"), "no variant")
    assert_clean_error(labkit("run", "pool-misuse", "--param", "nope=1"), "unknown parameter")
    assert_clean_error(labkit("run", "pool-misuse", "--capture", "gdb"), "unknown capture")
    assert_clean_error(labkit("signatures", "no-such"), "unknown scenario")


def test_list_names_every_scenario_and_variant() -> None:
    cp = labkit("list")
    assert cp.returncode == 0
    for name in NAMES:
        assert f"{name}: " in cp.stdout
        for v in get_spec(name).variants:
            assert f" {v}: " in cp.stdout


def _signatures(exe: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(exe), "signatures", "--quick"], capture_output=True, text=True,
                          timeout=600)


def _assert_all_shown(cp: subprocess.CompletedProcess) -> None:
    assert cp.returncode == 0, cp.stdout + cp.stderr
    for name in NAMES:
        assert f"{name}: shown" in cp.stdout, cp.stdout
    assert "NO " not in cp.stdout
    assert f"signatures shown: {len(NAMES)}/{len(NAMES)}" in cp.stdout


@pytest.mark.slow
def test_signatures_quick_on_this_python() -> None:
    assert sys.version_info[:2] == (3, 11), "the project venv is the machine's python3 (3.11)"
    _assert_all_shown(_signatures(Path(sys.executable).with_name("labkit")))


@pytest.mark.slow
@pytest.mark.parametrize("minor", [12, 13])
def test_signatures_quick_on_other_pythons(minor: int) -> None:
    venv = ROOT / f".venv-3.{minor}"
    exe = venv / "bin" / "labkit"
    assert exe.exists(), f"{exe} is missing: `make test` creates it (make venv-3.{minor})"
    ver = subprocess.run([str(venv / "bin" / "python"), "-c",
                          "import sys; print(sys.version_info[:2])"],
                         capture_output=True, text=True).stdout.strip()
    assert ver == f"(3, {minor})"
    _assert_all_shown(_signatures(exe))


def _tree(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupting_a_run_leaves_no_process(tmp_path: Path, sig: signal.Signals) -> None:
    # gateway-load at full size: a proxy with an upstream and a load generator beneath it,
    # and two py-spy recorders beside it
    p = subprocess.Popen([PY, "-m", "labkit", "run", "gateway-load", "--variant", "leaky",
                          "--out", str(tmp_path / "runs")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    seen: set[int] = set()
    while time.monotonic() < deadline and len(seen) < 5:
        seen |= set(_tree(p.pid))
        time.sleep(0.1)
    time.sleep(1.0)
    seen |= set(_tree(p.pid))
    assert len(seen) >= 5, f"expected proxy, upstream, load generator, py-spy x2: {seen}"
    p.send_signal(sig)
    p.wait(timeout=60)
    time.sleep(0.5)
    left = [pid for pid in seen if alive(pid)]
    assert not left, [psutil.Process(x).cmdline() for x in left if alive(x)]
    run = tmp_path / "runs" / "leaky"
    outcome = json.loads((run / "manifest.json").read_text())["outcome"]
    assert outcome["signals_received"] == [sig.name]


@pytest.mark.slow
def test_small_memory_cap_stops_the_leaky_variant(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    cp = labkit("run", "pool-misuse", "--variant", "leaky", "--memory-cap", "120",
                "--param", "requests=400000", "--out", str(out))
    assert cp.returncode == 0, cp.stderr
    assert "memory-cap (stopped by its cap, as designed)" in cp.stdout
    manifest = json.loads((out / "leaky" / "manifest.json").read_text())
    assert manifest["outcome"]["reason"] == "memory-cap"
    assert manifest["outcome"]["memory_cap_bytes"] == 120 * 1024 * 1024
    from labkit import load

    run = load(out / "leaky")  # everything captured up to the cap still loads
    assert run.proc.rss_bytes.max() > 120 * 1024 * 1024
    assert run.memray.summary.peak_bytes > 64 * 1024 * 1024
    # killed by the cap, the tracer never wrote its end; its window runs to the last event
    assert run.gc_meta["t_end_ns"] is None
    assert 0 < run.gc_wall_s < 30
    from labkit.analysis.compare import compare

    summary = compare(run, run).summary
    assert summary.loc["gc_collections", "a"] > 0
    assert 0 < summary.loc["gc_gc_percent", "a"] < 100  # 0 when the window came out negative
    assert labkit("summary", str(out / "leaky")).returncode == 0
    assert os.path.isdir(out / "leaky")


@pytest.mark.slow
def test_time_cap_stops_a_run_and_leaves_no_process(tmp_path: Path) -> None:
    # hold_s=60: the run would outlast the cap however fast the machine serves the load
    p = subprocess.Popen([PY, "-m", "labkit", "run", "gateway-load", "--variant", "leaky",
                          "--param", "hold_s=60", "--time-cap", "4",
                          "--out", str(tmp_path / "runs")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: set[int] = set()
    while p.poll() is None:
        seen |= set(_tree(p.pid))
        time.sleep(0.1)
    assert p.returncode == 0, p.stderr.read()
    assert "time-cap (stopped by its cap, as designed)" in p.stdout.read()
    time.sleep(0.5)
    assert len(seen) >= 3 and not [pid for pid in seen if alive(pid)]
    outcome = json.loads((tmp_path / "runs" / "leaky" / "manifest.json").read_text())["outcome"]
    assert outcome["reason"] == "time-cap" and outcome["time_cap_s"] == 4


def test_gc_tuning_untraced_blocks_run_with_the_tracer_detached(tmp_path: Path,
                                                                monkeypatch) -> None:
    # GIVEN the GC tracer running in this process and a metrics file
    from labkit.capture.gctrace import GCTracer
    from labkit.frames.gctrace import read_event_records
    from labkit.scenarios import gc_tuning
    from labkit.scenarios.base import Metrics

    monkeypatch.setenv("LABKIT_METRICS", str(tmp_path / "m.jsonl"))
    metrics = Metrics()
    tracer = GCTracer(str(tmp_path / "gc"), interval_s=0.02)
    tracer.start()
    try:
        # WHEN the side-by-side blocks run
        gc_tuning.side_by_side({"window": 50, "payload_bytes": 8, "iterations": 40_000},
                               metrics)
    finally:
        tracer.stop()
        metrics.close()
    blocks = [json.loads(ln) for ln in (tmp_path / "m.jsonl").read_text().splitlines()]
    # THEN the blocks alternate untraced / traced, and no collection was recorded in an
    # untraced one while the traced ones recorded theirs
    assert [b["traced"] for b in blocks] == [False, True, True, False] * 2
    starts = [int(r[0]) for r in read_event_records(tmp_path / "gc" / "gc_events.bin")]

    def inside(b: dict) -> int:
        return sum(b["t_ns"] - b["seconds"] * 1e9 <= t <= b["t_ns"] for t in starts)

    assert sum(inside(b) for b in blocks if not b["traced"]) == 0
    assert sum(inside(b) for b in blocks if b["traced"]) > 0


def test_gc_tuning_throughput_rows_compare_the_untraced_blocks() -> None:
    import pandas as pd

    from labkit.scenarios.gc_tuning import _side_by_side

    m = pd.DataFrame({"phase": ["steady"] + ["side-by-side"] * 4,
                      "traced": [None, False, True, True, False],
                      "iterations": [None, 100, 100, 100, 100],
                      "seconds": [None, 1.0, 2.0, 2.0, 1.0]})
    untraced, traced, cost = _side_by_side(m, steady=7.0)
    assert (untraced, traced) == (100.0, 50.0)
    assert cost == pytest.approx(50.0)
    # a recording made before the blocks existed: its steady (traced) figure, no cost
    old = pd.DataFrame({"phase": ["steady"], "throughput": [7.0]})
    u, t, c = _side_by_side(old, steady=7.0)
    assert (u, t) == (7.0, 7.0) and c != c
