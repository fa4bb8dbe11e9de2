"""The trainer's view of the room as one self-contained HTML page (``labkit class --html``).

Who has not run yet, whose run did not reproduce the lesson and why, the spread of the
predictions against the measured value per exercise, and the whole table. No request to
the network (the page's Content-Security-Policy forbids every one); charts are inline PNGs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from labkit.analysis.room import FAILED, HELD, NOT_RUN, UNREADABLE, Room, plain
from labkit.charts.export import figure_html
from labkit.charts.room import prediction_spread, status_counts
from labkit.charts.style import labkit_style
from labkit.report.pages import render, trusted
from labkit.report.postmortem_page import CSP, STYLE

ROOM_STYLE = """
table.room{border-collapse:collapse;font-size:0.9em;margin:0.6em 0}
table.room td,table.room th{border-bottom:1px solid #d0d7de;padding:0.25em 0.6em;
 text-align:left;vertical-align:top}
tr.bad td{background:#ffebe9} p.bad{color:#cf222e} tr.ok td:nth-child(3){color:#1a7f37}
tr.none td:nth-child(3){color:#6e7781}
"""


def _range(lo: Any, mid: Any, hi: Any) -> str:
    return " \u2013 ".join(plain(v) for v in (lo, mid, hi)) if mid is not None else "\u2013"


def _when(iso: str) -> str:
    if not iso:
        return ""
    t = dt.datetime.fromisoformat(iso).astimezone(dt.UTC)
    return f"{t:%Y-%m-%d %H:%M} UTC"


def room_page(rm: Room, *, title: str = "The room", when: str | None = None) -> str:
    """The whole page for ``rm`` (:func:`labkit.analysis.room.room`)."""
    with labkit_style():
        spread = (figure_html(prediction_spread(rm.checks, rm.exercises))
                  if not rm.exercises.empty else "")
        counts = figure_html(status_counts(rm.status)) if not rm.status.empty else ""
    missing = [(s, list(g.learner)) for s, g in rm.status[rm.status.status == NOT_RUN]
               .groupby("scenario", sort=False) if set(g.learner) - set(rm.not_run)]
    css = {HELD: "ok", FAILED: "bad", NOT_RUN: "none", UNREADABLE: "bad"}
    exercises = [{"scenario": e.scenario, "what": e.what, "checked": e.checked,
                  "predicted": e.predicted, "right": e.right,
                  "predictions": _range(e.prediction_min, e.prediction_median,
                                        e.prediction_max),
                  "measured": (f"{plain(e.measured_median)} ({plain(e.measured_min)} \u2013 "
                               f"{plain(e.measured_max)})")}
                 for e in rm.exercises.itertuples()]
    status = [{**r, "css": css.get(r["status"], ""), "last": _when(r["last"])}
              for r in rm.status.to_dict("records")]
    return render("room.html.j2", title=title, csp=CSP, style=trusted(STYLE + ROOM_STYLE),
                  when=when or f"collected {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
                  headline=rm.headline(), not_run=rm.not_run, unreadable=rm.unreadable,
                  missing=[(s, [w for w in who if w not in rm.not_run]) for s, who in missing],
                  failed=rm.not_reproduced.to_dict("records"), spread=trusted(spread),
                  counts=trusted(counts), exercises=exercises, status=status,
                  skipped=rm.skipped)


def room_lines(rm: Room) -> list[str]:
    """The room for a terminal: the headline, who has not run, who did not reproduce and
    why, each exercise's spread, and a line per learner."""
    from labkit.units import printable

    lines = [printable(rm.headline()), "", "not run yet: " +
             (printable(", ".join(rm.not_run)) if rm.not_run else "(nobody)")]
    if rm.unreadable:
        lines.append(printable("records unreadable: " + ", ".join(rm.unreadable)))
    lines += ["", "did not reproduce:"]
    lines += [printable(f"  {r.learner} / {r.scenario} ({r.mode}): {r.reason}")
              for r in rm.not_reproduced.itertuples()] or ["  (nobody)"]
    lines += ["", "predictions against the measured value (min - median - max; measured "
              "median):"]
    lines += [printable(f"  {e.scenario}: {e.what}: {e.right} of {e.checked} right; predicted "
                        f"{_range(e.prediction_min, e.prediction_median, e.prediction_max)}; "
                        f"measured {plain(e.measured_median)}")
              for e in rm.exercises.itertuples()] or ["  (no exercise checked yet)"]
    lines += ["", "learners:"]
    for name, g in rm.status.groupby("learner", sort=False):
        cells = [f"{r.scenario} {r.status}" for r in g.itertuples() if r.status != NOT_RUN]
        lines.append(printable(f"  {name}: " + ("; ".join(cells) or NOT_RUN)))
    return lines
