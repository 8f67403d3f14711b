"""Resolve a config's data `source` to a Dataset: a built-in name or a stored upload.

Uploads are stored once under `TAILSCOPE_HOME/uploads/`, named by the SHA-256 of their
bytes, so a run's config refers to exactly the data it saw.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.config import UPLOAD_PREFIX, source_values
from core.data._builtins import DATASETS, load_builtin
from core.data._dataset import Dataset
from core.data._loaders import DataError, _check_size, load_upload
from core.data._tables import RawTable, read_table
from core.paths import tailscope_home

__all__ = ["save_upload", "upload_source", "upload_path", "load_source", "read_stored_table", "describe_source",
           "source_label", "UPLOAD_PREFIX", "StoredUpload", "list_uploads", "remove_upload", "unused_uploads",
           "keep_if_accepted", "sources_of"]

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _uploads() -> Path:
    return tailscope_home() / "uploads"


def upload_source(data: bytes, filename: str) -> str:
    """The `upload:<sha256 prefix>-<safe name>` source these bytes are (or would be) stored as."""
    digest = hashlib.sha256(data).hexdigest()[:16]
    name = _SAFE_NAME.sub("_", PurePosixPath(filename).name)[-80:] or "upload"
    return f"{UPLOAD_PREFIX}{digest}-{name}"


def save_upload(data: bytes, filename: str) -> str:
    """Store the bytes content-addressed; returns the source string for a config."""
    _check_size(data, filename)
    source = upload_source(data, filename)
    folder = _uploads()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / source[len(UPLOAD_PREFIX):]
    if not path.exists():
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return source


def upload_path(source: str) -> Path:
    """Where a stored upload lives; DataError for a malformed or vanished reference."""
    stored = source[len(UPLOAD_PREFIX):] if source.startswith(UPLOAD_PREFIX) else ""
    if not stored or "/" in stored or "\\" in stored or stored.startswith("."):
        raise DataError(f"{source}: not a valid upload reference.")
    path = _uploads() / stored
    if not path.is_file():
        raise DataError(f"{source_label(source)}: the uploaded file is no longer stored; upload it again.")
    return path


def read_stored_table(source: str) -> RawTable:
    """A stored table upload, parsed once (the Data page caches this and builds from it)."""
    return read_table(upload_path(source).read_bytes(), source_label(source))


def load_source(source: str, params: dict | None = None, label_column: str | None = None,
                roles: Mapping[str, str] | None = None, missing: str = "refuse", *,
                merge_labels: bool | None = None) -> Dataset:
    """A built-in by name, or a stored upload (`roles` and `missing` apply to tables,
    `merge_labels` to every upload)."""
    if source.startswith(UPLOAD_PREFIX):
        return load_upload(upload_path(source).read_bytes(), source_label(source), label_column, roles, missing,
                           merge_labels=merge_labels)
    return load_builtin(source, params)


@dataclass(frozen=True)
class StoredUpload:
    """One stored upload: its source string, the file's own name, size and time stored."""

    source: str
    name: str
    size: int
    modified: float


def list_uploads() -> list[StoredUpload]:
    """Every stored upload, newest first."""
    folder = _uploads()
    if not folder.is_dir():
        return []
    found = [StoredUpload(f"{UPLOAD_PREFIX}{p.name}", source_label(f"{UPLOAD_PREFIX}{p.name}"), p.stat().st_size,
                          p.stat().st_mtime)
             for p in folder.iterdir() if p.is_file() and not p.name.endswith(".tmp") and not p.name.startswith(".")]
    return sorted(found, key=lambda u: (-u.modified, u.source))


def remove_upload(source: str) -> bool:
    """Delete one stored upload; False when it was not there. The caller checks no run uses it."""
    try:
        path = upload_path(source)
    except DataError:
        return False
    path.unlink(missing_ok=True)
    return True


def sources_of(config: dict) -> list[str]:
    """Every source a run config (as saved, a dict) reads (`core.config.SOURCE_FIELDS`:
    its data and the unlabelled rows beside it), so no upload a run still needs is offered
    for removal."""
    return [value for _, value in source_values(config)]


def keep_if_accepted(data: bytes, filename: str, check: Callable[[str], object]) -> str:
    """Store an upload and run `check` on its source; when the check fails in any way (a
    refusal or an error nobody foresaw), the upload is removed again, unless these exact
    bytes were stored before (something else may use them), and the error goes on. So a
    rejected upload is never kept, whichever path stored it."""
    source = upload_source(data, filename)
    try:
        upload_path(source)
        fresh = False
    except DataError:
        fresh = True
    source = save_upload(data, filename)
    try:
        check(source)
    except BaseException:
        if fresh:
            remove_upload(source)
        raise
    return source


def unused_uploads(used_sources: Iterable[str]) -> list[StoredUpload]:
    """Stored uploads that none of `used_sources` (run configs, the saved data choice) names."""
    used = set(used_sources)
    return [u for u in list_uploads() if u.source not in used]


def source_label(source: str) -> str:
    """A source's short name for people: the uploaded file's own name, or the built-in's
    display words ("Handwritten digits"; the config and the CLI keep "digits")."""
    if source.startswith(UPLOAD_PREFIX):
        return source[len(UPLOAD_PREFIX):].split("-", 1)[-1]
    return _builtin(source).label if _builtin(source) else source


def describe_source(source: str) -> str:
    """A source in a phrase: the uploaded file's name, or the built-in's one-line description."""
    if source.startswith(UPLOAD_PREFIX):
        return source_label(source)
    return _builtin(source).description if _builtin(source) else source


def _builtin(source: str):
    """A built-in's registry entry, single- or multi-label, or None."""
    from core.data._multilabel import MULTILABEL_DATASETS

    for registry in (DATASETS, MULTILABEL_DATASETS):
        if source in registry:
            return registry.info(source)
    return None
