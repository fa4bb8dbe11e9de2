"""The kernel manager a report runs its notebook with: the kernel process's own log (its
stderr) is dropped, so a report stopped by Ctrl-C or SIGTERM ends with labkit's one line,
not the kernel's tracebacks about its closed sockets. The cells' own stderr still reaches
the notebook (it travels over the kernel's messages, not this stream)."""

from __future__ import annotations

import subprocess
from typing import Any

from jupyter_client.manager import AsyncKernelManager


class QuietKernelManager(AsyncKernelManager):
    """:class:`AsyncKernelManager` starting the kernel with its stderr on ``/dev/null``."""

    async def _async_pre_start_kernel(self, **kw: Any) -> tuple[list[str], dict[str, Any]]:
        kw.setdefault("stderr", subprocess.DEVNULL)
        return await super()._async_pre_start_kernel(**kw)
