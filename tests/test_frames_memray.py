"""memray captures through labkit: real memray on small programs, checked against memray."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from labkit import CaptureOptions, load, run_program
from labkit.errors import CorruptCaptureError, InputError
from labkit.frames.memray import ALLOCATION_COLUMNS, MemrayCapture, load_memray
from tests.conftest import PY

pytestmark = pytest.mark.slow
MB = 1024 * 1024
DATASETS = Path(__file__).resolve().parent.parent / "datasets"

HOLDS_50MB = """
def f():
    held = []
    for _ in range(50):
        held.append(bytearray(1024 * 1024))
    return held

def g():
    return [bytearray(64 * 1024) for _ in range(16)]

import time
a = f()
b = g()
time.sleep(0.1)  # hold the peak across several of memray's 10 ms snapshots
del a, b
"""


@pytest.fixture(scope="module")
def mem_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("mem")
    (d / "prog.py").write_text(HOLDS_50MB)
    res = run_program([PY, str(d / "prog.py")], out=d / "run",
                      options=CaptureOptions(gc=False, memray=True))
    assert res.returncode == 0
    return res.path


def test_f_is_the_top_site_at_peak_with_50mb(mem_run: Path) -> None:
    peak = load(mem_run).memray.allocations_at_peak
    assert list(peak.columns) == list(ALLOCATION_COLUMNS)
    top = peak[~peak.in_labkit].iloc[0]
    assert top.function == "f" and top.file.endswith("prog.py")
    assert top["bytes"] >= 50 * MB
    assert top["count"] >= 50
    assert top.stack.startswith("f (prog.py:")


def test_summary_equals_memray_stats_json(mem_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "stats.json"
    memray = Path(sys.executable).with_name("memray")
    subprocess.run([str(memray), "stats", "--json", "-o", str(out), "-f",
                    str(mem_run / "memray.bin")], check=True, capture_output=True)
    ref = json.loads(out.read_text())
    s = load(mem_run).memray.summary
    assert s.peak_bytes == ref["metadata"]["peak_memory"]
    assert s.allocations == ref["total_num_allocations"]
    assert s.total_allocated_bytes == ref["total_bytes_allocated"]
    assert s.peak_bytes >= 50 * MB
    allocated = load(mem_run).memray.allocated  # per stack, what pprof's alloc_* carry
    assert allocated["bytes"].sum() == ref["total_bytes_allocated"]
    assert allocated["count"].sum() == ref["total_num_allocations"]


def test_load_all_gives_the_same_summary(mem_run: Path) -> None:
    a = MemrayCapture(mem_run / "memray.bin").summary
    b = load_memray(mem_run / "memray.bin").summary
    assert a.equals(b)


def test_memory_timeline_on_the_run_axis(mem_run: Path) -> None:
    run = load(mem_run)
    mem = run.memray.memory
    assert list(mem.columns) == ["t_s", "rss_bytes", "heap_bytes"]
    assert len(mem) >= 3 and mem.t_s.is_monotonic_increasing
    assert -0.1 < mem.t_s.iloc[0] < 5
    assert mem.heap_bytes.max() >= 50 * MB


def test_leaks_with_python_allocators(tmp_path: Path, write_prog) -> None:
    prog = write_prog("""
        cache = []
        def leak():
            for i in range(2000):
                cache.append({"request": i, "body": "x" * 200})
        leak()
    """)
    res = run_program([PY, str(prog)], out=tmp_path / "r",
                      options=CaptureOptions(gc=False, memray=True, trace_python_allocators=True))
    leaks = load(res.path).memray.leaks
    mine = leaks[leaks.function == "leak"]
    assert mine["count"].sum() >= 2000 and mine["bytes"].sum() >= 2000 * 200


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_damaged_capture_is_a_clear_error(mem_run: Path, tmp_path: Path, damage: str) -> None:
    data = (mem_run / "memray.bin").read_bytes()
    bad = {"empty": b"", "truncated": data[: len(data) // 2],
           "garbage": bytes(range(256)) * 8}[damage]
    p = tmp_path / "bad.bin"
    p.write_bytes(bad)
    with pytest.raises(CorruptCaptureError, match="not a readable memray capture"):
        MemrayCapture(p)


def test_every_pass_over_the_records_runs_in_a_worker(
        mem_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd
    from memray import _memray

    later = MemrayCapture(mem_run / "memray.bin")
    away = MemrayCapture(mem_run / "memray.bin", stats_in_background=True,
                         churn_in_background=True)
    assert {"held", "stats", "churn"} <= set(away._workers)

    def not_here(*args: object, **kw: object) -> None:
        raise AssertionError("read in this process, not in a worker")

    class SnapshotsOnly:  # all labkit's process may read of the capture once it is open
        get_memory_snapshots = away._reader.get_memory_snapshots
        close = away._reader.close

        def __getattr__(self, name: str) -> None:
            not_here()

    away._reader = SnapshotsOnly()
    monkeypatch.setattr(_memray, "compute_statistics", not_here)
    for name in ("churn", "allocated", "allocations_at_peak", "leaks", "growth", "memory"):
        pd.testing.assert_frame_equal(getattr(away, name), getattr(later, name),
                                      check_exact=True)
    pd.testing.assert_series_equal(away.summary, later.summary, check_exact=True)
    assert not away._workers  # each worker's result read once


def test_a_worker_killed_by_a_signal_is_one_line(mem_run: Path) -> None:
    cap = MemrayCapture(mem_run / "memray.bin")
    cap._workers.pop("held").kill()
    cap._workers["held"] = subprocess.Popen(  # a worker that dies as memray's reader crashes
        [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"],
        stdout=subprocess.PIPE)
    with pytest.raises(CorruptCaptureError, match=r"crashes memray's reader \(SIGSEGV\)"):
        _ = cap.growth


def test_close_ends_the_workers(mem_run: Path) -> None:
    cap = MemrayCapture(mem_run / "memray.bin", stats_in_background=True,
                        churn_in_background=True)
    workers = list(cap._workers.values())
    cap.close()
    assert workers and all(w.poll() is not None for w in workers) and not cap._workers


def test_missing_capture_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        MemrayCapture(tmp_path / "nope.bin")


def test_the_worker_module_is_plain_python_with_a_checked_command_line(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from labkit.frames import memray_worker

    capture = Path(__file__).resolve().parent.parent / "datasets" / "pool-misuse" / "leaky" \
        / "memray.bin"
    assert memray_worker.main(["everything", str(capture)]) == 2
    assert "usage" in capsys.readouterr().err
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 8)
    for task in memray_worker.PASSES:
        assert memray_worker.main([task, str(garbage)]) == memray_worker.ERROR_EXIT
        assert json.loads(capsys.readouterr().out)["error"]
    here = MemrayCapture(capture).summary
    got = memray_worker.stats(str(capture))
    assert got["total_num_allocations"] == here.allocations
    assert got["total_bytes_allocated"] == here.total_allocated_bytes


WORKER_IMPORTS = """
import importlib.util, json, pickle, sys
spec = importlib.util.spec_from_file_location("worker", sys.argv[1])
worker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(worker)
if sys.argv[3] == "rich wanted":  # a memray that imports more of rich than the stand-ins
    worker.RICH_AT_IMPORT["rich.progress"] = ("Progress",)
worker.import_memray()
rich_at_import = "rich" in sys.modules
import memray
memray.FileReader(sys.argv[2], report_progress=True)  # memray's progress bar: rich's own
print(json.dumps([rich_at_import, type(sys.modules["rich.progress"]).__name__,
                  pickle.dumps(worker.held(sys.argv[2])).hex()]))
"""


@pytest.mark.parametrize("case", ["as it is", "rich wanted"])
def test_the_worker_imports_memray_without_rich(tmp_path: Path, case: str) -> None:
    """rich is most of a worker's ``import memray`` and no pass shows it: stand-ins take its
    place until it is used, and a memray that wants more of it at import gets it."""
    from labkit.frames.memray_start import WORKER

    capture = DATASETS / "buffer-growth" / "leaky" / "memray.bin"
    script = tmp_path / "imports.py"
    script.write_text(WORKER_IMPORTS)
    out = subprocess.run([PY, "-P", str(script), str(WORKER), str(capture), case],
                         capture_output=True, text=True, check=True).stdout
    rich_at_import, progress_type, held = json.loads(out.splitlines()[-1])
    assert rich_at_import is (case == "rich wanted")
    assert progress_type == "module"  # rich's own, once asked for
    direct = subprocess.run([PY, "-X", "importtime", "-P", str(WORKER), "held", str(capture)],
                            capture_output=True, check=True)
    assert pickle.loads(bytes.fromhex(held)) == pickle.loads(direct.stdout)
    imported = [ln.rsplit("|", 1)[-1].strip() for ln in direct.stderr.decode().splitlines()]
    assert "memray._memray" in imported and "rich" not in imported  # the worker as run


def test_the_churn_pass_is_memrays_view_bounded_to_the_first_records(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import memray

    from labkit.frames import memray_worker

    capture = str(DATASETS / "buffer-growth" / "leaky" / "memray.bin")
    reader = memray.FileReader(capture)
    total = reader.metadata.total_allocations

    def by_stack(records: object, table: list | None = None) -> dict[tuple, tuple[int, int]]:
        """Per stack (memray's frames; a worker's numbers into its ``table`` resolved)."""
        return {tuple(map(tuple, r[0])) if table is None else tuple(table[i] for i in r[0]):
                (r[1], r[2]) for r in records}

    memray_view = by_stack((r.stack_trace(), r.size, r.n_allocations) for r in
                           reader.get_temporary_allocation_records(merge_threads=True,
                                                                   threshold=1))
    whole = memray_worker.churn(capture)
    assert (whole["read"], whole["total"]) == (total, total)
    assert by_stack(whole["records"], whole["frames"]) == memray_view and memray_view
    # the bounded call, stopped at the last record, is memray's public view exactly
    assert by_stack((r.stack_trace(), r.size, r.n_allocations) for r in
                    reader._aggregate_allocations(total, True, temporary_buffer_size=2)) \
        == memray_view
    monkeypatch.setattr(memray_worker, "CHURN_MAX_RECORDS", total // 2)
    half = memray_worker.churn(capture)
    assert (half["read"], half["total"]) == (total // 2, total)
    part = by_stack(half["records"], half["frames"])
    assert 0 < sum(b for b, _ in part.values()) < sum(b for b, _ in memray_view.values())
    for stack, (nbytes, n) in part.items():  # a prefix: never more than the whole run's
        assert nbytes <= memray_view[stack][0] and n <= memray_view[stack][1]


def test_allocated_per_stack_is_memray_stats_own_pass(tmp_path: Path) -> None:
    import memray

    capture = DATASETS / "pool-misuse" / "leaky" / "memray.bin"
    cap = MemrayCapture(capture, stats_in_background=True)
    allocated = cap.allocated
    totals: dict[str, list[int]] = {}  # memray's records, added up here: the reference
    frees = {int(a) for a in (memray.AllocatorType.FREE, memray.AllocatorType.PYMALLOC_FREE,
                              memray.AllocatorType.MUNMAP)}
    for rec in memray.FileReader(str(capture)).get_allocation_records():
        if int(rec.allocator) not in frees:
            t = totals.setdefault(rec.stack_id, [0, 0])
            t[0] += rec.size
            t[1] += rec.n_allocations
    assert sorted(allocated["bytes"]) == sorted(b for b, _ in totals.values())
    assert int(allocated["count"].sum()) == sum(n for _, n in totals.values()) \
        == cap.summary.allocations
    assert "_stats" in cap.__dict__ and "stats" not in cap._workers  # one pass gave both


def test_the_peak_alone_is_memrays_high_water_mark_view(mem_run: Path) -> None:
    import pandas as pd

    from labkit.frames.memray import own_allocations

    held = MemrayCapture(mem_run / "memray.bin")
    alone = MemrayCapture(mem_run / "memray.bin", held_in_background=False)
    alone.peak_in_background()
    assert set(alone._workers) == {"peak"}  # no temporal pass: what the pprof export needs
    a, b = (own_allocations(c.allocations_at_peak).groupby("stack")[["bytes", "count"]].sum()
            for c in (held, alone))
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert b["bytes"].sum() >= 50 * MB and not alone._workers
