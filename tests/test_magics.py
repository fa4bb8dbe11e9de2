"""The magics in a real Jupyter kernel: a captured cell, and the kernel's own collections."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

pytestmark = pytest.mark.slow

LEAKY_CELL = """%%labkit_capture --gc --memray leak
import time

kept = []

def hoard():
    for _ in range(300):
        kept.append(bytearray(64 * 1024))   # 19 MiB kept for good
        time.sleep(0.002)

hoard()
"""


def test_magics_capture_a_cell_and_trace_the_kernels_own_collections(tmp_path: Path) -> None:
    import papermill

    nb = new_notebook(cells=[
        new_code_cell("%load_ext labkit"),
        new_code_cell(LEAKY_CELL),
        new_code_cell("top = leak.memray.allocations_at_peak.iloc[0]\n"
                      "print('TOP', top.function, top.line, int(top.bytes), leak.path)"),
        new_code_cell("%labkit_gc on"),
        new_code_cell("import gc\nfor _ in range(3):\n    gc.collect()"),
        new_code_cell("%labkit_gc"),
        new_code_cell("from labkit.magics import KERNEL_GC\n"
                      "ev = KERNEL_GC.events()\n"
                      "print('FULL', int(((ev.generation == 2) & ~ev.in_tracer).sum()))"),
        new_code_cell("%labkit_gc off"),
        new_code_cell("from labkit import notebook as nb\nnb.gc_controls()"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                "language": "python"}})
    out = tmp_path / "magics.ipynb"
    papermill.execute_notebook(nb, str(out), kernel_name="python3", progress_bar=False,
                               cwd=tmp_path)
    done = nbformat.read(out, as_version=4)
    outputs = [o for c in done.cells for o in c.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "leak = labkit.load(" in text
    top = next(line for line in text.splitlines() if line.startswith("TOP "))
    _, function, line, size, path = top.split(" ", 4)
    assert (function, line) == ("hoard", "8") and int(size) >= 18 * 2**20
    from labkit import load

    assert load(path).memray.metadata.peak_memory >= 18 * 2**20  # a run like any other
    html = json.dumps([o.get("data", {}) for o in outputs])
    assert "hoard" in html and "lk-flame" in html  # the suspects and the flamegraph shown
    full = next(line for line in text.splitlines() if line.startswith("FULL "))
    assert int(full.split()[1]) >= 3  # the three gc.collect() calls, seen in the kernel
    assert "This kernel:" in html and "collections" in html
    assert "application/vnd.jupyter.widget-view+json" in html  # the gc-tuning control


def test_the_gc_control_reruns_the_workload_with_the_chosen_thresholds() -> None:
    from labkit import notebook as nb

    low, low_fig = nb.run_gc_setting((5, 10, 10), False)
    high, high_fig = nb.run_gc_setting((50_000, 20, 20), True)
    assert low.gc_meta["python"]["gc_threshold"] == [5, 10, 10]
    assert high.manifest["params"]["values"]["freeze"] == 1
    assert low_fig["collections_per_1000"] >= 20 * high_fig["collections_per_1000"]
