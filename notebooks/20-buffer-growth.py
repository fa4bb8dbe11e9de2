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
# # Buffer growth: response bodies rebuilt on every request
#
# **The incident (Go).** HTTP responses were built without reusing a `bytes.Buffer` (Go's
# growable byte buffer); a profile showed `mallocgc` (Go's allocator, the counterpart of
# CPython's `PyObject_Malloc`) at 78% of the CPU.
#
# **In Python.** Each request assembles a body from 200 chunks. Leaky: `body = body + chunk`,
# which copies everything so far at every step (quadratic bytes). Fixed: one
# `b"".join(chunks)`. (`--param style=fresh` compares a fresh buffer per request with one
# reused buffer instead.)

# %% tags=["parameters"]
replay = False  # True: the recorded runs in datasets/ instead of a live capture
quick = True  # the quick preset (seconds); False for the full-size run
prediction_ratio = None  # exercise: how many times more bytes does leaky allocate?

# %%
from labkit import notebook as nb
from labkit.analysis import allocation_profile
from labkit.charts import allocation_bars, labkit_style

lab = nb.Scenario("buffer-growth", replay=replay, quick=quick,
                 predictions={"prediction_ratio": prediction_ratio})

# %% [markdown] tags=["learner"]
# ## Predict

# %%
p = lab.params
n, c = p["chunks"], p["chunk_bytes"]
nb.md(f"A body of {n} chunks of {c} bytes is {n * c / 1024:.0f} KiB. Built by "
      f"concatenation, step k copies k chunks: about n²/2 chunk copies per response. The "
      "fixed variant allocates each chunk once and joins them once: about 2n chunks. How "
      "many times more bytes will the leaky variant allocate than the fixed one? Set "
      "`prediction_ratio` (right within a factor of 2).")

# %% [markdown]
# ## Run the leaky variant, and measure

# %%
leaky = lab.run("leaky")
nb.memray_flamegraph(leaky, view="churn")

# %% [markdown]
# **Reading it.** This flamegraph is memray's *temporary allocations* view: every byte
# allocated and freed before the next allocation, by the line that asked for it. A
# high-water-mark view would not show this incident (the heap never holds much); the
# bytes flowing through the allocator do.

# %% [markdown]
# ## Explain
# Bytes are immutable: `body + chunk` allocates a new object of the combined size and
# copies both. Summed over a response that is about n^2/2 chunk copies. The peak stays small
# (each intermediate dies at once) but the allocator is busy all the time: the Python image
# of `mallocgc` at 78%. memray's *total allocated* and *temporary allocations* show it;
# the high-water mark does not.

# %% [markdown]
# ## Run the fixed variant, and compare

# %%
fixed = lab.run("fixed")
with labkit_style():
    nb.show(allocation_bars(allocation_profile({"leaky": leaky.memray, "fixed": fixed.memray}),
                            title="Leaky against fixed: the same responses, the bytes behind them"))
sig = lab.signature()
nb.table(sig)

# %% [markdown] tags=["learner"]
# ## Exercise check

# %% tags=["learner"]
ratio = sig.value("total bytes allocated", "leaky") / sig.value("total bytes allocated", "fixed")
nb.check(prediction_ratio, ratio, factor=2, what="ratio of bytes allocated (leaky / fixed)")
