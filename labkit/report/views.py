"""What a postmortem's evidence shows, chosen once: its charts and its flamegraphs.

The postmortem page, the 90-postmortem notebook and the ``%%labkit_capture`` magic all
show :func:`charts` and :func:`flames` of the same :class:`~labkit.frames.evidence.Evidence`,
so the three faces never disagree on what is worth drawing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labkit.charts import gc_timeline, labkit_style, memory_timeline, threads_fds, top_sites
from labkit.frames.memray import own_allocations
from labkit.report.flame import allocation_stacks, flame_tree

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from labkit.analysis.findings import Findings
    from labkit.frames.evidence import Evidence


@dataclass(frozen=True)
class Chart:
    """A drawn chart and its alt text (None: the chart's own panels describe it)."""

    figure: Figure
    alt: str | None


@dataclass(frozen=True)
class Flame:
    """A flamegraph's tree (:func:`labkit.report.flame.flame_tree`), title and unit."""

    tree: dict[str, Any]
    title: str
    unit: str


def charts(ev: Evidence) -> list[Chart]:
    """The heap over time and the top sites at the peak (memray), threads and fds (process
    samples), GC pauses above RSS (GC trace): each only if captured and not empty."""
    out = []
    with labkit_style():
        if ev.memray is not None and len(ev.memray.memory):
            out.append(Chart(memory_timeline({"heap": ev.memray.memory}, column="heap_bytes",
                                             title="memray: heap over time"),
                             "Line chart of the heap (MiB) over the run, from memray's "
                             "snapshots"))
            peak = own_allocations(ev.memray.allocations_at_peak)
            if len(peak):
                out.append(Chart(top_sites(peak), "Bar chart of the ten allocation sites "
                                 "holding the most memory at the high-water mark"))
        if ev.proc is not None and len(ev.proc):
            out.append(Chart(threads_fds(ev.proc), None))
        if ev.gc_events is not None and len(ev.gc_events):
            out.append(Chart(gc_timeline(ev.gc_events, ev.heap),
                             "Scatter of each garbage collection's pause by generation, "
                             "above the process's RSS over the run"))
    return out


def memray_flame(capture: Any, view: str = "peak") -> Flame:
    """The memory held at the peak (``view="peak"``) or the short-lived allocations
    (``"churn"``) of a memray capture, labkit's and import-time allocations left out."""
    if view not in ("peak", "churn"):
        raise ValueError("view must be one of ['churn', 'peak']")
    title = {"peak": "Memory held at the peak", "churn": "Short-lived allocations"}[view]
    df = capture.allocations_at_peak if view == "peak" else capture.churn
    return Flame(flame_tree(allocation_stacks(df), root=title.lower()),
                 f"{title} (memray)", "bytes")


def pyspy_flame(pyspy: Any) -> Flame:
    """The CPU samples of a py-spy profile."""
    s = pyspy.samples
    return Flame(flame_tree(zip(s["frames"], s["count"].astype(float), strict=True),
                            root="CPU samples"), "CPU (py-spy)", "samples")


def flames(ev: Evidence, found: Findings) -> list[Flame]:
    """Memory at the peak (memray), the short-lived allocations when churn is a symptom,
    and CPU (py-spy): each only if it holds anything."""
    out = []
    if ev.memray is not None:
        out.append(memray_flame(ev.memray, "peak"))
        if any(s.kind == "allocation churn" for s in found.symptoms):
            out.append(memray_flame(ev.memray, "churn"))
    if ev.pyspy is not None and ev.pyspy.speedscope_path is not None:
        out.append(pyspy_flame(ev.pyspy))
    return [f for f in out if f.tree["v"]]
