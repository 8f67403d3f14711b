"""A ZIP of pictures with a `labels.csv` manifest beside them: columns `file` (the picture's
path, relative to the manifest's folder) and `labels` (the picture's findings, separated by
`|`, `;` or `,`). The archive goes through the same guards as a single-label picture ZIP
(`core.data._loaders`: size, member paths, decompression bombs, the pixel budget); the
labels are read by the caller (`core.data._multilabel_uploads`), so this module knows
archives and rows, not label matrices.

Decided here: every picture in the ZIP must be listed (an unlisted picture is refused, not
silently left out, so no case goes missing unnoticed), every listed file must be in the ZIP,
and a file is listed once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import PurePosixPath

import numpy as np
import pandas as pd

from core.data._errors import DataError, quoted, short_list
from core.data._loaders import MAX_UPLOAD_BYTES, _all_grey, _decode_pictures, _is_picture, _open_zip, _pixels_as_input, _safe_members
from core.data._tables import read_table

__all__ = ["MANIFEST_NAME", "PictureManifest", "zip_has_label_manifest", "read_picture_manifest",
           "manifest_labels"]

MANIFEST_NAME = "labels.csv"
_FILE, _LABELS = "file", "labels"


@dataclass(frozen=True)
class PictureManifest:
    """The pictures (N, C, size, size) in [0, 1] in the manifest's row order, each row's
    labels as the caller read them, and each picture's path."""

    x: np.ndarray
    y: np.ndarray
    label_names: tuple[str, ...]
    files: tuple[str, ...]


def _manifests(members) -> list:
    return [m for m in members if PurePosixPath(m.filename).name.lower() == MANIFEST_NAME
            and not any(p.startswith((".", "__MACOSX")) for p in PurePosixPath(m.filename).parts)]


def zip_has_label_manifest(data: bytes, filename: str) -> bool:
    """Whether a ZIP holds a `labels.csv` (a multi-label picture ZIP); a damaged or unsafe
    archive is False here and refused, in words, by whichever loader reads it."""
    if PurePosixPath(filename).suffix.lower() != ".zip":
        return False
    try:
        with _open_zip(data, filename) as archive:
            return bool(_manifests(_safe_members(archive, filename)))
    except DataError:
        return False


def _column(frame: pd.DataFrame, name: str, where: str) -> str:
    found = next((c for c in frame.columns if str(c).strip().lower() == name), None)
    if found is None:
        raise DataError(f"{where} has no column {quoted(name)}; its columns are "
                        f"{short_list([quoted(c) for c in frame.columns], 5)}. Name the columns file and labels.")
    return found


def _listed_files(files: pd.Series, where: str, first_row: int) -> list[str]:
    """Each row's picture path, cleaned (`./a.png` is `a.png`); an empty or repeated one refused."""
    paths, seen = [], {}
    for i, value in enumerate(files):
        text = "" if pd.isna(value) else str(value).strip()
        path = str(PurePosixPath(text)) if text else ""
        if not path or path == ".":
            raise DataError(f"{where}, row {i + first_row}: the file cell is empty; name the picture or remove the row.")
        if path in seen:
            raise DataError(f"{where}, rows {seen[path]} and {i + first_row} both list {quoted(path, 40)}; keep one row "
                            "per picture, with all its labels in it.")
        seen[path] = i + first_row
        paths.append(path)
    return paths


def _open_manifest(data: bytes, filename: str):
    """(archive, its checked members, the parsed labels.csv, its folder, "file: labels.csv")."""
    archive = _open_zip(data, filename)
    members = _safe_members(archive, filename)
    found = _manifests(members)
    if not found:
        raise DataError(f"{filename}: no {MANIFEST_NAME} found; add one with columns file and labels beside the "
                        "pictures.")
    if len(found) > 1:
        raise DataError(f"{filename}: holds {len(found)} files named {MANIFEST_NAME} "
                        f"({short_list([quoted(m.filename, 40) for m in found], 2)}); keep one.")
    manifest = found[0]
    folder = PurePosixPath(manifest.filename).parent
    where = f"{filename}: {manifest.filename}"  # ends in .csv, as read_table wants
    if manifest.file_size > MAX_UPLOAD_BYTES:
        raise DataError(f"{where}: {manifest.file_size / 1024**2:.0f} MB is over the {MAX_UPLOAD_BYTES // 1024**2} MB "
                        "limit for a table; it should hold one short row per picture.")
    raw = read_table(archive.read(manifest), where)
    return archive, members, raw, folder, where


def manifest_labels(data: bytes, filename: str) -> pd.Series:
    """The labels column of a picture ZIP's `labels.csv`, as written (to find its separator)."""
    _, _, raw, _, where = _open_manifest(data, filename)
    return raw.frame[_column(raw.frame, _LABELS, where)]


def read_picture_manifest(data: bytes, filename: str,
                          read_labels: Callable[[pd.Series, str, int], tuple[np.ndarray, tuple[str, ...]]], *,
                          size: int = 32, grayscale: bool | None = None) -> PictureManifest:
    """The ZIP's pictures in `labels.csv` order, with `read_labels(labels column, where,
    first row)` turning the labels column into (label matrix, names) before any picture is
    decoded, so a labelling mistake is reported at once."""
    archive, members, raw, folder, where = _open_manifest(data, filename)
    file_col, labels_col = _column(raw.frame, _FILE, where), _column(raw.frame, _LABELS, where)
    files = _listed_files(raw.frame[file_col], where, raw.first_row)
    y, names = read_labels(raw.frame[labels_col], where, raw.first_row)
    pictures = {}
    for m in members:
        path = PurePosixPath(m.filename)
        if _is_picture(path):
            inside = path.is_relative_to(folder) if str(folder) != "." else True
            pictures[str(path.relative_to(folder)) if inside else m.filename] = m
    missing = [(i, f) for i, f in enumerate(files) if f not in pictures]
    if missing:
        i, f = missing[0]
        raise DataError(f"{where}, row {i + raw.first_row} names {quoted(f, 40)}, which is not a picture in the ZIP"
                        f"{f' ({len(missing) - 1:,} more such rows)' if len(missing) > 1 else ''}; check the name and "
                        "its folder (relative to labels.csv), or remove the row.")
    listed = set(files)
    unlisted = [p for p in pictures if p not in listed]
    if unlisted:
        raise DataError(f"{filename}: picture {short_list([quoted(p, 40) for p in unlisted], 2)} "
                        f"{'is' if len(unlisted) == 1 else 'are'} not listed in {MANIFEST_NAME}; add a row for each "
                        "picture, or remove it from the ZIP.")
    pixels, modes = _decode_pictures([(f, partial(archive.open, pictures[f])) for f in files], filename, size)
    x = _pixels_as_input(pixels, _all_grey(modes) if grayscale is None else grayscale)
    return PictureManifest(x, y, names, tuple(files))

