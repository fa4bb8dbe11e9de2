"""The lab's chart style, applied only inside :func:`labkit_style`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

GEN_COLORS = {0: "#4C72B0", 1: "#DD8452", 2: "#C44E52"}
VARIANT_COLORS = {"leaky": "#C44E52", "fixed": "#55A868"}
RC = {
    "figure.figsize": (9.0, 4.2),
    "figure.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
}


@contextlib.contextmanager
def labkit_style() -> Iterator[None]:
    """Use the lab's rcParams inside the block only."""
    import matplotlib as mpl

    with mpl.rc_context(RC):
        yield


def new_axes(ax: Any = None, nrows: int = 1, sharex: bool = True,
             height: float | None = None) -> tuple[Any, Any]:
    """``(figure, axes)``: the given ``ax`` and its figure, or a new figure (not pyplot's)."""
    from matplotlib.figure import Figure

    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=(9.0, height or (2.6 * nrows + 1.2)), layout="constrained")
    axes = fig.subplots(nrows, 1, sharex=sharex) if nrows > 1 else fig.subplots()
    return fig, axes


def plain_ticks(fig: Any) -> Any:
    """Label every axis of ``fig`` in plain grouped numbers (:func:`labkit.units.plain_number`):
    no ``1e6`` offset, no ``3×10⁻¹``. A log axis spanning two decades or more labels its
    major ticks only. Returns ``fig``; call it after the scales are set."""
    import math

    from matplotlib.ticker import FuncFormatter, LogFormatter, NullFormatter, ScalarFormatter

    from labkit.units import plain_number

    fmt = FuncFormatter(lambda v, _pos: plain_number(v))
    for ax in fig.axes:
        for axis, lim in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            if not isinstance(axis.get_major_formatter(), (ScalarFormatter, LogFormatter,
                                                           FuncFormatter)):
                continue  # category labels (bar names) and fixed labels are kept
            axis.set_major_formatter(fmt)
            if axis.get_scale() == "log":
                lo, hi = (max(min(lim), 1e-300), max(max(lim), 1e-300))
                wide = math.log10(hi / lo) >= 2
                axis.set_minor_formatter(NullFormatter() if wide else fmt)
    return fig


def mib(values: Any) -> Any:
    """Bytes to MiB."""
    return values / (1024 * 1024)
