"""Multi-label uploads: tables whose label column lists several labels, tables with one 0/1
column per label, `.npz` files with a 2-D `y`, and ZIPs of pictures with a `labels.csv`
(`core.data._multilabel_zip`).

Every upload is hostile (`core.data._loaders` caps sizes, never unpickles); each rejection is
one line naming the file, the row (as a spreadsheet counts it) and the column, and says what
to do. Labels are numbered from the most to the least common, as single-label uploads number
their classes, so label 0 is the head and the last the tail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath

import numpy as np
import pandas as pd

from core.data._columns import column_values, profile_table
from core.data._dataset import FeatureBlock
from core.data._errors import DataError, missing_labels, quoted, short_list
from core.data._loaders import _as_images, _check_size, _open_npz
from core.data._multilabel import MultiLabelDataset
from core.data._multilabel_zip import MANIFEST_NAME, read_picture_manifest
from core.data._tables import TABLE_SUFFIXES, RawTable, read_table

__all__ = ["LABEL_SEPARATORS", "UNKNOWN_WORDS", "detect_label_separator", "separated_labels", "label_columns_matrix",
           "multilabel_table", "load_multilabel_npz", "load_multilabel_upload", "MIN_LABEL_POSITIVES", "npz_has_label_matrix",
           "UNKNOWN_MARK", "listed_labels", "load_multilabel_zip"]

LABEL_SEPARATORS = {"|": "vertical bars", ";": "semicolons", ",": "commas"}  # tried in this order
UNKNOWN_WORDS = ("", "na", "n/a", "?", "nan")  # a 0/1 label cell that says "not known"
UNKNOWN_MARK = "?"  # in a list of labels: the labels not listed are unknown, not absent
MIN_LABEL_POSITIVES = 2  # a label seen once cannot be both trained on and tested
_TRUE, _FALSE = ("1", "1.0", "true", "yes"), ("0", "0.0", "false", "no")


def _row(index: int, first_row: int) -> str:
    return f"row {index + first_row}"


def detect_label_separator(values: pd.Series) -> str | None:
    """The separator written inside a label column's values (`a|b`), or None when every
    value is a single label: the first of `|`, `;`, `,` that splits some value into two
    non-empty labels."""
    text = values.dropna().astype(str)
    for sep in LABEL_SEPARATORS:
        pieces = text[text.str.contains(sep, regex=False)].str.split(sep, regex=False)
        if any(sum(bool(p.strip()) for p in parts) >= 2 for parts in pieces):
            return sep
    return None


def _by_frequency(y: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Columns reordered from the most to the least common label (ties by name)."""
    counts = np.nansum(y, axis=0)
    order = sorted(range(len(names)), key=lambda j: (-counts[j], names[j]))
    return y[:, order], tuple(names[j] for j in order)


def _check_matrix(y: np.ndarray, names: Sequence[str], filename: str, where: str, first_row: int,
                  rows: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    """Refuse a row with no known entry, fewer than two labels, a label seen fewer than
    `MIN_LABEL_POSITIVES` times; then order the labels head to tail."""
    if len(names) < 2:
        raise DataError(f"{filename}: {where} names only {len(names)} label; multi-label data needs at least two.")
    empty = np.flatnonzero(np.isnan(y).all(axis=1))
    if len(empty):
        raise DataError(f"{filename}: {_row(int(rows[empty[0]]), first_row)} has no label at all in {where} "
                        f"({len(empty):,} such row{'s' if len(empty) > 1 else ''}); fill them in or remove them.")
    counts = np.nansum(y, axis=0)
    rare = [j for j in range(len(names)) if counts[j] < MIN_LABEL_POSITIVES]
    if rare:
        j = rare[0]
        seen = np.flatnonzero(y[:, j] == 1)
        at = f", in {_row(int(rows[seen[0]]), first_row)}" if len(seen) else ""
        raise DataError(f"{filename}: {where}: label {quoted(names[j])} is present in {int(counts[j])} "
                        f"row{'' if counts[j] == 1 else 's'}{at}, fewer than {MIN_LABEL_POSITIVES}"
                        f"{f' (and {len(rare) - 1} more labels)' if len(rare) > 1 else ''}; add cases with it, "
                        "merge it into another label or remove it.")
    return _by_frequency(y, names)


def separated_labels(values: pd.Series, separator: str, filename: str, column: str, *,
                     first_row: int = 2) -> tuple[np.ndarray, tuple[str, ...]]:
    """(label matrix, label names) of a column listing each row's labels, e.g. `fever|cough`;
    a label not listed in a row is absent there. Pieces are stripped; an empty cell is a row
    with no label at all (refused)."""
    if separator not in LABEL_SEPARATORS:
        raise DataError(f"{filename}: label separator {separator!r} is not one of "
                        f"{', '.join(repr(s) for s in LABEL_SEPARATORS)}.")
    where = f"label column {quoted(column)}"
    blank = missing_labels(values)
    if blank.any():
        first = int(np.flatnonzero(blank)[0])
        raise DataError(f"{filename}: {_row(first, first_row)} has no label at all in {where} "
                        f"({int(blank.sum()):,} such row{'s' if blank.sum() > 1 else ''}); list its labels separated "
                        f"by {LABEL_SEPARATORS[separator]}, or remove the row.")
    rows = [[p.strip() for p in str(v).split(separator) if p.strip()] for v in values]
    names = sorted({label for row in rows for label in row})
    if len(names) > 1000:
        raise DataError(f"{filename}: {where} lists {len(names):,} different labels, too many; check the separator "
                        "or choose the column that lists the findings.")
    index = {name: j for j, name in enumerate(names)}
    y = np.zeros((len(rows), len(names)), dtype=np.float64)
    for i, row in enumerate(rows):
        if not row:
            raise DataError(f"{filename}: {_row(i, first_row)} has no label at all in {where}; list its labels or "
                            "remove the row.")
        y[i, [index[label] for label in row]] = 1.0
    return _check_matrix(y, names, filename, where, first_row, np.arange(len(rows)))


def _zero_one(values: pd.Series, filename: str, column: str, first_row: int) -> np.ndarray:
    """One 0/1 label column as floats: 1, 0, NaN for blank / NA / ? (refusing anything else)."""
    text = values.astype("string").str.strip().str.lower().fillna("")
    out = np.full(len(values), np.nan)
    out[text.isin(_TRUE).to_numpy()] = 1.0
    out[text.isin(_FALSE).to_numpy()] = 0.0
    bad = np.flatnonzero(np.isnan(out) & ~text.isin(UNKNOWN_WORDS).to_numpy())
    if len(bad):
        i = int(bad[0])
        raise DataError(f"{filename}: {_row(i, first_row)}, column {quoted(column)} holds {quoted(values.iloc[i])}; "
                        "a label column holds 1 (present), 0 (absent) or blank / NA / ? (unknown)"
                        f"{f' ({len(bad) - 1:,} more such cells)' if len(bad) > 1 else ''}.")
    return out


def label_columns_matrix(frame: pd.DataFrame, columns: Sequence[str], filename: str, *,
                         first_row: int = 2) -> tuple[np.ndarray, tuple[str, ...]]:
    """(label matrix, label names) of several 0/1 columns, one per label."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{filename}: no column named {quoted(missing[0])}; its columns are "
                        f"{short_list([quoted(c) for c in frame.columns], 5)}.")
    if len(set(columns)) != len(columns):
        raise DataError(f"{filename}: a label column is named twice; pick each once.")
    y = np.column_stack([_zero_one(frame[c], filename, c, first_row) for c in columns])
    return _check_matrix(y, list(columns), filename, "the label columns", first_row, np.arange(len(frame)))


def _features(raw: RawTable, label: str, others: Sequence[str], roles: Mapping[str, str] | None,
              missing: str) -> tuple[np.ndarray, tuple[str, ...], tuple[FeatureBlock, ...], np.ndarray]:
    """(x, feature names, column blocks, kept rows) from every column that is not a label, as
    single-label tables make them; free text is refused for now (multi-label runs take no
    text encoder)."""
    filename = raw.filename
    roles = {**dict(roles or {}), **{c: "ignore" for c in others}}
    profile = profile_table(raw.frame, filename, label, roles, first_row=raw.first_row, notes=raw.notes)
    text = [c.name for c in profile.used if c.role == "text"]
    if text:
        raise DataError(f"{filename}: column {quoted(text[0])} is free text, which multi-label data does not take yet; "
                        "set its role to left out.")
    if not profile.used:
        raise DataError(f"{filename}: no column is left as a feature besides the labels; upload the measurements too.")
    if missing == "refuse" and profile.gap_cells:
        c = next(c for c in profile.used if c.gaps)
        raise DataError(f"{filename}: column {quoted(c.name)} has {c.gaps:,} empty or unusable cell"
                        f"{'s' if c.gaps > 1 else ''} ({_row(int(c.gap_rows[0]), raw.first_row)} first); "
                        "choose to drop those rows or fill them, or fix the file.")
    keep = ~profile.gap_mask() if missing == "drop" else np.ones(profile.rows, dtype=bool)
    if not keep.any():
        raise DataError(f"{filename}: every row has a gap, so none is left; fill the gaps instead, or fix the file.")
    blocks, parts, names, start = [], [], [], 0
    for c in profile.used:
        values, categories, *_ = column_values(raw.frame[c.name], c.role, c.date_format)
        cols = [f"{c.name}={v}" for v in categories] if c.role == "categorical" else [c.name]
        blocks.append(FeatureBlock(c.name, c.role, start, start + len(cols), tuple(categories)))
        parts.append(np.asarray(values, dtype=np.float32).reshape(len(raw.frame), -1)[keep])
        names += cols
        start += len(cols)
    return np.concatenate(parts, axis=1), tuple(names), tuple(blocks), keep


def multilabel_table(raw: RawTable, *, separator: str | None = None, columns: Sequence[str] | None = None,
                     label_column: str | None = None, roles: Mapping[str, str] | None = None,
                     missing: str = "refuse") -> MultiLabelDataset:
    """A parsed table as multi-label data: `separator` reads `label_column` as a list of
    labels; `columns` reads several 0/1 columns. Every other column is a feature."""
    filename, frame = raw.filename, raw.frame
    if (separator is None) == (columns is None):
        raise DataError(f"{filename}: say either which separator splits the label column or which columns are the "
                        "labels.")
    if missing not in ("refuse", "drop", "fill"):
        raise DataError(f"{filename}: missing must be refuse, drop or fill, not {missing!r}.")
    if columns is not None:
        y, names = label_columns_matrix(frame, list(columns), filename, first_row=raw.first_row)
        label, others = columns[0], list(columns[1:])
    else:
        if label_column is None or label_column not in frame.columns:
            raise DataError(f"{filename}: choose the label column that lists each row's labels"
                            f"{f'; there is no column {quoted(label_column)}' if label_column else ''}.")
        y, names = separated_labels(frame[label_column], separator, filename, label_column, first_row=raw.first_row)
        label, others = label_column, []
    unused = [r for r in (roles or {}) if r == label or r in others]
    if unused:
        raise DataError(f"{filename}: column {quoted(unused[0])} holds labels; it cannot also have a role.")
    x, feature_names, blocks, keep = _features(raw, label, others, roles, missing)
    y = y[keep]
    if not keep.all():
        y, names = _check_matrix(y, names, filename, "the labels of the rows kept", raw.first_row,
                                 np.flatnonzero(keep))
    return MultiLabelDataset(PurePosixPath(filename).stem, x, y, names, "tabular", feature_names, blocks)


def _npz_array(npz, key: str, filename: str) -> np.ndarray:
    try:
        return npz[key]
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DataError(f"{filename}: array {key!r} holds Python objects, which are not loaded for safety; save "
                            "plain number arrays.") from None
        raise DataError(f"{filename}: array {key!r} is damaged or incomplete; save the file again.") from None
    except Exception:  # truncated or corrupt member
        raise DataError(f"{filename}: array {key!r} is damaged or incomplete; save the file again.") from None


def _npz_labels(y: np.ndarray, filename: str, key: str) -> np.ndarray:
    """A 2-D `y` as a label matrix: 0/1, and -1 or NaN unknown; anything else refused by
    sample and label (both counted from 0, as numpy counts)."""
    if y.ndim != 2 or y.shape[1] < 2:
        raise DataError(f"{filename}: {key!r} has shape {y.shape}; multi-label data needs a 2-D array, one row per "
                        "sample and one 0/1 column per label.")
    if y.dtype == bool:
        return y.astype(np.float64)
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)):
        raise DataError(f"{filename}: {key!r} holds values of type {y.dtype.name}; save 0 / 1 and -1 or NaN for "
                        "unknown.")
    out = y.astype(np.float64)
    out[out == -1] = np.nan
    bad = np.argwhere(~np.isnan(out) & (out != 0) & (out != 1))
    if len(bad):
        i, j = map(int, bad[0])
        raise DataError(f"{filename}: {key!r} sample {i}, label column {j} holds {y[i, j].item()!r}; entries must "
                        "be 1 (present), 0 (absent) or -1 / NaN (unknown).")
    return out


def npz_has_label_matrix(data: bytes, filename: str) -> bool:
    """Whether an `.npz` holds a 2-D `y` (or `y_train`): its labels are a matrix, one 0/1
    column per label. Reads only the arrays' headers' worth (no pickles); an unreadable file
    is False here and refused, in words, by whichever loader reads it."""
    try:
        with _open_npz(data, filename) as npz:
            key = next((k for k in ("y", "y_train") if k in npz.files), None)
            return key is not None and npz[key].ndim == 2 and npz[key].shape[1] >= 2
    except Exception:  # any damage: the loader that reads it names it
        return False


def load_multilabel_npz(data: bytes, filename: str) -> MultiLabelDataset:
    """`x` (or `x_train`) and a 2-D `y` (or `y_train`); a test split in the file is refused
    for now (multi-label runs hold out their own). Optional `label_names`: text, one per label."""
    npz = _open_npz(data, filename)
    with npz:
        files = list(npz.files)
        x_key = next((k for k in ("x", "x_train") if k in files), None)
        y_key = next((k for k in ("y", "y_train") if k in files), None)
        if x_key is None or y_key is None:
            raise DataError(f"{filename}: needs arrays 'x' and 'y' (or 'x_train' and 'y_train'); found "
                            f"{', '.join(repr(f) for f in files[:6]) or 'none'}.")
        if "x_test" in files or "y_test" in files:
            raise DataError(f"{filename}: multi-label files are split here; put the test cases into 'x' and 'y' "
                            "and leave out 'x_test' / 'y_test'.")
        x = _as_images(_npz_array(npz, x_key, filename), filename, x_key)
        y = _npz_labels(_npz_array(npz, y_key, filename), filename, y_key)
        names_raw = _npz_array(npz, "label_names", filename) if "label_names" in files else None
    if len(y) != len(x):
        raise DataError(f"{filename}: {len(x)} inputs but {len(y)} label rows; they must match.")
    names = [f"label {j + 1}" for j in range(y.shape[1])]
    if names_raw is not None:
        if names_raw.dtype.kind not in "US" or names_raw.shape != (y.shape[1],):
            raise DataError(f"{filename}: 'label_names' must be {y.shape[1]} texts, one per label column.")
        names = [str(n).strip() for n in names_raw]
        if len(set(names)) != len(names) or not all(names):
            raise DataError(f"{filename}: 'label_names' must be distinct and not empty.")
    first = 0  # samples are counted from 0 in an array
    y, names = _check_matrix(y, names, filename, f"{y_key!r}", first, np.arange(len(y)))
    modality = "image" if x.ndim == 4 else "tabular"
    feature_names = tuple(f"feature {j + 1}" for j in range(x.shape[1])) if modality == "tabular" else None
    return MultiLabelDataset(PurePosixPath(filename).stem, x, y, names, modality, feature_names)


def listed_labels(values: pd.Series, separator: str | None, filename: str, column: str, *,
                  first_row: int = 2) -> tuple[np.ndarray, tuple[str, ...]]:
    """(label matrix, names) of a column listing each row's labels, where a `?` among them
    says the labels not listed are unknown there (`fever|?`: fever present, the rest not
    checked) instead of absent. An empty cell, or `?` alone, is a row with no label at all
    (refused). `separator` None: found from the values (`|` when every row has one label)."""
    separator = separator or detect_label_separator(values) or "|"
    if separator not in LABEL_SEPARATORS:
        raise DataError(f"{filename}: label separator {separator!r} is not one of "
                        f"{', '.join(repr(s) for s in LABEL_SEPARATORS)}.")
    where = f"column {quoted(column)}"
    rows = [[] if v is None or (isinstance(v, float) and np.isnan(v)) else
            [p.strip() for p in str(v).split(separator) if p.strip()] for v in values]
    for i, row in enumerate(rows):
        if not [p for p in row if p != UNKNOWN_MARK]:
            raise DataError(f"{filename}: {_row(i, first_row)} has no label at all in {where}; list its labels "
                            f"separated by {LABEL_SEPARATORS[separator]} (add ? when the others were not checked), "
                            "or remove the row.")
    names = sorted({p for row in rows for p in row if p != UNKNOWN_MARK})
    if len(names) > 1000:
        raise DataError(f"{filename}: {where} lists {len(names):,} different labels, too many; check the separator.")
    index = {name: j for j, name in enumerate(names)}
    y = np.zeros((len(rows), len(names)), dtype=np.float64)
    for i, row in enumerate(rows):
        if UNKNOWN_MARK in row:
            y[i] = np.nan
        y[i, [index[p] for p in row if p != UNKNOWN_MARK]] = 1.0
    return _check_matrix(y, names, filename, where, first_row, np.arange(len(rows)))


def load_multilabel_zip(data: bytes, filename: str, *, separator: str | None = None) -> MultiLabelDataset:
    """Pictures in a ZIP with a `labels.csv` (columns file and labels) beside them, read with
    the same guards as a single-label picture ZIP; labels as `listed_labels` reads them."""
    manifest = read_picture_manifest(
        data, filename, lambda values, where, first: listed_labels(values, separator, where, "labels", first_row=first))
    return MultiLabelDataset(PurePosixPath(filename).stem, manifest.x, manifest.y, manifest.label_names, "image")


def load_multilabel_upload(data: bytes, filename: str, *, separator: str | None = None,
                           columns: Sequence[str] | None = None, label_column: str | None = None,
                           roles: Mapping[str, str] | None = None, missing: str = "refuse") -> MultiLabelDataset:
    """Dispatch a multi-label upload on its suffix (tables, `.npz`, picture ZIPs)."""
    _check_size(data, filename)
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix in TABLE_SUFFIXES:
        return multilabel_table(read_table(data, filename), separator=separator, columns=columns,
                                label_column=label_column, roles=roles, missing=missing)
    if suffix == ".npz":
        if separator is not None or columns is not None:
            raise DataError(f"{filename}: an .npz file carries its labels as a 2-D 'y'; a separator or label "
                            "columns apply to tables.")
        return load_multilabel_npz(data, filename)
    if suffix == ".zip":
        if columns is not None:
            raise DataError(f"{filename}: a picture ZIP carries its labels in {MANIFEST_NAME}; label columns apply to "
                            "tables.")
        return load_multilabel_zip(data, filename, separator=separator)
    raise DataError(f"{filename}: multi-label uploads are tables (.csv, .tsv, .parquet), .npz files or ZIPs of "
                    f"pictures with a {MANIFEST_NAME}, not "
                    f"{suffix or '(no type)'!r}.")

