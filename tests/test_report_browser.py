"""Reports in a real browser: headless Chromium (Debian's), every network request blocked."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
FRAME_PROBE = """() => {
  // the largest drawing in the frame: memray's chart or py-spy's flamegraph root
  let best = {tag: null, w: 0, h: 0};
  for (const e of document.querySelectorAll('svg, canvas')) {
    const r = e.getBoundingClientRect();
    if (r.width * r.height > best.w * best.h) best = {tag: e.tagName, w: r.width, h: r.height};
  }
  best.shapes = document.querySelectorAll('rect, path').length;
  return best;
}"""


def test_every_report_opens_offline_with_no_errors(live_reports: Path) -> None:
    assert CHROMIUM.exists(), "no Chromium: `make test` installs it (scripts/install-chromium)"
    from playwright.sync_api import sync_playwright

    pages = sorted(live_reports.glob("*.html"))
    assert len(pages) >= 9  # eight reports and the index
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
                page.goto(path.as_uri(), wait_until="load")
                page.wait_for_timeout(800)
                assert requests == [], (path.name, requests[:3])
                assert errors == [], (path.name, errors[:3])
                images = page.evaluate(
                    "Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
                assert all(images), (path.name, images)
                iframes = page.query_selector_all("iframe.labkit-flamegraph")
                for el in iframes:
                    frame = el.content_frame()
                    probe = frame.evaluate(FRAME_PROBE)
                    assert probe["w"] > 300 and probe["h"] > 100, (path.name, probe)
                    assert probe["shapes"] > 20, (path.name, probe)
                    flamegraphs += 1
                if path.name == "10-pool-misuse.html":
                    ARTIFACTS.mkdir(exist_ok=True)
                    page.screenshot(path=str(ARTIFACTS / "report-10-pool-misuse.png"),
                                    full_page=False)
                page.close()
        finally:
            browser.close()
    assert flamegraphs >= 5  # memray in 10, 20, 90; py-spy in 60, 90
    assert (ARTIFACTS / "report-10-pool-misuse.png").stat().st_size > 20_000
    shutil.copy(ARTIFACTS / "report-10-pool-misuse.png", live_reports / "screenshot.png")
