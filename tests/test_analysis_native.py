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


LEAK_HIDDEN = r"""
#include <Python.h>
#include <stdlib.h>
#include <string.h>
void *kept[4096];  /* not static: the compiler keeps the stores */
static int n;
static void *grab(size_t size) { void *p = malloc(size); memset(p, 1, size); return p; }
static PyObject *keep(PyObject *self, PyObject *unused) {
    if (n < 4096) kept[n++] = grab(256 * 1024);
    Py_RETURN_NONE;
}
static PyMethodDef methods[] = {{"keep", keep, METH_NOARGS, ""}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "_leak", NULL, -1, methods};
PyMODINIT_FUNC PyInit__leak(void) { return PyModule_Create(&mod); }
"""

LEAK_EXPORTED = r"""
#include <Python.h>
#include <stdlib.h>
#include <string.h>
void *kept[4096];  /* not static: the compiler keeps the stores */
static int n;
__attribute__((noinline)) void *leakmod_keep_block(size_t size) {
    void *p = malloc(size); memset(p, 2, size); return p;
}
static PyObject *keep(PyObject *self, PyObject *unused) {
    if (n < 4096) kept[n++] = leakmod_keep_block(256 * 1024);
    Py_RETURN_NONE;
}
static PyMethodDef methods[] = {{"keep", keep, METH_NOARGS, ""}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "leakmod", NULL, -1, methods};
PyMODINIT_FUNC PyInit_leakmod(void) { return PyModule_Create(&mod); }
"""

STRIPPED_LEAKS = """
import time
import leakmod
import leakpkg

def handle_a():
    leakpkg.fill()

def handle_b():
    leakmod.keep()

for i in range(120):
    handle_a()
    handle_b()
    time.sleep(0.005)
"""


def _stripped_extension(site: Path, rel: str, source: str, *flags: str) -> Path:
    """``source`` built with the machine's gcc as ``site/rel`` + EXT_SUFFIX, stripped."""
    import subprocess
    import sysconfig

    so = site / (rel + sysconfig.get_config_var("EXT_SUFFIX"))
    so.parent.mkdir(parents=True, exist_ok=True)
    src = so.with_name(so.name.split(".")[0] + ".c")
    src.write_text(source)
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", *flags,
                    "-I", sysconfig.get_paths()["include"], "-o", str(so), str(src)],
                   check=True)
    subprocess.run(["strip", "--strip-all", str(so)], check=True)
    src.unlink()
    return so


def _dist_info(site: Path, name: str, version: str, top: str) -> None:
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "top_level.txt").write_text(top + "\n")
    (info / "RECORD").write_text("")


def test_a_leak_in_a_stripped_extension_is_charged_to_its_module_and_package(
        tmp_path: Path) -> None:
    import os

    # GIVEN two stripped extensions in a site-packages folder: leakpkg/_leak*.so names no
    # function but PyInit (memray shows its frames as <unknown>), leakmod*.so exports the
    # function that allocates (memray names it, with no file)
    site = tmp_path / "site-packages"
    hidden = _stripped_extension(site, "leakpkg/_leak", LEAK_HIDDEN, "-fvisibility=hidden")
    (site / "leakpkg" / "__init__.py").write_text(
        "from leakpkg import _leak\n\ndef fill():\n    _leak.keep()\n")
    exported = _stripped_extension(site, "leakmod", LEAK_EXPORTED)
    _dist_info(site, "leakpkg", "1.0", "leakpkg")
    _dist_info(site, "leakmod", "2.0", "leakmod")
    prog = tmp_path / "svc.py"
    prog.write_text(STRIPPED_LEAKS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(site), *filter(None, [os.environ.get("PYTHONPATH")])])}
    # WHEN it is captured with native stacks and postmortemed
    cp = labkit("capture", "--native", "--memray", "--out", str(tmp_path / "run"),
                "--", sys.executable, str(prog), env=env)
    assert cp.returncode == 0, cp.stderr
    out = tmp_path / "findings.json"
    cp = labkit("postmortem", str(tmp_path / "run"), "--json", str(out))
    assert cp.returncode == 0, cp.stderr
    top = json.loads(out.read_text())["suspects"][:3]
    by_user = {s["function"]: s for s in top if s.get("library")}
    # THEN each leak is charged, in the top three, to its compiled module and package:
    # the one named by its .so, the other by the function it exports
    a, b = by_user["handle_a"]["library"], by_user["handle_b"]["library"]
    assert (a["package"], a["version"]) == ("leakpkg", "1.0")
    assert a["site"]["file"] == str(hidden)
    assert a["entry"]["function"] == "fill"
    assert (b["package"], b["version"]) == ("leakmod", "2.0")
    assert (b["site"]["function"], b["site"]["file"]) == ("leakmod_keep_block", str(exported))
