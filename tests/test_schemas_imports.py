"""As the ``labkit`` command, jsonschema is imported without its optional format checkers'
libraries (labkit's schemas use no ``format``); called in-process (a notebook, a test),
only the slow one is left out, so a user's own jsonschema keeps its format checkers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import PY

from labkit.schemas import FORMAT_LIBRARIES

ROOT = Path(__file__).resolve().parent.parent
RUN = ROOT / "datasets" / "pool-misuse" / "leaky"

# one fresh process: ``labkit summary RUN``, as the command (main() reads sys.argv) or
# in-process (main(argv)); then which format libraries jsonschema's import brought in, and
# whether each is importable after
_PLAY = """
import contextlib, importlib, io, json, sys
from labkit.cli import main
argv, names = ["summary", sys.argv[2]], json.loads(sys.argv[3])
with contextlib.redirect_stdout(io.StringIO()):
    if sys.argv[1] == "command":
        sys.argv = ["labkit", *argv]
        code = main()
    else:
        code = main(argv)
loaded = [m for m in names if sys.modules.get(m) is not None]
after = []
for m in names:
    try:
        importlib.import_module(m)
        after.append(m)
    except ImportError:
        pass
print(json.dumps({"code": code, "jsonschema": "jsonschema" in sys.modules,
                  "loaded": loaded, "after": after}))
"""


def _play(how: str) -> dict:
    cp = subprocess.run([PY, "-c", _PLAY, how, str(RUN), json.dumps(FORMAT_LIBRARIES)],
                        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stderr[-2000:]
    return json.loads(cp.stdout)


def test_the_command_imports_jsonschema_without_its_format_libraries() -> None:
    # WHEN `labkit summary` checks a run's manifest as the command
    got = _play("command")
    # THEN jsonschema checked it, none of the format libraries came with it, and every
    # installed one is still importable afterwards
    assert got["code"] == 0 and got["jsonschema"], got
    assert got["loaded"] == [], got
    assert "isoduration" in got["after"], got  # installed with jsonschema[format] here


def test_in_process_jsonschema_keeps_its_format_checkers_but_the_slow_one() -> None:
    # WHEN the same verb runs in-process, as from a notebook
    got = _play("in-process")
    # THEN jsonschema brought its format libraries in (isoduration among them), all but
    # rfc3987_syntax, which builds a grammar for seconds at import
    assert got["code"] == 0 and got["jsonschema"], got
    assert "isoduration" in got["loaded"] and "rfc3987_syntax" not in got["loaded"], got
