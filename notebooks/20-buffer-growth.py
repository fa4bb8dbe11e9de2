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
# **The incident (Go).** HTTP responses were built without reusing a `bytes.Buffer`; a heap
# profile showed `mallocgc` at 78%.
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

lab = nb.Scenario("buffer-growth", replay=replay, quick=quick)

# %% [markdown]
# ## Predict
# A body of 200 chunks of 256 bytes is 50 KiB. Built by concatenation, step k copies k
# chunks. How many times more bytes will the leaky variant allocate than the fixed one?
# Set `prediction_ratio`.

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
nb.table(lab.signature())

# %% [markdown]
# ## Exercise check

# %%
ratio = leaky.memray.summary.total_allocated_bytes / fixed.memray.summary.total_allocated_bytes
nb.check(prediction_ratio, ratio, rel=0.5, what="ratio of bytes allocated (leaky / fixed)")
