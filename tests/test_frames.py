"""``labkit.load`` on a real traced run: frames, columns, units, one time axis."""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit import CaptureOptions, LabkitError, load, run_program
from tests.conftest import PY

PROG = """
import gc, threading, time
held = []
for i in range(30):
    held.append([[j] for j in range(5000)])
    gc.collect(2) if i % 10 == 0 else None
    time.sleep(0.01)
"""


@pytest.mark.slow
def test_load_traced_run(tmp_path: Path, write_prog) -> None:
    prog = write_prog(PROG)
    res = run_program([PY, str(prog)], out=tmp_path / "r",
                      options=CaptureOptions(gc=True, proc=True, proc_interval_s=0.02))
    assert res.returncode == 0 and res.reason == "exited"
    run = load(res.path)
    ev, heap, proc = run.gc_events, run.heap, run.proc
    assert {"t_s", "pause_ms", "generation", "collected", "uncollectable", "thread_id",
            "young_count"} <= set(ev.columns)
    assert {"t_s", "rss_bytes", "allocated_blocks"} <= set(heap.columns)
    assert list(proc.columns)[:5] == ["t_s", "rss_bytes", "threads", "fds", "cpu_percent"]
    assert (ev.generation == 2).sum() >= 3
    assert (ev.pause_ms >= 0).all()
    # one clock: everything falls inside the run, starting after its origin
    wall = (run.gc_meta["t_end_ns"] - run.t0_ns) / 1e9
    for df in (ev, heap, proc):
        assert df.t_s.min() >= 0 and df.t_s.max() <= wall + 0.5
    # the heap indicator tracks the program: the held lists raise allocated blocks
    assert heap.allocated_blocks.max() > heap.allocated_blocks.iloc[0] + 100_000
    assert run.manifest["target"]["gc_threshold"]


def test_missing_capture_says_which_flag(tmp_path: Path) -> None:
    from labkit.rundir import RunWriter

    path = RunWriter(tmp_path / "r", "test", []).publish()
    with pytest.raises(LabkitError, match="--proc"):
        _ = load(path).proc
