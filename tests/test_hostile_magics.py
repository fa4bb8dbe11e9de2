"""Odd lines for ``%%labkit_capture``: a line break in its options, a keyword as its name."""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit.errors import LabkitError
from labkit.magics import capture_cell


def test_a_line_break_in_the_options_does_not_become_code(tmp_path: Path, capsys) -> None:
    out = tmp_path / "a\nb"
    _, run = capture_cell("x = 1\n", f"--proc --out '{out}'")
    assert run.manifest["outcome"]["returncode"] == 0, capsys.readouterr().err
    assert "SyntaxError" not in capsys.readouterr().err


@pytest.mark.parametrize("name", ["class", "None", "lambda"])
def test_a_keyword_is_not_a_variable_name(name: str) -> None:
    with pytest.raises(LabkitError, match="not a variable name"):
        capture_cell("x = 1\n", name)
