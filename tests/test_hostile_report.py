"""A report's kernel writes its own log (tracebacks about closed sockets when labkit is
stopped mid-report) to its stderr: that stream is dropped, not mixed into labkit's."""

from __future__ import annotations

from pathlib import Path

from labkit.report.html import execute


def test_the_kernels_own_stderr_does_not_reach_labkits(tmp_path: Path, capfd) -> None:
    src = tmp_path / "nb.py"
    src.write_text("# %%\nimport os\nos.write(2, b'KERNEL-RAW-STDERR\\n')\nprint('cell ran')\n")
    nb = execute(src)
    outs = [o.get("text", "") for c in nb.cells for o in c.get("outputs", [])]
    assert any("cell ran" in t for t in outs), outs
    assert "KERNEL-RAW-STDERR" not in capfd.readouterr().err
