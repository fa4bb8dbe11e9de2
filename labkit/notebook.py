"""What the notebooks call: run or replay a scenario, show figures and flamegraphs, check
an exercise. The same functions the CLI uses underneath (``labkit.runner``, ``labkit.load``).
"""

from __future__ import annotations

import html
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.analysis.records import write_record
from labkit.errors import LabkitError
from labkit.frames import Run, load
from labkit.progress import REPORT_ENV  # set for the kernel while labkit renders a report
from labkit.report.display import register as register_display
from labkit.resources import datasets_dir

__all__ = [
    "DATASETS",
    "Flamegraph",
    "Scenario",
    "Verdict",
    "check",
    "frame",
    "gc_controls",
    "load",
    "md",
    "memray_flamegraph",
    "predict_first",
    "pyspy_flamegraph",
    "readable",
    "run_gc_setting",
    "show",
    "table",
]

DATASETS = datasets_dir()
_CURRENT: dict[str, str | None] = {"scenario": None}  # the scenario an exercise check is of
register_display()  # in a kernel, labkit's objects show as HTML; elsewhere this does nothing


class PredictFirst(Exception):
    """Raised by :meth:`Scenario.run` while a prediction is missing in an interactive
    session, so Run All stops before anything is measured; shows as its message only."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[1;35m{self}\x1b[0m"]


def predict_first(predictions: dict[str, Any]) -> None:
    """Raise :class:`PredictFirst` in an interactive session while any of ``predictions`` is
    None (a report, run with :data:`REPORT_ENV` set, goes on). In a kernel, the cell first
    shows :func:`labkit.report.stop.stop_bundle`: JupyterLab scrolls to and selects the
    stopping cell and notifies the learner."""
    missing = [k for k, v in predictions.items() if v is None]
    if missing and not os.environ.get(REPORT_ENV):
        message = (f"Predict first: set {' and '.join(missing)} in the parameters cell at "
                   "the top, run it, then run on. Nothing has been measured yet.")
        from labkit.progress import where

        if where() == "notebook":
            from IPython.display import display

            from labkit.report.stop import stop_bundle

            display(stop_bundle(message), raw=True)
        raise PredictFirst(message)


@dataclass
class Scenario:
    """One scenario in a notebook: live runs, or the recorded dataset (``replay``).

    ``mode`` says which was used and ``why`` says why replay was chosen. Each prediction,
    run and signature is recorded for the trainer's view (:mod:`labkit.analysis.records`).
    """

    name: str
    replay: bool = False
    quick: bool = True
    predictions: dict[str, Any] = field(default_factory=dict)
    datasets: Path = DATASETS
    mode: str = "live"
    why: str = ""
    runs: dict[str, Run] = field(default_factory=dict)
    _out: Path | None = None
    _recorded: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        _CURRENT["scenario"] = self.name
        if self.replay:
            self.mode, self.why = "replay", "replay=True was asked for"
        else:
            reason = live_capture_blocker(self.name)
            if reason:
                self.mode, self.why = "replay", reason
        if self.mode == "live":
            self._out = Path(tempfile.mkdtemp(prefix=f"labkit-{self.name}-"))
        print(self.describe())

    @property
    def params(self) -> dict[str, Any]:
        """The scenario's parameter values for this preset (what the runs were given), so
        prose about the workload is rendered from them, never typed."""
        from labkit.scenarios import get_spec

        return get_spec(self.name).values(self.quick)

    def describe(self) -> str:
        """One line: live or replayed, and why."""
        if self.mode == "live":
            return (f"{self.name}: running live ({'quick preset' if self.quick else 'full size'}"
                    f"); runs go to {self._out}")
        return (f"{self.name}: replaying the recorded runs in {self.datasets / self.name} "
                f"({self.why})")

    def run(self, variant: str) -> Run:
        """Run (or load the recording of) one variant; returns its loaded run. In an
        interactive session, raises :class:`PredictFirst` while any of ``predictions`` is
        None: the learner predicts before anything is measured. A report (labkit sets
        :data:`REPORT_ENV` for its kernel) runs regardless."""
        predict_first(self.predictions)
        if self.predictions and self.predictions != self._recorded:
            write_record("prediction", self.name, predictions=self.predictions)
            self._recorded = dict(self.predictions)
        if self.mode == "replay":
            run = load(self.datasets / self.name / variant)
        else:
            from labkit.runner import run_scenario

            try:
                res = run_scenario(self.name, variants=[variant], quick=self.quick,
                                   out=self._out)
            except LabkitError as exc:
                self.mode, self.why = "replay", f"the live run failed: {exc}"
                print(self.describe())
                return self.run(variant)
            run = load(res[variant].path)
            print(f"{variant}: {res[variant].reason}, exit code {res[variant].returncode}, "
                  f"{run.path}")
        write_record("run", self.name, variant=variant, mode=self.mode,
                     returncode=None if self.mode == "replay" else res[variant].returncode,
                     reason="replayed" if self.mode == "replay" else str(res[variant].reason))
        self.runs[variant] = run
        return run

    def signature(self) -> Any:
        """The scenario's signature over the variants run so far (all are run if needed)."""
        from labkit.scenarios import get_module, get_spec

        for v in get_spec(self.name).variants:
            if v not in self.runs:
                self.run(v)
        sig = get_module(self.name).signature(self.runs)
        write_record("signature", self.name, mode=self.mode, ok=sig.ok,
                     rows=[vars(r) for r in sig.rows])
        return sig


def live_capture_blocker(name: str) -> str:
    """Why a live run of ``name`` cannot capture here, or ``""`` if it can."""
    from labkit.scenarios import get_spec

    spec = get_spec(name)
    needs_ptrace = "pyspy" in spec.captures or spec.dump_on_hold
    if needs_ptrace:
        from labkit.doctor import ptrace_check

        check = ptrace_check()
        if not check.ok:
            return f"py-spy cannot attach here: {check.detail}"
    if "memray" in spec.captures:
        try:
            import memray  # noqa: F401
        except ImportError:
            return "memray is not installed"
    return ""


def show(fig: Any, alt: str | None = None) -> None:
    """Display a matplotlib Figure as a crisp inline PNG with alt text (default: its titles
    and axes, see :func:`labkit.charts.export.describe`), whatever the notebook's backend."""
    from IPython.display import display

    from labkit.charts.export import describe, figure_html

    text = alt or describe(fig)
    display({"text/html": figure_html(fig, text), "text/plain": text}, raw=True)


def run_gc_setting(thresholds: tuple[int, int, int], freeze: bool, *,
                   out: Path | None = None) -> tuple[Run, dict[str, float]]:
    """The quick gc-tuning workload once, with ``gc.set_threshold(*thresholds)`` (and
    ``gc.freeze()`` after warm-up): its run and its steady-phase figures (collections per
    1000 iterations, median full-collection and longest pause in ms, throughput)."""
    from labkit.runner import run_scenario
    from labkit.scenarios.gc_tuning import frontier, signature

    out = out or Path(tempfile.mkdtemp(prefix="labkit-gc-control-"))
    res = run_scenario("gc-tuning", variants=["default"], quick=True, out=out,
                       params={"thresholds": ",".join(str(int(t)) for t in thresholds),
                               "freeze": str(int(freeze))})
    run = load(res["default"].path)
    row = frontier(signature({"default": run})).loc["default"]
    return run, {k: float(row[k]) for k in ("collections_per_1000", "full_pause_ms",
                                            "max_pause_ms", "throughput")}


def gc_controls() -> Any:
    """Thresholds and freeze as widgets; *Run* reruns the quick gc-tuning workload with them
    (:func:`run_gc_setting`) and redraws its pause chart. While labkit renders a report, or
    without ipywidgets, a note saying where the control works instead."""
    import gc

    from IPython.display import Markdown

    if os.environ.get(REPORT_ENV):
        return Markdown("*In JupyterLab (`labkit lab`) a control here reruns the workload "
                        "with thresholds and freeze of your choice; the report shows the "
                        "settings measured above.*")
    try:
        import ipywidgets as w
    except ImportError:
        return Markdown("*The interactive control needs ipywidgets: pip install ipywidgets*")
    from IPython.display import display

    from labkit.charts import gc_timeline, labkit_style

    boxes = [w.BoundedIntText(value=v, min=1, max=10_000_000, description=f"threshold {i}",
                              layout=w.Layout(width="14em"))
             for i, v in enumerate(gc.get_threshold())]
    freeze = w.Checkbox(description="gc.freeze() after warm-up")
    button = w.Button(description="Run", button_style="primary")
    out = w.Output()

    def run(_: Any) -> None:
        with out:
            out.clear_output(wait=True)
            thresholds = tuple(b.value for b in boxes)
            r, fig = run_gc_setting(thresholds, freeze.value)
            md(f"`gc.set_threshold{thresholds}`{' + gc.freeze()' if freeze.value else ''}: "
               f"**{fig['collections_per_1000']:.2f}** collections per 1000 iterations, "
               f"full collection {fig['full_pause_ms']:.2f} ms (median), longest pause "
               f"{fig['max_pause_ms']:.2f} ms, {fig['throughput']:,.0f} iterations/s.")
            with labkit_style():
                show(gc_timeline(r.gc_events, r.heap, title=f"thresholds {thresholds}"))

    button.on_click(run)
    display(w.VBox([w.HBox(boxes), w.HBox([freeze, button]), out]))
    return None


def readable(df: Any) -> Any:
    """``df`` styled for reading: each number as :func:`labkit.units.human_measure` reads its
    column's name (``value``/``median`` by their row's ``measure``; never six decimals nor
    ``1.17e+03``), a path in a ``file`` or ``path`` column by its file name, missing values
    as a dash, no index, no wrapped cells."""
    import numbers
    from pathlib import PurePath

    from labkit.units import human_measure

    out = df.copy().astype(object)
    measures = df["measure"] if "measure" in df else [None] * len(df)
    for c in df.columns:
        col = []
        for v, m in zip(df[c], measures, strict=True):
            name = str(m) if c in ("value", "median") and m is not None else c
            if v is None or (isinstance(v, float) and v != v):
                col.append("\u2013")
            elif isinstance(v, numbers.Real) and not isinstance(v, bool) \
                    and type(v).__name__ != "bool_":
                col.append(human_measure(name, float(v)))
            elif c in ("file", "path") and isinstance(v, str) and "/" in v:
                col.append(PurePath(v).name)
            else:
                col.append(v)
        out[c] = col
    return out.style.hide(axis="index").set_properties(**{"white-space": "nowrap"})


def md(text: str) -> None:
    """Display ``text`` as Markdown: prose whose figures come from the run beside it."""
    from IPython.display import Markdown, display

    display(Markdown(text))


def table(sig: Any) -> Any:
    """A signature to show: it renders as a formatted table (marks, human figures); query
    it with ``sig.value(metric, variant)``. :func:`frame` gives the raw DataFrame."""
    return sig


def frame(sig: Any) -> Any:
    """A signature as a DataFrame: metric, a column per variant, expected, held."""
    import pandas as pd

    rows = [{"metric": r.metric, **r.values, "expected": r.expect, "held": r.ok}
            for r in sig.rows]
    return pd.DataFrame(rows).set_index("metric")


class Flamegraph:
    """A flamegraph in labkit's viewer (:mod:`labkit.report.flame`): shows in a notebook,
    in JupyterLab and in the offline report (a few tens of KB, no request, search and zoom
    inside the page)."""

    def __init__(self, tree: dict[str, Any], *, title: str, unit: str) -> None:
        self.tree, self.title, self.unit = tree, title, unit

    def _repr_html_(self) -> str:
        from labkit.report.flame import flame_html

        return flame_html(self.tree, title=self.title, unit=self.unit)


def memray_flamegraph(capture: Path | str | Run, *, view: str = "peak") -> Flamegraph:
    """The flamegraph of a memray capture: ``view="peak"`` what was held at the high-water
    mark, ``"churn"`` the short-lived allocations (allocated and freed at once). labkit's
    own allocations and those made while importing modules are left out. For memray's own
    page (its memory graph too): ``memray flamegraph FILE``."""
    from labkit.frames.memray import MemrayCapture
    from labkit.report.views import memray_flame

    cap = capture.memray if isinstance(capture, Run) else MemrayCapture(capture)
    f = memray_flame(cap, view)
    return Flamegraph(f.tree, title=f"{f.title[:-1]}, {cap.path.name})", unit=f.unit)


def pyspy_flamegraph(profile: Path | str | Run) -> Flamegraph:
    """The CPU flamegraph of a py-spy profile (a run, or a speedscope file)."""
    from labkit.frames.pyspy import PySpyCapture
    from labkit.report.views import pyspy_flame

    py = profile.pyspy if isinstance(profile, Run) else PySpyCapture(speedscope=profile)
    f = pyspy_flame(py)
    return Flamegraph(f.tree, title=f.title, unit=f.unit)


@dataclass(frozen=True)
class Verdict:
    """An exercise's result: true when right; shows as a mark and a sentence."""

    ok: bool | None  # None: no prediction was entered
    text: str

    def __bool__(self) -> bool:
        return bool(self.ok)

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        mark, color = {True: ("&#10004;", "#1a7f37"), False: ("&#10008;", "#cf222e"),
                       None: ("?", "#6e7781")}[self.ok]
        return (f'<p class="labkit-check" style="font-size:1.1em"><b style="color:{color}">'
                f"{mark}</b> {html.escape(self.text)}</p>")


def check(prediction: float | None, measured: float, *, rel: float | None = 0.3,
          factor: float | None = None, what: str = "the value",
          scenario: str | None = None) -> Verdict:
    """Whether ``prediction`` is right: within ``rel`` of ``measured`` (``rel`` < 1), or,
    for quantities spread over orders of magnitude, within a ``factor`` of it. A guess of
    zero, or of the wrong sign, is never right for a nonzero measurement. The check is
    recorded for the trainer's view, as an exercise of the notebook's last :class:`Scenario`
    (or ``scenario``)."""
    if factor is None and (rel is None or not 0 < rel < 1):
        raise ValueError("rel must be between 0 and 1; use factor= for order-of-magnitude "
                         "guesses")
    band = f"within a factor of {factor:g}" if factor is not None else f"within {rel:.0%}"
    verdict = _check(prediction, measured, rel=rel, factor=factor, what=what, band=band)
    write_record("check", scenario or _CURRENT["scenario"], what=what, prediction=prediction,
                 measured=measured, ok=verdict.ok, band=band)
    return verdict


def _check(prediction: float | None, measured: float, *, rel: float | None,
           factor: float | None, what: str, band: str) -> Verdict:
    if prediction is None:
        return Verdict(None, f"No prediction yet: set it in the parameters cell, then run "
                             f"this cell again to see the measured {what}.")
    if factor is not None:
        ok = prediction > 0 and measured > 0 and measured / factor <= prediction <= \
            measured * factor
    else:
        same_sign = measured == 0 or (prediction != 0 and (prediction > 0) == (measured > 0))
        ok = same_sign and abs(prediction - measured) <= rel * abs(measured)
    from labkit.units import plain_number

    verdict = "Right" if ok else "Not quite"
    return Verdict(bool(ok), f"{verdict}: you predicted {plain_number(prediction)}; the "
                             f"measured {what} is {plain_number(measured)} ({band} counts "
                             "as right).")
