"""Loaders for user data: tables (CSV/Parquet), ZIPs of class folders, and `.npz` arrays.

Every upload is treated as hostile: sizes are capped before parsing, ZIP members are
checked for traversal and decompression bombs, `.npz` files never unpickle, and every
rejection names the file, row or column and says what to do.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Sequence
from pathlib import PurePosixPath

import numpy as np
import pandas as pd

from core.data._dataset import Dataset

__all__ = [
    "DataError", "MAX_UPLOAD_BYTES", "load_table", "guess_label_column", "load_image_zip",
    "load_npz", "load_upload",
]

MAX_UPLOAD_BYTES = 200 * 1024**2
MAX_UNPACKED_BYTES = 1024**3
MAX_MEMBERS = 100_000
MAX_COMPRESSION_RATIO = 200
MAX_TABLE_COLUMNS_AFTER_ENCODING = 2000
MIN_SAMPLES_PER_CLASS = 3
LABEL_NAMES = ("label", "labels", "target", "class", "y", "diagnosis", "outcome", "category")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
NPZ_NAMES = {  # our names, then MedMNIST's
    "x_train": ("x_train", "train_images"), "y_train": ("y_train", "train_labels"),
    "x_test": ("x_test", "test_images"), "y_test": ("y_test", "test_labels"),
}


class DataError(ValueError):
    """A user-facing problem with an uploaded file: the message says where and what to do."""


def _check_size(data: bytes, filename: str) -> None:
    if len(data) == 0:
        raise DataError(f"{filename}: the file is empty; choose a file with data in it.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise DataError(f"{filename}: {len(data) / 1024**2:.0f} MB is over the "
                        f"{MAX_UPLOAD_BYTES // 1024**2} MB limit; upload a smaller sample.")


def _check_labels(y_names: Sequence, filename: str, where: str) -> tuple[np.ndarray, tuple[str, ...]]:
    values = np.asarray(y_names)
    if np.issubdtype(values.dtype, np.number):  # numeric labels sort as numbers, not strings
        uniq, y = np.unique(values, return_inverse=True)
        names = np.asarray([str(int(v)) if float(v).is_integer() else str(v) for v in uniq])
    else:
        names, y = np.unique(np.asarray([str(v) for v in values]), return_inverse=True)
    if len(names) < 2:
        raise DataError(f"{filename}: {where} has only one class ({names[0] if len(names) else 'none'}); "
                        "a classifier needs at least two.")
    counts = np.bincount(y)
    small = [f"{names[i]!r} ({counts[i]})" for i in np.flatnonzero(counts < MIN_SAMPLES_PER_CLASS)]
    if small:
        raise DataError(f"{filename}: {where}: classes {', '.join(small)} have fewer than "
                        f"{MIN_SAMPLES_PER_CLASS} samples; add samples or remove those classes.")
    return y.astype(np.int64), tuple(str(n) for n in names)


# --- tables ---------------------------------------------------------------------------

def _check_field_counts(data: bytes, filename: str, delimiter: str) -> None:
    """Every row must have as many fields as the header; pandas would otherwise guess."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{filename}: not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV.") from None
    rows = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(rows, None)
    if not header:
        raise DataError(f"{filename}: the first line must be a header naming the columns.")
    for row in rows:
        if row and len(row) != len(header):
            raise DataError(f"{filename}: line {rows.line_num} has {len(row)} fields but the header has "
                            f"{len(header)}; fix that row or remove it.")


def _read_table(data: bytes, filename: str) -> pd.DataFrame:
    suffix = PurePosixPath(filename).suffix.lower()
    try:
        if suffix == ".parquet":
            return pd.read_parquet(io.BytesIO(data))
        if suffix in (".csv", ".txt", ".tsv"):
            delimiter = "\t" if suffix == ".tsv" else ","
            _check_field_counts(data, filename, delimiter)
            return pd.read_csv(io.BytesIO(data), sep=delimiter, index_col=False, encoding="utf-8-sig")
    except pd.errors.ParserError as exc:
        raise DataError(f"{filename}: could not be parsed ({exc}); check the quoting of that row.") from None
    except (ValueError, OSError) as exc:
        raise DataError(f"{filename}: could not be read as a {suffix[1:] or 'table'} file ({exc}).") from None
    raise DataError(f"{filename}: unsupported table type {suffix!r}; use .csv, .tsv or .parquet.")


def guess_label_column(columns: Sequence[str]) -> str:
    """A column named like a label (label, target, class, ...) or else the last one."""
    lowered = {str(c).strip().lower(): c for c in columns}
    for name in LABEL_NAMES:
        if name in lowered:
            return lowered[name]
    return columns[-1]


def load_table(data: bytes, filename: str, label_column: str | None = None) -> Dataset:
    """A table with one label column; numeric columns kept, text columns one-hot encoded."""
    _check_size(data, filename)
    frame = _read_table(data, filename)
    if frame.shape[0] == 0 or frame.shape[1] < 2:
        raise DataError(f"{filename}: needs a header, at least one feature column and a label "
                        f"column; found {frame.shape[1]} column(s) and {frame.shape[0]} row(s).")
    frame.columns = [str(c) for c in frame.columns]
    label_column = label_column or guess_label_column(list(frame.columns))
    if label_column not in frame.columns:
        raise DataError(f"{filename}: no column named {label_column!r}; columns are "
                        f"{', '.join(frame.columns[:20])}.")
    labels = frame[label_column]
    missing = np.flatnonzero(labels.isna().to_numpy())
    if len(missing):
        raise DataError(f"{filename}: row {missing[0] + 2} has no value in label column "
                        f"{label_column!r}; fill it in or delete the row.")
    y, class_names = _check_labels(labels.tolist(), filename, f"label column {label_column!r}")
    features = frame.drop(columns=[label_column])
    blocks, names = [], []
    for col in features.columns:
        series = features[col]
        numeric = pd.to_numeric(series, errors="coerce")
        if numeric.notna().sum() >= 0.8 * series.notna().sum() and series.notna().any():
            bad = np.flatnonzero(numeric.isna().to_numpy())
            if len(bad):
                row = bad[0]
                value = series.iloc[row]
                what = "is empty" if pd.isna(value) else f"holds {str(value)!r}, not a number"
                raise DataError(f"{filename}: row {row + 2}, column {col!r} {what}; "
                                "fill in a number or delete the row.")
            blocks.append(numeric.to_numpy(np.float64)[:, None])
            names.append(col)
        else:
            if series.isna().any():
                row = int(np.flatnonzero(series.isna().to_numpy())[0])
                raise DataError(f"{filename}: row {row + 2}, column {col!r} is empty; "
                                "fill it in or delete the row.")
            dummies = pd.get_dummies(series.astype(str), prefix=col, prefix_sep="=")
            blocks.append(dummies.to_numpy(np.float64))
            names.extend(dummies.columns)
    if not blocks:
        raise DataError(f"{filename}: no feature columns besides the label {label_column!r}.")
    if len(names) > MAX_TABLE_COLUMNS_AFTER_ENCODING:
        raise DataError(f"{filename}: text columns expand to {len(names)} features; drop ID-like "
                        "columns (one value per row) before uploading.")
    x = np.concatenate(blocks, axis=1).astype(np.float32)
    return Dataset(PurePosixPath(filename).stem, x, y, class_names, "tabular", tuple(names))


# --- archives -------------------------------------------------------------------------

def _safe_members(archive: zipfile.ZipFile, filename: str) -> list[zipfile.ZipInfo]:
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) > MAX_MEMBERS:
        raise DataError(f"{filename}: {len(members)} files is over the {MAX_MEMBERS} limit.")
    total = 0
    for m in members:
        path = PurePosixPath(m.filename)
        if path.is_absolute() or ".." in path.parts or "\\" in m.filename or ":" in m.filename:
            raise DataError(f"{filename}: member {m.filename!r} has an unsafe path; "
                            "use plain relative folder names.")
        if m.compress_size and m.file_size / max(m.compress_size, 1) > MAX_COMPRESSION_RATIO:
            raise DataError(f"{filename}: member {m.filename!r} expands {m.file_size // max(m.compress_size, 1)}x; "
                            "refusing a possible decompression bomb.")
        total += m.file_size
    if total > MAX_UNPACKED_BYTES:
        raise DataError(f"{filename}: unpacks to {total / 1024**2:.0f} MB, over the "
                        f"{MAX_UNPACKED_BYTES // 1024**2} MB limit.")
    return members


def _open_zip(data: bytes, filename: str) -> zipfile.ZipFile:
    _check_size(data, filename)
    try:
        return zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise DataError(f"{filename}: not a valid ZIP archive.") from None


def load_image_zip(data: bytes, filename: str, size: int = 32, grayscale: bool | None = None) -> Dataset:
    """Images in one folder per class (`cat/001.png`), resized to size x size.

    Colour is kept unless every image is grey (or `grayscale` says otherwise).
    """
    from PIL import Image, UnidentifiedImageError

    archive = _open_zip(data, filename)
    items = []
    for m in _safe_members(archive, filename):
        path = PurePosixPath(m.filename)
        if path.suffix.lower() not in IMAGE_SUFFIXES or any(p.startswith((".", "__MACOSX")) for p in path.parts):
            continue
        if len(path.parts) < 2:
            raise DataError(f"{filename}: image {m.filename!r} is not inside a class folder; "
                            "put each class's images in a folder named after the class.")
        items.append((path.parts[-2], m))
    if not items:
        raise DataError(f"{filename}: no images found; expected folders like cat/001.png, dog/002.png.")
    images, labels, modes = [], [], set()
    Image.MAX_IMAGE_PIXELS = 50_000_000
    for label, m in items:
        try:
            with Image.open(io.BytesIO(archive.read(m))) as img:
                modes.add(img.mode)
                images.append(img.convert("RGB").resize((size, size), Image.Resampling.BILINEAR))
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
            raise DataError(f"{filename}: {m.filename!r} is not a readable image ({exc}); "
                            "remove or replace it.") from None
        labels.append(label)
    y, class_names = _check_labels(labels, filename, "the class folders")
    x = np.stack([np.asarray(im, dtype=np.float32) / 255.0 for im in images]).transpose(0, 3, 1, 2)
    if grayscale is None:
        grayscale = modes <= {"L", "1", "I", "I;16", "LA"}
    if grayscale:
        x = x.mean(axis=1, keepdims=True)
    return Dataset(PurePosixPath(filename).stem, np.ascontiguousarray(x), y, class_names, "image")


def _as_images(x: np.ndarray, filename: str, key: str) -> np.ndarray:
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"{filename}: array {key!r} has dtype {x.dtype}; it must be numeric.")
    x = x.astype(np.float32)
    if x.ndim == 3:  # (N, H, W) grey
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):  # NHWC -> NCHW
        x = x.transpose(0, 3, 1, 2)
    elif x.ndim == 2:
        return x
    elif x.ndim != 4:
        raise DataError(f"{filename}: array {key!r} has shape {x.shape}; expected (N, H, W), "
                        "(N, H, W, C), (N, C, H, W) or (N, features).")
    if x.max(initial=0) > 1.5:
        x = x / 255.0
    return np.ascontiguousarray(x)


def load_npz(data: bytes, filename: str) -> Dataset:
    """`x_train, y_train[, x_test, y_test]` (MedMNIST's `train_images`... accepted)."""
    archive = _open_zip(data, filename)
    _safe_members(archive, filename)
    try:
        npz = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"{filename}: not a readable .npz file ({exc}).") from None
    arrays = {}
    with npz:
        for ours, aliases in NPZ_NAMES.items():
            key = next((a for a in aliases if a in npz.files), None)
            if key is not None:
                try:
                    arrays[ours] = (key, npz[key])
                except ValueError as exc:  # object arrays need pickle: refused
                    raise DataError(f"{filename}: array {key!r} cannot be loaded safely ({exc}); "
                                    "save plain numeric arrays.") from None
    for need in ("x_train", "y_train"):
        if need not in arrays:
            raise DataError(f"{filename}: no {' or '.join(NPZ_NAMES[need])} array; found "
                            f"{', '.join(npz.files) or 'none'}.")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise DataError(f"{filename}: has only one of x_test / y_test; include both or neither.")
    x = _as_images(arrays["x_train"][1], filename, arrays["x_train"][0])
    y_raw = arrays["y_train"][1].reshape(-1)
    if len(y_raw) != len(x):
        raise DataError(f"{filename}: {len(x)} training inputs but {len(y_raw)} labels.")
    x_test = y_test = None
    if "x_test" in arrays:
        x_test = _as_images(arrays["x_test"][1], filename, arrays["x_test"][0])
        y_test_raw = arrays["y_test"][1].reshape(-1)
        if len(y_test_raw) != len(x_test):
            raise DataError(f"{filename}: {len(x_test)} test inputs but {len(y_test_raw)} labels.")
        if x_test.shape[1:] != x.shape[1:]:
            raise DataError(f"{filename}: test inputs have shape {x_test.shape[1:]}, training "
                            f"inputs {x.shape[1:]}; they must match.")
        both, class_names = _check_labels(np.concatenate([y_raw, y_test_raw]), filename, "labels")
        y, y_test = both[: len(y_raw)], both[len(y_raw):]
    else:
        y, class_names = _check_labels(y_raw, filename, "labels")
    modality = "image" if x.ndim == 4 else "tabular"
    return Dataset(PurePosixPath(filename).stem, x, y, class_names, modality, x_test=x_test, y_test=y_test)


def load_upload(data: bytes, filename: str, label_column: str | None = None) -> Dataset:
    """Dispatch on the file's suffix."""
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix in (".csv", ".tsv", ".txt", ".parquet"):
        return load_table(data, filename, label_column)
    if suffix == ".zip":
        return load_image_zip(data, filename)
    if suffix == ".npz":
        return load_npz(data, filename)
    raise DataError(f"{filename}: unsupported file type {suffix!r}; upload .csv, .parquet, "
                    ".zip (one folder per class) or .npz.")
