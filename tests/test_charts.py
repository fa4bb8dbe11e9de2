"""Every chart renders from small hand-built frames, with units on its axes and a title."""

from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from labkit.charts import (
    allocation_bars,
    comparison_bars,
    gc_frontier,
    gc_timeline,
    labkit_style,
    memory_timeline,
    pause_distribution,
    threads_fds,
    top_sites,
)

MB = 1024 * 1024


def _events(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 5, n))
    gen = np.where(np.arange(n) % 50 == 0, 2, np.where(np.arange(n) % 10 == 0, 1, 0))
    return pd.DataFrame({"t_s": t, "pause_ms": np.where(gen == 2, 80.0, 0.1 + gen),
                         "generation": gen, "t_start_ns": (t * 1e9).astype("int64")})


def _heap() -> pd.DataFrame:
    t = np.linspace(0, 5, 50)
    return pd.DataFrame({"t_s": t, "rss_bytes": (20 + 10 * t) * MB,
                         "allocated_blocks": 1000 * t})


def _proc(grow: bool) -> pd.DataFrame:
    t = np.linspace(0, 3, 30)
    k = 1.0 if grow else 0.0
    return pd.DataFrame({"t_s": t, "rss_bytes": (30 + 20 * k * t) * MB,
                         "threads": (3 + 10 * k * t).astype(int),
                         "fds": (5 + 30 * k * t).astype(int)})


def _allocs() -> pd.DataFrame:
    importing = (("<frozen importlib._bootstrap_external>", 729, "_compile_bytecode"),
                 ("/a/x.py", 9, "main"))
    return pd.DataFrame({"function": ["f", "g", "h", "_compile_bytecode"],
                         "file": ["/a/x.py"] * 3 + [importing[0][0]], "line": [1, 2, 3, 729],
                         "bytes": [50 * MB, 5 * MB, MB, 2 * MB], "count": [50, 5, 1, 1],
                         "in_labkit": [False, False, True, False],
                         "frames": [(("/a/x.py", 1, "f"),), (("/a/x.py", 2, "g"),),
                                    (("/a/x.py", 3, "h"),), importing]})


def _frontier() -> pd.DataFrame:
    return pd.DataFrame({"throughput": [3e5, 2.5e5, 3.2e5],
                         "full_pause_ms": [50.0, float("nan"), 1.2],
                         "max_pause_ms": [62.0, 0.0, 4.0],
                         "rss_growth": [2 * MB, 400 * MB, 2 * MB]},
                        index=["default", "disabled", "freeze"])


def test_the_frontier_plots_full_pauses_and_shows_disabled_for_what_it_is() -> None:
    fig = gc_frontier(_frontier())
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("disabled: no collections") and "+400 MiB" in t for t in texts)
    assert "median full collection" in ax.get_xlabel()
    xs = sorted(float(x) for c in ax.collections for x, _ in c.get_offsets())
    assert 1.2 in xs and 50.0 in xs and xs[0] < 1.2  # disabled sits left of every pause


def test_the_frontier_draws_a_median_dot_only_where_there_are_full_collections() -> None:
    table = _frontier()
    table.loc["freeze", "full_pause_ms"] = 0.0  # young collections only: no median to draw
    ax = gc_frontier(table).axes[0]
    dots = [c for c in ax.collections if c.get_paths() and len(c.get_offsets())
            and c.get_sizes()[0] == 80]
    xs = sorted(float(x) for c in dots for x, _ in c.get_offsets())
    assert 50.0 in xs and 4.0 not in xs and 1.2 not in xs
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("freeze: no full collection, longest pause 4 ms") for t in texts)


def test_panels_appear_only_where_there_is_signal() -> None:
    flat_threads = _proc(True).assign(threads=2)
    fig = threads_fds({"leaky": flat_threads, "fixed": _proc(False).assign(threads=2)})
    assert [ax.get_ylabel() for ax in fig.axes] == ["open file descriptors"]
    assert fig.axes[0].get_title() == "Open file descriptors over time"  # names its panels
    long_run = _proc(False).assign(t_s=lambda d: d.t_s * 10)
    fig = threads_fds({"leaky": _proc(True), "fixed": long_run}, panels=("threads",))
    assert fig.axes[0].get_xlabel().startswith("progress through each run (%")


CASES = {
    "gc_timeline": lambda: gc_timeline(_events(), _heap()),
    "pause_distribution": lambda: pause_distribution(_events()),
    "memory_timeline": lambda: memory_timeline({"leaky": _proc(True), "fixed": _proc(False)}),
    "top_sites": lambda: top_sites(_allocs()),
    "threads_fds": lambda: threads_fds({"leaky": _proc(True), "fixed": _proc(False)}),
    "gc_frontier": lambda: gc_frontier(_frontier()),
    "allocation_bars": lambda: allocation_bars(pd.DataFrame(
        {"allocated": [1.5e9, 3.1e7], "short_lived": [1.4e9, 2.1e7], "at_peak": [3e4, 3e4]},
        index=["leaky", "fixed"])),
    "comparison_bars": lambda: comparison_bars(pd.DataFrame(
        {"function": ["f", "g"], "file": ["x.py", "y.py"], "line": [1, 2],
         "bytes_delta": [40 * MB, -2 * MB]})),
}
UNITS = ("(ms", "(MiB", "(s)", "/ s", "threads", "file descriptors", "iterations", "MiB",
         "bytes")


def test_bars_are_linear_and_label_every_value_in_its_unit_with_the_ratio() -> None:
    fig = allocation_bars(pd.DataFrame({"allocated": [1.5 * 2**30, 31 * MB]},
                                       index=["leaky", "fixed"]))
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear"
    widths = sorted(p.get_width() for p in ax.patches)
    assert widths[1] / widths[0] > 45  # a 49.5x gap is drawn as one
    labels = sorted(t.get_text().strip() for t in ax.texts)
    assert labels[0].startswith("1.5 GiB (") and labels[0].endswith("x fixed)")
    assert labels[1] == "31.0 MiB"
    times = float(labels[0].split("(")[1].split("x")[0])
    assert 45 < times < 55


SCIENTIFIC = re.compile(r"\d[eE][+-]?\d|×10|\u00d710|10\^|\$10")


def _all_text(fig: Figure) -> list[str]:
    fig.canvas.draw()  # tick labels are made at draw time
    out = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            out += [t.get_text() for t in axis.get_ticklabels(which="both")]
            out.append(axis.get_offset_text().get_text())
        out += [t.get_text() for t in ax.texts]
        legend = ax.get_legend()
        out += [t.get_text() for t in legend.get_texts()] if legend else []
    return out


@pytest.mark.parametrize("name", CASES)
def test_no_chart_label_is_in_scientific_notation(name: str) -> None:
    with labkit_style():
        fig = CASES[name]()
    texts = _all_text(fig)
    assert texts and not [t for t in texts if SCIENTIFIC.search(t)], texts


def test_log_ticks_over_small_and_large_values_read_as_plain_numbers() -> None:
    ev = _events().assign(pause_ms=lambda d: d.pause_ms * 40)  # 4 ms to 3,200 ms
    with labkit_style():
        fig = pause_distribution(ev)
    texts = [t for t in _all_text(fig) if t]
    assert "1,000" in texts or any("," in t for t in texts), texts
    assert not [t for t in texts if SCIENTIFIC.search(t)]


@pytest.mark.parametrize("name", CASES)
def test_chart_renders_with_title_and_units(name: str) -> None:
    with labkit_style():
        fig = CASES[name]()
    assert isinstance(fig, Figure)
    axes = [a for a in fig.axes if a.get_visible()]
    assert any(a.get_title() for a in axes), "a title that names what it shows"
    labels = " ".join(a.get_xlabel() + " " + a.get_ylabel() for a in axes)
    assert any(u in labels for u in UNITS), labels
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:8] == b"\x89PNG\r\n\x1a\n" and len(buf.getvalue()) > 5000


def test_top_sites_leaves_out_labkits_own_allocations() -> None:
    fig = top_sites(_allocs())
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert any(lbl.startswith("f (x.py:1)") for lbl in labels)
    assert not any(lbl.startswith(("h ", "_compile_bytecode")) for lbl in labels)


def test_charts_draw_on_a_given_axes_and_leave_pyplot_alone() -> None:
    import matplotlib

    before = dict(matplotlib.rcParams)
    fig = Figure()
    ax = fig.subplots()
    assert pause_distribution(_events(), ax=ax) is fig
    with labkit_style():
        memory_timeline({"x": _proc(True)})
    assert dict(matplotlib.rcParams) == before
    import matplotlib.pyplot as plt

    assert plt.get_fignums() == []


def test_top_sites_drops_near_zero_rows_and_labels_in_human_units() -> None:
    tiny = _allocs().iloc[[0]].assign(function="tiny", line=7, bytes=1024, count=1)
    fig = top_sites(pd.concat([_allocs(), tiny], ignore_index=True))
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels and not any(lbl.startswith("tiny") for lbl in labels)
    assert not any(t.get_text().strip().startswith("0.0 ") for t in fig.axes[0].texts)


def test_a_gc_timeline_without_a_heap_draws_no_empty_panel() -> None:
    fig = gc_timeline(_events())  # %labkit_gc: the kernel's collections, no heap indicator
    panels = [a for a in fig.axes if a.get_ylabel() and "collections / s" not in a.get_ylabel()]
    assert len(panels) == 1 and panels[0].get_xlabel() == "time since start (s)"
    assert all(a.has_data() for a in fig.axes)
    assert len(gc_timeline(_events(), _heap()).axes) == 4  # pauses, rate; RSS, blocks


def test_the_fleet_scatter_labels_every_named_pod() -> None:
    from labkit.charts import fleet_scatter

    runs = pd.DataFrame({"node": [f"pod-{i}" for i in range(8)], "load": range(8),
                         "memray_peak_bytes": [MB * v for v in (90, 80, 70, 60, 5, 4, 3, 2)]})
    fig = fleet_scatter(runs, named=["pod-3", "pod-6"])
    names = sorted(t.get_text().strip() for t in fig.axes[0].texts)
    assert names == ["pod-0", "pod-1", "pod-2", "pod-3", "pod-6"]
