"""``labkit gctrace`` on real programs: truth against CPython's counters, and pass-through."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from labkit import load
from tests.conftest import PY, alive, assert_clean_error, labkit

pytestmark = pytest.mark.slow

TRUTH_PROG = """
import gc, json, time

def window():
    gc.disable()          # no automatic collection can fall between these two reads
    t = time.perf_counter_ns()
    s = [d["collections"] for d in gc.get_stats()]
    gc.enable()
    return t, s

t0, s0 = window()
junk = []
for i in range(200_000):
    a = [i]; b = [a]; a.append(b)          # cyclic garbage
    if i % 50 == 0:
        junk.append({"k": [i, str(i)]})    # long-lived containers
    if i % 40_000 == 0:
        gc.collect()
t1, s1 = window()
print(json.dumps({"t0": t0, "t1": t1, "delta": [b - a for a, b in zip(s0, s1)]}))
"""


def test_truth_traced_collections_equal_cpythons_own_counters(tmp_path: Path, write_prog) -> None:
    prog = write_prog(TRUTH_PROG)
    out = tmp_path / "run"
    cp = labkit("gctrace", "--quiet", "--out", str(out), "--", PY, str(prog))
    assert cp.returncode == 0, cp.stderr
    own = json.loads(cp.stdout.strip().splitlines()[-1])
    ev = load(out).gc_events
    inside = ev[(ev.t_start_ns > own["t0"]) & (ev.t_start_ns < own["t1"])]
    traced = [int((inside.generation == g).sum()) for g in range(3)]
    assert traced == own["delta"]
    assert own["delta"][0] > 100  # the workload really collected, so the equality means something
    assert own["delta"][2] >= 5


def test_quiet_prints_only_the_summary(tmp_path: Path, write_prog) -> None:
    prog = write_prog("import gc\nfor _ in range(3): gc.collect()\n")
    cp = labkit("gctrace", "--quiet", "--out", str(tmp_path / "r"), "--", PY, str(prog))
    assert cp.returncode == 0
    assert not [ln for ln in cp.stderr.splitlines() if ln.startswith("gc ")]
    assert "collections in" in cp.stderr and "p99" in cp.stderr and "tracer:" in cp.stderr


def test_summary_cost_is_the_whole_tracer(tmp_path: Path, write_prog) -> None:
    # GIVEN a program that collects a lot and runs long enough for the sampler to wake
    prog = write_prog("import gc, time\ngc.set_threshold(5, 10, 10)\nt = time.time()\n"
                      "while time.time() - t < 0.3:\n    a = [[] for _ in range(50)]\n")
    out = tmp_path / "r"
    cp = labkit("gctrace", "--quiet", "--out", str(out), "--", PY, str(prog))
    assert cp.returncode == 0, cp.stderr
    meta = json.loads((out / "gctrace.json").read_text())
    # THEN the summary's figure is callback + sampler + final drain, each printed
    line = next(ln for ln in cp.stderr.splitlines() if "tracer:" in ln)
    assert meta["sampler_ns"] > 0 and meta["callback_ns"] > 0
    total = meta["callback_ns"] + meta["sampler_ns"] + meta["drain_ns"]
    assert meta["overhead_ns"] == total
    assert f"tracer: {total / 1e6:.3f} ms" in line, line
    assert f"sampler thread {meta['sampler_ns'] / 1e6:.3f} ms" in line, line
    assert f"= {meta['callback_ns'] / 1e6:.3f} ms" in line, line


def test_live_lines_one_per_collection(tmp_path: Path, write_prog) -> None:
    prog = write_prog("import gc\nfor _ in range(7): gc.collect(2)\n")
    out = tmp_path / "r"
    cp = labkit("gctrace", "--out", str(out), "--", PY, str(prog))
    lines = [ln for ln in cp.stderr.splitlines() if ln.startswith("gc ")]
    assert len(lines) == len(load(out).gc_events) >= 7
    assert sum("gen2" in ln for ln in lines) >= 7
    # gc SEQ @T s P%: genG PAUSE ms, C/U collected/uncollectable, young N, rss M MiB
    assert lines[0].split()[2].startswith("@") and lines[0].split()[3].endswith("%:")


@pytest.mark.parametrize("code,rc", [("pass", 0), ("raise SystemExit(3)", 3)])
def test_exit_code_passes_through(tmp_path: Path, write_prog, code: str, rc: int) -> None:
    prog = write_prog(code + "\n")
    cp = labkit("gctrace", "--quiet", "--out", str(tmp_path / "r"), "--", PY, str(prog))
    assert cp.returncode == rc
    assert (tmp_path / "r" / "manifest.json").is_file()
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["outcome"]["returncode"] == rc


def test_uncaught_exception_looks_like_plain_python(tmp_path: Path, write_prog) -> None:
    prog = write_prog("def f():\n    raise ValueError('boom')\nf()\n")
    plain = subprocess.run([PY, str(prog)], capture_output=True, text=True)
    cp = labkit("gctrace", "--quiet", "--out", str(tmp_path / "r"), "--", PY, str(prog))
    assert cp.returncode == plain.returncode == 1
    tb = cp.stderr.split("labkit gctrace:")[0]
    assert tb == plain.stderr  # the same traceback, no labkit frames in it


def test_module_mode_and_argv(tmp_path: Path) -> None:
    (tmp_path / "mymod.py").write_text("import sys\nprint(sys.argv)\n")
    cp = labkit("gctrace", "--quiet", "--out", str(tmp_path / "r"), "--", PY, "-m", "mymod",
                "a", "b", cwd=tmp_path)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip().endswith("'a', 'b']")


def test_stdin_reaches_the_program_and_stdout_comes_back(tmp_path: Path, write_prog) -> None:
    prog = write_prog("import sys\nfor line in sys.stdin:\n    print(line.strip().upper())\n")
    cp = labkit("gctrace", "--quiet", "--out", str(tmp_path / "r"), "--", PY, str(prog),
                input="hello\nworld\n")
    assert cp.returncode == 0
    assert cp.stdout == "HELLO\nWORLD\n"


def test_script_sees_itself_as_main_with_its_own_dir_on_path(tmp_path: Path, write_prog) -> None:
    write_prog("VALUE = 42\n", name="helper.py")
    prog = write_prog("import helper, sys\nassert __name__ == '__main__'\n"
                      "print(helper.VALUE, sys.argv[1:])\n")
    cp = labkit("gctrace", "--quiet", "--out", str(tmp_path / "r"), "--", PY, str(prog), "x",
                cwd="/")
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.strip() == "42 ['x']"


def _start_sleeper(tmp_path: Path, write_prog) -> tuple[subprocess.Popen, int]:
    prog = write_prog("import os, time\nprint(os.getpid(), flush=True)\n"
                      "while True:\n    x = [[] for _ in range(1000)]\n    time.sleep(0.01)\n")
    p = subprocess.Popen([PY, "-m", "labkit", "gctrace", "--quiet", "--out",
                          str(tmp_path / "r"), "--", PY, str(prog)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    child = int(p.stdout.readline())
    time.sleep(0.5)
    return p, child


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_ends_the_child_and_leaves_no_process(tmp_path: Path, write_prog, sig) -> None:
    p, child = _start_sleeper(tmp_path, write_prog)
    p.send_signal(sig)
    p.wait(timeout=30)
    assert p.returncode == -sig  # labkit dies the way the program died
    assert not alive(child)
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["outcome"]["signal"] == sig.name
    run = load(tmp_path / "r")
    assert len(run.heap) > 5  # what was captured before the signal is kept
    assert run.gc_meta["finished"] is True  # the handlers let the tracer finish its files
    assert 0.3 < run.gc_wall_s < 30


def test_sigkill_of_labkit_takes_the_child_down(tmp_path: Path, write_prog) -> None:
    p, child = _start_sleeper(tmp_path, write_prog)
    p.kill()
    p.wait(timeout=10)
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def test_no_program_given() -> None:
    assert_clean_error(labkit("gctrace"), "no program given")
    assert_clean_error(labkit("gctrace", "--", PY), "no program given")


def test_missing_script(tmp_path: Path) -> None:
    assert_clean_error(labkit("gctrace", "--", PY, str(tmp_path / "nope.py")), "not found")


def test_missing_interpreter(tmp_path: Path) -> None:
    assert_clean_error(labkit("gctrace", "--", "python-does-not-exist", "x.py"),
                       "not an executable")


def test_existing_run_directory_is_never_overwritten(tmp_path: Path, write_prog) -> None:
    prog = write_prog("pass\n")
    out = tmp_path / "r"
    out.mkdir()
    (out / "precious.bin").write_bytes(b"x" * 10)
    assert_clean_error(labkit("gctrace", "--out", str(out), "--", PY, str(prog)),
                       "already exists")
    assert (out / "precious.bin").read_bytes() == b"x" * 10


def test_python_dash_m_labkit_and_console_script_agree() -> None:
    exe = Path(sys.executable).with_name("labkit")
    a = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    b = labkit("--help")
    assert a.returncode == b.returncode == 0
    assert "gctrace" in a.stdout and a.stdout == b.stdout


def test_interpreter_that_cannot_start(tmp_path: Path, write_prog) -> None:
    fake = tmp_path / "python-broken"
    fake.write_text("not a program")
    fake.chmod(0o755)  # executable, but not a format the kernel can run
    prog = write_prog("pass\n")
    out = tmp_path / "r"
    assert_clean_error(labkit("gctrace", "--out", str(out), "--", str(fake), str(prog)),
                       "cannot start")
    assert not out.exists() and not list(tmp_path.glob("r.partial-*"))
