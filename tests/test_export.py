"""Exports read by the tools people run: `go tool pprof` (Debian's Go, scripts/install-go)
for pprof, DuckDB and pyarrow for Parquet, with no labkit code on the reading side."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import assert_clean_error, labkit

DATASETS = Path(__file__).resolve().parent.parent / "datasets"
pytestmark = pytest.mark.slow


def _pprof(*args: str) -> str:
    go = shutil.which("go")
    assert go, "no Go: `make test` installs it (scripts/install-go)"
    cp = subprocess.run([go, "tool", "pprof", *args], capture_output=True, text=True,
                        timeout=120)
    assert cp.returncode == 0, cp.stderr
    return cp.stdout


def _top(text: str) -> list[tuple[float, str]]:
    """(flat value in 10^6 bytes or s, function) rows of ``-top``, largest first."""
    rows = []
    for line in text.splitlines():
        m = re.match(r"\s*([\d.]+)(kB|MB|GB|s|ms|us)\s+[\d.]+%\s+[\d.]+%\s+\S+\s+\S+\s+"
                     r"(.+)$", line)
        if m:
            scale = {"kB": 2**10 / 1e6, "MB": 2**20 / 1e6, "GB": 2**30 / 1e6, "s": 1,
                     "ms": 1e-3, "us": 1e-6}[m.group(2)]  # pprof's kB and MB are binary
            rows.append((float(m.group(1)) * scale, m.group(3).strip()))
    return rows


def test_go_tool_pprof_reads_memory_cpu_and_gc_exports(tmp_path: Path) -> None:
    runs = {}
    for name, run in (("leaky", "pool-misuse/leaky"), ("fixed", "pool-misuse/fixed"),
                      ("cpu", "gateway-load/leaky"), ("cpu-fixed", "gateway-load/fixed"),
                      ("gc", "gc-tuning/default")):
        runs[name] = tmp_path / name
        cp = labkit("export", str(DATASETS / run), "--to", "pprof", "--out", str(runs[name]))
        assert cp.returncode == 0, cp.stderr
    from labkit import load

    peak = load(DATASETS / "pool-misuse/leaky").memray.allocations_at_peak
    serve_mb = peak[peak.function == "serve"]["bytes"].sum() / 1e6
    top = _top(_pprof("-top", "-sample_index=inuse_space", str(runs["leaky"] / "memory.pb.gz")))
    assert top[0][1] == "serve" and abs(top[0][0] - serve_mb) < 0.01 * serve_mb, top[:3]
    diff = _top(_pprof("-top", "-sample_index=inuse_space", "-diff_base",
                       str(runs["fixed"] / "memory.pb.gz"), str(runs["leaky"] / "memory.pb.gz")))
    assert diff[0][1] == "serve" and diff[0][0] > 50, diff[:3]  # the growth, leaky - fixed
    allocated = load(DATASETS / "pool-misuse/leaky").memray.allocated
    serve_alloc = allocated[allocated.function == "serve"]["bytes"].sum() / 1e6
    alloc = _top(_pprof("-top", "-sample_index=alloc_space", str(runs["leaky"] / "memory.pb.gz")))
    assert alloc[0][1] == "serve" and abs(alloc[0][0] - serve_alloc) < 0.01 * serve_alloc
    assert serve_alloc > 5 * serve_mb  # pooled buffers churn: far more allocated than held
    events = load(DATASETS / "gc-tuning/default").gc_events
    by_gen = events.groupby("generation")["pause_ms"].sum() / 1e3
    gc = _top(_pprof("-top", str(runs["gc"] / "gc.pb.gz")))
    assert gc[0][1] == f"gc: {('young', 'middle', 'full')[by_gen.idxmax()]} collection " \
        f"(generation {by_gen.idxmax()})"
    assert abs(gc[0][0] - by_gen.max()) < 0.01 * by_gen.max() + 1e-5, (gc, by_gen)
    assert "run: " in _pprof("-tags", str(runs["gc"] / "gc.pb.gz"))
    traces = _pprof("-traces", str(runs["leaky"] / "memory.pb.gz"))
    assert re.search(r"serve\n\s+run_main\n\s+main", traces)  # whole stacks, leaf first
    cpu = _top(_pprof("-top", str(runs["cpu"] / "cpu.pb.gz")))
    funcs = load(DATASETS / "gateway-load/leaky").pyspy.functions
    assert cpu[0][1].split(".")[-1] in set(funcs.head(3).function.str.split(".").str[-1])
    # the leaky gateway opens a connection per request; the fixed one keeps them
    cpu_diff = _top(_pprof("-top", "-diff_base", str(runs["cpu-fixed"] / "cpu.pb.gz"),
                           str(runs["cpu"] / "cpu.pb.gz")))
    assert "create_connection" in [f for _, f in cpu_diff[:5]], cpu_diff[:5]
    comments = _pprof("-comments", str(runs["cpu"] / "cpu.pb.gz"))
    assert "labkit run leaky (scenario)" in comments


def test_export_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    proc_only = tmp_path / "proc-only"
    cp = labkit("capture", "--proc", "--label", "host=pod-9", "--label", "zone=b", "--out",
                str(proc_only), "--", sys.executable, "-c", "import time; time.sleep(0.3)")
    assert cp.returncode == 0, cp.stderr
    import json

    manifest = json.loads((proc_only / "manifest.json").read_text())
    assert manifest["labels"] == {"host": "pod-9", "zone": "b"}
    assert manifest["target"]["pid"] > 0 and manifest["host"]["hostname"]
    bad = labkit("capture", "--proc", "--label", "no-equals", "--", sys.executable, "-c", "")
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr
    assert_clean_error(labkit("export", str(proc_only), "--out", str(tmp_path / "x")),
                       "no memray, py-spy or GC capture", "--memray")
    out = tmp_path / "again"
    assert labkit("export", str(DATASETS / "pool-misuse/leaky"), "--out", str(out)) \
        .returncode == 0
    assert_clean_error(labkit("export", str(DATASETS / "pool-misuse/leaky"), "--out",
                              str(out)), "already exists", "--force")
    no_pyarrow = ("import sys; sys.modules['pyarrow'] = None; from labkit.cli import main; "
                  "sys.exit(main())")
    assert_clean_error(subprocess.run(
        [sys.executable, "-c", no_pyarrow, "export", str(DATASETS / "pool-misuse/leaky"),
         "--to", "parquet", "--out", str(tmp_path / "y")], capture_output=True, text=True,
        timeout=60),
        "needs pyarrow", "labkit[fleet]")
    assert not (tmp_path / "y").exists()


def test_parquet_export_reads_the_same_in_duckdb_and_pyarrow(tmp_path: Path) -> None:
    import duckdb
    import pyarrow.dataset as ds

    from labkit import load

    root = tmp_path / "fleet"
    for host, variant in (("a", "leaky"), ("b", "fixed")):
        cp = labkit("export", str(DATASETS / "pool-misuse" / variant), "--to", "parquet",
                    "--out", str(root), "--label", f"host={host}")
        assert cp.returncode == 0, cp.stderr
    expected = {}
    for host, variant in (("a", "leaky"), ("b", "fixed")):
        peak = load(DATASETS / "pool-misuse" / variant).memray.allocations_at_peak
        for fn, b in peak.groupby("function")["bytes"].sum().items():
            expected[(host, fn)] = int(b)
    glob = str(root / "frame=memray_peak" / "*" / "*.parquet")
    rows = duckdb.sql(f"SELECT label_host, function, sum(bytes) FROM read_parquet('{glob}', "
                      "hive_partitioning=true) GROUP BY ALL").fetchall()
    assert {(h, f): int(b) for h, f, b in rows} == expected
    table = ds.dataset(root / "frame=memray_peak", partitioning="hive").to_table()
    df = table.to_pandas()
    assert set(df.run_id.astype(str).str.split("-").str[0]) == {"leaky", "fixed"}
    by = df.groupby(["label_host", "function"])["bytes"].sum()
    assert {k: int(v) for k, v in by.items()} == expected
    assert set(df.schema_version) == {1}
    assert_clean_error(labkit("export", str(DATASETS / "pool-misuse" / "leaky"), "--to",
                              "parquet", "--out", str(root)), "already exists", "--force")


def test_go_tool_pprof_web_ui_serves_an_export(tmp_path: Path) -> None:
    import os
    import signal
    import socket
    import time
    import urllib.request

    out = tmp_path / "leaky"
    assert labkit("export", str(DATASETS / "pool-misuse/leaky"), "--out", str(out)) \
        .returncode == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ui = subprocess.Popen([shutil.which("go") or "go", "tool", "pprof", "-no_browser",
                           f"-http=127.0.0.1:{port}", str(out / "memory.pb.gz")],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    try:
        deadline, body = time.monotonic() + 60, ""
        while time.monotonic() < deadline and not body:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ui/top", timeout=5) as r:
                    body = r.read().decode()
            except OSError:
                time.sleep(0.3)
        assert "serve" in body and "inuse_space" in body
    finally:
        os.killpg(ui.pid, signal.SIGKILL)
        ui.wait()


def test_a_part_that_fails_stops_the_parquet_export_before_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from labkit.errors import InputError
    from labkit.export import MEMRAY_PASSES, parquet
    from labkit.frames import load

    real = parquet._write_part
    written: list[str] = []

    def failing(root: Path, path: Path, table: object) -> None:
        if path.parent.parent.name == "frame=gc_events":
            raise InputError(f"cannot write {path} (No space left on device)")
        real(root, path, table)
        written.append(path.parent.parent.name)

    monkeypatch.setattr(parquet, "_write_part", failing)
    run = load(DATASETS / "pool-misuse" / "leaky", background_stats=False,
               memray_first=MEMRAY_PASSES["parquet"])
    with pytest.raises(InputError, match="No space left on device"):
        parquet.export_parquet(run, tmp_path / "out")
    assert "frame=runs" not in written  # the part that marks a run's export complete
    assert not list((tmp_path / "out").glob("frame=runs/*/*"))


def test_each_parquet_part_is_one_write_to_its_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A part is made in Arrow's memory and written to its file in one call: Arrow writing
    to a Python file would call its write some 4 times a column, each call waiting for the
    GIL the export's own thread holds while it makes the next part."""
    import os

    import pyarrow.parquet as pq

    from labkit.export import MEMRAY_PASSES, parquet
    from labkit.frames import load

    writes: list[int] = []  # per file opened for writing, its write calls
    real_fdopen = os.fdopen

    class Counted:
        def __init__(self, fh: object) -> None:
            self.fh, self.n = fh, len(writes)
            writes.append(0)

        def write(self, data: object) -> int:
            writes[self.n] += 1
            return self.fh.write(data)

        def __getattr__(self, name: str) -> object:
            return getattr(self.fh, name)

        def __enter__(self) -> Counted:
            return self

        def __exit__(self, *exc: object) -> None:
            self.fh.close()

    def fdopen(fd: int, mode: str = "r", *args: object, **kw: object) -> object:
        fh = real_fdopen(fd, mode, *args, **kw)
        return Counted(fh) if "w" in mode else fh

    monkeypatch.setattr(parquet.os, "fdopen", fdopen)
    run = load(DATASETS / "pool-misuse" / "leaky", background_stats=False,
               memray_first=MEMRAY_PASSES["parquet"])
    parts = parquet.export_parquet(run, tmp_path / "out")
    assert len(parts) == len(writes) >= 8 and set(writes) == {1}, writes
    for part in parts:
        assert pq.read_table(part).num_rows >= 0  # whole: Parquet's footer is there
