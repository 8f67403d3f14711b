"""What every command shares: strict JSON, one-line failures, the progress bar."""

from __future__ import annotations

import math
import sys
from typing import Any


def json_safe(value: Any) -> Any:
    """NaN and infinities as null: strict JSON (jq, JavaScript) has no NaN."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def fail(message: str, code: int = 2) -> int:
    print(f"tailscope: {message}", file=sys.stderr)
    return code


def progress_line(info: dict[str, Any]) -> None:
    stage = info.get("stage")
    if stage == "start":
        print(f"running {info['run']} ({info['name']})", file=sys.stderr)
        return
    fraction = float(info.get("fraction", 0.0))
    bar = "#" * int(fraction * 30)
    eta = info.get("eta_s")
    eta_text = f" eta {eta:5.0f}s" if isinstance(eta, (int, float)) and math.isfinite(eta) else ""
    where = f"epoch {info.get('epoch', '?')}/{info.get('epochs', '?')}" if "epochs" in info else ""
    phase = f"  ({info['phase'].split(':')[0]})" if info.get("phase") else ""  # semi-supervised rounds
    print(f"\r{stage:<9} {where:<14} [{bar:<30}] {fraction:4.0%}{eta_text}{phase}", end="", file=sys.stderr,
          flush=True)
    if stage in ("evaluate", "done"):
        print(file=sys.stderr)


def json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")


def multilabel_refusal(config: dict[str, Any], what: str) -> str | None:
    """Why `what` cannot run on this stored run's config: it is multi-label (several findings
    per case) and the command is built for one class per case; None otherwise."""
    from core.config import is_multilabel_data

    if is_multilabel_data(config.get("data") or {}):
        return (f"{what} works on runs with one class per case and this run is multi-label (several findings per "
                "case); `tailscope show RUN` gives its per-finding numbers")
    return None

