"""pool-misuse: pooled buffers put back without a reset, in a pool that never shrinks.

The essay's incident (3.3): Go's ``sync.Pool`` handed back ``bytes.Buffer``s without
``Reset()``; pooled buffers kept their grown capacity and stop-the-world time rose. Here a
request handler borrows ``bytearray`` buffers from a pool, writes a response into each, and
returns them. Leaky: no reset on put (the next request appends to the old bytes: memory
and stale data), and a pool that keeps every buffer a burst ever needed. Fixed: ``clear()``
on put, a cap on the pool's size and on the size of a buffer worth keeping.
"""

from __future__ import annotations

import random
import sys
from typing import Any

from labkit.scenarios.base import Metrics, Param, ScenarioSpec, Signature, row, run_main

SPEC = ScenarioSpec(
    name="pool-misuse",
    title="Pooled buffers returned without a reset",
    incident="essay 3.3: sync.Pool buffers put back without Reset() kept their capacity",
    shows="retained bytes and peak RSS grow with requests (leaky) or stay flat (fixed)",
    variants=("leaky", "fixed"),
    params={
        "requests": Param(20_000, 4_000, "requests served"),
        "payload_kb": Param(16, 16, "mean response size, KiB (sizes vary 0.5..1.5x the mean)"),
        "burst": Param(32, 16, "largest number of buffers borrowed at once"),
        "pool_cap": Param(8, 8, "fixed: buffers the pool keeps"),
        "seed": Param(1, 1, "random seed"),
        "hold_s": Param(1.0, 0.4, "seconds to stay up after the last request"),
    },
    captures=("gc", "proc", "memray"),
    memory_cap_mb=1024,
    variant_help={"leaky": "no reset on put, unbounded pool",
                  "fixed": "clear() on put, pool capped"},
)


class Pool:
    """A LIFO pool of bytearrays; ``fixed`` resets buffers and bounds the pool."""

    def __init__(self, fixed: bool, cap: int, max_keep: int) -> None:
        self.fixed, self.cap, self.max_keep = fixed, cap, max_keep
        self.free: list[bytearray] = []

    def get(self) -> bytearray:
        return self.free.pop() if self.free else bytearray()

    def put(self, buf: bytearray) -> None:
        if self.fixed:
            if len(self.free) >= self.cap or len(buf) > self.max_keep:
                return
            buf.clear()
        self.free.append(buf)

    def retained(self) -> int:
        return sum(len(b) for b in self.free)


def serve(variant: str, p: dict[str, Any], metrics: Metrics) -> None:
    rng = random.Random(p["seed"])
    mean = p["payload_kb"] * 1024
    pool = Pool(variant == "fixed", p["pool_cap"], 4 * mean)
    done, every = 0, max(1, p["requests"] // 40)
    metrics.baseline()
    while done < p["requests"]:
        borrowed = [pool.get() for _ in range(rng.randint(1, p["burst"]))]
        for buf in borrowed:
            buf += b"x" * rng.randint(mean // 2, mean + mean // 2)  # write the response
            done += 1
        for buf in borrowed:
            pool.put(buf)
        if done // every != (done - len(borrowed)) // every:
            metrics.emit(requests=done, pool_size=len(pool.free), retained_bytes=pool.retained())
    metrics.emit(requests=done, pool_size=len(pool.free), retained_bytes=pool.retained())
    metrics.hold(p["hold_s"])


def signature(runs: dict[str, Any]) -> Signature:
    """Retained bytes grow with requests in leaky and stay flat in fixed; so does peak RSS."""
    from labkit.scenarios.measure import (
        growth_during_work,
        metrics_frame,
        peak_rss,
        quarter_growth,
    )

    m = {v: metrics_frame(r).dropna(subset=["requests"]) for v, r in runs.items()}
    end = {v: float(df.retained_bytes.iloc[-1]) for v, df in m.items()}
    growth = {v: quarter_growth(df, "requests", "retained_bytes") for v, df in m.items()}
    rss = {v: peak_rss(r) for v, r in runs.items()}
    rss_growth = {v: growth_during_work(r, r.proc, "rss_bytes") for v, r in runs.items()}
    mb = 1024 * 1024
    return Signature("pool-misuse", [
        row("retained bytes at end", end, "leaky >= 16 MiB and >= 20x fixed (fixed frees)",
            lambda x: x["leaky"] >= 16 * mb and x["leaky"] >= 20 * x["fixed"], lesson=True),
        row("retained bytes, last / first quarter of requests", growth,
            "leaky >= 2 (grows), fixed <= 1.5 (flat)",
            lambda x: x["leaky"] >= 2 and x["fixed"] <= 1.5),
        row("peak RSS bytes", rss, "leaky >= fixed + half of leaky's retained bytes",
            lambda x: x["leaky"] >= x["fixed"] + 0.5 * end["leaky"]),
        row("RSS growth during the work, bytes", rss_growth,
            "leaky >= half of its retained bytes, fixed <= 8 MiB",
            lambda x: x["leaky"] >= 0.5 * end["leaky"] and x["fixed"] <= 8 * mb),
    ])


def main(argv: list[str] | None = None) -> None:
    run_main(SPEC, argv, serve)


if __name__ == "__main__":
    main(sys.argv[1:])
