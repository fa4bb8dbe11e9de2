"""Analysis on hand-built frames: exact figures from known inputs."""

from __future__ import annotations

import pandas as pd
import pytest

from labkit.analysis import gc_summary, max_rate_per_s, pauses_by_generation


def _events(starts_ms: list[float], pauses_ms: list[float], gens: list[int]) -> pd.DataFrame:
    t = [int(s * 1e6) for s in starts_ms]
    return pd.DataFrame({"t_start_ns": t, "t_s": [s / 1e3 for s in starts_ms],
                         "pause_ms": pauses_ms, "generation": gens})


def test_gc_summary_counts_and_percent() -> None:
    ev = _events([0, 100, 200, 1500], [1.0, 2.0, 3.0, 94.0], [0, 0, 1, 2])
    s = gc_summary(ev, wall_s=2.0)
    assert (s.collections, s.gen0, s.gen1, s.gen2) == (4, 2, 1, 1)
    assert s.pause_total_ms == 100.0
    assert s.gc_percent == pytest.approx(5.0)
    assert s.pause_max_ms == 94.0
    assert s.max_collections_per_s == 3


def test_empty_frame_is_all_zeros() -> None:
    s = gc_summary(_events([], [], []), wall_s=1.0)
    assert s.collections == 0 and s.pause_p99_ms == 0.0 and s.max_collections_per_s == 0


def test_max_rate_window_edges() -> None:
    # 0, 999.999 ms fall in one second; 1000 ms starts a new window
    assert max_rate_per_s(_events([0, 999.999, 1000], [0, 0, 0], [0, 0, 0])) == 2


def test_pauses_by_generation() -> None:
    df = pauses_by_generation(_events([0, 1, 2], [1.0, 3.0, 10.0], [0, 0, 2]))
    assert df.loc[0, "count"] == 2 and df.loc[0, "max_ms"] == 3.0 and df.loc[2, "total_ms"] == 10
