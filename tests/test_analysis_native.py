"""Native memory, captured for real with ``labkit capture --native --memray``: RSS that
memray's heap does not hold is named native memory with its Python entry, and a package's
compiled code that allocates is named as the site."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import labkit

pytestmark = pytest.mark.slow

CTYPES_LEAK = """
import ctypes, time
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.memset.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t)
kept = []

def handle(n):
    p = libc.malloc(1 << 20)
    libc.memset(p, 1, 1 << 20)
    kept.append(p)

for i in range(150):
    handle(i)
    time.sleep(0.01)
"""

NUMPY_LEAK = """
import time
import numpy as np
kept = []

def handle():
    kept.append(np.ones(1 << 18))

for i in range(100):
    handle()
    time.sleep(0.01)
"""


def _postmortem(tmp_path: Path, source: str) -> dict:
    prog = tmp_path / "svc.py"
    prog.write_text(source)
    cp = labkit("capture", "--native", "--memray", "--proc", "--out", str(tmp_path / "run"),
                "--", sys.executable, str(prog))
    assert cp.returncode == 0, cp.stderr
    out = tmp_path / "findings.json"
    cp = labkit("postmortem", str(tmp_path / "run"), "--json", str(out))
    assert cp.returncode == 0, cp.stderr
    return json.loads(out.read_text())


def test_malloc_through_ctypes_is_native_memory_named_by_its_python_entry(
        tmp_path: Path) -> None:
    # GIVEN a program that mallocs 1 MiB per request through ctypes and keeps it
    doc = _postmortem(tmp_path, CTYPES_LEAK)
    # THEN the verdict says native memory and names the function that drove it
    assert doc["verdict"].startswith("native memory: RSS grew by ")
    top = doc["suspects"][0]
    assert (top["function"], Path(top["file"]).name) == ("handle", "svc.py")
    assert top["explains"][0].startswith("native memory:")


def test_a_packages_compiled_code_is_the_site_of_what_it_allocates(tmp_path: Path) -> None:
    # GIVEN a program that keeps numpy arrays, captured with native stacks
    doc = _postmortem(tmp_path, NUMPY_LEAK)
    top = doc["suspects"][0]
    # THEN the top suspect is inside numpy, below the API the program called, called from
    # the program's own line
    assert top["library"]["package"] == "numpy"
    assert top["library"]["version"]
    assert top["library"]["entry"]["function"] == "ones"
    assert top["library"]["site"]["function"] not in ("ones", "handle")
    assert (top["function"], Path(top["file"]).name) == ("handle", "svc.py")
    assert any(e.startswith("native: allocated in") for e in top["explains"])
    assert "inside numpy" in doc["verdict"]
