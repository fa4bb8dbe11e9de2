"""Fleet chart: one measure of every node against load, a colour per group (a release)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from labkit.charts.style import mib, new_axes, plain_ticks

PALETTE = ("#4C72B0", "#C44E52", "#55A868", "#8172B2", "#CCB974", "#64B5CD")


def fleet_scatter(runs: pd.DataFrame, *, x: str = "load", y: str = "memray_peak_bytes",
                  group: str | None = None, xlabel: str = "load", ax: Any = None,
                  title: str = "", named: Sequence[str] | None = None) -> Figure:
    """Each node of a :attr:`labkit.fleetdb.Fleet.runs` frame as a point (``x`` against
    ``y``, bytes in MiB), coloured by ``group`` (a column such as ``label_release``); every
    node in ``named`` (the pods where a site grew) is labelled, and so are the three
    highest."""
    fig, ax = new_axes(ax, height=3.6)
    is_bytes = y.endswith("bytes")
    groups = runs.groupby(group, sort=True) if group else [("all nodes", runs)]
    for (name, df), color in zip(groups, PALETTE * 4, strict=False):
        ys = mib(df[y].astype(float)) if is_bytes else df[y].astype(float)
        ax.scatter(df[x].astype(float), ys, s=28, color=color, label=f"{name} ({len(df)})",
                   zorder=3)
    top = runs.sort_values(y, ascending=False)
    top = top[top.index.isin(top.head(3).index) | top["node"].isin(list(named or ()))]
    for _, r in top.iterrows():
        v = mib(float(r[y])) if is_bytes else float(r[y])
        ax.annotate(f" {r['node']}", (float(r[x]), v), fontsize=8, va="center")
    ax.set_xlabel(xlabel)
    names = {"memray_peak_bytes": "heap at the peak", "rss_peak_bytes": "RSS at the peak"}
    name = names.get(y, y.removesuffix("_bytes").replace("_", " "))
    ax.set_ylabel(f"{name} (MiB)" if is_bytes else name)
    ax.set_ylim(bottom=0)
    ax.legend(title=group.removeprefix("label_") if group else None, loc="best")
    ax.set_title(title)
    return plain_ticks(fig)
