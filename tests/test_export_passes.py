"""The exports' passes over a memray capture: memray opened only in workers, the churn pass
forked from the held pass's worker, and the pprof profiles built with no DataFrame, each
giving what the DataFrame path gives, on real recorded captures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from labkit.errors import CorruptCaptureError
from labkit.frames import load
from labkit.frames.memray import MemrayCapture, own_allocations
from labkit.frames.memray_worker import metadata_fields
from tests.conftest import main_as

pytestmark = pytest.mark.slow
DATASETS = Path(__file__).resolve().parent.parent / "datasets"
CAPTURE = DATASETS / "pool-misuse" / "leaky" / "memray.bin"


def test_a_capture_opened_only_in_workers_gives_every_frame_alike(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import memray
    import pandas as pd

    here = MemrayCapture(CAPTURE, stats_in_background=True, churn_in_background=True)
    names = ("memory", "allocations_at_peak", "leaks", "growth", "churn", "allocated")
    expected = {name: getattr(here, name) for name in names}

    def not_here(*args: object, **kw: object) -> None:
        raise AssertionError("memray's reader opened in this process")

    monkeypatch.setattr(memray, "FileReader", not_here)
    away = MemrayCapture(CAPTURE, stats_in_background=True, churn_in_background=True,
                         open_here=False)
    assert set(away._workers) == {"held", "stats"}  # the churn pass forked by the held one
    for name in names:
        pd.testing.assert_frame_equal(getattr(away, name), expected[name], check_exact=True)
    pd.testing.assert_series_equal(away.summary, here.summary, check_exact=True)
    assert vars(away.metadata) == metadata_fields(here.metadata)
    assert away.churn_records == here.churn_records
    assert not away._workers and not away._early  # each result read once


def test_the_peak_alone_opened_in_its_worker() -> None:
    import pandas as pd

    here = MemrayCapture(CAPTURE)
    away = MemrayCapture(CAPTURE, held_in_background=False, open_here=False)
    assert set(away._workers) == {"peak"}
    # from the peak's worker, which opened the file
    assert vars(away.metadata) == metadata_fields(here.metadata)
    a, b = (own_allocations(c.allocations_at_peak).groupby("stack")[["bytes", "count"]].sum()
            for c in (here, away))
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_a_damaged_capture_opened_in_workers_is_one_line_on_first_use(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(CAPTURE.read_bytes()[:200])
    for held in (True, False):
        cap = MemrayCapture(bad, held_in_background=held, churn_in_background=held,
                            open_here=False)
        with pytest.raises(CorruptCaptureError, match="not a readable memray capture"):
            _ = cap.metadata
        cap.close()


def test_program_stacks_are_own_allocations_rows_in_order() -> None:
    cap = MemrayCapture(CAPTURE, held_in_background=False, stats_in_background=True)
    cap.peak_in_background()
    for stacks, df in ((cap.allocated_stacks(), cap.allocated),
                       (cap.peak_stacks(), cap.allocations_at_peak)):
        rows = [(r.frames, r.bytes, r.count, r.thread) for r in own_allocations(df).itertuples()
                if r.frames]
        got = list(stacks)
        assert got == rows and len(rows) > 10


def _reference_memory_profile(run: object) -> bytes:
    """The memory profile built from the DataFrames (the export's way before it used the
    workers' rows directly)."""
    from labkit.export.pprof import _builder

    cap = run.memray  # type: ignore[attr-defined]
    types = [("alloc_objects", "count"), ("alloc_space", "bytes"), ("inuse_objects", "count"),
             ("inuse_space", "bytes")]
    b = _builder(run, types, default="inuse_space")
    values: dict[tuple, list[int]] = {}
    threads: dict[tuple, str] = {}
    for col, df in ((0, cap.allocated), (2, cap.allocations_at_peak)):
        for r in own_allocations(df).itertuples():
            if r.frames:
                v = values.setdefault(r.frames, [0] * 4)
                v[col] += int(r.count)
                v[col + 1] += int(r.bytes)
                threads.setdefault(r.frames, str(r.thread))
    for frames, v in values.items():
        b.add(list(frames), v, {"thread": threads[frames]})
    return b.encode()


def _reference_gc_profile(run: object) -> bytes:
    """The GC profile from the ``gc_events`` DataFrame, grouped by pandas."""
    from labkit.export.pprof import GENERATIONS, _builder

    e, wall = run.gc_events, run.gc_wall_s  # type: ignore[attr-defined]
    b = _builder(run, [("collections", "count"), ("pause", "nanoseconds")],
                 default="pause", duration_ns=int(wall * 1e9))
    if len(e):
        b.comment(f"{len(e):,} collections, {e.pause_ms.sum():,.1f} ms of pauses over "
                  f"{wall:.2f} s ({100 * e.pause_ms.sum() / 1000 / wall:.2f}% of wall time "
                  "in GC)")
    for (gen, tid), g in e.groupby(["generation", "thread_id"]):
        frame = ("<garbage collector>", int(gen), f"gc: {GENERATIONS.get(int(gen), gen)}")
        b.add([frame], [len(g), round(g.pause_ms.sum() * 1e6)],
              {"thread": str(tid), "generation": str(gen)})
    return b.encode()


@pytest.mark.parametrize("run", ["pool-misuse/leaky", "buffer-growth/fixed",
                                 "gc-tuning/low-threshold", "thread-leak/leaky"])
def test_pprof_profiles_are_the_dataframe_ones_byte_for_byte(run: str) -> None:
    from labkit.export.pprof import gc_profile, memray_profile

    exported, reference = load(DATASETS / run), load(DATASETS / run)
    if exported.has("memray.bin"):
        got = memray_profile(exported)
        assert "memray" in exported.__dict__ and exported.memray._reader is None
        assert got == _reference_memory_profile(reference)
    assert gc_profile(exported) == _reference_gc_profile(reference)


def _held_churn_worker(churn: str, stderr: int = subprocess.DEVNULL
                       ) -> subprocess.Popen[bytes]:
    """The ``held_churn`` pass in a worker, its churn pass replaced by ``churn``."""
    code = ("import os, signal, sys, time; sys.path.append(sys.argv[1]); "
            "import memray_worker as w; "
            f"w._churn = {churn}; sys.exit(w.main(['held_churn', sys.argv[2]]))")
    worker_dir = Path(__file__).resolve().parent.parent / "labkit" / "frames"
    return subprocess.Popen([sys.executable, "-P", "-c", code, str(worker_dir), str(CAPTURE)],
                            stdout=subprocess.PIPE, stderr=stderr)


def _read_by(worker: subprocess.Popen[bytes]) -> MemrayCapture:
    """A capture whose ``held_churn`` worker is ``worker``."""
    cap = MemrayCapture(CAPTURE, churn_in_background=True, open_here=False)
    cap._workers.pop("held").kill()
    cap._workers["held"] = worker
    return cap


def test_the_forked_churn_pass_gives_its_result_first_its_error_or_its_crash() -> None:
    import pickle

    ok = _held_churn_worker("lambda r: {'read': 1, 'total': 2, 'records': [], 'frames': []}")
    assert ok.stdout is not None
    assert pickle.load(ok.stdout) == ("churn", "ok", {"read": 1, "total": 2, "records": [],
                                                      "frames": []})
    assert "records" in pickle.load(ok.stdout) and ok.wait(60) == 0  # then the held pass's
    cap = _read_by(_held_churn_worker("lambda r: int('not a number')"))
    with pytest.raises(CorruptCaptureError, match=r"not a readable memray capture \("
                       "invalid literal for int"):
        _ = cap.churn
    with pytest.raises(CorruptCaptureError, match="not a readable memray capture"):
        _ = cap.growth  # the worker refuses the capture as a whole
    for wanted in ("churn", "growth"):
        cap = _read_by(_held_churn_worker("lambda r: os.kill(os.getpid(), signal.SIGSEGV)"))
        with pytest.raises(CorruptCaptureError, match=r"crashes memray's reader \(SIGSEGV\)"):
            _ = getattr(cap, wanted)  # the worker dies as its copy did


def test_passes_started_before_the_manifest_serve_only_a_checked_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import pandas as pd

    from labkit.errors import LabkitError
    from labkit.frames.memray_start import Started

    run = tmp_path / "run"
    shutil.copytree(CAPTURE.parent, run)
    early = load(run, background_stats=False, memray_first={"churn_in_background": True})
    cap = early.__dict__["memray"]  # made before the manifest was read
    assert cap._reader is None and set(cap._workers) == {"held"}
    assert cap.origin_epoch_s == early.meta.t0_epoch_s
    pd.testing.assert_frame_equal(cap.memory, load(run).memray.memory, check_exact=True)
    closed: list[Path] = []
    real = Started.close
    monkeypatch.setattr(Started, "close",
                        lambda c: (c.workers and closed.append(c.path), real(c)))
    (run / "heap.csv").write_text("t_ns\n1\n")  # the manifest's checksum no longer holds
    with pytest.raises(LabkitError):
        load(run, background_stats=False, memray_first={"churn_in_background": True})
    assert closed == [run / "memray.bin"]  # its workers stopped with it


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie has ended
    except FileNotFoundError:
        return True


def test_a_forked_pass_ends_with_its_worker() -> None:
    import time

    worker = _held_churn_worker("lambda r: (print(os.getpid(), file=sys.stderr, flush=True), "
                                "time.sleep(60))", stderr=subprocess.PIPE)
    assert worker.stderr is not None
    copy = int(worker.stderr.readline())
    assert not _gone(copy)
    worker.kill()  # as MemrayCapture stops a worker whose result it no longer wants
    worker.wait()
    deadline = time.monotonic() + 10
    while not _gone(copy) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(copy)


def test_the_held_worker_leaves_out_only_the_stacks_its_reader_drops(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import pandas as pd

    from labkit.frames import memray_worker

    def growth_from(result: dict) -> pd.DataFrame:
        cap = MemrayCapture(CAPTURE, held_in_background=False)
        cap._early["held"] = result
        return cap.growth

    kept = memray_worker.held(str(CAPTURE))
    monkeypatch.setattr(memray_worker, "_held_across", lambda marks: lambda intervals: True)
    every = memray_worker.held(str(CAPTURE))
    assert len(every["intervals"]["count"]) > len(kept["intervals"]["count"]) > 10
    assert len(every["records"]) == len(every["intervals"]["count"])
    pd.testing.assert_frame_equal(growth_from(kept), growth_from(every), check_exact=True)


FIRST_SPAWN = """
import subprocess, sys
seen = []
real = subprocess.Popen.__init__
def spawn(self, args, *a, **kw):
    if not seen and "memray_worker.py" in " ".join(map(str, args)):
        seen.append((args[3], *(m in sys.modules for m in (
            "pandas", "labkit.rundir", "labkit.artifacts", "labkit.frames.memray"))))
    real(self, args, *a, **kw)
subprocess.Popen.__init__ = spawn
from labkit.cli import main
code = main(["export", sys.argv[1], "--to", sys.argv[2], "--out", sys.argv[3]])
print(code, *seen[0])
"""


@pytest.mark.parametrize(("fmt", "command"), [("parquet", "held_churn"), ("pprof", "stats")])
def test_an_export_starts_memray_s_passes_before_anything_heavy(
        fmt: str, command: str, tmp_path: Path) -> None:
    """memray's passes are an export's critical path: its first worker starts before the
    run's machinery, memray's frames or pandas is imported, and the export is whole."""
    out = subprocess.run([sys.executable, "-c", FIRST_SPAWN, str(CAPTURE.parent), fmt,
                          str(tmp_path / "out")], capture_output=True, text=True,
                         cwd=tmp_path)
    assert out.stdout.split()[-6:] == ["0", command, "False", "False", "False", "False"], \
        out.stderr[-400:]


AS_THE_COMMAND = """
import atexit, subprocess, sys
spawned = []
real = subprocess.Popen.__init__
def spawn(self, args, *a, **kw):
    if "memray_worker.py" in " ".join(map(str, args)):
        spawned.append((self, args[3], "labkit.cli.parser" in sys.modules))
    real(self, args, *a, **kw)
subprocess.Popen.__init__ = spawn
def report():  # the exit handlers run: the command leaves without a teardown
    print("spawned", *(f"{c}:{'late' if p else 'early'}" for _, c, p in spawned),
          "reaped" if all(w.poll() is not None for w, _, _ in spawned) else "running",
          flush=True)
atexit.register(report)
first = None
if sys.argv[1] == "pprof passes":  # started for another export than the command line's
    from labkit.export import MEMRAY_PASSES
    from labkit.frames.memray_start import start_first
    from pathlib import Path
    first = start_first(Path(CAPTURE), MEMRAY_PASSES["pprof"])
sys.argv = ["labkit", *sys.argv[2:]]
import labkit.cli as cli
if first is None:
    cli.command()
code, _ = cli._verb(None, first)
first.close()
report()
atexit.unregister(report)
sys.exit(code)
"""


@pytest.mark.parametrize(("words", "started", "code"), [
    (["--to", "parquet", "--out", "OUT"], ["held_churn:early"], 0),
    (["--out=OUT", "--label", "a=b", "--to=parquet", "--force"], ["held_churn:early"], 0),
    (["--out", "OUT"], ["stats:early", "peak:early"], 0),  # pprof, the default
    (["--t", "parquet", "--out", "OUT"], ["held_churn:late"], 0),  # abbreviated: argparse's
    (["--to", "parquet", "--out", "RUN"], ["held_churn:early"], 2),  # the run's folder: refused
    ("pprof passes", ["stats:early", "peak:early", "held_churn:late"], 0)])
def test_the_export_command_starts_memray_before_it_parses(
        words: list[str] | str, started: list[str], code: int, tmp_path: Path) -> None:
    """As the ``labkit`` command, an export typed with whole option names starts memray's
    passes before argparse is imported, and uses them; passes started for another export
    are stopped and the right ones started; whatever happens, no worker is left running."""
    run = str(CAPTURE.parent)
    how, words = (words, ["--to", "parquet", "--out", "OUT"]) if isinstance(words, str) \
        else ("command", words)
    words = [w.replace("OUT", str(tmp_path / "out")).replace("RUN", run) for w in words]
    script = AS_THE_COMMAND.replace("CAPTURE", repr(str(CAPTURE)))
    out = subprocess.run([sys.executable, "-c", script, how, "export", run, *words],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == code, out.stderr[-400:]
    assert out.stdout.splitlines()[-1].split() == ["spawned", *started, "reaped"], \
        (out.stdout[-400:], out.stderr[-400:])
    if code == 0:
        assert any(p.name.endswith((".parquet", ".pb.gz")) for p in
                   (tmp_path / "out").rglob("*"))


PROBED_AT_HELD = """
from labkit.frames.memray import MemrayCapture
real, seen = MemrayCapture._result, []
def result(self, task):
    if task == "held":
        seen.append(f"{gc.get_freeze_count()}:{gc.isenabled():d}")
    return real(self, task)
MemrayCapture._result = result
"""


@pytest.mark.parametrize("how", ["command", "in-process"])
def test_the_parquet_command_stops_the_collector_before_the_temporal_result(
        how: str, tmp_path: Path) -> None:
    """As the ``labkit`` command, the Parquet export puts pandas' and pyarrow's objects out
    of the collector's reach and turns the collector off before it takes memray's temporal
    result; called with ``argv`` (a notebook, a test), it leaves the collector alone."""
    out = main_as(how, ["export", str(CAPTURE.parent), "--out", str(tmp_path / "out"),
                        "--to", "parquet"], tmp_path, before=PROBED_AT_HELD,
                  after="print(code, *seen)")
    code, *seen = out.stdout.splitlines()[-1].split()
    assert code == "0" and seen, out.stderr[-400:]
    frozen = [int(x.split(":")[0]) for x in seen]
    enabled = {x.split(":")[1] == "1" for x in seen}
    if how == "command":
        assert min(frozen) > 20_000 and enabled == {False}, seen  # pandas, pyarrow: far more
    else:
        assert max(frozen) == 0 and enabled == {True}, seen
