"""Loading a large py-spy speedscope profile: time and peak RSS of ``load_speedscope``.

Writes (once, streaming) a speedscope file of about ``--mb`` megabytes shaped like py-spy's
output: a few threads, ~600 frames, stacks 8 to 40 deep, one weight per sample. Then loads
it ``--runs`` times, each in a fresh process (samples and functions frames, as ``labkit
summary`` does), and prints each run's wall time and peak RSS (``wait4``).

    .venv/bin/python bench/load_speedscope.py [--mb 200] [--runs 3] [--labkit DIR]

``--labkit DIR`` loads labkit from DIR (another checkout), to measure a before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path

from timing import timed  # bench/timing.py (scripts run from bench/)

LOAD = ("import sys; from labkit.frames.pyspy import load_speedscope; "
        "s, f = load_speedscope(sys.argv[1]); print(len(s), len(f), int(s['count'].sum()))")


def write_speedscope(path: Path, target_bytes: int, seed: int = 7) -> None:
    """A py-spy-like speedscope file of about ``target_bytes``, written without holding it."""
    rng = random.Random(seed)
    frames = [{"name": f"fn_{i}", "file": f"/app/pkg/mod_{i % 40}.py", "line": 1 + i % 300}
              for i in range(600)]
    bases = [[rng.randrange(600) for _ in range(rng.randrange(8, 41))] for _ in range(400)]
    threads = 4
    per_thread = target_bytes // threads
    with path.open("w") as fh:
        fh.write('{"$schema":"https://www.speedscope.app/file-format-schema.json","profiles":[')
        for t in range(threads):
            fh.write(("," if t else "") + json.dumps(
                {"type": "sampled", "name": f'Thread {1000 + t} "worker-{t}"', "unit": "seconds",
                 "startValue": 0.0, "endValue": 1.0})[:-1] + ',"samples":[')
            written, n = 0, 0
            while written < per_thread * 0.9:
                stack = bases[rng.randrange(len(bases))]
                text = ("," if n else "") + json.dumps(stack[: rng.randrange(4, len(stack) + 1)],
                                                       separators=(",", ":"))
                fh.write(text)
                written += len(text) + 5
                n += 1
            fh.write('],"weights":[' + ",".join(["0.01"] * n) + "]}")
        fh.write('],"shared":{"frames":' + json.dumps(frames) + '},"activeProfileIndex":0,'
                 '"exporter":"py-spy@0.4.0","name":"bench"}')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--labkit", type=Path, default=Path(__file__).resolve().parents[1])
    ap.add_argument("--file", type=Path, help="reuse (or keep) the generated file here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="labkit-bench-") as tmp:
        path = args.file or Path(tmp) / "big.speedscope.json"
        if not path.exists():
            write_speedscope(path, args.mb << 20)
        size = path.stat().st_size
        env_path = str(args.labkit.resolve())
        os.environ["PYTHONPATH"] = env_path
        walls, rss = [], []
        for i in range(args.runs):
            wall, peak = timed([sys.executable, "-c", LOAD, str(path)])
            walls.append(wall)
            rss.append(peak)
            print(f"run {i + 1}: {wall:.1f} s, peak RSS {peak / 2**20:.0f} MiB", flush=True)
        print(f"{size / 2**20:.0f} MiB file, labkit from {env_path}: median "
              f"{statistics.median(walls):.1f} s, peak RSS {max(rss) / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
