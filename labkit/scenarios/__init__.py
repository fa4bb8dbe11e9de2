"""The incident scenarios: one module each, a leaky and a fixed variant (or GC settings).

Modules here import only the standard library (they run inside the traced interpreter).
:func:`get_spec` and :func:`get_module` resolve a CLI name such as ``pool-misuse``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labkit.scenarios.base import ScenarioSpec

MODULES = {
    "pool-misuse": "pool_misuse",
    "buffer-growth": "buffer_growth",
    "gc-tuning": "gc_tuning",
    "thread-leak": "thread_leak",
    "fd-leak": "fd_leak",
    "gateway-load": "gateway_load",
}
NAMES = tuple(MODULES)


def get_module(name: str) -> ModuleType:
    """The scenario module for CLI name ``name``, or :class:`UnknownScenarioError`."""
    if name not in MODULES:
        from labkit.errors import UnknownScenarioError

        raise UnknownScenarioError(
            f"unknown scenario {name!r}; known: {', '.join(NAMES)} (see `labkit list`)"
        )
    return importlib.import_module(f"labkit.scenarios.{MODULES[name]}")


def get_spec(name: str) -> ScenarioSpec:
    """The spec of scenario ``name``."""
    return get_module(name).SPEC
