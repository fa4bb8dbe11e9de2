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
