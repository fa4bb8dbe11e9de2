"""Starting :mod:`labkit.frames.memray_worker`'s passes over a memray capture, with nothing
heavy imported: :class:`labkit.frames.memray.MemrayCapture` starts its workers here, and a
command whose critical path is memray's passes (an export) starts them with
:func:`start_first` before it imports memray's frames, the run's machinery or pandas."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from labkit.capture.children import set_pdeathsig

# run by path, with -P so that this folder (which has a memray.py) is not on its sys.path
WORKER = Path(__file__).with_name("memray_worker.py")


def spawn(command: str, path: Path) -> subprocess.Popen[bytes]:
    """The worker's pass ``command`` over ``path`` in a second process (``python -P`` by
    the file's path: it imports memray and nothing of labkit), its result on its stdout, a
    pipe; it gets SIGKILL when this process dies."""
    return subprocess.Popen([sys.executable, "-P", str(WORKER), command, str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            preexec_fn=set_pdeathsig)


def stop(workers: dict[str, subprocess.Popen[bytes]]) -> None:
    """Kill each of ``workers`` still running and reap it, emptying ``workers``."""
    while workers:
        _, w = workers.popitem()
        if w.poll() is None:
            w.kill()
        w.communicate()


def planned(*, held_in_background: bool = True, churn_in_background: bool = False,
            stats_in_background: bool = False, open_here: bool = True
            ) -> list[tuple[str, str]]:
    """The workers a :class:`~labkit.frames.memray.MemrayCapture` made with these flags
    starts, in order, ``(task, command)`` each: with ``open_here`` False, the held and the
    churn passes come from one opening of the file (``held_churn``, whose result gives the
    churn task's too), and without the held pass the ``peak`` pass opens it."""
    held_churn = held_in_background and churn_in_background and not open_here
    plan = [("held", "held_churn" if held_churn else "held")] if held_in_background else []
    if churn_in_background and not held_churn:
        plan.append(("churn", "churn"))
    if stats_in_background:
        plan.append(("stats", "stats"))
    if not open_here and not held_in_background:
        plan.append(("peak", "peak"))
    return plan


class Started:
    """The passes ``passes`` (:class:`~labkit.frames.memray.MemrayCapture`'s
    ``*_in_background`` flags) started over ``path`` before the capture is opened, memray
    opened in the workers only: ``MemrayCapture.from_started`` hands them to the capture,
    :meth:`close` stops those not handed over (as does dropping it)."""

    def __init__(self, path: Path, passes: dict[str, bool]) -> None:
        self.path, self.passes = path, dict(passes)
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for task, command in planned(open_here=False, **self.passes):
                self.workers[task] = spawn(command, path)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop every worker not handed to a capture, and reap it."""
        stop(self.workers)

    def __del__(self) -> None:
        self.close()


def start_first(path: Path, passes: dict[str, bool]) -> Started | None:
    """``passes`` started over ``path`` (a run's memray capture) now, in workers
    (:class:`Started`); None when it is not a regular file this process can read, or the
    workers cannot start (whatever is wrong is said when the run is read). For a caller
    whose critical path is memray's passes."""
    if path.is_symlink() or not path.is_file():
        return None
    try:
        path.open("rb").close()
        return Started(path, passes)
    except OSError:
        return None
