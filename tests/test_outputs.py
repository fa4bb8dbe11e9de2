"""Outputs are never destroyed: per verb, an existing output is refused without ``--force``
and nothing is modified (checksums before and after); outputs inside a run are refused;
bad output paths fail before any work."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from labkit.artifacts import Artifact
from labkit.rundir import RunWriter
from tests.conftest import PY, assert_clean_error, labkit

DATASETS = Path(__file__).resolve().parent.parent / "datasets"
MEMRAY = DATASETS / "pool-misuse" / "leaky" / "memray.bin"


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _run(tmp_path: Path) -> Path:
    w = RunWriter(tmp_path / "run", "test", ["labkit", "test"])
    w.file(Artifact("note.txt", "unit", "a note", "--unit")).write_text("evidence")
    return w.publish()


@pytest.fixture
def user_files(tmp_path: Path) -> Path:
    """A folder holding a user's own files and a run, fingerprinted by the test."""
    (tmp_path / "mine.html").write_text("<p>my own report</p>")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "10-pool-misuse.html").write_text("<p>someone else's</p>")
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "10-pool-misuse.py").write_text("# my edited copy\n")
    _run(tmp_path)
    return tmp_path


def test_postmortem_refuses_existing_inputs_folders_and_runs(user_files: Path) -> None:
    before = _digests(user_files)
    t = time.monotonic()
    out = user_files / "mine.html"
    assert_clean_error(labkit("postmortem", "--memray", str(MEMRAY), "--out", str(out)),
                       "already exists", "--force")
    assert_clean_error(labkit("postmortem", "--memray", str(MEMRAY), "--out",
                              str(user_files / "run" / "manifest.json"), "--force"),
                       "inside the run")
    assert_clean_error(labkit("postmortem", "--memray", str(MEMRAY), "--out",
                              str(user_files / "run" / "report.html")), "inside the run")
    assert_clean_error(labkit("postmortem", "--memray", str(MEMRAY), "--out",
                              str(user_files / "reports")), "is a folder")
    copy = user_files / "copy.bin"
    copy.write_bytes(MEMRAY.read_bytes())
    before[copy.name] = hashlib.sha256(copy.read_bytes()).hexdigest()
    assert_clean_error(labkit("postmortem", "--memray", str(copy), "--out", str(copy),
                              "--force"), "one of the inputs")
    assert time.monotonic() - t < 60  # refused up front, no notebook was executed
    assert _digests(user_files) == before
    assert not list(user_files.rglob("*.ipynb"))


def test_report_refuses_files_it_did_not_write(user_files: Path) -> None:
    before = _digests(user_files)
    assert_clean_error(labkit("report", "10-pool-misuse", "--out", str(user_files / "reports")),
                       "not a labkit report", "--force")
    assert_clean_error(labkit("report", "10-pool-misuse", "--out", str(user_files / "run")),
                       "inside the run")
    assert_clean_error(labkit("report", "10-pool-misuse", "--out", str(user_files / "mine.html")),
                       "is a file")
    assert _digests(user_files) == before


def test_notebooks_copy_refuses_to_replace_without_force(user_files: Path) -> None:
    before = _digests(user_files)
    assert_clean_error(labkit("notebooks", str(user_files / "nb")), "already exists", "--force")
    assert _digests(user_files) == before
    assert sorted(p.name for p in (user_files / "nb").iterdir()) == ["10-pool-misuse.py"]
    cp = labkit("notebooks", str(user_files / "nb"), "--force")
    assert cp.returncode == 0, cp.stderr
    assert "my edited copy" not in (user_files / "nb" / "10-pool-misuse.py").read_text()
    from labkit.report.html import notebook_paths

    assert len(list((user_files / "nb").glob("[0-9][0-9]-*.py"))) == len(notebook_paths())
    assert (user_files / "nb" / "jupytext.toml").is_file()  # saving leaves no diff


@pytest.mark.slow
@pytest.mark.parametrize("verb", [["gctrace", "--quiet"], ["capture", "--gc"]])
def test_capture_verbs_never_replace_or_nest_runs(user_files: Path, verb: list[str]) -> None:
    prog = user_files / "prog.py"
    prog.write_text("print('hi')\n")
    before = _digests(user_files)
    tail = ["--", PY, str(prog)]
    assert_clean_error(labkit(*verb, "--out", str(user_files / "run"), *tail),
                       "already exists", "never overwrites a run")
    assert_clean_error(labkit(*verb, "--out", str(user_files / "run" / "inner"), *tail),
                       "inside the run")
    assert_clean_error(labkit(*verb, "--out", str(user_files / "mine.html"), *tail),
                       "already exists")
    assert _digests(user_files) == before


def test_attach_never_replaces_or_nests_runs(user_files: Path) -> None:
    before = _digests(user_files)
    pid = str(os.getpid())  # alive; the output is checked before py-spy is started
    assert_clean_error(labkit("attach", pid, "--out", str(user_files / "run")),
                       "never overwrites a run")
    assert_clean_error(labkit("attach", pid, "--out", str(user_files / "run" / "x")),
                       "inside the run")
    assert _digests(user_files) == before


@pytest.mark.slow
def test_scenario_runs_never_replace_or_nest_runs(user_files: Path) -> None:
    (user_files / "fixed").mkdir()
    before = _digests(user_files)
    run = ["run", "fd-leak", "--quick", "--variant", "fixed", "--out"]
    assert_clean_error(labkit(*run, str(user_files)), "fixed already exists")
    assert_clean_error(labkit(*run, str(user_files / "run")), "inside the run")
    (user_files / "fd-leak" / "leaky").mkdir(parents=True)
    before = _digests(user_files)
    assert_clean_error(labkit("signatures", "fd-leak", "--quick", "--out", str(user_files)),
                       "leaky already exists")
    assert _digests(user_files) == before


@pytest.mark.slow
def test_report_replaces_its_own_earlier_report_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    cp = labkit("report", "00-start-here", "--out", str(out), timeout=300)
    assert cp.returncode == 0, cp.stderr
    assert "replaced" not in cp.stdout
    nb = json.loads((out / "00-start-here.ipynb").read_text())
    assert nb["metadata"]["labkit_report"]["source"] == "00-start-here.py"
    cp = labkit("report", "00-start-here", "--out", str(out), timeout=300)
    assert cp.returncode == 0, cp.stderr
    assert "00-start-here.html (replaced the earlier report)" in cp.stdout
