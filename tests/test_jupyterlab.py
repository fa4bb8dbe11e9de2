"""JupyterLab starts on 127.0.0.1 and serves a notebook from notebooks/ as a notebook."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read()


def test_jupyter_lab_serves_a_py_percent_notebook_as_a_notebook(tmp_path: Path) -> None:
    port, token = _free_port(), secrets.token_hex(16)
    exe = Path(sys.executable).with_name("jupyter")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg")}
    server = subprocess.Popen(
        [str(exe), "lab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={ROOT}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if _get(f"{base}/api/status", token)[0] == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None, "jupyter lab exited"
            assert time.monotonic() < deadline, "jupyter lab did not start in 90 s"
            time.sleep(0.5)
        status, body = _get(f"{base}/api/contents/notebooks/10-pool-misuse.py"
                            "?type=notebook&content=1", token)
        model = json.loads(body)
        assert status == 200 and model["type"] == "notebook"
        cells = model["content"]["cells"]
        assert len(cells) > 8
        assert any("parameters" in c["metadata"].get("tags", []) for c in cells)
        status, page = _get(f"{base}/lab/tree/notebooks/10-pool-misuse.py", token)
        assert status == 200 and b"JupyterLab" in page
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
