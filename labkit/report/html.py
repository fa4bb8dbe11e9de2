"""Notebooks -> offline HTML reports.

A notebook is read from its jupytext ``py:percent`` source, executed by papermill with its
``parameters`` cell overridden, signed (so JupyterLab shows its outputs as trusted), saved as
``.ipynb`` beside the report, and exported through the ``labkit_offline`` template: JupyterLab's
look with no script or style loaded from the network. Outputs are written atomically.
"""

from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path
from typing import Any

from labkit.errors import InputError, LabkitError

NOTEBOOKS = Path(__file__).resolve().parent.parent.parent / "notebooks"
TEMPLATES = Path(__file__).resolve().parent / "templates"


def notebook_paths(root: Path = NOTEBOOKS) -> list[Path]:
    """Every notebook source, in order (``NN-topic.py``)."""
    return sorted(p for p in root.glob("[0-9][0-9]-*.py"))


def resolve(name: str, root: Path = NOTEBOOKS) -> Path:
    """A notebook by path, file name or stem (``10-pool-misuse``, ``pool-misuse``)."""
    p = Path(name)
    if p.is_file():
        return p
    for cand in notebook_paths(root):
        if name in (cand.name, cand.stem, cand.stem.split("-", 1)[1]):
            return cand
    known = ", ".join(c.stem for c in notebook_paths(root))
    raise InputError(f"no notebook {name!r}; known: {known}")


def execute(source: Path, parameters: dict[str, Any] | None = None) -> Any:
    """Execute a notebook source headless; returns the executed notebook node."""
    import jupytext
    import papermill

    nb = jupytext.read(source)
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3",
                                          "language": "python"})
    try:
        return papermill.execute_notebook(
            nb, None, parameters=parameters or {}, kernel_name="python3", language="python",
            progress_bar=False, cwd=str(source.parent), log_output=False)
    except papermill.PapermillExecutionError as exc:
        raise LabkitError(f"notebook {source.name} failed in cell {exc.exec_count}: "
                          f"{exc.ename}: {exc.evalue}") from None


def to_html(nb: Any) -> str:
    """The offline HTML of an executed notebook."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="labkit_offline",
                            extra_template_basedirs=[str(TEMPLATES)])
    body, _ = exporter.from_notebook_node(nb)
    return body


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def render(source: Path, out_html: Path, parameters: dict[str, Any] | None = None) -> Path:
    """Execute ``source`` and write ``out_html`` plus the signed ``.ipynb`` beside it."""
    import nbformat
    from nbformat.sign import NotebookNotary

    nb = execute(source, parameters)
    NotebookNotary().sign(nb)
    write_text_atomic(out_html.with_suffix(".ipynb"), nbformat.writes(nb))
    write_text_atomic(out_html, to_html(nb))
    return out_html


def title_of(source: Path) -> str:
    """The notebook's first markdown heading."""
    for line in source.read_text(encoding="utf-8").splitlines():
        if line.startswith("# #"):
            return line.lstrip("# ").strip()
    return source.stem


def write_index(out_dir: Path, reports: list[tuple[Path, str]]) -> Path:
    """``index.html`` linking each report (relative links, nothing external)."""
    items = "\n".join(f'<li><a href="{html.escape(p.name)}">{html.escape(title)}</a> '
                      f'<small>({html.escape(p.name)})</small></li>' for p, title in reports)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>labkit reports</title>
<style>body{{font-family:sans-serif;max-width:50em;margin:2em auto;line-height:1.6}}</style>
</head><body><h1>labkit reports</h1>
<p>Each report is a notebook executed headless; it opens offline and loads nothing from the
network.</p>
<ul>
{items}
</ul></body></html>
"""
    index = out_dir / "index.html"
    write_text_atomic(index, page)
    return index


def render_all(out_dir: Path, names: list[str] | None = None,
               parameters: dict[str, Any] | None = None) -> list[Path]:
    """Render the named notebooks (default: all) into ``out_dir`` and write its index."""
    sources = [resolve(n) for n in names] if names else notebook_paths()
    done = []
    for src in sources:
        out = render(src, out_dir / f"{src.stem}.html", parameters)
        print(f"wrote {out}", flush=True)
        done.append((out, title_of(src)))
    existing = {p for p, _ in done}
    for other in sorted(out_dir.glob("[0-9][0-9]-*.html")):
        if other not in existing:
            src = NOTEBOOKS / f"{other.stem}.py"
            done.append((other, title_of(src) if src.exists() else other.stem))
    write_index(out_dir, sorted(done))
    return [p for p, _ in done]
