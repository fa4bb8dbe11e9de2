"""A class on one `labkit hub`: simulated learners run 10-pool-misuse's quick preset at once.

Each round starts `labkit hub LEARNERS` (with its caps, or `--no-caps`), and every learner,
through the hub's REST API and a kernel of their own server (:mod:`labkit.hub.client`),
runs the notebook's code cells in order with a prediction set, as Run All does, all at the
same moment. Measured per learner: the time to first result (Run All to the first output
of the cell that runs the leaky variant: its RSS chart), the time to the last cell, the
CPU seconds of the kernel and everything it ran (getrusage, self + children) and the peak
memory of the learner's cgroup (caps on). With ``--runaway``, the last learner instead
runs a runaway leak (3 processes each appending 1 MiB blocks up to 1.5 GiB, rewriting
them, for as long as the others run): what does it do to the others' times, with and
without caps?

Rounds: `caps` (no runaway), `caps+runaway`, `nocaps+runaway`, alternated over ``--reps``;
medians per round kind. At the end the learners' homes' ``.labkit/records/`` are copied
under a folder it prints (``labkit class DIR`` reads them).

    .venv/bin/python bench/class.py [--learners 10] [--reps 1] [--out DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROXY = ROOT / ".hub-proxy/node_modules/.bin/configurable-http-proxy"
NOTEBOOK = "10-pool-misuse.py"
RUNAWAY = """
import subprocess, sys, time
leak = '''
import time
blocks, end = [], time.monotonic() + {seconds}
while time.monotonic() < end:
    if len(blocks) < 1536:
        blocks.append(bytearray(1 << 20))
    for b in blocks[-64:]:
        b[::4096] = b'x' * len(b[::4096])
'''
procs = [subprocess.Popen([sys.executable, '-c', leak]) for _ in range(3)]
print('runaway exit codes', [p.wait() for p in procs])
"""
USAGE = ("import resource\n"
         "s, c = resource.getrusage(resource.RUSAGE_SELF), "
         "resource.getrusage(resource.RUSAGE_CHILDREN)\n"
         "print('cpu_s', s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime)")


def _quietly(fn, *args) -> None:
    """The runaway's kernel dies or is stopped with the hub: whatever it raises then."""
    with contextlib.suppress(Exception):
        fn(*args, timeout_s=900)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def notebook_cells(prediction: float) -> tuple[list[str], int]:
    """The notebook's code cells with the prediction set, and the index of the cell that
    runs the leaky variant."""
    import jupytext

    from labkit.resources import notebooks_dir

    nb = jupytext.read(notebooks_dir() / NOTEBOOK)
    cells = [c.source for c in nb.cells if c.cell_type == "code"]
    params = next(i for i, c in enumerate(cells) if "prediction_mib = None" in c)
    cells[params] = cells[params].replace("prediction_mib = None",
                                          f"prediction_mib = {prediction}")
    first = next(i for i, c in enumerate(cells) if 'lab.run("leaky")' in c)
    return cells, first


def start_hub(learners: int, caps: bool, state: Path) -> subprocess.Popen[str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "labkit", "hub", str(learners), "--port", str(port),
           "--password", "bench", "--state", str(state), "--proxy", str(PROXY)]
    proc = subprocess.Popen(cmd + ([] if caps else ["--no-caps"]), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip())
        if line.strip() == "ready":
            break
    if not lines or lines[-1] != "ready":
        raise SystemExit("labkit hub did not start:\n" + "\n".join(lines))
    proc.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    proc.said = lines  # type: ignore[attr-defined]
    return proc


def stop_hub(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)  # SIGINT is ignored under nohup
    proc.wait(timeout=120)


def one_round(learners: int, caps: bool, runaway: bool, keep: Path | None) -> dict:
    from labkit.hub.client import HubClient, run_cells

    state = Path(tempfile.mkdtemp(prefix="class-bench-"))
    hub = start_hub(learners, caps, state / "state")
    try:
        client = HubClient(hub.url, (state / "state" / "trainer-token").read_text().strip())
        names = [lr["name"] for lr in json.loads((state / "state" / "learners.json")
                                                  .read_text())]
        spawns = [threading.Thread(target=client.start_server, args=(n, 600)) for n in names]
        for th in spawns:  # servers up first: the round times Run All, not the spawns
            th.start()
        for th in spawns:
            th.join()
        tokens = {n: client.user_token(n) for n in names}
        cells, first = notebook_cells(prediction=50)
        results: dict[str, dict] = {}
        go = threading.Barrier(len(names))
        done = threading.Event()

        def learner(name: str, leak: bool) -> None:
            go.wait()
            t0 = time.monotonic()
            try:
                if leak:
                    seconds = 600
                    code = RUNAWAY.replace("{seconds}", str(seconds))
                    th = threading.Thread(target=_quietly, args=(
                        run_cells, hub.url, name, tokens[name], [code]), daemon=True)
                    th.start()
                    done.wait()
                    results[name] = {"runaway": True}
                    return
                out = run_cells(hub.url, name, tokens[name], [*cells, USAGE], timeout_s=900)
                ok = all(r.status == "ok" for r in out)
                text = "".join(o.get("text", "") for o in out[-1].outputs)
                results[name] = {
                    "ok": ok and len(out) == len(cells) + 1,
                    "first_result_s": out[first].first_output_s,
                    "done_s": out[-2].done_s if len(out) > 1 else None,
                    "cpu_s": float(text.split()[-1]) if text.startswith("cpu_s") else None,
                    "started_s": t0}
            except Exception as exc:  # a learner's failure is a result, not a crash
                results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}

        threads = [threading.Thread(target=learner, args=(n, runaway and n == names[-1]))
                   for n in names]
        for th in threads:
            th.start()
        for th in threads:
            if th is not threads[-1] or not runaway:
                th.join()
        caps_json = json.loads((state / "state" / "caps.json").read_text())
        peaks = []
        for d in caps_json["group_dirs"]:
            for name in names[:-1] if runaway else names:
                f = Path(d, name, "memory.max_usage_in_bytes")
                if f.exists():
                    peaks.append(int(f.read_text()))
        done.set()
        threads[-1].join(timeout=5)
        if keep is not None:
            for name in names:
                rec = Path("/home") / name / ".labkit" / "records"
                if rec.is_dir():
                    shutil.copytree(rec, keep / name / ".labkit" / "records",
                                    dirs_exist_ok=True)
        normal = [r for n, r in results.items() if not r.get("runaway")]
        return {"caps": caps, "runaway": runaway, "learners": learners,
                "ok": sum(1 for r in normal if r.get("ok")), "of": len(normal),
                "first_result_s": sorted(r["first_result_s"] for r in normal if r.get("ok")),
                "done_s": sorted(r["done_s"] for r in normal if r.get("ok")),
                "cpu_s": sorted(r["cpu_s"] for r in normal if r.get("cpu_s")),
                "peak_mem_bytes": sorted(peaks),
                "errors": [r["error"] for r in normal if "error" in r],
                "caps_said": [ln for ln in hub.said if ln.startswith("  ")]}
    finally:
        stop_hub(hub)
        shutil.rmtree(state, ignore_errors=True)


def _med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--learners", type=int, default=10)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--kinds", default="caps,caps+runaway,nocaps+runaway")
    ap.add_argument("--out", type=Path, help="keep the learners' records here (default: a "
                    "new temporary folder)")
    ap.add_argument("--json", type=Path, help="also write every round's figures here")
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="class-records-"))
    out.mkdir(parents=True, exist_ok=True)
    kinds = args.kinds.split(",")
    rounds = []
    for rep in range(args.reps):
        for kind in (kinds if rep % 2 == 0 else kinds[::-1]):
            load = os.getloadavg()[0]
            r = one_round(args.learners, kind.startswith("caps"), kind.endswith("runaway"),
                          out)
            r.update(kind=kind, load_before=load, load_after=os.getloadavg()[0])
            rounds.append(r)
            print(f"{kind:16} ok {r['ok']}/{r['of']}  first result median "
                  f"{_med(r['first_result_s']):.1f} s (max "
                  f"{max(r['first_result_s'], default=float('nan')):.1f})  slowest learner "
                  f"{max(r['done_s'], default=float('nan')):.1f} s  cpu/learner "
                  f"{_med(r['cpu_s']):.1f} s  peak mem/learner "
                  f"{_med(r['peak_mem_bytes']) / 2**20:.0f} MiB  load {load:.1f}->"
                  f"{r['load_after']:.1f}", flush=True)
            for e in r["errors"]:
                print(f"    {e}")
    if args.json:
        args.json.write_text(json.dumps(rounds, indent=1))
    print(f"learners' records: {out} (labkit class {out})")


if __name__ == "__main__":
    main()
