"""One consistent story from hand-built evidence: library sites, growth shapes, churn,
waiting samples, native memory, captures of different programs (no subprocess)."""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace

import numpy as np
import pandas as pd

from labkit.analysis.findings import findings
from labkit.analysis.growth import trend
from labkit.analysis.libraries import split_stack
from labkit.analysis.symptoms import proc_symptoms
from labkit.attribution import DEFAULT, attribution
from labkit.frames.evidence import Evidence
from labkit.report.postmortem_page import findings_html
from labkit.report.text import findings_lines
from labkit.stacks import Frame, stack_text

MB = 1024 * 1024
SP = "/srv/app/venv/lib/python3.11/site-packages"
APP = "/srv/app/app.py"
COOKIES = (Frame(f"{SP}/aiohttp/cookiejar.py", 356, "CookieJar.filter_cookies"),
           Frame(f"{SP}/aiohttp/client.py", 520, "ClientSession._request"))


def _via_aiohttp(line: int, fn: str = "worker") -> tuple[Frame, ...]:
    return (*COOKIES, Frame(APP, line, fn), Frame(APP, 200, "<module>"))


def _series(values: list[float], col: str, dt_s: float = 0.1) -> pd.DataFrame:
    return pd.DataFrame({"t_s": np.arange(len(values)) * dt_s, col: values})


def _growth(rows: list[tuple[tuple[Frame, ...], float, float]]) -> pd.DataFrame:
    """memray.growth rows: (stack, held at peak, gained over the run, grew in every step)."""
    return pd.DataFrame([{"function": st[0].function, "file": st[0].file, "line": st[0].line,
                          "stack": stack_text(st), "frames": st, "in_labkit": False,
                          "peak_bytes": int(peak), "peak_count": 10, "end_bytes": int(peak),
                          "first_bytes": 0.0, "last_bytes": gain, "growth_bytes": gain,
                          "rising": 1.0, "increases": 50} for st, peak, gain in rows])


def _allocs(rows: list[tuple[tuple[Frame, ...], float]]) -> pd.DataFrame:
    return pd.DataFrame([{"function": st[0].function, "file": st[0].file, "line": st[0].line,
                          "stack": stack_text(st), "bytes": int(b), "count": 1000, "thread": 1,
                          "in_labkit": False, "frames": st} for st, b in rows])


def _memray(heap: list[float], growth: pd.DataFrame, churn: pd.DataFrame | None = None,
            rss: list[float] | None = None, pid: int = 100) -> SimpleNamespace:
    t0 = dt.datetime(2026, 1, 1)
    memory = _series(heap, "heap_bytes").assign(rss_bytes=rss if rss is not None else heap)
    meta = SimpleNamespace(peak_memory=int(max(heap)), trace_python_allocators=False,
                           start_time=t0, end_time=t0 + dt.timedelta(seconds=len(heap) / 10),
                           pid=pid)
    return SimpleNamespace(metadata=meta, memory=memory, growth=growth,
                           churn=churn if churn is not None else _allocs([]))


def _pyspy(rows: list[tuple[tuple[Frame, ...], int]], tid: int = 100) -> SimpleNamespace:
    samples = pd.DataFrame([{"thread_id": tid, "thread_name": "", "function": st[0].function,
                             "file": st[0].file, "line": st[0].line, "stack": stack_text(st),
                             "count": n, "frames": st} for st, n in rows])
    return SimpleNamespace(speedscope_path="profile.json", dump_path=None, samples=samples)


def test_a_stack_through_a_package_names_its_entry_site_and_target_version() -> None:
    # GIVEN a stack from the user's worker into aiohttp, and aiohttp's version from the app's env
    stack = _via_aiohttp(99)
    # WHEN it is split
    user, lib = split_stack(stack, DEFAULT, {"aiohttp": ("aiohttp", "3.12.2")})
    # THEN the user's frame, the package's API called (entry) and its innermost frame (site)
    assert user == Frame(APP, 99, "worker")
    assert (lib.package, lib.version) == ("aiohttp", "3.12.2")
    assert lib.entry.function == "ClientSession._request"
    assert lib.site.where == "CookieJar.filter_cookies (aiohttp/cookiejar.py:356)"
    # and without the target's record, the version is unknown, never guessed from labkit's env
    assert split_stack(stack, DEFAULT, {})[1].label == "aiohttp (version unknown)"
    # an ignored package is no library; a stack in the user's code alone has none
    assert split_stack(stack, attribution(ignore="aiohttp"), {})[1] is None
    assert split_stack(stack[2:], DEFAULT, {})[1] is None


def test_the_package_site_ranks_first_with_the_users_line_as_its_caller() -> None:
    # GIVEN two lines of the user's code growing the same cookie jar, and one own one-off line
    growth = _growth([(_via_aiohttp(99), 30 * MB, 30 * MB), (_via_aiohttp(120, "refresh"),
                      10 * MB, 10 * MB), ((Frame(APP, 50, "load"),), 20 * MB, 0.0)])
    ev = Evidence(memray=_memray(list(np.linspace(1, 60, 40) * MB), growth),
                  distributions={"aiohttp": ("aiohttp", "3.12.2")})
    # WHEN the findings are made
    found = findings(ev)
    # THEN one suspect is the package site, named with the heaviest caller, and ranks first
    top = found.suspects[0]
    assert top.named == ("inside aiohttp 3.12.2: CookieJar.filter_cookies "
                         "(aiohttp/cookiejar.py:356), called from your worker (app.py:99)")
    assert sum(s.library is not None for s in found.suspects) == 1
    assert "inside aiohttp 3.12.2: CookieJar.filter_cookies" in found.verdict
    assert any("inside aiohttp 3.12.2" in ln for ln in findings_lines(found))
    page = findings_html(found)
    assert "inside aiohttp 3.12.2: <code>CookieJar.filter_cookies (aiohttp/cookiejar.py:356)" \
        "</code>, called from your <code>worker</code>" in page
    doc = json.loads(json.dumps(found.to_json()))["suspects"][0]
    assert doc["library"] == {"package": "aiohttp", "version": "3.12.2",
                              "entry": {"function": "ClientSession._request",
                                        "file": f"{SP}/aiohttp/client.py", "line": 520},
                              "site": {"function": "CookieJar.filter_cookies",
                                       "file": f"{SP}/aiohttp/cookiejar.py", "line": 356}}
    assert (doc["function"], doc["line"]) == ("worker", 99)
    # --ignore on the package: the user's lines rank again, as before
    plain = findings(ev, attribution(ignore="aiohttp"))
    assert all(s.library is None for s in plain.suspects)
    assert plain.to_json()["suspects"][0]["library"] is None


def test_held_memory_that_keeps_rising_outranks_churn() -> None:
    # GIVEN a heap rising to the end, a small structure that grows in every step, and a line
    # that allocates and frees 10 GiB at once
    grows = (Frame(APP, 10, "remember"),)
    churns = (Frame(APP, 20, "render"),)
    mem = _memray(list(np.linspace(1, 41, 40) * MB), _growth([(grows, 8 * MB, 8 * MB)]),
                  _allocs([(churns, 10 * 1024 * MB)]))
    # WHEN the findings are made
    found = findings(Evidence(memray=mem))
    # THEN the growing site ranks first, the verdict is about growth; churn is its own symptom
    assert found.suspects[0].where == "remember (app.py:10)"
    assert found.verdict.startswith("heap keeps growing; the top suspect is remember")
    assert any(s.what.startswith("allocation rate:") for s in found.symptoms)


def test_keeps_growing_only_when_growth_continues_into_the_last_quarter() -> None:
    # GIVEN a series still rising at the end, one that stepped up mid-run then held, and one
    # that reached its level at start-up (a pool warming up)
    rising = _series(list(np.linspace(0, 100, 40)), "v")
    step = _series([0.0] * 15 + [100.0] * 25, "v")
    warm = _series([3.0, 12.0, 23.0] + [23.0] * 37, "v")
    # WHEN their shapes are read / THEN each is told apart
    assert trend(rising, "v").shape == "rising"
    assert trend(step, "v").shape == "held"
    assert trend(warm, "v").shape == "warm-up"
    # in a long run, a pool that opens over its first seconds is start-up too
    slow_warm = _series([3.0 + i for i in range(20)] + [23.0] * 280, "v")
    assert trend(slow_warm, "v").shape == "warm-up"
    assert trend(_series([3.0] * 100 + [23.0] * 200, "v"), "v").shape == "held"
    heap = _memray([0.0] * 15 + [60 * MB] * 25, _growth([((Frame(APP, 5, "load"),),
                                                          60 * MB, 60 * MB)]))
    assert findings(Evidence(memray=heap)).verdict.startswith("heap grew by 60.0 MiB, then held")


# The last quarter of memray's heap samples (MiB, 10 ms apart) of a real capture of the
# leak-and-churn program of tests/test_analysis_libraries.py (a package keeps 20 KB a
# request and builds and drops a 2 MB buffer beside it), the one run in eight whose verdict
# read "then held": a long buffer build at the window's start, then a sawtooth on a rising
# floor
CHURNING_LEAK_TAIL = [
    8.7, 8.8, 9.1, 9.4, 9.6, 10.0, 10.0, 10.3, 10.3, 10.3, 10.6, 10.4, 10.7, 10.7, 11.0, 11.0,
    9.4, 11.4, 7.6, 7.6, 7.6, 7.6, 7.6, 7.6, 7.6, 8.7, 9.9, 11.0, 7.8, 7.7, 7.8, 7.8, 7.8, 7.8,
    7.8, 8.6, 9.5, 10.4, 10.7, 11.2, 8.0, 8.0, 8.0, 8.0, 8.1, 8.2, 9.4, 10.2, 10.9, 11.5, 8.2,
    8.2, 8.2, 8.3, 8.3, 9.4, 10.2, 11.1, 11.7, 8.4, 8.4, 8.4, 8.4, 8.5, 9.8, 10.9, 10.2, 12.4,
    8.6, 8.6, 8.6, 8.9, 10.2, 11.4, 12.3, 8.8, 8.7, 8.8, 8.8, 8.8, 9.2, 10.1, 11.0, 11.8, 12.5,
    8.9, 9.0, 9.0, 9.0]


def test_a_leak_beside_churn_keeps_growing_though_a_buffer_build_opens_the_last_quarter(
        ) -> None:
    # GIVEN a heap rising from 0 to 8.7 MiB over three quarters of the capture, then the
    # recorded last quarter: its floor still rises (7.6 to 9.0 MiB) under the sawtooth
    head = list(np.linspace(0, 8.7, 3 * len(CHURNING_LEAK_TAIL)))
    series = _series([mb * MB for mb in head + CHURNING_LEAK_TAIL], "heap_bytes", dt_s=0.01)
    # WHEN its shape is read
    t = trend(series, "heap_bytes")
    # THEN it keeps growing, at the floor's pace (a least-squares fit, tilted by the build
    # at the window's start, read 0.55 MiB/s and "held")
    assert t.shape == "rising", t
    assert 1.0 * MB < t.late_slope < 3.0 * MB, t


def test_a_heap_that_importing_built_then_held_is_start_up_not_growth() -> None:
    # GIVEN two heaps of the same shape, rising 20 MiB over the first 40% then flat: one
    # built while importing a package's modules (a fixed release's start-up), one by the app
    importing = (Frame(f"{SP}/boto/core.py", 10, "<module>"),
                 Frame("<frozen importlib._bootstrap>", 241, "_call_with_frames_removed"),
                 Frame(APP, 1, "<module>"))
    shape = [i * MB for i in range(0, 20, 1)] + [20 * MB] * 30
    by_imports = _memray(shape, _growth([(importing, 20 * MB, 20 * MB)]))
    by_the_app = _memray(shape, _growth([((Frame(APP, 5, "load"),), 20 * MB, 20 * MB)]))
    # WHEN each is read / THEN only the app's is a growth symptom
    assert not any("grew" in s[1] or "growing" in s[1] for s in
                   findings(Evidence(memray=by_imports)).symptoms)
    assert findings(Evidence(memray=by_the_app)).verdict.startswith("heap grew by 20.0 MiB")


def test_a_pool_opened_at_start_up_is_not_a_growth_symptom() -> None:
    # GIVEN fds that rise 3 -> 23 at start-up then stay flat, and threads that keep rising
    proc = pd.DataFrame({"t_s": np.arange(40) * 0.1, "rss_bytes": [50 * MB] * 40,
                         "fds": [3, 12, 23] + [23] * 37, "threads": list(range(1, 41)),
                         "children": [0] * 40})
    # WHEN the process samples are read
    what = [s[1] for s in proc_symptoms(proc)]
    # THEN only the threads are a symptom
    assert what == ["threads rose 40.0x"]


def test_waiting_samples_are_never_cpu() -> None:
    # GIVEN py-spy samples: most of them parked in Condition.wait under a join, some running
    wait = (Frame("/usr/lib/python3.11/threading.py", 327, "Condition.wait"),
            Frame("/usr/lib/python3.11/threading.py", 629, "Event.wait"), Frame(APP, 30, "serve"))
    busy = (Frame(APP, 40, "checksum"), Frame(APP, 50, "main"))
    found = findings(Evidence(pyspy=_pyspy([(wait, 900), (busy, 100)])))
    # WHEN ranked / THEN the running line is CPU (all of the on-CPU samples), the parked one
    # is "waiting" and ranks below it
    by = {s.where: s for s in found.suspects}
    assert by["checksum (app.py:40)"].explains == ["cpu: 100% of the CPU samples"]
    assert by["serve (app.py:30)"].kind == "waiting"
    assert not any(e.startswith("cpu") for e in by["serve (app.py:30)"].explains)
    assert found.suspects[0].where == "checksum (app.py:40)"


def test_rss_beyond_memrays_heap_is_native_memory_with_its_python_entry() -> None:
    # GIVEN RSS rising by 200 MiB while memray's heap stays under 2 MiB, its growth in handle
    entry = (Frame(APP, 10, "handle"), Frame(APP, 20, "<module>"))
    mem = _memray(list(np.linspace(1, 2, 40) * MB), _growth([(entry, 1 * MB, 1 * MB)]),
                  rss=list(np.linspace(10, 210, 40) * MB))
    # WHEN the findings are made
    found = findings(Evidence(memray=mem))
    # THEN the verdict says native memory and names the Python entry that drove it
    assert found.verdict.startswith("native memory: RSS grew by 200 MiB")
    assert "handle (app.py:10)" in found.verdict
    # and a heap that does hold the RSS growth is not native memory
    held = _memray(list(np.linspace(10, 210, 40) * MB), _growth([(entry, 200 * MB, 200 * MB)]))
    assert not any(s.kind == "native memory" for s in findings(Evidence(memray=held)).symptoms)


def test_captures_of_different_programs_are_said_to_be_so() -> None:
    # GIVEN a memray capture of pid 100 and a py-spy profile of pid 200, given as loose files
    mem = _memray(list(np.linspace(1, 41, 40) * MB),
                  _growth([((Frame(APP, 10, "remember"),), 8 * MB, 8 * MB)]), pid=100)
    spy = _pyspy([((Frame("/srv/other/job.py", 7, "crunch"),), 50)], tid=200)
    # WHEN the findings are made
    found = findings(Evidence(memray=mem, pyspy=spy))
    # THEN the verdict says so and gives one verdict per program
    assert found.verdict.startswith("these captures come from 2 different programs")
    assert "pid 100 (memray): heap keeps growing" in found.verdict
    assert "pid 200 (pyspy): the top suspect is crunch (job.py:7)" in found.verdict
    assert "different processes" in found.notes[0]
    # the same pid: one story
    same = findings(Evidence(memray=mem, pyspy=_pyspy(spy.samples.frames.map(
        lambda f: (f, 50)).tolist(), tid=100)))
    assert "different programs" not in same.verdict


def test_the_verdict_names_the_suspect_that_explains_its_symptom() -> None:
    # GIVEN a heap that keeps growing in one line, and another line holding the CPU
    mem = _memray(list(np.linspace(1, 41, 40) * MB),
                  _growth([((Frame(APP, 10, "remember"),), 1 * MB, 1 * MB)]))
    spy = _pyspy([((Frame(APP, 40, "checksum"),), 100)])
    found = findings(Evidence(memray=mem, pyspy=spy))
    # WHEN the top suspect explains the CPU, not the growth
    assert found.suspects[0].where == "checksum (app.py:40)"
    # THEN the verdict does not pin the growth on it: it names who explains the growth
    assert found.verdict.startswith("the top suspect is checksum (app.py:40), which explains "
                                    "cpu: 100%")
    assert "heap keeps growing, explained best by suspect 2, remember (app.py:10)" in \
        found.verdict


def test_fds_opened_inside_a_package_rank_by_its_site_with_the_callers_line() -> None:
    # GIVEN 30 sockets still open, opened by urllib3's pool for two lines of the user's code
    sp = SP + "/urllib3"
    opened = (Frame("/usr/lib/python3.11/socket.py", 836, "create_connection"),
              Frame(f"{sp}/connection.py", 198, "HTTPConnection._new_conn"),
              Frame(f"{sp}/connectionpool.py", 1071, "HTTPConnectionPool.urlopen"))
    code = ["function", "file", "line", "stack", "frames"]
    fds = pd.DataFrame([{"fd": i, "kind": "socket", "target": "tcp",
                         "function": "create_connection", "file": opened[0].file,
                         "line": 836, "stack": stack_text(st), "frames": st}
                        for i, st in enumerate([(*opened, Frame(APP, 70, "fetch"))] * 20 +
                                               [(*opened, Frame(APP, 80, "ping"))] * 10)])
    none = pd.DataFrame(columns=["name", "alive", "t_s", *code])
    origins = SimpleNamespace(threads=none, threads_at_peak=none, tasks=none,
                              tasks_at_peak=none, fds=fds, fds_at_peak=fds.iloc[:0])
    # WHEN the findings are made
    found = findings(Evidence(origins=origins, distributions={"urllib3": ("urllib3", "2.2.1")}))
    # THEN one suspect: urllib3's site, entered at the pool's urlopen, called from fetch
    assert len(found.suspects) == 1
    top = found.suspects[0]
    assert top.named == ("inside urllib3 2.2.1: HTTPConnection._new_conn "
                         "(urllib3/connection.py:198), called from your fetch (app.py:70)")
    assert top.library.entry.function == "HTTPConnectionPool.urlopen"
    assert top.explains == ["fds: opened 30 of the 30 open at the end (sockets)"]
    # --focus on the user's file still finds the user's lines (below them, the package)
    focused = findings(Evidence(origins=origins), attribution(focus=r"app\.py"))
    assert focused.suspects[0].where == "fetch (app.py:70)"


def test_a_bounded_churn_pass_is_stated_in_the_findings() -> None:
    # GIVEN a line that allocates and frees 10 GiB at once, read over the first 4 million of
    # a capture's 40 million records (the churn pass's bound), and the same read whole
    churns = (Frame(APP, 20, "render"),)
    heap, held = [float(MB)] * 40, _growth([((Frame(APP, 10, "hold"),), MB, 0.0)])
    bounded = _memray(heap, held, _allocs([(churns, 10 * 1024 * MB)]))
    bounded.churn_records = (4_000_000, 40_000_000)
    whole = _memray(heap, held, _allocs([(churns, 10 * 1024 * MB)]))
    whole.churn_records = (40_000_000, 40_000_000)
    # WHEN the findings are made
    cut, full = findings(Evidence(memray=bounded)), findings(Evidence(memray=whole))
    # THEN churn is found in both; only the bounded one says over which records, with a rate
    # from their share of the run, and a note says what is not counted
    rate = next(s for s in cut.symptoms if s.what.startswith("allocation rate:"))
    assert "over the first 4,000,000 of the capture's 40,000,000 allocation records" in \
        rate.evidence
    assert "about" in rate.what
    assert any("first 4,000,000 of the capture's 40,000,000" in n for n in cut.notes)
    whole_rate = next(s for s in full.symptoms if s.what.startswith("allocation rate:"))
    assert "records" not in whole_rate.evidence and not any("churn" in n for n in full.notes)
