"""Comparison chart: what grew between two runs, by allocation site or by function."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from labkit.charts.style import mib, new_axes, plain_ticks


def comparison_bars(diff: pd.DataFrame, *, value: str = "bytes", n: int = 10, ax: Any = None,
                    title: str = "Run B against run A: largest changes") -> Figure:
    """Bars of ``<value>_delta`` for the ``n`` largest changes (either sign) in a
    :func:`labkit.analysis.diff_sites` frame. Bytes are shown in MiB, shares in %."""
    col = f"{value}_delta"
    df = diff.reindex(diff[col].abs().sort_values(ascending=False).index).head(n).iloc[::-1]
    key = [c for c in ("function", "file", "line") if c in df]
    labels = [" ".join(str(r[k]).rsplit("/", 1)[-1] for k in key) for _, r in df.iterrows()]
    scale, unit = (mib, "MiB") if value == "bytes" else ((lambda v: 100 * v), "% of samples") \
        if "share" in value else ((lambda v: v), value)
    fig, ax = new_axes(ax, height=0.35 * max(len(df), 3) + 1.5)
    vals = scale(df[col].astype(float))
    ax.barh(labels, vals, color=["#C44E52" if v > 0 else "#55A868" for v in vals])
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(f"change B - A ({unit})")
    ax.set_title(title)
    return plain_ticks(fig)


def variant_bars(table: pd.DataFrame, *, ax: Any = None, title: str = "",
                 fmt: Any = None, xlabel: str = "") -> Figure:
    """Horizontal bars on linear scales, a panel per column (a measure), a bar per row (a
    variant, coloured as the lab colours leaky and fixed), each bar labelled with
    ``fmt(value)`` and, for the largest of a panel, how many times the smallest it is
    (``49x fixed``): a 49x gap is drawn as 49x and said. ``ax``: one Axes per column, or None."""
    from labkit.charts.style import VARIANT_COLORS
    from labkit.units import plain_number, ratio

    fmt = fmt or plain_number
    cols = list(table.columns)
    if ax is not None:
        axs = list(ax) if isinstance(ax, (list, tuple)) else [ax]
        fig = axs[0].figure
    else:
        fig, axs = new_axes(nrows=len(cols), sharex=False,
                            height=(0.32 * len(table) + 0.7) * len(cols) + 0.9)
        axs = list(axs) if len(cols) > 1 else [axs]
    labels = [str(v) for v in table.index]
    for a, col in zip(axs, cols, strict=False):
        vals = [float(v) if v == v else 0.0 for v in table[col].to_numpy()]
        a.barh(labels, vals, color=[VARIANT_COLORS.get(v, "#4C72B0") for v in labels])
        pos = [(v, k) for v, k in zip(vals, labels, strict=True) if v > 0]
        top = max(vals, default=0.0)
        low, low_name = min(pos) if pos else (0.0, "")
        for y, v in enumerate(vals):
            times = ratio(top, low) if v == top and len(pos) > 1 else ""
            a.annotate(f" {fmt(v)}" + (f" ({times} {low_name})" if times else ""), (v, y),
                       va="center", fontsize=8)
        a.set_xlim(0, (top or 1) * 1.45)
        a.invert_yaxis()
        a.set_title(str(col), fontsize=10)
        a.grid(axis="y", visible=False)
        if fmt is not plain_number:
            a.set_xticks([])
    if xlabel:
        axs[-1].set_xlabel(xlabel)
    if title:
        fig.suptitle(title)
    return plain_ticks(fig)
