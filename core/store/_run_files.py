"""A run's files read back with their integrity checked: config.json, history.json,
metrics.json, eval.npz, model.safetensors and synthetic_rows.npz. A file that exists but cannot be read, or has
another shape than a run writes, raises RunFileDamaged naming the run and the file (a state
of that run, never a traceback); a missing file is "not yet"."""

from __future__ import annotations

import json
import zipfile
import zlib
from typing import Any

from core.artifacts import EvalArtifacts, MadeRows
from core.store._files import RunFileDamaged, RunFolder, read_json
from core.store._index import StoreIndex

__all__ = ["RunFilesMixin"]

_DAMAGE = (ValueError, KeyError, EOFError, OSError, zipfile.BadZipFile, zlib.error)


class RunFilesMixin(StoreIndex):
    """Reading and writing the files training leaves in a run's folder."""

    def _read_json(self, run_id: str, name: str, default: Any, kind: type) -> Any:
        """A run's JSON file; missing: `default`; unreadable or of the wrong shape: RunFileDamaged."""
        try:
            value = read_json(self.run_dir(run_id) / name, default=default)
        except _DAMAGE as exc:
            raise RunFileDamaged(run_id, name, _reason(exc)) from None
        if not isinstance(value, kind):
            raise RunFileDamaged(run_id, name, f"expected a JSON {kind.__name__}")
        return value

    def config_of(self, run_id: str) -> dict[str, Any]:
        return self._read_json(run_id, "config.json", None, dict)

    def history(self, run_id: str) -> list[dict[str, Any]]:
        rows = self._read_json(run_id, "history.json", [], list)
        bad = next((i for i, row in enumerate(rows) if not isinstance(row, dict)), None)
        if bad is not None:
            raise RunFileDamaged(run_id, "history.json", f"entry {bad + 1} is not an object")
        return rows

    def folder(self, run_id: str) -> RunFolder:
        """The run's folder as a writer of its training files."""
        return RunFolder(self.run_dir(run_id))

    def write_history(self, run_id: str, rows: list[dict[str, Any]]) -> None:
        self.folder(run_id).write_history(rows)

    def metrics(self, run_id: str) -> dict[str, Any]:
        metrics = self._read_json(run_id, "metrics.json", {}, dict)
        problem = _metrics_problem(metrics)
        if problem:
            raise RunFileDamaged(run_id, "metrics.json", problem)
        return metrics

    def write_metrics(self, run_id: str, metrics: dict[str, Any]) -> None:
        self.folder(run_id).write_metrics(metrics)

    def artifacts(self, run_id: str) -> EvalArtifacts:
        path = self.run_dir(run_id) / "eval.npz"
        if not path.exists():
            raise FileNotFoundError(f"run {run_id} has no evaluation arrays (status {self.get(run_id).status})")
        try:
            return EvalArtifacts.load(path)
        except _DAMAGE as exc:
            raise RunFileDamaged(run_id, "eval.npz", _reason(exc)) from None

    def made_rows(self, run_id: str) -> MadeRows | None:
        """The rows the run's resampler made (`synthetic_rows.npz`), or None when it made none."""
        path = self.run_dir(run_id) / "synthetic_rows.npz"
        if not path.exists():
            return None
        try:
            return MadeRows.load(path)
        except _DAMAGE as exc:
            raise RunFileDamaged(run_id, "synthetic_rows.npz", _reason(exc)) from None

    def write_artifacts(self, run_id: str, artifacts: EvalArtifacts) -> None:
        self.folder(run_id).write_artifacts(artifacts)

    def write_weights(self, run_id: str, model) -> None:
        self.folder(run_id).write_weights(model)

    def load_weights(self, run_id: str, model) -> None:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = self.run_dir(run_id) / "model.safetensors"
        if not path.exists():
            raise FileNotFoundError(f"run {run_id} has no stored model weights")
        try:
            model.load_state_dict(load_file(str(path)))
        except (*_DAMAGE, RuntimeError, SafetensorError) as exc:
            raise RunFileDamaged(run_id, "model.safetensors", _reason(exc)) from None


# The parts of metrics.json that readers index into, checked on every read: a file that parses
# but has another shape is damaged too (named as such), not a KeyError deep inside a page.
_METRICS_FIELDS: dict[str, type | tuple[type, ...]] = {
    "dataset": dict, "per_class": list, "groups": list, "ci": dict, "calibration": (dict, type(None)),
    "geometry": (dict, type(None)), "training": dict, "environment": dict, "posthoc": dict,
}
_METRICS_NUMBERS = ("accuracy", "balanced_accuracy", "f1_macro", "macro_f1", "gmean", "worst_class_recall", "mcc",
                    "cohen_kappa", "ece")


def _metrics_problem(metrics: dict[str, Any]) -> str | None:
    """Why `metrics` (read from metrics.json) cannot be what a run wrote, or None."""
    if not metrics:
        return None  # none written yet
    dataset = metrics.get("dataset")
    if not isinstance(dataset, dict):
        return "it has no 'dataset' section"
    for key in ("class_names", "groups"):
        if not isinstance(dataset.get(key), list):
            return f"'dataset.{key}' is not a list"
    if not isinstance(dataset.get("modality", ""), str):
        return "'dataset.modality' is not text"
    for key, kind in _METRICS_FIELDS.items():
        if key in metrics and not isinstance(metrics[key], kind):
            return f"'{key}' has the wrong type"
    for key in _METRICS_NUMBERS:
        if key in metrics and not isinstance(metrics[key], (int, float, type(None))):
            return f"'{key}' is not a number"
    for key in ("per_class", "groups"):
        if any(not isinstance(row, dict) for row in metrics.get(key, [])):
            return f"an entry of '{key}' is not an object"
    return None


def _reason(exc: BaseException) -> str:
    """A short cause without the library's internals: "truncated or not a valid archive"."""
    if isinstance(exc, (zipfile.BadZipFile, EOFError, zlib.error)):
        return "truncated or not a valid archive"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON at line {exc.lineno}"
    if isinstance(exc, KeyError):
        return f"the array {exc.args[0]!r} is missing"
    if isinstance(exc, UnicodeDecodeError):
        return "not text"
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
