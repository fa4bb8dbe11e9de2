"""Where the lab's shipped files are: the notebooks and the recorded datasets.

Both live at the top of the repository (``notebooks/``, ``datasets/``) and are packaged as
``labkit.lab_notebooks`` and ``labkit.lab_datasets`` (``pyproject.toml`` maps them), so a
wheel carries them and an editable install points at the checkout. Nothing here walks up
from a source file: the import system says where the package put them.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from labkit.errors import InputError


def _package_dir(package: str, what: str) -> Path:
    try:
        mod = importlib.import_module(package)
    except ImportError:
        raise InputError(f"this labkit was installed without its {what}; reinstall it "
                         "(pip install --force-reinstall labkit)") from None
    return Path(next(iter(mod.__path__)))


def notebooks_dir() -> Path:
    """The folder of the lab's notebook sources (``NN-topic.py``)."""
    return _package_dir("labkit.lab_notebooks", "notebooks")


def datasets_dir() -> Path:
    """The folder of recorded runs, ``<scenario>/<variant>/``."""
    return _package_dir("labkit.lab_datasets", "recorded datasets")
