"""Capture backends. Each writes files into a run directory; ``labkit.frames`` reads them back.

In-process backends (``gctrace``, memray) run inside the traced interpreter; outside backends
(``proc``, py-spy) watch it by pid. ``session`` starts a program with any combination of them.
"""

MEMRAY_FILE = "memray.bin"  # memray's capture in a run directory (labkit.artifacts.MEMRAY)
