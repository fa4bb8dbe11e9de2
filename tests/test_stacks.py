"""The one stack model: frames, the predicates that classify them, and their text."""

from __future__ import annotations

import pytest

from labkit import stacks
from labkit.attribution import DEFAULT
from labkit.stacks import Frame

SITE = "/srv/app/venv/lib/python3.11/site-packages"


@pytest.mark.parametrize(("file", "package"), [
    (f"{SITE}/aiohttp/cookiejar.py", "aiohttp"),
    (f"{SITE}/six.py", "six"),
    ("/usr/lib/python3/dist-packages/yaml/loader.py", "yaml"),
    ("C:\\venv\\Lib\\site-packages\\requests\\sessions.py", "requests"),
    ("/usr/lib/python3.11/threading.py", None),
    ("/srv/app/app.py", None),
])
def test_package_of_names_the_top_level_import(file: str, package: str | None) -> None:
    assert stacks.package_of(file) == package


def test_each_frame_is_classified_once_and_attribution_agrees() -> None:
    stdlib, pkg, user = ("/usr/lib/python3.12/json/decoder.py", f"{SITE}/httpx/_client.py",
                         "/srv/app/app.py")
    assert stacks.is_stdlib(stdlib) and not stacks.is_stdlib(pkg) and not stacks.is_stdlib(user)
    assert stacks.is_generated("<frozen importlib._bootstrap>")
    assert stacks.is_agent("/x/labkit/capture/bootstrap.py") and not stacks.is_agent(user)
    assert stacks.is_labkit_internal("/x/labkit/frames/memray.py")
    assert stacks.is_lab_program("/x/labkit/scenarios/pool_misuse.py")
    assert not stacks.is_lab_program("/x/labkit/scenarios/base.py")
    stack = (Frame(pkg, 10, "send"), Frame(stdlib, 3, "decode"), Frame(user, 99, "worker"))
    assert DEFAULT.user_frame(stack) == Frame(user, 99, "worker")
    assert [DEFAULT.is_user(f) for f in stack] == [False, False, True]


def test_stack_text_is_innermost_first_with_file_names() -> None:
    frames = [Frame("/srv/app/db.py", 12, "query"), Frame("/srv/app/main.py", 3, "<module>")]
    assert stacks.stack_text(frames) == "query (db.py:12) < <module> (main.py:3)"
    assert stacks.is_import_time([Frame("<frozen importlib._bootstrap>", 1, "_load")])
    assert not stacks.is_import_time(frames)


def test_waiting_frames_are_told_from_running_ones() -> None:
    lib = "/usr/lib/python3.11"
    assert stacks.is_waiting([Frame(f"{lib}/threading.py", 327, "Condition.wait"),
                              Frame("/srv/app/main.py", 3, "poll")])
    assert stacks.is_waiting([Frame(f"{lib}/socket.py", 706, "SocketIO.readinto")])
    assert stacks.is_waiting([Frame(f"{lib}/selectors.py", 468, "EpollSelector.select")])
    # a user's function called wait, or the standard library computing, is running
    assert not stacks.is_waiting([Frame("/srv/app/main.py", 3, "wait")])
    assert not stacks.is_waiting([Frame(f"{lib}/json/encoder.py", 200, "encode")])
    assert not stacks.is_waiting([])


def test_package_paths_and_shared_objects() -> None:
    sp = "/v/lib/python3.11/site-packages"
    assert stacks.in_package_path(f"{sp}/aiohttp/cookiejar.py") == "aiohttp/cookiejar.py"
    assert stacks.in_package_path("/srv/app/main.py") == "main.py"
    so = f"{sp}/numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so"
    assert stacks.shared_object_of(so) == so
    assert stacks.shared_object_of("/usr/lib/libz.so.1") == "/usr/lib/libz.so.1"
    assert stacks.shared_object_of("Objects/obmalloc.c") is None
