"""Capture in the app's own environment: a venv with its own packages and no memray, other
Pythons, and interpreters that are not usable (one line, exit 2)."""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import labkit
from labkit import artifacts as A
from labkit.capture.target import prepare, probe
from labkit.errors import InputError
from tests.conftest import PY, assert_clean_error

ROOT = str(Path(labkit.__file__).resolve().parent.parent)
PACKAGE = "tinydb"  # small, pure Python, and not in labkit's environment
PROG = f"""\
import json, sys
import {PACKAGE}
db = {PACKAGE}.TinyDB(storage={PACKAGE}.storages.MemoryStorage)
kept = [bytearray(4096) for _ in range(2000)]
db.insert({{"n": len(kept)}})
print(json.dumps(sys.path))
"""


def _clean_env() -> dict[str, str]:
    """The environment an on-call engineer has: no PYTHONPATH pointing at labkit."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def labkit_here(*args: str, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """The real CLI, importing this checkout's labkit without PYTHONPATH, so the programs it
    runs see only their own environment."""
    code = f"import sys; sys.path.insert(0, {ROOT!r}); from labkit.cli import main; " \
           "raise SystemExit(main())"
    return subprocess.run([PY, "-c", code, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=_clean_env())


@pytest.fixture(scope="session")
def app_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv of labkit's Python minor version holding PACKAGE and no memray."""
    assert importlib.util.find_spec(PACKAGE) is None, f"{PACKAGE} must not be in labkit's env"
    venv = tmp_path_factory.mktemp("app") / "venv"
    subprocess.run([PY, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    subprocess.run([PY, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                    "-q", "--disable-pip-version-check", PACKAGE], check=True, timeout=300)
    return venv


def _site_listing(venv: Path) -> list[str]:
    return sorted(str(p.relative_to(venv)) for p in venv.rglob("*")
                  if "__pycache__" not in p.parts)


@pytest.mark.slow
def test_capture_runs_the_program_in_its_own_venv_with_nothing_installed(
        app_venv: Path, tmp_path: Path) -> None:
    python = str(app_venv / "bin" / "python")
    (tmp_path / "prog.py").write_text(PROG)
    direct = subprocess.run([python, "prog.py"], capture_output=True, text=True, cwd=tmp_path,
                            env=_clean_env(), timeout=60)
    assert direct.returncode == 0, direct.stderr
    own_path = json.loads(direct.stdout.splitlines()[-1])
    before = _site_listing(app_venv)

    cp = labkit_here("capture", "--out", "run", "--", python, "prog.py", cwd=tmp_path)

    assert cp.returncode == 0, cp.stderr
    seen_path = json.loads(cp.stdout.splitlines()[0])
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    target = manifest["target"]
    lent = target["lent"]["path"]
    # the program's own sys.path, in its own order; labkit's folder only at the end
    assert seen_path == [*own_path, lent]
    assert target["sys_path"] == seen_path
    assert "memray" in target["lent"]["names"] and not Path(lent).exists()
    assert target["memray"]["source"] == "labkit"
    assert _site_listing(app_venv) == before  # nothing installed there
    # the environment is the venv's, as its own interpreter reads it
    version = subprocess.run([python, "-c", "import importlib.metadata as m; "
                              f"print(m.version({PACKAGE!r}))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert target["distributions"][PACKAGE] == [PACKAGE, version]
    assert "memray" not in target["distributions"]
    assert target["prefix"] == str(app_venv)
    assert target["site_packages"] and all(p.startswith(str(app_venv))
                                           for p in target["site_packages"])
    from labkit.frames import load
    from labkit.frames.evidence import evidence_of

    run = load(tmp_path / "run")
    assert run.has(A.MEMRAY)
    peak = run.memray.allocations_at_peak
    assert (peak.file.str.endswith("prog.py") & (peak.bytes >= 2000 * 4096)).any()
    assert evidence_of(run).distributions[PACKAGE] == (PACKAGE, version)
    from labkit.frames.evidence import load_evidence

    loose = load_evidence(memray=tmp_path / "run" / A.MEMRAY.name)  # the file's own run
    assert loose.distributions[PACKAGE] == (PACKAGE, version)


@pytest.mark.slow
def test_a_scenario_runs_under_a_foreign_venv_with_labkit_lent(app_venv: Path,
                                                                tmp_path: Path) -> None:
    cp = labkit_here("run", "thread-leak", "--quick", "--variant", "leaky", "--capture",
                     "gc,memray", "--python", str(app_venv / "bin" / "python"),
                     "--out", "runs", cwd=tmp_path)
    assert cp.returncode == 0, cp.stderr
    target = json.loads((tmp_path / "runs" / "leaky" / "manifest.json").read_text())["target"]
    assert target["prefix"] == str(app_venv)
    assert {"labkit", "memray"} <= set(target["lent"]["names"])
    assert (tmp_path / "runs" / "leaky" / A.MEMRAY.name).is_file()


@pytest.mark.slow
def test_the_targets_own_memray_is_preferred(app_venv: Path, tmp_path: Path) -> None:
    own = tmp_path / "own"
    (own / "memray").mkdir(parents=True)
    (own / "memray" / "__init__.py").write_text("")
    (own / "memray-0.0.own.dist-info").mkdir()
    (own / "memray-0.0.own.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: memray\nVersion: 0.0.own\n")
    env = {**_clean_env(), "PYTHONPATH": str(own)}
    loan = prepare(str(app_venv / "bin" / "python"), [], env, memray=True)
    try:
        assert loan.lent is None
        assert loan.memray == {"source": "target", "version": "0.0.own",
                               "path": str(own / "memray")}
    finally:
        loan.close()


def _other_minor() -> str:
    ours = f"{sys.version_info[0]}.{sys.version_info[1]}"
    found = [p for p in sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1*/bin/python3")))
             if f"/{ours}." not in p and "/3.10." not in p]
    assert found, "this test needs a CPython 3.12+ under ~/.pyenv (the machine has several)"
    return found[0]


@pytest.mark.slow
def test_another_minor_version_gets_one_line_unless_memray_is_left_out(tmp_path: Path) -> None:
    other = _other_minor()
    (tmp_path / "p.py").write_text("import gc; x = [[] for _ in range(10000)]; gc.collect()\n")
    cp = labkit_here("capture", "--out", "r1", "--", other, "p.py", cwd=tmp_path)
    theirs = other.split("/versions/")[1].rsplit(".", 1)[0]
    assert_clean_error(cp, theirs, f"{sys.version_info[0]}.{sys.version_info[1]}",
                       "install memray", "--gc --pyspy --proc")
    assert not (tmp_path / "r1").exists()
    cp = labkit_here("capture", "--gc", "--proc", "--out", "r2", "--", other, "p.py",
                     cwd=tmp_path)
    assert cp.returncode == 0, cp.stderr
    assert (tmp_path / "r2" / A.GC_EVENTS.name).is_file()


def _script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def _bad_interpreters(tmp_path: Path) -> list[tuple[str, list[str]]]:
    """(interpreter, words its one-line error names)."""
    true = tmp_path / "true" / "python"
    true.parent.mkdir()
    true.symlink_to("/bin/true")
    shell = _script(tmp_path / "python-shell", "#!/bin/sh\necho hello\n")
    dies = _script(tmp_path / "python-dies",
                   f"#!/bin/sh\nPYTHONHOME={tmp_path}/gone exec {sys.executable} \"$@\"\n")
    garbage = _script(tmp_path / "python-garbage", "not a program at all\n")
    old = os.path.expanduser("~/.pyenv/versions/3.10.13/bin/python3.10")
    assert os.path.exists(old), "this test needs pyenv's 3.10.13"
    # a venv whose base Python was deleted: its interpreter link points nowhere
    venv = tmp_path / "broken-venv"
    subprocess.run([PY, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    exe = venv / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    exe.unlink()
    exe.symlink_to(tmp_path / "deleted-base" / "bin" / "python3")
    return [(str(true), ["not a Python interpreter"]),
            (shell, ["not a Python interpreter"]),
            (dies, ["cannot start", "Fatal Python error"]),
            (garbage, ["cannot start", "Exec format error"]),
            ("/bin/true", ["does not look like a Python interpreter"]),
            (old, ["Python 3.10.13", "3.11 or newer"]),
            (str(venv / "bin" / "python"), ["base Python was moved or deleted", "recreate"])]


@pytest.mark.slow
def test_unusable_interpreters_get_one_line(tmp_path: Path) -> None:
    (tmp_path / "p.py").write_text("print('ran')\n")
    for python, words in _bad_interpreters(tmp_path):
        for verb in ("capture", "gctrace"):
            cp = labkit_here(verb, "--out", "r", "--", python, "p.py", cwd=tmp_path)
            assert_clean_error(cp, *words)
            assert "ran" not in cp.stdout and not (tmp_path / "r").exists()
        assert_clean_error(labkit_here("doctor", "--python", python, cwd=tmp_path), *words)


def test_probe_reads_the_interpreter_itself() -> None:
    t = probe(sys.executable)
    assert t.version == tuple(sys.version_info[:3]) and t.prefix == sys.prefix
    assert t.distributions["memray"][0] == "memray" and t.memray is not None
    with pytest.raises(InputError, match="not a Python interpreter"):
        probe("/bin/true")


@pytest.mark.slow
def test_doctor_says_which_backends_work_for_an_interpreter(app_venv: Path,
                                                             tmp_path: Path) -> None:
    cp = labkit_here("doctor", "--python", str(app_venv / "bin" / "python"), cwd=tmp_path)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    lines = cp.stdout.splitlines()
    for name in ("python", "memray", "--native", "GC tracer", "py-spy attach", "proc sampler"):
        assert any(ln.startswith("ok ") and f" {name} " in ln for ln in lines), (name, lines)
    assert any("lends its own memray" in ln for ln in lines)
    other = _other_minor()
    cp = labkit_here("doctor", "--python", other, cwd=tmp_path)
    assert cp.returncode == 1, cp.stdout + cp.stderr
    lines = cp.stdout.splitlines()
    assert any(ln.startswith("NO  memray") and "install memray" in ln for ln in lines)
    assert any(ln.startswith("NO  --native") for ln in lines)
    for name in ("GC tracer", "py-spy attach", "proc sampler"):
        assert any(ln.startswith("ok ") and f" {name} " in ln for ln in lines), (name, lines)


def test_the_manifest_schema_holds_the_target_environment(tmp_path: Path) -> None:
    from labkit.errors import CorruptCaptureError
    from labkit.rundir import check_manifest

    good = {"schema_version": 1, "artifacts": [], "target": {
        "prefix": "/srv/app/venv", "site_packages": ["/srv/app/venv/lib/site-packages"],
        "sys_path": ["/srv/app", "/srv/app/venv/lib/site-packages", "/tmp/labkit-lent-x"],
        "distributions": {"aiohttp": ["aiohttp", "3.12.2"]},
        "memray": {"source": "labkit", "version": "1.20.0"},
        "lent": {"path": "/tmp/labkit-lent-x", "names": ["memray"], "target_has": []}}}
    check_manifest(good, tmp_path / "manifest.json")
    for key, bad in (("distributions", {"aiohttp": ["aiohttp"]}),
                     ("distributions", {"aiohttp": "3.12.2"}),
                     ("memray", {"source": "elsewhere"}),
                     ("site_packages", "/srv")):
        doc = json.loads(json.dumps(good))
        doc["target"][key] = bad
        with pytest.raises(CorruptCaptureError, match=key):
            check_manifest(doc, tmp_path / "manifest.json")
