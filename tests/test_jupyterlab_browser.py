"""A learner's path through JupyterLab in a real browser: `labkit lab`, double-click a
notebook, Run All; then a new notebook whose cell magic profiles a leaky cell."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.test_jupyterlab import labkit_lab

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
ERRORS = '[data-mime-type="application/vnd.jupyter.stderr"]'


def _menu(page, top: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=top).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()


def _wait_idle(page, timeout_s: float) -> None:
    """Until no cell is queued or running ([*]) and the kernel says idle."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        busy = page.evaluate(
            "Array.from(document.querySelectorAll('.jp-InputPrompt'))"
            ".some(e => e.textContent.includes('*'))")
        if not busy:
            return
        page.wait_for_timeout(500)
    raise AssertionError(f"cells still running after {timeout_s} s")


def test_a_learner_runs_a_notebook_and_profiles_a_cell(tmp_path: Path) -> None:
    assert CHROMIUM.exists(), "no Chromium: `make test` installs it (scripts/install-chromium)"
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)

    with labkit_lab(tmp_path) as (_, base, token), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM),
                                     args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{base}/lab?token={token}")
        item = page.locator(".jp-DirListing-item", has_text="00-start-here.py")
        item.wait_for(timeout=60_000)
        item.dblclick()  # opens as a notebook: labkit lab's default viewer for .py
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
        page.locator(".jp-Notebook-ExecutionIndicator, .jp-Toolbar-kernelName").first \
                .wait_for(timeout=30_000)
        page.wait_for_timeout(2000)  # the kernel starts
        _menu(page, "Run", "Run All Cells")
        page.wait_for_timeout(1000)
        _wait_idle(page, 180)
        panel = page.locator(".jp-NotebookPanel:visible")
        # cells scrolled out of view are placeholders; Run All stops at an error, so the
        # last cell numbered after every code cell means each one ran, in order
        code_cells = panel.locator(".jp-CodeCell").count()
        last = panel.locator(".jp-CodeCell .jp-InputPrompt").last.inner_text()
        assert code_cells >= 6 and last.strip() == f"[{code_cells}]:", (code_cells, last)
        assert panel.locator(ERRORS).count() == 0, panel.locator(ERRORS).all_inner_texts()
        charts = panel.locator("img.labkit-chart")
        assert charts.count() >= 2
        assert all(page.evaluate("e => e.complete && e.naturalWidth > 0", c.element_handle())
                   for c in charts.all())
        assert page.locator("text=Jupyter news").count() == 0  # no call to the network
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-00-start-here.png"))

        _menu(page, "File", "New Text Notebook")  # a .py notebook, like the lab's
        page.locator(".lm-Menu-itemLabel",
                     has_text="New Python Text Notebook with Percent Format").first.click()
        page.wait_for_timeout(3000)
        select = page.locator(".jp-Dialog button.jp-mod-accept")
        if select.count():  # the kernel chooser, when JupyterLab asks
            select.first.click()
        editor = page.locator(".jp-NotebookPanel:visible .jp-CodeCell .cm-content").last
        editor.wait_for(timeout=30_000)
        page.wait_for_timeout(2000)
        editor.click()
        page.keyboard.type("%load_ext labkit")
        page.keyboard.press("Shift+Enter")
        page.keyboard.type("%%labkit_capture --memray --gc leak\n")
        page.keyboard.type("def hoard(): return [bytearray(64 * 1024) for _ in range(300)]\n")
        page.keyboard.type("kept = hoard()")
        page.keyboard.press("Shift+Enter")
        page.wait_for_timeout(1000)
        _wait_idle(page, 120)
        out = page.locator(".jp-NotebookPanel:visible .jp-CodeCell").nth(1)
        flame = out.locator(".lk-flame")
        flame.first.wait_for(state="attached", timeout=30_000)
        text = out.inner_text()
        assert "leak = labkit.load(" in text and "the top suspect is hoard (cell.py:2)" \
                in text, text[:500]
        assert flame.first.locator(".lk-fn").count() >= 3  # the viewer drew its frames
        assert page.locator(".jp-NotebookPanel:visible").locator(ERRORS).count() == 0
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-cell-magic.png"))
        browser.close()


def test_run_all_that_stops_for_a_prediction_shows_where_and_why(tmp_path: Path) -> None:
    """Run All on a scenario with no prediction set: the stopping cell is selected and in
    view, and a notification says what to do (a screenshot is kept as an artifact)."""
    assert CHROMIUM.exists(), "no Chromium: `make test` installs it (scripts/install-chromium)"
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with labkit_lab(tmp_path) as (_, base, token), sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM),
                                     args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{base}/lab?token={token}")
        item = page.locator(".jp-DirListing-item", has_text="10-pool-misuse.py")
        item.wait_for(timeout=60_000)
        item.dblclick()
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=60_000)
        page.wait_for_timeout(3000)  # the kernel starts
        assert page.evaluate("typeof window.jupyterapp") == "object"  # labkit lab exposes it
        _menu(page, "Run", "Run All Cells")
        page.wait_for_timeout(1000)
        _wait_idle(page, 120)
        toast = page.locator(".Toastify__toast", has_text="Predict first")
        toast.first.wait_for(timeout=20_000)
        page.wait_for_timeout(6500)  # the stop's script selects its cell once Run All settles
        panel = page.locator(".jp-NotebookPanel:visible")
        active = panel.locator(".jp-Cell.jp-mod-active")
        assert active.count() == 1
        assert "Predict first: set prediction_mib" in active.inner_text()
        box, view = active.bounding_box(), page.viewport_size
        assert box is not None and 0 <= box["y"] < view["height"] and box["height"] > 0, box
        assert toast.first.is_visible()
        # nothing after the stopping cell ran: the cells below have empty prompts
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-predict-first-stop.png"))
        browser.close()
