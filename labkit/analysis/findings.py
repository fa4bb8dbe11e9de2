"""A postmortem's findings: one verdict, the symptoms stated once, the suspects ranked.

A *symptom* is what the user already saw (memory, threads or fds rising, time in GC); a
*suspect* is a line of the user's own code with the evidence against it and what share of
a symptom it explains. Both come from :func:`labkit.analysis.clues.suspects`, the one place
where evidence is weighed; this module only arranges it for the terminal and for JSON.

Ranking: each piece of evidence scores the share of its symptom it explains (bytes held
at the peak, threads alive, fds open, CPU samples, threads parked), so 1.0 means "all of
it"; threads and fds found by the agent's origins start at 0.5 because their creation
stack is direct evidence. A line named by several sources is one suspect whose score is
``1 - prod(1 - s)`` over its evidence. Import-time allocations and labkit's own frames
never become suspects.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labkit.analysis.clues import suspects
from labkit.attribution import DEFAULT, Attribution

RANKING = ("How suspects are ranked: each piece of evidence scores the share of its symptom "
           "the line explains (memory held at the peak and gained over the run, short-lived "
           "bytes, threads or tasks started and still alive, fds opened and still open, CPU "
           "samples, threads parked), from 0 to 1; a line named by several sources combines "
           "them as 1 - (1 - a)(1 - b). Only your own code is ranked: the first frame outside "
           "the standard library, installed packages and labkit.")


@dataclass(frozen=True)
class Symptom:
    """What the user saw: ``kind`` (memory growth, threads growth...), ``what`` in a
    phrase, and the ``evidence`` in figures."""

    kind: str
    what: str
    evidence: str


@dataclass
class Suspect:
    """A line of the user's code, ranked: what it explains (one statement per piece of
    evidence) and that evidence by kind."""

    rank: int
    kind: str
    function: str
    file: str
    line: int
    stack: str
    score: float  # 0-1, pieces of evidence combined as 1 - prod(1 - s)
    explains: list[str] = field(default_factory=list)
    evidence: dict[str, str] = field(default_factory=dict)
    retained_by: list[str] | None = None  # a heap snapshot's path from a root to its memory
    retained_bytes: int | None = None  # what the objects on that path keep alive

    @property
    def where(self) -> str:
        """``function (file.py:line)``, as every face names it."""
        return f"{self.function} ({Path(self.file).name}:{self.line})"

    @property
    def kept_alive_by(self) -> str | None:
        """``SESSIONS_BY_ID in module __main__ (app.py)``: the first named
        holder on :attr:`retained_by` (a global, a class attribute, a closure variable),
        else the last container before the memory; None without a path."""
        from labkit.analysis.retention import holder

        return holder(self.retained_by) if self.retained_by else None


@dataclass
class Findings:
    """The verdict, the symptoms and the ranked suspects of one postmortem."""

    verdict: str
    symptoms: list[Symptom] = field(default_factory=list)
    suspects: list[Suspect] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what a better capture would add

    def to_json(self) -> dict[str, Any]:
        """``{"verdict", "symptoms": [{"kind", "what", "evidence"}], "suspects": [{"rank",
        "kind", "function", "file", "line", "stack", "score", "explains": [...],
        "evidence": {...}}], "notes": [...]}``."""
        return {"verdict": self.verdict, "symptoms": [asdict(s) for s in self.symptoms],
                "suspects": [asdict(s) for s in self.suspects], "notes": self.notes}


def findings(ev: Any, how: Attribution = DEFAULT) -> Findings:
    """Weigh the evidence (:func:`labkit.analysis.clues.suspects`) and arrange it."""
    df = suspects(ev, how)
    symptoms = [Symptom(r.kind, r.suspect, r.evidence) for r in df.itertuples()
                if r.code is None]
    ranked: list[Suspect] = []
    by_line: dict[tuple[str, int], Suspect] = {}
    for r in df.itertuples():  # best first: a line named by several sources is one suspect
        if r.code is None:
            continue
        key = (Path(r.code.file).name, int(r.code.line))
        if key in by_line:
            same = by_line[key]
            same.explains += r.code.explains
            same.evidence[r.kind] = r.evidence
            same.score = round(1 - (1 - same.score) * (1 - float(r.score)), 4)
            continue
        by_line[key] = Suspect(len(ranked) + 1, r.kind, r.code.function.rsplit(".", 1)[-1],
                               r.code.file, int(r.code.line), r.code.stack,
                               round(float(r.score), 4), list(r.code.explains),
                               {r.kind: r.evidence})
        ranked.append(by_line[key])
    ranked.sort(key=lambda s: -s.score)
    for i, s in enumerate(ranked, 1):
        s.rank = i
    joined = _retention(ev, ranked, how)
    if ranked:
        top = ranked[0]
        lead = f"{symptoms[0].what}; " if symptoms else ""
        verdict = f"{lead}the top suspect is {top.where}, which explains {top.explains[0]}"
    elif symptoms:
        verdict = f"{symptoms[0].what}; no line of your code stands out in these captures"
    else:
        verdict = "nothing abnormal found in these captures"
    return Findings(verdict, symptoms, ranked, _notes(ev, ranked) + joined)


def _retention(ev: Any, ranked: list[Suspect], how: Attribution) -> list[str]:
    """Memory suspects gain what keeps their memory alive, from a heap snapshot; the
    note says which join was made, or why the snapshot was left out."""
    error = getattr(ev, "heap_snapshot_error", None)
    if error:
        return [f"{error}; this postmortem goes on without it"]
    snap = getattr(ev, "heap_snapshot", None)
    if snap is None:
        return []
    from labkit.analysis.retention import join

    return [join(snap, ev.memray, ranked, how)]


def _notes(ev: Any, ranked: list[Suspect]) -> list[str]:
    """What the captures could not show, and how to capture it."""
    memory = any(e.startswith(("memory", "never freed")) for s in ranked for e in s.explains)
    if ev.memray is not None and memory and not ev.memray.metadata.trace_python_allocators:
        return ["memray recorded pymalloc's arenas, not each small object: objects that keep "
                "a large buffer alive (closures, callbacks, listeners) show up only in a "
                "capture with --trace-python-allocators"]
    return []
