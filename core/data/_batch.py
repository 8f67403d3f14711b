"""A batch of rows or pictures read exactly as a run's own data was: a table's column
roles, categories, dates and gap policy, then the training split's fills and scaling;
pictures resized and coloured as the training images.

New cases to score (`core.predict`) and unlabelled rows for semi- and self-supervised
training (`data.unlabeled.source`) both come through here, so "the same columns, the same
scaling" has one meaning.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import numpy as np

__all__ = ["PICTURE_SUFFIXES", "read_table_batch", "read_image_batch"]

PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _rows_text(rows: np.ndarray, first_row: int, shown: int = 3) -> str:
    listed = [str(int(r) + first_row) for r in rows[:shown]]
    more = len(rows) - shown
    return ("row " if len(rows) == 1 else "rows ") + ", ".join(listed) + (f" and {more:,} more" if more > 0 else "")


def _table_blocks(dataset, profile) -> list[tuple[Any, str | None]]:
    """(FeatureBlock, date format) of every column the model uses, in feature order."""
    from core.data import FeatureBlock

    if dataset.columns:
        fmt = {c.name: c.date_format for c in profile.used} if profile is not None else {}
        return [(b, fmt.get(b.name)) for b in dataset.columns]
    names = dataset.feature_names or tuple(f"f{i}" for i in range(dataset.x.shape[1]))
    return [(FeatureBlock(n, "numeric", i, i + 1), None) for i, n in enumerate(names)]


def _encode_table(raw, blocks, label: str | None, width: int, filename: str, id_column: str | None = None,
                  text_columns: tuple[str, ...] = ()) -> tuple[np.ndarray, list[dict[str, Any]], list[str]]:
    """The batch's features before the transform (NaN in gaps), each cell read as the
    training file's cell in the same column was; the gaps per column; notes."""
    from core.data import DataError, column_values
    from core.data._errors import quoted, short_list

    frame = raw.frame
    wanted = [b.name for b, _ in blocks]
    missing = [n for n in wanted if n not in frame.columns]
    if missing:
        one = len(missing) == 1
        raise DataError(f"{filename}: the run's model needs column{'' if one else 's'} "
                        f"{short_list([quoted(m) for m in missing])}, not in the file; its columns are "
                        f"{short_list([quoted(c) for c in frame.columns], 5)}. Add "
                        f"{'it' if one else 'them'} with the same name as in the training file.")
    notes = []
    extra = [c for c in frame.columns if c not in wanted and c not in (label, id_column, *text_columns)]
    if label is not None and label in frame.columns:
        notes.append(f"{filename}: label column {quoted(label)} is in the file; it is not used to predict.")
    if extra:
        many = len(extra) > 1
        notes.append(f"{filename}: column{'s' if many else ''} {short_list([quoted(c) for c in extra])} "
                     f"{'are' if many else 'is'} not used by the model and {'were' if many else 'was'} ignored.")
    n = len(frame)
    x = np.full((n, width), np.nan, dtype=np.float32)
    gaps = []
    for block, fmt in blocks:
        series = frame[block.name]
        values, categories, empty, unusable, non_finite = column_values(series, block.role, fmt)
        unknown = np.zeros(n, dtype=bool)
        if block.role == "categorical":
            known = {c: i for i, c in enumerate(block.categories)}
            to_train = np.array([known.get(c, -1) for c in categories], dtype=np.int64)
            filled = ~empty
            codes = np.full(n, -1, dtype=np.int64)
            if len(categories):
                codes[filled] = to_train[np.argmax(np.nan_to_num(values[filled]), axis=1)]
            unknown = filled & (codes < 0)
            out = np.full((n, block.stop - block.start), np.nan, dtype=np.float32)
            ok = codes >= 0
            out[ok] = np.eye(block.stop - block.start, dtype=np.float32)[codes[ok]]
            values = out
        x[:, block.start:block.stop] = values
        bad = unusable | non_finite | unknown
        if (empty | bad).any():
            kinds = [w for m, w in ((empty, "empty"),
                                    (unusable, "not a date" if block.role == "date" else "not a number"),
                                    (non_finite, "infinite or too large"),
                                    (unknown, "a category not seen in training")) if m.any()]
            examples = list(dict.fromkeys(quoted(v, 16) for v in series[bad].head(20).tolist()))[:3]
            gaps.append({"column": block.name, "rows": np.flatnonzero(empty | bad), "cells": int((empty | bad).sum()),
                         "kinds": kinds, "examples": examples})
    return x, gaps, notes


def _gap_text(gaps: list[dict[str, Any]], first_row: int) -> str:
    from core.data._errors import quoted

    shown = 4
    parts = []
    for g in sorted(gaps, key=lambda g: g["kinds"] == ["empty"])[:shown]:  # unreadable cells before empty ones
        example = f", e.g. {g['examples'][0]}" if g["examples"] else ""
        parts.append(f"{quoted(g['column'])} {_rows_text(g['rows'], first_row)} ({' / '.join(g['kinds'])}{example})")
    more = f" and {len(gaps) - shown} more columns" if len(gaps) > shown else ""
    cells = sum(g["cells"] for g in gaps)
    return f"{cells:,} cell{'s' if cells != 1 else ''} cannot be used: {'; '.join(parts)}{more}"


def _batch_ids(raw, dataset) -> tuple[str, list[str]]:
    """(what names each new case, each one's name): the column that identified the run's own
    cases (its ID column, e.g. patient_id) when the new file has it too, else the row number
    in the file as a spreadsheet shows it."""
    from core.data._columns import _as_text
    from core.data._dataset import ROW_IDS

    rows = [int(r) + raw.first_row for r in range(len(raw.frame))]
    name = getattr(dataset, "id_name", ROW_IDS)
    if name == ROW_IDS or name not in raw.frame.columns:
        return ROW_IDS, [str(r) for r in rows]
    text = _as_text(raw.frame[name])
    return name, [v if isinstance(v, str) else f"({ROW_IDS} {r})" for v, r in zip(text, rows, strict=True)]


def read_table_batch(data_config, dataset, profile, filename: str, data: bytes
                     ) -> tuple[np.ndarray, list, list[str], str]:
    """(model input rows, case names, notes, what the names are) of a table or `.npz` batch
    for a table run: a case is named by the run's ID column when the file has it (its
    value: "P-00412"), else by its row number in the file ("row")."""
    from core.data import DataError, check_upload_size, load_npz_inputs, read_table, run_table_transform
    from core.data._dataset import ROW_IDS

    width = dataset.x.shape[1]
    notes: list[str] = []
    if PurePosixPath(filename).suffix.lower() == ".npz":
        x = load_npz_inputs(data, filename)
        if x.ndim != 2 or x.shape[1] != width:
            raise DataError(f"{filename}: array 'x' has shape {x.shape}; the model takes (N, {width}) table rows.")
        cases: list = [str(i + 1) for i in range(len(x))]
        id_name = ROW_IDS
    else:
        check_upload_size(data, filename)
        raw = read_table(data, filename)
        notes += list(raw.notes)
        label = profile.label if profile is not None else None
        id_name, cases = _batch_ids(raw, dataset)
        id_column = None if id_name == ROW_IDS else id_name
        _need_text_columns(raw, dataset, filename)
        texts = _texts(raw, dataset)
        x, gaps, more = _encode_table(raw, _table_blocks(dataset, profile), label, width, filename, id_column,
                                      dataset.text_names)
        notes += more  # the ID column is not "ignored": it names each case (the page and the CSV say so)
        if gaps:
            policy = data_config.missing
            text = _gap_text(gaps, raw.first_row)
            if policy == "refuse":
                raise DataError(f"{filename}: {text}. The run was trained refusing such cells (missing: refuse); "
                                "fix them in the file or remove those rows.")
            if policy == "drop":
                bad = np.zeros(len(x), dtype=bool)
                for g in gaps:
                    bad[g["rows"]] = True
                if bad.all():
                    raise DataError(f"{filename}: {text}, so no row is left (the run drops such rows); fix the file.")
                x, cases, texts = x[~bad], [c for c, b in zip(cases, bad) if not b], texts[~bad]
                notes.append(f"{filename}: {text}; those {int(bad.sum()):,} rows are left out, as the run drops "
                             "such rows (missing: drop).")
            else:
                notes.append(f"{filename}: {text}; filled with the training split's median (numbers, dates) or most "
                             "frequent category, as the run does (missing: fill).")
    transform = run_table_transform(dataset, data_config, x)
    x = transform.apply(x)
    if dataset.text_names:
        if PurePosixPath(filename).suffix.lower() == ".npz":
            raise DataError(f"{filename}: the run reads free text ({', '.join(dataset.text_names)}); upload a table "
                            "(CSV or Parquet) with those columns instead of an .npz.")
        x = np.hstack([x, _encoded_texts(data_config, dataset, texts)])
    if np.isnan(x).any() or not np.isfinite(x).all():
        raise DataError(f"{filename}: some values are not finite numbers once scaled; check the file for "
                        "infinite or enormous values.")
    return np.ascontiguousarray(x, dtype=np.float32), cases, notes, id_name


def _need_text_columns(raw, dataset, filename: str) -> None:
    from core.data import DataError
    from core.data._errors import quoted, short_list

    missing = [n for n in dataset.text_names if n not in raw.frame.columns]
    if missing:
        raise DataError(f"{filename}: the run's model reads the free text of {short_list([quoted(m) for m in missing])}, "
                        "not in the file; add that column with the same name as in the training file.")


def _texts(raw, dataset) -> np.ndarray:
    from core.data._columns import _as_text
    from core.data._dataset import as_texts

    if not dataset.text_names:
        return np.zeros((len(raw.frame), 0), dtype=str)
    cells = [_as_text(raw.frame[n]).fillna("").tolist() for n in dataset.text_names]
    return as_texts(list(zip(*cells, strict=True)))


def _encoded_texts(data_config, dataset, texts: np.ndarray) -> np.ndarray:
    """New texts through the run's text encoders, fitted again on its training split (the
    same texts give the same fit) and scaled as its training features were."""
    from core.data import encoded_splits

    splits = encoded_splits(dataset, data_config)
    blocks = [b for b in splits.columns if b.role == "text"]
    parts = []
    for t, (block, encoder) in enumerate(zip(blocks, splits.text_encoders, strict=True)):
        mean, std = splits.feature_mean[block.start:block.stop], splits.feature_std[block.start:block.stop]
        parts.append((encoder.transform(texts[:, t].tolist()) - mean) / std)
    return np.hstack(parts).astype(np.float32)


def read_image_batch(input_shape: tuple[int, ...], filename: str, data: bytes) -> tuple[np.ndarray, list]:
    """(model inputs, case names) of pictures (a ZIP or one picture: each named by its file)
    or an `.npz` batch (each named by its 1-based row in the array)."""
    from core.data import DataError, load_npz_inputs, load_pictures

    channels, height, width = input_shape
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix == ".npz":
        x = load_npz_inputs(data, filename)
        if x.ndim != 4 or tuple(x.shape[1:]) != tuple(input_shape):
            raise DataError(f"{filename}: array 'x' has shape {x.shape}; the model takes images of shape "
                            f"(N, {channels}, {height}, {width}) (or (N, {height}, {width}, {channels})).")
        return x, [str(i + 1) for i in range(len(x))]
    if suffix != ".zip" and suffix not in PICTURE_SUFFIXES:
        raise DataError(f"{filename}: unsupported file type {suffix or '(none)'!r} for an image run; upload a .zip "
                        "of pictures, one picture, or an .npz with an 'x' array.")
    if height != width:
        raise DataError(f"{filename}: the model takes {height}x{width} images, which pictures cannot be resized "
                        "to here; upload an .npz with an 'x' array of that shape.")
    x, names = load_pictures(data, filename, size=height, grayscale=channels == 1)
    if x.shape[1] != channels:
        raise DataError(f"{filename}: the model takes {channels}-channel images; these pictures give {x.shape[1]}.")
    return x, names
