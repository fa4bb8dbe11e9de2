"""Charts: DataFrame -> matplotlib Figure. Each takes ``ax=None`` (or ``axes=None``) and
returns the Figure; none calls ``plt.show()``. Styling is explicit: wrap calls in
:func:`labkit.charts.style.labkit_style`. Nothing here touches matplotlib's global state.
"""

from labkit.charts.compare import comparison_bars, variant_bars
from labkit.charts.fleet import fleet_scatter
from labkit.charts.gc import gc_frontier, gc_timeline, pause_distribution
from labkit.charts.memory import allocation_bars, memory_timeline, top_sites
from labkit.charts.process import threads_fds
from labkit.charts.style import labkit_style

__all__ = [
    "allocation_bars",
    "comparison_bars",
    "fleet_scatter",
    "gc_frontier",
    "gc_timeline",
    "labkit_style",
    "memory_timeline",
    "pause_distribution",
    "threads_fds",
    "top_sites",
    "variant_bars",
]
