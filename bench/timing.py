"""What the benchmarks share: timing one command in a fresh process tree."""

from __future__ import annotations

import os
import subprocess
import time


def run_tree(argv: list[str], *, env: dict[str, str] | None = None, cwd: str | None = None
             ) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system of the whole tree) and peak RSS (bytes: the
    largest process in its tree), from ``wait4``, of one command; a failing command stops
    the benchmark with its last stderr."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                            cwd=cwd)
    err = proc.stderr.read() if proc.stderr is not None else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {argv[:5]}: {err.decode(errors='replace')[-400:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def timed(argv: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS of one command (:func:`run_tree`)."""
    wall, _, rss = run_tree(argv)
    return wall, rss


def compiled(*checkouts: str | os.PathLike[str]) -> None:
    """Write the bytecode caches of each checkout's ``labkit`` package, as an installed
    labkit has them: a timed process that runs with ``PYTHONDONTWRITEBYTECODE`` set (as
    this machine's shells do) would otherwise compile every module changed since its cache
    on every run, which no user's install does (30-40 ms of an export's start)."""
    import sys

    for checkout in checkouts:
        subprocess.run([sys.executable, "-m", "compileall", "-q", os.path.join(checkout, "labkit")],
                       check=True, stdout=subprocess.DEVNULL)


def load_average() -> str:
    """The machine's load averages, as the benchmarks print them beside their figures."""
    return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
