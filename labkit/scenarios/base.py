"""What every scenario module shares: its spec, argument parsing, metrics, signatures.

A scenario module is a runnable program (``python -m labkit.scenarios.NAME --variant V
--params JSON``) that imports only the standard library, because it runs inside the traced
interpreter. It writes its own figures (requests served, bytes retained, tasks alive, ...) as
JSON lines to the file named by ``LABKIT_METRICS``, which the runner reserves in the run
directory. Its ``signature(runs)`` reads the captures back through ``labkit.load`` objects.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

METRICS_ENV = "LABKIT_METRICS"
BASELINE_S = 0.25  # >= 4 process samples at the runner's 0.05 s interval


@dataclass(frozen=True)
class Param:
    """A scenario parameter: its default, its ``--quick`` value, and what it means."""

    default: Any
    quick: Any
    help: str


@dataclass(frozen=True)
class ScenarioSpec:
    """Everything the runner, ``labkit list`` and the notebooks need to know."""

    name: str
    title: str
    incident: str
    shows: str
    variants: tuple[str, ...]
    params: dict[str, Param]
    captures: tuple[str, ...] = ("gc", "proc", "memray")
    memory_cap_mb: int = 1024
    time_cap_s: float = 120.0
    quick_time_cap_s: float = 30.0
    variant_help: dict[str, str] = field(default_factory=dict)
    settings: bool = False  # variants are GC settings rather than leaky/fixed
    dump_on_hold: bool = False  # take a py-spy dump of every thread at the hold

    def values(self, quick: bool, overrides: dict[str, str] | None = None) -> dict[str, Any]:
        """Parameter values: defaults (or the quick preset) with ``k=v`` overrides applied."""
        vals = {k: (p.quick if quick else p.default) for k, p in self.params.items()}
        for k, raw in (overrides or {}).items():
            if k not in self.params:
                known = ", ".join(self.params)
                raise KeyError(f"unknown parameter {k!r} for {self.name}; known: {known}")
            kind = type(self.params[k].default)
            vals[k] = raw if kind is str else (raw.lower() in ("1", "true", "yes")
                                               if kind is bool else kind(raw))
        return vals


@dataclass
class SignatureRow:
    """One measured figure per variant, the expectation, and whether it held."""

    metric: str
    values: dict[str, float]
    expect: str
    ok: bool
    lesson: bool = False  # the row that carries the scenario's lesson (an index card's lead)


@dataclass
class Signature:
    """The measured signature that tells the variants apart."""

    scenario: str
    rows: list[SignatureRow]
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        """All rows held."""
        return all(r.ok for r in self.rows)

    def row(self, metric: str) -> SignatureRow:
        """The row whose metric starts with ``metric`` (a KeyError naming the metrics
        otherwise), so a notebook reads what the scenario measured instead of
        recomputing it."""
        for r in self.rows:
            if r.metric.startswith(metric):
                return r
        raise KeyError(f"no metric {metric!r} in {self.scenario}'s signature; metrics: "
                       + "; ".join(r.metric for r in self.rows))

    def value(self, metric: str, variant: str) -> float:
        """One measured figure: ``sig.value("retained bytes at end", "leaky")``."""
        return self.row(metric).values[variant]

    def lesson(self) -> SignatureRow | None:
        """The row that carries the lesson: the first row flagged ``lesson``, else the first."""
        return next((r for r in self.rows if r.lesson), self.rows[0] if self.rows else None)

    def summary(self) -> dict[str, Any]:
        """What a report index shows: whether it held, how many rows, the headline row
        (:meth:`lesson`, whether it held in ``ok``)."""
        head = self.lesson()
        return {"scenario": self.scenario, "ok": self.ok, "rows": len(self.rows),
                "held": sum(r.ok for r in self.rows),
                "failed": [r.metric for r in self.rows if not r.ok],
                "headline": None if head is None else {
                    "metric": head.metric, "expect": head.expect, "ok": head.ok,
                    "values": [[k, v if isinstance(v, (int, float)) and math.isfinite(v)
                                else None] for k, v in head.values.items()]}}



def parse(spec: ScenarioSpec, argv: Sequence[str] | None = None) -> tuple[str, dict[str, Any]]:
    """Child side: ``--variant V --params JSON`` (or ``--quick``) -> (variant, params)."""
    ap = argparse.ArgumentParser(prog=f"python -m labkit.scenarios.{spec.name}")
    ap.add_argument("--variant", choices=spec.variants, required=True)
    ap.add_argument("--params", default="{}", help="JSON object of parameter values")
    ap.add_argument("--quick", action="store_true", help="use the quick preset")
    args = ap.parse_args(argv)
    vals = spec.values(args.quick)
    vals.update(json.loads(args.params))
    return args.variant, vals


def run_main(spec: ScenarioSpec, argv: Sequence[str] | None,
             work: Callable[[str, dict[str, Any], Metrics], None]) -> None:
    """A scenario program's ``main``: parse its arguments, then ``work(variant, params,
    metrics)``, closing the metrics file however it ends."""
    variant, params = parse(spec, argv)
    metrics = Metrics()
    try:
        work(variant, params, metrics)
    except KeyboardInterrupt:  # Ctrl-C stops a scenario as a CLI tool stops: no traceback
        raise SystemExit(130) from None
    finally:
        metrics.close()


class Metrics:
    """Child side: append JSON lines ``{"t_ns": ..., ...}`` to ``$LABKIT_METRICS`` (if set)."""

    def __init__(self) -> None:
        path = os.environ.pop(METRICS_ENV, None)  # not inherited by the program's children
        self._fh: TextIO | None = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115

    def emit(self, **fields: Any) -> None:
        """Write one line, flushed, stamped with ``time.perf_counter_ns()``."""
        if self._fh is not None:
            self._fh.write(json.dumps({"t_ns": time.perf_counter_ns(), **fields}) + "\n")
            self._fh.flush()

    def baseline(self, seconds: float = BASELINE_S) -> None:
        """Announce that setup is done, wait so that outside samplers record the steady state
        the work's growth is measured from, then announce that the work starts."""
        self.emit(event="baseline")
        time.sleep(seconds)
        self.emit(event="work")

    def hold(self, seconds: float) -> None:
        """Announce a steady state (the runner may take a py-spy dump) and keep it a while."""
        self.emit(event="hold")
        time.sleep(seconds)

    def close(self) -> None:
        """Flush and close."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def row(metric: str, values: dict[str, float], expect: str,
        check: Callable[[dict[str, float]], bool], *, lesson: bool = False) -> SignatureRow:
    """Build a row; ``check`` sees the values by variant; ``lesson``: the row that carries
    the scenario's lesson (:meth:`Signature.lesson`)."""
    try:
        ok = bool(check(values))
    except (KeyError, ZeroDivisionError, TypeError, ValueError):
        ok = False
    return SignatureRow(metric, values, expect, ok, lesson)
