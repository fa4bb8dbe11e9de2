"""GC charts: pauses against allocation over time, pause distributions, the tuning frontier."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from labkit.charts.style import GEN_COLORS, mib, new_axes


def gc_timeline(gc_events: pd.DataFrame, heap: pd.DataFrame | None = None, *,
                axes: Any = None, title: str = "GC pauses against allocation") -> Figure:
    """The headline: each collection's pause (log scale, by generation) with collections
    per second on a twin axis, above a heap indicator (RSS and allocated blocks), on one
    time axis. ``axes``: two Axes sharing x, or None for a new figure."""
    fig, (top, bottom) = (axes[0].figure, axes) if axes is not None else new_axes(nrows=2)
    ev = gc_events[gc_events.pause_ms > 0]
    for gen, grp in ev.groupby("generation"):
        top.scatter(grp.t_s, grp.pause_ms, s=10 if gen == 0 else 22, alpha=0.6,
                    color=GEN_COLORS.get(int(gen), "grey"), label=f"gen {gen} ({len(grp):,})")
    top.set_yscale("log")
    top.set_ylabel("pause (ms, log)")
    top.set_title(title)
    if len(gc_events):
        rate = _per_second(gc_events.t_s)
        twin = top.twinx()
        twin.step(rate.index, rate.values, where="post", color="grey", lw=1, alpha=0.7)
        twin.set_ylabel("collections / s", color="grey")
        twin.grid(False)
    top.legend(loc="center right", title="collections", frameon=True, framealpha=0.85)
    if heap is not None and len(heap):
        bottom.plot(heap.t_s, mib(heap.rss_bytes), color="#4C72B0", label="RSS")
        bottom.set_ylabel("RSS (MiB)")
        if "allocated_blocks" in heap:
            twin2 = bottom.twinx()
            twin2.plot(heap.t_s, heap.allocated_blocks / 1e3, color="#8172B3", lw=1, ls="--",
                       label="allocated blocks")
            twin2.set_ylabel("allocated blocks (thousands)", color="#8172B3")
            twin2.grid(False)
            twin2.legend(loc="lower right")
        bottom.legend(loc="lower left")
    bottom.set_xlabel("time since start (s)")
    return fig


def _per_second(t_s: pd.Series) -> pd.Series:
    if t_s.empty:
        return pd.Series(dtype=float)
    width = max(0.05, (t_s.max() - t_s.min()) / 60)
    edges = np.arange(t_s.min(), t_s.max() + width, width)
    counts, _ = np.histogram(t_s, bins=edges)
    return pd.Series(counts / width, index=edges[:-1])


def pause_distribution(gc_events: pd.DataFrame, *, ax: Any = None,
                       title: str = "Pause distribution by generation") -> Figure:
    """A box per generation (log scale) with p50, p99 and max marked and labelled."""
    fig, ax = new_axes(ax)
    gens = sorted(int(g) for g in gc_events.generation.unique())
    data = [gc_events.pause_ms[gc_events.generation == g].clip(lower=1e-4) for g in gens]
    if data:
        ax.boxplot(data, tick_labels=[f"gen {g}" for g in gens], showfliers=True,
                   flierprops={"markersize": 2, "alpha": 0.4}, widths=0.5)
    for i, (g, d) in enumerate(zip(gens, data, strict=True), start=1):
        for q, marker, name, dy in ((0.5, "_", "p50", -9), (0.99, "x", "p99", 0),
                                    (1.0, "^", "max", 9)):
            v = float(d.quantile(q))
            ax.scatter([i + 0.3], [v], marker=marker, color=GEN_COLORS.get(g, "grey"), s=40)
            ax.annotate(f"{name} {v:.3g} ms", (i + 0.34, v), fontsize=8, va="center",
                        xytext=(2, dy), textcoords="offset points")
    ax.set_yscale("log")
    ax.set_ylabel("pause (ms, log)")
    ax.set_xlabel("generation (collections: " + ", ".join(
        f"gen {g} {len(d):,}" for g, d in zip(gens, data, strict=True)) + ")")
    ax.set_title(title)
    return fig


def gc_frontier(table: pd.DataFrame, *, ax: Any = None,
                title: str = "GC settings: throughput against p99 pause") -> Figure:
    """Per setting (the index): ``throughput`` against ``pause_p99_ms``, marker area by
    ``peak_rss`` bytes, each point labelled."""
    fig, ax = new_axes(ax)
    peak = table["peak_rss"].astype(float)
    size = 60 + 400 * (peak / peak.max() if peak.max() else 0)
    ax.scatter(table["pause_p99_ms"].clip(lower=1e-3), table["throughput"], s=size,
               alpha=0.6, color="#4C72B0", edgecolor="black")
    for name, r in table.iterrows():
        ax.annotate(f"{name}\n{mib(r.peak_rss):.0f} MiB peak",
                    (max(r.pause_p99_ms, 1e-3), r.throughput), fontsize=8,
                    xytext=(6, 4), textcoords="offset points")
    ax.set_xscale("log")
    ax.margins(x=0.15, y=0.18)
    ax.set_xlabel("p99 pause (ms, log); marker area = peak RSS")
    ax.set_ylabel("throughput (iterations / s)")
    ax.set_title(title)
    return fig
