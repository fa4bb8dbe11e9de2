"""buffer-growth: response bodies rebuilt on every request.

The essay's incident (section 5): HTTP responses built without reusing a ``bytes.Buffer``;
``mallocgc`` was 78% of a heap profile. Here each request assembles a body from chunks.
Leaky: ``body = body + chunk`` (every step copies everything so far: quadratic bytes), or,
with ``style=fresh``, a new growing buffer per request. Fixed: one ``b"".join(chunks)``,
or, with ``style=fresh``, one buffer reused across requests.
"""

from __future__ import annotations

import sys
from typing import Any

from labkit.scenarios.base import Metrics, Param, ScenarioSpec, Signature, row, run_main

SPEC = ScenarioSpec(
    name="buffer-growth",
    title="Response buffers rebuilt on every request",
    incident="essay 5: bytes.Buffer not reused for HTTP responses; mallocgc 78% of the heap",
    shows="total bytes allocated and the allocation rate, many times higher in leaky",
    variants=("leaky", "fixed"),
    params={
        "requests": Param(1_000, 300, "requests served"),
        "chunks": Param(200, 200, "chunks per response body"),
        "chunk_bytes": Param(256, 256, "bytes per chunk"),
        "style": Param("concat", "concat", "concat (+ vs join) or fresh (new vs reused buffer)"),
        "hold_s": Param(0.5, 0.2, "seconds to stay up after the last request"),
    },
    captures=("gc", "proc", "memray"),
    memory_cap_mb=1024,
    variant_help={"leaky": "body = body + chunk (or a fresh buffer per request)",
                  "fixed": "b''.join(chunks) (or one reused buffer)"},
)


def build(variant: str, style: str, chunks: list[bytes], reused: bytearray) -> int:
    """Assemble one response body; returns its length."""
    if style == "concat":
        if variant == "leaky":
            body = b""
            for c in chunks:
                body = body + c
            return len(body)
        return len(b"".join(chunks))
    if variant == "leaky":
        buf = bytearray()
        for c in chunks:
            buf += c
        return len(bytes(buf))
    reused.clear()
    for c in chunks:
        reused += c
    return len(reused)


def serve(variant: str, p: dict[str, Any], metrics: Metrics) -> None:
    reused = bytearray()
    sent = 0
    every = max(1, p["requests"] // 20)
    for i in range(1, p["requests"] + 1):
        chunks = [bytes([65 + (i + k) % 26]) * p["chunk_bytes"] for k in range(p["chunks"])]
        sent += build(variant, p["style"], chunks, reused)
        if i % every == 0 or i == p["requests"]:
            metrics.emit(requests=i, bytes_sent=sent)
    metrics.hold(p["hold_s"])


def signature(runs: dict[str, Any]) -> Signature:
    """memray's total bytes allocated, and the allocation rate, leaky against fixed."""
    from labkit.scenarios.measure import metrics_frame

    total = {v: float(r.memray.summary.total_allocated_bytes) for v, r in runs.items()}
    rate = {}
    for v, r in runs.items():
        m = metrics_frame(r)
        work = m.dropna(subset=["requests"])
        span = max(1e-3, work.t_s.max() - work.t_s.min())
        rate[v] = total[v] / span
    sent = {v: float(metrics_frame(r).bytes_sent.max()) for v, r in runs.items()}
    return Signature("buffer-growth", [
        row("bytes sent (the same work)", sent, "equal", lambda x: x["leaky"] == x["fixed"]),
        row("total bytes allocated (memray)", total, "leaky >= 10x fixed",
            lambda x: x["leaky"] >= 10 * x["fixed"], lesson=True),
        row("allocation rate, bytes/s", rate, "leaky >= 3x fixed",
            lambda x: x["leaky"] >= 3 * x["fixed"]),
    ])


def main(argv: list[str] | None = None) -> None:
    run_main(SPEC, argv, serve)


if __name__ == "__main__":
    main(sys.argv[1:])
