"""What a learner sees when Run All stops for a prediction, in JupyterLab.

Run All stops at the cell that raised, but JupyterLab leaves the view where it was (often
the last cell, with empty prompts), so the message is off-screen and nothing seems to have
run. :func:`stop_bundle` is a display output for that cell: JupyterLab runs it (an
``application/javascript`` output of the running session is trusted) and it scrolls to and
selects its own cell and, when ``labkit lab`` exposed the app
(``--LabApp.expose_app_in_browser=True``, as ``window.jupyterapp``), shows a notification.
Without the app it still scrolls its cell into view; other front ends ignore it.
"""

from __future__ import annotations

import json
from typing import Any

NOTIFY = "apputils:notify"  # JupyterLab 4's command for a notification toast

_SCRIPT = """(function (element) {
  const message = %(message)s;
  const app = window.jupyterapp;
  let done = false;
  function select() {  // the output is attached to its cell after this script runs
    const cell = element && element.closest ? element.closest(".jp-Cell") : null;
    if (!cell || !cell.isConnected) return;
    let notebook = null;
    if (app && app.shell) {
      for (const w of app.shell.widgets("main")) {
        if (w.content && w.content.widgets && w.node.contains(cell)) notebook = w.content;
      }
    }
    const i = notebook ? notebook.widgets.findIndex((c) => c.node === cell) : -1;
    if (i >= 0 && done && notebook.activeCellIndex <= i) return;  // the learner moved up
    if (i >= 0) {
      done = true;
      notebook.deselectAll();
      notebook.activeCellIndex = i;
      notebook.mode = "command";
      notebook.scrollToItem(i, "center").catch(() => cell.scrollIntoView({block: "center"}));
    } else {
      cell.scrollIntoView({block: "center"});
    }
  }
  // Run All moves the active cell on after the error arrives (later on a busy machine):
  // select again while it settles, unless the learner has moved above the stop since
  [50, 500, 1500, 3000, 6000, 10000].forEach((ms) => setTimeout(select, ms));
  if (app && app.commands && app.commands.hasCommand(%(notify)s)) {
    app.commands.execute(%(notify)s, {message: message, type: "warning",
                                      options: {autoClose: 30000}});
  }
})(typeof element === "undefined" ? null : element);
"""


def stop_script(message: str) -> str:
    """The JavaScript that scrolls to and selects its own cell and notifies ``message``."""
    return _SCRIPT % {"message": json.dumps(message), "notify": json.dumps(NOTIFY)}


def stop_bundle(message: str) -> dict[str, Any]:
    """A display bundle of :func:`stop_script` (show it with ``display(..., raw=True)``)."""
    return {"application/javascript": stop_script(message)}
