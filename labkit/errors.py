"""Errors a user can cause, each with its CLI exit code and a one-line message: what to do."""

from __future__ import annotations


class LabkitError(Exception):
    """Base class: the CLI prints ``labkit: <message>`` and exits with ``exit_code``."""

    exit_code = 2


class UsageError(LabkitError):
    """The command line does not say what to run."""


class InputError(LabkitError):
    """A path, program, pid or file given by the user is missing or unreadable."""


class CorruptCaptureError(LabkitError):
    """A capture file or run directory is damaged, truncated or not what it claims to be."""


class ProfilerPermissionError(LabkitError):
    """A profiler could not attach (ptrace denied)."""


class UnknownScenarioError(LabkitError):
    """A scenario, variant or setting name that labkit does not know."""
