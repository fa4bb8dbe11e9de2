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

When the evidence passes through an installed package, the suspect is keyed by the
package's *site* (its innermost frame: where it allocated, started the thread, opened the
fd), whichever line of yours called it; the heaviest caller is named as "your code"
(:mod:`labkit.analysis.libraries`). Otherwise it is keyed by the user's line.

The verdict tells one story: it leads with the symptom the top suspect explains; when the
top suspect explains none of the symptoms, it says so and names the suspect that explains
the main symptom, if any. Captures of different programs get one verdict each.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from labkit.analysis.clues import suspects
from labkit.analysis.libraries import Library
from labkit.analysis.programs import split_by_program
from labkit.attribution import DEFAULT, Attribution

RANKING = ("How suspects are ranked: each piece of evidence scores the share of its symptom "
           "the line explains (memory held at the peak and gained over the run, short-lived "
           "bytes, threads or tasks started and still alive, fds opened and still open, CPU "
           "samples, threads parked), from 0 to 1; a line named by several sources combines "
           "them as 1 - (1 - a)(1 - b). Your own code is the first frame outside the standard "
           "library, installed packages and labkit; when the evidence passes through an "
           "installed package, its innermost frame there (the package site) is what ranks, "
           "with your line as its caller. Samples that wait (locks, sockets, joins) are "
           "wall-clock time, never CPU, and weigh a quarter.")


@dataclass(frozen=True)
class Symptom:
    """What the user saw: ``kind`` (memory growth, threads growth...), ``what`` in a
    phrase, and the ``evidence`` in figures."""

    kind: str
    what: str
    evidence: str


@dataclass(frozen=True)
class Missing:
    """Evidence the captures cannot give (``evidence``, a phrase) and ``why`` not."""

    evidence: str
    why: str


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
    library: Library | None = None  # the installed package the evidence passes through
    retained_by: list[str] | None = None  # a heap snapshot's path from a root to its memory
    retained_bytes: int | None = None  # what the objects on that path keep alive

    @property
    def where(self) -> str:
        """``function (file.py:line)``: the user's line."""
        return f"{self.function} ({Path(self.file).name}:{self.line})"

    @property
    def named(self) -> str:
        """How every face names the suspect: ``where``, or for a package site ``inside
        aiohttp 3.12.2: CookieJar.filter_cookies (aiohttp/cookiejar.py:356), called from
        your worker (app.py:99)``."""
        lib = self.library
        if lib is None:
            return self.where
        own = (lib.site.file, lib.site.line) != (self.file, self.line)
        return f"inside {lib.label}: {lib.site.where}" + (
            f", called from your {self.where}" if own else "")

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
    missing: list[Missing] = field(default_factory=list)  # what these captures cannot show

    def to_json(self) -> dict[str, Any]:
        """``{"verdict", "symptoms": [{"kind", "what", "evidence"}], "suspects": [{"rank",
        "kind", "function", "file", "line", "stack", "score", "explains": [...],
        "evidence": {...}, "library": null | {"package", "version", "entry": {"function",
        "file", "line"}, "site": {...}}}], "notes": [...], "missing": [{"evidence",
        "why"}]}``."""
        return {"verdict": self.verdict, "symptoms": [asdict(s) for s in self.symptoms],
                "suspects": [asdict(s) for s in self.suspects], "notes": self.notes,
                "missing": [asdict(m) for m in self.missing]}


# what each statement a suspect explains is evidence of, and each symptom kind shows
_TOPIC = {"memory": "memory", "memory growth": "memory", "objects": "memory",
          "never freed": "memory", "native memory": "native", "churn": "churn",
          "threads": "threads", "tasks": "threads", "fds": "fds", "cpu": "cpu",
          "waiting": "waiting"}
_SYMPTOM_TOPIC = {"memory growth": "memory", "rss growth": "memory", "native memory": "native",
                  "allocation churn": "churn", "threads growth": "threads",
                  "parked thread family": "threads", "fds growth": "fds", "fd table": "fds",
                  "children growth": "children", "garbage collector": "gc"}


def _topic(statement: str) -> str:
    return _TOPIC.get(statement.split(":", 1)[0], "")


def findings(ev: Any, how: Attribution = DEFAULT) -> Findings:
    """Weigh the evidence (:func:`labkit.analysis.clues.suspects`) and arrange it; captures
    of different programs (loose files from different pids) get a verdict each."""
    found = _findings(ev, how)
    programs = split_by_program(ev)
    if programs:
        parts = [f"pid {pid} ({', '.join(kinds)}): {_findings(sub, how).verdict}"
                 for pid, (kinds, sub) in programs.items()]
        found.verdict = (f"these captures come from {len(programs)} different programs, "
                         "read them apart: " + " | ".join(parts))
        found.notes.insert(0, "the captures given come from different processes ("
                           + "; ".join(f"pid {pid}: {', '.join(k)}"
                                       for pid, (k, _) in programs.items())
                           + "); the suspects below mix them")
    return found


def _findings(ev: Any, how: Attribution) -> Findings:
    df = suspects(ev, how)
    symptoms = [Symptom(r.kind, r.suspect, r.evidence) for r in df.itertuples()
                if r.code is None]
    ranked: list[Suspect] = []
    by_key: dict[tuple[Any, ...], Suspect] = {}
    for r in df.itertuples():  # best first: a line named by several sources is one suspect
        if r.code is None:
            continue
        lib = r.code.library
        key = ("lib", lib.site.file, lib.site.line, lib.site.function) if lib is not None else \
            (Path(r.code.file).name, int(r.code.line))
        if key in by_key:
            same = by_key[key]
            same.explains += r.code.explains
            same.evidence[r.kind] = r.evidence
            same.score = round(1 - (1 - same.score) * (1 - float(r.score)), 4)
            continue
        by_key[key] = Suspect(len(ranked) + 1, r.kind, r.code.function.rsplit(".", 1)[-1],
                              r.code.file, int(r.code.line), r.code.stack,
                              round(float(r.score), 4), list(r.code.explains),
                              {r.kind: r.evidence}, lib)
        ranked.append(by_key[key])
    ranked.sort(key=lambda s: -s.score)
    for i, s in enumerate(ranked, 1):
        s.rank = i
    joined = _retention(ev, ranked, how)
    return Findings(_verdict(symptoms, ranked), symptoms, ranked,
                    _notes(ev, ranked) + joined, _missing(ev))


def _missing(ev: Any) -> list[Missing]:
    """What the captures given cannot show, and why (an aggregated memray capture)."""
    memray = getattr(ev, "memray", None)
    return [Missing(**m) for m in getattr(memray, "missing", None) or []]


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


def _verdict(symptoms: list[Symptom], ranked: list[Suspect]) -> str:
    """One story: the symptom the top suspect explains, then the suspect and that statement;
    else the top suspect's own statement, and the main symptom with the suspect that
    explains it (or that none does)."""
    if not ranked:
        if symptoms:
            return f"{symptoms[0].what}; no line of your code stands out in these captures"
        return "nothing abnormal found in these captures"
    top = ranked[0]
    for sym in symptoms:
        topic = _SYMPTOM_TOPIC.get(sym.kind, "")
        said = next((e for e in top.explains if e.startswith(f"{sym.kind}:")), None) or \
            next((e for e in top.explains if _topic(e) == topic), None)
        if said is not None:
            return f"{sym.what}; the top suspect is {top.named}, which explains {said}"
    verdict = f"the top suspect is {top.named}, which explains {top.explains[0]}"
    if symptoms:
        topic = _SYMPTOM_TOPIC.get(symptoms[0].kind, "")
        other = next((s for s in ranked if any(_topic(e) == topic for e in s.explains)), None)
        verdict += (f"; {symptoms[0].what}, explained best by suspect {other.rank}, "
                    f"{other.named}" if other is not None else
                    f"; {symptoms[0].what}, which no suspect here explains")
    return verdict


def _notes(ev: Any, ranked: list[Suspect]) -> list[str]:
    """What the captures could not show, and how to capture it."""
    memory = any(e.startswith(("memory", "never freed")) for s in ranked for e in s.explains)
    if ev.memray is not None and memory and not ev.memray.metadata.trace_python_allocators:
        return ["memray recorded pymalloc's arenas, not each small object: objects that keep "
                "a large buffer alive (closures, callbacks, listeners) show up only in a "
                "capture with --trace-python-allocators"]
    return []
