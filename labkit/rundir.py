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
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.errors import CorruptCaptureError, InputError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"


def utc_now() -> str:
    """The current time as an ISO-8601 UTC string."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
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
    }


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` through a temporary file and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=False, default=str)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    start_utc: str = field(default_factory=utc_now)
    t0_ns: int = field(default_factory=time.perf_counter_ns)
    t0_epoch_s: float = field(default_factory=time.time)

    def mark_origin(self) -> None:
        """Set the run's time origin (``t_s == 0``) to now, on both clocks."""
        self.start_utc = utc_now()
        self.t0_epoch_s = time.time()
        self.t0_ns = time.perf_counter_ns()

    def __post_init__(self) -> None:
        self.final = Path(self.final)
        if self.final.exists():
            raise InputError(
                f"{self.final} already exists; labkit never overwrites a run: "
                "choose another --out or remove it"
            )
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

    def file(self, name: str, producer: str) -> Path:
        """Reserve ``name`` in the run for ``producer``; returns the path to write."""
        self.producers[name] = producer
        return self.path / name

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
            if p.is_file():
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
    from labkit import __version__

    return __version__


def read_manifest(run_dir: Path | str, *, verify: bool = True) -> dict[str, Any]:
    """Load and check a run's manifest; raise a one-line :class:`LabkitError` on any mismatch."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        why = "a file" if run_dir.exists() else "not found"
        raise InputError(f"{run_dir} is not a run directory ({why}); give the path of a run")
    mpath = run_dir / MANIFEST
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(
            f"{run_dir} has no {MANIFEST}; it is not a labkit run (or it was never finished)"
        ) from None
    except OSError as exc:
        raise InputError(f"{mpath} is not readable ({exc.strerror}); check the path and its "
                         "permissions") from None
    except (ValueError, UnicodeDecodeError):
        raise CorruptCaptureError(
            f"{mpath} is not valid JSON; the run is damaged: re-capture it"
        ) from None
    if not isinstance(manifest, dict) or "schema_version" not in manifest:
        raise CorruptCaptureError(f"{mpath} is not a labkit manifest; re-capture the run")
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise CorruptCaptureError(
            f"{mpath} has schema_version {manifest['schema_version']!r}; this labkit reads "
            f"{SCHEMA_VERSION}: use the labkit version that wrote it"
        )
    if verify:
        for art in manifest.get("artifacts", []):
            _verify(run_dir, art)
    return manifest


def _verify(run_dir: Path, art: dict[str, Any]) -> None:
    p = run_dir / art["name"]
    try:
        size = p.stat().st_size
        digest = sha256_file(p)
    except FileNotFoundError:
        raise CorruptCaptureError(
            f"{p} is listed in the manifest but missing; restore it or re-capture the run"
        ) from None
    except OSError as exc:
        raise InputError(f"{p} is not readable ({exc.strerror}); check its permissions") from None
    if size != art["bytes"] or digest != art["sha256"]:
        raise CorruptCaptureError(
            f"{p} does not match its manifest checksum (modified or truncated); "
            "restore the original or re-capture the run"
        )


PACKABLE = ("gc_events.bin", "heap.csv", "proc.csv", "scenario.jsonl")


def pack_run(run_dir: Path | str, *, min_bytes: int = 1 << 20) -> list[str]:
    """Gzip a finished run's large capture files in place and update its manifest.

    Only files labkit's loaders read back transparently (:data:`PACKABLE`) and only those of
    at least ``min_bytes``. The run is verified first; returns the names packed.
    """
    import gzip
    import shutil

    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    packed = []
    for art in manifest["artifacts"]:
        if art["name"] not in PACKABLE or art["bytes"] < min_bytes:
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
