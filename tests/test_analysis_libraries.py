"""A leak inside an installed package, captured for real: the package's site is named first,
with its version read from the dist-info beside it and the user's line as its caller, and the
structure that keeps growing outranks the package's short-lived churn."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import labkit

pytestmark = pytest.mark.slow

CACHE = """
_seen = {}

def remember(key, body):
    _seen[key] = bytes(body[:20_000])   # kept per request: the leak

def render(n):
    out = b""
    for i in range(n):
        out += b"x" * 50_000            # built and thrown away: churn
    return len(out)
"""

CLIENT = """
from leakylib.cache import remember, render

class Client:
    def get(self, key):
        body = bytes(40_000)
        remember(key, body)
        return render(40)
"""

APP = """
import sys, time
sys.path.insert(0, SITE)
from leakylib.client import Client

def worker(client, i):
    return client.get(i)

client = Client()
for i in range(400):
    worker(client, i)
    time.sleep(0.004)
"""


def test_a_leak_inside_a_package_names_the_package_site_first(tmp_path: Path) -> None:
    # GIVEN an installed package (with its dist-info) whose cache grows on every request and
    # which churns large temporary buffers, called from the user's worker
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    (site / "leakylib").mkdir(parents=True)
    (site / "leakylib" / "__init__.py").write_text("")
    (site / "leakylib" / "cache.py").write_text(CACHE)
    (site / "leakylib" / "client.py").write_text(CLIENT)
    info = site / "leakylib-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: leakylib\nVersion: 1.2.3\n")
    (info / "top_level.txt").write_text("leakylib\n")
    app = tmp_path / "app.py"
    app.write_text(APP.replace("SITE", repr(str(site))))
    # WHEN it is captured and weighed
    cp = labkit("capture", "--memray", "--out", str(tmp_path / "run"), "--", sys.executable,
                str(app))
    assert cp.returncode == 0, cp.stderr
    out = tmp_path / "findings.json"
    cp = labkit("postmortem", str(tmp_path / "run"), "--json", str(out))
    assert cp.returncode == 0, cp.stderr
    doc = json.loads(out.read_text())
    # THEN the top suspect is the package's growing site, named with version and caller
    top = doc["suspects"][0]
    assert top["library"]["package"] == "leakylib" and top["library"]["version"] == "1.2.3"
    assert top["library"]["site"]["function"] == "remember"
    assert top["library"]["entry"]["function"].endswith("get")  # memray: no qualname
    assert (top["function"], Path(top["file"]).name) == ("worker", "app.py")
    first = cp.stdout.splitlines()[0]
    assert "inside leakylib 1.2.3: remember (leakylib/cache.py:" in first
    assert "called from your worker (app.py:7)" in first
    assert any(e.startswith("memory growth") for e in top["explains"])
    # the verdict is about the growth it explains; the package's churn is its own symptom,
    # ranked below what keeps growing
    assert doc["verdict"].startswith("heap keeps growing; ") and "explains memory growth" in \
        doc["verdict"]
    assert any(s["what"].startswith("allocation rate:") for s in doc["symptoms"])
    churn = next(s for s in doc["suspects"] if s["kind"] == "short-lived allocations")
    assert churn["library"]["site"]["function"] == "render" and churn["rank"] > 1
