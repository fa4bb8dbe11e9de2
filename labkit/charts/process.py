"""Process charts: threads and open file descriptors over time (the NumGoroutine view)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from labkit.charts.style import VARIANT_COLORS, new_axes


def threads_fds(proc: pd.DataFrame | dict[str, pd.DataFrame], *, axes: Any = None,
                title: str = "Threads and open file descriptors over time") -> Figure:
    """Two panels sharing time: threads above, fds below. ``proc`` is one frame or
    ``{"leaky": df, "fixed": df}``."""
    series = proc if isinstance(proc, dict) else {"process": proc}
    fig, (top, bottom) = (axes[0].figure, axes) if axes is not None else new_axes(nrows=2)
    for label, df in series.items():
        color = VARIANT_COLORS.get(label)
        top.step(df.t_s, df.threads, where="post", label=f"{label} (peak {df.threads.max():.0f})",
                 color=color)
        bottom.step(df.t_s, df.fds, where="post", label=f"{label} (peak {df.fds.max():.0f})",
                    color=color)
    top.set_ylabel("threads")
    top.set_title(title)
    top.legend(loc="upper left")
    bottom.set_ylabel("open file descriptors")
    bottom.set_xlabel("time since start (s)")
    bottom.legend(loc="upper left")
    return fig
