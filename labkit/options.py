"""Option types for the ``labkit`` parser: a bad value is a usage error (exit 2) naming the
option, before any work starts. Each factory returns an ``argparse`` ``type=`` callable."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable

from labkit.errors import InputError


def number(lo: float, hi: float, *, lo_open: bool = False,
           unit: str = "") -> Callable[[str], float]:
    """A finite float in ``[lo, hi]`` (``(lo, hi]`` with ``lo_open``)."""
    def parse(text: str) -> float:
        try:
            x = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        below = x <= lo if lo_open else x < lo
        if not math.isfinite(x) or below or x > hi:
            side = ">" if lo_open else ">="
            raise argparse.ArgumentTypeError(
                f"{text} is out of range: give a finite number {side} {lo:g} and <= {hi:g}"
                + (f" {unit}" if unit else ""))
        return x
    return parse


def integer(lo: int, hi: int, *, unit: str = "") -> Callable[[str], int]:
    """An integer in ``[lo, hi]``."""
    def parse(text: str) -> int:
        try:
            x = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not lo <= x <= hi:
            raise argparse.ArgumentTypeError(
                f"{text} is out of range: give a whole number from {lo} to {hi}"
                + (f" {unit}" if unit else ""))
        return x
    return parse


DAY_S = 86_400.0
INTERVAL = number(0.01, 60, unit="s")
SECONDS = number(0, DAY_S, lo_open=True, unit="s")
RATE_HZ = integer(1, 1000, unit="Hz")
MEMORY_MIB = integer(16, 1 << 20, unit="MiB")
TOP = integer(1, 10_000)
PID = integer(1, 1 << 22)
PORT = integer(1, 65535)  # 0 ("any free port") is refused: the lab's address must be known


LABEL_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
LABEL_KEY_RULE = "a letter or _, then up to 63 letters, digits or _"


def label_column(key: str, what: str = "label key") -> str:
    """The column of label ``key``: ``label_<key>``. The one place a key becomes a name
    (in Parquet, and in the fleet's SQL); a key outside :data:`LABEL_KEY` is refused in
    one line, so no key ever reaches SQL as anything but a plain identifier."""
    if not isinstance(key, str) or not LABEL_KEY.fullmatch(key):
        raise InputError(f"{what} {key!r} is not a plain name; give {LABEL_KEY_RULE}")
    return f"label_{key}"


def label(text: str) -> tuple[str, str]:
    """``KEY=VALUE``: a run's label. KEY matches :data:`LABEL_KEY`; VALUE is any text."""
    key, sep, value = text.partition("=")
    if not sep or not LABEL_KEY.fullmatch(key):
        raise argparse.ArgumentTypeError(f"{text!r}: give KEY=VALUE, KEY {LABEL_KEY_RULE}")
    return key, value


def param(text: str) -> tuple[str, str]:
    """``KEY=VALUE``, KEY a plain name: a scenario's or a notebook's parameter (one syntax
    for ``labkit run`` and ``labkit report``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r}: give KEY=VALUE, KEY a parameter's name")
    return key.strip(), value.strip()


LABEL_HELP = (f"label the run KEY=VALUE (host, release, load...; repeatable); KEY is "
              f"{LABEL_KEY_RULE}, VALUE any text")
