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
# ## The scenarios

# %%
from labkit.report.text import scenario_list_lines

print("\n".join(scenario_list_lines()))

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
pauses_by_generation(run.gc_events)

# %% [markdown]
# The other charts (memory timeline of leaky against fixed, top allocation sites at the
# peak, threads and file descriptors over time, the gc-tuning frontier, comparisons of two
# runs) appear in the scenario notebooks, each with a sentence on how to read it.
