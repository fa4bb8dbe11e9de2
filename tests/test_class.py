"""The trainer's view of the room: records written by the lab's own functions (in-process and
in a real kernel), read back by ``labkit class`` over a room of learners' homes."""

from __future__ import annotations

import html
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from labkit import notebook as nb
from labkit.analysis import records as R
from labkit.analysis.room import FAILED, HELD, NOT_RUN, room
from tests.conftest import assert_clean_error, labkit

MIB = 2**20


def _home(room_dir: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = room_dir / name / ".labkit" / "records"
    monkeypatch.setenv(R.RECORDS_ENV, str(d))
    return d


def _records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def _learner_runs_pool_misuse(prediction: float, *, reproduce: bool = True) -> float:
    """A learner's pass through 10-pool-misuse with the real lab functions (replayed
    recordings); returns the MiB their signature measured. ``reproduce=False`` measures the
    fixed run in the leaky one's place, as a learner who edited the wrong cell would."""
    lab = nb.Scenario("pool-misuse", replay=True, predictions={"prediction_mib": prediction})
    if not reproduce:
        lab.runs["leaky"] = lab.run("fixed")
    sig = lab.signature()
    measured = sig.value("retained bytes at end", "leaky") / MIB
    nb.check(prediction, measured, rel=0.3, what="MiB retained by the leaky pool")
    return measured


@pytest.fixture
def classroom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict]:
    """alice reproduces pool-misuse and predicts near; bob's run does not reproduce; carol
    has a home and nothing else; dave is a records folder (no home) with buffer-growth, a
    damaged record and one of a later format; erin first failed, then reran right."""
    monkeypatch.delenv(nb.REPORT_ENV, raising=False)
    room_dir = tmp_path / "room"
    got: dict[str, float] = {}
    _home(room_dir, "alice", monkeypatch)
    got["alice"] = _learner_runs_pool_misuse(55)
    _home(room_dir, "bob", monkeypatch)
    got["bob"] = _learner_runs_pool_misuse(4, reproduce=False)
    (room_dir / "carol").mkdir()
    dave = room_dir / "dave"
    monkeypatch.setenv(R.RECORDS_ENV, str(dave))
    lab = nb.Scenario("buffer-growth", replay=True, predictions={"prediction_ratio": 20})
    sig = lab.signature()
    got["dave_ratio"] = sig.row("total bytes allocated").values["leaky"] / \
        sig.row("total bytes allocated").values["fixed"]
    nb.check(20, got["dave_ratio"], factor=2, what="ratio of bytes allocated (leaky / fixed)")
    (dave / "zz-damaged.json").write_text('{"format": "labkit-record", "vers')
    (dave / "zz-future.json").write_text(json.dumps({"format": "labkit-record", "version": 7}))
    _home(room_dir, "erin", monkeypatch)
    _learner_runs_pool_misuse(300, reproduce=False)
    got["erin"] = _learner_runs_pool_misuse(300)
    return room_dir, got


def test_the_lab_functions_record_each_step_atomically_and_valid(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(nb.REPORT_ENV, raising=False)
    folder = _home(tmp_path, "ann", monkeypatch)
    measured = _learner_runs_pool_misuse(40)
    assert not list(folder.glob("*.tmp")) and not list(folder.glob(".*"))
    recs = _records(folder)
    assert [r["kind"] for r in recs] == ["prediction", "run", "run", "signature", "check"]
    for path in sorted(folder.glob("*.json")):
        R.read_record(path)  # valid against labkit/schemas/record.schema.json
    assert {r["scenario"] for r in recs} == {"pool-misuse"}
    assert len({r["session"] for r in recs}) == 1
    assert recs[0]["predictions"] == {"prediction_mib": 40}
    assert [r["variant"] for r in recs[1:3]] == ["leaky", "fixed"]
    assert all(r["mode"] == "replay" for r in recs[1:4])
    sig, check = recs[3], recs[4]
    assert sig["ok"] is True and sig["rows"][0]["metric"] == "retained bytes at end"
    assert sig["rows"][0]["values"]["leaky"] == pytest.approx(measured * MIB)
    assert check["measured"] == pytest.approx(measured) and check["prediction"] == 40
    assert check["ok"] is (abs(40 - measured) <= 0.3 * measured)
    assert check["what"] == "MiB retained by the leaky pool" and check["band"] == "within 30%"


def test_recording_never_fails_the_notebook(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv(nb.REPORT_ENV, raising=False)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(R.RECORDS_ENV, str(blocker / "records"))  # cannot be a folder
    monkeypatch.setitem(R._state, "warned", False)
    assert nb.check(10, 11, rel=0.2, what="threads")
    assert repr(nb.check(1, 11, rel=0.2)).startswith("Not quite")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("labkit: cannot record this check in")
    assert "Traceback" not in err[0]
    monkeypatch.setenv(R.RECORDS_ENV, "")  # recording off
    assert R.write_record("check", None, what="x", prediction=1, measured=1, ok=True) is None


def test_a_share_without_hard_links_still_records(tmp_path: Path, monkeypatch) -> None:
    import errno

    def no_links(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.delenv(nb.REPORT_ENV, raising=False)
    folder = _home(tmp_path, "ann", monkeypatch)
    monkeypatch.setattr(os, "link", no_links)
    path = R.write_record("check", "pool-misuse", what="x", prediction=1, measured=2, ok=False)
    assert path is not None and R.read_record(path)["measured"] == 2
    assert [p.name for p in folder.iterdir()] == [path.name]  # no temporary file left


def test_a_report_being_rendered_records_nothing(tmp_path: Path, monkeypatch) -> None:
    folder = _home(tmp_path, "reports", monkeypatch)
    monkeypatch.setenv(nb.REPORT_ENV, "1")
    nb.check(None, 5, what="threads")
    assert not folder.exists()


def test_a_record_with_a_non_finite_number_is_written_as_null(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(nb.REPORT_ENV, raising=False)
    folder = _home(tmp_path, "ann", monkeypatch)
    nb.check(float("nan"), float("inf"), factor=2, what="ratio")
    rec = R.read_record(next(folder.glob("*.json")))
    assert rec["prediction"] is None and rec["measured"] is None and rec["ok"] is False


def test_labkit_class_shows_the_room(classroom: tuple[Path, dict], tmp_path: Path) -> None:
    room_dir, got = classroom
    page, data = tmp_path / "room.html", tmp_path / "room.json"
    cp = labkit("class", str(room_dir), "--html", str(page), "--json", str(data),
                "--scenario", "thread-leak")
    assert cp.returncode == 0, cp.stderr
    out = cp.stdout
    assert out.splitlines()[0].startswith("5 learners: 4 ran a scenario, 1 not yet")
    assert "not run yet: carol" in out
    bad = [ln for ln in out.splitlines() if ln.startswith("  bob / pool-misuse")]
    assert len(bad) == 1 and "retained bytes at end" in bad[0] and "expected leaky >=" in bad[0]
    assert "erin / " not in out  # her rerun reproduced: the latest signature counts
    # bad records: skipped, counted, one line for the learner, no traceback
    err = [ln for ln in cp.stderr.splitlines() if ln.strip()]
    assert err == [e for e in err if e.startswith("dave: 2 records skipped")] and len(err) == 1
    assert "Traceback" not in cp.stderr

    doc = json.loads(data.read_text())
    assert doc["not_run"] == ["carol"] and doc["skipped_count"] == 2
    assert doc["scenarios"] == ["pool-misuse", "buffer-growth", "thread-leak"]
    status = {(r["learner"], r["scenario"]): r for r in doc["status"]}
    assert status["alice", "pool-misuse"]["status"] == HELD
    assert status["erin", "pool-misuse"]["status"] == HELD
    assert status["bob", "pool-misuse"]["status"] == FAILED
    assert "retained bytes at end" in status["bob", "pool-misuse"]["reason"]
    assert status["dave", "buffer-growth"]["status"] == HELD
    assert all(status[n, "thread-leak"]["status"] == NOT_RUN for n in doc["learners"])
    ex = {(e["scenario"], e["what"]): e for e in doc["exercises"]}
    pool = ex["pool-misuse", "MiB retained by the leaky pool"]
    assert pool["checked"] == 3 and pool["predicted"] == 3
    assert pool["prediction_min"] == 4 and pool["prediction_max"] == 300
    # the truth is measured by the runs that reproduced the lesson: bob's is left out
    assert pool["measured_median"] == pytest.approx(statistics.median([got["alice"],
                                                                       got["erin"]]))
    assert pool["measured_n"] == 2 and got["bob"] < 0.5 * got["alice"]
    right = sum(abs(p - got[n]) <= 0.3 * got[n] for n, p in
                (("alice", 55), ("bob", 4), ("erin", 300)))
    assert pool["right"] == right
    growth = ex["buffer-growth", "ratio of bytes allocated (leaky / fixed)"]
    assert growth["measured_median"] == pytest.approx(got["dave_ratio"])

    text = html.unescape(page.read_text())
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert "http://" not in text and "https://" not in text
    assert text.count('class="labkit-chart"') == 2
    assert "bob" in text and "retained bytes at end" in text and "carol" in text
    assert "dave: 2 records skipped" in text


def test_labkit_class_bad_input_is_one_line(classroom: tuple[Path, dict],
                                            tmp_path: Path) -> None:
    room_dir, _ = classroom
    assert_clean_error(labkit("class", str(tmp_path / "nowhere")), "not a folder")
    assert_clean_error(labkit("class", str(room_dir), "--scenario", "nope"), "unknown scenario")
    taken = tmp_path / "mine.html"
    taken.write_text("a user's file")
    assert_clean_error(labkit("class", str(room_dir), "--html", str(taken)), str(taken))
    assert taken.read_text() == "a user's file"


def test_the_room_reads_a_folder_of_records_folders(classroom: tuple[Path, dict]) -> None:
    room_dir, _ = classroom
    rm = room(room_dir)
    assert rm.learners == ["alice", "bob", "carol", "dave", "erin"]
    assert list(rm.not_reproduced.learner) == ["bob"]
    assert len(rm.skipped) == 1 and rm.skipped_count == 2


def test_one_home_or_one_records_folder_is_a_room_of_one(classroom: tuple[Path, dict]) -> None:
    room_dir, _ = classroom
    assert room(room_dir / "alice").learners == ["alice"]
    one = room(room_dir / "dave")
    assert one.learners == ["dave"] and one.skipped_count == 2
    assert list(one.status.status) == [HELD]


def test_a_home_the_trainer_cannot_read_is_said_so_not_counted_as_idle(
        classroom: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    room_dir, _ = classroom
    locked = room_dir / "alice" / ".labkit" / "records"
    real_iterdir = Path.iterdir

    def iterdir(self: Path):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_iterdir(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)  # root reads any folder: denial simulated
    rm = room(room_dir)
    assert rm.unreadable == ["alice"] and rm.not_run == ["carol"]
    assert rm.headline().endswith("; 1 unreadable")
    assert [ln for ln in rm.skipped if ln.startswith("alice")] == [
        f"alice: records unreadable ({locked}: Permission denied; run as a user who can "
        "read it)"]


@pytest.mark.slow
def test_a_learner_notebook_in_a_real_kernel_reaches_the_trainer(tmp_path: Path) -> None:
    import jupytext
    import papermill

    from labkit.report.html import resolve

    records = tmp_path / "room" / "frank" / ".labkit" / "records"
    env = {k: v for k, v in os.environ.items() if k != nb.REPORT_ENV}
    env[R.RECORDS_ENV] = str(records)
    source = jupytext.read(resolve("10-pool-misuse"))
    nbfile = tmp_path / "in.ipynb"
    jupytext.write(source, nbfile)
    # the kernel inherits papermill's environment: a child process keeps ours clean
    code = ("import papermill, sys; papermill.execute_notebook(sys.argv[1], sys.argv[2], "
            "parameters={'replay': True, 'prediction_mib': 25}, kernel_name='python3', "
            "progress_bar=False)")
    subprocess.run([sys.executable, "-c", code, str(nbfile), str(tmp_path / "out.ipynb")],
                   env=env, check=True, timeout=600, cwd=tmp_path)
    assert papermill  # imported above only to fail early when it is missing
    kinds = [r["kind"] for r in _records(records)]
    assert kinds == ["prediction", "run", "run", "signature", "check"]
    cp = labkit("class", str(tmp_path / "room"))
    assert cp.returncode == 0 and "frank: pool-misuse reproduced" in cp.stdout, cp.stdout


@pytest.mark.parametrize("way", ["dotdot", "symlink", "under-a-file"])
@pytest.mark.parametrize("flag", ["--html", "--json"])
def test_labkit_class_never_writes_into_a_run(tmp_path: Path, way: str, flag: str) -> None:
    import shutil

    shutil.copytree(nb.DATASETS / "pool-misuse" / "leaky", tmp_path / "RUN")
    (tmp_path / "LINK").symlink_to("RUN")
    (tmp_path / "FILE").write_text("not a folder\n")
    out, words = {"dotdot": ("NONEXIST/../RUN/x", "inside the run"),
                  "symlink": ("LINK/x", "symbolic link"),
                  "under-a-file": ("FILE/x", "not a folder")}[way]
    before = sorted(p.name for p in (tmp_path / "RUN").iterdir())
    cp = subprocess.run([sys.executable, "-m", "labkit", "class", ".", flag, out],
                        capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert_clean_error(cp, words)
    assert sorted(p.name for p in (tmp_path / "RUN").iterdir()) == before


def test_hostile_records_are_skipped_and_counted(classroom: tuple[Path, dict]) -> None:
    room_dir, _ = classroom
    mallory = room_dir / "mallory\x1b[2J\nbob"
    mallory.mkdir()
    (mallory / "big.json").write_text(" " * (R.MAX_RECORD_BYTES + 1) + "{}")
    (mallory / "link.json").symlink_to(next((room_dir / "alice").rglob("*check*.json")))
    os.mkfifo(mallory / "fifo.json")
    (mallory / "list.json").write_text("[]")
    (mallory / "nan.json").write_text('{"format": "labkit-record", "version": 1, '
                                      '"prediction": NaN}')
    cp = labkit("class", str(room_dir), timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert "\x1b" not in cp.stdout + cp.stderr
    lines = [ln for ln in cp.stderr.splitlines() if "mallory" in ln]
    assert len(lines) == 1 and "5 records skipped" in lines[0] and "\\x1b" in lines[0]
    assert "6 learners: 4 ran a scenario, 2 not yet" in cp.stdout


@pytest.mark.slow
def test_the_class_room_notebook_shows_the_room(classroom: tuple[Path, dict],
                                                tmp_path: Path) -> None:
    import jupytext
    import papermill

    room_dir, _ = classroom
    out = tmp_path / "room.ipynb"
    source = Path(__file__).resolve().parents[1] / "notebooks" / "class-room.py"
    papermill.execute_notebook(jupytext.read(source), str(out),
                               parameters={"room_dir": str(room_dir)},
                               kernel_name="python3", progress_bar=False, cwd=tmp_path)
    text = out.read_text()
    assert "5 learners: 4 ran a scenario, 1 not yet" in text
    assert "retained bytes at end" in text and "carol" in text
    assert text.count("labkit-chart") >= 2


@pytest.mark.slow
def test_the_room_page_in_a_real_browser(classroom: tuple[Path, dict], tmp_path: Path) -> None:
    import re

    from playwright.sync_api import sync_playwright

    chromium = Path("/usr/bin/chromium")
    assert chromium.exists(), "no Chromium: `make chromium` installs it"
    room_dir, _ = classroom
    page_file = tmp_path / "room.html"
    assert labkit("class", str(room_dir), "--html", str(page_file)).returncode == 0
    artifacts = Path(__file__).resolve().parents[1] / "artifacts"
    artifacts.mkdir(exist_ok=True)
    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium),
                                     args=["--no-sandbox", "--disable-gpu", "--no-first-run",
                                           "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1000, "height": 1100})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            def route(r) -> None:
                if r.request.url.startswith(("file://", "data:", "about:")):
                    r.continue_()
                else:
                    requests.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.goto(page_file.as_uri(), wait_until="load")
            images = page.evaluate("Array.from(document.images).map(i => i.complete && "
                                   "i.naturalWidth > 0)")
            body = page.inner_text("body")
            bad_row = page.query_selector("tr.bad")
            assert bad_row is not None and "bob" in bad_row.inner_text()
            page.screenshot(path=str(artifacts / "class-room.png"), full_page=True)
        finally:
            browser.close()
    assert images == [True, True]
    assert requests == [] and errors == []
    assert not re.search(r"\d[eE][+-]?\d", body)  # plain numbers, never an exponent
    assert "carol" in body.split("Did not reproduce")[0]
    assert (artifacts / "class-room.png").stat().st_size > 20_000
