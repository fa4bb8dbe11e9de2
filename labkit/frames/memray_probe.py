"""A damaged memray capture can crash memray's C++ reader (a segfault or an abort), which
no ``try`` catches. :func:`probe` makes every pass labkit makes over a capture in a child
process first; if the child dies by a signal, the capture is refused with one line instead
of taking the caller's process (a notebook's kernel, the CLI) down with it.

The passes run twice (once in the child) for the first read of each file in a process;
the verdict is cached by the file's identity (device, inode, size, mtime).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from labkit.capture.children import set_pdeathsig
from labkit.errors import CorruptCaptureError

_CODE = """
import sys, memray
from memray._memray import compute_statistics
memray.set_log_level(50)
path = sys.argv[1]
try:
    r = memray.FileReader(path)
    r.metadata
    list(r.get_memory_snapshots())
    records, _ = r.get_temporal_high_water_mark_allocation_records(merge_threads=True)
    for rec in records:
        rec.stack_trace()
    for rec in r.get_temporary_allocation_records(merge_threads=True, threshold=1):
        rec.stack_trace()
    seen = set()
    for rec in r.get_allocation_records():
        if rec.stack_id not in seen:
            seen.add(rec.stack_id)
            rec.stack_trace()
    compute_statistics(path)
except BaseException:
    sys.exit(3)  # an ordinary error: the reader in labkit's process reports it in one line
"""
_SAFE: set[tuple[int, int, int, int]] = set()


def probe(path: Path) -> None:
    """Raise a one-line :class:`CorruptCaptureError` if reading ``path`` kills memray's
    reader; return quietly otherwise (ordinary read errors are left to the caller)."""
    st = os.stat(path)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key in _SAFE:
        return
    cp = subprocess.run([sys.executable, "-c", _CODE, str(path)], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL, preexec_fn=set_pdeathsig, check=False)
    if cp.returncode < 0:
        try:
            name = signal.Signals(-cp.returncode).name
        except ValueError:
            name = f"signal {-cp.returncode}"
        raise CorruptCaptureError(f"{path} crashes memray's reader ({name}); the capture is "
                                  "damaged: re-capture it, or check you gave the right file")
    _SAFE.add(key)
