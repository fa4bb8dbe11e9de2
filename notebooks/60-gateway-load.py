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
# # Gateway under load: a thread and a connection per request
#
# **The incident (Go).** A gateway written with `net/http` (Go's standard HTTP server,
# which serves each connection in its own goroutine, Go's lightweight thread) was
# measured under `wrk` (an HTTP load generator) against nginx and Traefik: requests per
# second, latency, memory, start-up.
#
# **In Python.** The scenario process is a small stdlib HTTP proxy in front of an upstream
# process, both on 127.0.0.1, driven by a load generator bounded in requests and time.
# py-spy attaches to the proxy's pid while it serves. Leaky: a new thread and a new
# upstream connection per request. Fixed: a bounded worker pool, each worker keeping one
# keep-alive connection to the upstream.

# %% tags=["parameters"]
replay = False  # True: the recorded runs in datasets/ instead of a live capture
quick = True  # the quick preset (600 requests)
prediction_speedup = None  # exercise: requests/s of fixed divided by leaky

# %%
import pandas as pd

from labkit import notebook as nb
from labkit.charts import labkit_style, variant_bars
from labkit.scenarios.measure import metrics_frame

lab = nb.Scenario("gateway-load", replay=replay, quick=quick,
                 predictions={"prediction_speedup": prediction_speedup})

# %% [markdown] tags=["learner"]
# ## Predict
# Opening a loopback TCP connection and starting a thread each cost tens of microseconds,
# and the leaky proxy pays both on every request. How much faster will the fixed proxy
# serve the same load? Set `prediction_speedup`.

# %% [markdown]
# ## Run the leaky variant, and measure

# %%
leaky = lab.run("leaky")
nb.readable(metrics_frame(leaky).dropna(subset=["threads_started"])[
    ["done", "rps", "p50_ms", "p99_ms", "threads_started", "upstream_connections"]])

# %% [markdown]
# **Where the proxy spends its time** (py-spy, attached by pid while it served):

# %%
nb.readable(leaky.pyspy.functions.head(8))

# %%
nb.pyspy_flamegraph(leaky)

# %% [markdown]
# ## Explain
# Each request pays for a thread start and a TCP handshake to the upstream (and a
# `TIME_WAIT` socket afterwards). The fixed proxy pays them once per worker.

# %% [markdown]
# ## Run the fixed variant, and compare

# %%
fixed = lab.run("fixed")
done = {v: metrics_frame(r).dropna(subset=["rps"]).iloc[-1] for v, r in lab.runs.items()}
per_run = pd.DataFrame({v: {"requests served": d.done, "threads started": d.threads_started,
                            "upstream connections opened": d.upstream_connections,
                            "requests / s": d.rps} for v, d in done.items()}).T
with labkit_style():
    nb.show(variant_bars(per_run, title="The same load: what each proxy paid for it"),
            alt="Bars, leaky against fixed: requests served, threads started, upstream "
                "connections opened, requests per second")
nb.table(lab.signature())

# %% [markdown] tags=["learner"]
# ## Exercise check

# %% tags=["learner"]
nb.check(prediction_speedup, float(done["fixed"].rps / done["leaky"].rps), rel=0.4,
         what="requests/s of fixed divided by leaky")
