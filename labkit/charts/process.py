"""Process charts: threads and open file descriptors over time (the NumGoroutine view)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from labkit.charts.style import VARIANT_COLORS, new_axes, plain_ticks

PANELS = {"threads": "threads", "fds": "open file descriptors"}


def has_signal(series: dict[str, pd.DataFrame], column: str) -> bool:
    """Whether ``column`` moves enough in any series to be worth a panel: it rose by at
    least 5 and by half of where it started."""
    for df in series.values():
        if len(df):
            lo, hi = float(df[column].iloc[0]), float(df[column].max())
            if hi - lo >= 5 and hi >= 1.5 * max(lo, 1):
                return True
    return False


def shared_time(series: dict[str, pd.DataFrame]) -> tuple[dict[str, Any], str]:
    """The x values per series and the axis label: seconds since start, or, when one run
    lasts over 3x another (the short one would be squeezed into a corner), each run's
    progress in % with both durations in the label."""
    spans = {k: float(df.t_s.max() - df.t_s.min()) if len(df) else 0.0
             for k, df in series.items()}
    short, long_ = min(spans.values(), default=0.0), max(spans.values(), default=0.0)
    if len(series) < 2 or short <= 0 or long_ <= 3 * short:
        return {k: df.t_s for k, df in series.items()}, "time since start (s)"
    xs = {k: 100 * (df.t_s - df.t_s.min()) / max(spans[k], 1e-9) for k, df in series.items()}
    lengths = ", ".join(f"{k} {v:.1f} s" for k, v in spans.items())
    return xs, f"progress through each run (%; {lengths})"


def threads_fds(proc: pd.DataFrame | dict[str, pd.DataFrame], *, axes: Any = None,
                panels: tuple[str, ...] | None = None, title: str | None = None) -> Figure:
    """Threads and open fds over time, one panel each, only for a column with signal
    (:func:`has_signal`; ``panels`` chooses: ``("threads", "fds")``). ``proc`` is one
    frame or ``{"leaky": df, "fixed": df}``; runs of very different lengths are drawn on
    a shared progress axis (:func:`shared_time`). The default title names the panels."""
    series = proc if isinstance(proc, dict) else {"process": proc}
    chosen = panels or tuple(c for c in PANELS if has_signal(series, c)) or tuple(PANELS)
    if axes is not None:
        fig, axs = axes[0].figure, list(axes)
    else:
        fig, axs = new_axes(nrows=len(chosen))
        axs = list(axs) if len(chosen) > 1 else [axs]
    xs, xlabel = shared_time(series)
    for ax, col in zip(axs, chosen, strict=False):
        for label, df in series.items():
            ax.step(xs[label], df[col], where="post", color=VARIANT_COLORS.get(label),
                    label=f"{label} (peak {df[col].max():.0f})")
        ax.set_ylabel(PANELS[col])
        ax.legend(loc="best")
    default = " and ".join(PANELS[c] for c in chosen)
    axs[0].set_title(title or f"{default[0].upper()}{default[1:]} over time")
    axs[-1].set_xlabel(xlabel)
    return plain_ticks(fig)
