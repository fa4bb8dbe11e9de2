"""A postmortem on a realistic memray capture against what memray's own commands cost.

Makes a capture of at least 10 million allocation records from many distinct call stacks,
with ``--trace-python-allocators`` (every small object is a record), then alternates PAIRS
times, each a fresh process tree:

  A  ``memray flamegraph`` then ``memray stats --json`` on the file: what a memray user
     runs to get the same two views (where memory went, and the totals);
  B  ``labkit postmortem --memray FILE --html OUT``: findings, charts and flamegraphs in
     one offline report (built from the findings the command computed);
  C  ``labkit postmortem --memray FILE --json OUT``: the verdict and suspects on the
     terminal and as JSON, the default use.

Prints the medians of the per-round wall-time ratios B/A and C/A and each side's peak
RSS (the largest process in its tree, from ``wait4``), with the load average.

With ``--sizes``, the size curve: a capture per number of objects (``--captures DIR``
keeps them for the next run), A against C at each (B too with ``--html``), then a table
of records against seconds and peak RSS, labkit's and memray's, and the same as a chart
(``--chart``, a PNG drawn with matplotlib).

    .venv/bin/python bench/postmortem.py [--pairs 3] [--objects 5000000]
    .venv/bin/python bench/postmortem.py --sizes 5000000,20500000,63000000 --pairs 1 \
        --captures /tmp/pm-captures --chart bench/postmortem_curve.png
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from timing import compiled, load_average, timed  # bench/timing.py (scripts run from bench/)

MAKE = """
import memray, sys

N_SITES = 300
src = []
for k in range(N_SITES):
    src.append(f"def site_{k}(n, depth):\\n"
               f"    if depth:\\n"
               f"        return site_{(k * 7 + 1) % N_SITES}(n, depth - 1)\\n"
               f"    keep = []\\n"
               f"    for i in range(n):\\n"
               f"        t = (i, str(i), [i] * {k % 5 + 1})\\n"
               f"        if i % 50 == 0:\\n"
               f"            keep.append(t)\\n"
               f"    return keep\\n")
import os, importlib
sys.path.insert(0, os.path.dirname(sys.argv[1]))
with open(os.path.join(os.path.dirname(sys.argv[1]), "app_sites.py"), "w") as fh:
    fh.write("N_SITES = %d\\n" % N_SITES + "\\n".join(src))  # real files: the user's code
app = importlib.import_module("app_sites")
held = []
objects = int(sys.argv[2])
per_call = max(1, objects // (N_SITES * 3 * 4))
with memray.Tracker(sys.argv[1], trace_python_allocators=True, follow_fork=False):
    for round_ in range(4):
        for k in range(N_SITES):
            held.append(getattr(app, f"site_{k}")(per_call, k % 4))
"""


def records(path: Path) -> int:
    """Allocation records in a capture (allocations and frees, as memray counts them)."""
    import memray

    return memray.FileReader(str(path)).metadata.total_allocations


def capture(py: str, folder: Path, objects: int) -> tuple[Path, int]:
    """A capture of the many-stacks program making ``objects`` objects, in ``folder``
    (reused if it is there), and its number of records."""
    cap = folder / f"big-{objects}.bin"
    if not cap.exists():
        t = time.perf_counter()
        part = cap.with_suffix(".part")
        part.unlink(missing_ok=True)
        subprocess.run([py, "-c", MAKE, str(part), str(objects)], check=True)
        part.rename(cap)
        print(f"capture made in {time.perf_counter() - t:.0f} s", flush=True)
    n = records(cap)
    print(f"capture: {n:,} allocation records, {cap.stat().st_size / 1e6:.0f} MB", flush=True)
    return cap, n


def compare(py: str, cap: Path, tmp: str, pairs: int, sides_wanted: str
            ) -> dict[str, list[tuple[float, int]]]:
    """``pairs`` alternating rounds of A and each of ``sides_wanted`` (``"BC"``, ``"C"``):
    per side, (wall seconds, peak RSS bytes) of each round."""
    compiled(Path(__file__).resolve().parent.parent)
    memray_a = [[py, "-m", "memray", "flamegraph", "-f", "-o", f"{tmp}/fg.html", str(cap)],
                [py, "-m", "memray", "stats", "--json", "-f", "-o", f"{tmp}/stats.json",
                 str(cap)]]
    sides = {"B": [py, "-m", "labkit", "postmortem", "--memray", str(cap), "--html",
                   f"{tmp}/pm.html", "--force"],
             "C": [py, "-m", "labkit", "postmortem", "--memray", str(cap), "--json",
                   f"{tmp}/pm.json", "--force"]}
    got: dict[str, list[tuple[float, int]]] = {k: [] for k in "A" + sides_wanted}
    for i in range(pairs):
        order = ("A", *sides_wanted) if i % 2 == 0 else (*sides_wanted[::-1], "A")
        for side in order:
            if side == "A":
                runs = [timed(c) for c in memray_a]
                got["A"].append((sum(w for w, _ in runs), max(r for _, r in runs)))
            else:
                got[side].append(timed(sides[side]))
        a = got["A"][-1][0]
        text = ", ".join(f"labkit {'--html' if k == 'B' else '--json'} {got[k][-1][0]:.1f} s "
                         f"({got[k][-1][0] / a:.2f}x)" for k in sides_wanted)
        print(f"round {i + 1} ({'/'.join(order)}): memray flamegraph+stats {a:.1f} s, {text}; "
              f"{load_average()}", flush=True)
    med = statistics.median
    for k, what in (("A", "memray flamegraph + stats"), ("B", "labkit postmortem --html"),
                    ("C", "labkit postmortem --json")):
        if k in got:
            ratio = med(w / a for (w, _), (a, _) in zip(got[k], got["A"], strict=True))
            print(f"{what:<28} median {med(w for w, _ in got[k]):5.1f} s, ratio {ratio:.2f}, "
                  f"peak RSS {max(r for _, r in got[k]) / 1e6:.0f} MB")
    return got


def chart(rows: list[tuple[int, dict[str, list[tuple[float, int]]]]], out: Path) -> None:
    """Records against median seconds and peak RSS, labkit's and memray's, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(10, 4))
    n = [r / 1e6 for r, _ in rows]
    for k, label in (("A", "memray flamegraph + stats"), ("B", "labkit postmortem --html"),
                     ("C", "labkit postmortem --json")):
        if k in rows[0][1]:
            ax_t.plot(n, [statistics.median(w for w, _ in g[k]) for _, g in rows], "o-",
                      label=label)
            ax_m.plot(n, [max(m for _, m in g[k]) / 1e6 for _, g in rows], "o-", label=label)
    ax_t.set(xlabel="allocation records (millions)", ylabel="wall time (s, median)",
             title="Time")
    ax_m.set(xlabel="allocation records (millions)", ylabel="peak RSS (MB, largest process)",
             title="Peak RSS")
    ax_m.set_ylim(bottom=0)
    ax_t.set_ylim(bottom=0)
    ax_t.legend(fontsize=8)
    fig.suptitle(f"labkit postmortem against memray's commands ({load_average()} at the end)",
                 fontsize=9)
    fig.tight_layout()
    tmp = out.with_name(out.name + ".tmp.png")
    fig.savefig(tmp, dpi=100)
    tmp.replace(out)
    print(f"wrote {out}")


def table(rows: list[tuple[int, dict[str, list[tuple[float, int]]]]]) -> None:
    """The curve so far as a Markdown table, with the load average."""
    med = statistics.median
    print("\n| records | memray s | memray peak RSS | labkit s | labkit peak RSS | time "
          "ratio | RSS ratio |\n|---|---|---|---|---|---|---|")
    for n, got in rows:
        for k in ("B", "C"):
            if k in got:
                a, b = (med(w for w, _ in got[x]) for x in ("A", k))
                ra, rb = (max(r for _, r in got[x]) for x in ("A", k))
                ratio = med(w / x for (w, _), (x, _) in zip(got[k], got["A"], strict=True))
                print(f"| {n / 1e6:.1f}M{' (html)' if k == 'B' else ''} | {a:.1f} s | "
                      f"{ra / 1e6:.0f} MB | {b:.1f} s | {rb / 1e6:.0f} MB | {ratio:.2f}x | "
                      f"{rb / ra:.2f}x |")
    print(load_average(), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", default="3", help="rounds; with --sizes, one per size too")
    ap.add_argument("--objects", type=int, default=5_000_000)
    ap.add_argument("--sizes", help="comma-separated numbers of objects: the size curve")
    ap.add_argument("--html", action="store_true", help="with --sizes: time --html too")
    ap.add_argument("--captures", type=Path, help="keep (and reuse) the captures here")
    ap.add_argument("--chart", type=Path, help="with --sizes: write the curve as a PNG")
    args = ap.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="labkit-bench-pm-") as tmp:
        folder = args.captures or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if not args.sizes:
            cap, _ = capture(py, folder, args.objects)
            compare(py, cap, tmp, int(args.pairs), "BC")
            return 0
        rows = []
        sizes = [int(float(x)) for x in args.sizes.split(",")]
        pairs = [int(x) for x in args.pairs.split(",")]
        for objects, n_pairs in zip(sizes, pairs + pairs[-1:] * len(sizes), strict=False):
            cap, n = capture(py, folder, objects)
            rows.append((n, compare(py, cap, tmp, n_pairs, "BC" if args.html else "C")))
            table(rows)  # after each size: a long curve stopped early keeps what it measured
            if args.chart:
                chart(rows, args.chart)
    return 0


if __name__ == "__main__":
    sys.exit(main())
