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
# # A fleet: which pods grew, and is it the same line on all of them?
#
# An incident rarely lives on one host. The pager says "memory is up on some pods"; the
# questions are which pods, whether it is the same allocation site on every one of them,
# and whether it follows load. Asking each pod's capture in turn is slow and easy to get
# wrong. `labkit.fleet` exports every run to Parquet (once, into a cache) and asks DuckDB,
# in this process, the same questions across all of them. The Parquet files are what a
# platform would collect; the README shows the main query for Spark.
#
# The recorded fleet in `datasets/fleet` is 20 pods of the pool-misuse service, each
# labelled at capture (`labkit run ... --label host=pod-07 --label release=... --label
# requests=...`) and each serving a different number of requests. Two releases are
# deployed. Before you look: how many of the pods will show an allocation site that grew
# during the run? Set `predicted_growing_nodes`.

# %% tags=["parameters"]
paths = None  # run directories, folders of runs or Parquet exports (None: datasets/fleet)
by = "requests"  # the numeric label that measures load (None: each run's duration)
group = "release"  # the label that splits the fleet in the chart (a release, a zone)
predicted_growing_nodes = None  # how many pods will show a site that grew?
replay = False  # kept for symmetry: a fleet always reads recorded runs

# %%
import labkit
from labkit import notebook as nb
from labkit.charts import fleet_scatter, labkit_style
from labkit.units import human_bytes

nb.predict_first({"predicted_growing_nodes": predicted_growing_nodes})
source = paths or nb.DATASETS / "fleet"
print(f"fleet: {source}")
fl = labkit.fleet(source, by=by)
fl

# %% [markdown]
# ## The fleet at a glance
# One row per run, from the `runs` frame: what the run held at its peak, its threads and
# fds, its share of time in GC, and the postmortem's top suspect with its score (the share
# of a symptom that line explains, 0 to 1).

# %%
runs = fl.runs
label = f"label_{group}" if group and f"label_{group}" in runs else None
cols = ["node", *([label] if label else []), "load", "memray_peak_bytes", "rss_peak_bytes",
        "threads_max", "fds_max", "gc_share", "top_function", "top_line", "top_score"]
view = runs[cols].sort_values("memray_peak_bytes", ascending=False)
nb.readable(view.rename(columns={"load": by or "duration_s"}))

# %%
with labkit_style():
    nb.show(fleet_scatter(runs, group=label, xlabel=by or "run duration (s)",
                          title="Heap at the peak of every pod, against its load",
                          named=fl.verdict().grew_on))

# %% [markdown]
# ## Which sites grew, and where
# A site is a line of the pods' own code (the first frame outside the standard library and
# installed packages). It *grew* on a node when what it held rose steadily during the run
# (1 MiB or more, counted as the postmortem counts growth). `bytes_per_load` is the slope
# of its bytes at the peak against the load label, over the nodes where it grew; `r`, how
# straight that line is.

# %%
sites = fl.growing_sites()
nb.readable(sites)

# %%
if len(sites):
    top = sites.iloc[0]
    where = fl.nodes_where(top.function, int(top.line))
    releases = sorted(set(runs[runs.node.isin(where)][label])) if label else []
    nb.md(f"`{top.function}` ({top.file}:{top.line}) grew on **{len(where)} of "
          f"{runs.node.nunique()}** pods: {', '.join(where)}"
          + (f", all on {group} {', '.join(releases)}" if len(releases) == 1 else "")
          + f". Each unit of {by or 'uptime'} left about "
          f"{human_bytes(top.bytes_per_load)} more at the peak (r = {top.r:.2f}).")
else:
    nb.md("No site of the pods' code grew on two nodes or more.")

# %% [markdown]
# ## Outlier nodes
# A node is an outlier in a measure when it is far above the fleet's median: a robust
# z-score (median and MAD, the median distance from the median) over 3.5, and past a floor
# so that 4 fds against 3 is never news. Where most nodes are alike, the MAD is 0 and `z`
# has no value: then 1.5 times the median counts.

# %%
nb.readable(fl.outliers())

# %% [markdown]
# ## Is the top suspect the same everywhere?
# Every run's postmortem names a top suspect. The same line can lead on a healthy pod and
# on a leaking one: on the healthy pod it is merely where most of a small heap was, and its
# score says so. `nodes_strong` counts the pods where it explains half a symptom or more.

# %%
nb.readable(fl.top_suspects())

# %% [markdown]
# ## Your own questions
# Every frame of every run is a view (`runs`, `suspects`, `memray_peak`, `memray_growth`,
# `gc_events`, `proc`, ...) and `fleet_runs` adds `node` and `load`. For example, the heap
# at the peak by release:

# %%
if label:
    print(fl.sql(f"SELECT {label} AS {group}, COUNT(*) AS pods, "
                 "MEDIAN(memray_peak_bytes) / 1048576 AS median_peak_mib, "
                 "MAX(memray_peak_bytes) / 1048576 AS max_peak_mib "
                 f"FROM fleet_runs GROUP BY 1 ORDER BY 1").round(1).to_string(index=False))

# %% [markdown]
# ## Past one machine
# With thousands of captures, point Spark or Trino at the same Parquet files
# (`labkit export RUN --to parquet --out fleet/` per run). This is the query behind
# "which sites grew", as it runs here on DuckDB and unchanged on Spark (the README shows the
# two views it needs):

# %%
from labkit.fleetdb import GROWING_SITES_SQL

print(GROWING_SITES_SQL)

# %% [markdown] tags=["learner"]
# ## Exercise check

# %% tags=["learner"]
grown = len(fl.nodes_where(sites.iloc[0].function, int(sites.iloc[0].line))) if len(sites) \
    else 0
nb.check(predicted_growing_nodes, grown, rel=0.01, what="number of pods where a site grew")
