"""Comparing runs: hand-built frames for the arithmetic, real captures for the whole path."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from labkit import CaptureOptions, run_program
from labkit.analysis import diff_sites, diff_summaries
from labkit.analysis.compare import compare
from tests.conftest import PY, labkit

MB = 1024 * 1024


def test_diff_sites_sorts_by_growth_and_fills_missing_sites() -> None:
    a = pd.DataFrame({"function": ["f", "g", "h"], "file": ["x"] * 3, "line": [1, 2, 3],
                      "bytes": [100, 50, 10], "count": [1, 1, 1]})
    b = pd.DataFrame({"function": ["f", "g", "k"], "file": ["x"] * 3, "line": [1, 2, 4],
                      "bytes": [100, 500, 70], "count": [1, 5, 2]})
    d = diff_sites(a, b, ["function", "file", "line"], ["bytes", "count"])
    assert list(d.function) == ["g", "k", "f", "h"]
    assert d.iloc[0].bytes_delta == 450 and d.iloc[1].bytes_a == 0 and d.iloc[3].bytes_b == 0
    assert list(d.columns[-6:]) == ["bytes_a", "bytes_b", "bytes_delta", "count_a", "count_b",
                                    "count_delta"]


def test_diff_summaries_only_common_metrics() -> None:
    d = diff_summaries(pd.Series({"x": 2, "y": 0}), pd.Series({"x": 6, "y": 3, "z": 1}))
    assert list(d.index) == ["x", "y"]
    assert d.loc["x", "ratio"] == 3 and d.loc["x", "delta"] == 4
    assert pd.isna(d.loc["y", "ratio"])


PROG = """
import sys, time
def grows(n):
    return [bytearray(1024 * 1024) for _ in range(n)]
def steady():
    return [bytearray(1024 * 1024) for _ in range(5)]
def spin(s):
    t = time.perf_counter()
    while time.perf_counter() - t < s:
        pass
a = grows(int(sys.argv[1]))
b = steady()
spin(float(sys.argv[2]))
time.sleep(0.05)
"""


@pytest.mark.slow
def test_compare_two_real_runs(tmp_path: Path, write_prog) -> None:
    prog = write_prog(PROG)
    opts = CaptureOptions(gc=True, memray=True, pyspy=True, proc=True)
    a = run_program([PY, str(prog), "5", "0.5"], out=tmp_path / "a", options=opts).path
    b = run_program([PY, str(prog), "40", "1.5"], out=tmp_path / "b", options=opts).path
    cmp = compare(a, b)
    top = cmp.allocations.iloc[0]
    assert top.function in ("grows", "<listcomp>")  # 3.11 keeps a frame for comprehensions
    assert top.bytes_delta >= 30 * MB
    steady = cmp.allocations[cmp.allocations.function.isin(["steady"])]
    assert steady.empty or abs(steady.bytes_delta.sum()) < MB
    assert cmp.summary.loc["memray_peak_bytes", "delta"] >= 30 * MB
    assert {"gc_collections", "proc_peak_rss_bytes"} <= set(cmp.summary.index)
    assert "spin" in set(cmp.functions.function)
    cp = labkit("compare", str(a), str(b), "--top", "3")
    assert cp.returncode == 0, cp.stderr
    assert "allocation sites at peak" in cp.stdout and "memray_peak_bytes" in cp.stdout
