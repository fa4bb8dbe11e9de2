"""Values a capture cannot hold: out-of-range numbers with valid checksums, unreadable
folders, names that try to forge terminal lines, and large speedscope profiles."""

from __future__ import annotations

import gzip
import hashlib
import json
import pathlib
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from labkit.capture.gctrace import EVENT_FIELDS, EVENTS_MAGIC
from labkit.cli import main
from labkit.cli.output import printable
from labkit.errors import CorruptCaptureError, InputError
from labkit.export.pprof import ProfileBuilder, ValueTooLarge
from labkit.frames.gctrace import load_gc_events, load_meta
from labkit.frames.origins import load_origins
from labkit.frames.proc import load_fd_table, load_proc
from labkit.frames.pyspy import load_dump, load_speedscope
from labkit.rundir import read_manifest
from labkit.schemas import check
from tests.conftest import assert_clean_error, labkit

DATASETS = Path(__file__).resolve().parents[1] / "datasets"
PYSPY_RUN = DATASETS / "gateway-load" / "leaky"
PROC_RUN = DATASETS / "fleet" / "pod-01" / "fixed"


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def resign(run: Path, name: str) -> None:
    """Give ``name`` a valid size and sha256 in the manifest, as a forger would."""
    m = json.loads((run / "manifest.json").read_text())
    data = (run / name).read_bytes()
    for art in m["artifacts"]:
        if art["name"] == name:
            art["bytes"], art["sha256"] = len(data), hashlib.sha256(data).hexdigest()
    (run / "manifest.json").write_text(json.dumps(m))


def edit_manifest(run: Path, **changes: object) -> None:
    m = json.loads((run / "manifest.json").read_text())
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = m
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    (run / "manifest.json").write_text(json.dumps(m))


def test_every_recorded_manifest_is_valid_against_the_schema() -> None:
    paths = sorted(DATASETS.rglob("manifest.json"))
    assert len(paths) >= 30
    for p in paths:
        check(json.loads(p.read_text()), "manifest", p, "manifest", "re-capture the run")
        read_manifest(p.parent)


BAD_MANIFEST = [
    ({"t0_ns": 10**30}, "t0_ns"),
    ({"t0_ns": -5}, "t0_ns"),
    ({"t0_epoch_s": 1e300}, "t0_epoch_s"),
    ({"target__pid": 10**20}, "target.pid"),
    ({"params__pid": -1}, "params.pid"),
    ({"labels": ["host", "a"]}, "labels"),
    ({"labels": {"bad key": "x"}}, "labels"),
    ({"labels": {"host": {"nested": 1}}}, "labels.host"),
    ({"outcome__memory_cap_bytes": 2**64}, "outcome.memory_cap_bytes"),
    ({"argv": "labkit run"}, "argv"),
    ({"host__cpus": 10**30}, "host.cpus"),
]


@pytest.mark.parametrize("changes,field", BAD_MANIFEST, ids=[f for _, f in BAD_MANIFEST])
def test_out_of_range_manifest_values_are_one_line(tmp_path: Path, changes: dict,
                                                   field: str) -> None:
    run = copy_run(PROC_RUN, tmp_path / "run")
    edit_manifest(run, **changes)
    with pytest.raises(CorruptCaptureError) as exc:
        read_manifest(run)
    assert field in str(exc.value) and "\n" not in str(exc.value)


def test_a_huge_artifact_size_is_refused_by_the_schema(tmp_path: Path) -> None:
    run = copy_run(PROC_RUN, tmp_path / "run")
    m = json.loads((run / "manifest.json").read_text())
    m["artifacts"][0]["bytes"] = 10**30
    (run / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(CorruptCaptureError, match=r"artifacts\[0\]\.bytes"):
        read_manifest(run)


@pytest.mark.parametrize("verb", ["summary", "postmortem", "export", "fleet"])
def test_every_verb_reports_an_out_of_range_t0_in_one_line(tmp_path: Path, verb: str) -> None:
    run = copy_run(PROC_RUN, tmp_path / "run")
    edit_manifest(run, t0_ns=10**30)
    args = {"summary": ["summary", str(run)], "postmortem": ["postmortem", str(run)],
            "export": ["export", str(run), "--to", "pprof", "--out", str(tmp_path / "o")],
            "fleet": ["fleet", str(run), "--store", str(tmp_path / "store")]}[verb]
    assert_clean_error(labkit(*args), "t0_ns", "re-capture")


def _speedscope(tmp_path: Path, weights: list, samples: list | None = None,
                frames: list | None = None) -> Path:
    doc = {"shared": {"frames": frames or [{"name": "main", "file": "/a/app.py", "line": 1}]},
           "profiles": [{"type": "sampled", "name": 'Thread 7 "MainThread"',
                         "samples": samples or [[0]] * len(weights), "weights": weights}]}
    p = tmp_path / "p.speedscope.json"
    p.write_text(json.dumps(doc))
    return p


@pytest.mark.parametrize("weights,samples,frames,words", [
    ([0.01, 1e300], None, None, "weight"),
    ([0.01, 10**300], None, None, "overflow"),
    ([0.01, -0.01], None, None, "weight"),
    ([0.01, "x"], None, None, "weight"),
    ([0.01], [[-1]], None, "frame index"),
    ([0.01], [[5]], None, "frame index"),
    ([0.01], [[10**30]], None, "overflow"),
    ([0.01], [[0.5]], None, "frame index"),
    ([0.01], None, [{"name": "f", "line": 10**30}], "overflow"),
    ([0.01], None, [{"name": ["f"]}], "name"),
])
# (A line beyond int32 but inside int64 is no longer refused: that frame's line becomes 0,
# the rest of the profile is kept; tests/test_frames_pyspy.py checks it.)
def test_speedscope_values_out_of_range_are_one_line(tmp_path: Path, weights: list,
                                                     samples: list | None,
                                                     frames: list | None, words: str) -> None:
    p = _speedscope(tmp_path, weights, samples, frames)
    with pytest.raises(CorruptCaptureError, match=words) as exc:
        load_speedscope(p)
    assert "\n" not in str(exc.value)


def test_a_huge_thread_id_in_a_profile_name_is_not_an_int64_overflow(tmp_path: Path) -> None:
    p = _speedscope(tmp_path, [0.01])
    p.write_text(p.read_text().replace("Thread 7", "Thread " + "9" * 40))
    samples, _ = load_speedscope(p)
    assert samples.thread_id.tolist() == [0]  # not py-spy's form: no id, the name kept


def _reference_counts(path: Path) -> Counter:
    """The loader's contract computed the plain way, from the whole document in memory."""
    from labkit.stacks import AGENT_FILES

    doc = json.loads(path.read_text())
    frames = [(f["name"], f.get("file") or "", int(f.get("line") or 0))
              for f in doc["shared"]["frames"]]
    counts: Counter = Counter()
    for prof in doc["profiles"]:
        name = prof.get("name", "")
        parts = name.split(" ", 2)
        tid, tname = (int(parts[1]), parts[2].strip('"')) if parts[0] == "Thread" else (0, name)
        if tname.startswith("labkit-"):
            continue
        weights = prof.get("weights") or []
        unit = weights[0] if weights else 0
        for i, stack in enumerate(prof["samples"]):
            own = tuple(frames[j] for j in reversed(stack)
                        if not frames[j][1].endswith(AGENT_FILES))
            if own:
                counts[(tid, tname, own)] += round(weights[i] / unit) if unit and i < len(
                    weights) else 1
    return counts


@pytest.mark.parametrize("path", sorted(DATASETS.rglob("pyspy.speedscope.json")),
                         ids=lambda p: p.parent.parent.name + "/" + p.parent.name)
def test_the_streaming_reader_counts_the_recorded_profiles_as_the_whole_document_does(
        path: Path) -> None:
    samples, functions = load_speedscope(path)
    ref = _reference_counts(path)
    got = Counter({(r.thread_id, r.thread_name, tuple((fn, f, ln) for f, ln, fn in r.frames)):
                   r.count for r in samples.itertuples()})
    assert got == ref and sum(ref.values()) > 50
    assert functions.self_count.sum() == samples["count"].sum()


def test_weights_before_samples_count_as_after(tmp_path: Path) -> None:
    frames = [{"name": "a", "file": "/x/a.py", "line": 1}, {"name": "b", "file": "/x/b.py"}]
    p = _speedscope(tmp_path, [0.5, 1.0, 1.5], [[0], [0, 1], [0, 1]], frames)
    after = load_speedscope(p)[0]
    doc = json.loads(p.read_text())
    prof = doc["profiles"][0]
    doc["profiles"][0] = {"weights": prof["weights"], **{k: v for k, v in prof.items()
                                                         if k != "weights"}}
    p.write_text(json.dumps(doc))
    before = load_speedscope(p)[0]
    assert before.equals(after)
    assert sorted(after["count"]) == [1, 5]  # weights over the first: 1, then 2 + 3


@pytest.mark.parametrize("loader,text,field", [
    (lambda p: load_fd_table(p), {"fds": [{"fd": 10**30, "target": "/x"}]}, "fd"),
    (lambda p: load_fd_table(p), {"fds": [{"fd": -3, "target": "/x"}]}, "fd"),
    (lambda p: load_fd_table(p), {"fds": {"fd": 1}}, "fds"),
    (lambda p: load_meta(p), {"t0_ns": 10**30}, "t0_ns"),
    (lambda p: load_meta(p), {"tracer_thread_id": -1}, "tracer_thread_id"),
    (lambda p: load_dump(p), [{"thread_id": 2**70, "frames": []}], "thread_id"),
    (lambda p: load_dump(p), [{"thread_id": 1, "os_thread_id": 10**30, "frames": []}],
     "os_thread_id"),
    (lambda p: load_origins(p), {"stacks": [], "threads": [{"name": "t", "alive": True,
                                                             "t_ns": 10**30, "stack": -1}],
                                 "fds": []}, "t_ns"),
    (lambda p: load_origins(p), {"stacks": [], "threads": [],
                                 "fds": [{"fd": 2**40, "target": "/x", "stack": -1}]}, "fd"),
])
def test_json_capture_values_out_of_range_are_one_line(tmp_path: Path, loader, text: object,
                                                       field: str) -> None:
    p = tmp_path / "capture.json"
    p.write_text(json.dumps(text))
    with pytest.raises(CorruptCaptureError, match=field) as exc:
        loader(p)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("row,words", [("-5,1,1,1,0.0,0", "t_ns"),
                                       ("5,1,1,-1,0.0,0", "fds"),
                                       ("5,1,1,1,inf,0", "cpu_percent")])
def test_process_samples_that_no_sampler_writes_are_one_line(tmp_path: Path, row: str,
                                                              words: str) -> None:
    p = tmp_path / "proc.csv"
    p.write_text(f"t_ns,rss_bytes,threads,fds,cpu_percent,children\n{row}\n")
    with pytest.raises(CorruptCaptureError, match=words):
        load_proc(p, 0)


def _events_file(path: Path, rows: list[list[int]]) -> None:
    assert all(len(r) == len(EVENT_FIELDS) for r in rows)
    path.write_bytes(EVENTS_MAGIC + np.array(rows, dtype="<i8").tobytes())


def test_a_negative_collection_time_is_one_line(tmp_path: Path) -> None:
    p = tmp_path / "gc_events.bin"
    _events_file(p, [[-(2**63), 0, 0, 0, 0, 1, 0, 0, 0]])
    with pytest.raises(CorruptCaptureError, match="impossible"):
        load_gc_events(p, 10**18)


def test_pprof_refuses_values_past_int64_instead_of_wrapping() -> None:
    b = ProfileBuilder([("samples", "count")])
    with pytest.raises(ValueTooLarge):
        b.add([("/a.py", 1, "f")], [2**63])
    ok = ProfileBuilder([("samples", "count")])
    ok.add([("/a.py", 1, "f")], [2**63 - 1, -(2**63)])
    assert ok.encode()


def test_export_of_pauses_past_int64_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    run = copy_run(PROC_RUN, tmp_path / "run")
    big = 2**63 - 10
    _events_file(run / "gc_events.bin", [[0, big, 2, 0, 0, 1, 0, 0, 0]] * 3)
    resign(run, "gc_events.bin")
    out = tmp_path / "out"
    assert_clean_error(labkit("export", str(run), "--to", "pprof", "--out", str(out)),
                       "gc.pb.gz", "64-bit")
    assert not out.exists() or not list(out.iterdir())


def _deny_inside(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Act as a folder without search permission: everything inside it raises EACCES."""
    real_stat, real_open = pathlib.Path.stat, __import__("os").open

    def stat(self: pathlib.Path, *a: object, **kw: object) -> object:
        if folder in pathlib.Path(self).absolute().parents:
            raise PermissionError(13, "Permission denied", str(self))
        return real_stat(self, *a, **kw)

    def os_open(path: object, *a: object, **kw: object) -> int:
        if folder in pathlib.Path(str(path)).absolute().parents:
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(pathlib.Path, "stat", stat)
    monkeypatch.setattr("os.open", os_open)


@pytest.mark.parametrize("argv", [["summary"], ["postmortem"],
                                  ["export", "--to", "pprof", "--out", "OUT"],
                                  ["fleet", "--store", "OUT"]], ids=lambda a: a[0])
def test_a_run_folder_that_cannot_be_entered_is_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        argv: list[str]) -> None:
    run = copy_run(PROC_RUN, tmp_path / "run")
    args = [a.replace("OUT", str(tmp_path / "out")) for a in argv]
    args = [*args[:1], str(run), *args[1:]]
    _deny_inside(monkeypatch, run.absolute())
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("labkit: ") and str(run) in err[0], err
    assert "permission" in err[0].lower()


def test_any_os_error_reaching_the_cli_is_one_line_naming_the_path(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def denied(path: Path) -> list[str]:
        raise PermissionError(13, "Permission denied", "/srv/runs/secret")

    monkeypatch.setattr("labkit.frames.load", denied)
    assert main(["summary", "anything"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["labkit: /srv/runs/secret: Permission denied; check its permissions (and "
                   "those of the folders above it), or run as its owner"]


def test_printable_escapes_every_control_and_line_forging_character() -> None:
    assert printable("a\nb\rc\x1b[2J\x07\x85\u2028\u202e\u2066d") == \
        "a\\x0ab\\x0dc\\x1b[2J\\x07\\x85\\u2028\\u202e\\u2066d"
    assert printable("naïve 名前 (app.py:3)") == "naïve 名前 (app.py:3)"


def test_a_newline_in_a_captured_name_cannot_forge_an_output_line(tmp_path: Path) -> None:
    forged = "work\nlabkit: all clear, nothing leaked"
    p = _speedscope(tmp_path, [0.01] * 3, frames=[
        {"name": forged, "file": "/a/app\n.py", "line": 1}])
    cp = labkit("summary", str(p))
    assert cp.returncode == 0, cp.stderr
    assert not any(ln.startswith("labkit: all clear") for ln in cp.stdout.splitlines())
    assert "work\\x0alabkit: all clear" in cp.stdout


def test_a_gzipped_speedscope_is_not_a_capture_labkit_reads(tmp_path: Path) -> None:
    p = _speedscope(tmp_path, [0.01])
    p.write_bytes(gzip.compress(p.read_bytes()))
    with pytest.raises(CorruptCaptureError, match="speedscope"):
        load_speedscope(p)


def test_an_unreadable_capture_file_is_an_input_error(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    p = _speedscope(tmp_path, [0.01])
    _deny_inside(monkeypatch, tmp_path.absolute())
    with pytest.raises(InputError, match="permissions"):
        load_speedscope(p)


def test_a_notebook_summary_escapes_names_as_the_terminal_does() -> None:
    from labkit.report.rich import lines_html

    page = lines_html("capture", ["top: work\nlabkit: all clear", "x\x1b[2J"])
    assert "work\\x0alabkit: all clear\nx\\x1b[2J" in page
