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
# # Thread leak: pollers that are never stopped
#
# **The incident (Go).** A monitoring tool started a goroutine (Go's lightweight thread;
# Python's nearest are a thread or an asyncio task) per target and never stopped it when
# the target went away. `runtime.NumGoroutine()` (the live goroutine count, like
# `threading.active_count()`) above 5,000 flagged it; pprof (Go's profiler, whose
# goroutine profile is a thread dump) showed them all parked in a channel receive (like
# a thread blocked in `queue.Queue.get`).
#
# **In Python.** Targets come and go in rounds. Leaky: each new target gets a poller thread
# parked on `queue.get()` of a queue nobody feeds, never stopped. Fixed: a stop event per
# poller, set and joined when the target leaves. (`--param mode=asyncio`: tasks instead.)

# %% tags=["parameters"]
replay = False  # True: the recorded runs in datasets/ instead of a live capture
quick = True  # the quick preset (seconds)
prediction_threads = None  # exercise: threads alive at the end of the leaky run

# %%
from labkit import notebook as nb
from labkit.charts import labkit_style, threads_fds

lab = nb.Scenario("thread-leak", replay=replay, quick=quick,
                 predictions={"prediction_threads": prediction_threads})

# %% [markdown] tags=["learner"]
# ## Predict

# %%
p = lab.params
nb.md(f"This run has **{p['rounds']} rounds**; each adds {p['new_per_round']} targets and "
      f"keeps only the newest {p['live']} alive. How many threads will the leaky process "
      "have at the end? Set `prediction_threads`.")

# %% [markdown]
# ## Run the leaky variant, and measure
# The process sampler watches from outside (the Python `NumGoroutine()`), and at the end
# `py-spy dump` takes every thread's stack.

# %%
leaky = lab.run("leaky")
with labkit_style():
    nb.show(threads_fds(leaky.proc, title="Leaky: threads over time"))
threads = leaky.pyspy.threads
nb.readable(threads.groupby(["idle", "function"]).size().sort_values(ascending=False).head()
            .to_frame("threads").reset_index())

# %% [markdown]
# **Reading it.** Threads climb by the targets added each round and never come down (the
# fixed variant stays at the live targets). The dump groups them by
# where they are parked: all in `Condition.wait`, under `Queue.get`: the pprof picture of
# goroutines parked in a channel receive.

# %%
nb.readable(threads[threads["name"].str.startswith("poller-")][["name", "idle", "stack"]].head())

# %% [markdown]
# ## Explain
# A thread blocked forever in `queue.get()` is alive to Python: it stays in
# `threading.enumerate()`, keeps its stack (address space, `threading.stack_size()` or the
# platform's default) and is never collected.
# Asyncio differs from goroutines in one way worth knowing: a task that awaits something
# nothing else references is garbage itself and is destroyed mid-await; leaked tasks stay
# alive only while what they await stays registered somewhere.

# %% [markdown]
# ## Run the fixed variant, and compare

# %%
fixed = lab.run("fixed")
with labkit_style():
    nb.show(threads_fds({"leaky": leaky.proc, "fixed": fixed.proc}))
nb.table(lab.signature())

# %% [markdown] tags=["learner"]
# ## Exercise check

# %% tags=["learner"]
nb.check(prediction_threads, float(leaky.proc.threads.max()), rel=0.1,
         what="threads at the end of the leaky run")
