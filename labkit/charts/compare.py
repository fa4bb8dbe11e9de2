"""Comparison chart: what grew between two runs, by allocation site or by function."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from labkit.charts.style import mib, new_axes


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
    return fig


def variant_bars(table: pd.DataFrame, *, ax: Any = None, title: str = "",
                 fmt: Any = None, xlabel: str = "(log scale)") -> Figure:
    """Grouped horizontal bars on one log scale: a group per column (a measure), a bar per
    row (a variant, coloured as the lab colours leaky and fixed), each bar labelled with
    ``fmt(value)``, so values orders of magnitude apart are all readable."""
    from labkit.charts.style import VARIANT_COLORS

    fmt = fmt or (lambda v: f"{v:,.3g}")
    fig, ax = new_axes(ax, height=0.45 * len(table) * len(table.columns) + 1.6)
    height = 0.8 / max(1, len(table))
    for i, (label, row) in enumerate(table.iterrows()):
        ys = [k + i * height for k in range(len(table.columns))]
        vals = [max(float(v), 1.0) for v in row.to_numpy()]
        ax.barh(ys, vals, height=height, color=VARIANT_COLORS.get(str(label)), label=label)
        for y, v in zip(ys, row.to_numpy(), strict=True):
            ax.annotate(f" {fmt(v)}", (max(float(v), 1.0), y), va="center", fontsize=8)
    ax.set_yticks([k + height * (len(table) - 1) / 2 for k in range(len(table.columns))],
                  list(table.columns))
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.margins(x=0.15)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig
