"""The run directory: capture files plus ``manifest.json``.

A run is built in a sibling ``NAME.partial-XXXX`` folder and published by one ``rename`` when
it is complete, so a crash never leaves a half-written run under the final name and an
existing run is never overwritten. The manifest records what produced each file, its size
and sha256; :func:`read_manifest` refuses a run whose schema or checksums do not match.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import stat
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.artifacts import BY_NAME, MANIFEST, Artifact
from labkit.errors import CorruptCaptureError, InputError
from labkit.outputs import check_run_output, write_text_atomic
from labkit.safefile import open_regular, read_json
from labkit.version import __version__

SCHEMA_VERSION = 1
MANIFEST_MAX_BYTES = 16 * 1024 * 1024


def utc_now() -> str:
    """The current time as an ISO-8601 UTC string."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def sha256_file(path: Path, *, follow_symlinks: bool = True) -> str:
    """Hex sha256 of a regular file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open_regular(path, "file", follow_symlinks=follow_symlinks) as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def host_facts() -> dict[str, Any]:
    """The interpreter and platform labkit itself runs on."""
    import gc

    return {
        "version": sys.version.split()[0],
        "implementation": sys.implementation.name,
        "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
        "gc_threshold": list(gc.get_threshold()),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "hostname": platform.node(),
    }


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` atomically (:func:`labkit.outputs.write_text_atomic`)."""
    write_text_atomic(path, json.dumps(data, indent=1, default=str) + "\n")


def default_run_path(label: str, root: Path | None = None) -> Path:
    """``runs/<label>-<UTC timestamp>`` under ``root`` (default: the current directory)."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d-%H%M%S")
    base = (root or Path("runs")) / f"{label}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


@dataclass
class RunWriter:
    """Builds one run directory; see the module docstring for the publishing contract."""

    final: Path
    kind: str
    argv: list[str]
    params: dict[str, Any] = field(default_factory=dict)
    producers: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    start_utc: str = field(default_factory=utc_now)
    t0_ns: int = field(default_factory=time.perf_counter_ns)
    t0_epoch_s: float = field(default_factory=time.time)

    def mark_origin(self) -> None:
        """Set the run's time origin (``t_s == 0``) to now, on both clocks."""
        self.start_utc = utc_now()
        self.t0_epoch_s = time.time()
        self.t0_ns = time.perf_counter_ns()

    def __post_init__(self) -> None:
        self.final = check_run_output(Path(self.final))
        try:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            self.path = Path(
                tempfile.mkdtemp(prefix=self.final.name + ".partial-", dir=self.final.parent)
            )
            self.path.chmod(0o755)  # mkdtemp makes it private; a run is meant to be shared
        except OSError as exc:
            raise InputError(
                f"cannot create a run directory under {self.final.parent}: {exc.strerror}; "
                "choose a writable --out"
            ) from None

    def file(self, artifact: Artifact) -> Path:
        """Reserve ``artifact`` in the run; returns the (absolute) path to write."""
        self.producers[artifact.name] = artifact.producer
        return (self.path / artifact.name).absolute()

    def abandon(self) -> None:
        """Remove the unpublished run (nothing of the user's is in it)."""
        import shutil

        if self.path != self.final:
            shutil.rmtree(self.path, ignore_errors=True)

    def publish(self, **extra: Any) -> Path:
        """Checksum every reserved file that exists, write the manifest, rename into place."""
        artifacts = []
        for name, producer in self.producers.items():
            p = self.path / name
            if p.is_file() and not p.is_symlink():
                artifacts.append({"name": name, "producer": producer,
                                  "bytes": p.stat().st_size, "sha256": sha256_file(p)})
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "labkit_version": _labkit_version(),
            "kind": self.kind,
            "argv": self.argv,
            "start_utc": self.start_utc,
            "end_utc": utc_now(),
            "t0_ns": self.t0_ns,
            "t0_epoch_s": self.t0_epoch_s,
            "host": host_facts(),
            "params": self.params,
            "labels": self.labels,
            **extra,
            "artifacts": artifacts,
        }
        write_json_atomic(self.path / MANIFEST, manifest)
        if self.final.exists():
            raise InputError(
                f"{self.final} appeared while capturing; the capture is kept in {self.path}"
            )
        os.rename(self.path, self.final)
        self.path = self.final
        return self.final


def _labkit_version() -> str:
    return __version__


def read_manifest(run_dir: Path | str, *, verify: bool = True) -> dict[str, Any]:
    """Load and check a run's manifest; raise a one-line :class:`LabkitError` on any mismatch.

    The manifest must have the expected shape (see :func:`check_manifest`); with ``verify``
    every artifact must be a regular file inside the run (no symlink, device or FIFO) whose
    size and sha256 match."""
    run_dir = Path(run_dir)
    mpath = run_dir / MANIFEST
    try:
        if not run_dir.is_dir():
            why = "a file" if run_dir.exists() else "not found"
            raise InputError(f"{run_dir} is not a run directory ({why}); give the path of a run")
        if not mpath.exists() and not mpath.is_symlink():
            raise InputError(
                f"{run_dir} has no {MANIFEST}; it is not a labkit run (or it was never finished)"
            )
    except OSError as exc:  # a folder that cannot be entered (permissions)
        raise InputError(f"{run_dir} cannot be read ({exc.strerror}); check its permissions "
                         "and those of the folders above it") from None
    manifest = read_json(mpath, "manifest", max_bytes=MANIFEST_MAX_BYTES,
                         follow_symlinks=False)
    check_manifest(manifest, mpath)
    if verify:
        for art in manifest["artifacts"]:
            _verify(run_dir, art)
    return manifest


def check_manifest(manifest: Any, mpath: Path) -> None:
    """Raise :class:`CorruptCaptureError` unless ``manifest`` is a labkit manifest: valid
    against ``labkit/schemas/manifest.schema.json`` (types, and ranges that fit int64), its
    artifacts plain file names, each listed once."""
    from labkit.schemas import check

    def bad(why: str) -> CorruptCaptureError:
        return CorruptCaptureError(f"{mpath} {why}; the run is damaged: re-capture it")

    if not isinstance(manifest, dict) or "schema_version" not in manifest:
        raise CorruptCaptureError(f"{mpath} is not a labkit manifest; re-capture the run")
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise CorruptCaptureError(
            f"{mpath} has schema_version {_short(manifest['schema_version'])}; this labkit "
            f"reads {SCHEMA_VERSION}: use the labkit version that wrote it"
        )
    check(manifest, "manifest", mpath, "manifest", "the run is damaged: re-capture it")
    seen = set()
    for art in manifest.setdefault("artifacts", []):
        name = art["name"]
        if not _plain_name(name):
            raise bad(f"names an artifact outside the run ({_short(name)}); artifact names "
                      "are plain file names")
        if name in seen:
            raise bad(f"lists {name} twice")
        seen.add(name)


def _plain_name(name: str) -> bool:
    return (0 < len(name) <= 255 and name not in (".", "..", MANIFEST)
            and not any(c in name for c in "/\\\0") and name.isprintable())


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _verify(run_dir: Path, art: dict[str, Any]) -> None:
    p = run_dir / art["name"]
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        raise CorruptCaptureError(
            f"{p} is listed in the manifest but missing; restore it or re-capture the run"
        ) from None
    except OSError as exc:
        raise InputError(f"{p} is not readable ({exc.strerror}); check its permissions") from None
    if stat.S_ISLNK(st.st_mode):
        raise CorruptCaptureError(f"{p} is a symbolic link; a run holds its own files: "
                                  "replace the link with the file or re-capture the run")
    if not stat.S_ISREG(st.st_mode):
        raise CorruptCaptureError(f"{p} is not a regular file (a device, FIFO or folder); "
                                  "re-capture the run")
    if st.st_size != art["bytes"] or sha256_file(p, follow_symlinks=False) != art["sha256"]:
        raise CorruptCaptureError(
            f"{p} does not match its manifest checksum (modified or truncated); "
            "restore the original or re-capture the run"
        )


def pack_run(run_dir: Path | str, *, min_bytes: int = 1 << 20) -> list[str]:
    """Gzip a finished run's large capture files in place and update its manifest.

    Only files labkit's loaders read back transparently (``Artifact.packable``) and only those of
    at least ``min_bytes``. The run is verified first; returns the names packed.
    """
    import gzip
    import shutil

    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    packed = []
    for art in manifest["artifacts"]:
        kind = BY_NAME.get(art["name"])
        if kind is None or not kind.packable or art["bytes"] < min_bytes:
            continue
        src = run_dir / art["name"]
        dst = src.with_name(src.name + ".gz")
        tmp = dst.with_name(dst.name + ".tmp")
        with open(src, "rb") as fin, open(tmp, "wb") as raw, \
                gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as fout:
            shutil.copyfileobj(fin, fout)
        os.replace(tmp, dst)
        art.update(name=dst.name, producer=art["producer"] + " (gzip)",
                   bytes=dst.stat().st_size, sha256=sha256_file(dst))
        packed.append(src.name)
        write_json_atomic(run_dir / MANIFEST, manifest)
        src.unlink()
    return packed
