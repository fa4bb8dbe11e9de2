"""Packaging and public surface: one source of dependencies, light import, explicit API."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import labkit

ROOT = Path(__file__).resolve().parent.parent


def test_environment_yml_installs_the_package_from_pyproject() -> None:
    import yaml

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = env["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    assert pip == ["-e .[test]"], "install through pip from pyproject.toml, nothing else"
    assert "test" in project["optional-dependencies"]
    conda = [d for d in deps if isinstance(d, str)]
    assert "pip" in conda
    py = next(d for d in conda if d.startswith("python"))
    assert py.removeprefix("python") == project["requires-python"]
    # every other conda-level package would be a second source of dependencies
    assert sorted(conda) == sorted(["pip", py])


def test_public_api_resolves_and_is_explicit() -> None:
    for name in labkit.__all__:
        assert getattr(labkit, name) is not None
    assert sorted(dir(labkit)) == sorted(labkit.__all__)


def test_import_is_light_and_starts_nothing() -> None:
    code = ("import sys, threading, labkit, labkit.capture.gctrace, labkit.cli; "
            "heavy = [m for m in ('pandas', 'matplotlib', 'psutil', 'memray') if m in sys.modules];"
            "print(heavy, threading.active_count())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["[]", "1"]


@pytest.mark.parametrize("module", ["gctrace", "gccallback", "gcsys", "bootstrap", "origins",
                                    "heapsnap"])
def test_the_in_process_agent_uses_only_the_standard_library(module: str) -> None:
    src = (ROOT / "labkit" / "capture" / f"{module}.py").read_text()
    imports = {ln.split()[1].split(".")[0] for ln in src.splitlines()
               if ln.strip().startswith(("import ", "from ")) and not ln.startswith("from __")}
    assert imports <= set(sys.stdlib_module_names) | {"memray"}, imports


def test_every_labkit_package_is_in_the_wheel() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
                 ["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts)
             for p in (ROOT / "labkit").rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
