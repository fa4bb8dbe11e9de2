"""fd-leak: file handles lost on an error path.

The essay's incident (3.2, 5): ``log.Fatal`` skipped the deferred ``Close()``; after 72 hours
12,843 handles were open and the service hit ``ulimit -n``. Two Python error paths:

* A request handler opens a file, and some requests fail while parsing it. Leaky: a bare
  ``open``; the failures are kept for a retry report, and each kept exception's traceback
  holds the handler's frame, which holds the open file. (CPython closes a file when its last
  reference goes; here the last reference never goes.) With ``RLIMIT_NOFILE`` lowered, the
  leak ends in ``EMFILE``, as in the essay. Fixed: ``with open(...)``.
* Worker processes write a spool file and clean it up in ``finally``. Leaky: a failing
  worker calls ``os._exit``, which skips ``finally`` and leaves its file behind. Fixed: it
  raises ``SystemExit`` instead, and the cleanup runs.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from labkit.scenarios.base import Metrics, Param, ScenarioSpec, Signature, row, run_main

SPEC = ScenarioSpec(
    name="fd-leak",
    title="File handles lost on an error path",
    incident="essay 3.2/5: log.Fatal skipped deferred Close(); 12,843 handles hit ulimit -n",
    shows="open fds grow with failed requests until EMFILE (leaky), stay flat (fixed); "
          "workers that os._exit leave spool files behind",
    variants=("leaky", "fixed"),
    params={
        "requests": Param(5_000, 2_000, "requests handled"),
        "fail_every": Param(5, 5, "every Nth request fails while parsing"),
        "fd_limit": Param(1024, 256, "RLIMIT_NOFILE soft limit set for the run"),
        "workers": Param(10, 6, "worker processes, every other one failing"),
        "hold_s": Param(0.5, 0.3, "seconds to stay up at the end"),
    },
    captures=("gc", "proc"),
    memory_cap_mb=512,
    variant_help={"leaky": "bare open; os._exit in workers",
                  "fixed": "with open(); SystemExit in workers"},
)

WORKER = r"""
import os, sys
spool, variant, fail = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
path = os.path.join(spool, f"job-{os.getpid()}.spool")
try:
    with open(path, "w") as fh:
        fh.write("partial work\n")
    if fail:
        if variant == "leaky":
            os._exit(3)          # skips the finally below
        raise SystemExit(3)      # runs it
finally:
    if os.path.exists(path):
        os.unlink(path)
"""


class ParseError(Exception):
    """A request whose input could not be parsed."""


def handle(variant: str, path: Path, fail: bool) -> int:
    """Read one request's input; raise :class:`ParseError` for a failing one."""
    if variant == "leaky":
        fh = open(path)  # noqa: SIM115 - the bug this scenario shows
        data = fh.read()
        if fail:
            raise ParseError(f"bad input in {path.name}")
        fh.close()
        return len(data)
    with open(path) as fh:
        data = fh.read()
        if fail:
            raise ParseError(f"bad input in {path.name}")
        return len(data)


def open_fds() -> int | None:
    """Descriptors open in this process (None when even this needs one too many)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def serve(variant: str, p: dict[str, Any], metrics: Metrics, work: Path) -> None:
    inputs = []
    for i in range(8):
        inputs.append(work / f"input-{i}.txt")
        inputs[-1].write_text("payload\n" * 64)
    failures: list[Exception] = []  # kept for a retry report
    emfile = 0
    every = max(1, p["requests"] // 40)
    metrics.baseline()
    for i in range(1, p["requests"] + 1):
        try:
            handle(variant, inputs[i % len(inputs)], i % p["fail_every"] == 0)
        except ParseError as exc:
            failures.append(exc)
        except OSError as exc:
            if exc.errno != 24:  # EMFILE: too many open files
                raise
            emfile += 1
        if i % every == 0:
            metrics.emit(requests=i, failures=len(failures), emfile_errors=emfile,
                         open_fds=open_fds())
    metrics.emit(phase="served", failures=len(failures), open_fds=open_fds())
    time.sleep(p["hold_s"])  # a leaking service sits at its limit; let the samplers see it
    metrics.emit(phase="released")  # the end of the serving window; workers come after
    # each kept exception's traceback holds this frame, which holds the list: a cycle;
    # clearing it lets the files close now rather than at the next full collection
    failures.clear()


def run_workers(variant: str, p: dict[str, Any], metrics: Metrics, work: Path) -> None:
    from labkit.capture.children import set_pdeathsig

    spool = work / "spool"
    spool.mkdir()
    failed = 0
    for w in range(p["workers"]):
        fail = w % 2 == 1
        failed += fail
        subprocess.run([sys.executable, "-c", WORKER, str(spool), variant, str(int(fail))],
                       timeout=30, preexec_fn=set_pdeathsig, check=False)
    metrics.emit(workers=p["workers"], workers_failed=failed,
                 spool_files_left=len(list(spool.iterdir())))


def signature(runs: dict[str, Any]) -> Signature:
    """Open fds against failed requests; EMFILE; spool files left by workers."""
    from labkit.scenarios.measure import growth_during_work, metrics_frame

    m = {v: metrics_frame(r) for v, r in runs.items()}
    served = {v: float(df[df.phase == "released"].t_s.max()) for v, df in m.items()}
    fd_growth = {v: growth_during_work(r, r.proc, "fds", until_s=served[v])
                 for v, r in runs.items()}
    own = {v: float(df.open_fds.max() - df.open_fds.dropna().iloc[0]) for v, df in m.items()}
    emfile = {v: float(df.emfile_errors.max()) for v, df in m.items()}
    left = {v: float(df.spool_files_left.max()) for v, df in m.items()}
    failed = float(m["leaky"].workers_failed.max())
    limit = float(runs["leaky"].meta.values["fd_limit"])
    return Signature("fd-leak", [
        row("open fds added while serving (process sampler)", fd_growth,
            f"leaky >= 0.6 x the fd limit ({limit:.0f}); fixed <= 4",
            lambda x: x["leaky"] >= 0.6 * limit and x["fixed"] <= 4, lesson=True),
        row("open fds added, as the program saw them", own, "leaky >= 0.6 x limit; fixed <= 2",
            lambda x: x["leaky"] >= 0.6 * limit and x["fixed"] <= 2),
        row("requests refused with EMFILE", emfile, "leaky > 0; fixed == 0",
            lambda x: x["leaky"] > 0 and x["fixed"] == 0),
        row("spool files left by workers", left,
            f"leaky == failed workers ({failed:.0f}); fixed == 0",
            lambda x: x["leaky"] == failed and x["fixed"] == 0),
    ])


def run(variant: str, p: dict[str, Any], metrics: Metrics) -> None:
    """Serve under a lowered fd limit, then run the workers, in a scratch folder."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(p["fd_limit"], hard), hard))
    work = Path(tempfile.mkdtemp(prefix="labkit-fd-leak-"))
    try:
        serve(variant, p, metrics, work)
        run_workers(variant, p, metrics, work)
        metrics.hold(p["hold_s"])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    run_main(SPEC, argv, run)


if __name__ == "__main__":
    main(sys.argv[1:])
