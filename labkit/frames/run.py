"""A loaded run directory (:class:`Run`, :func:`load`) and a loose capture file
(:func:`load_file`); see :mod:`labkit.frames`."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit import artifacts as A
from labkit.artifacts import Artifact
from labkit.errors import InputError
from labkit.frames.memray_start import Started, start_first
from labkit.manifest import Manifest
from labkit.rundir import read_manifest

if TYPE_CHECKING:
    import pandas as pd

    from labkit.frames.heapsnap import HeapSnapshot
    from labkit.frames.memray import MemrayCapture
    from labkit.frames.origins import OriginsCapture
    from labkit.frames.pyspy import PySpyCapture


class Run:
    """One loaded run directory. DataFrame properties raise a clear error if not captured."""

    def __init__(self, path: Path | str, *, verify: bool = True,
                 background_stats: bool = True,
                 memray_first: dict[str, bool] | Started | None = None) -> None:
        self.path = Path(path)
        self.background_stats = background_stats  # memray's statistics pass, in parallel
        self.background_churn = False  # memray's short-lived allocations pass, in parallel
        self.background_held = True  # memray's temporal high-water-mark pass, on opening
        self.open_memray_here = True  # False: memray's opening pass made in a worker only
        # memray's passes started before the manifest is read and verified, so that they
        # overlap it; only once it lists that very file does ``memray`` use them
        first = memray_first
        if isinstance(memray_first, dict):
            first = start_first(self.path / A.MEMRAY.name, memray_first)
        try:
            self.manifest: dict[str, Any] = read_manifest(self.path, verify=verify)
            self.meta = Manifest.from_dict(self.manifest)  # the same, typed
            self.t0_ns: int = self.meta.t0_ns
            if first is not None and self.path_of(A.MEMRAY) == first.path:
                from labkit.frames.memray import MemrayCapture

                self.__dict__["memray"] = MemrayCapture.from_started(
                    first, origin_epoch_s=self.meta.t0_epoch_s)
        finally:
            if first is not None:
                first.close()  # the workers not handed to the run's capture

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, kind={self.meta.kind!r}, files={self.files})"

    @property
    def distributions(self) -> dict[str, tuple[str, str]]:
        """``{top-level import name: (distribution, version)}`` installed in the target's
        environment, as its interpreter read them at capture; empty for older runs."""
        return self.meta.target.distributions

    @property
    def site_packages(self) -> tuple[str, ...]:
        """The target's ``site-packages`` folders, as its interpreter named them at
        capture; empty for older runs."""
        return self.meta.target.site_packages

    @property
    def files(self) -> list[str]:
        """Names of the capture files the manifest lists."""
        return list(self.meta.artifacts)

    def has(self, artifact: Artifact | str) -> bool:
        """Whether the run holds ``artifact`` (plain or packed as ``NAME.gz``)."""
        return self.path_of(artifact) is not None

    def path_of(self, artifact: Artifact | str) -> Path | None:
        """The file holding ``artifact`` in this run (plain or packed), or None."""
        name = artifact.name if isinstance(artifact, Artifact) else artifact
        files = self.files
        for candidate in (name, f"{name}.gz"):
            if candidate in files:
                return self.path / candidate
        return None

    def need(self, artifact: Artifact) -> Path:
        """The file holding ``artifact``, or a one-line :class:`InputError` naming the flag
        that captures it."""
        path = self.path_of(artifact)
        if path is None:
            raise InputError(f"{self.path} has no {artifact.what}; capture it with "
                             f"{artifact.flag}")
        return path

    @cached_property
    def gc_meta(self) -> dict[str, Any]:
        """The GC tracer's own record (interpreter, per-event cost, overhead)."""
        from labkit.frames import gctrace

        return gctrace.load_meta(self.need(A.GC_META))

    @cached_property
    def gc_columns(self) -> dict[str, Any]:
        """:attr:`gc_events`' columns as numpy arrays (no DataFrame, no pandas)."""
        from labkit.frames import gctrace

        path = self.need(A.GC_EVENTS)
        meta = self.gc_meta if self.has(A.GC_META) else {}
        return gctrace.gc_event_columns(path, self.t0_ns, meta.get("tracer_thread_id", 0))

    @cached_property
    def gc_events(self) -> pd.DataFrame:
        """One row per collection; see :func:`labkit.frames.gctrace.load_gc_events`."""
        import pandas as pd

        return pd.DataFrame(self.gc_columns)

    @property
    def gc_wall_s(self) -> float:
        """Seconds the GC tracer watched: from its start to its end, or to the last
        collection when the program ended without the tracer finishing (a signal or a cap)."""
        meta = self.gc_meta
        t0 = meta.get("t0_ns") or self.t0_ns  # the tracer sees nothing before it starts
        stops = self.gc_columns["t_stop_ns"]
        end = meta.get("t_end_ns") or (int(stops.max()) if len(stops) else t0)
        return max(1e-9, (end - t0) / 1e9)

    @cached_property
    def heap(self) -> pd.DataFrame:
        """In-process heap samples; see :func:`labkit.frames.gctrace.load_heap`."""
        from labkit.frames import gctrace

        return gctrace.load_heap(self.need(A.GC_HEAP), self.t0_ns)

    @cached_property
    def proc(self) -> pd.DataFrame:
        """Process samples; see :func:`labkit.frames.proc.load_proc`."""
        from labkit.frames import proc

        return proc.load_proc(self.need(A.PROC), self.t0_ns)

    @cached_property
    def fd_table(self) -> pd.DataFrame:
        """The descriptor table when the most fds were open, seen from outside; see
        :func:`labkit.frames.proc.load_fd_table`."""
        from labkit.frames.proc import load_fd_table

        return load_fd_table(self.need(A.PROC_FDS))

    @cached_property
    def origins(self) -> OriginsCapture:
        """Where the threads alive and the fds open at the end were created: ``.threads``,
        ``.fds``; see :mod:`labkit.frames.origins`."""
        from labkit.frames.origins import load_origins

        return load_origins(self.need(A.ORIGINS), self.t0_ns)

    @cached_property
    def heap_snapshot(self) -> HeapSnapshot:
        """The heap snapshot (object graph as arrays); ``labkit.analysis.heap.HeapGraph``
        of it gives retainers, dominators and paths."""
        from labkit.frames.heapsnap import load_heap_snapshot

        return load_heap_snapshot(self.need(A.HEAP_SNAPSHOT))

    @cached_property
    def memray(self) -> MemrayCapture:
        """The memray capture: ``.memory``, ``.allocations_at_peak``, ``.leaks``, ``.summary``."""
        from labkit.frames.memray import MemrayCapture

        return MemrayCapture(self.need(A.MEMRAY),
                             origin_epoch_s=self.meta.t0_epoch_s,
                             stats_in_background=self.background_stats,
                             churn_in_background=self.background_churn,
                             held_in_background=self.background_held,
                             open_here=self.open_memray_here)

    @cached_property
    def pyspy(self) -> PySpyCapture:
        """py-spy captures: ``.samples``, ``.functions`` (record) and ``.threads`` (dump)."""
        from labkit.frames.pyspy import PySpyCapture

        profile, dump = self.path_of(A.PYSPY_PROFILE), self.path_of(A.PYSPY_DUMP)
        if profile is None and dump is None:
            raise InputError(f"{self.path} has no py-spy capture; capture it with --pyspy")
        return PySpyCapture(profile, dump)


def load_file(path: Path | str) -> tuple[str, MemrayCapture | PySpyCapture]:
    """A loose capture file opened by what its first bytes say it is: ``("memray", cap)``,
    ``("speedscope", cap)`` or ``("dump", cap)``; any other kind is an :class:`InputError`."""
    from labkit.frames.memray import MemrayCapture
    from labkit.frames.pyspy import PySpyCapture
    from labkit.frames.sniff import sniff

    path = Path(path)
    kind = sniff(path)
    if kind == "memray":
        return kind, MemrayCapture(path)
    if kind == "speedscope":
        return kind, PySpyCapture(speedscope=path)
    if kind == "dump":
        return kind, PySpyCapture(dump=path)
    raise InputError(f"{path} is a {kind} file; summarise the run directory that holds it")


def load(run_dir: Path | str, *, background_stats: bool = True,
         memray_first: dict[str, bool] | Started | None = None) -> Run:
    """Open a run directory, verifying its manifest and checksums. ``background_stats``
    starts memray's statistics pass in a second process as soon as the capture is opened
    (what a notebook wants); a caller that never reads ``memray.summary`` turns it off.
    ``memray_first`` starts the given passes over the run's memray capture before the
    manifest is checked, or is those passes started already (a
    :class:`labkit.frames.memray_start.Started`, from ``start_first``); the run's capture
    uses them only if its manifest lists that very file, else they are stopped."""
    return Run(run_dir, background_stats=background_stats, memray_first=memray_first)
