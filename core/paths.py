"""Where Tailscope keeps its data: `TAILSCOPE_HOME` (default `./tailscope-data`)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["tailscope_home"]


def tailscope_home() -> Path:
    home = Path(os.environ.get("TAILSCOPE_HOME", "tailscope-data")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home
