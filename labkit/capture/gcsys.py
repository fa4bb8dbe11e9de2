"""The GC tracer's sampler reads and writes without letting go of the GIL.

Every ``os.pread``/``write`` releases the GIL and must take it back; while the program's
main thread is busy, taking it back forces a hand-off (the sampler waits up to the switch
interval, the main thread drops the GIL and waits to get it back), and on a loaded machine
each hand-off waits for the scheduler too. The sampler's calls are short (``/proc/self/statm``,
an append to a regular file), so it makes them through libc with ``ctypes.PyDLL``, which
keeps the GIL: one hand-off a wake-up instead of two or three. Where libc cannot be loaded
this falls back to ``os``. Standard library only (loaded by path, like ``gctrace``).
"""

from __future__ import annotations

import ctypes
import os
from typing import Any


class HeldCalls:
    """``pread`` and ``write`` on raw descriptors, holding the GIL when libc allows."""

    def __init__(self) -> None:
        self._buf = ctypes.create_string_buffer(256)
        try:
            libc = ctypes.PyDLL(None, use_errno=True)
            self._pread, self._write = libc.pread, libc.write
        except (OSError, AttributeError):
            self._pread = self._write = None
            return
        self._pread.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_long]
        self._write.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
        self._pread.restype = self._write.restype = ctypes.c_ssize_t

    @property
    def holds_gil(self) -> bool:
        """Whether the calls go through libc with the GIL held (else through ``os``)."""
        return self._pread is not None

    def pread(self, fd: int, n: int) -> bytes:
        """Up to ``n`` (<= 256) bytes from offset 0 of ``fd``."""
        if self._pread is None:
            return os.pread(fd, n, 0)
        got = self._pread(fd, self._buf, min(n, 256), 0)
        if got < 0:
            raise OSError(ctypes.get_errno(), "pread")
        return self._buf.raw[:got]

    def write_all(self, fd: int, data: Any) -> None:
        """Write every byte of ``data`` (bytes, or a writable buffer such as an array's)."""
        view = memoryview(data).cast("B")
        while view:
            if self._write is None or view.readonly:
                done = os.write(fd, view)
            else:
                ptr = ctypes.addressof(ctypes.c_char.from_buffer(view))
                done = self._write(fd, ptr, len(view))
                if done < 0:
                    raise OSError(ctypes.get_errno(), "write")
            view = view[done:]
