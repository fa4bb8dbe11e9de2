"""The trainer's view of the room: every learner's records (:mod:`labkit.analysis.records`)
as tables.

* :attr:`Room.status`: a row per learner and scenario: not run yet, ran (no signature
  yet), reproduced, or did not reproduce with the reason (the signature's failing rows);
* :attr:`Room.checks`: each learner's latest check of each exercise (prediction, measured,
  right or not);
* :attr:`Room.exercises`: per exercise, the spread of the predictions against the measured
  truth: the median of the measurements of the learners whose run reproduced the lesson
  (of every learner's, when none did).

A learner's latest record of a kind wins: a learner who runs again replaces their result.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from labkit.analysis.records import LearnerRecords, learner_dirs, read_room

NOT_RUN, RAN, HELD, FAILED = "not run yet", "ran, no signature yet", "reproduced", \
    "did not reproduce"
UNREADABLE = "records unreadable"


def plain(v: float | None) -> str:
    """``v`` as a plain grouped number with about three significant digits (never an
    exponent); a dash for None."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "\u2013"
    a = abs(v)
    if a >= 1000 or float(v).is_integer():
        return f"{v:,.0f}"
    if a < 0.0005:
        return "0"
    return f"{v:,.{max(0, 2 - math.floor(math.log10(a)))}f}"


def measure(metric: str, v: float | None) -> str:
    """One figure of a signature row: sizes (a ``bytes`` metric that is no ratio ``a / b``,
    from 1 KiB) as KiB/MiB/GiB, shares as percentages, else :func:`plain`."""
    from labkit.units import human_bytes

    if v is None:
        return "\u2013"
    if "bytes" in metric and "/" not in metric and abs(v) >= 1024:
        return human_bytes(v)
    if "share" in metric:
        return f"{100 * v:.1f}%"
    return plain(v)


def failing_reason(rec: dict[str, Any]) -> str:
    """Why a signature record did not hold: each failing row's figures and expectation."""
    parts = []
    for r in rec["rows"]:
        if not r["ok"]:
            vals = ", ".join(f"{k} {measure(r['metric'], v)}" for k, v in r["values"].items())
            parts.append(f"{r['metric']}: {vals} (expected {r['expect']})")
    return "; ".join(parts) or "no row failed, yet the signature did not hold"


@dataclass
class Room:
    """Every learner, their status per scenario, their checks, and the exercises' spread."""

    learners: list[str]
    scenarios: list[str]
    status: pd.DataFrame
    checks: pd.DataFrame
    exercises: pd.DataFrame
    skipped: list[str] = field(default_factory=list)  # one line per learner with skips
    skipped_count: int = 0

    @property
    def not_run(self) -> list[str]:
        """Learners with no run recorded at all (whose records could be read)."""
        ran = set(self.status.loc[self.status.status != NOT_RUN, "learner"])
        return [n for n in self.learners if n not in ran and n not in self.unreadable]

    @property
    def unreadable(self) -> list[str]:
        """Learners whose records folder could not be listed: their state is unknown."""
        return sorted(set(self.status.loc[self.status.status == UNREADABLE, "learner"]))

    @property
    def not_reproduced(self) -> pd.DataFrame:
        """The rows of :attr:`status` whose signature did not hold."""
        return self.status[self.status.status == FAILED]

    def headline(self) -> str:
        """One sentence: how many learners, how many ran, reproduced, did not."""
        n = len(self.learners)
        ran = n - len(self.not_run) - len(self.unreadable)
        bad = sorted(set(self.not_reproduced.learner))
        held = (self.status.status == HELD).sum()
        return (f"{n} learner{'s' if n != 1 else ''}: {ran} ran a scenario, "
                f"{len(self.not_run)} not yet; {held} scenario run"
                f"{'s' if held != 1 else ''} reproduced the lesson, "
                f"{len(self.not_reproduced)} did not ({len(bad)} learner"
                f"{'s' if len(bad) != 1 else ''})"
                + (f"; {len(self.unreadable)} unreadable" if self.unreadable else ""))

    def summary(self) -> dict[str, Any]:
        """The room as JSON-ready data."""
        def rows(df: pd.DataFrame) -> list[dict[str, Any]]:
            return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                     for k, v in r.items()} for r in df.to_dict("records")]

        return {"headline": self.headline(), "learners": self.learners,
                "scenarios": self.scenarios, "not_run": self.not_run,
                "unreadable": self.unreadable,
                "status": rows(self.status), "checks": rows(self.checks),
                "exercises": rows(self.exercises), "skipped": self.skipped,
                "skipped_count": self.skipped_count}


def _latest(records: Iterable[dict[str, Any]], kind: str) -> dict[Any, dict[str, Any]]:
    out: dict[Any, dict[str, Any]] = {}
    for r in records:  # oldest first: a later record replaces an earlier one
        if r["kind"] == kind:
            out[r["scenario"] if kind != "check" else (r["scenario"], r["what"])] = r
    return out


def _status_rows(lr: LearnerRecords, scenarios: list[str]) -> list[dict[str, Any]]:
    runs, sigs = _latest(lr.records, "run"), _latest(lr.records, "signature")
    preds, checks = _latest(lr.records, "prediction"), _latest(lr.records, "check")
    rows = []
    for s in scenarios:
        sig, run = sigs.get(s), runs.get(s)
        if lr.unreadable:
            status = UNREADABLE
        elif sig is not None:
            status = HELD if sig["ok"] else FAILED
        else:
            status = RAN if run is not None else NOT_RUN
        p = preds.get(s)
        mine = [c for (cs, _), c in checks.items() if cs == s]
        last = [r["time"] for r in (sig, run, p, *mine) if r is not None]
        rows.append({
            "learner": lr.name, "scenario": s, "status": status,
            "mode": (sig or run or {}).get("mode", ""),
            "predictions": ", ".join(f"{k} = {plain(v)}" for k, v in
                                     (p["predictions"] if p else {}).items()),
            "checks": "; ".join(
                f"{'right' if c['ok'] else 'no prediction' if c['ok'] is None else 'not quite'}"
                f": {plain(c['prediction'])} for {plain(c['measured'])}" for c in mine),
            "reason": failing_reason(sig) if status == FAILED else "",
            "last": max(last) if last else ""})
    return rows


def _check_rows(lr: LearnerRecords) -> list[dict[str, Any]]:
    return [{"learner": lr.name, "scenario": c["scenario"] or "\u2013", "what": c["what"],
             "prediction": c["prediction"], "measured": c["measured"], "ok": c["ok"],
             "band": c.get("band", ""), "time": c["time"]}
            for c in _latest(lr.records, "check").values()]


def _exercises(checks: pd.DataFrame) -> pd.DataFrame:
    cols = ["scenario", "what", "checked", "predicted", "right", "prediction_min",
            "prediction_median", "prediction_max", "measured_median", "measured_min",
            "measured_max", "measured_n"]
    if checks.empty:
        return pd.DataFrame(columns=cols)
    out = []
    for (s, w), g in checks.groupby(["scenario", "what"], sort=False):
        truth = g[g.reproduced] if g.reproduced.any() else g  # a run that missed the lesson
        p, m = g.prediction.dropna().astype(float), truth.measured.dropna().astype(float)
        out.append({"scenario": s, "what": w, "checked": len(g), "predicted": len(p),
                    "right": int((g.ok == True).sum()),  # noqa: E712  (None: not predicted)
                    "prediction_min": p.min() if len(p) else None,
                    "prediction_median": p.median() if len(p) else None,
                    "prediction_max": p.max() if len(p) else None,
                    "measured_median": m.median() if len(m) else None,
                    "measured_min": m.min() if len(m) else None,
                    "measured_max": m.max() if len(m) else None, "measured_n": len(m)})
    return pd.DataFrame(out, columns=cols)


def room(path: Path | str, *, scenarios: Iterable[str] = ()) -> Room:
    """The room under ``path`` (a folder of homes or of records folders): every learner,
    every scenario anyone ran (and ``scenarios``), in order of the lab's notebooks."""
    people = read_room(path, learner_dirs(Path(path)))
    return room_of(people, scenarios=scenarios)


def room_of(people: list[LearnerRecords], *, scenarios: Iterable[str] = ()) -> Room:
    """:func:`room` over records already read."""
    from labkit.scenarios import NAMES

    seen = {r["scenario"] for lr in people for r in lr.records
            if r["kind"] in ("run", "signature", "prediction") and r["scenario"]}
    seen |= set(scenarios)
    order = [s for s in NAMES if s in seen] + sorted(seen - set(NAMES))
    status = pd.DataFrame([row for lr in people for row in _status_rows(lr, order)],
                          columns=["learner", "scenario", "status", "mode", "predictions",
                                   "checks", "reason", "last"])
    checks = pd.DataFrame([row for lr in people for row in _check_rows(lr)],
                          columns=["learner", "scenario", "what", "prediction", "measured",
                                   "ok", "band", "time"])
    held = {(r.learner, r.scenario) for r in status.itertuples() if r.status == HELD}
    checks["reproduced"] = [(r.learner, r.scenario) in held for r in checks.itertuples()]
    rank = checks.scenario.map({s: i for i, s in enumerate(order)}).fillna(len(order))
    checks = checks.iloc[rank.argsort(kind="stable")].reset_index(drop=True)
    skipped = [lr.skipped_line() for lr in people if lr.skipped or lr.unreadable]
    return Room([lr.name for lr in people], order, status, checks, _exercises(checks),
                skipped, sum(len(lr.skipped) for lr in people))
