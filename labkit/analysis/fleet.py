"""The fleet's verdict: which line of code grew on several nodes, and whether those nodes
stand out from the rest. Pure: it reads the answers of the fleet's queries
(:class:`labkit.fleetdb.Fleet`), never the runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class FleetVerdict:
    """One sentence, and what it rests on: the site that grew on the most nodes (None if no
    site grew on two), the nodes it grew on, and which of those are outliers."""

    text: str
    nodes: int
    site: dict[str, Any] | None = None  # function, file, line
    grew_on: list[str] = field(default_factory=list)
    outliers: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The verdict as JSON-ready fields."""
        return asdict(self)


def fleet_verdict(nodes: int, sites: pd.DataFrame, outliers: pd.DataFrame,
                  grew_on: list[str], *, memory: bool = True) -> FleetVerdict:
    """The verdict over ``nodes`` nodes from the growing sites (most nodes first), the
    outlier rows (``node`` column) and the nodes where the first site grew; ``memory``
    False: no run has a memray capture, so no site's growth is known."""
    if not memory:
        return FleetVerdict("no run in this fleet has a memray capture, so no site's growth "
                            "is known (capture with --memray)", nodes)
    if not len(sites):
        return FleetVerdict("no site of your code grew on two nodes or more", nodes)
    s = sites.iloc[0]
    outlying = sorted(set(outliers.node) & set(grew_on)) if len(outliers) else []
    text = (f"{s.function} ({s.file}:{s.line}) grew on {s.nodes_growing} of {nodes} nodes "
            f"({', '.join(grew_on)})")
    if outlying:
        text += (f"; {'all' if len(outlying) == len(grew_on) else len(outlying)} of them "
                 f"{'is an outlier' if len(outlying) == 1 else 'are outliers'}")
    site = {"function": str(s.function), "file": str(s.file), "line": int(s.line)}
    return FleetVerdict(text, nodes, site, list(grew_on), outlying)
