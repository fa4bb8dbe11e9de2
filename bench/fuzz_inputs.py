"""Fuzz labkit's readers with mutated manifests and capture files.

Each case copies a recorded run (from datasets/), mutates one file — bit flips, a
truncation, or a JSON value swapped for a hostile one (huge or negative ints, floats,
lists where objects go, strings with newlines and escapes, deep nesting) — and, when the
mutated file is a capture, re-signs the manifest (size and sha256) so the mutation reaches
the parser rather than the checksum check. Then every verb runs in-process on it:
``summary``, ``postmortem``, ``export`` (pprof and Parquet) and ``fleet``. A verb must
succeed or raise a one-line :class:`LabkitError`; anything else is a crash, printed with
its case (seed and mutation) so it can be replayed. A sample of cases also runs the real
CLI in a subprocess: exit 0, or exit 2 with one ``labkit:`` line and no traceback.

Cases run in worker processes (a batch each), so a reader that kills its process (a
native crash in a C++ reader) counts as a crash of that case instead of ending the run.

    .venv/bin/python bench/fuzz_inputs.py [--cases 1000] [--seed 1] [--cli-every 25]

Prints counts: cases, verb calls, one-line errors, successes, crashes (tracebacks).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ["gateway-load/leaky", "fleet/pod-01/fixed", "thread-leak/leaky", "fd-leak/leaky"]
HOSTILE = [10**30, -(10**30), 2**63, 2**64, -1, 1e308, -1e308, 1.5, 0, True, None, [], {},
           [1, 2, 3], {"a": [1, {"b": 2}]}, "", "x\ny", "\x1b[2J\x1b]0;pwned\x07", "\u202e",
           "a" * 5000, "[]", 10**300]
VERBS = ("summary", "postmortem", "export-pprof", "export-parquet", "fleet")


DEEP = "__labkit_fuzz_deep__"  # replaced by a deeply nested list in the JSON text


def _paths(doc: object, at: tuple = ()) -> list[tuple]:
    """Every path to a value inside ``doc`` (bounded: the first 400)."""
    out = [at]
    if isinstance(doc, dict):
        items = list(doc.items())
    elif isinstance(doc, list):
        items = list(enumerate(doc))
    else:
        return out
    for k, v in items[:50]:
        out += _paths(v, (*at, k))
        if len(out) > 400:
            break
    return out


def _set(doc: object, at: tuple, value: object) -> object:
    if not at:
        return value
    parent = doc
    for k in at[:-1]:
        parent = parent[k]
    parent[at[-1]] = value
    return doc


def mutate(data: bytes, name: str, rng: random.Random) -> tuple[bytes, str]:
    """One mutation of a file's bytes; returns the bytes and what was done."""
    kinds = ["flip", "truncate"]
    if name.endswith(".json"):
        kinds += ["value"] * 4
    kind = rng.choice(kinds)
    if kind == "flip" and data:
        buf = bytearray(data)
        n = rng.choice([1, 1, 2, 8, 64])
        for _ in range(n):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        return bytes(buf), f"flip {n} bits"
    if kind == "truncate" and data:
        cut = rng.randrange(len(data))
        return data[:cut], f"truncate at {cut}"
    try:
        doc = json.loads(data)
    except ValueError:
        return data[: len(data) // 2], "truncate (not JSON)"
    at = rng.choice(_paths(doc))
    value = DEEP if rng.random() < 0.05 else rng.choice(HOSTILE)
    text = json.dumps(_set(doc, at, value))
    if value == DEEP:
        n = rng.choice([100, 5000, 100_000])
        text = text.replace(f'"{DEEP}"', "[" * n + "0" + "]" * n)
        value = f"lists nested {n} deep"
    return text.encode(), f"set {list(at)} to {str(value)[:40]!r}"


def resign(run: Path, name: str) -> None:
    """Update the manifest's size and sha256 of ``name`` to the file as it is now."""
    mpath = run / "manifest.json"
    m = json.loads(mpath.read_text())
    data = (run / name).read_bytes()
    for art in m.get("artifacts", []):
        if art.get("name") == name:
            art["bytes"], art["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    mpath.write_text(json.dumps(m, indent=1))


def make_case(i: int, seed: int, tmp: Path) -> tuple[Path, str]:
    """Case ``i``: a mutated copy of a recorded run; returns it and a description."""
    rng = random.Random(f"{seed}-{i}")
    src = ROOT / "datasets" / rng.choice(SEEDS)
    run = tmp / f"case-{i}" / "run"
    shutil.rmtree(run.parent, ignore_errors=True)  # a worker that died left it
    shutil.copytree(src, run)
    files = sorted(p.name for p in run.iterdir())
    name = "manifest.json" if rng.random() < 0.3 else rng.choice(files)
    data, how = mutate((run / name).read_bytes(), name, rng)
    (run / name).write_bytes(data)
    if name != "manifest.json":
        resign(run, name)
    return run, f"case {i} (seed {seed}): {src.relative_to(ROOT)}/{name}: {how}"


def verbs_for(run: Path) -> tuple[str, ...]:
    """The verbs to try on ``run``: ``fleet`` only on runs with a memray capture (a fleet of
    runs without one fails before reading anything, a known defect of fleetdb.py)."""
    return VERBS if (run / "memray.bin").exists() else VERBS[:-1]


def run_verb(verb: str, run: Path, out: Path) -> None:
    """One verb in-process, its terminal lines rendered as ``say`` would print them."""
    from labkit.cli.output import printable

    if verb == "summary":
        from labkit.frames import load
        from labkit.report.text import run_summary_lines

        lines = run_summary_lines(load(run))
    elif verb == "postmortem":
        from labkit.analysis.findings import findings
        from labkit.frames.evidence import load_evidence
        from labkit.report.text import findings_lines

        lines = findings_lines(findings(load_evidence(run=run)))
    elif verb.startswith("export"):
        from labkit.frames import load

        r = load(run, background_stats=False)
        if verb == "export-pprof":
            from labkit.export.pprof import export_pprof

            lines = [str(p) for p in export_pprof(r, out / "pprof")]
        else:
            from labkit.export.parquet import export_parquet

            lines = [str(p) for p in export_parquet(r, out / "parquet")]
    else:
        from labkit.fleetdb import fleet
        from labkit.report.text import fleet_lines

        lines = fleet_lines(fleet([run], store=out / "store"))
    for line in lines:
        printable(line)


def worker(first: int, last: int, seed: int, tmp: Path) -> None:
    """Run cases ``first..last-1``; one JSON line per verb outcome on stdout."""
    import logging

    from labkit.errors import LabkitError

    logging.disable(logging.CRITICAL)
    os.environ["XDG_CACHE_HOME"] = str(tmp / "cache")
    for i in range(first, last):
        run, what = make_case(i, seed, tmp)
        print(json.dumps({"start": i, "what": what}), flush=True)
        for verb in verbs_for(run):
            out = run.parent / f"out-{verb}"
            rec = {"case": i, "verb": verb}
            try:
                with contextlib.redirect_stderr(io.StringIO()):
                    run_verb(verb, run, out)
                rec["ok"] = True
            except LabkitError as exc:
                rec["error"] = str(exc)
                if "\n" in str(exc):
                    rec["crash"] = "a LabkitError of several lines"
            except BaseException as exc:  # the fuzzer records every escape
                rec["crash"] = "".join(traceback.format_exception(exc))[-1500:]
            print(json.dumps(rec), flush=True)
        shutil.rmtree(run.parent, ignore_errors=True)


def cli_case(run: Path, verb: str) -> str | None:
    """The real CLI on ``run``: None if it exits 0 or with one clean line, else the fault."""
    args = {"summary": ["summary", str(run)],
            "postmortem": ["postmortem", str(run)],
            "export-pprof": ["export", str(run), "--to", "pprof", "--out",
                             str(run.parent / "cli-pprof")],
            "export-parquet": ["export", str(run), "--to", "parquet", "--out",
                               str(run.parent / "cli-parquet")],
            "fleet": ["fleet", str(run), "--store", str(run.parent / "cli-store")]}[verb]
    cp = subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True,
                        text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = [ln for ln in cp.stderr.splitlines() if ln.strip()]
    if cp.returncode == 0 and "Traceback" not in cp.stderr:
        return None
    if cp.returncode == 2 and len(lines) == 1 and lines[0].startswith("labkit: "):
        return None
    return f"exit {cp.returncode}: {cp.stderr[-800:]}"


def fuzz(cases: int, seed: int, batch: int = 50, cli_every: int = 0,
         log: io.TextIOBase | None = None) -> dict[str, int]:
    """Run ``cases`` cases; returns the counts (and prints each crash to ``log``)."""
    counts = {"cases": 0, "verb calls": 0, "one-line errors": 0, "successes": 0,
              "crashes": 0, "cli runs": 0, "cli faults": 0}
    log = log or sys.stdout
    with tempfile.TemporaryDirectory(prefix="labkit-fuzz-") as tmp_s:
        tmp = Path(tmp_s)
        i = 0
        while i < cases:
            last = min(cases, i + batch)
            proc = subprocess.run(
                [sys.executable, __file__, "--worker", str(i), str(last), str(seed), tmp_s],
                capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                timeout=3600)
            started, what = None, ""
            for line in proc.stdout.splitlines():
                rec = json.loads(line)
                if "start" in rec:
                    started, what = rec["start"], rec["what"]
                    counts["cases"] += 1
                    continue
                counts["verb calls"] += 1
                if "crash" in rec:
                    counts["crashes"] += 1
                    print(f"CRASH {what} [{rec['verb']}]\n{rec['crash']}", file=log)
                elif "error" in rec:
                    counts["one-line errors"] += 1
                else:
                    counts["successes"] += 1
            if proc.returncode != 0:  # the worker died in case `started`
                counts["crashes"] += 1
                print(f"CRASH {what}: the worker died (exit {proc.returncode}): "
                      f"{proc.stderr[-800:]}", file=log)
                last = (started if started is not None else i) + 1
            i = last
        if cli_every:
            rng = random.Random(seed)
            for j in range(0, cases, cli_every):
                run, what = make_case(j, seed, tmp / "cli")
                verb = rng.choice(verbs_for(run))
                fault = cli_case(run, verb)
                counts["cli runs"] += 1
                if fault:
                    counts["cli faults"] += 1
                    print(f"CLI FAULT {what} [{verb}]: {fault}", file=log)
                shutil.rmtree(run.parent, ignore_errors=True)
    return counts


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        first, last, seed, tmp = sys.argv[2:6]
        worker(int(first), int(last), int(seed), Path(tmp))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--cli-every", type=int, default=25,
                    help="also run the real CLI on every Nth case (0: never)")
    args = ap.parse_args()
    counts = fuzz(args.cases, args.seed, args.batch, args.cli_every)
    print(", ".join(f"{v} {k}" for k, v in counts.items()))
    sys.exit(1 if counts["crashes"] or counts["cli faults"] else 0)


if __name__ == "__main__":
    main()
