"""Notebooks -> offline HTML reports.

A notebook is read from its jupytext ``py:percent`` source, executed by papermill with its
``parameters`` cell overridden, signed (so JupyterLab shows its outputs as trusted), saved as
``.ipynb`` beside the report, and exported through the ``labkit_offline`` template: JupyterLab's
look with no script or style loaded from the network. Outputs are written atomically.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from labkit.errors import InputError, LabkitError
from labkit.outputs import check_dir_output, check_output, write_text_atomic
from labkit.report.index import report_facts, write_index
from labkit.resources import notebooks_dir

TEMPLATES = Path(__file__).resolve().parent / "templates"
INDEX = "index.html"


def notebook_paths(root: Path | None = None) -> list[Path]:
    """Every notebook source, in order (``NN-topic.py``); default: the lab's own."""
    return sorted(p for p in (root or notebooks_dir()).glob("[0-9][0-9]-*.py"))


def resolve(name: str, root: Path | None = None) -> Path:
    """A notebook by path, file name or stem (``10-pool-misuse``, ``pool-misuse``)."""
    p = Path(name)
    if p.is_file():
        return p
    for cand in notebook_paths(root):
        if name in (cand.name, cand.stem, cand.stem.split("-", 1)[1]):
            return cand
    known = ", ".join(c.stem for c in notebook_paths(root))
    raise InputError(f"no notebook {name!r}; known: {known}")


# The kernel talks to papermill over local TCP; with CurveZMQ keys provisioned by the
# kernel manager (when the kernelspec declares support, as ipykernel's does) that traffic is
# encrypted, and ipykernel no longer warns "Kernel is running over TCP without encryption".
# The kernel's own stderr is dropped (labkit.report.kernel): its log is not the report's.
KERNEL_CONFIG = {"KernelManager": {"transport_encryption": "auto"},
                 "NotebookClient": {"kernel_manager_class":
                                    "labkit.report.kernel.QuietKernelManager"}}


def execute(source: Path, parameters: dict[str, Any] | None = None) -> Any:
    """Execute a notebook source headless; returns the executed notebook node."""
    import jupytext
    import papermill
    from traitlets.config import Config

    nb = jupytext.read(source)
    nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3",
                                          "language": "python"})
    from labkit.progress import REPORT_ENV

    old = os.environ.get(REPORT_ENV)
    os.environ[REPORT_ENV] = "1"  # the kernel inherits it: a report shows every answer
    try:
        with tempfile.TemporaryDirectory(prefix="labkit-nb-") as cwd:  # never the package
            return papermill.execute_notebook(
                nb, None, parameters=parameters or {}, kernel_name="python3",
                language="python", progress_bar=False, cwd=cwd, log_output=False,
                config=Config(KERNEL_CONFIG))
    except papermill.PapermillExecutionError as exc:
        raise LabkitError(f"notebook {source.name} failed in cell {exc.exec_count}: "
                          f"{exc.ename}: {exc.evalue}") from None
    finally:
        if old is None:
            os.environ.pop(REPORT_ENV, None)
        else:
            os.environ[REPORT_ENV] = old


TEMP_PATH = re.compile(r"(?:/tmp|/var/tmp|/dev/shm)/[^\s'\"<>,)`]*")
LEARNER_TAG = "learner"  # a cell of instructions to the learner: not in a reader's rendering


def without_temp_paths(text: str) -> str:
    """``text`` with each temporary path replaced: a file by its name, a folder by words."""
    def word(m: re.Match[str]) -> str:
        name = m.group().rstrip("/.:;").rsplit("/", 1)[-1]
        return name if "." in name.strip(".") else "(a temporary folder)"

    return TEMP_PATH.sub(word, text)


def for_reader(nb: Any) -> Any:
    """A copy of an executed notebook for a reader: no cells tagged ``learner`` (the
    learner's instructions), no stderr (warnings), no bare return values (``Out: False``),
    temporary paths replaced (:func:`without_temp_paths`) in every text output. Input cells
    are dropped by the exporter (:func:`to_html` with ``reader``)."""
    import copy

    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells
                if LEARNER_TAG not in (c.get("metadata", {}).get("tags") or [])]
    for cell in nb.cells:
        if cell.get("cell_type") != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                continue
            data = out.get("data", {})
            if out.get("output_type") == "execute_result" and set(data) <= {"text/plain"}:
                continue
            if out.get("output_type") == "stream":
                out["text"] = without_temp_paths(out.get("text", ""))
            for mime, value in data.items():
                if mime.startswith("text/") and isinstance(value, str):
                    data[mime] = without_temp_paths(value)
                elif mime.startswith("text/") and isinstance(value, list):
                    data[mime] = [without_temp_paths(str(v)) for v in value]
            kept.append(out)
        cell["outputs"] = kept
    return nb


def to_html(nb: Any, title: str = "labkit report", *, reader: bool = False) -> str:
    """The offline HTML of an executed notebook, titled ``title``; ``reader``: the reader's
    rendering (:func:`for_reader`, no input cells or prompts)."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="labkit_offline",
                            extra_template_basedirs=[str(TEMPLATES)], exclude_input=reader,
                            exclude_input_prompt=reader, exclude_output_prompt=reader)
    body, _ = exporter.from_notebook_node(for_reader(nb) if reader else nb,
                                          resources={"metadata": {"name": title}})
    return body


def is_labkit_report(path: Path) -> bool:
    """Whether ``path`` is a report (or executed notebook) that labkit wrote earlier."""
    from labkit.safefile import open_regular

    try:  # never follows a link nor blocks on a FIFO: those are no report of labkit's
        with open_regular(path, follow_symlinks=False) as fh:
            if path.suffix == ".ipynb":
                return "labkit_report" in json.loads(fh.read().decode("utf-8"))["metadata"]
            return b'content="labkit report"' in fh.read(1 << 16)
    except (LabkitError, OSError, ValueError, KeyError, TypeError):
        return False


def render(source: Path, out_html: Path, parameters: dict[str, Any] | None = None, *,
           notebook_copy: bool = True, reader: bool = False) -> Path:
    """Execute ``source`` and write ``out_html`` (plus, with ``notebook_copy``, the signed
    ``.ipynb`` beside it, whose ``labkit_report`` metadata holds :func:`report_facts`).
    ``reader``: the reader's rendering. The caller has checked the outputs
    (:mod:`labkit.outputs`)."""
    import nbformat
    from nbformat.sign import NotebookNotary

    nb = execute(source, parameters)
    nb.metadata["labkit_report"] = {"source": source.name, "title": title_of(source),
                                    "reader": reader, **report_facts(nb)}
    if notebook_copy:
        NotebookNotary().sign(nb)
        write_text_atomic(out_html.with_suffix(".ipynb"), nbformat.writes(nb))
    write_text_atomic(out_html, to_html(nb, title_of(source), reader=reader))
    return out_html


def copy_notebooks(dest: Path, *, force: bool = False) -> list[Path]:
    """Copy the lab's notebook sources, and the ``jupytext.toml`` that keeps saving from
    rewriting them, into ``dest`` (checked first; an existing file there is replaced only
    with ``force``). Returns the paths written."""
    from labkit.outputs import check_file_output

    dest = check_dir_output(dest, flag="DIR")
    sources = [*notebook_paths(), notebooks_dir() / "jupytext.toml"]
    pairs = [(src, check_file_output(dest / src.name, force=force, flag="notebooks"))
             for src in sources if src.is_file()]
    for src, out in pairs:
        write_text_atomic(out, src.read_text(encoding="utf-8"))
    return [out for _, out in pairs]


def title_of(source: Path) -> str:
    """The notebook's first markdown heading."""
    for line in source.read_text(encoding="utf-8").splitlines():
        if line.startswith("# #"):
            return line.lstrip("# ").strip()
    return source.stem


def plan_reports(out_dir: Path, sources: list[Path], *, force: bool = False) -> list[str]:
    """Check ``out_dir`` before any notebook runs; returns the names of earlier labkit
    reports that rendering will replace. A file there that labkit did not write is refused
    unless ``force``."""
    out_dir = check_dir_output(out_dir)
    replaced = []
    targets = [out_dir / INDEX]
    seen: dict[str, Path] = {}
    for src in sources:
        if f"{src.stem}.html" == INDEX:
            raise InputError(f"notebook {src} would be reported as {INDEX}, the index page's "
                             "name; rename the notebook")
        if src.stem in seen and seen[src.stem] != src.resolve():
            raise InputError(f"notebooks {seen[src.stem]} and {src} would both be reported as "
                             f"{src.stem}.html; rename one")
        seen[src.stem] = src.resolve()
        targets += [out_dir / f"{src.stem}.html", out_dir / f"{src.stem}.ipynb"]
    for t in targets:
        if t.is_dir() and not t.is_symlink():
            raise InputError(f"{t} is a folder where labkit would write a report; move it")
        check_output(t, "file")  # no link, FIFO, socket or device: refused even with --force
        if os.path.lexists(t):
            if is_labkit_report(t):
                replaced.append(t.name)
            elif not force:
                raise InputError(f"{t} exists and is not a labkit report; pass --force to "
                                 "replace it, or choose another --out")
    return replaced


def render_all(out_dir: Path, names: list[str] | None = None,
               parameters: dict[str, Any] | None = None, *, force: bool = False,
               reader: bool = False) -> list[Path]:
    """Render the named notebooks (default: all) into ``out_dir`` and write its index.

    Outputs are checked first (:func:`plan_reports`); labkit's own earlier reports are
    replaced, and each replacement is said."""
    sources = [resolve(n) for n in names] if names else notebook_paths()
    if not sources:
        raise InputError(f"no notebooks in {notebooks_dir()}; this labkit was installed "
                         "without them: reinstall it")
    from labkit.progress import clear, progress

    out_dir = check_dir_output(out_dir)
    replaced = set(plan_reports(out_dir, sources, force=force))
    done = []
    with progress(len(sources), "reports") as bar:
        for src in sources:
            bar.step(f"executing {src.stem}")
            out = render(src, out_dir / f"{src.stem}.html", parameters, reader=reader)
            again = " (replaced the earlier report)" if out.name in replaced else ""
            clear()
            print(f"wrote {out}{again}", flush=True)
            done.append((out, title_of(src)))
    existing = {p for p, _ in done}
    for other in sorted(out_dir.glob("[0-9][0-9]-*.html")):
        if other not in existing:
            src = notebooks_dir() / f"{other.stem}.py"
            done.append((other, title_of(src) if src.exists() else other.stem))
    write_index(out_dir, sorted(done))
    return [p for p, _ in done]
