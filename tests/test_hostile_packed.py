"""Packed (``.gz``) captures that expand without bound: refused in one line, in bounded memory."""

from __future__ import annotations

import hashlib
import json
import shutil
import zlib
from pathlib import Path

import pytest

from labkit.capture.gctrace import EVENTS_MAGIC
from labkit.errors import CorruptCaptureError
from labkit.frames.gctrace import read_event_records
from labkit.rundir import pack_run
from labkit.safefile import GZIP_FLOOR_BYTES, open_capture
from tests.conftest import assert_clean_error, labkit

DATASETS = Path(__file__).resolve().parents[1] / "datasets"
RUN = DATASETS / "fd-leak" / "leaky"


def bomb(path: Path, head: bytes, mib: int, fill: bytes = b"\0") -> None:
    """A gzip file of ``head`` then ``mib`` MiB of ``fill`` (deflate expands it ~1000x)."""
    co = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = fill * (1 << 20)
    with open(path, "wb") as fh:
        fh.write(co.compress(head))
        for _ in range(mib):
            fh.write(co.compress(chunk))
        fh.write(co.flush())


def swap_in(run: Path, name: str, head: bytes, fill: bytes) -> None:
    """Replace ``name`` in ``run`` by a bomb ``name.gz`` with a valid manifest entry."""
    (run / name).unlink()
    packed = run / f"{name}.gz"
    bomb(packed, head, GZIP_FLOOR_BYTES // (1 << 20) + 64, fill)
    m = json.loads((run / "manifest.json").read_text())
    data = packed.read_bytes()
    for art in m["artifacts"]:
        if art["name"] == name:
            art.update(name=packed.name, bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    (run / "manifest.json").write_text(json.dumps(m))


@pytest.mark.parametrize(("name", "fill"), [("gc_events.bin", b"\0"), ("proc.csv", b"9")])
def test_a_gzip_bomb_in_a_run_is_one_line(tmp_path: Path, name: str, fill: bytes) -> None:
    run = shutil.copytree(RUN, tmp_path / "run")
    head = EVENTS_MAGIC if name == "gc_events.bin" else (RUN / name).read_bytes()
    swap_in(run, name, head, fill)
    assert_clean_error(labkit("postmortem", str(run)), "gzip bomb", name)


def test_the_bound_refuses_while_reading(tmp_path: Path) -> None:
    p = tmp_path / "gc_events.bin.gz"
    bomb(p, EVENTS_MAGIC, GZIP_FLOOR_BYTES // (1 << 20) + 8)
    with pytest.raises(CorruptCaptureError, match="gzip bomb"):
        read_event_records(p)


def test_a_run_labkit_packed_still_reads(tmp_path: Path) -> None:
    run = shutil.copytree(RUN, tmp_path / "run")
    assert pack_run(run, min_bytes=1), "nothing packed"
    packed = run / "proc.csv.gz"
    with open_capture(packed, "proc") as fh:
        assert fh.read() == (RUN / "proc.csv").read_bytes()
    cp = labkit("postmortem", str(run))
    assert cp.returncode == 0, cp.stderr
