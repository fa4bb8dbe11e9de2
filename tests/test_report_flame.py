"""labkit's flamegraph data: a tree of stacks, pruned, safe to inline in a page."""

from __future__ import annotations

import json
import re

from labkit.report.flame import flame_html, flame_tree

APP = "/srv/app/handlers.py"
LIB = "/usr/lib/python3.11/json/encoder.py"


def test_stacks_merge_into_one_tree_root_first_with_values_summed() -> None:
    stacks = [(((LIB, 10, "encode"), (APP, 5, "handle"), (APP, 1, "main")), 60.0),
              (((APP, 7, "render"), (APP, 1, "main")), 30.0),
              (((APP, 9, "tiny"), (APP, 1, "main")), 0.2),  # under min_share: pruned
              (((APP, 1, "main"),), 0.0)]  # nothing: ignored
    tree = flame_tree(stacks, root="heap", min_share=0.01)
    assert (tree["n"], tree["v"]) == ("heap", 90.2)
    (main,) = tree["c"]
    assert (main["n"], main["f"], main["v"], main["u"]) == ("main", "handlers.py:1", 90.2, 1)
    assert [c["n"] for c in main["c"]] == ["handle", "render"]  # largest first, tiny dropped
    encode = main["c"][0]["c"][0]
    assert (encode["n"], encode["u"], "c" in encode) == ("encode", 0, False)


def test_the_inline_data_cannot_close_its_script_element() -> None:
    tree = flame_tree([(((APP, 1, "</script><script>alert(1)"),), 1.0)])
    page = flame_html(tree, title="t <b>", unit="bytes")
    data = re.search(r'class="lk-flame-data">(.*?)</script>', page, re.S).group(1)
    assert json.loads(data)["c"][0]["n"] == "</script><script>alert(1)"
    assert "t &lt;b&gt;" in page and "<script>alert" not in page
