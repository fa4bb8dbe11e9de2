# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Postmortem: your own captures, and the suspects they name
#
# Give a labkit run directory, any subset of a real incident's captures, or both, as
# parameters (or use `labkit postmortem RUN --memray F ... --html report.html`):
#
# * `run`: a labkit run directory (`labkit capture`, `attach` or `run`): every capture it
#   holds, plus where its threads were started and its fds opened;
# * `memray`: a memray capture file (`memray run -o app.bin`, or labkit's `memray.bin`);
# * `pyspy`: a py-spy profile in speedscope format (`py-spy record --format speedscope`);
# * `dump`: a thread dump (`py-spy dump --pid PID --json > dump.json`);
# * `gc`: labkit's GC trace (`gc_events.bin` from `labkit gctrace`, or its run directory);
# * `proc`: labkit's process samples (`proc.csv`).
#
# With none given, the notebook shows itself on recorded incidents from `datasets/` and
# says so.

# %% tags=["parameters"]
run = None  # a labkit run directory: every capture it holds, plus thread and fd origins
memray = None
pyspy = None
dump = None
gc = None
proc = None
focus = None  # regex: only frames matching file:function count as your code
ignore = None  # regex: frames matching file:function are never your code
replay = False  # kept for symmetry: a postmortem always reads recorded files

# %%
from labkit import notebook as nb
from labkit.analysis.findings import findings
from labkit.attribution import attribution
from labkit.frames.evidence import load_evidence
from labkit.report import views
from labkit.report.text import memray_summary_lines

given = {"run": run, "memray": memray, "pyspy": pyspy, "dump": dump, "gc": gc, "proc": proc}
if not any(given.values()):
    d = nb.DATASETS
    given = {"memray": d / "pool-misuse/leaky/memray.bin",
             "pyspy": d / "gateway-load/leaky/pyspy.speedscope.json",
             "dump": d / "thread-leak/leaky/pyspy.dump.json",
             "gc": d / "gc-tuning/default", "proc": d / "fd-leak/leaky/proc.csv"}
    print("No captures given: a demonstration on recorded incidents from datasets/.")
for k, v in given.items():
    print(f"{k:>7}: {v or '-'}")
ev = load_evidence(**given)

# %% [markdown]
# ## The verdict, the symptoms, the suspects
# The symptoms are what you already saw (memory, threads or fds rising, time in GC). A
# suspect is a line of *your* code (the first frame outside the standard library,
# installed packages and labkit), with the share of a symptom it explains: bytes held at
# the peak, threads it started that are still alive, fds it opened that are still open,
# threads parked there, CPU samples below it.

# %%
found = findings(ev, attribution(focus, ignore))
found

# %% [markdown]
# ## Timelines

# %%
if ev.memray is not None:
    print("\n".join(memray_summary_lines(ev.memray)))
for chart in views.charts(ev):  # the same charts as the postmortem page
    nb.show(chart.figure, alt=chart.alt)

# %% [markdown]
# ## Threads (py-spy dump)

# %%
if ev.pyspy is not None and ev.pyspy.dump_path is not None:
    t = ev.pyspy.threads
    print(f"{len(t)} threads, {int(t.idle.sum())} idle")
    display(t.groupby(["idle", "function", "file"]).size().rename("threads")  # noqa: F821
            .sort_values(ascending=False).head(10).to_frame())

# %% [markdown]
# ## Flamegraphs
# Memory held at the peak (memray), the short-lived allocations when churn is a symptom,
# and CPU (py-spy). Orange frames are your code. Click a frame to zoom; search to mark
# frames and read their share.

# %%
for f in views.flames(ev, found):  # the same flamegraphs as the postmortem page
    display(nb.Flamegraph(f.tree, title=f.title, unit=f.unit))  # noqa: F821

# %% [markdown]
# ## Who keeps it alive: an innocent allocating line, a guilty retaining line
# memray says where memory was *allocated*; a leak is fixed where it is *held*. Below, a
# program reads a 32 KiB document per request (the allocating line, innocent: it must read
# it) and subscribes a handler to a class-level listener list that nobody empties (the
# guilty line: the handler's closure keeps the document alive). Captured with every
# object's address (`--trace-python-allocators`) and a heap snapshot at exit
# (`labkit capture --memray --trace-python-allocators --heap-snapshot`), each memory suspect
# gains `retained_by`: the shortest path from a root (a module's globals, a class, a
# thread's frames) to its memory. Expect `load_document` as the top suspect, kept alive by
# `EventBus.listeners` through the closure variable `doc`: change the subscribe line.

# %%
import sys
import tempfile
from pathlib import Path

from labkit.capture.session import CaptureOptions, run_program
from labkit.frames import load
from labkit.frames.evidence import evidence_of

LISTENERS = '''
class EventBus:
    listeners = []

def load_document(i):
    return bytes(32 * 1024) + str(i).encode()

def subscribe(doc):
    def on_saved(event):
        return len(doc) + len(event)
    EventBus.listeners.append(on_saved)

for i in range(300):
    subscribe(load_document(i))
'''
where = Path(tempfile.mkdtemp(prefix="labkit-listeners-"))
(where / "listeners.py").write_text(LISTENERS)
held = run_program([sys.executable, str(where / "listeners.py")], out=where / "run",
                   options=CaptureOptions(gc=False, memray=True, trace_python_allocators=True,
                                          heap_snapshot="exit"))
kept = findings(evidence_of(load(held.path)))
for s in kept.suspects[:2]:
    print(f"{s.where}: kept alive by {s.kept_alive_by}\n    " + " > ".join(s.retained_by or []))
kept
