"""Learner records: what a learner predicted, ran, measured and checked, one JSON file each.

labkit's notebook functions (:class:`labkit.notebook.Scenario`, :func:`labkit.notebook.check`)
call :func:`write_record`; the trainer's view (:mod:`labkit.analysis.room`) reads them back
with :func:`read_room`. A record is a small JSON object, version 1, described by
``labkit/schemas/record.schema.json``::

    {"format": "labkit-record", "version": 1, "kind": "prediction" | "run" | "signature"
     | "check", "time": ISO-8601 UTC, "user", "host", "session" (hex, one per kernel),
     "scenario": name or null, ...the kind's own fields}

Records go to ``~/.labkit/records/`` (``LABKIT_RECORDS`` names another folder, see
:func:`records_dir`; set to an empty string, nothing is recorded), each written atomically
under a name of its own, never over another file. Recording never fails the notebook: a
home that cannot be written gives one warning per kernel. A report being rendered
(:data:`labkit.progress.REPORT_ENV`) is not a learner's work and records nothing.
"""

from __future__ import annotations

import datetime as dt
import errno
import getpass
import json
import math
import os
import socket
import sys
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.errors import LabkitError
from labkit.progress import REPORT_ENV

RECORDS_ENV = "LABKIT_RECORDS"
FORMAT, VERSION = "labkit-record", 1
KINDS = ("prediction", "run", "signature", "check")
MAX_RECORD_BYTES = 256 * 1024
MAX_RECORDS = 20_000  # per learner: more is not a class session

_state: dict[str, Any] = {"session": None, "seq": 0, "warned": False}


def records_dir() -> Path | None:
    """Where this process records: ``$LABKIT_RECORDS`` (``~`` and ``$VARS`` in it expanded:
    ``/srv/class-records/$JUPYTERHUB_USER``), else ``~/.labkit/records``; None when
    ``LABKIT_RECORDS`` is set empty (recording off)."""
    env = os.environ.get(RECORDS_ENV)
    if env is not None:
        return Path(os.path.expandvars(env)).expanduser() if env.strip() else None
    return Path.home() / ".labkit" / "records"


def _number(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_record(kind: str, scenario: str | None, **fields: Any) -> dict[str, Any]:
    """A record of ``kind`` for ``scenario`` with this process's user, host and session;
    numbers in ``predictions``, ``rows[].values``, ``prediction`` and ``measured`` become
    finite floats or None."""
    if kind not in KINDS:
        raise ValueError(f"unknown record kind {kind!r}")
    if _state["session"] is None:
        _state["session"] = uuid.uuid4().hex
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # a uid with no passwd entry (containers)
        user = str(os.getuid())
    rec: dict[str, Any] = {"format": FORMAT, "version": VERSION, "kind": kind,
                           "time": _now().isoformat(timespec="microseconds"),
                           "user": user[:200], "host": socket.gethostname()[:255],
                           "session": _state["session"], "scenario": scenario}
    for key, value in fields.items():
        if key == "predictions":
            value = {str(k): _number(v) for k, v in value.items()}
        elif key in ("prediction", "measured"):
            value = _number(value)
        elif key == "rows":
            value = [{"metric": str(r["metric"]), "expect": str(r["expect"]),
                      "ok": bool(r["ok"]),
                      "values": {str(k): _number(v) for k, v in r["values"].items()}}
                     for r in value]
        rec[key] = value
    return rec


def write_record(kind: str, scenario: str | None, **fields: Any) -> Path | None:
    """Record one event (:func:`make_record`) atomically in :func:`records_dir`; the file's
    path, or None when nothing was written (recording off, a report rendering, or the
    folder not writable: then one warning line per process on stderr). Never raises."""
    folder = records_dir()
    if folder is None or os.environ.get(REPORT_ENV):
        return None
    tmp = None
    try:
        rec = make_record(kind, scenario, **fields)
        data = json.dumps(rec, allow_nan=False, indent=1).encode("utf-8")
        folder.mkdir(parents=True, exist_ok=True)
        _state["seq"] += 1
        stamp = _now().strftime("%Y%m%dT%H%M%S.%fZ")
        name = f"{stamp}-{kind}-{rec['session'][:12]}-{_state['seq']:05d}.json"
        fd, tmp = tempfile.mkstemp(prefix=".record.", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        target = folder / name
        _publish(Path(tmp), target)
        return target
    except (OSError, ValueError, TypeError, KeyError) as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if not _state["warned"]:
            _state["warned"] = True
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            print(f"labkit: cannot record this {kind} in {folder} ({why}); the "
                  "trainer's view will not show it", file=sys.stderr)
        return None


def _publish(tmp: Path, target: Path) -> None:
    """Move ``tmp`` to ``target`` whole, never over a file there: a hard link where the
    filesystem has them, else (SMB shares, some FUSE mounts) a rename after checking, safe
    as the name is this session's own."""
    try:
        os.link(tmp, target)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
        if target.exists():
            raise FileExistsError(errno.EEXIST, "a record of that name exists") from None
        os.replace(tmp, target)
    else:
        os.unlink(tmp)


@dataclass
class LearnerRecords:
    """One learner's valid records, oldest first, and the files skipped with why."""

    name: str
    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "FILE: why"
    unreadable: str = ""  # why the records folder itself could not be listed

    def skipped_line(self) -> str:
        """One line for the skipped records, or the unreadable folder ("" when neither)."""
        if self.unreadable:
            return f"{self.name}: records unreadable ({self.unreadable})"
        if not self.skipped:
            return ""
        n = len(self.skipped)
        return (f"{self.name}: {n} record{'s' if n != 1 else ''} skipped (first: "
                f"{self.skipped[0]})")


def read_record(path: Path) -> dict[str, Any]:
    """One record, checked against its schema; a one-line :class:`LabkitError` otherwise."""
    from labkit.safefile import read_json
    from labkit.schemas import check

    doc = read_json(path, "record", max_bytes=MAX_RECORD_BYTES, follow_symlinks=False)
    if isinstance(doc, dict) and doc.get("format") == FORMAT and \
            doc.get("version") not in (None, VERSION):
        raise LabkitError(f"record {path} is version {doc.get('version')!r}; this labkit "
                          f"reads version {VERSION}")
    check(doc, "record", path, "record", "it is damaged or not a labkit record")
    return doc


def records_folder(learner: Path) -> Path:
    """A learner's records folder: ``HOME/.labkit/records`` for a home, else the folder
    itself (a folder of records)."""
    home = learner / ".labkit" / "records"
    return home if home.is_dir() else learner


def read_learner(learner: Path) -> LearnerRecords:
    """Every record of the learner at ``learner`` (a home or a records folder), oldest
    first; damaged, foreign and unreadable files are skipped and named."""
    out = LearnerRecords(learner.name, learner)
    folder = records_folder(learner)
    try:
        names = sorted(p for p in folder.iterdir() if p.suffix == ".json")
    except OSError as exc:
        out.unreadable = f"{folder}: {exc.strerror or exc}; run as a user who can read it"
        return out
    for p in names[:MAX_RECORDS]:
        try:
            out.records.append(read_record(p))
        except LabkitError as exc:
            out.skipped.append(f"{p.name}: {str(exc).replace(f'record {p} ', '')}")
        except OSError as exc:
            out.skipped.append(f"{p.name}: {exc.strerror or exc}")
    if len(names) > MAX_RECORDS:
        out.skipped.append(f"{len(names) - MAX_RECORDS} records past the first {MAX_RECORDS}")
    out.records.sort(key=lambda r: _parse_time(r["time"]))
    return out


def _parse_time(text: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def learner_dirs(room: Path) -> list[Path]:
    """The learners of ``room``: its sub-folders (homes or records folders), by name; hidden
    ones (``.cache``...) are not learners. A single home (it has ``.labkit/records``), or a
    records folder with no sub-folder, is a room of one."""
    from labkit.errors import InputError

    if not room.is_dir():
        raise InputError(f"{room} is not a folder; give a folder of learners' homes "
                         "(DIR/<learner>/.labkit/records/) or of records folders")
    try:
        subs = [p for p in room.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError as exc:
        raise InputError(f"cannot list {room}: {exc.strerror}; check its permissions") \
            from None
    if (room / ".labkit" / "records").is_dir() or (not subs and any(room.glob("*.json"))):
        return [room]
    return sorted(subs, key=lambda p: p.name)


def read_room(room: Path | str, learners: Iterable[Path] | None = None) -> list[LearnerRecords]:
    """Every learner's records under ``room`` (:func:`learner_dirs`), by learner name."""
    return [read_learner(p) for p in (learners if learners is not None
                                      else learner_dirs(Path(room)))]
