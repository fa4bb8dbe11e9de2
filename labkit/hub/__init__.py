"""``labkit hub``: a class on one machine with JupyterHub.

One local Unix user and home per learner with the lab's notebooks, per-learner caps on
memory, CPU and processes through cgroups (:mod:`labkit.hub.caps` says which hold), a
room-wide shared password, idle culling and the lab's JupyterLab settings. The modules that
import jupyterhub (:mod:`labkit.hub.auth`, :mod:`labkit.hub.spawner`) are loaded by
JupyterHub only; importing this package starts nothing and needs no jupyterhub.
"""
