"""What the notebooks call: run or replay a scenario, show figures and flamegraphs, check
an exercise. The same functions the CLI uses underneath (``labkit.runner``, ``labkit.load``).
"""

from __future__ import annotations

import html
import io
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit import artifacts as A
from labkit.errors import LabkitError
from labkit.frames import Run, load
from labkit.resources import datasets_dir

__all__ = ["DATASETS", "Scenario", "check", "iframe", "load", "memray_flamegraph",
           "pyspy_flamegraph", "show", "table"]

DATASETS = datasets_dir()


@dataclass
class Scenario:
    """One scenario in a notebook: live runs, or the recorded dataset (``replay``).

    ``mode`` says which was used and ``why`` says why replay was chosen.
    """

    name: str
    replay: bool = False
    quick: bool = True
    datasets: Path = DATASETS
    mode: str = "live"
    why: str = ""
    runs: dict[str, Run] = field(default_factory=dict)
    _out: Path | None = None

    def __post_init__(self) -> None:
        if self.replay:
            self.mode, self.why = "replay", "replay=True was asked for"
        else:
            reason = live_capture_blocker(self.name)
            if reason:
                self.mode, self.why = "replay", reason
        if self.mode == "live":
            self._out = Path(tempfile.mkdtemp(prefix=f"labkit-{self.name}-"))
        print(self.describe())

    def describe(self) -> str:
        """One line: live or replayed, and why."""
        if self.mode == "live":
            return (f"{self.name}: running live ({'quick preset' if self.quick else 'full size'}"
                    f"); runs go to {self._out}")
        return (f"{self.name}: replaying the recorded runs in {self.datasets / self.name} "
                f"({self.why})")

    def run(self, variant: str) -> Run:
        """Run (or load the recording of) one variant; returns its loaded run."""
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
        self.runs[variant] = run
        return run

    def signature(self) -> Any:
        """The scenario's signature over the variants run so far (all are run if needed)."""
        from labkit.scenarios import get_module, get_spec

        for v in get_spec(self.name).variants:
            if v not in self.runs:
                self.run(v)
        return get_module(self.name).signature(self.runs)


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


def show(fig: Any) -> None:
    """Display a matplotlib Figure as a PNG (whatever the notebook's backend)."""
    from IPython.display import Image, display

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    display(Image(data=buf.getvalue(), format="png"))


def table(sig: Any) -> Any:
    """A signature as a DataFrame: metric, a column per variant, expected, held."""
    import pandas as pd

    rows = [{"metric": r.metric, **r.values, "expected": r.expect, "held": r.ok}
            for r in sig.rows]
    return pd.DataFrame(rows).set_index("metric")


def iframe(document: str, *, height: int = 520, title: str = "") -> Any:
    """A sandboxed iframe (scripts only: no same-origin, no network) holding ``document``."""
    from IPython.display import HTML

    return HTML(f'<iframe sandbox="allow-scripts" class="labkit-flamegraph" title="{title}" '
                f'style="width:100%;height:{height}px;border:1px solid #ccc" '
                f'srcdoc="{html.escape(document, quote=True)}"></iframe>')


def memray_flamegraph(capture: Path | str | Run, *, height: int = 560) -> Any:
    """memray's flamegraph of a capture, rendered with ``--no-web`` (no CDN), in an iframe."""
    path = capture.need(A.MEMRAY) if isinstance(capture, Run) else Path(capture)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "flamegraph.html"
        cp = subprocess.run([sys.executable, "-m", "memray", "flamegraph", "--no-web", "-f",
                             "-o", str(out), str(path)], capture_output=True, text=True)
        if cp.returncode != 0:
            from labkit.errors import CorruptCaptureError

            raise CorruptCaptureError(f"memray could not draw a flamegraph of {path}: "
                                      f"{(cp.stderr.strip().splitlines() or ['?'])[-1]}")
        return iframe(out.read_text(encoding="utf-8"), height=height,
                      title=f"memray flamegraph of {path.name}")


def pyspy_flamegraph(svg: Path | str | Run, *, height: int = 520) -> Any:
    """py-spy's self-contained flamegraph SVG, in a sandboxed iframe. It is loaded from an
    inline ``data:`` URL so the browser parses it as SVG (its script expects an SVG root)."""
    import base64

    from IPython.display import HTML

    path = svg.need(A.PYSPY_FLAMEGRAPH) if isinstance(svg, Run) else Path(svg)
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return HTML(f'<iframe sandbox="allow-scripts" class="labkit-flamegraph" '
                f'title="py-spy flamegraph of {html.escape(path.name)}" '
                f'style="width:100%;height:{height}px;border:1px solid #ccc" '
                f'src="data:image/svg+xml;base64,{data}"></iframe>')


def check(prediction: float | None, measured: float, *, rel: float = 0.3,
          what: str = "the value") -> bool:
    """Tell the learner whether ``prediction`` is within ``rel`` of ``measured``."""
    if prediction is None:
        print(f"No prediction yet: set it in the parameters cell. Measured {what}: "
              f"{measured:,.3g}.")
        return False
    ok = abs(prediction - measured) <= rel * abs(measured)
    verdict = "Right" if ok else "Not quite"
    print(f"{verdict}: you predicted {prediction:,.3g}; measured {what} is {measured:,.3g} "
          f"(within {rel:.0%} counts as right).")
    return ok
