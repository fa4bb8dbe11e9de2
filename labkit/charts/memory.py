"""Memory charts: leaky against fixed over time, and the top allocation sites at the peak."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from labkit.charts.style import VARIANT_COLORS, mib, new_axes, plain_ticks


def memory_timeline(series: dict[str, pd.DataFrame], *, column: str = "rss_bytes",
                    ax: Any = None, title: str = "Memory over time: leaky against fixed"
                    ) -> Figure:
    """One line per label (``{"leaky": df, "fixed": df}``), each frame with ``t_s`` and
    ``column`` (bytes)."""
    from labkit.charts.process import shared_time

    fig, ax = new_axes(ax)
    xs, xlabel = shared_time(series)
    for label, df in series.items():
        ax.plot(xs[label], mib(df[column]),
                label=f"{label} (peak {mib(df[column].max()):.0f} MiB)",
                color=VARIANT_COLORS.get(label), lw=1.6)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{column.replace('_bytes', '').upper() if column == 'rss_bytes' else column}"
                  " (MiB)")
    ax.set_title(title)
    ax.legend(loc="best")
    return plain_ticks(fig)


def top_sites(allocations: pd.DataFrame, *, n: int = 10, ax: Any = None,
              title: str = "Top allocation sites at the high-water mark") -> Figure:
    """Horizontal bars of ``bytes`` for the ``n`` largest sites (labkit's own allocations
    and those made while importing modules excluded), each labelled with its size; sites
    under 1% of the largest are dropped (near zero on this scale)."""
    from labkit.frames.memray import own_allocations
    from labkit.units import human_bytes

    df = own_allocations(allocations)
    df = df.groupby(["function", "file", "line"], as_index=False)[["bytes", "count"]].sum()
    df = df[df["bytes"] >= 0.01 * df["bytes"].max()].nlargest(n, "bytes").iloc[::-1]
    fig, ax = new_axes(ax, height=0.35 * max(len(df), 3) + 1.5)
    labels = [f"{r.function} ({str(r.file).rsplit('/', 1)[-1]}:{r.line})" for r in
              df.itertuples()]
    ax.barh(labels, mib(df["bytes"]), color="#C44E52")
    for y, (b, c) in enumerate(zip(df["bytes"], df["count"], strict=True)):
        ax.annotate(f" {human_bytes(b)} in {c:,} blocks", (mib(b), y), va="center", fontsize=8)
    ax.set_xlabel("bytes held at the peak (MiB)")
    ax.set_title(title)
    ax.margins(x=0.3)
    return plain_ticks(fig)


def allocation_bars(profile: pd.DataFrame, *, ax: Any = None,
                    title: str = "Bytes allocated, short-lived, held at the peak") -> Figure:
    """Bytes allocated in total, short-lived and held at the peak, a bar per label (rows of
    :func:`labkit.analysis.allocation_profile`) on one log scale, each labelled with its
    size, a panel per measure on its own linear scale (:func:`labkit.charts.variant_bars`)."""
    from labkit.charts.compare import variant_bars
    from labkit.units import human_bytes

    names = {"allocated": "allocated in total", "short_lived": "short-lived",
             "at_peak": "held at the peak"}
    return variant_bars(profile.rename(columns=names), ax=ax, title=title, fmt=human_bytes,
                        xlabel="bytes (each panel on its own linear scale)")
