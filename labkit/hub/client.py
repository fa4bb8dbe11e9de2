"""A trainer's client for the hub's REST API and the learners' kernels (tests, bench).

:class:`HubClient` speaks to JupyterHub with the trainer's token (``trainer-token`` in the
hub's state folder): it starts a learner's server, mints the learner a token, and
:func:`run_cells` runs code in a kernel of that server over the Jupyter websocket protocol,
as JupyterLab's Run All does: in order, stopping at the first error.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field

from labkit.errors import InputError


class HubClient:
    """JupyterHub's REST API at ``url`` (``http://host:port``) with ``token``."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.token = token

    def api(self, method: str, path: str, body: object | None = None,
            token: str | None = None, timeout: float = 30) -> object:
        """One call; returns the decoded JSON (None for an empty body)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}{path}", data=data, method=method,
            headers={"Authorization": f"token {token or self.token}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def user(self, name: str) -> dict:
        """The hub's record of a learner."""
        return self.api("GET", f"/hub/api/users/{name}")  # type: ignore[return-value]

    def start_server(self, name: str, timeout_s: float = 180) -> None:
        """Start a learner's server (if not running) and wait until it is ready."""
        try:
            self.api("POST", f"/hub/api/users/{name}/server")
        except urllib.error.HTTPError as exc:
            if exc.code != 400:  # 400: already running
                raise
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            server = self.user(name).get("servers", {}).get("")
            if server and server.get("ready"):
                return
            time.sleep(0.5)
        raise InputError(f"the server of {name} did not start within {timeout_s:.0f} s")

    def stop_server(self, name: str) -> None:
        """Stop a learner's server."""
        self.api("DELETE", f"/hub/api/users/{name}/server")

    def user_token(self, name: str) -> str:
        """A new API token of the learner's own."""
        reply = self.api("POST", f"/hub/api/users/{name}/tokens",
                         {"note": "labkit trainer", "expires_in": 86400})
        return reply["token"]  # type: ignore[index]


@dataclass
class CellResult:
    """What one cell sent back: its outputs (nbformat-like dicts), the time its first
    output arrived and the time it finished (seconds since :func:`run_cells` began)."""

    outputs: list[dict] = field(default_factory=list)
    first_output_s: float | None = None
    done_s: float = 0.0
    status: str = "ok"


def _message(code: str, session: str) -> dict:
    return {"header": {"msg_id": uuid.uuid4().hex, "username": "labkit", "session": session,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False,
                        "stop_on_error": True}}


async def _run(base: str, name: str, token: str, cells: list[str],
               timeout_s: float) -> list[CellResult]:
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    hub = HubClient(base, token)
    kernel = hub.api("POST", f"/user/{name}/api/kernels", {"name": "python3"})
    kid = kernel["id"]  # type: ignore[index]
    ws_url = base.replace("http", "ws", 1) + f"/user/{name}/api/kernels/{kid}/channels"
    conn = await websocket_connect(HTTPRequest(ws_url, headers={
        "Authorization": f"token {token}"}, connect_timeout=120, request_timeout=120))
    session, results = uuid.uuid4().hex, []
    began = time.monotonic()
    try:
        for code in cells:
            msg = _message(code, session)
            await conn.write_message(json.dumps(msg))
            result = CellResult()
            results.append(result)
            idle = replied = False
            while not (idle and replied):
                left = timeout_s - (time.monotonic() - began)
                if left <= 0:
                    raise TimeoutError(f"{name}: cells still running after {timeout_s} s")
                raw = await asyncio.wait_for(conn.read_message(), left)
                if raw is None:
                    raise ConnectionError(f"{name}: the kernel's websocket closed")
                reply = json.loads(raw)
                if reply.get("parent_header", {}).get("msg_id") != msg["header"]["msg_id"]:
                    continue
                kind, content = reply["msg_type"], reply["content"]
                if kind in ("stream", "display_data", "execute_result", "error"):
                    result.outputs.append({"output_type": kind, **content})
                    if result.first_output_s is None:
                        result.first_output_s = time.monotonic() - began
                elif kind == "status" and content.get("execution_state") == "idle":
                    idle = True
                elif kind == "execute_reply":
                    replied, result.status = True, content.get("status", "ok")
            result.done_s = time.monotonic() - began
            if result.status != "ok":
                break
    finally:
        conn.close()
        hub.api("DELETE", f"/user/{name}/api/kernels/{kid}")
    return results


def run_cells(base: str, name: str, token: str, cells: list[str],
              timeout_s: float = 300) -> list[CellResult]:
    """Run ``cells`` in a new kernel of ``name``'s server (``token``: the learner's), in
    order, stopping after the first that fails; the kernel is shut down afterwards."""
    return asyncio.run(_run(base, name, token, cells, timeout_s))
