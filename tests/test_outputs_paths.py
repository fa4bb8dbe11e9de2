"""One output check for every writing verb: a path through ``..`` or a symbolic link into a
run, under a file, or onto a FIFO is one line (exit 2) and the run is unchanged; ``labkit
report`` never blocks on a FIFO, keeps ``index.html`` for its index and runs its kernel
without Jupyter's transport warning; ``labkit lab`` never moves port nor writes into a run."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from labkit.cli import main
from labkit.errors import InputError
from labkit.outputs import check_output, real_path
from tests.conftest import PY, assert_clean_error

DATASETS = Path(__file__).resolve().parent.parent / "datasets"


def _tree(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (files by content, folders and links by kind)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = ("link:" + os.readlink(p) if p.is_symlink() else "dir" if p.is_dir()
                    else hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def _labkit_in(cwd: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    """``labkit ARGS`` run in ``cwd`` in its own process group, killed whole afterwards (a
    ``labkit lab`` that got past its checks would leave a Jupyter server behind)."""
    proc = subprocess.Popen([PY, "-m", "labkit", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def place(tmp_path: Path) -> Path:
    """A recorded run copied to ``RUN``, a link ``LINK`` to it and a plain file ``FILE``."""
    shutil.copytree(DATASETS / "pool-misuse" / "leaky", tmp_path / "RUN")
    (tmp_path / "LINK").symlink_to("RUN")
    (tmp_path / "FILE").write_text("not a folder\n")
    return tmp_path


# each writing verb, OUT where its output goes ("RUN": the run it reads, if any)
VERBS = {
    "postmortem --json": ["postmortem", "RUN", "--json", "{out}.json"],
    "postmortem --html": ["postmortem", "RUN", "--html", "{out}.html"],
    "export --to parquet": ["export", "RUN", "--to", "parquet", "--out", "{out}"],
    "export --to pprof": ["export", "RUN", "--to", "pprof", "--out", "{out}"],
    "fleet --json": ["fleet", "RUN", "--json", "{out}.json"],
    "fleet --store": ["fleet", "RUN", "--store", "{out}"],
    "notebooks": ["notebooks", "{out}"],
    "capture --out": ["capture", "--gc", "--out", "{out}", "--", PY, "-c", "pass"],
    "run --out": ["run", "fd-leak", "--quick", "--variant", "fixed", "--out", "{out}"],
    "report --out": ["report", "00-start-here", "--out", "{out}"],
    "lab": ["lab", "{dir}", "--no-browser", "--port", "{port}"],
}
# the output path, the folder form (for `lab`, which takes an existing folder), the words
WAYS = {
    "dotdot": ("NONEXIST/../RUN/x", "NONEXIST/../RUN", "inside the run"),
    "symlink": ("LINK/x", "LINK", "symbolic link"),
    "under-a-file": ("FILE/x", "FILE/x", "not a folder"),
}


@pytest.mark.slow
@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("verb", VERBS)
def test_no_verb_writes_into_a_run_through_dotdot_or_a_link(place: Path, verb: str,
                                                            way: str) -> None:
    out, folder, words = WAYS[way]
    before = _tree(place)
    argv = [a.format(out=out, dir=folder, port=_free_port()) for a in VERBS[verb]]
    assert_clean_error(_labkit_in(place, *argv), words)
    assert _tree(place) == before
    assert not (place / "NONEXIST").exists()


@pytest.mark.slow
def test_a_parquet_partition_linked_into_a_run_is_refused(place: Path) -> None:
    (place / "exp").mkdir()
    (place / "exp" / "frame=runs").symlink_to(place / "RUN")
    before = _tree(place)
    cp = _labkit_in(place, "export", "RUN", "--to", "parquet", "--out", "exp")
    assert_clean_error(cp, "frame=runs", "symbolic link into the run")
    assert _tree(place) == before


def test_real_path_resolves_dotdot_and_refuses_links(place: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(place)
    assert real_path("NONEXIST/../RUN/x") == place / "RUN" / "x"
    assert real_path(place / "new" / "deeper" / ".." / "y") == place / "new" / "y"
    assert real_path("LINK/x", allow_symlinks=True) == place / "RUN" / "x"
    for given in ("LINK/x", "LINK/../FILE", "LINK"):
        with pytest.raises(InputError, match="symbolic link"):
            real_path(given)
    (place / "dangling").symlink_to("nowhere")
    with pytest.raises(InputError, match="remove it"):
        real_path("dangling")
    assert not (place / "nowhere").exists()


@pytest.mark.parametrize("make,words", [
    (os.mkfifo, "a FIFO"),
    (lambda p: socket.socket(socket.AF_UNIX).bind(str(p)), "a socket"),
])
def test_special_files_are_no_output(tmp_path: Path, make, words: str) -> None:
    make(tmp_path / "out")
    with pytest.raises(InputError, match=words):
        check_output(tmp_path / "out", "file")
    with pytest.raises(InputError, match=words):
        check_output(tmp_path / "out", "dir")
    with pytest.raises(InputError, match="a device"):
        check_output("/dev/null", "file")


def test_a_folder_the_system_refuses_is_one_line_even_for_root(place: Path) -> None:
    # /proc refuses new files to root too, whatever its mode bits say
    cp = _labkit_in(place, "postmortem", "RUN", "--json", "/proc/labkit-test.json")
    assert_clean_error(cp, "/proc", "not a writable folder")
    assert "verdict" not in cp.stdout  # refused before the evidence was weighed


@pytest.mark.slow
@pytest.mark.parametrize("name", ["index.html", "00-start-here.html", "00-start-here.ipynb"])
def test_report_refuses_a_fifo_where_it_would_write_and_never_blocks(tmp_path: Path,
                                                                     name: str) -> None:
    out = tmp_path / "reports"
    out.mkdir()
    os.mkfifo(out / name)
    cp = _labkit_in(tmp_path, "report", "00-start-here", "--out", str(out), "--force",
                    timeout=60)
    assert_clean_error(cp, name, "FIFO")
    assert sorted(p.name for p in out.iterdir()) == [name]


def test_reading_back_reports_never_blocks_on_a_fifo(tmp_path: Path) -> None:
    from labkit.report.html import is_labkit_report
    from labkit.report.index import _facts_of

    os.mkfifo(tmp_path / "10-x.ipynb")
    os.mkfifo(tmp_path / "20-y.html")
    assert _facts_of(tmp_path / "10-x.html") == {}
    assert not is_labkit_report(tmp_path / "10-x.ipynb")
    assert not is_labkit_report(tmp_path / "20-y.html")


TINY = """# %% [markdown]
# # Tiny report

# %%
print("hello from the kernel")
"""


def test_a_notebook_cannot_take_the_index_pages_name(tmp_path: Path) -> None:
    nb = tmp_path / "index.py"
    nb.write_text(TINY)
    cp = _labkit_in(tmp_path, "report", str(nb), "--out", str(tmp_path / "reports"))
    assert_clean_error(cp, "index.html", "rename")
    assert not (tmp_path / "reports").exists()


@pytest.mark.slow
def test_report_runs_its_kernel_without_the_transport_warning(tmp_path: Path) -> None:
    nb = tmp_path / "01-tiny.py"
    nb.write_text(TINY)
    cp = _labkit_in(tmp_path, "report", str(nb), "--out", str(tmp_path / "reports"),
                    timeout=240)
    assert cp.returncode == 0, cp.stderr
    assert "hello from the kernel" in (tmp_path / "reports" / "01-tiny.html").read_text()
    assert "without encryption" not in cp.stderr, cp.stderr
    assert "WARNING" not in cp.stderr, cp.stderr


@pytest.mark.parametrize("port", ["70000", "-1", "0", "abc", "8.5"])
def test_lab_port_is_a_checked_number(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["lab", "--port", port, "--no-browser"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument --port" in err and "Traceback" not in err


@pytest.mark.slow
def test_lab_refuses_a_taken_port_instead_of_moving(tmp_path: Path) -> None:
    (tmp_path / "nb").mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        cp = _labkit_in(tmp_path, "lab", "nb", "--no-browser", "--port", str(port))
    assert_clean_error(cp, str(port), "in use")
    assert list((tmp_path / "nb").iterdir()) == []  # refused before anything was written


@pytest.mark.slow
def test_lab_never_follows_a_dangling_jupytext_toml(tmp_path: Path) -> None:
    (tmp_path / "nb").mkdir()
    (tmp_path / "nb" / "jupytext.toml").symlink_to(tmp_path / "elsewhere.toml")
    cp = _labkit_in(tmp_path, "lab", "nb", "--no-browser", "--port", str(_free_port()))
    assert_clean_error(cp, "jupytext.toml", "symbolic link")
    assert not (tmp_path / "elsewhere.toml").exists()


def test_lab_gives_a_folder_without_one_labkits_jupytext_toml(tmp_path: Path) -> None:
    from labkit.lab import prepare_folder

    (tmp_path / "nb").mkdir()
    assert prepare_folder(tmp_path / "nb") == tmp_path / "nb"
    from labkit.resources import notebooks_dir

    assert (tmp_path / "nb" / "jupytext.toml").read_bytes() == \
        (notebooks_dir() / "jupytext.toml").read_bytes()
    (tmp_path / "mine").mkdir()  # the user's own settings, linked in: used, not replaced
    (tmp_path / "mine" / "jupytext.toml").write_text("formats = 'ipynb,py:percent'\n")
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "jupytext.toml").symlink_to(tmp_path / "mine" / "jupytext.toml")
    prepare_folder(tmp_path / "linked")
    assert "ipynb" in (tmp_path / "mine" / "jupytext.toml").read_text()
    (tmp_path / "fifo").mkdir()
    os.mkfifo(tmp_path / "fifo" / "jupytext.toml")
    with pytest.raises(InputError, match="FIFO"):
        prepare_folder(tmp_path / "fifo")
    shutil.copytree(DATASETS / "fd-leak" / "fixed", tmp_path / "run")
    with pytest.raises(InputError, match="inside the run"):
        prepare_folder(tmp_path / "run")
    assert not (tmp_path / "run" / "jupytext.toml").exists()
