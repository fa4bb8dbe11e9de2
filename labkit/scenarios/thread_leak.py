"""thread-leak: a poller started per target and never stopped.

The essay's incident (2.1): a goroutine per monitored target, never stopped when the target
went away; ``runtime.NumGoroutine()`` above 5000 flagged the leak, and pprof showed them all
parked in a channel receive. Here targets come and go in rounds. Leaky: each new target gets
a poller thread parked on ``queue.get()`` of a queue nobody feeds, and nothing stops it when
the target leaves (``mode=asyncio``: a task awaiting ``queue.get()``, never cancelled).
Fixed: a stop event per poller, set and joined when its target leaves (asyncio: the task is
cancelled and awaited).

Where Python differs from Go: a goroutine is a root, an asyncio task is not. A task awaiting
a queue that nothing else references is garbage itself, and the collector destroys it
mid-await ("Task was destroyed but it is pending!"). Leaked tasks in real services stay
alive because what they await stays registered somewhere, as the subscription registry
does here.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sys
import threading
import time
from typing import Any

from labkit.scenarios.base import Metrics, Param, ScenarioSpec, Signature, row, run_main

SPEC = ScenarioSpec(
    name="thread-leak",
    title="Pollers that are never stopped",
    incident="essay 2.1: goroutines per target never stopped; NumGoroutine() > 5000",
    shows="threads (or asyncio tasks) grow with targets seen in leaky, stay at the live "
          "targets in fixed; py-spy dump shows the leaked pollers parked in queue.get",
    variants=("leaky", "fixed"),
    params={
        "rounds": Param(25, 10, "rounds of target churn"),
        "new_per_round": Param(40, 20, "targets added each round"),
        "live": Param(40, 20, "targets alive at once (older ones leave)"),
        "round_s": Param(0.2, 0.05, "seconds between rounds"),
        "mode": Param("threads", "threads", "threads or asyncio"),
        "hold_s": Param(2.0, 1.5, "seconds to stay up at the end (a dump is taken then)"),
    },
    captures=("gc", "proc"),
    dump_on_hold=True,
    memory_cap_mb=1024,
    variant_help={"leaky": "pollers never stopped", "fixed": "stop event / cancel on leave"},
)


def _poll(q: queue.Queue, stop: threading.Event | None) -> None:
    if stop is None:
        q.get()  # parked for good: nobody feeds this queue
        return
    while not stop.is_set():
        try:
            q.get(timeout=0.05)
        except queue.Empty:
            continue


def run_threads(variant: str, p: dict[str, Any], metrics: Metrics) -> None:
    live: list[tuple[threading.Thread, threading.Event]] = []
    seen = 0
    metrics.baseline()
    for rnd in range(1, p["rounds"] + 1):
        for _ in range(p["new_per_round"]):
            stop = threading.Event() if variant == "fixed" else None
            t = threading.Thread(target=_poll, args=(queue.Queue(), stop), daemon=True,
                                 name=f"poller-{seen}")
            t.start()
            live.append((t, stop))  # type: ignore[arg-type]
            seen += 1
        while len(live) > p["live"]:
            t, stop = live.pop(0)  # the target went away
            if stop is not None:
                stop.set()
                t.join()
        metrics.emit(round=rnd, targets_seen=seen, targets_live=len(live),
                     threads=threading.active_count())
        time.sleep(p["round_s"])
    metrics.hold(p["hold_s"])


async def _apoll(q: asyncio.Queue) -> None:
    await q.get()  # nobody feeds it


async def run_asyncio(variant: str, p: dict[str, Any], metrics: Metrics) -> None:
    live: list[tuple[int, asyncio.Task]] = []
    subscriptions: dict[int, asyncio.Queue] = {}  # target -> its feed, as a service keeps
    seen = 0
    for rnd in range(1, p["rounds"] + 1):
        for _ in range(p["new_per_round"]):
            subscriptions[seen] = asyncio.Queue()
            task = asyncio.create_task(_apoll(subscriptions[seen]), name=f"poller-{seen}")
            live.append((seen, task))
            seen += 1
        while len(live) > p["live"]:
            target, task = live.pop(0)
            if variant == "fixed":
                del subscriptions[target]
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await asyncio.sleep(p["round_s"])
        metrics.emit(round=rnd, targets_seen=seen, targets_live=len(live),
                     tasks=len(asyncio.all_tasks()) - 1, threads=threading.active_count())
    metrics.emit(event="hold")
    await asyncio.sleep(p["hold_s"])


def signature(runs: dict[str, Any]) -> Signature:
    """Threads (or tasks) against targets seen and live; the dump's parked pollers."""
    from labkit.artifacts import PYSPY_DUMP
    from labkit.scenarios.measure import growth_during_work, metrics_frame

    m = {v: metrics_frame(r).dropna(subset=["round"]) for v, r in runs.items()}
    mode = runs["leaky"].meta.values["mode"]
    seen = float(m["leaky"].targets_seen.max())
    live = float(m["leaky"].targets_live.max())
    burst = float(runs["leaky"].meta.values["new_per_round"])
    if mode == "asyncio":
        tasks = {v: float(df.tasks.max()) for v, df in m.items()}
        return Signature("thread-leak", [
            row("asyncio tasks alive (peak)", tasks,
                f"leaky >= 0.9 x targets seen ({seen:.0f}); fixed <= live ({live:.0f}) + 2",
                lambda x: x["leaky"] >= 0.9 * seen and x["fixed"] <= live + 2, lesson=True),
        ])
    growth = {v: growth_during_work(r, r.proc, "threads") for v, r in runs.items()}
    peak = {v: float(r.proc.threads.max()) for v, r in runs.items()}
    parked = {}
    for v, r in runs.items():
        t = r.pyspy.threads if r.has(PYSPY_DUMP) else None
        parked[v] = float(len(t[t.idle & t["stack"].str.contains("(queue.py:", regex=False)
                                & t["name"].str.startswith("poller-")])) if t is not None \
            else float("nan")
    return Signature("thread-leak", [
        row("threads, peak (process sampler)", peak,
            f"leaky >= 0.9 x targets seen ({seen:.0f}); fixed <= live + one round's new "
            f"({live + burst:.0f}) + 10",
            lambda x: x["leaky"] >= 0.9 * seen and x["fixed"] <= live + burst + 10),
        row("threads added during the work", growth,
            f"leaky >= 0.9 x targets seen; fixed <= {live + burst:.0f} + 5",
            lambda x: x["leaky"] >= 0.9 * seen and x["fixed"] <= live + burst + 5,
            lesson=True),
        row("pollers parked in queue.get at the end (py-spy dump)", parked,
            f"leaky == targets seen ({seen:.0f}); fixed <= live ({live:.0f})",
            lambda x: x["leaky"] == seen and x["fixed"] <= live),
    ])


def run(variant: str, p: dict[str, Any], metrics: Metrics) -> None:
    """Threads or asyncio tasks, as ``mode`` says."""
    if p["mode"] == "asyncio":
        asyncio.run(run_asyncio(variant, p, metrics))
    else:
        run_threads(variant, p, metrics)


def main(argv: list[str] | None = None) -> None:
    run_main(SPEC, argv, run)


if __name__ == "__main__":
    main(sys.argv[1:])
