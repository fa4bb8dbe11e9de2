"""Growth, measured one way for every face: a slope over the second half of a series, a
rise from the first sample to the peak, a series' shape (:func:`trend`: still rising at the
end, risen then held, a warm-up) and a site's steady gain over memray's steps.

Pure functions over frames; nothing here reads files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

STEADY_STEPS = 10  # growth steps (see MemrayCapture.growth) a site must grow in to count


def slope_per_s(df: pd.DataFrame, col: str) -> float:
    """Least-squares growth of ``col`` per second over the second half of ``df``."""
    d = df[df.t_s >= df.t_s.min() + (df.t_s.max() - df.t_s.min()) / 2]
    if len(d) < 3 or d.t_s.nunique() < 2:
        return 0.0
    return float(np.polyfit(d.t_s.to_numpy(float), d[col].to_numpy(float), 1)[0])


def rise_to_peak(df: pd.DataFrame, col: str) -> dict[str, float] | None:
    """How far ``col`` rose from its first sample to its peak, and how fast."""
    if df.empty:
        return None
    i = int(df[col].to_numpy().argmax())
    start, peak = float(df[col].iloc[0]), float(df[col].iloc[i])
    return {"start": start, "peak": peak, "rise": peak - start,
            "seconds": float(df.t_s.iloc[i] - df.t_s.iloc[0])}


def steady_gain(growth: pd.DataFrame) -> pd.Series:
    """What each stack of :attr:`MemrayCapture.growth` gained over the run, counted in full
    only for a stack that grew in at least :data:`STEADY_STEPS` steps (a one-off grows in
    one): ``max(growth_bytes, 0) * min(1, increases / STEADY_STEPS)``."""
    steadiness = (growth["increases"].astype(float) / STEADY_STEPS).clip(upper=1.0)
    return growth["growth_bytes"].clip(lower=0) * steadiness


@dataclass(frozen=True)
class Trend:
    """How a series moved: ``start`` (first sample), ``peak``, ``end`` (median of the last
    quarter), ``rise`` (peak - start), ``seconds`` to the peak, ``late_slope`` (per second,
    over the last quarter) and ``shape``: ``rising`` (still rising in the last quarter by at
    least :data:`LATE_SHARE` of the rise), ``held`` (rose, then stayed near its peak),
    ``warm-up`` (held after reaching 90% of its rise in the first quarter, or in the first
    :data:`WARMUP_S` of a run of :data:`WARMUP_RUN_S` or more: a pool, a cache warming
    up), ``fell`` (rose, then gave most of it back) or ``flat``."""

    start: float
    peak: float
    end: float
    rise: float
    seconds: float
    late_slope: float
    shape: str


LATE_SHARE = 0.1  # a series still rising gains at least this share of its rise at the end
WARMUP_S = 5.0  # in a run of WARMUP_RUN_S or more, a level reached this early is start-up
WARMUP_RUN_S = 20.0


def _median_slope(t: np.ndarray, v: np.ndarray, most: int = 256) -> float:
    """Theil-Sen: the median of the slopes between every two samples (at most ``most``,
    evenly spaced). A heap that holds a leak and churns beside it is spiky, and one spike
    early in the window tilts a least-squares fit flat; the median ignores it."""
    if t.size > most:
        keep = np.linspace(0, t.size - 1, most).astype(int)
        t, v = t[keep], v[keep]
    i, j = np.triu_indices(t.size, 1)
    dt = t[j] - t[i]
    ok = dt > 0
    return float(np.median((v[j] - v[i])[ok] / dt[ok]))


def trend(df: pd.DataFrame, col: str) -> Trend | None:
    """The :class:`Trend` of ``df[col]`` over ``df.t_s``; None for no samples."""
    if df.empty:
        return None
    t, v = df.t_s.to_numpy(float), df[col].to_numpy(float)
    i = int(v.argmax())
    start, peak = float(v[0]), float(v[i])
    rise, span = peak - start, float(t[-1] - t[0])
    late = t >= t[0] + 0.75 * span
    end = float(np.median(v[late])) if late.any() else float(v[-1])
    slope = 0.0
    if late.sum() >= 3 and np.unique(t[late]).size >= 2:
        slope = _median_slope(t[late], v[late])
    late_rise = slope * 0.25 * span
    if rise <= 0:
        shape = "flat"
    elif late_rise >= LATE_SHARE * rise and slope > 0:
        shape = "rising"
    elif end < start + 0.5 * rise:
        shape = "fell"
    else:
        reached = float(t[int(np.argmax(v >= start + 0.9 * rise))] - t[0])
        start_up = reached <= 0.25 * span or (span >= WARMUP_RUN_S and reached <= WARMUP_S)
        shape = "warm-up" if start_up else "held"
    return Trend(start, peak, end, rise, float(t[i] - t[0]), slope, shape)
