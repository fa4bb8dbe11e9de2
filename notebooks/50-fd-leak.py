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
# # fd leak: file handles lost on an error path
#
# **The incident (Go).** `log.Fatal` (log, then exit at once) skipped a deferred `Close()`
# (Go's `defer` runs a call when the function returns, like a `finally:` or a `with`
# block; exiting skips it). After 72 hours, 12,843 handles were open and the service hit
# `ulimit -n` (the per-process limit on open file descriptors).
#
# **In Python.** A handler opens a file and some requests fail while parsing it. Leaky: a
# bare `open`, and the failures are kept for a retry report; each kept exception's
# traceback holds the handler's frame, which holds the open file. The run lowers
# `RLIMIT_NOFILE` (its `fd_limit` parameter), so the leak ends in `EMFILE`. A second path:
# worker processes that `os._exit` skip their `finally` and leave spool files behind.
# Fixed: `with open()`, and `SystemExit` instead of `os._exit`.

# %% tags=["parameters"]
replay = False  # True: the recorded runs in datasets/ instead of a live capture
quick = True  # the quick preset (seconds)
prediction_failures = None  # exercise: failed requests before the first EMFILE

# %%
from labkit import notebook as nb
from labkit.charts import labkit_style, threads_fds
from labkit.scenarios.measure import metrics_frame

lab = nb.Scenario("fd-leak", replay=replay, quick=quick,
                 predictions={"prediction_failures": prediction_failures})

# %% [markdown] tags=["learner"]
# ## Predict

# %%
p = lab.params
nb.md(f"One request in {p['fail_every']} fails, the fd limit is **{p['fd_limit']}** and the "
      "process starts with a handful of descriptors open (its standard streams, the "
      "tracer's files). After how many failed requests does `open()` start failing with "
      "`EMFILE`? Set `prediction_failures`.")

# %% [markdown]
# ## Run the leaky variant, and measure

# %%
leaky = lab.run("leaky")
with labkit_style():
    nb.show(threads_fds(leaky.proc, title="Leaky: open fds climb to the limit"))
served = metrics_frame(leaky).dropna(subset=["requests"])
nb.readable(served[["t_s", "requests", "failures", "emfile_errors"]].tail())

# %% [markdown]
# ## Explain
# CPython closes a file when its last reference goes. A kept exception keeps its
# traceback, the traceback keeps the frame, the frame keeps `fh`: the last reference never
# goes. `with open(...)` closes on the error path regardless of who keeps the exception.

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
m = metrics_frame(leaky).dropna(subset=["requests"])
first = m[m.emfile_errors > 0]
measured = float(first.failures.iloc[0]) if len(first) else float(m.failures.max())
nb.check(prediction_failures, measured, rel=0.15,
         what="failed requests when EMFILE first appeared (sampled every 50 requests)")
