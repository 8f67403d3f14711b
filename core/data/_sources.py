"""Resolve a config's data `source` to a Dataset: a built-in name or a stored upload.

Uploads are stored once under `TAILSCOPE_HOME/uploads/`, named by the SHA-256 of their
bytes, so a run's config refers to exactly the data it saw.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import PurePosixPath

from core.data._builtins import DATASETS, load_builtin
from core.data._dataset import Dataset
from core.data._loaders import DataError, _check_size, load_upload
from core.paths import tailscope_home

__all__ = ["save_upload", "load_source", "describe_source", "source_label", "UPLOAD_PREFIX"]

UPLOAD_PREFIX = "upload:"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def save_upload(data: bytes, filename: str) -> str:
    """Store the bytes content-addressed; returns the source string for a config."""
    _check_size(data, filename)
    digest = hashlib.sha256(data).hexdigest()[:16]
    name = _SAFE_NAME.sub("_", PurePosixPath(filename).name)[-80:] or "upload"
    folder = tailscope_home() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}-{name}"
    if not path.exists():
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return f"{UPLOAD_PREFIX}{path.name}"


def load_source(source: str, params: dict | None = None, label_column: str | None = None) -> Dataset:
    if source.startswith(UPLOAD_PREFIX):
        stored = source[len(UPLOAD_PREFIX):]
        if "/" in stored or "\\" in stored or stored.startswith("."):
            raise DataError(f"{source}: not a valid upload reference.")
        path = tailscope_home() / "uploads" / stored
        if not path.is_file():
            raise DataError(f"{source}: the uploaded file is no longer stored; upload it again.")
        original = stored.split("-", 1)[1] if "-" in stored else stored
        return load_upload(path.read_bytes(), original, label_column)
    return load_builtin(source, params)


def source_label(source: str) -> str:
    """A source's short name for people: the uploaded file's own name, or the built-in's name."""
    if source.startswith(UPLOAD_PREFIX):
        return source[len(UPLOAD_PREFIX):].split("-", 1)[-1]
    return source


def describe_source(source: str) -> str:
    """A source in a phrase: the uploaded file's name, or the built-in's one-line description."""
    if source.startswith(UPLOAD_PREFIX):
        return source_label(source)
    return DATASETS.info(source).description if source in DATASETS else source
