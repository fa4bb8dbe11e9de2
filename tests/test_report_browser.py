"""Reports in a real browser: headless Chromium (Debian's), every network request blocked."""

from __future__ import annotations

import re
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
    body = fig.query_selector(".lk-flame-body").bounding_box()
    boxes = [f.bounding_box() for f in frames]
    assert min(b["width"] for b in boxes) >= 0.01 * body["width"] - 1  # no 1-pixel tails
    deepest = max(b["y"] + b["height"] for b in boxes) - body["y"]
    assert body["height"] - deepest < 18 + 4, (body, deepest)  # no empty rows below
    fig.query_selector("input").fill("py")
    assert "%" in fig.query_selector(".lk-flame-match").inner_text()
    assert fig.query_selector_all(".lk-hit")
    fig.query_selector("input").fill("")
    deep = fig.query_selector_all(".lk-fn")[2]
    deep.click()
    assert fig.query_selector_all(".lk-anc")  # zoomed: its callers shown above it
    fig.query_selector("button").click()
    assert not fig.query_selector_all(".lk-anc")


SCIENTIFIC = re.compile(r"\b\d+(?:\.\d+)?[eE][+-]?\d+\b"
                        r"|\u00d7\s?10[\u207b\u00b9\u00b2\u00b3\u2070-\u2079]")
LESSONS = {"20-buffer-growth": "total bytes allocated (memray)",
           "60-gateway-load": "threads started by the proxy",
           "10-pool-misuse": "retained bytes at end", "40-thread-leak": "threads",
           "50-fd-leak": "open fds added while serving",
           "30-gc-tuning": "collections per 1000 iterations"}


def _check_index_cards(page) -> None:
    """Each scenario's card leads with its lesson row (the signature's declared one, with
    its figures and their ratio); the postmortem and fleet cards with a headline."""
    cards = {c.query_selector("h2 a").get_attribute("href").removesuffix(".html"): c
             for c in page.query_selector_all(".card")}
    for stem, metric in LESSONS.items():
        first = cards[stem].query_selector("p")
        assert "lesson" in (first.get_attribute("class") or ""), stem
        assert first.inner_text().startswith(metric), (stem, first.inner_text())
        assert " against " in first.inner_text(), (stem, first.inner_text())
    growth = cards["20-buffer-growth"].query_selector("p.lesson").inner_text()
    assert re.search(r"\(\d+x\)$", growth), growth  # the ratio, said
    for stem in ("90-postmortem", "95-fleet"):
        first = cards[stem].query_selector("p")
        assert first.get_attribute("class") == "lesson" and first.inner_text(), stem
    assert re.match(r"\d+ of \d+ pods grew at the same line",
                    cards["95-fleet"].query_selector("p.lesson").inner_text())


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
                body = page.inner_text("body")
                assert "Warning:" not in body, path.name
                sci = SCIENTIFIC.findall(body)  # plain grouped numbers, never 1.17e+03
                assert not sci, (path.name, sci[:3])
                if path.name in readers:  # no code, no temporary path, no instructions
                    assert not page.query_selector_all(".jp-InputArea-editor"), path.name
                    assert "/tmp/" not in page.content(), path.name
                    assert "Exercise check" not in body and "## Predict" not in body
                if path.name == "index.html":
                    _check_index_cards(page)
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
