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
# # Pool misuse: buffers put back without a reset
#
# **The incident (Go).** A service pooled `bytes.Buffer`s with `sync.Pool` and put them
# back without `Reset()`. Each buffer kept its grown capacity; the old generation filled
# and stop-the-world time rose non-linearly.
#
# **In Python.** A handler borrows `bytearray`s from a pool, writes a response into each,
# and returns them. Leaky: no reset on put (the next request appends to the old bytes) and
# a pool that keeps every buffer a burst ever needed. Fixed: `clear()` on put, a capped pool.

# %% tags=["parameters"]
replay = False  # True: the recorded runs in datasets/ instead of a live capture
quick = True  # the quick preset (seconds); False for the full-size run
prediction_mib = None  # exercise: MiB the leaky pool retains after all requests

# %%
from labkit import notebook as nb
from labkit.charts import labkit_style, memory_timeline, top_sites

lab = nb.Scenario("pool-misuse", replay=replay, quick=quick)

# %% [markdown]
# ## Predict
# The quick preset serves 4,000 requests with responses of 8-24 KiB (16 KiB on average).
# If nothing is ever reset, how many MiB will the pool hold at the end? Put your number in
# `prediction_mib` (parameters cell) before you run the next cells.

# %% [markdown]
# ## Run the leaky variant, and measure

# %%
leaky = lab.run("leaky")
with labkit_style():
    nb.show(memory_timeline({"leaky": leaky.proc}, title="RSS of the leaky pool over time"))
    nb.show(top_sites(leaky.memray.allocations_at_peak))

# %% [markdown]
# **Reading it.** RSS climbs for as long as requests arrive. memray's high-water mark points
# at one line: the `buf += ...` in `serve`, where each response is appended to whatever the
# buffer already held. The flamegraph below (memray, rendered offline) shows the same.

# %%
nb.memray_flamegraph(leaky)

# %% [markdown]
# ## Explain
# Nothing frees a pooled buffer's contents: every response ever written stays appended.
# The pool also never shrinks, so a burst of 16 concurrent requests leaves 16 buffers
# behind for good. Go's version kept capacity; Python's `bytearray` keeps the bytes too,
# and serves stale data to the next request: a correctness bug as well as a leak.

# %% [markdown]
# ## Run the fixed variant, and compare

# %%
fixed = lab.run("fixed")
with labkit_style():
    nb.show(memory_timeline({"leaky": leaky.proc, "fixed": fixed.proc}))
nb.table(lab.signature())

# %% [markdown]
# ## Exercise check

# %%
from labkit.scenarios.measure import metrics_frame

retained_mib = metrics_frame(leaky).retained_bytes.max() / 2**20
nb.check(prediction_mib, retained_mib, rel=0.3, what="MiB retained by the leaky pool")
