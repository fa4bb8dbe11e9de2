"""``labkit lab``: JupyterLab on the lab's notebooks, ready for a class.

Bound to 127.0.0.1 with a token (JupyterLab's own, or ``JUPYTER_TOKEN``), allowed to run as
root (containers and class VMs), opening ``.py`` notebooks as notebooks on a double-click
(the ``overrides.json`` shipped in ``labkit/lab_settings``), and saving them through
jupytext with the ``jupytext.toml`` beside them, so running and saving a notebook leaves
the source unchanged: outputs go nowhere, never into git.
"""

from __future__ import annotations

import os
import shutil
import sys
from importlib import resources
from pathlib import Path

from labkit.errors import InputError
from labkit.resources import notebooks_dir

LEARNER_DIR = Path("labkit-notebooks")
JUPYTEXT_TOML = "jupytext.toml"


def default_dir() -> Path:
    """The checkout's ``notebooks/`` when labkit runs from one; installed from a wheel,
    ``./labkit-notebooks`` (copied there first if missing: a learner edits a copy)."""
    shipped = notebooks_dir()
    if not any(part in ("site-packages", "dist-packages") for part in shipped.parts):
        return shipped
    if not LEARNER_DIR.exists():
        from labkit.report.html import copy_notebooks

        copy_notebooks(LEARNER_DIR)
        print(f"copied the lab's notebooks into {LEARNER_DIR}/", flush=True)
    return LEARNER_DIR


def lab_command(folder: Path, *, port: int, browser: bool) -> list[str]:
    """The ``jupyter lab`` command line for ``folder``."""
    exe = Path(sys.executable).with_name("jupyter")
    if not exe.exists():
        raise InputError(f"JupyterLab is not installed beside {sys.executable}; "
                         "pip install labkit (it depends on jupyterlab)")
    settings = resources.files("labkit").joinpath("lab_settings")
    cmd = [str(exe), "lab", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           f"--ServerApp.root_dir={folder.resolve()}",
           f"--LabApp.app_settings_dir={settings}"]
    if not browser:
        cmd.append("--no-browser")
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


def start_lab(folder: Path | None, *, port: int = 8888, browser: bool = True) -> None:
    """Replace this process with JupyterLab on ``folder`` (default: :func:`default_dir`).
    A folder without a ``jupytext.toml`` gets labkit's."""
    folder = folder or default_dir()
    if not folder.is_dir():
        raise InputError(f"{folder} is not a folder; give the notebooks' folder, or "
                         "`labkit notebooks DIR` to make one")
    toml = folder / JUPYTEXT_TOML
    if not toml.exists():
        shutil.copyfile(notebooks_dir() / JUPYTEXT_TOML, toml)
    cmd = lab_command(folder, port=port, browser=browser)
    sys.stdout.flush()
    os.execv(cmd[0], cmd)
