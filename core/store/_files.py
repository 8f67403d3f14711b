"""Atomic file writes: a temp file in the same folder, then `os.replace`."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["write_bytes_atomic", "write_json_atomic", "read_json", "RunFolder", "RUN_FILES", "RunFileDamaged"]

RUN_FILES = ("metrics.json", "history.json", "eval.npz", "model.safetensors", "synthetic_rows.npz")  # what training produces


class RunFileDamaged(Exception):
    """A run's file exists but cannot be read (truncated, corrupted, edited by hand): a state
    of that run, shown as such, never a traceback; other runs are unaffected."""

    def __init__(self, run_id: str, file: str, reason: str):
        super().__init__(run_id, file, reason)
        self.run_id, self.file, self.reason = run_id, file, reason

    def __str__(self) -> str:
        return (f"run {self.run_id}: its file {self.file} is damaged ({self.reason}); re-run the run or delete "
                "it")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, obj: Any) -> None:
    write_bytes_atomic(path, json.dumps(obj, indent=1, allow_nan=True).encode())


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default


class RunFolder:
    """The files one training writes, in one folder: a run folder of the store, or a scratch
    folder of a remote task whose files the sweep driver then commits to the store."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    def write_history(self, rows: list[dict[str, Any]]) -> None:
        write_json_atomic(self.path / "history.json", rows)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        write_json_atomic(self.path / "metrics.json", metrics)

    def write_artifacts(self, artifacts) -> None:
        artifacts.save(self.path / "eval.npz")

    def write_made_rows(self, made) -> None:
        """The rows the resampler made (`MadeRows`); a training that made none removes an old file."""
        path = self.path / "synthetic_rows.npz"
        if made is None:
            path.unlink(missing_ok=True)
        else:
            made.save(path)

    def write_weights(self, model) -> None:
        from safetensors.torch import save_file

        path = self.path / "model.safetensors"
        tmp = path.with_suffix(".tmp")
        save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp))
        tmp.replace(path)

    def read_files(self) -> dict[str, bytes]:
        """The finished files as bytes, to ship from a task back to the driver."""
        return {name: (self.path / name).read_bytes() for name in RUN_FILES if (self.path / name).exists()}

    def write_files(self, files: dict[str, bytes]) -> None:
        """Commit shipped files, each atomically; only the known run files are accepted."""
        unknown = set(files) - set(RUN_FILES)
        if unknown:
            raise ValueError(f"not run files: {sorted(unknown)}")
        for name in RUN_FILES:  # metrics last: a reader that sees them sees the rest
            if name in files and name != "metrics.json":
                write_bytes_atomic(self.path / name, files[name])
        if "metrics.json" in files:
            write_bytes_atomic(self.path / "metrics.json", files["metrics.json"])
