"""Public leak reproductions (bench/incidents/*), each captured from its own venv.

For every case and for both of its releases (the leaky one and the one that fixed it)
this installs the package into a venv of its own under the cache (never the project's),
runs ``labkit capture`` on the case's ``app.py`` with that venv's interpreter, then
``labkit postmortem --json``, and prints:

- named: the rank of the first suspect that names the library culprit (the function the
  fix changed, or its file) in its ``library`` entry/site or its own function/file;
  ``N (.so)`` when it names only the compiled module the culprit is in, not a function;
- in stack: the rank of the first suspect whose text (stack included) mentions it;
- user: the rank of the suspect at the program's own call site (``user_entry``);
- growth: the growth symptoms found; for the fixed release, "none" is the goal.

    .venv/bin/python bench/real_incidents.py                      # all cases
    .venv/bin/python bench/real_incidents.py --cases babel-pattern-cache,ujson-dump-write-error
    .venv/bin/python bench/real_incidents.py --install-memray     # memray put into each venv

By default nothing of labkit is installed in the case venvs; ``--install-memray`` adds
labkit's memray release there (for a labkit that cannot yet lend its own memray).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CASES = ROOT / "bench" / "incidents"
TOP = 3
GROWTH_WORDS = ("growth", "keeps growing", "native memory")


@dataclass
class Case:
    """One reproduction: ``bench/incidents/NAME/case.json`` and its ``app.py``."""

    name: str
    package: str
    leaky: str
    fixed: str
    kind: str
    issue: str
    fix: str
    culprit: dict[str, str]
    user_entry: dict[str, str]
    requires: dict[str, list[str]] = field(default_factory=dict)

    @property
    def app(self) -> Path:
        return CASES / self.name / "app.py"

    def version(self, release: str) -> str:
        return self.leaky if release == "leaky" else self.fixed


def load_cases(names: list[str] | None = None) -> list[Case]:
    """The cases under bench/incidents, all or those ``names`` (in that order)."""
    found = {p.parent.name: p for p in sorted(CASES.glob("*/case.json"))}
    unknown = [n for n in names or [] if n not in found]
    if unknown:
        raise SystemExit(f"real_incidents: no case {', '.join(unknown)} "
                         f"(cases: {', '.join(found)})")
    return [Case(**json.loads(found[n].read_text())) for n in names or found]


def cache_dir() -> Path:
    """Where the case venvs live: $LABKIT_INCIDENTS_CACHE, else .bench-venvs in the repo."""
    return Path(os.environ.get("LABKIT_INCIDENTS_CACHE") or ROOT / ".bench-venvs")


def _uv() -> str | None:
    here = Path(sys.executable).parent / "uv"
    return str(here) if here.exists() else shutil.which("uv")


def _memray_pin() -> str:
    from importlib.metadata import version
    return f"memray=={version('memray')}"


def venv_for(case: Case, release: str, install_memray: bool = False,
             cache: Path | None = None) -> Path:
    """A venv (cached) with the case's package at that release, on labkit's own Python
    (same minor version); memray as well only when asked. Returns its interpreter."""
    tag = f"py{sys.version_info[0]}{sys.version_info[1]}" + ("-memray" if install_memray else "")
    venv = (cache or cache_dir()) / f"{case.name}-{release}-{case.version(release)}-{tag}"
    py = venv / "bin" / "python"
    stamp = venv / ".labkit-incident-ready"
    if stamp.exists():
        return py
    if venv.exists():
        shutil.rmtree(venv)
    pins = [f"{case.package}=={case.version(release)}", *case.requires.get(release, [])]
    if install_memray:
        pins.append(_memray_pin())
    uv = _uv()
    if uv:
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
        subprocess.run([uv, "pip", "install", "-q", "--python", str(py), *pins], check=True)
    else:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *pins], check=True)
    stamp.write_text(" ".join(pins) + "\n")
    return py


def labkit(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The real CLI, from the project's environment."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    return subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def capture(case: Case, python: Path, out: Path) -> dict[str, Any]:
    """Capture ``app.py`` under ``python`` into the run ``out``; postmortem it; return the
    findings JSON (``{"error": ...}`` when a step failed)."""
    args = ["capture", "--out", str(out), "--time-cap", "180", "--memory-cap", "3072"]
    if case.kind == "native":
        args.append("--native")
    cp = labkit(*args, "--", str(python), str(case.app))
    if cp.returncode != 0:
        return {"error": f"capture exit {cp.returncode}: {cp.stderr.strip()[-300:]}"}
    report = out.with_name(out.name + ".findings.json")  # labkit never writes into a run
    report.unlink(missing_ok=True)
    cp = labkit("postmortem", str(out), "--json", str(report))
    if cp.returncode != 0 or not report.exists():
        return {"error": f"postmortem exit {cp.returncode}: {cp.stderr.strip()[-300:]}"}
    return json.loads(report.read_text())


def _names(where: dict[str, Any] | None, culprit: dict[str, str]) -> bool:
    """Whether a frame {function, file} is the culprit: its file (or the fix's source
    file), or its function inside the culprit's package."""
    if not where:
        return False
    fn = str(where.get("function") or "").rsplit(".", 1)[-1]
    file = str(where.get("file") or "").replace(os.sep, "/")
    if any(f and f in file for f in (culprit["file"], culprit.get("source"))):
        return True
    package = culprit["file"].split("/")[0]
    return fn == culprit["function"] and (not file or package in file)


def _is_module_only(where: dict[str, Any]) -> bool:
    """A frame that is a compiled module's file with no function named in it."""
    file = str(where.get("file") or "")
    return bool(re.search(r"\.so(?:\.\d+)*$|\.pyd$|\.dylib$", file)) and \
        str(where.get("function") or "") in ("", "<unknown>")


def _rank(suspects: list[dict[str, Any]], hit: Any) -> int | None:
    return next((s.get("rank", i) for i, s in enumerate(suspects, 1) if hit(s)), None)


def score(case: Case, report: dict[str, Any]) -> dict[str, Any]:
    """Ranks of the library culprit and of the user's entry; growth symptoms."""
    if "error" in report:
        return {"error": report["error"]}
    suspects = report.get("suspects", [])
    culprit = case.culprit

    def named(s: dict[str, Any]) -> bool:
        lib = s.get("library") or {}
        return (_names(lib.get("entry"), culprit) or _names(lib.get("site"), culprit)
                or _names(s, culprit))

    # stack text reads "module.function (file.py:line)": the function as a frame, the
    # file by its path or (unless it is a package's __init__.py) by its base name
    base = Path(culprit["file"]).name
    patterns = [rf"(?<![\w]){re.escape(culprit['function'])} \(", re.escape(culprit["file"])]
    if base != "__init__.py":
        patterns.append(re.escape(f"({base}:"))
    mention = re.compile("|".join(patterns))

    def in_text(s: dict[str, Any]) -> bool:
        return bool(mention.search(json.dumps(s)))

    def user(s: dict[str, Any]) -> bool:
        return (s.get("function", "").rsplit(".", 1)[-1] == case.user_entry["function"]
                and Path(s.get("file", "")).name == case.user_entry["file"])

    growth = [f"{s['kind']}: {s['what']}" for s in report.get("symptoms", [])
              if any(w in f"{s['kind']} {s['what']}" for w in GROWTH_WORDS)]
    def by_module_only(s: dict[str, Any]) -> bool:
        """Named, but by a compiled module's file and no function of it (a stripped
        module whose frames memray shows as <unknown>)."""
        lib = s.get("library") or {}
        wheres = [w for w in (lib.get("entry"), lib.get("site"), s) if _names(w, culprit)]
        return all(_is_module_only(w) for w in wheres)

    first = next((s for s in suspects if named(s)), None)
    return {"named": _rank(suspects, named),
            "named_by": None if first is None else "so" if by_module_only(first) else "code",
            "in_stack": _rank(suspects, in_text),
            "user": _rank(suspects, user), "growth": growth,
            "verdict": report.get("verdict", "")}


def run_case(case: Case, release: str, runs: Path, install_memray: bool = False,
             cache: Path | None = None, rescore: bool = False) -> dict[str, Any]:
    """Build the venv, capture, postmortem and score one case at one release; with
    ``rescore``, score the findings an earlier run left in ``runs`` instead."""
    out = runs / f"{case.name}-{release}"
    t0 = time.monotonic()
    if rescore:
        found = out.with_name(out.name + ".findings.json")
        report = (json.loads(found.read_text()) if found.exists()
                  else {"error": f"no {found.name} in {runs}"})
        return {"case": case.name, "kind": case.kind, "release": release,
                "version": case.version(release), "seconds": 0.0, **score(case, report)}
    try:
        python = venv_for(case, release, install_memray, cache)
        if out.exists():
            shutil.rmtree(out)
        result = score(case, capture(case, python, out))
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        result = {"error": f"{' '.join(map(str, e.cmd[:3]))}...: {type(e).__name__}"}
    return {"case": case.name, "kind": case.kind, "release": release,
            "version": case.version(release), "seconds": round(time.monotonic() - t0, 1),
            **result}


def _fmt_rank(r: int | None, by: str | None = None) -> str:
    return "-" if r is None else f"{r} (.so)" if by == "so" else str(r)


def table(rows: list[dict[str, Any]]) -> str:
    """The results as a Markdown table."""
    head = ("| case | kind | release | named | in stack | user | growth symptom | s |\n"
            "|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['case']} | {r['kind']} | {r['release']} {r['version']} | "
                         f"error: {r['error'][:120]} | | | | {r['seconds']} |")
            continue
        growth = "; ".join(r["growth"]) or "none"
        lines.append(f"| {r['case']} | {r['kind']} | {r['release']} {r['version']} | "
                     f"{_fmt_rank(r['named'], r.get('named_by'))} | "
                     f"{_fmt_rank(r['in_stack'])} | "
                     f"{_fmt_rank(r['user'])} | {growth[:90]} | {r['seconds']} |")
    return "\n".join(lines)


def summary(rows: list[dict[str, Any]]) -> str:
    """Culprit named in the top three (leaky) and fixed releases with no growth symptom."""
    leaky = [r for r in rows if r["release"] == "leaky"]
    fixed = [r for r in rows if r["release"] == "fixed"]
    named = sum(1 for r in leaky if (r.get("named") or 99) <= TOP)
    stack = sum(1 for r in leaky if (r.get("in_stack") or 99) <= TOP)
    quiet = sum(1 for r in fixed if "error" not in r and not r["growth"])
    return (f"leaky: culprit named in the top {TOP}: {named}/{len(leaky)}; "
            f"mentioned in a top-{TOP} suspect's stack: {stack}/{len(leaky)}. "
            f"fixed: no growth symptom: {quiet}/{len(fixed)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", help="comma-separated case names (default: all)")
    ap.add_argument("--releases", default="leaky,fixed", help="leaky, fixed or both")
    ap.add_argument("--install-memray", action="store_true",
                    help="install labkit's memray into each case venv (off: nothing of "
                         "labkit is installed there)")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "real-incidents",
                    help="where the captures go (replaced per case)")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON here")
    ap.add_argument("--rescore", action="store_true",
                    help="no capture: score the findings already in --runs")
    a = ap.parse_args(argv)
    cases = load_cases(a.cases.split(",") if a.cases else None)
    a.runs.mkdir(parents=True, exist_ok=True)
    rows = []
    for case in cases:
        for release in a.releases.split(","):
            row = run_case(case, release, a.runs, a.install_memray, rescore=a.rescore)
            print(json.dumps(row), flush=True)
            rows.append(row)
    print()
    print("rescored from the findings in --runs" if a.rescore else
          f"memray in the case venvs: {'installed' if a.install_memray else 'no'}")
    print(table(rows))
    print(summary(rows))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
