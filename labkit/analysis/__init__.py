"""Analysis: every decision labkit makes about a capture, as pure functions over frames.

* :mod:`~labkit.analysis.gc`: the collector's figures (:func:`gc_summary`);
* :mod:`~labkit.analysis.growth`: growth measured one way (slopes, rises, steady gain);
* :mod:`~labkit.analysis.diff`: runs side by side; :mod:`~labkit.analysis.compare` B
  against A;
* :mod:`~labkit.analysis.clues`: the postmortem's weighing of evidence into clues;
* :mod:`~labkit.analysis.findings`: the verdict, the symptoms and the ranked suspects;
* :mod:`~labkit.analysis.fleet`: the fleet's verdict.

Nothing here reads a file of its own accord or draws; renderers receive these results.
"""

from labkit.analysis.diff import allocation_profile, diff_sites, diff_summaries
from labkit.analysis.gc import GCSummary, gc_summary, max_rate_per_s, pauses_by_generation

__all__ = ["GCSummary", "allocation_profile", "diff_sites", "diff_summaries", "gc_summary",
           "max_rate_per_s", "pauses_by_generation"]
