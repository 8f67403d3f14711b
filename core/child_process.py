"""Worker processes that die with the process that started them.

A pool's worker processes are started by a sweep's driver. If the driver is killed (kill -9,
out of memory), nothing tells them: they would train on, orphaned, holding memory and cores.
On Linux the kernel can do it (PR_SET_PDEATHSIG). The request must be made before the
worker does anything slow, so this module imports nothing heavy: a spawned child unpickles
`pool_initializer` from here before it loads torch or the rest of the project.
"""

from __future__ import annotations

import os
import signal
import sys

__all__ = ["die_with_parent", "pool_initializer"]


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies; exit at once if the
    parent (`parent_pid`) is already gone. Elsewhere than Linux this does nothing, and the
    driver's own shutdown still stops its pool."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except OSError:
        return
    if os.getppid() != parent_pid:  # the parent died before the request took hold
        os._exit(1)


def pool_initializer(threads: int, parent_pid: int) -> None:
    """A local pool worker's set-up: die with the driver first, then take its share of cores."""
    die_with_parent(parent_pid)
    from core.jobs._task import limit_threads

    limit_threads(threads)
