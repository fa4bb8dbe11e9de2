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
# # Start here: how the lab works
#
# labkit reproduces production incidents as small Python programs with a **leaky** and a
# **fixed** variant, captures them with real profilers, and charts what they did. Every
# scenario notebook follows the same loop: **predict**, **run** the leaky variant,
# **measure**, **explain**, run the **fixed** variant, **compare**, then check an exercise.
#
# The pipeline: scenario -> capture -> run directory (files + `manifest.json`) -> frames
# (pandas) -> analysis -> charts -> report. The same functions drive the `labkit` command.

# %% tags=["parameters"]
replay = False  # True: read the recorded runs in datasets/ instead of capturing live

# %% [markdown]
# ## Is this machine ready?
# `labkit doctor` lists the versions labkit runs on and checks that py-spy may attach to a
# process here (it needs ptrace: root, or `SYS_PTRACE` in a container). Where it may not,
# every notebook replays the recorded datasets instead and says so.

# %%
from labkit.doctor import run_doctor

checks = run_doctor()
for c in checks:
    print(f"{'ok ' if c.ok else 'NO '} {c.name:<14} {c.detail}")

# %% [markdown]
# ## Go terms, for Python learners
# Each incident is told as it happened in Go, then rebuilt
# in Python. *Goroutine*: Go's lightweight thread (a thread or an asyncio task here).
# *`runtime.NumGoroutine()`*: the live goroutine count (`threading.active_count()`).
# *`GOGC`*: how far Go's heap may grow past the live data before the next collection (no
# direct counterpart: CPython's thresholds count containers, not bytes). *`sync.Pool`*: a
# free list of reusable objects. *`bytes.Buffer`*: a growable byte buffer (`bytearray`).
# *`mallocgc`*: Go's allocator. *pprof*: Go's profiler (memray and py-spy here). Each
# notebook explains the ones it uses where they first appear.

# %% [markdown]
# ## The scenarios

# %%
from labkit.report.text import scenario_list_lines

print("\n".join(scenario_list_lines()))

# %% [markdown]
# ## The garbage collector in one page
# CPython frees most objects the moment their reference count drops to zero. The *cyclic*
# garbage collector exists for what reference counting cannot free: objects that refer to
# each other in a cycle. It tracks *container* objects (lists, dicts, class instances...)
# in three **generations**: new containers start in generation 0; a container that
# survives a collection moves to the next generation. The **thresholds** decide when a
# collection runs: generation 0 is collected when allocations minus deallocations of
# containers since the last collection exceed the first threshold; generation 1 after the
# second threshold's count of generation-0 collections; generation 2 (a *full*
# collection, which visits every tracked container) after the third threshold's count of
# generation-1 collections, and only when the objects that survived since the last full
# collection exceed 25% of the long-lived ones. Young collections are cheap; full ones
# cost in proportion to everything alive. The values of the interpreter running this
# notebook:

# %%
import gc
import platform

from labkit import notebook as nb

DEFAULTS = {"3.11": (700, 10, 10), "3.12": (700, 10, 10), "3.13": (2000, 10, 10)}
version = ".".join(platform.python_version_tuple()[:2])
nb.md(f"""This kernel runs **Python {platform.python_version()}**: thresholds
`{gc.get_threshold()}`, objects counted towards each generation's next collection now
`{gc.get_count()}`, {len(gc.get_objects()):,} tracked containers, collections so far by
generation `{[s['collections'] for s in gc.get_stats()]}`.

CPython's defaults: {"; ".join(f"{v}: `{t}`" for v, t in DEFAULTS.items())}. 3.13 raised
the first threshold {DEFAULTS["3.13"][0] / DEFAULTS["3.11"][0]:.1f}x, so for the same
allocations young collections run that much less often, each over more objects: expect
fewer, larger young collections in the lab's figures on 3.13.
{"This interpreter runs with them." if DEFAULTS.get(version) == gc.get_threshold()
 else "This interpreter's thresholds differ from its version's default."}""")

# %% [markdown]
# ## How to read each chart
# Live, we trace a small program on this machine with labkit's GC tracer (a long-lived heap
# built in steps, with cyclic garbage); with `replay=True` we read gc-tuning's recorded
# default run instead.

# %%
import sys
import tempfile
from pathlib import Path

import labkit
from labkit import notebook as nb
from labkit.analysis import pauses_by_generation
from labkit.charts import gc_timeline, labkit_style, pause_distribution

PROGRAM = """
heap = []
for step in range(6):
    heap.extend({"id": i, "tags": [i]} for i in range(60_000))
    for i in range(100_000):
        a = [i]; b = [a]; a.append(b)
"""
if replay:
    run = nb.load(nb.DATASETS / "gc-tuning" / "default")
    print(f"replay: the recorded run {run.path}")
else:
    out = Path(tempfile.mkdtemp(prefix="labkit-start-")) / "run"
    labkit.run_program([sys.executable, "-c", PROGRAM], out=out,
                       options=labkit.CaptureOptions(gc=True, proc=True))
    run = labkit.load(out)
    print(f"live: traced on this machine into {run.path}")
print(f"{len(run.gc_events):,} collections; files: {', '.join(run.files)}")

# %% [markdown]
# **GC pauses against allocation** (the headline). Top: one dot per collection, its pause
# on a log scale, coloured by generation; the grey step line is collections per second.
# Bottom: RSS and allocated blocks. Full (generation 2) collections sit two orders of
# magnitude above the young ones, and they grow while the heap grows.

# %%
with labkit_style():
    nb.show(gc_timeline(run.gc_events, run.heap))

# %% [markdown]
# **Pause distribution.** One box per generation, with p50, p99 and max marked: the tail is
# what users feel.

# %%
with labkit_style():
    nb.show(pause_distribution(run.gc_events))
nb.readable(pauses_by_generation(run.gc_events).reset_index())

# %% [markdown]
# The other charts (memory timeline of leaky against fixed, top allocation sites at the
# peak, threads and file descriptors over time, the gc-tuning frontier, comparisons of two
# runs) appear in the scenario notebooks, each with a sentence on how to read it.
