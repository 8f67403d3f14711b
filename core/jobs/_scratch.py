"""Temporary folders that outlive no one: each is named for the process that made it, and
making one first removes those of the same kind whose process has died.

A worker's or a pool's folder keeps trained first stages (megabytes each) and stop files; it
is removed when its owner ends, but an owner killed outright (SIGKILL, out of memory, a
power cut) cannot, and the next owner on the machine tidies after it."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from core.store import pid_alive

__all__ = ["scratch_folder"]


def scratch_folder(kind: str) -> str:
    """A new folder `tailscope-<kind>-<pid>-…` in the system's temp folder, after removing
    this user's folders of that kind whose process no longer runs. A folder whose name
    carries no process id (an older version's) is left alone: nothing says it is free."""
    prefix = f"tailscope-{kind}-"
    for old in Path(tempfile.gettempdir()).glob(prefix + "*"):
        pid = old.name[len(prefix):].split("-", 1)[0]
        try:
            mine = old.is_dir() and not old.is_symlink() and old.stat().st_uid == os.getuid()
        except OSError:
            continue  # removed meanwhile by its owner or another tidier
        if mine and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-")
