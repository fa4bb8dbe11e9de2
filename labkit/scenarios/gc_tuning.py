"""gc-tuning: one workload under five garbage-collector settings.

The essay's incident (3.3, 5): ``GOGC=5`` took Go's GC from once per 3 minutes to once per
22 seconds and CPU from 35% to 89%. Python differs, and this scenario shows how: a very low
young threshold floods the process with tiny collections but costs little throughput;
CPython's expensive pauses are full (generation 2) collections, which grow with the number
of long-lived container objects; ``gc.freeze()`` after warm-up removes them; and
``gc.disable()`` with cyclic garbage lets memory grow until something stops it.

The workload: a long-lived heap of container objects built in steps (an explicit full
collection after each step measures the pause against the heap's size), then a steady phase
of cyclic garbage plus a sliding window of short-lived records that survive long enough to
be promoted, which is what triggers automatic full collections.

The lesson owns its error bars: labkit's GC tracer costs something per collection, so
it slows the settings that collect most. After the steady phase the same loop runs again
in eight blocks, the tracer detached, attached, attached, detached, twice
(:meth:`GCTracer.pause`), each from a clean collector; the medians per side are
compared, and the signature compares the settings' throughput untraced,
showing the traced figure and the tracer's cost beside it.
"""

from __future__ import annotations

import gc
import sys
import time
from collections import deque
from typing import Any

from labkit.scenarios.base import Metrics, Param, ScenarioSpec, Signature, row, run_main

SETTINGS = {
    "default": "the interpreter's own thresholds",
    "low-threshold": "gc.set_threshold(5, 10, 10): the GOGC=5 story",
    "high-threshold": "gc.set_threshold(50_000, 20, 20)",
    "disabled": "gc.disable(): cyclic garbage is never collected",
    "freeze": "gc.freeze() after warm-up: the long-lived heap leaves the collector's view",
}

SPEC = ScenarioSpec(
    name="gc-tuning",
    title="Garbage-collector settings on a large long-lived heap",
    incident="essay 3.3/5: GOGC=5 raised GC frequency ~8x and CPU from 35% to 89%",
    shows="per setting: collections/s, p99 and max pause, % time in GC, peak memory, "
          "throughput",
    variants=tuple(SETTINGS),
    params={
        "heap_objects": Param(2_000_000, 300_000, "long-lived records (2 containers each)"),
        "heap_steps": Param(4, 4, "steps the heap is built in"),
        "iterations": Param(2_000_000, 600_000, "steady-phase iterations"),
        "collects_per_step": Param(3, 3, "explicit full collections after each heap step "
                                   "(the fastest is the step's pause: noise only adds)"),
        "window": Param(5_000, 5_000, "iterations a short-lived record survives"),
        "payload_bytes": Param(512, 512, "bytes hanging off each cycle of garbage"),
        "hold_s": Param(0.5, 0.3, "seconds to stay up at the end"),
        "thresholds": Param("", "", "'g0,g1,g2': gc.set_threshold on top of the setting "
                            "(the notebook's control; empty: the setting's own)"),
        "freeze": Param(0, 0, "1: also gc.freeze() after warm-up"),
    },
    captures=("gc", "proc"),
    memory_cap_mb=1024,
    time_cap_s=300,
    quick_time_cap_s=60,
    variant_help=SETTINGS,
    settings=True,
)


def apply(setting: str) -> None:
    """Put the collector in ``setting`` (freeze happens later, after warm-up)."""
    if setting == "low-threshold":
        gc.set_threshold(5, 10, 10)
    elif setting == "high-threshold":
        gc.set_threshold(50_000, 20, 20)
    elif setting == "disabled":
        gc.disable()


def workload(setting: str, p: dict[str, Any], metrics: Metrics) -> None:
    apply(setting)
    if p["thresholds"]:
        gc.set_threshold(*(int(x) for x in str(p["thresholds"]).split(",")))
    metrics.emit(phase="start", threshold=list(gc.get_threshold()), enabled=gc.isenabled())
    heap: list[dict] = []
    per_step = p["heap_objects"] // p["heap_steps"]
    for step in range(1, p["heap_steps"] + 1):
        heap.extend({"id": i, "tags": [i]} for i in range(per_step))
        metrics.emit(phase="collect", step=step, heap=len(heap), at="start")
        for _ in range(p["collects_per_step"]):
            gc.collect()
        metrics.emit(phase="collect", step=step, heap=len(heap), at="end")
    if setting == "freeze" or int(p["freeze"]):
        gc.freeze()
    window: deque = deque(maxlen=p["window"])
    payload = p["payload_bytes"]
    every = max(1, p["iterations"] // 20)
    metrics.emit(phase="steady", at="start", heap=len(heap))
    t = time.perf_counter()
    for i in range(p["iterations"]):
        a: list = [bytes(payload)]
        b = [a]
        a.append(b)  # a cycle only the collector can free
        window.append({"seq": i, "refs": [i]})
        if i % every == 0:
            metrics.emit(phase="steady", iterations=i, seconds=time.perf_counter() - t)
    seconds = time.perf_counter() - t
    metrics.emit(phase="steady", at="end", iterations=p["iterations"], seconds=seconds,
                 throughput=p["iterations"] / seconds)
    side_by_side(p, metrics)
    metrics.hold(p["hold_s"])


def _tracer() -> Any:
    """labkit's GC tracer running in this process (the agent's private copy, or one the
    program started), or None."""
    for name in ("_labkit_gctrace", "labkit.capture.gctrace"):
        mod = sys.modules.get(name)
        tracer = mod.active() if mod is not None and hasattr(mod, "active") else None
        if tracer is not None:
            return tracer
    return None


def side_by_side(p: dict[str, Any], metrics: Metrics) -> None:
    """The steady loop again in eight blocks, untraced / traced / traced / untraced twice,
    each an eighth of ``iterations``: throughput with and without the tracer, side by side. Each
    block starts from a full collection (untimed), so each meets the same sequence of
    automatic collections: one expensive full collection more on one side would weigh more
    than the tracer."""
    tracer = _tracer()
    window: deque = deque(maxlen=p["window"])
    payload, n = p["payload_bytes"], max(1, p["iterations"] // 8)
    for traced in (False, True, True, False) * 2:
        gc.collect()  # also the garbage a disabled collector left
        if tracer is not None and not traced:
            tracer.pause()
        t = time.perf_counter()
        for i in range(n):
            a: list = [bytes(payload)]
            b = [a]
            a.append(b)
            window.append({"seq": i, "refs": [i]})
        seconds = time.perf_counter() - t
        if tracer is not None and not traced:
            tracer.resume()
        metrics.emit(phase="side-by-side", traced=traced and tracer is not None,
                     iterations=n, seconds=seconds)


def _phase_bounds(m: Any, phase: str) -> tuple[float, float]:
    rows = m[(m.phase == phase) & m["at"].isin(["start", "end"])]
    return float(rows[rows["at"] == "start"].t_s.min()), float(rows[rows["at"] == "end"].t_s.max())


def step_pauses(run: Any) -> list[float]:
    """The explicit full collection of each heap-building step, ms (the fastest of a step's,
    NaN for a step without one), in order: how a full collection's cost follows the heap."""
    from labkit.scenarios.measure import metrics_frame

    m = metrics_frame(run)
    ev = run.gc_events[~run.gc_events.in_tracer]
    pauses = []
    for step in sorted(m.step.dropna().unique()):
        sm = m[m.step == step]
        a, b = sm[sm["at"] == "start"].t_s.min(), sm[sm["at"] == "end"].t_s.max()
        full = ev[(ev.t_s >= a) & (ev.t_s <= b) & (ev.generation == 2)]
        pauses.append(float(full.pause_ms.min()) if len(full) else float("nan"))
    return pauses


def signature(runs: dict[str, Any]) -> Signature:
    """What each setting does, measured from the GC trace and the process samples."""
    from labkit.analysis import gc_summary
    from labkit.scenarios.measure import metrics_frame, peak_rss

    per, full_pause, steady_max, steady_gen2, growth, gen2_median = {}, {}, {}, {}, {}, {}
    untraced, traced, cost = {}, {}, {}
    for v, r in runs.items():
        m = metrics_frame(r)
        ev = r.gc_events[~r.gc_events.in_tracer]
        s0, s1 = _phase_bounds(m, "steady")
        steady = ev[(ev.t_s >= s0) & (ev.t_s <= s1)]
        per[v] = gc_summary(steady, s1 - s0)
        per[v]["throughput"] = float(m.throughput.dropna().iloc[-1])
        untraced[v], traced[v], cost[v] = _side_by_side(m, per[v]["throughput"])
        per[v]["peak_rss"] = peak_rss(r)
        steady_max[v] = float(steady.pause_ms.max()) if len(steady) else 0.0
        steady_gen2[v] = float((steady.generation == 2).sum())
        gen2 = steady[steady.generation == 2].pause_ms
        gen2_median[v] = float(gen2.median()) if len(gen2) else float("nan")
        proc = r.proc
        at = proc[(proc.t_s >= s0) & (proc.t_s <= s1 + 0.1)].rss_bytes
        before = proc[proc.t_s <= s0].rss_bytes
        growth[v] = float(at.max() - (before.iloc[-1] if len(before) else at.min()))
        full_pause[v] = step_pauses(r)
    d = "default"
    rate = {v: float(s.collections_per_s) for v, s in per.items()}
    iters = {v: float(metrics_frame(r).iterations.max()) for v, r in runs.items()}
    per_k = {v: 1000 * float(s.collections) / iters[v] for v, s in per.items()}
    first_last = {v: p[-1] / p[0] for v, p in full_pause.items() if v in (d, "freeze")}
    return Signature("gc-tuning", [
        row("collections per 1000 iterations (steady phase)", per_k,
            "low-threshold >= 5x default (a flood); high-threshold <= 0.2x default",
            lambda x: x["low-threshold"] >= 5 * x[d] and x["high-threshold"] <= 0.2 * x[d],
            lesson=True),
        row("collections/s (steady phase)", rate, "reported", lambda x: True),
        row("p99 pause ms (steady)", {v: float(s.pause_p99_ms) for v, s in per.items()},
            "reported", lambda x: True),
        row("% of time in GC (steady)", {v: float(s.gc_percent) for v, s in per.items()},
            "reported", lambda x: True),
        row("throughput, iterations/s, untraced", untraced,
            "low-threshold >= 0.4x default: a flood, not a collapse (a recording without the "
            "side-by-side blocks: its traced figure)",
            lambda x: x["low-threshold"] >= 0.4 * x[d]),
        row("throughput with the GC tracer, iterations/s", traced, "reported",
            lambda x: True),
        row("GC tracer's cost, % of throughput", cost,
            "reported (what the tracer took from each setting)", lambda x: True),
        row("full collection pause, last / first heap step (fastest of each step's)",
            first_last,
            "default >= 2 (heap 4x, plus the interpreter's own objects): pauses grow",
            lambda x: x[d] >= 2.0),
        row("full collections in the steady phase", steady_gen2,
            "default >= 1 (the comparison below needs one); disabled == 0",
            lambda x: x[d] >= 1 and x["disabled"] == 0),
        row("full collection pause ms, median (steady)", gen2_median,
            "freeze <= 0.2x default: the frozen heap leaves the collector's view",
            lambda x: x["freeze"] <= 0.2 * x[d]),
        row("max pause ms (steady)", steady_max, "reported (one preemption can set it)",
            lambda x: True),
        row("RSS growth in the steady phase, bytes", growth,
            "disabled >= 5x default and >= 64 MiB", lambda x: x["disabled"] >= 5 * max(
                x[d], 1) and x["disabled"] >= 64 * 1024 * 1024),
        row("peak RSS bytes", {v: float(s.peak_rss) for v, s in per.items()},
            "disabled highest", lambda x: x["disabled"] == max(x.values())),
    ])


def _side_by_side(m: Any, steady: float) -> tuple[float, float, float]:
    """(untraced, traced, tracer's cost in %) throughput, medians of the side-by-side
    blocks; a
    run without them (recorded before they existed, or no tracer) gives the steady phase's
    figure for both and no cost."""
    rows = m[m.phase == "side-by-side"] if "traced" in m else None
    on = off = m.iloc[:0]
    if rows is not None:
        on, off = rows[rows.traced == True], rows[rows.traced == False]  # noqa: E712
    if on.empty or off.empty:
        return steady, steady, float("nan")
    u = float((off.iterations / off.seconds).median())
    t = float((on.iterations / on.seconds).median())
    return u, t, 100.0 * (1.0 - t / u)


def main(argv: list[str] | None = None) -> None:
    run_main(SPEC, argv, workload)


if __name__ == "__main__":
    main(sys.argv[1:])


def frontier(sig: Signature) -> Any:
    """The settings side by side, from the signature (nothing recomputed): ``throughput``,
    ``full_pause_ms`` (median full collection, steady phase; NaN without one),
    ``max_pause_ms`` and ``rss_growth`` (bytes), one row per setting, for
    :func:`labkit.charts.gc_frontier`."""
    import pandas as pd

    return pd.DataFrame({
        "throughput": sig.row("throughput").values,
        "full_pause_ms": sig.row("full collection pause ms, median").values,
        "max_pause_ms": sig.row("max pause ms").values,
        "rss_growth": sig.row("RSS growth in the steady phase").values,
        "collections_per_1000": sig.row("collections per 1000 iterations").values,
    })
