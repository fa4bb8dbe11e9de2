"""Does the postmortem name the culprit? A corpus of leaky programs, captured as a user would.

    .venv/bin/python bench/postmortem_accuracy.py [--trace-python-allocators] [--aggregate]
                                                  [PROGRAM ...]

Each program in ``bench/corpus/`` is a different real-world pattern and names, in its first
line (``# culprit: FUNCTION``), the function whose code has to change to fix it. Each is
run under ``labkit capture`` (all four backends and the agent's origins; memray, with
``--trace-python-allocators``, records every small object too; with ``--aggregate``, in
memray's aggregated format: the high-water mark and leaks per stack only), then
``labkit postmortem RUN --json``; the culprit's rank among the suspects is printed, and
the totals: culprit at rank 1, culprit in the top 3.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"


def culprit_of(program: Path) -> str:
    """The function named on the program's ``# culprit:`` line."""
    first = program.read_text().splitlines()[0]
    if not first.startswith("# culprit: "):
        raise SystemExit(f"{program} does not start with '# culprit: FUNCTION'")
    return first.removeprefix("# culprit: ").strip()


def rank_of(program: Path, python: str = sys.executable,
            capture_options: tuple[str, ...] = ()) -> tuple[int | None, list[str]]:
    """Capture ``program``, run the postmortem; the culprit's rank (None: not a suspect)
    and the top three suspects as ``function (file:line)``."""
    with tempfile.TemporaryDirectory(prefix="labkit-accuracy-") as tmp:
        run, out = Path(tmp) / "run", Path(tmp) / "findings.json"
        cap = subprocess.run([python, "-m", "labkit", "capture", *capture_options, "--out",
                              str(run), "--", python, str(program)], capture_output=True, text=True,
                             timeout=300)
        if cap.returncode != 0:
            raise RuntimeError(f"capture of {program.name} failed: {cap.stderr[-500:]}")
        pm = subprocess.run([python, "-m", "labkit", "postmortem", str(run), "--json",
                             str(out)], capture_output=True, text=True, timeout=300)
        if pm.returncode != 0:
            raise RuntimeError(f"postmortem of {program.name} failed: {pm.stderr[-500:]}")
        suspects = json.loads(out.read_text())["suspects"]
    names = [s["function"] for s in suspects]
    culprit = culprit_of(program)
    top = [f"{s['function']} ({Path(s['file']).name}:{s['line']})" for s in suspects[:3]]
    return (names.index(culprit) + 1 if culprit in names else None), top


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("programs", nargs="*", help="names in bench/corpus (default: all)")
    ap.add_argument("--trace-python-allocators", action="store_true",
                    help="capture every small object with memray (all backends still on)")
    ap.add_argument("--aggregate", action="store_true",
                    help="memray in its aggregated format (memray run --aggregate; all "
                         "backends still on)")
    args = ap.parse_args()
    options = (("--gc", "--proc", "--memray", "--pyspy", "--trace-python-allocators")
               if args.trace_python_allocators else ())
    options += ("--aggregate",) if args.aggregate else ()
    programs = [CORPUS / f"{p.removesuffix('.py')}.py" for p in args.programs] or \
        sorted(CORPUS.glob("*.py"))
    first = top3 = 0
    print(f"{'program':<22} {'culprit':<16} {'rank':>4}  top 3 suspects", flush=True)
    t = time.monotonic()
    for p in programs:
        rank, top = rank_of(p, capture_options=options)
        first += rank == 1
        top3 += rank is not None and rank <= 3
        print(f"{p.stem:<22} {culprit_of(p):<16} {rank if rank else '-':>4}  "
              f"{'; '.join(top)}", flush=True)
    n = len(programs)
    print(f"\nculprit at rank 1: {first}/{n}; in the top 3: {top3}/{n} "
          f"({time.monotonic() - t:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
