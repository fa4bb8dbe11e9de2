"""Run scenarios under capture, and measure their signatures.

One run directory per variant (or GC setting), under ``OUT/<variant>``. The scenario's own
figures land in ``scenario.jsonl`` in the run; when a scenario announces a steady state and
py-spy is among the captures, a ``py-spy dump`` of every thread is taken then.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labkit.artifacts import METRICS, PYSPY_DUMP
from labkit.capture.session import CaptureOptions, RunResult, run_program
from labkit.capture.target import labkit_package
from labkit.errors import UsageError
from labkit.progress import progress
from labkit.rundir import RunWriter, default_run_path
from labkit.scenarios import get_module, get_spec
from labkit.scenarios.base import METRICS_ENV, Signature

CAPTURES = ("gc", "memray", "pyspy", "proc")


class HoldDump:
    """Takes one ``py-spy dump`` when the scenario writes its ``hold`` event."""

    def __init__(self, pid: int, writer: RunWriter) -> None:
        self.pid = pid
        self.metrics = writer.path / METRICS.name
        self.out = writer.file(PYSPY_DUMP)
        self.manifest_extra: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="labkit-holddump", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from labkit.capture import pyspy
        from labkit.errors import LabkitError

        while not self._stop.wait(0.05):
            with contextlib.suppress(FileNotFoundError):
                if '"event": "hold"' in self.metrics.read_text():
                    try:
                        self.out.write_text(pyspy.dump(self.pid, retries=2))
                    except LabkitError as exc:
                        self.manifest_extra = {"pyspy_dump_error": str(exc)}
                    return

    def stop(self) -> None:
        """Stop waiting (the program has ended)."""
        self._stop.set()
        self._thread.join(timeout=60)


def parse_captures(text: str | None, default: Sequence[str]) -> tuple[str, ...]:
    """``gc,memray`` -> ``("gc", "memray")``, checked against the known backends."""
    if text is None:
        return tuple(default)
    chosen = tuple(c.strip() for c in text.split(",") if c.strip())
    bad = [c for c in chosen if c not in CAPTURES]
    if bad:
        raise UsageError(f"unknown capture {bad[0]!r}; choose from {', '.join(CAPTURES)}")
    return chosen


def phase_name(spec: Any, variant: str, params: dict[str, str] | None) -> str:
    """What a progress line says of one run: ``running leaky``; with parameters set, the
    settings it really runs (``running a custom setting: thresholds=5,10,10, freeze=1``
    for a scenario whose variants are settings), never just the variant's name."""
    if not params:
        return f"running {variant}"
    given = ", ".join(f"{k}={v}" for k, v in params.items())
    return f"running a custom setting: {given}" if spec.settings else \
        f"running {variant} with {given}"


def run_scenario(
    name: str,
    *,
    variants: Sequence[str] | None = None,
    captures: Sequence[str] | None = None,
    params: dict[str, str] | None = None,
    quick: bool = False,
    out: Path | None = None,
    python: str | None = None,
    argv: Sequence[str] | None = None,
    memory_cap_mb: int | None = None,
    time_cap_s: float | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, RunResult]:
    """Run ``variants`` (default: all) of scenario ``name``; one run directory each.

    The caps default to the scenario's own (its quick time cap with ``quick``)."""
    spec = get_spec(name)
    for v in variants or ():
        if v not in spec.variants:
            from labkit.errors import UnknownScenarioError

            raise UnknownScenarioError(
                f"{name} has no variant {v!r}; choose from {', '.join(spec.variants)}")
    try:
        values = spec.values(quick, params)
    except (KeyError, ValueError) as exc:
        raise UsageError(str(exc).strip("\"'")) from None
    chosen = tuple(captures if captures is not None else spec.captures)
    python = python or sys.executable
    root = Path(out) if out else default_run_path(name)
    results = {}
    chosen_variants = list(variants or spec.variants)
    with progress(len(chosen_variants), name) as bar:
        for variant in chosen_variants:
            bar.step(phase_name(spec, variant, params))
            results[variant] = _run_variant(name, spec, variant, values, chosen, python,
                                            root, argv, quick, memory_cap_mb, time_cap_s,
                                            labels)
            if results[variant].signals_received:  # the user stopped labkit: no more variants
                break
    return results


def _run_variant(name: str, spec: Any, variant: str, values: dict[str, Any],
                 chosen: tuple[str, ...], python: str, root: Path, argv: Sequence[str] | None,
                 quick: bool, memory_cap_mb: int | None,
                 time_cap_s: float | None, labels: dict[str, str] | None = None) -> RunResult:
    """One variant under capture (see :func:`run_scenario`)."""
    opts = CaptureOptions(
        gc="gc" in chosen, memray="memray" in chosen, pyspy="pyspy" in chosen,
        proc="proc" in chosen, proc_interval_s=0.05, quiet=True,
        memory_cap_bytes=(memory_cap_mb or spec.memory_cap_mb) * 1024 * 1024,
        time_cap_s=time_cap_s or (spec.quick_time_cap_s if quick else spec.time_cap_s),
        labels=labels)
    cmd = [python, "-m", f"labkit.scenarios.{get_module(name).__name__.rsplit('.', 1)[1]}",
           "--variant", variant, "--params", json.dumps(values)]
    backends = [HoldDump] if ("pyspy" in chosen or spec.dump_on_hold) else []
    return run_program(
        cmd, out=root / variant, options=opts, kind="scenario",
        argv=list(argv or ["labkit", "run", name]), metrics_env=METRICS_ENV,
        backends=backends, lend=() if python == sys.executable else (labkit_package(),),
        params={"scenario": name, "variant": variant, "quick": quick, "values": values,
                "captures": list(chosen)})


def signature(name: str, runs: dict[str, Path]) -> Signature:
    """Measure scenario ``name``'s signature from one run directory per variant."""
    from labkit.frames import load

    return get_module(name).signature({v: load(p) for v, p in runs.items()})


def measure(name: str, *, quick: bool, out: Path, python: str | None = None) -> Signature:
    """Run every variant of ``name`` and measure its signature."""
    t = time.monotonic()
    results = run_scenario(name, quick=quick, out=out / name, python=python)
    sig = signature(name, {v: r.path for v, r in results.items()})
    sig.elapsed_s = time.monotonic() - t
    return sig


def recorded(name: str, root: Path) -> Signature:
    """The signature of ``name`` measured from recorded runs under ``root/<name>/<variant>``."""
    from labkit.errors import InputError

    spec = get_spec(name)
    missing = [v for v in spec.variants if not (Path(root) / name / v).is_dir()]
    if missing:
        raise InputError(f"{Path(root) / name} lacks {', '.join(missing)}; record it with "
                         "`make datasets` or `labkit run NAME --quick --out DIR/NAME`")
    return signature(name, {v: Path(root) / name / v for v in spec.variants})
