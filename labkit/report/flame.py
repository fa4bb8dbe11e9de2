"""Flamegraphs for reports and notebooks: a tree of stacks, drawn by labkit's own viewer.

The viewer (``assets/flame.js``, ``assets/flame.css``, about 5 KB) has no dependencies and
makes no request: click a frame to zoom, search to mark frames and read their share. The
page carries the tree as JSON, pruned to the frames that hold at least ``min_share`` of
the total, so a flamegraph of millions of allocations stays a few tens of KB. Frames in the
user's own code (:mod:`labkit.attribution`) are drawn in a warm colour, others in grey.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from labkit.attribution import DEFAULT, Attribution, Frame
from labkit.report.pages import render, trusted

MAX_DEPTH = 48


def viewer_css() -> str:
    """The viewer's style sheet (package data)."""
    return resources.files("labkit.report").joinpath("assets", "flame.css").read_text("utf-8")


def viewer_js() -> str:
    """The viewer's script (package data); it sets up every flamegraph on the page, and
    run again, the ones added since."""
    return resources.files("labkit.report").joinpath("assets", "flame.js").read_text("utf-8")


def flame_tree(stacks: Iterable[tuple[Sequence[Frame], float]], *, root: str = "all",
               min_share: float = 0.002, how: Attribution = DEFAULT) -> dict[str, Any]:
    """The tree of ``(frames, value)`` pairs, frames innermost first as ``(file, line,
    function)``: ``{"n", "f", "v", "u", "c"}`` per node (name, ``file:line``, value, 1 in
    the user's code, children by value). Nodes under ``min_share`` of the total are
    dropped (their value stays counted in their parent)."""
    top: dict[str, Any] = {"n": root, "f": "", "v": 0.0, "u": 0, "k": {}}
    for frames, value in stacks:
        if value <= 0:
            continue
        top["v"] += value
        node = top
        for frame in list(reversed(frames))[:MAX_DEPTH]:
            file, line, fn = frame
            key = (fn, file, line)
            child = node["k"].get(key)
            if child is None:
                child = {"n": fn, "f": f"{Path(file).name}:{line}", "v": 0.0,
                         "u": int(how.is_user(frame)), "k": {}}
                node["k"][key] = child
            child["v"] += value
            node = child
    floor = top["v"] * min_share

    def done(node: dict[str, Any]) -> dict[str, Any]:
        kids = sorted((k for k in node.pop("k").values() if k["v"] >= floor),
                      key=lambda k: -k["v"])
        out = {k: node[k] for k in ("n", "f", "u")}
        out["v"] = round(node["v"], 1)
        if kids:
            out["c"] = [done(k) for k in kids]
        return out

    return done(top)


def flame_html(tree: dict[str, Any], *, title: str, unit: str, note: str = "",
               viewer: bool = True) -> str:
    """An HTML fragment: the flamegraph of ``tree`` (``unit``: ``bytes`` or a count such
    as ``samples``) under ``title``; with ``viewer``, the viewer's style before it and its
    script after it (what a notebook output needs; a page can include them once instead,
    the script after the last flamegraph)."""
    data = json.dumps(tree, separators=(",", ":")).replace("<", "\\u003c")  # inert in <script>
    return render("flame.html.j2", title=title, unit=unit, note=note, data=trusted(data),
                  css=trusted(viewer_css()) if viewer else "",
                  script=trusted(viewer_js()) if viewer else "")


def allocation_stacks(df: Any, column: str = "bytes") -> list[tuple[Sequence[Frame], float]]:
    """``(frames, value)`` pairs from a memray frame (rows made by labkit's tracer or while
    importing modules left out: they are not the program's)."""
    from labkit.frames.memray import own_allocations

    d = own_allocations(df)
    return list(zip(d["frames"], d[column].astype(float), strict=True))
