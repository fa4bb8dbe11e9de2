"""labkit installed from its wheel, used from a folder that is not the checkout.

Builds the wheel, installs it (with its dependencies) into a fresh venv in a temporary
directory, and there runs the verbs a new user would: ``doctor``, ``notebooks``, a capture
then ``postmortem`` of it, ``report`` of one notebook, a replay of recorded datasets, and
the fleet notebook over the recorded fleet (the ``fleet`` extra).
Nothing of the checkout is on the path: no PYTHONPATH, cwd elsewhere. uv (the test extra's)
installs the wheel: the same resolution as ``pip install``, in seconds where pip takes a
minute of the suite's budget.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow

PROG = """
def hold():
    keep = [bytearray(1 << 20) for _ in range(40)]
    return keep
kept = hold()
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist),
                    str(ROOT)], check=True, timeout=600, cwd=tmp)
    wheel = next(dist.glob("labkit-*.whl"))
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(Path(sys.executable).with_name("uv")), "pip", "install", "-q",
                    "--compile-bytecode", "--python", str(venv / "bin" / "python"),
                    f"labkit[fleet] @ {wheel.as_uri()}"],
                   check=True, timeout=900, cwd=tmp)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    work = tmp / "elsewhere"
    work.mkdir()
    return venv, {**env, "LABKIT_TEST_WORK": str(work)}


def _labkit(installed: tuple[Path, dict[str, str]], *args: str,
            timeout: float = 600) -> subprocess.CompletedProcess:
    venv, env = installed
    return subprocess.run([str(venv / "bin" / "labkit"), *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=env["LABKIT_TEST_WORK"])


def test_the_wheel_is_what_runs(installed: tuple[Path, dict[str, str]]) -> None:
    venv, env = installed
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import labkit, labkit.resources as r; print(labkit.__file__); "
                            "print(r.notebooks_dir()); print(r.datasets_dir())"],
                           capture_output=True, text=True, env=env, check=True,
                           cwd=env["LABKIT_TEST_WORK"]).stdout.split()
    assert all(p.startswith(str(venv)) for p in where), where
    assert not any(str(ROOT) in p for p in where)


def test_doctor_and_notebooks(installed: tuple[Path, dict[str, str]]) -> None:
    cp = _labkit(installed, "doctor")
    assert cp.returncode == 0, cp.stdout + cp.stderr
    cp = _labkit(installed, "notebooks", "lab")
    assert cp.returncode == 0, cp.stderr
    copied = sorted(p.name for p in (Path(installed[1]["LABKIT_TEST_WORK"]) / "lab").iterdir())
    assert copied == sorted([*(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]-*.py")),
                             "jupytext.toml"])


def test_capture_then_postmortem(installed: tuple[Path, dict[str, str]]) -> None:
    venv, env = installed
    work = Path(env["LABKIT_TEST_WORK"])
    (work / "prog.py").write_text(PROG)
    cp = _labkit(installed, "capture", "--gc", "--memray", "--proc", "--out", "run", "--",
                 str(venv / "bin" / "python"), "prog.py")
    assert cp.returncode == 0, cp.stderr
    cp = _labkit(installed, "postmortem", "--memray", "run/memray.bin", "--gc", "run",
                 "--proc", "run/proc.csv", "--out", "incident.html")
    assert cp.returncode == 0, cp.stderr
    page = (work / "incident.html").read_text()
    assert "(prog.py:3)" in page  # the line that allocates the 40 MiB held
    assert not (work / "incident.ipynb").exists()


def test_report_and_replay(installed: tuple[Path, dict[str, str]]) -> None:
    work = Path(installed[1]["LABKIT_TEST_WORK"])
    cp = _labkit(installed, "report", "00-start-here", "--out", "reports")
    assert cp.returncode == 0, cp.stderr
    cp = _labkit(installed, "report", "10-pool-misuse", "-p", "replay=True", "--out",
                 "reports")
    assert cp.returncode == 0, cp.stderr
    page = (work / "reports" / "10-pool-misuse.html").read_text()
    assert "replaying the recorded runs in" in page
    assert "lab_datasets" in page  # the recorded runs came from the installed package
    index = (work / "reports" / "index.html").read_text()
    assert "10-pool-misuse.html" in index and "00-start-here.html" in index


def test_the_fleet_notebook_reads_the_installed_fleet(
        installed: tuple[Path, dict[str, str]]) -> None:
    import json

    manifests = [json.loads(m.read_text())
                 for m in (ROOT / "datasets" / "fleet").glob("*/*/manifest.json")]
    leaky = sum(m["params"]["variant"] == "leaky" for m in manifests)
    cp = _labkit(installed, "report", "95-fleet", "--out", "reports")
    assert cp.returncode == 0, cp.stderr
    page = (Path(installed[1]["LABKIT_TEST_WORK"]) / "reports" / "95-fleet.html").read_text()
    assert "lab_datasets/fleet" in page  # the recorded fleet came from the installed package
    assert f"grew on <strong>{leaky} of {len(manifests)}</strong> pods" in page
