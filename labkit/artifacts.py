"""The run directory's files, declared once.

Every consumer (capture, frames, compare, reports, scenarios, ``pack_run``) names a run's
files through these :class:`Artifact` constants, never by string. The GC tracer's names come
from :mod:`labkit.capture.gctrace`, because that module runs inside the traced interpreter
without labkit and must know them itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from labkit.capture import MEMRAY_FILE, gctrace, heapsnap, origins


@dataclass(frozen=True)
class Artifact:
    """One kind of file in a run: its name, what writes it, what it holds, the flag that
    captures it, and whether :func:`labkit.rundir.pack_run` may gzip it (its loader reads
    ``NAME.gz`` transparently)."""

    name: str
    producer: str
    what: str
    flag: str
    packable: bool = False


MANIFEST = "manifest.json"

GC_EVENTS = Artifact(gctrace.EVENTS_FILE, "labkit.gctrace", "GC trace", "--gc", packable=True)
GC_HEAP = Artifact(gctrace.HEAP_FILE, "labkit.gctrace", "heap samples", "--gc", packable=True)
GC_META = Artifact(gctrace.META_FILE, "labkit.gctrace", "GC trace", "--gc")
PROC = Artifact("proc.csv", "labkit.proc", "process samples", "--proc", packable=True)
PROC_FDS = Artifact("proc_fds.json", "labkit.proc", "descriptor table at its peak", "--proc")
MEMRAY = Artifact(MEMRAY_FILE, "memray", "memray capture", "--memray")
PYSPY_PROFILE = Artifact("pyspy.speedscope.json", "py-spy", "py-spy profile", "--pyspy")
PYSPY_FLAMEGRAPH = Artifact("pyspy.flamegraph.svg", "py-spy", "py-spy flamegraph", "--pyspy")
PYSPY_DUMP = Artifact("pyspy.dump.json", "py-spy dump", "py-spy thread dump",
                      "`labkit attach --dump`")
ORIGINS = Artifact(origins.ORIGINS_FILE, "labkit.origins", "thread and fd origins",
                   "`labkit capture` or `labkit run` (the in-process agent)")
METRICS = Artifact("scenario.jsonl", "scenario", "scenario metrics", "`labkit run`",
                   packable=True)
HEAP_SNAPSHOT = Artifact(heapsnap.SNAPSHOT_FILE, "labkit.heapsnap",
                         "heap snapshot (object graph)", "--heap-snapshot", packable=False)

ALL: tuple[Artifact, ...] = (GC_EVENTS, GC_HEAP, GC_META, PROC, PROC_FDS, MEMRAY,
                             PYSPY_PROFILE, PYSPY_FLAMEGRAPH, PYSPY_DUMP, ORIGINS, METRICS,
                             HEAP_SNAPSHOT)
BY_NAME: dict[str, Artifact] = {a.name: a for a in ALL}
