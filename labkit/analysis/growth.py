"""Growth, measured one way for every face: a slope over the second half of a series, a
rise from the first sample to the peak, and a site's steady gain over memray's steps.

Pure functions over frames; nothing here reads files.
"""

from __future__ import annotations

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
