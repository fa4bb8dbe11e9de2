"""Aggregated memray captures (``memray run --aggregate``, ``labkit capture --aggregate``):
real memray on corpus programs whose culprit is known, read by postmortem, summary, both
exports and the notebooks' loader; a cut file is one line of its own."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import PY, assert_clean_error, labkit

pytestmark = pytest.mark.slow
CORPUS = Path(__file__).resolve().parent.parent / "bench" / "corpus"


def _culprit(program: str) -> str:
    return (CORPUS / program).read_text().splitlines()[0].removeprefix("# culprit: ").strip()


def _memray_peak(path: Path) -> dict[str, int]:
    """memray's own high-water-mark view: bytes per leaf function, threads merged."""
    import memray

    out: dict[str, int] = {}
    with memray.FileReader(str(path)) as r:
        for rec in r.get_high_watermark_allocation_records(merge_threads=True):
            stack = rec.stack_trace()
            if stack:
                out[stack[0][0]] = out.get(stack[0][0], 0) + rec.size
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``labkit capture --aggregate`` of an unbounded cache (culprit ``remember``)."""
    out = tmp_path_factory.mktemp("agg") / "run"
    cp = labkit("capture", "--memray", "--aggregate", "--out", str(out), "--", PY,
                str(CORPUS / "cache_unbounded.py"))
    assert cp.returncode == 0, cp.stderr
    return out


@pytest.fixture(scope="module")
def loose(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``memray run --aggregate`` of a class-level registry (culprit ``register``), as a
    production user makes one (memray compresses it)."""
    out = tmp_path_factory.mktemp("agg") / "registry.bin"
    subprocess.run([PY, "-m", "memray", "run", "--aggregate", "-q", "-o", str(out),
                    str(CORPUS / "class_registry.py")], check=True, capture_output=True,
                   timeout=120)
    return out


def test_capture_aggregate_makes_an_aggregated_file(run: Path) -> None:
    import memray

    with memray.FileReader(str(run / "memray.bin")) as r:
        assert r.metadata.file_format == memray.FileFormat.AGGREGATED_ALLOCATIONS


def test_postmortem_names_the_culprit_and_says_what_is_missing(run: Path,
                                                               tmp_path: Path) -> None:
    out, page = tmp_path / "f.json", tmp_path / "f.html"
    cp = labkit("postmortem", str(run), "--json", str(out), "--html", str(page))
    assert cp.returncode == 0, cp.stderr
    found = json.loads(out.read_text())
    top = found["suspects"][0]
    assert top["function"] == _culprit("cache_unbounded.py"), found["suspects"][:3]
    held = _memray_peak(run / "memray.bin")[top["function"]]
    assert held > 0.9 * max(_memray_peak(run / "memray.bin").values())
    said = float(top["explains"][0].split("(")[1].split(" MiB")[0]) * 2**20
    assert abs(said - held) <= 0.01 * held + 0.05 * 2**20, (top["explains"], held)
    missing = {m["evidence"]: m["why"] for m in found["missing"]}
    assert set(missing) >= {"growth per call stack over the run",
                            "short-lived allocations (churn)"}
    assert all("aggregated capture" in why for why in missing.values())
    assert "missing: growth per call stack over the run (aggregated capture" in cp.stdout
    html = page.read_text()
    assert "Evidence these captures cannot give" in html
    assert "call stacks aggregated by memray" in html
    assert "corrupt" not in cp.stdout + cp.stderr and "truncated" not in cp.stdout + cp.stderr


def test_loose_memray_run_aggregate_file(loose: Path, tmp_path: Path) -> None:
    out = tmp_path / "f.json"
    cp = labkit("postmortem", "--memray", str(loose), "--json", str(out))
    assert cp.returncode == 0, cp.stderr
    found = json.loads(out.read_text())
    assert found["suspects"][0]["function"] == _culprit("class_registry.py"), found["suspects"]
    assert found["missing"]
    cp = labkit("summary", str(loose))
    assert cp.returncode == 0, cp.stderr
    assert "aggregated capture" in cp.stdout and "corrupt" not in cp.stdout


def test_a_cut_aggregated_file_is_one_line_of_its_own(run: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain.bin"  # as memray writes it with --no-compress
    subprocess.run([PY, "-m", "memray", "run", "--aggregate", "--no-compress", "-q", "-o",
                    str(plain), str(CORPUS / "cache_unbounded.py")], check=True,
                   capture_output=True, timeout=120)
    raw = plain.read_bytes().rstrip(b"\0")
    for keep in (len(raw) - 40, len(raw) // 2):
        cut = tmp_path / f"cut-{keep}.bin"
        cut.write_bytes(raw[:keep])
        before = cut.read_bytes()
        assert_clean_error(labkit("summary", str(cut)), "aggregated memray capture that ends "
                           "early", "re-capture it")
        assert_clean_error(labkit("postmortem", "--memray", str(cut)), "ends early")
        assert cut.read_bytes() == before
    packed = (run / "memray.bin").read_bytes()  # labkit's, compressed by memray at exit
    cut = tmp_path / "cut-lz4.bin"
    cut.write_bytes(packed[:len(packed) // 2])  # memray cannot even open it
    assert_clean_error(labkit("summary", str(cut)), "not a readable memray capture",
                       "truncated")
    assert labkit("summary", str(plain)).returncode == 0


def test_no_cut_of_an_aggregated_file_reads_as_a_smaller_capture(tmp_path: Path) -> None:
    from labkit.errors import CorruptCaptureError
    from labkit.frames.memray import MemrayCapture

    plain = tmp_path / "plain.bin"
    subprocess.run([PY, "-m", "memray", "run", "--aggregate", "--no-compress", "-q", "-o",
                    str(plain), str(CORPUS / "class_registry.py")], check=True,
                   capture_output=True, timeout=120)
    raw = plain.read_bytes().rstrip(b"\0")
    # the allocation records come last: cut through them densely, then the rest sparsely
    keeps = sorted({*range(len(raw) - 1, len(raw) - 400, -13), *range(64, len(raw), 997)})
    for keep in keeps:
        cut = tmp_path / "cut.bin"
        cut.write_bytes(raw[:keep])
        with pytest.raises(CorruptCaptureError) as exc:
            _ = MemrayCapture(cut).allocations_at_peak
        text = str(exc.value)
        assert "\n" not in text and ("ends early" in text or "not a readable" in text), (keep,
                                                                                     text)


def test_both_exports_work_on_it(run: Path, tmp_path: Path) -> None:
    pp, pq = tmp_path / "pprof", tmp_path / "parquet"
    cp = labkit("export", str(run), "--to", "pprof", "--out", str(pp))
    assert cp.returncode == 0, cp.stderr
    go = shutil.which("go")
    assert go, "no Go: `make test` installs it (scripts/install-go)"
    top = subprocess.run([go, "tool", "pprof", "-top", "-sample_index=inuse_space",
                          str(pp / "memory.pb.gz")], capture_output=True, text=True,
                         timeout=120)
    assert top.returncode == 0, top.stderr
    rows = [ln.split() for ln in top.stdout.splitlines() if ln.strip().endswith(" remember")]
    assert rows and rows[0][1].rstrip("%") and float(rows[0][1].rstrip("%")) > 90, top.stdout
    alloc = subprocess.run([go, "tool", "pprof", "-top", "-sample_index=alloc_space",
                            str(pp / "memory.pb.gz")], capture_output=True, text=True,
                           timeout=120)
    assert alloc.returncode != 0  # memray kept no totals: the profile does not pretend
    comments = subprocess.run([go, "tool", "pprof", "-comments", str(pp / "memory.pb.gz")],
                              capture_output=True, text=True, timeout=120).stdout
    assert "not in this profile: totals allocated over the run" in comments
    cp = labkit("export", str(run), "--to", "parquet", "--out", str(pq))
    assert cp.returncode == 0, cp.stderr
    import pyarrow.parquet as papq

    peak = papq.read_table(next(pq.glob("frame=memray_peak/*/part-0.parquet"))).to_pandas()
    own = peak[peak.site_function.notna()].sort_values("bytes", ascending=False)
    assert own.site_function.iloc[0] == "remember"
    growth = papq.read_table(next(pq.glob("frame=memray_growth/*/part-0.parquet"))).to_pandas()
    assert len(growth) and growth.growth_bytes.isna().all()  # unknown, never a made-up 0
    churn = papq.read_table(next(pq.glob("frame=memray_churn/*/part-0.parquet")))
    assert churn.num_rows == 0


def test_the_notebooks_loader_reads_it(run: Path) -> None:
    from labkit import load

    cap = load(run).memray
    assert cap.aggregated and cap.summary.aggregated
    assert cap.summary.total_allocated_bytes is None
    assert cap.allocations_at_peak.function.iloc[0] == "remember"
    leaks = cap.leaks
    assert leaks[leaks.function == "remember"]["bytes"].sum() > 40 * 2**20
    assert len(cap.memory) >= 3 and cap.memory.heap_bytes.max() > 40 * 2**20
    assert cap.churn.empty
    assert cap.missing[0]["evidence"] == "growth per call stack over the run"


def test_aggregate_without_memray_is_a_usage_error() -> None:
    assert_clean_error(labkit("capture", "--gc", "--aggregate", "--", PY, "-c", "pass"),
                       "--aggregate", "--memray")
    assert_clean_error(labkit("capture", "--aggregate", "--memory-cap", "100", "--", PY, "-c",
                              "pass"), "--aggregate", "--memory-cap")
