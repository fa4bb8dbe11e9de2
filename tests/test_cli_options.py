"""Options are checked by the parser (usage error, exit 2, nothing run); terminal output
escapes control characters; a closed pipe ends quietly."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from labkit.cli import main
from tests.conftest import PY, labkit, main_as

BAD = [
    (["gctrace", "--interval", "nan"], "--interval"),
    (["gctrace", "--interval", "inf"], "--interval"),
    (["gctrace", "--interval", "0.001"], "--interval"),
    (["capture", "--rate", "0"], "--rate"),
    (["capture", "--rate", "-5"], "--rate"),
    (["run", "pool-misuse", "--time-cap", "-1"], "--time-cap"),
    (["run", "pool-misuse", "--time-cap", "nan"], "--time-cap"),
    (["run", "pool-misuse", "--memory-cap", "0"], "--memory-cap"),
    (["run", "pool-misuse", "--memory-cap", "-100"], "--memory-cap"),
    (["compare", "a", "b", "--top", "-1"], "--top"),
    (["attach", "0"], "pid"),
    (["attach", "123", "--pyspy", "inf"], "--pyspy"),
    (["attach", "123", "--proc", "0"], "--proc"),
    (["run", "pool-misuse", "--param", "requests"], "--param"),
    (["run", "pool-misuse", "--param", "=5"], "--param"),
    (["report", "10-pool-misuse", "-p", "replay", "True"], "--param"),
    (["report", "10-pool-misuse", "--param", "no key=1"], "--param"),
]


def test_run_and_report_read_one_param_syntax() -> None:
    from labkit.cli.parser import build_parser

    parser = build_parser()
    run = parser.parse_args(["run", "pool-misuse", "-p", "requests=5", "--param", "seed = 2"])
    report = parser.parse_args(["report", "x", "-p", "requests=5", "--param", "seed = 2"])
    assert run.param == report.param == [("requests", "5"), ("seed", "2")]


def test_a_verb_s_own_parser_is_the_whole_parser_s() -> None:
    """The ``labkit`` command makes only its verb's parser: the same options, defaults and
    help as in the parser of every verb; a word that is no verb gets every verb's."""
    import argparse

    from labkit.cli.parser import build_parser

    def verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        return dict(sub.choices)

    every = verbs(build_parser())
    assert len(every) >= 15
    for name, whole in every.items():
        own = verbs(build_parser(name))
        assert list(own) == [name]
        assert own[name].format_help() == whole.format_help()
        assert own[name]._defaults == whole._defaults
    assert list(verbs(build_parser("no-such-verb"))) == list(every)
    # the options the command reads itself to start an export's passes first: export's own
    from labkit.cli import _EXPORT_VALUED

    export = {a.option_strings[-1]: a.nargs for a in every["export"]._actions
              if a.option_strings and a.option_strings[-1] != "--help"}
    assert {o for o, n in export.items() if n != 0} == _EXPORT_VALUED
    assert {o for o, n in export.items() if n == 0} == {"--force"}


@pytest.mark.parametrize("argv,flag", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_option_values_are_usage_errors(argv: list[str], flag: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    tail = ["--", PY, "-c", "pass"] if argv[0] in ("gctrace", "capture") else []
    with pytest.raises(SystemExit) as exc:
        main([*argv, *tail])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "error: argument" in err and flag in err and "Traceback" not in err


def test_control_characters_in_captured_names_are_escaped(tmp_path: Path) -> None:
    evil = "clear\x1b[2J\x1b]0;pwned\x07"
    dump = [{"thread_id": 1, "os_thread_id": 2, "thread_name": "MainThread", "active": False,
             "owns_gil": True, "frames": [{"name": evil, "filename": "/x/prog.py", "line": 3}]}]
    p = tmp_path / "dump.json"
    p.write_text(json.dumps(dump))
    cp = labkit("summary", str(p))
    assert cp.returncode == 0, cp.stderr
    assert "\x1b" not in cp.stdout and "\x07" not in cp.stdout
    assert "clear\\x1b[2J" in cp.stdout


def test_a_closed_pipe_ends_quietly() -> None:
    cp = subprocess.run(f"{PY} -m labkit list | head -c 20", shell=True, capture_output=True,
                        text=True, timeout=60)
    assert cp.returncode == 0
    assert cp.stderr == "", cp.stderr





@pytest.mark.parametrize("how", ["command", "in-process"])
def test_the_command_leaves_nothing_for_the_teardown_to_collect(how: str, tmp_path: Path) -> None:
    """As the ``labkit`` command, every object is frozen once the verb is done (one ending
    in an input error too), so that the interpreter's teardown walks none; called with
    ``argv`` (a notebook, a test), the collector is left as it was."""
    for verb, want in ((["list"], 0), (["summary", str(tmp_path / "missing")], 2)):
        out = main_as(how, verb, tmp_path,
                      after="print(code, gc.get_freeze_count(), len(gc.get_objects()))")
        assert out.returncode == 0, out.stderr[-300:]
        code, frozen, tracked = map(int, out.stdout.split()[-3:])
        assert code == want, (verb, out.stderr[-300:])
        if how == "command":
            assert frozen > 10_000 and tracked < 100, (verb, frozen, tracked)
        else:
            assert frozen == 0 and tracked > 10_000, (verb, frozen, tracked)


AS_THE_COMMAND = """
import atexit, os, sys, threading
real_exit = os._exit
def leave(code):
    os.write(1, b"left at once\\n")
    real_exit(code)
os._exit = leave
atexit.register(lambda: os.write(1, b"exit handlers ran\\n"))
if sys.argv[1] == "thread":  # a thread the interpreter has to join: it ends with main's
    threading.Thread(target=threading.main_thread().join).start()
sys.argv = ["labkit", *sys.argv[2:]]
from labkit.cli import command
command()
"""


@pytest.mark.parametrize(("verb", "thread", "code", "at_once"), [
    (["export", "datasets/pool-misuse/leaky", "--to", "pprof", "--out", "OUT"], "", 0, True),
    (["summary", "missing-run"], "", 2, True),
    (["summary", "missing-run"], "thread", 2, False),
    (["list"], "", 0, False)])
def test_the_command_leaves_a_reading_verb_without_the_teardown(
        verb: list[str], thread: str, code: int, at_once: bool, tmp_path: Path) -> None:
    """As the ``labkit`` command, a verb of ``WITHOUT_TEARDOWN`` exits once it returns,
    its exit handlers run, without the interpreter's teardown; not while another thread
    is left to join, and not any other verb."""
    root = Path(__file__).resolve().parent.parent
    verb = [str(root / v) if v.startswith("datasets/") else v for v in verb]
    verb = [str(tmp_path / "out") if v == "OUT" else v for v in verb]
    out = subprocess.run([PY, "-c", AS_THE_COMMAND, thread or "-", *verb], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == code, out.stderr[-400:]
    last = out.stdout.splitlines()[-2:]
    if at_once:  # the exit handlers, then the exit
        assert last == ["exit handlers ran", "left at once"], out.stdout[-400:]
    else:
        assert last[-1] == "exit handlers ran" and "left at once" not in out.stdout
    if code == 0 and verb[0] == "export":
        assert "wrote " in out.stdout and list((tmp_path / "out").iterdir())


PROBED_AT_FINDINGS = """
import labkit.analysis.findings as F
import labkit.report.postmortem_page as P
seen = []
def probe(real, what):
    def call(*args, **kwargs):
        seen.append(f"{what}:{gc.get_freeze_count()}:{gc.isenabled():d}")
        return real(*args, **kwargs)
    return call
F.findings = probe(F.findings, "findings")
P.postmortem_page = probe(P.postmortem_page, "page")
"""


@pytest.mark.parametrize("how", ["command", "in-process"])
def test_the_postmortem_command_freezes_what_it_loaded(how: str, tmp_path: Path) -> None:
    """As the ``labkit`` command, the postmortem puts its imports and the loaded evidence
    out of the collector's reach before it weighs the evidence, and the report's modules
    before it draws (its full collections then walk only what it makes next); the
    collector stays on. Called with ``argv``, nothing is frozen."""
    run = Path(__file__).resolve().parent.parent / "datasets" / "pool-misuse" / "leaky"
    out = main_as(how, ["postmortem", str(run), "--html", str(tmp_path / "pm.html")],
                  tmp_path, before=PROBED_AT_FINDINGS, after="print(code, *seen)")
    code, *seen = out.stdout.splitlines()[-1].split()
    assert code == "0", out.stderr[-400:]
    got = {what: (int(frozen), enabled == "1")
           for what, frozen, enabled in (s.split(":") for s in seen)}
    assert set(got) == {"findings", "page"}, seen
    if how == "command":
        assert got["findings"][0] > 20_000 and got["page"][0] > got["findings"][0], seen
    else:
        assert got["findings"][0] == got["page"][0] == 0, seen
    assert got["findings"][1] and got["page"][1], seen  # the collector stays on
