"""``labkit lab``: JupyterLab on 127.0.0.1 serving the lab's .py notebooks as notebooks."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read()


def _put(url: str, token: str, body: dict) -> int:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="PUT",
                                 headers={"Authorization": f"token {token}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status


@contextlib.contextmanager
def labkit_lab(tmp_path: Path) -> Iterator[tuple[Path, str, str]]:
    """``labkit lab`` on a fresh copy of the notebooks, as a learner starts it (a private
    Jupyter config, runtime and settings); yields (folder, base URL, token)."""
    port, token = _free_port(), secrets.token_hex(16)
    folder = tmp_path / "class"
    cp = subprocess.run([sys.executable, "-m", "labkit", "notebooks", str(folder)],
                        capture_output=True, text=True)
    assert cp.returncode == 0, cp.stderr
    env = {**os.environ, "JUPYTER_TOKEN": token, "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
           "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "ws")}
    server = subprocess.Popen(
        [sys.executable, "-m", "labkit", "lab", str(folder), "--port", str(port),
         "--no-browser"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
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
            assert server.poll() is None, "labkit lab exited (as root it must not)"
            assert time.monotonic() < deadline, "labkit lab did not start in 90 s"
            time.sleep(0.5)
        yield folder, base, token
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_labkit_lab_serves_py_notebooks_as_notebooks_and_saving_leaves_no_diff(
        tmp_path: Path) -> None:
    with labkit_lab(tmp_path) as (folder, base, token):
        source = (folder / "10-pool-misuse.py").read_bytes()
        status, body = _get(f"{base}/api/contents/10-pool-misuse.py?type=notebook&content=1",
                            token)
        model = json.loads(body)
        assert status == 200 and model["type"] == "notebook"
        cells = model["content"]["cells"]
        assert len(cells) > 8
        assert any("parameters" in c["metadata"].get("tags", []) for c in cells)
        # a double-click opens a .py file in jupytext's notebook view
        _, body = _get(f"{base}/lab/api/settings/@jupyterlab/docmanager-extension:plugin",
                       token)
        assert '"python": "Jupytext Notebook"' in json.dumps(json.loads(body))
        # run and save, as JupyterLab would: outputs and run metadata, then a PUT
        nb = model["content"]
        nb["metadata"]["language_info"] = {"name": "python", "version": "3.11"}
        for c in cells:
            c["metadata"]["execution"] = {"iopub.status.idle": "2026-11-29T12:00:00Z"}
            if c["cell_type"] == "code":
                c["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "hi\n"}]
        assert _put(f"{base}/api/contents/10-pool-misuse.py", token,
                    {"type": "notebook", "format": "json", "content": nb}) == 200
        assert (folder / "10-pool-misuse.py").read_bytes() == source  # no diff for git
        status, page = _get(f"{base}/lab/tree/10-pool-misuse.py", token)
        assert status == 200 and b"JupyterLab" in page
