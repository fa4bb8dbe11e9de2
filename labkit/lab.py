"""``labkit lab``: JupyterLab on the lab's notebooks, ready for a class.

Bound to 127.0.0.1 with a token (JupyterLab's own, or ``JUPYTER_TOKEN``), allowed to run as
root (containers and class VMs), opening ``.py`` notebooks as notebooks on a double-click
(the ``overrides.json`` shipped in ``labkit/lab_settings``), exposing the app to the page
(``window.jupyterapp``: a stop for a prediction selects its cell and notifies, see
:mod:`labkit.report.stop`), and saving them through
jupytext with the ``jupytext.toml`` beside them, so running and saving a notebook leaves
the source unchanged: outputs go nowhere, never into git.

The folder is checked as any output (:func:`labkit.outputs.check_dir_output`): never a run
or inside one, never through a symbolic link; a ``jupytext.toml`` there is used as it is,
and one that is no file (a dangling link, a FIFO) is refused, never written through. The
port is JupyterLab's or nothing: a port already taken is a one-line error, never a silent
move to the next one.
"""

from __future__ import annotations

import errno
import os
import socket
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
           "--ServerApp.port_retries=0",
           f"--ServerApp.root_dir={folder.resolve()}",
           f"--LabApp.app_settings_dir={settings}",
           "--LabApp.expose_app_in_browser=True"]  # window.jupyterapp: see labkit.report.stop
    if not browser:
        cmd.append("--no-browser")
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


def check_port(port: int) -> None:
    """Raise a one-line :class:`InputError` unless 127.0.0.1:``port`` can be listened on
    now (bound as the server binds it, with ``SO_REUSEADDR``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            why = ("is already in use" if exc.errno == errno.EADDRINUSE
                   else f"cannot be listened on ({exc.strerror})")
            raise InputError(f"port {port} on 127.0.0.1 {why}; choose another --port") \
                from None


def prepare_folder(folder: Path) -> Path:
    """Check ``folder`` as an output and give it labkit's ``jupytext.toml`` if it has none;
    returns its real path."""
    from labkit.outputs import check_dir_output, check_file_output, write_text_atomic

    real = check_dir_output(folder, flag="DIR")
    if not real.is_dir():
        raise InputError(f"{folder} is not a folder; give the notebooks' folder, or "
                         "`labkit notebooks DIR` to make one")
    toml = real / JUPYTEXT_TOML
    if not toml.is_file():  # a file (or a link to one) is used as it is, never written
        toml = check_file_output(toml, force=False, flag="labkit lab")  # absent: written;
        write_text_atomic(toml, (notebooks_dir() / JUPYTEXT_TOML).read_text(encoding="utf-8"))
    return real  # a dangling link, a FIFO or a folder there: refused above


def start_lab(folder: Path | None, *, port: int = 8888, browser: bool = True) -> None:
    """Replace this process with JupyterLab on ``folder`` (default: :func:`default_dir`).
    A folder without a ``jupytext.toml`` gets labkit's. The port and the folder are
    checked first (module docstring)."""
    check_port(port)
    folder = prepare_folder(folder or default_dir().resolve())  # labkit's own: its real path
    cmd = lab_command(folder, port=port, browser=browser)
    sys.stdout.flush()
    os.execv(cmd[0], cmd)
