"""GC charts: pauses against allocation over time, pause distributions, the tuning frontier."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from labkit.charts.style import GEN_COLORS, mib, new_axes, plain_ticks
from labkit.units import plain_number


def gc_timeline(gc_events: pd.DataFrame, heap: pd.DataFrame | None = None, *,
                axes: Any = None, title: str = "GC pauses against allocation") -> Figure:
    """The headline: each collection's pause (log scale, by generation) with collections
    per second on a twin axis, above a heap indicator (RSS and allocated blocks), on one
    time axis; without a heap indicator (``heap`` None or empty) the pause panel alone, no
    empty panel. ``axes``: two Axes sharing x, or None for a new figure."""
    has_heap = heap is not None and len(heap) > 0
    if axes is not None:
        fig, (top, bottom) = axes[0].figure, axes
    elif has_heap:
        fig, (top, bottom) = new_axes(nrows=2)
    else:
        fig, top = new_axes(height=3.4)
        bottom = top
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
    top.legend(loc="upper left", bbox_to_anchor=(1.08, 1.0), title="collections")  # clear of data
    if has_heap:
        bottom.plot(heap.t_s, mib(heap.rss_bytes), color="#4C72B0", label="RSS")
        bottom.set_ylabel("RSS (MiB)")
        if "allocated_blocks" in heap:
            twin2 = bottom.twinx()
            twin2.plot(heap.t_s, heap.allocated_blocks / 1e3, color="#8172B3", lw=1, ls="--",
                       label="allocated blocks")
            twin2.set_ylabel("allocated blocks (thousands)", color="#8172B3")
            twin2.grid(False)
            lines = bottom.get_lines() + twin2.get_lines()
            bottom.legend(lines, [ln.get_label() for ln in lines], loc="upper left",
                          bbox_to_anchor=(1.08, 1.0))
        else:
            bottom.legend(loc="best")
    bottom.set_xlabel("time since start (s)")
    return plain_ticks(fig)


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
            ax.annotate(f"{name} {plain_number(v)} ms", (i + 0.34, v), fontsize=8, va="center",
                        xytext=(2, dy), textcoords="offset points")
    ax.set_yscale("log")
    ax.set_ylabel("pause (ms, log)")
    ax.set_xlabel("generation (collections: " + ", ".join(
        f"gen {g} {len(d):,}" for g, d in zip(gens, data, strict=True)) + ")")
    ax.set_title(title)
    return plain_ticks(fig)


SETTING_COLORS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860")


def gc_frontier(table: pd.DataFrame, *, ax: Any = None,
                title: str = "GC settings: throughput against the pauses users feel") -> Figure:
    """Per setting (the index), in its own colour: ``throughput`` against the median
    full-collection pause (``full_pause_ms``, a dot) with a bar out to the longest pause
    (``max_pause_ms``; a setting with no full collection has the bar's end only, no dot);
    the legend gives each setting's steady-phase RSS growth
    (``rss_growth``, bytes). A setting that never collects (no full-collection pause, max
    0) is a square at the left edge: no pauses, and the memory it grew."""
    fig, ax = new_axes(ax)
    full = table["full_pause_ms"].astype(float)
    worst = table["max_pause_ms"].astype(float)
    seen = pd.concat([full[full > 0], worst[worst > 0]])
    floor = float(seen.min()) / 4 if len(seen) else 0.01
    for (name, r), color in zip(table.iterrows(), SETTING_COLORS * 2, strict=False):
        grew = f"RSS +{mib(r.rss_growth):,.0f} MiB"
        if not r.full_pause_ms > 0 and not r.max_pause_ms > 0:
            ax.scatter([floor], [r.throughput], marker="s", s=80, color=color,
                       edgecolor="black", zorder=3,
                       label=f"{name}: no collections, no pauses; {grew}")
            continue
        end = max(r.full_pause_ms if r.full_pause_ms > 0 else 0.0, r.max_pause_ms)
        if r.full_pause_ms > 0:  # the dot is a median full collection: only where there are some
            x = r.full_pause_ms
            what = f"median full collection {plain_number(x)} ms, longest {plain_number(end)} ms"
            ax.plot([x, end], [r.throughput] * 2, color=color, lw=2)
            ax.scatter([end], [r.throughput], marker="|", s=160, color=color, zorder=3)
            ax.scatter([x], [r.throughput], s=80, color=color, edgecolor="black", zorder=3,
                       label=f"{name}: {what}; {grew}")
        else:
            ax.scatter([end], [r.throughput], marker="|", s=240, lw=2.5, color=color, zorder=3,
                       label=f"{name}: no full collection, longest pause "
                             f"{plain_number(end)} ms (bar only); {grew}")
    ax.set_xscale("log")
    ax.margins(x=0.15, y=0.2)
    ax.set_xlabel("pause (ms, log): median full collection (dot) to longest pause (bar)")
    ax.set_ylabel("throughput (iterations / s)")
    ax.set_title(title)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), fontsize=8, ncol=1)
    return plain_ticks(fig)
