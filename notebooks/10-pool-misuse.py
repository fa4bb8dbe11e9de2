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
# **The incident (Go).** A service pooled `bytes.Buffer`s (Go's growable byte buffer,
# like a `bytearray`) with `sync.Pool` (Go's free list of reusable objects, like a
# `queue.SimpleQueue` of spare buffers) and put them back without `Reset()` (emptying
# them). Each buffer kept its grown capacity; the old generation filled and
# stop-the-world time (the pauses in which Go's collector halts every goroutine, Go's
# lightweight thread) rose non-linearly.
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

lab = nb.Scenario("pool-misuse", replay=replay, quick=quick,
                 predictions={"prediction_mib": prediction_mib})

# %% [markdown] tags=["learner"]
# ## Predict

# %%
p = lab.params
nb.md(f"This run serves **{p['requests']:,} requests** with responses of "
      f"{p['payload_kb'] // 2}-{p['payload_kb'] * 3 // 2} KiB ({p['payload_kb']} KiB on "
      f"average), borrowing up to {p['burst']} buffers at once. If nothing is ever reset, "
      "how many MiB will the pool hold at the end? Put your number in `prediction_mib` "
      "(parameters cell) before you run the next cells.")

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
# buffer already held. The flamegraph below shows the same.
#
# Four figures describe this one leak, each measuring something different:

# %%
from labkit.frames.memray import own_allocations
from labkit.scenarios.measure import metrics_frame
from labkit.units import human_bytes

retained = metrics_frame(leaky).retained_bytes.max()
at_peak = own_allocations(leaky.memray.allocations_at_peak)
serve = at_peak[at_peak.function == "serve"]["bytes"].sum()
figures = [
    ("retained by the pool", retained,
     "bytes in the pooled buffers at the end (the scenario's own count)"),
    ("held by `serve` at the peak", serve,
     "what memray saw that line holding at the high-water mark"),
    ("heap at the peak", leaky.memray.metadata.peak_memory,
     "all not yet freed then: the buffers, the interpreter's and the lab's own objects"),
    ("peak RSS", leaky.proc.rss_bytes.max(),
     "memory the process held from the OS: the heap, code, the allocator's free space"),
]
nb.md("| figure | value | what it counts |\n|---|---:|---|\n" + "\n".join(
    f"| {name} | {human_bytes(v)} | {what} |" for name, v, what in figures))

# %%
nb.memray_flamegraph(leaky)

# %% [markdown]
# ## Explain
# Nothing frees a pooled buffer's contents: every response ever written stays appended.
# The pool also never shrinks, so the largest burst of concurrent requests leaves that
# many buffers behind for good. Go's version kept capacity; Python's `bytearray` keeps the
# bytes too, and serves stale data to the next request: a correctness bug as well as a
# leak.

# %% [markdown]
# ## Run the fixed variant, and compare

# %%
fixed = lab.run("fixed")
with labkit_style():
    nb.show(memory_timeline({"leaky": leaky.proc, "fixed": fixed.proc}))
nb.table(lab.signature())

# %% [markdown] tags=["learner"]
# ## Exercise check

# %% tags=["learner"]
retained_mib = retained / 2**20
nb.check(prediction_mib, retained_mib, rel=0.3, what="MiB retained by the leaky pool")
