"""The room's chart: every learner's prediction of each exercise against the measured truth."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator

from labkit.charts.style import new_axes

RIGHT, WRONG, MEASURED = "#1a7f37", "#cf222e", "#57606a"
LIMIT = 64.0  # predictions further off than this factor are drawn at the edge


def _ratio_label(r: float) -> str:
    return f"\u00d7{r:g}" if r >= 1 else f"\u00f7{1 / r:g}"


def _plain(v: float) -> str:
    from labkit.analysis.room import plain

    return plain(v)


def prediction_spread(checks: pd.DataFrame, exercises: pd.DataFrame, *,
                      title: str = "Predictions against the measured value") -> Figure:
    """A row per exercise (from :class:`labkit.analysis.room.Room`): each learner's prediction
    as a dot at its ratio to the exercise's measured median (green right, red not quite),
    each learner's own measurement as a grey tick, and the truth (the median of the runs
    that reproduced the lesson) at x1. Predictions off by
    more than :data:`LIMIT`, zero or negative, sit at the edge as triangles."""
    rows = exercises.reset_index(drop=True)
    fig, ax = new_axes(height=1.3 + 0.55 * max(len(rows), 1))
    ax.set_xscale("log", base=2)
    ax.axvline(1.0, color=MEASURED, lw=1.5, zorder=1)
    labels = []
    for i, ex in rows.iterrows():
        y = len(rows) - 1 - int(i)
        truth = ex.measured_median
        g = checks[(checks.scenario == ex.scenario) & (checks.what == ex.what)]
        labels.append(f"{ex.scenario}\n{ex.what}")
        if truth is None or not math.isfinite(truth) or truth == 0:
            continue
        for m in g.measured.dropna().astype(float):
            ax.plot([min(max(m / truth, 1 / LIMIT), LIMIT)], [y], marker="|", ms=14,
                    color=MEASURED, alpha=0.6, zorder=2)
        got = g[g.prediction.notna()]
        for j, (_, c) in enumerate(got.iterrows()):
            raw = float(c.prediction) / truth
            edge = raw <= 1 / LIMIT or raw >= LIMIT
            x = min(max(raw, 1 / LIMIT), LIMIT) if raw > 0 else 1 / LIMIT
            jitter = ((j % 5) - 2) * 0.06
            ax.scatter([x], [y + jitter], s=36, zorder=3, edgecolors="white", linewidths=0.6,
                       marker=("<" if x < 1 else ">") if edge or raw <= 0 else "o",
                       color=RIGHT if c.ok else WRONG)
        ax.annotate(f"measured {_plain(truth)} (median of {int(ex.measured_n)}); "
                    f"{int(ex.right)} of {int(ex.checked)} right",
                    (1.0, y + 0.32), xytext=(4, 0), textcoords="offset points", fontsize=8,
                    color=MEASURED, va="center")
    ticks = [2.0 ** k for k in range(-6, 7, 1)]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([_ratio_label(t) for t in ticks])
    ax.set_xlim(1 / LIMIT / 1.3, LIMIT * 1.3)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(list(reversed(labels)), fontsize=8)
    ax.set_ylim(-0.6, max(len(rows), 1) - 0.3)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel("prediction as a multiple of the measured median (x1: right on)")
    ax.set_title(title)
    handles = [ax.scatter([], [], color=RIGHT, s=36, label="prediction, right"),
               ax.scatter([], [], color=WRONG, s=36, label="prediction, not quite"),
               ax.plot([], [], marker="|", ls="none", ms=10, color=MEASURED,
                       label="a learner's measurement")[0]]
    fig.legend(handles=handles, loc="outside lower center", ncols=3)
    return fig


def status_counts(status: pd.DataFrame, ax: Any = None) -> Figure:
    """Per scenario, how many learners reproduced, did not, ran without a signature yet, or
    have not run: stacked horizontal bars, counts written on them."""
    from labkit.analysis.room import FAILED, HELD, NOT_RUN, RAN, UNREADABLE

    colors = {HELD: RIGHT, FAILED: WRONG, RAN: "#d4a72c", NOT_RUN: "#d0d7de",
              UNREADABLE: "#6e7781"}
    counts = (status.groupby(["scenario", "status"]).size().unstack(fill_value=0)
              .reindex(columns=list(colors), fill_value=0))
    order = list(dict.fromkeys(status.scenario))
    counts = counts.reindex(order[::-1])
    fig, ax = new_axes(ax, height=1.2 + 0.4 * max(len(counts), 1))
    left = [0] * len(counts)
    shown = {k: c for k, c in colors.items() if counts[k].sum()}  # no legend for nobody
    for name, color in shown.items():
        vals = counts[name].tolist()
        ax.barh(counts.index, vals, left=left, color=color, label=name)
        for k, (v, x0) in enumerate(zip(vals, left, strict=True)):
            if v:
                ax.text(x0 + v / 2, k, str(v), ha="center", va="center", fontsize=8)
        left = [a + b for a, b in zip(left, vals, strict=True)]
    ax.set_xlabel("learners")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(axis="y", visible=False)
    ax.set_title("Who reproduced each lesson")
    fig.legend(loc="outside lower center", ncols=max(len(shown), 1))
    return fig
