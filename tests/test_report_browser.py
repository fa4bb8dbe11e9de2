"""Reports in a real browser: headless Chromium (Debian's), every network request blocked."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
MAX_REPORT_BYTES = 1_500_000
DATASETS = Path(__file__).resolve().parent.parent / "datasets"


def _check_flamegraph(fig: Any) -> None:
    """A flamegraph is drawn, its search marks frames and states their share, a click
    zooms (the frames above it stay as context) and Reset zooms out."""
    box = fig.bounding_box()
    assert box["width"] > 600 and box["height"] > 60, box
    frames = fig.query_selector_all(".lk-fn")
    assert len(frames) >= 5
    fig.query_selector("input").fill("py")
    assert "%" in fig.query_selector(".lk-flame-match").inner_text()
    assert fig.query_selector_all(".lk-hit")
    fig.query_selector("input").fill("")
    deep = fig.query_selector_all(".lk-fn")[2]
    deep.click()
    assert fig.query_selector_all(".lk-anc")  # zoomed: its callers shown above it
    fig.query_selector("button").click()
    assert not fig.query_selector_all(".lk-anc")


def test_every_report_opens_offline_with_no_errors(live_reports: Path, tmp_path: Path) -> None:
    assert CHROMIUM.exists(), "no Chromium: `make test` installs it (scripts/install-chromium)"
    from playwright.sync_api import sync_playwright

    from tests.conftest import labkit

    postmortem = tmp_path / "postmortem.html"
    cp = labkit("postmortem", "--memray", str(DATASETS / "pool-misuse/leaky/memray.bin"),
                "--pyspy", str(DATASETS / "gateway-load/leaky/pyspy.speedscope.json"),
                "--html", str(postmortem))
    assert cp.returncode == 0, cp.stderr
    import nbformat

    from labkit.report.html import to_html

    reader = tmp_path / "reader-10-pool-misuse.html"  # the reader's rendering of a report
    reader.write_text(to_html(nbformat.read(live_reports / "10-pool-misuse.ipynb",
                                            as_version=4), "Pool misuse", reader=True))
    readers = {postmortem.name, reader.name}
    pages = [*sorted(live_reports.glob("*.html")), postmortem, reader]
    assert len(pages) >= 11  # eight reports, the index, a postmortem, a reader's report
    flamegraphs = 0
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            for path in pages:
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                requests: list[str] = []
                errors: list[str] = []
                page.on("console", lambda m, e=errors: e.append(m.text)
                        if m.type == "error" else None)
                page.on("pageerror", lambda exc, e=errors: e.append(str(exc)))

                def route(r, reqs=requests) -> None:
                    if r.request.url.startswith(("file://", "data:", "about:")):
                        r.continue_()
                    else:
                        reqs.append(r.request.url)
                        r.abort()

                page.route("**/*", route)
                assert path.stat().st_size <= MAX_REPORT_BYTES, path.name
                page.goto(path.as_uri(), wait_until="load")
                page.wait_for_timeout(800)
                images = page.evaluate(
                    "Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
                assert all(images), (path.name, images)
                assert not page.query_selector_all(
                    '[data-mime-type="application/vnd.jupyter.stderr"]'), path.name
                assert "Warning:" not in page.inner_text("body"), path.name
                if path.name in readers:  # no code, no temporary path
                    assert not page.query_selector_all(".jp-InputArea-editor"), path.name
                    assert "/tmp/labkit-" not in page.inner_text("body"), path.name
                for fig in page.query_selector_all("figure.lk-flame"):
                    _check_flamegraph(fig)
                    flamegraphs += 1
                assert requests == [], (path.name, requests[:3])
                assert errors == [], (path.name, errors[:3])
                if path.name in ("10-pool-misuse.html", reader.name):
                    ARTIFACTS.mkdir(exist_ok=True)
                    page.screenshot(path=str(ARTIFACTS / f"report-{path.stem}.png"),
                                    full_page=False)
                page.close()
        finally:
            browser.close()
    assert flamegraphs >= 7  # memray in 10, 20, 90; py-spy in 60, 90; the postmortem's two
    assert (ARTIFACTS / "report-10-pool-misuse.png").stat().st_size > 20_000
    shutil.copy(ARTIFACTS / "report-10-pool-misuse.png", live_reports / "screenshot.png")
