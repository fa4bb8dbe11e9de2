"""gateway-load: a small HTTP proxy under a bounded loopback load.

The essay's incident (2.3): a Go ``net/http`` gateway measured under ``wrk`` against nginx
and Traefik: requests/s, latency, memory. Here the scenario process is a stdlib proxy
(py-spy attaches to it while it serves), in front of an upstream process, both on
127.0.0.1, driven by a load-generator process bounded in request count and time. Leaky:
every request gets a new thread and a new upstream connection. Fixed: a bounded worker
pool, each worker keeping one keep-alive connection to the upstream.
"""

from __future__ import annotations

import http.client
import json
import socketserver
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from typing import Any

from labkit.scenarios.base import Metrics, Param, ScenarioSpec, Signature, row, run_main

SPEC = ScenarioSpec(
    name="gateway-load",
    title="A proxy under load: a thread and a connection per request",
    incident="essay 2.3: a net/http gateway under wrk load, against nginx and Traefik",
    shows="threads started and upstream connections opened under the same load; "
          "requests/s and latency p50/p99 for both",
    variants=("leaky", "fixed"),
    params={
        "requests": Param(3_000, 600, "requests the load generator sends"),
        "concurrency": Param(8, 8, "concurrent client connections (keep-alive)"),
        "workers": Param(8, 8, "fixed: worker threads in the proxy's pool"),
        "body_bytes": Param(2048, 2048, "bytes in each upstream response"),
        "load_time_cap_s": Param(60.0, 20.0, "the load generator stops after this long"),
        "hold_s": Param(0.3, 0.3, "seconds to stay up at the end"),
    },
    captures=("gc", "proc", "pyspy"),
    memory_cap_mb=1024,
    time_cap_s=180,
    quick_time_cap_s=60,
    variant_help={"leaky": "thread + upstream connection per request",
                  "fixed": "bounded pool, keep-alive upstream connections"},
)


# socketserver's default listen backlog is 5: a burst of connects overflows it and the
# kernel drops the handshake's last ACK, which stalls that client for the 1 s SYN-ACK
# retransmit and made requests/s bimodal (600 requests in 0.25 s, or in 1.03 s)
BACKLOG = 256


# -- upstream (its own process) ------------------------------------------------------------
class _Upstream(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = BACKLOG
    connections = 0

    def process_request(self, request: Any, client_address: Any) -> None:
        type(self).connections += 1
        super().process_request(request, client_address)


class _UpstreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    body = b""

    def do_GET(self) -> None:
        data = (json.dumps({"connections": _Upstream.connections}).encode()
                if self.path == "/__stats" else self.body)
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def upstream_main(body_bytes: int) -> None:
    """Serve until killed; print the port first."""
    _UpstreamHandler.body = b"u" * body_bytes
    srv = _Upstream(("127.0.0.1", 0), _UpstreamHandler)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


# -- load generator (its own process) ------------------------------------------------------
def load_main(port: int, requests: int, concurrency: int, cap_s: float) -> None:
    """Send ``requests`` over ``concurrency`` keep-alive connections; print JSON stats."""
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]
    left = [requests]
    deadline = time.monotonic() + cap_s

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < deadline:
            with lock:
                if left[0] == 0:
                    break
                left[0] -= 1
            t = time.perf_counter()
            try:
                conn.request("GET", "/item")
                conn.getresponse().read()
                with lock:
                    latencies.append(time.perf_counter() - t)
            except (OSError, http.client.HTTPException):
                with lock:
                    errors[0] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    lat = sorted(latencies)

    def pct(q: float) -> float:
        return 1000 * lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")

    print(json.dumps({"done": len(lat), "errors": errors[0], "elapsed_s": elapsed,
                      "rps": len(lat) / elapsed if elapsed else 0.0,
                      "p50_ms": pct(0.50), "p99_ms": pct(0.99)}), flush=True)


# -- the proxy (the scenario process) ------------------------------------------------------
class _Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.n = 0

    def add(self) -> None:
        with self.lock:
            self.n += 1


class _PooledServer(socketserver.TCPServer):
    """Connections handled by a bounded pool instead of a thread each."""

    allow_reuse_address = True
    request_queue_size = BACKLOG

    def __init__(self, addr: Any, handler: Any, workers: int) -> None:
        super().__init__(addr, handler)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="proxy-worker")

    def process_request(self, request: Any, client_address: Any) -> None:
        self.pool.submit(self._work, request, client_address)

    def _work(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except OSError:
            pass
        finally:
            self.shutdown_request(request)


class _ThreadPerConnection(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = BACKLOG
    started: _Counter

    def process_request(self, request: Any, client_address: Any) -> None:
        self.started.add()
        super().process_request(request, client_address)


def make_proxy(variant: str, upstream_port: int, workers: int) -> tuple[HTTPServer, _Counter]:
    """The proxy server for ``variant`` and its counter of threads started."""
    started = _Counter()
    local = threading.local()

    def fetch_new_connection() -> bytes:
        conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=10)
        try:
            conn.request("GET", "/item", headers={"Connection": "close"})
            return conn.getresponse().read()
        finally:
            conn.close()

    def fetch_keepalive() -> bytes:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = http.client.HTTPConnection("127.0.0.1", upstream_port,
                                                           timeout=10)
        try:
            conn.request("GET", "/item")
            return conn.getresponse().read()
        except (OSError, http.client.HTTPException):
            local.conn = None
            conn.close()
            raise

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            if variant == "leaky":
                box: list[bytes] = []
                t = threading.Thread(target=lambda: box.append(fetch_new_connection()))
                started.add()
                t.start()
                t.join()
                data = box[0] if box else b""
            else:
                data = fetch_keepalive()
            self.send_response(200 if data else 502)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    if variant == "leaky":
        srv: HTTPServer = _ThreadPerConnection(("127.0.0.1", 0), Handler)
        srv.started = started  # type: ignore[attr-defined]
    else:
        srv = _PooledServer(("127.0.0.1", 0), Handler, workers)  # type: ignore[assignment]
        started.n = workers
    return srv, started


def _spawn(code: str, *args: Any) -> subprocess.Popen:
    from labkit.capture.children import set_pdeathsig

    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)],
                            stdout=subprocess.PIPE, text=True, preexec_fn=set_pdeathsig)


def run(variant: str, p: dict[str, Any], metrics: Metrics) -> None:
    mod = "from labkit.scenarios.gateway_load import "
    upstream = _spawn(mod + "upstream_main; import sys; upstream_main(int(sys.argv[1]))",
                      p["body_bytes"])
    try:
        up_port = int(upstream.stdout.readline())
        srv, started = make_proxy(variant, up_port, p["workers"])
        server_thread = threading.Thread(target=srv.serve_forever, name="proxy-accept",
                                         daemon=True)
        server_thread.start()
        port = srv.server_address[1]
        metrics.emit(phase="serving", port=port, upstream_port=up_port)
        cpu0 = time.process_time()  # every thread of the proxy, not wall time
        load = _spawn(mod + "load_main; import sys; load_main(*map(int, sys.argv[1:4]), "
                      "float(sys.argv[4]))", port, p["requests"], p["concurrency"],
                      p["load_time_cap_s"])
        peak = [threading.active_count()]
        while load.poll() is None:
            peak[0] = max(peak[0], threading.active_count())
            time.sleep(0.01)
        cpu_s = time.process_time() - cpu0
        stats = json.loads(load.stdout.read().strip().splitlines()[-1])
        conn = http.client.HTTPConnection("127.0.0.1", up_port, timeout=10)
        conn.request("GET", "/__stats")
        upstream_stats = json.loads(conn.getresponse().read())
        conn.close()
        metrics.emit(phase="done", threads_started=started.n, peak_threads=peak[0],
                     upstream_connections=upstream_stats["connections"] - 1,
                     proxy_cpu_us_per_request=1e6 * cpu_s / max(1, stats["done"]), **stats)
        srv.shutdown()
        srv.server_close()
        metrics.hold(p["hold_s"])
    finally:
        upstream.kill()
        upstream.wait()


def signature(runs: dict[str, Any]) -> Signature:
    """Threads and upstream connections under the same load; throughput and latency."""
    from labkit.scenarios.measure import metrics_frame

    done = {v: metrics_frame(r).dropna(subset=["threads_started"]).iloc[-1]
            for v, r in runs.items()}

    def col(name: str) -> dict[str, float]:
        return {v: float(d[name]) for v, d in done.items()}

    sent = col("done")
    workers = float(runs["fixed"].meta.values["workers"])
    return Signature("gateway-load", [
        row("requests completed (the same load)", sent, "equal, no errors",
            lambda x: x["leaky"] == x["fixed"] and col("errors")["leaky"] == 0
            and col("errors")["fixed"] == 0),
        row("threads started by the proxy", col("threads_started"),
            f"leaky >= requests; fixed == its pool ({workers:.0f})",
            lambda x: x["leaky"] >= sent["leaky"] and x["fixed"] == workers, lesson=True),
        row("upstream connections opened", col("upstream_connections"),
            f"leaky >= requests; fixed <= pool ({workers:.0f})",
            lambda x: x["leaky"] >= sent["leaky"] and x["fixed"] <= workers),
        row("proxy CPU per request, µs", col("proxy_cpu_us_per_request"),
            "leaky >= 1.3x fixed", lambda x: x["leaky"] >= 1.3 * x["fixed"]),
        row("requests/s", col("rps"), "fixed >= 1.3x leaky",
            lambda x: x["fixed"] >= 1.3 * x["leaky"]),
        row("latency p50 ms", col("p50_ms"), "leaky >= 1.3x fixed",
            lambda x: x["leaky"] >= 1.3 * x["fixed"]),
        row("latency p99 ms", col("p99_ms"), "reported", lambda x: True),
    ])


def main(argv: list[str] | None = None) -> None:
    run_main(SPEC, argv, run)


if __name__ == "__main__":
    main(sys.argv[1:])
