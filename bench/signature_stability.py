"""How often each scenario's quick signature holds, and how much each metric moves.

    .venv/bin/python bench/signature_stability.py [-n 10] [--python PY] [SCENARIO ...]

Runs every variant of each scenario ``n`` times in a row (the way ``make test`` does, on this
2-core machine), measures the signature each time, and prints per scenario the pass rate and,
per metric and variant, the minimum, median and maximum with the expectation beside them.
A failing run's rows are printed as they happen, so a flake can be read, not just counted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from labkit.runner import measure
from labkit.scenarios import NAMES


def _fmt(x: float) -> str:
    return f"{x:,.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenarios", nargs="*", default=list(NAMES))
    ap.add_argument("-n", type=int, default=10, help="runs per scenario (default 10)")
    ap.add_argument("--python", default=sys.executable, help="interpreter for the scenarios")
    args = ap.parse_args()
    print(f"python: {args.python}; {args.n} quick runs per scenario", flush=True)
    worst = 1.0
    for name in args.scenarios:
        passed = 0
        values: dict[tuple[str, str], list[float]] = defaultdict(list)
        expect: dict[str, str] = {}
        t = time.monotonic()
        for i in range(args.n):
            with tempfile.TemporaryDirectory(prefix="labkit-stability-") as tmp:
                sig = measure(name, quick=True, out=Path(tmp), python=args.python)
            passed += sig.ok
            for r in sig.rows:
                expect[r.metric] = r.expect
                for v, x in r.values.items():
                    values[(r.metric, v)].append(float(x))
            if not sig.ok:
                bad = [f"{r.metric} {r.values} ({r.expect})" for r in sig.rows if not r.ok]
                print(f"  {name} run {i + 1} FAILED: " + "; ".join(bad), flush=True)
        rate = passed / args.n
        worst = min(worst, rate)
        print(f"\n{name}: {passed}/{args.n} held ({time.monotonic() - t:.0f} s)")
        for metric, exp in expect.items():
            print(f"  {metric}  [{exp}]")
            for (m, v), xs in values.items():
                if m == metric:
                    print(f"    {v:>10}: min {_fmt(min(xs)):>10}  median "
                          f"{_fmt(statistics.median(xs)):>10}  max {_fmt(max(xs)):>10}")
        sys.stdout.flush()
    return 0 if worst == 1.0 else 1


if __name__ == "__main__":
    sys.exit(main())
