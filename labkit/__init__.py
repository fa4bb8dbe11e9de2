"""labkit: a Jupyter-based profiling and memory-forensics lab for Python.

The public API is listed in ``__all__``. Names are resolved on first use, so importing
``labkit`` (which the GC tracer does inside traced programs) loads nothing heavy.
"""

from __future__ import annotations

from typing import Any

from labkit.version import __version__

__all__ = [
    "CaptureOptions",
    "LabkitError",
    "Run",
    "__version__",
    "compare",
    "fleet",
    "load",
    "run_program",
    "run_scenario",
]

_LAZY = {
    "CaptureOptions": "labkit.capture.session",
    "LabkitError": "labkit.errors",
    "Run": "labkit.frames",
    "load": "labkit.frames",
    "run_program": "labkit.capture.session",
    "compare": "labkit.analysis.compare",
    "fleet": "labkit.fleetdb",
    "run_scenario": "labkit.runner",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")


def load_ipython_extension(ip: Any) -> None:
    """``%load_ext labkit``: the ``%%labkit_capture`` and ``%labkit_gc`` magics
    (:mod:`labkit.magics`)."""
    from labkit.magics import load_ipython_extension as load_magics

    load_magics(ip)


def __dir__() -> list[str]:
    return sorted(__all__)
