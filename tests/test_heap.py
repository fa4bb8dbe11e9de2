"""Heap snapshots: the dominator algorithm, retained sizes, shortest paths, the snapshot's
round trip, a damaged snapshot, and the join with memray (real captures, marked slow)."""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.analysis.heap import HeapGraph, bfs_parents, dominators
from labkit.capture.heapsnap import write_snapshot
from labkit.errors import CorruptCaptureError
from labkit.frames.heapsnap import load_heap_snapshot
from tests.conftest import PY, assert_clean_error, labkit


def _csr(n: int, edges: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    edges = sorted(edges, key=lambda e: e[0])
    counts = np.bincount([a for a, _ in edges], minlength=n) if edges else np.zeros(n, int)
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return offsets, np.array([b for _, b in edges], dtype=np.int64)


def _naive_idom(n: int, edges: list[tuple[int, int]], root: int) -> list[int]:
    """Dominators by definition: d dominates v when v is unreachable without d."""
    def reach(skip: int | None) -> set[int]:
        seen, todo = set(), [root] if root != skip else []
        while todo:
            v = todo.pop()
            if v in seen:
                continue
            seen.add(v)
            todo += [b for a, b in edges if a == v and b != skip]
        return seen

    everything = reach(None)
    doms = {v: {d for d in everything if v not in reach(d)} | {v} for v in everything}
    out = [-1] * n
    for v in everything:
        strict = doms[v] - {v}
        # the immediate dominator is the strict dominator that every other one dominates
        out[v] = root if v == root else next(d for d in strict if strict <= doms[d])
    return out


def test_a_diamond_is_dominated_by_its_top_and_not_by_either_side() -> None:
    # GIVEN 0 -> 1, 0 -> 2, 1 -> 3, 2 -> 3, 3 -> 4
    offsets, targets = _csr(5, [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)])
    # WHEN dominators are computed from 0
    idom = dominators(offsets, targets, 0)
    # THEN 3 (reached by both sides) is dominated by 0, and 4 by 3
    assert idom.tolist() == [0, 0, 0, 0, 3]


def test_the_lengauer_tarjan_paper_graph_gives_the_published_dominators() -> None:
    # GIVEN the flow graph of Lengauer & Tarjan (1979), fig. 1: R=0, A..L = 1..12
    names = "RABCDEFGHIJKL"
    ix = {c: i for i, c in enumerate(names)}
    arcs = ("RA RB RC AD BA BD BE CF CG DL EH FI GI GJ HE HK IK JI KI KR LH")
    edges = [(ix[a], ix[b]) for a, b in arcs.split()]
    # WHEN dominators are computed from R
    idom = dominators(*_csr(len(names), edges), 0)
    # THEN they are the paper's: I, K, E, H and A are dominated by R; F, G by C; J by G...
    expect = {"A": "R", "B": "R", "C": "R", "D": "R", "E": "R", "F": "C", "G": "C",
              "H": "R", "I": "R", "J": "G", "K": "R", "L": "D"}
    assert {c: names[idom[ix[c]]] for c in expect} == expect


def test_unreachable_nodes_have_no_dominator() -> None:
    # GIVEN 0 -> 1 and a cycle 2 <-> 3 that no root reaches
    idom = dominators(*_csr(4, [(0, 1), (2, 3), (3, 2)]), 0)
    # THEN the cycle is marked -1
    assert idom.tolist() == [0, 0, -1, -1]


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 9).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)),
                         max_size=3 * n))))
def test_dominators_agree_with_the_definition_on_any_graph(case) -> None:
    # GIVEN any small graph with self loops, cycles and parallel edges
    n, edges = case
    # WHEN Semi-NCA runs from node 0
    got = dominators(*_csr(n, edges), 0).tolist()
    # THEN it agrees with dominance computed by removing each node in turn
    assert got == _naive_idom(n, edges, 0)


def test_bfs_parents_give_a_shortest_path_and_earlier_roots_win_ties() -> None:
    # GIVEN two roots (0 first, then 1), both one step from 2; a longer way 0 -> 3 -> 4 -> 5
    offsets, targets = _csr(6, [(0, 2), (1, 2), (0, 3), (3, 4), (4, 5), (2, 5)])
    # WHEN shortest-path parents are computed
    parent = bfs_parents(offsets, targets, [0, 1], 6)
    # THEN 5 is reached through 2 (two steps), and 2 from the first root
    assert parent[5] == 2 and parent[2] == 0 and parent[0] == -2


def _snapshot_of(tmp_path: Path, code: str) -> Path:
    """Run ``code`` then snapshot its heap in a fresh interpreter, as the agent would."""
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent(code) + textwrap.dedent(f"""
        from labkit.capture.heapsnap import write_snapshot
        write_snapshot({str(tmp_path / 'snap.bin')!r}, when="exit",
                       program_globals=globals())
    """))
    subprocess.run([PY, str(prog)], check=True, cwd=Path(__file__).parents[1])
    return tmp_path / "snap.bin"


def test_a_snapshot_round_trips_objects_sizes_referents_and_names(tmp_path: Path) -> None:
    # GIVEN a program holding a 100 KiB bytearray in a dict held by a global
    path = _snapshot_of(tmp_path, """
        CACHE = {"k": bytearray(100 * 1024)}
    """)
    # WHEN it is loaded
    snap = load_heap_snapshot(path)
    graph = HeapGraph(snap)
    # THEN the bytearray is there with its size, retained by the dict, and its root path
    # names the global
    ba = [i for i in range(snap.n) if snap.type_of(i) == "bytearray"
          and snap.size[i] >= 100 * 1024]
    assert len(ba) == 1
    steps = graph.steps(graph.path(ba[0]))
    assert steps[0] == "module __main__ (prog.py)"
    assert steps[1].startswith("global CACHE (dict, 1 entries)")
    assert graph.retained[graph.path(ba[0])[1]] >= 100 * 1024
    assert snap.stats["objects"] == snap.n and snap.stats["when"] == "exit"


def test_by_type_and_diff_show_what_grew(tmp_path: Path) -> None:
    # GIVEN two snapshots, the second with 300 more Node objects in a global list
    (tmp_path / "a").mkdir()
    a = _snapshot_of(tmp_path / "a", """
        class Node: pass
        HELD = [Node() for _ in range(10)]
    """)
    (tmp_path / "b").mkdir()
    b = _snapshot_of(tmp_path / "b", """
        class Node: pass
        HELD = [Node() for _ in range(310)]
    """)
    from labkit.analysis.heap import diff

    # WHEN they are compared
    d = diff(HeapGraph(load_heap_snapshot(a)), HeapGraph(load_heap_snapshot(b)))
    # THEN Node's count grew by 300, and the list held by HELD retains more
    node = d["by_type"][d["by_type"]["type"] == "__main__.Node"].iloc[0]
    assert node["count_delta"] == 300
    held = d["by_retainer"][d["by_retainer"]["path"].str.contains("global HELD")]
    assert len(held) and held["delta"].iloc[0] > 0


def test_a_snapshot_of_this_interpreter_holds_the_collectors_objects(tmp_path: Path) -> None:
    # GIVEN this interpreter's heap, with a list only gc knows of
    marker = [object() for _ in range(3)]
    # WHEN it is snapshotted and loaded
    stats = write_snapshot(str(tmp_path / "s.bin"), when="signal")
    snap = load_heap_snapshot(tmp_path / "s.bin")
    # THEN the list is there with its three referents, and the counts agree
    i = int(snap.nodes_of(np.array([id(marker)], dtype=np.uint64))[0])
    assert i >= 0 and snap.type_of(i) == "list" and int(snap.length[i]) == 3
    kids = snap.targets[snap.offsets[i]:snap.offsets[i + 1]]
    assert sorted(snap.addr[kids].tolist()) == sorted(id(o) for o in marker)
    assert stats["objects"] == snap.n


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_a_damaged_snapshot_is_one_line(tmp_path: Path, damage: str) -> None:
    # GIVEN a snapshot cut short, overwritten, or empty
    path = _snapshot_of(tmp_path, "X = [1, 2, 3]\n")
    raw = path.read_bytes()
    path.write_bytes({"truncate": raw[: len(raw) // 2], "garbage": b"\x00" * 64,
                      "empty": b""}[damage])
    # WHEN it is loaded THEN one line names the file and what to do
    with pytest.raises(CorruptCaptureError) as e:
        load_heap_snapshot(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.slow
def test_postmortem_goes_on_without_a_damaged_snapshot_and_says_so(tmp_path: Path,
                                                                    write_prog) -> None:
    # GIVEN a capture and a truncated snapshot given beside it
    prog = write_prog("X = [bytearray(1 << 20) for _ in range(8)]\n")
    run = tmp_path / "run"
    assert labkit("capture", "--memray", "--out", str(run), "--", PY,
                  str(prog)).returncode == 0
    snap = _snapshot_of(tmp_path, "X = 1\n")
    snap.write_bytes(snap.read_bytes()[:100])
    # WHEN the postmortem reads both
    cp = labkit("postmortem", str(run), "--heap-snapshot", str(snap))
    # THEN it finishes and its notes say the snapshot was left out, in one line
    assert cp.returncode == 0, cp.stderr
    notes = [ln for ln in cp.stdout.splitlines() if "heap snapshot" in ln]
    assert len(notes) == 1 and "goes on without it" in notes[0], cp.stdout
    assert_clean_error(labkit("postmortem", str(run), "--heap-snapshot",
                              str(tmp_path / "nope.bin")), "not found")


MUST_SHOW = """
    SESSIONS_BY_ID = {}


    class Session:
        def __init__(self, sid):
            self.sid = sid
            self.buf = bytearray(64 * 1024)


    def open_session(sid):
        s = Session(sid)
        SESSIONS_BY_ID[sid] = s
        return s


    class Bus:
        listeners = []


    def make_payload():
        return bytes(48 * 1024)


    def subscribe():
        payload = make_payload()

        def on_event(evt):
            return len(payload) + evt
        Bus.listeners.append(on_event)


    for i in range(300):
        open_session(i)
    for i in range(300):
        subscribe()
    print("done")
"""


@pytest.mark.slow
def test_suspects_name_the_global_dict_and_the_class_attribute_that_hold_them(
        tmp_path: Path, write_prog) -> None:
    # GIVEN a program whose memory is held by a module-level dict and by closures in a
    # class attribute, captured with memray's every-object addresses and a heap snapshot
    prog = write_prog(MUST_SHOW)
    run, out = tmp_path / "run", tmp_path / "f.json"
    cp = labkit("capture", "--memray", "--trace-python-allocators", "--heap-snapshot",
                "--out", str(run), "--", PY, str(prog))
    assert cp.returncode == 0 and cp.stdout == "done\n", cp.stderr
    manifest = json.loads((run / "manifest.json").read_text())
    assert "heapsnap.bin" in {a["name"] for a in manifest["artifacts"]}
    # WHEN the postmortem runs
    page = tmp_path / "p.html"
    cp = labkit("postmortem", str(run), "--json", str(out), "--html", str(page))
    assert cp.returncode == 0, cp.stderr
    found = json.loads(out.read_text())
    by_line = {s["line"]: s for s in found["suspects"]}
    # THEN open_session's line is kept alive by SESSIONS_BY_ID, make_payload's (the
    # innocent allocating line) by the class attribute Bus.listeners, through the closure
    sess, pay = by_line[12], by_line[22]
    assert any("SESSIONS_BY_ID" in step for step in sess["retained_by"]), sess
    assert any("Bus.listeners" in step for step in pay["retained_by"]), pay
    assert any("closure variable payload" in step for step in pay["retained_by"]), pay
    assert sess["retained_bytes"] >= 300 * 64 * 1024
    assert pay["retained_bytes"] >= 300 * 48 * 1024
    assert "kept alive by SESSIONS_BY_ID in module __main__ (prog.py)" in cp.stdout
    assert "Kept alive by <b>SESSIONS_BY_ID" in page.read_text()
    assert any("joined to memray by every object's address" in n for n in found["notes"])


@pytest.mark.slow
def test_the_path_is_no_longer_than_objgraphs_backref_chain(tmp_path: Path) -> None:
    # GIVEN objects held at several depths (a global dict, a class attribute's list of
    # closures, an instance attribute), snapshotted, and objgraph's chain to each
    prog = tmp_path / "p.py"
    prog.write_text(textwrap.dedent(MUST_SHOW).replace('print("done")', "") +
                    textwrap.dedent(f"""
        import gc, json, objgraph
        from labkit.capture.heapsnap import write_snapshot
        targets = [SESSIONS_BY_ID[7].buf, Bus.listeners[3].__closure__[0].cell_contents,
                   SESSIONS_BY_ID[5]]
        chains = [len(objgraph.find_backref_chain(t, objgraph.is_proper_module,
                                                  max_depth=30)) for t in targets]
        write_snapshot({str(tmp_path / 's.bin')!r}, when="exit")
        print(json.dumps({{"ids": [id(t) for t in targets], "chains": chains}}))
    """))
    out = json.loads(subprocess.run([PY, str(prog)], check=True, capture_output=True,
                                    text=True, cwd=Path(__file__).parents[1]).stdout)
    # WHEN labkit finds each one's path
    snap = load_heap_snapshot(tmp_path / "s.bin")
    graph = HeapGraph(snap)
    nodes = snap.nodes_of(np.array(out["ids"], dtype=np.uint64))
    # THEN each path (root included) is no longer than objgraph's chain
    for node, chain in zip(nodes, out["chains"], strict=True):
        path = graph.path(int(node))
        assert path and len(path) <= chain, (graph.steps(path), chain)


def test_capture_refuses_an_unknown_when(tmp_path: Path, write_prog) -> None:
    prog = write_prog("pass\n")
    cp = labkit("capture", "--heap-snapshot=sometimes", "--out", str(tmp_path / "r"), "--",
                PY, str(prog))
    assert cp.returncode == 2 and "sometimes" in cp.stderr
    assert_clean_error(labkit("capture", "--heap-snapshot=cap", "--gc", "--out",
                              str(tmp_path / "r"), "--", PY, str(prog)), "--memory-cap")


def test_heap_verb_names_the_largest_retainer_and_refuses_a_damaged_file(
        tmp_path: Path) -> None:
    # GIVEN a snapshot whose largest retainer is a global list of 2 MiB of bytes
    path = _snapshot_of(tmp_path, "HELD = [bytes(1 << 20), bytes(1 << 20)]\n")
    # WHEN labkit heap reads it THEN the first retainer is that global
    cp = labkit("heap", str(path), "--top", "3")
    assert cp.returncode == 0, cp.stderr
    rows = cp.stdout.splitlines()
    assert "global HELD (list, 2 entries)" in rows[rows.index("largest retainers:") + 1]
    # AND a truncated copy is one clean line
    bad = tmp_path / "bad.bin"
    bad.write_bytes(path.read_bytes()[:-10])
    assert_clean_error(labkit("heap", str(bad)), "unreadable", str(bad))


def _largest_retainer(run: Path) -> tuple[str, str]:
    graph = HeapGraph(load_heap_snapshot(run / "heapsnap.bin"))
    return graph.snap.stats["when"], graph.by_retainer(1)["path"].iloc[0]


@pytest.mark.slow
def test_a_signal_snapshot_sees_the_heap_while_the_program_runs(tmp_path: Path,
                                                                write_prog) -> None:
    # GIVEN a program that holds 8 MiB, asks for a snapshot (SIGUSR2), then drops it
    prog = write_prog("""
        import os, signal
        BIG = [bytes(1 << 20) for _ in range(8)]
        os.kill(os.getpid(), signal.SIGUSR2)
        BIG = None
        print("after")
    """)
    run = tmp_path / "run"
    # WHEN it runs under --heap-snapshot=signal
    cp = labkit("capture", "--gc", "--heap-snapshot=signal", "--out", str(run), "--", PY,
                str(prog))
    # THEN its outcome is its own, and the snapshot holds BIG as it was at the signal
    assert cp.returncode == 0 and cp.stdout == "after\n", cp.stderr
    when, top = _largest_retainer(run)
    assert when == "signal" and "global BIG (list, 8 entries)" in top


@pytest.mark.slow
def test_a_cap_snapshot_is_taken_before_the_kill(tmp_path: Path, write_prog) -> None:
    # GIVEN a program that grows a global list without end
    prog = write_prog("""
        import time
        GROWING = []
        while True:
            GROWING.append(b"x" * (1 << 20))  # written: bytes(n) is calloc'd, not resident
            time.sleep(0.005)
    """)
    run = tmp_path / "run"
    # WHEN its memory cap (150 MiB) stops it, with --heap-snapshot=cap
    labkit("capture", "--gc", "--memory-cap", "150", "--heap-snapshot=cap", "--out",
           str(run), "--", PY, str(prog), timeout=300)
    manifest = json.loads((run / "manifest.json").read_text())
    # THEN the run says memory-cap, and its snapshot names the list that grew
    assert manifest["outcome"]["reason"] == "memory-cap"
    assert "heapsnap.bin" in {a["name"] for a in manifest["artifacts"]}
    when, top = _largest_retainer(run)
    assert when == "cap" and "global GROWING (list" in top


@pytest.mark.slow
def test_a_peak_snapshot_holds_what_was_freed_before_exit(tmp_path: Path,
                                                          write_prog) -> None:
    # GIVEN a program that builds 120 MiB in a global, frees it, then idles
    prog = write_prog("""
        import time
        PEAK = []
        for _ in range(120):
            PEAK.append(bytearray(1 << 20))
            time.sleep(0.01)
        time.sleep(1.0)
        PEAK = None
        time.sleep(0.5)
    """)
    run = tmp_path / "run"
    # WHEN it runs with --heap-snapshot=peak
    cp = labkit("capture", "--gc", "--heap-snapshot=peak", "--out", str(run), "--", PY,
                str(prog), timeout=300)
    # THEN the snapshot was taken while PEAK held its memory
    assert cp.returncode == 0, cp.stderr
    when, top = _largest_retainer(run)
    assert when == "peak" and "global PEAK (list" in top


@pytest.mark.slow
@pytest.mark.parametrize("ending, code", [("sys.exit(3)", 3), ("raise ValueError('x')", 1)])
def test_an_exit_snapshot_keeps_the_programs_outcome_and_sees_its_globals(
        tmp_path: Path, write_prog, ending: str, code: int) -> None:
    # GIVEN a program that holds a global and ends by sys.exit(3) or an exception
    prog = write_prog(f"""
        import sys
        KEPT = [bytes(1 << 20) for _ in range(4)]
        print("out")
        {ending}
    """)
    run = tmp_path / "run"
    # WHEN it runs with a snapshot at exit
    cp = labkit("capture", "--gc", "--heap-snapshot", "--out", str(run), "--", PY, str(prog))
    # THEN its exit code and output are its own, and the snapshot roots its globals
    assert cp.returncode == code and cp.stdout == "out\n", cp.stderr
    assert ("ValueError: x" in cp.stderr) == (code == 1)
    when, top = _largest_retainer(run)
    assert when == "exit" and top.startswith("module __main__ (prog.py) > global KEPT (list, 4")
    # AND without memray the postmortem says its join is by type only
    pm = labkit("postmortem", str(run))
    assert pm.returncode == 0 and "no memray capture, so retainers are by type" in pm.stdout


@pytest.mark.slow
def test_the_magic_captures_a_cell_with_a_snapshot_and_shows_its_holder(
        tmp_path: Path, capsys) -> None:
    # GIVEN a cell whose closures in a class attribute hold 4 MiB
    from labkit.analysis.findings import findings
    from labkit.frames.evidence import evidence_of
    from labkit.magics import capture_cell

    cell = textwrap.dedent("""
        class Hub:
            hooks = []
        def add(blob):
            Hub.hooks.append(lambda: len(blob))
        for _ in range(64):
            add(bytes(64 * 1024))
    """)
    # WHEN %%labkit_capture runs it with memray's every object and a snapshot
    _, run = capture_cell(cell, f"--memray --trace-python-allocators --heap-snapshot "
                                f"--out {tmp_path / 'run'}")
    found = findings(evidence_of(run))
    # THEN the memory suspect is kept alive by Hub.hooks
    held = [s for s in found.suspects if s.retained_by]
    assert held and held[0].kept_alive_by.startswith("Hub.hooks"), found.suspects
