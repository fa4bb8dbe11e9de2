"""The ``labkit`` command runs ``postmortem``, ``summary`` and ``compare`` without pyarrow
(``labkit.cli.WITHOUT_PYARROW``) and says exactly what it says with it; every other verb,
the Parquet export first, still has it, from the same interpreter and install."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PY
from test_cli_golden import GOLDEN, ROOT, _cases

from labkit.cli import WITHOUT_PYARROW, main

DATASETS = ROOT / "datasets"

# One fresh process plays each case as the ``labkit`` command does (``main()`` reads
# sys.argv): the first call hides pyarrow before pandas is imported, as it would alone.
_PLAY = """
import contextlib, io, json, sys
from labkit.cli import main
out = {}
for name, argv in json.loads(sys.argv[1]):
    sys.argv = ["labkit", *argv]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main()
    out[name] = f"$ labkit {' '.join(argv)}\\n[exit {code}]\\n{buf.getvalue()}"
import pandas as pd
out["<state>"] = {"pyarrow": sys.modules.get("pyarrow") is not None,
                  "str_storage": pd.Series(["a"]).dtype.storage}
print(json.dumps(out))
"""


def _imported(stderr: str) -> set[str]:
    """Module names from ``python -X importtime``'s report (an import refused by a None in
    ``sys.modules`` is listed too, but nothing below it)."""
    return {ln.rsplit("|", 1)[1].strip() for ln in stderr.splitlines()
            if ln.startswith("import time:") and ln.count("|") == 2}


@pytest.mark.slow
def test_lean_verbs_print_their_golden_outputs_without_pyarrow() -> None:
    cases = [(n, a) for n, a in _cases() if a[0] in WITHOUT_PYARROW]
    assert {a[0] for _, a in cases} == WITHOUT_PYARROW and len(cases) >= 30
    cp = subprocess.run([PY, "-c", _PLAY, json.dumps(cases)], cwd=ROOT, capture_output=True,
                        text=True, timeout=600)
    assert cp.returncode == 0, cp.stderr[-2000:]
    got = json.loads(cp.stdout)
    assert got.pop("<state>") == {"pyarrow": False, "str_storage": "python"}
    for name, _ in cases:
        assert got[name] == (GOLDEN / f"{name}.txt").read_text(), name


@pytest.mark.slow
def test_postmortem_json_is_the_same_without_pyarrow(tmp_path: Path) -> None:
    run = DATASETS / "buffer-growth" / "leaky"
    lean, full = tmp_path / "lean.json", tmp_path / "full.json"
    cp = subprocess.run([PY, "-X", "importtime", "-m", "labkit", "postmortem", str(run),
                         "--json", str(lean)], capture_output=True, text=True, timeout=300)
    assert cp.returncode in (0, 1), cp.stderr[-2000:]
    mods = _imported(cp.stderr)
    assert "pandas" in mods and not any(m.startswith("pyarrow.") for m in mods)
    assert main(["postmortem", str(run), "--json", str(full)]) in (0, 1)
    assert sys.modules.get("pyarrow") is not None  # main(argv) leaves the interpreter be
    assert lean.read_bytes() == full.read_bytes()


@pytest.mark.slow
def test_parquet_export_keeps_pyarrow_from_the_same_command(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "pq"
    cp = subprocess.run([PY, "-X", "importtime", "-m", "labkit", "export",
                         str(DATASETS / "pool-misuse" / "leaky"), "--to", "parquet",
                         "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert cp.returncode == 0, cp.stderr[-2000:]
    assert "pyarrow.lib" in _imported(cp.stderr)
    parts = sorted(out.glob("frame=memray_peak/*/*.parquet"))
    assert parts and pq.read_table(parts[0]).num_rows > 0
