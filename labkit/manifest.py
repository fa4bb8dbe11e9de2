"""A run's manifest as typed data: what labkit reads of ``manifest.json``, named once.

:func:`labkit.rundir.read_manifest` checks the JSON against its schema
(``labkit/schemas/manifest.schema.json``); :meth:`Manifest.from_dict` then gives the fields
labkit's modules use, with their defaults for runs recorded before a field existed. The raw
dictionary stays available as :attr:`Manifest.data` (an export copies it as written).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Target:
    """The interpreter the program ran in."""

    version: str = ""
    implementation: str = ""
    gc_threshold: list[int] | None = None
    pid: int | None = None
    distributions: dict[str, tuple[str, str]] = field(default_factory=dict)
    site_packages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """How the program ended."""

    reason: str = ""
    returncode: int | None = None


@dataclass(frozen=True)
class Manifest:
    """The fields of a checked manifest that labkit reads."""

    kind: str
    start_utc: str
    end_utc: str
    command: tuple[str, ...]
    t0_ns: int
    t0_epoch_s: float | None
    artifacts: tuple[str, ...]
    labels: dict[str, str]
    params: dict[str, Any]
    hostname: str
    target: Target
    outcome: Outcome
    data: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_dict(cls, m: dict[str, Any]) -> Manifest:
        """The typed view of a manifest that :func:`labkit.rundir.check_manifest` passed."""
        t = m.get("target") or {}
        dists = t.get("distributions") if isinstance(t.get("distributions"), dict) else {}
        out = m.get("outcome") or {}
        threshold = t.get("gc_threshold")
        return cls(
            kind=str(m.get("kind", "")),
            start_utc=str(m.get("start_utc", "")),
            end_utc=str(m.get("end_utc", "")),
            command=tuple(str(a) for a in m.get("command", m.get("argv", []))),
            t0_ns=int(m.get("t0_ns") or 0),
            t0_epoch_s=m.get("t0_epoch_s"),
            artifacts=tuple(a["name"] for a in m.get("artifacts", [])),
            labels=dict(m.get("labels") or {}),
            params=dict(m.get("params") or {}),
            hostname=str((m.get("host") or {}).get("hostname", "")),
            target=Target(version=str(t.get("version", "")),
                          implementation=str(t.get("implementation", "")),
                          gc_threshold=list(threshold) if threshold else None,
                          pid=t.get("pid"),
                          distributions={str(k): (str(v[0]), str(v[1]))
                                         for k, v in dists.items()
                                         if isinstance(v, list | tuple) and len(v) == 2},
                          site_packages=tuple(str(p) for p in t.get("site_packages") or ()
                                              if isinstance(p, str))),
            outcome=Outcome(reason=str(out.get("reason", "")),
                            returncode=out.get("returncode")),
            data=m,
        )

    @property
    def variant(self) -> str | None:
        """The scenario variant (or setting) a ``labkit run`` ran, if any."""
        return self.params.get("variant")

    @property
    def values(self) -> dict[str, Any]:
        """A scenario run's parameter values."""
        return dict(self.params.get("values") or {})
