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
# # The room: what every learner predicted, measured and checked
#
# For the trainer. Each learner's notebooks record their predictions, runs, signatures and
# exercise checks in their home (`~/.labkit/records/`); this notebook reads a folder of
# homes (`ROOM/<learner>/.labkit/records/`) or of records folders (`ROOM/<learner>/`) and
# shows the room. Run it again (or `labkit class ROOM --html room.html`) as the class goes on.

# %% tags=["parameters"]
room_dir = None  # the folder of learners' homes; None: $LABKIT_ROOM, else /home

# %%
import os
from pathlib import Path

from labkit import notebook as nb
from labkit.analysis.room import room
from labkit.charts import labkit_style
from labkit.charts.room import prediction_spread, status_counts

where = Path(room_dir or os.environ.get("LABKIT_ROOM", "/home"))
rm = room(where)
nb.md(f"**{rm.headline()}** (`{where}`)")
for line in rm.skipped:
    print(line)

# %% [markdown]
# ## Who has not run yet

# %%
nb.md(", ".join(rm.not_run) if rm.not_run else "*Everyone has run a scenario.*")

# %% [markdown]
# ## Whose run did not reproduce the lesson, and why

# %%
rm.not_reproduced[["learner", "scenario", "mode", "reason"]] if len(rm.not_reproduced) \
    else nb.md("*Every signature measured so far held.*")

# %% [markdown]
# ## Predictions against the measured value

# %%
if len(rm.exercises):
    with labkit_style():
        nb.show(prediction_spread(rm.checks, rm.exercises))
else:
    nb.md("*No exercise has been checked yet.*")

# %% [markdown]
# ## Every learner, every scenario

# %%
if len(rm.status):
    with labkit_style():
        nb.show(status_counts(rm.status))
rm.status.drop(columns=["reason"]).style.hide(axis="index")
