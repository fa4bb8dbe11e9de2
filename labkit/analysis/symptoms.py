"""Growth symptoms, stated one way: what rose, whether it still rises, and whether memray's
heap explains the memory the process holds.

* The heap "keeps growing" only when it still rises over the last quarter of the capture;
  a heap that rose and then stayed put "grew by X, then held".
* Heap that imports built (stacks through importlib: a package's modules, its tables) is
  start-up: a heap that rose only that way, then held, is not a symptom.
* A resource (RSS, threads, fds, children) that reached its level in the first quarter of
  the run and stayed there is a warm-up (a pool, a cache), not a symptom.
* RSS that grows far beyond memray's heap is *native memory*: allocations memray's
  Python-level view does not hold (a C library's own allocator, ``malloc`` reached
  through ``ctypes``/``cffi``, memory mapped outside the allocator).

Each symptom is ``(kind, what, evidence, score)``; :mod:`labkit.analysis.clues` weighs it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from labkit.analysis.growth import Trend, trend
from labkit.stacks import is_import_time

MB = 1024 * 1024
HEAP_SLOPE = 0.5 * MB  # bytes/s over the last quarter: the heap keeps growing
HEAP_HELD_MIN = 8 * MB  # a heap that rose this much mid-run, then held, is a symptom
NATIVE_MIN = 50 * MB  # RSS growth that memray's heap must explain ...
NATIVE_SHARE = 0.5  # ... at least this share of, else it is native memory
PROC_LIMITS = (("rss_bytes", 50 * MB, "MiB"), ("threads", 20, ""), ("fds", 20, ""),
               ("children", 5, ""))

Symptom = tuple[str, str, str, float]


def import_share(growth: pd.DataFrame | None) -> float:
    """The share (0-1) of the heap's growth (:attr:`MemrayCapture.growth`'s positive
    ``growth_bytes``) made by stacks that were importing a module; 0 without ``growth``."""
    if growth is None or growth.empty:
        return 0.0
    gained = growth["growth_bytes"].clip(lower=0)
    total = float(gained.sum())
    return float(gained[growth["frames"].map(is_import_time)].sum()) / total if total else 0.0


def _heap_shape(t: Trend, imports: float) -> str | None:
    if t.shape == "rising" and t.late_slope > HEAP_SLOPE:
        return "rising"
    if t.shape in ("held", "rising") and t.rise * (1 - imports) >= HEAP_HELD_MIN:
        return "held"
    return None


def heap_symptom(memory: pd.DataFrame, growth: pd.DataFrame | None = None) -> Symptom | None:
    """``heap keeps growing`` or ``heap grew by X MiB, then held``, or None: a heap still
    rising over the last quarter of the capture, or one that rose mid-run by at least
    :data:`HEAP_HELD_MIN` not counting what importing modules built (``growth``: memray's
    per-stack growth, when there is one)."""
    t = trend(memory, "heap_bytes")
    imports = import_share(growth)
    shape = _heap_shape(t, imports) if t is not None else None
    if shape == "rising":
        return ("memory growth", "heap keeps growing",
                f"{t.late_slope / MB:.1f} MiB/s over the last quarter of the capture, "
                f"+{t.rise / MB:,.1f} MiB from start to peak", 0.9)
    if shape == "held":
        built = f"; {100 * imports:.0f}% of it while importing modules" if imports >= 0.05 else ""
        return ("memory growth", f"heap grew by {t.rise / MB:,.1f} MiB, then held",
                f"from {t.start / MB:,.1f} to {t.peak / MB:,.1f} MiB in {t.seconds:.1f} s{built}, "
                "flat over the last quarter of the capture", 0.6)
    return None


def proc_symptoms(proc: pd.DataFrame) -> list[Symptom]:
    """What rose in the process samples: ``rss_bytes rose 8.9x`` while it still rises (or
    rose and fell back: a peak), ``..., then held`` when it rose mid-run and stayed; a
    warm-up (level reached in the first quarter, then flat) is not a symptom."""
    out: list[Symptom] = []
    for col, min_rise, unit in PROC_LIMITS:
        t = trend(proc, col)
        if t is None or t.rise < min_rise or t.peak < 1.5 * max(t.start, 1) \
                or t.shape == "warm-up":
            continue
        scale = MB if unit else 1
        held = t.shape == "held"
        out.append((f"{col.split('_')[0]} growth",
                    f"{col} rose {t.peak / max(t.start, 1):.1f}x{', then held' if held else ''}",
                    f"from {t.start / scale:,.0f} to a peak of {t.peak / scale:,.0f}"
                    f"{' ' + unit if unit else ''} in {t.seconds:.1f} s "
                    f"({t.rise / scale / max(t.seconds, 1e-3):,.1f} {unit or col}/s)",
                    0.6 if held else 0.85))
    return out


def native_growth(memray: Any, proc: pd.DataFrame | None) -> float:
    """RSS growth (bytes, start to peak, from the process samples or else memray's own
    snapshots) that memray's heap does not explain: 0 unless RSS rose by
    :data:`NATIVE_MIN` and the heap's peak is under :data:`NATIVE_SHARE` of that rise."""
    series = proc if proc is not None and len(proc) else memray.memory
    t = trend(series, "rss_bytes")
    if t is None or t.rise < NATIVE_MIN or t.shape in ("fell", "warm-up", "flat"):
        return 0.0
    heap = float(memray.metadata.peak_memory)
    return t.rise if heap < NATIVE_SHARE * t.rise else 0.0


def native_symptom(memray: Any, proc: pd.DataFrame | None) -> Symptom | None:
    """``native memory`` when RSS grew far beyond memray's heap (:func:`native_growth`)."""
    grew = native_growth(memray, proc)
    if not grew:
        return None
    return ("native memory", f"native memory: RSS grew by {grew / MB:,.0f} MiB that memray's "
            f"heap does not hold", f"memray's heap peaked at "
            f"{memray.metadata.peak_memory / MB:,.1f} MiB; the rest was allocated outside "
            "Python's view (a C library, malloc through ctypes/cffi, mapped memory)", 0.95)
