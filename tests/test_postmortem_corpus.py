"""The postmortem names the culprit of leaky programs it was not written for: a fast subset
of ``bench/corpus`` (one program per kind of evidence), captured as a user would."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"

pytestmark = pytest.mark.slow


def _accuracy():
    spec = importlib.util.spec_from_file_location("postmortem_accuracy",
                                                  BENCH / "postmortem_accuracy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("program", ["cache_unbounded", "logging_handler", "thread_per_task",
                                     "socket_leak", "cpu_hotspot"])
def test_culprit_is_in_the_top_three(program: str) -> None:
    acc = _accuracy()
    rank, top = acc.rank_of(BENCH / "corpus" / f"{program}.py")
    assert rank is not None and rank <= 3, (program, top)
