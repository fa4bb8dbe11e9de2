"""The learners' spawner: JupyterHub's LocalProcessSpawner, with each learner's server put
into the learner's cgroups (:mod:`labkit.hub.caps`) before it drops root.

Loaded by JupyterHub (``c.JupyterHub.spawner_class``); it imports jupyterhub. The server
joins the groups in the child, between fork and exec, so it and everything it starts
(kernels, the lab's captured programs) count against the learner's caps from their first
instruction: none can leave a v1 or v2 cgroup by forking.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import List, Unicode


class LabSpawner(LocalProcessSpawner):
    """A local server per learner, run as the learner, inside the learner's cgroups."""

    cgroup_dirs = List(Unicode(), help="hub cgroup folders; the server joins "
                       "<dir>/<user>/cgroup.procs in each").tag(config=True)

    def make_preexec_fn(self, name: str) -> Callable[[], None]:
        """Join the learner's cgroups, then become the learner."""
        become = super().make_preexec_fn(name)
        files = [os.path.join(d, name, "cgroup.procs") for d in self.cgroup_dirs]

        def preexec() -> None:
            for path in files:
                with open(path, "w") as fh:
                    fh.write(str(os.getpid()))
            become()

        return preexec
