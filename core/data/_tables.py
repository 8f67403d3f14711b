"""Uploaded tables: read a CSV / TSV / Parquet file the way people export them, then turn it
into features with the column roles and missing-value policy the user chose.

Reading tries UTF-8, then Windows-1252, then Latin-1 (with a note), detects the separator
(`,` `;` tab `|`) and a decimal comma, names a short or long row by its line, renames a
repeated column name with a note, and says "not a Parquet file" in words. The file is
parsed once; the column profile and the features both work from that one frame.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
import pandas as pd

from core.data._columns import ROLE_LABELS, TableProfile, _as_text, column_values, profile_table
from core.data._dataset import ROW_IDS, Dataset, FeatureBlock, as_ids, as_texts
from core.data._errors import DataError, check_labels, quoted, short_list
from core.data._label_variants import merge_label_variants
from core.data._number_forms import read_separated_numbers

__all__ = ["RawTable", "read_table", "table_dataset", "case_ids", "MAX_TABLE_FEATURES", "TABLE_SUFFIXES"]

MAX_TABLE_FEATURES = 2000
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet")
SEPARATORS = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "vertical bars"}
_DECIMAL_COMMA = re.compile(r"^-?(\d{1,3}(\.\d{3})+|\d+),\d+$")  # 1,5  1.234,5
_DECIMAL_POINT = re.compile(r"^-?(\d{1,3}(,\d{3})+|\d+)\.\d+$")  # 1.5  1,234.5 (1.234 alone could be either)
_THOUSANDS_POINT = re.compile(r"^-?\d{1,3}(\.\d{3})+$")


@dataclass(frozen=True)
class RawTable:
    """A parsed table as written (text and numbers, gaps as NaN) and what reading noticed."""

    filename: str
    frame: pd.DataFrame
    notes: tuple[str, ...] = ()
    first_row: int = 2  # file row of the first data row: 2 under a header line, 1 in Parquet


# --- reading ------------------------------------------------------------------------------

def _encoding(data: bytes, filename: str) -> tuple[bytes, str, list[str]]:
    """(bytes, encoding for pandas, notes): UTF-16 (Excel's "Unicode text") re-encoded as
    UTF-8; UTF-8 with or without BOM; else Windows-1252, else Latin-1, with a note."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16").encode("utf-8"), "utf-8", []
        except UnicodeDecodeError:
            raise DataError(f"{filename}: starts like UTF-16 text but is not; save it again as CSV (UTF-8).") from None
    try:
        data.decode("utf-8")
        return data, "utf-8-sig", []
    except UnicodeDecodeError as exc:
        where = data[: exc.start].count(b"\n") + 1
    for encoding, what in (("cp1252", "Windows-1252 (Excel's usual encoding)"), ("latin-1", "Latin-1")):
        try:
            data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return data, encoding, [f"not UTF-8 text (line {where} has the first odd character), so it was read as "
                                f"{what}; check that accented letters look right below."]
    raise DataError(f"{filename}: not readable as text; save it as CSV (UTF-8).")  # latin-1 never fails


def _sample_lines(data: bytes, encoding: str, limit: int = 64 * 1024) -> list[str]:
    text = data[:limit].decode("utf-8" if encoding == "utf-8-sig" else encoding, errors="ignore").lstrip("\ufeff")
    lines = text.splitlines()
    if len(data) > limit and len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut
    return [ln for ln in lines if ln.strip()][:50]


def _separator(lines: list[str], suffix: str) -> str:
    """The candidate that splits the header into most fields with every sampled row agreeing."""
    preferred = "\t" if suffix == ".tsv" else ","
    best, best_score = preferred, (0.0, 0)
    for sep in dict.fromkeys([preferred, ",", ";", "\t", "|"]):
        counts = [len(row) for row in csv.reader(lines, delimiter=sep)]
        if not counts or counts[0] < 2:
            continue
        score = (sum(c == counts[0] for c in counts) / len(counts), counts[0])
        if score > best_score:
            best, best_score = sep, score
    return best


def _decimal(lines: list[str], sep: str) -> str:
    if sep != ";":
        return "."
    cells = [c.strip() for row in csv.reader(lines[1:], delimiter=sep) for c in row]
    comma = any(_DECIMAL_COMMA.match(c) for c in cells) and not any(
        _DECIMAL_POINT.match(c) and not _THOUSANDS_POINT.match(c) for c in cells)
    return "," if comma else "."


def _check_field_counts(data: bytes, sep: str, filename: str) -> None:
    """Every non-blank line has as many fields as the header (pandas would otherwise shift
    or pad a short row silently). Separators are counted per line when the file has no
    quotes; the csv module reads it when it does."""
    if b'"' in data:
        text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
        rows = csv.reader(io.StringIO(text), delimiter=sep)
        header = next(rows, [])
        for row in rows:
            if row and len(row) != len(header):
                _wrong_count(filename, rows.line_num, len(row), len(header))
        return
    marker = sep.encode()
    counts = np.fromiter((line.count(marker) if line.strip() else -1 for line in data.split(b"\n")), dtype=np.int64)
    bad = np.flatnonzero((counts != counts[0]) & (counts >= 0))
    if len(bad):
        line = int(bad[0])
        _wrong_count(filename, line + 1, int(counts[line]) + 1, int(counts[0]) + 1)


def _wrong_count(filename: str, line: int, fields: int, header: int) -> None:
    raise DataError(f"{filename}: line {line} has {fields} fields but the header has {header}; fix that row "
                    "or remove it.")


def _dedupe(names: list[str]) -> tuple[list[str], list[str]]:
    """Names made unique ('a', 'a.1', ...), and a note naming each renamed copy."""
    taken: set[str] = set()
    out, renamed = [], []
    for name in names:
        new, k = name, 0
        while new in taken:
            k += 1
            new = f"{name}.{k}"
        taken.add(new)
        out.append(new)
        if new != name:
            renamed.append(f"{quoted(name)} → {quoted(new)}")
    notes = [f"column names repeat, so the copies were renamed: {short_list(renamed)}. Rename them in the file "
             "if that is not what you want."] if renamed else []
    return out, notes


def _read_parquet(data: bytes, filename: str) -> pd.DataFrame:
    if len(data) < 12 or data[:4] != b"PAR1" or data[-4:] != b"PAR1":
        raise DataError(f"{filename}: not a Parquet file (it lacks Parquet's signature); export it again as "
                        "Parquet, or save it as CSV and upload that.")
    try:
        return pd.read_parquet(io.BytesIO(data))
    except Exception:  # any reader failure on a file with the right signature: damaged or unsupported
        raise DataError(f"{filename}: the Parquet file is damaged or uses a feature this reader does not "
                        "support; export it again.") from None


# Files that are not text, by their first bytes: what each is, and how to get a CSV from it.
_NOT_TEXT = (
    (b"PK\x03\x04", "a spreadsheet workbook (.xlsx, .ods) or a ZIP archive, renamed",
     "in the spreadsheet program choose Save As, then CSV, and upload that file"),
    (b"\xd0\xcf\x11\xe0", "an Excel file (.xls, the older kind), renamed",
     "save it as CSV: in the spreadsheet program choose Save As, then CSV, and upload that file"),
    (b"PAR1", "a Parquet file, renamed", "give it the ending .parquet again and upload it"),
    (b"%PDF", "a PDF document", "export the table from its source as CSV"),
)


_SAVE_AS_CSV = "save it as CSV: in the spreadsheet program choose Save As, then CSV, and upload that file"
_ZIP_KINDS = (("xl/", "an Excel file (.xlsx), renamed"), ("word/", "a Word document (.docx), renamed"),
              ("content.xml", "an OpenDocument file (.ods, .odt), renamed"))


def _zip_kind(data: bytes) -> str | None:
    """What a ZIP-based office file is, from the names inside it (an .xlsx holds xl/...)."""
    import zipfile

    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return None
    return next((what for prefix, what in _ZIP_KINDS if any(n.startswith(prefix) for n in names)), None)


def _refuse_binary(data: bytes, filename: str) -> None:
    """A file that is not a text table, said as what it is (not as a parser's complaint)."""
    if data.startswith(b"PK\x03\x04") and (kind := _zip_kind(data)) is not None:
        raise DataError(f"{filename}: this is {kind}, not a text table; {_SAVE_AS_CSV}.")
    for signature, what, todo in _NOT_TEXT:
        if data.startswith(signature):
            raise DataError(f"{filename}: this is {what}, not a text table; {todo}.")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return
    nul, sample = data.count(b"\x00"), data[:64 * 1024]
    control = sum(sample.count(bytes([b])) for b in _CONTROL_BYTES)  # text has next to none; random bytes ~10 %
    if nul > MAX_STRAY_NUL or nul * 20 > len(data) or control * 100 > len(sample):
        raise DataError(f"{filename}: holds binary data, not a text table; save the table as CSV (UTF-8) and "
                        "upload that.")


_CONTROL_BYTES = [b for b in range(1, 32) if b not in (9, 10, 12, 13)]
MAX_STRAY_NUL = 100  # NUL bytes a text export may carry by accident (more, or over 5 % of it: binary)


def _drop_nul(data: bytes, filename: str) -> tuple[bytes, list[str]]:
    """A text table with a few stray NUL bytes (left by some exports and broken copies):
    the bytes removed, with a note naming where they were, so they never end up inside a
    category or class name."""
    if b"\x00" not in data or data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data, []
    lines = data.split(b"\n")
    header = lines[0].replace(b"\x00", b"").decode("utf-8", errors="replace").strip()
    sep = _separator([header], ".csv")
    names = next(csv.reader([header], delimiter=sep), [])
    places = []
    for number, line in enumerate(lines, start=1):
        if b"\x00" in line:
            fields = line.decode("utf-8", errors="replace").split(sep)
            column = next((i for i, f in enumerate(fields) if "\x00" in f), None)
            name = quoted(names[column]) if column is not None and column < len(names) else None
            places.append(f"line {number}" + (f" ({name})" if name else ""))
    count = data.count(b"\x00")
    return data.replace(b"\x00", b""), [
        f"{count} invisible NUL character{'s were' if count != 1 else ' was'} removed ({short_list(places)}); "
        "they are left by some exports or damaged copies. Check those rows."]


def _read_text(data: bytes, filename: str, suffix: str) -> tuple[pd.DataFrame, list[str]]:
    _refuse_binary(data, filename)
    data, nul_notes = _drop_nul(data, filename)
    try:
        frame, notes = _parse_text(data, filename, suffix)
        return frame, nul_notes + notes
    except csv.Error:  # a stray carriage return or quote the csv module cannot place
        raise DataError(f"{filename}: could not be read as a table (a line break or quote sits where it cannot); "
                        "save it again as CSV (UTF-8) with a header row.") from None


def _parse_text(data: bytes, filename: str, suffix: str) -> tuple[pd.DataFrame, list[str]]:
    data, encoding, notes = _encoding(data, filename)
    lines = _sample_lines(data, encoding)
    if not lines:
        raise DataError(f"{filename}: no text in the file; choose a file with a header row and data.")
    sep = _separator(lines, suffix)
    decimal = _decimal(lines, sep)
    if sep != ("\t" if suffix == ".tsv" else ","):
        notes.append(f"columns are separated by {SEPARATORS[sep]}"
                     + (" and numbers use a decimal comma" if decimal == "," else "") + "; read that way.")
    _check_field_counts(data, sep, filename)
    try:
        frame = pd.read_csv(io.BytesIO(data), sep=sep, encoding=encoding, decimal=decimal, index_col=False,
                            low_memory=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{filename}: no columns found; the first line must be a header naming the columns.") from None
    except pd.errors.ParserError as exc:
        line = re.search(r"line (\d+)", str(exc))
        where = f" near line {line.group(1)}" if line else ""
        raise DataError(f"{filename}: could not be read{where}: a quote may be left open; check that row.") from None
    except (ValueError, OSError, UnicodeError):
        raise DataError(f"{filename}: could not be read as a table; save it as CSV (UTF-8) with a header "
                        "row.") from None
    header = next(csv.reader(lines[:1], delimiter=sep), [])
    if len(header) == frame.shape[1] and len(set(header)) < len(header):
        frame.columns, dup_notes = _dedupe([h.strip() for h in header])
        notes += dup_notes
    frame, number_notes = read_separated_numbers(frame, decimal)
    return frame, notes + number_notes


def read_table(data: bytes, filename: str) -> RawTable:
    """Parse an uploaded table once. Raises DataError with a short reason and what to do."""
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"{filename}: unsupported table type {suffix!r}; use .csv, .tsv or .parquet.")
    notes: list[str] = []
    if suffix == ".parquet":
        frame, first_row = _read_parquet(data, filename), 1
    else:
        frame, notes = _read_text(data, filename, suffix)
        first_row = 2
    names = [str(c).strip() for c in frame.columns]
    if len(set(names)) < len(names):
        names, dup_notes = _dedupe(names)
        notes += dup_notes
    frame.columns = names
    if frame.shape[1] < 2:
        raise DataError(f"{filename}: found only one column; a table needs a label column and feature columns, "
                        "separated by commas, semicolons or tabs.")
    if frame.shape[0] == 0:
        raise DataError(f"{filename}: has a header but no rows of data.")
    return RawTable(filename, frame, tuple(f"{filename}: {note}" for note in notes), first_row)


# --- features -----------------------------------------------------------------------------

def _rows(indices: np.ndarray, first_row: int, shown: int = 2) -> str:
    rows = [str(int(i) + first_row) for i in indices[:shown]]
    more = len(indices) - shown
    return ("row " if len(indices) == 1 else "rows ") + ", ".join(rows) + (f" and {more:,} more" if more > 0 else "")


def _gap_message(profile: TableProfile) -> str:
    bad = [c for c in profile.used if c.gaps]
    parts = []
    for c in bad[:2]:
        kinds = [w for n, w in ((c.empty, "empty"), (c.unusable, "not a number" if c.role != "date" else "not a date"),
                                (c.non_finite, "infinite or too large")) if n]
        example = f", e.g. {c.examples[0]}" if c.examples else ""
        parts.append(f"{quoted(c.name)} {_rows(c.gap_rows, profile.first_row)} ({' / '.join(kinds)}{example})")
    more = f" and {len(bad) - 2} more columns" if len(bad) > 2 else ""
    cells = profile.gap_cells
    return (f"{profile.filename}: {cells:,} cell{'s' if cells != 1 else ''} cannot be used: {'; '.join(parts)}{more}. "
            "Choose to drop those rows or fill them (Data page; missing: drop or fill in a config), or fix the file.")


def _feature_limit(blocks: list[tuple[FeatureBlock, np.ndarray]], filename: str) -> None:
    total = sum(b.stop - b.start for b, _ in blocks)
    if total <= MAX_TABLE_FEATURES:
        return
    wide = sorted(((b.stop - b.start, b.name) for b, _ in blocks if b.role == "categorical"), reverse=True)
    if wide and wide[0][0] > MAX_TABLE_FEATURES / 4:
        raise DataError(f"{filename}: the columns give {total:,} features, over the {MAX_TABLE_FEATURES:,} limit; "
                        f"{quoted(wide[0][1])} alone gives {wide[0][0]:,} (one per value): set its role to ID-like "
                        "or left out.")
    raise DataError(f"{filename}: {total:,} feature columns is over the {MAX_TABLE_FEATURES:,} limit; leave some "
                    "columns out (role: left out) or upload fewer.")


def table_dataset(raw: RawTable, label_column: str | None = None, roles: Mapping[str, str] | None = None,
                  missing: str = "refuse", profile: TableProfile | None = None, *,
                  merge_labels: bool | None = None) -> Dataset:
    """Features from the used columns (numbers as they are, categories one-hot, dates as
    days), integer labels ordered by class frequency, and gaps handled by `missing`:
    refuse (a DataError naming them), drop (their rows) or fill (left as NaN for the
    split, which fills them from the training rows). Labels spelled several ways are
    merged, kept apart or refused as `merge_labels` says (`merge_label_variants`)."""
    filename = raw.filename
    profile = profile or profile_table(raw.frame, filename, label_column, roles, first_row=raw.first_row,
                                       notes=raw.notes)
    if profile.label is None:
        raise DataError(f"{filename}: could not tell which column holds the class ({profile.label_reason}); "
                        "choose the label column.")
    if not profile.used:
        left = profile.left_out
        names = short_list([f"{quoted(c.name)} ({ROLE_LABELS[c.role]})" for c in left])
        raise DataError(f"{filename}: no column is used as a feature ({names} {'is' if len(left) == 1 else 'are'} "
                        "left out); set a column's role to number, category or free text.")
    frame, n = raw.frame, profile.rows
    no_label = profile.label_missing_rows
    if missing == "refuse":
        if len(no_label):
            one = len(no_label) == 1
            raise DataError(f"{filename}: {_rows(no_label, raw.first_row)} {'has' if one else 'have'} no value in "
                            f"label column {quoted(profile.label)}; fill {'it' if one else 'them'} in, or choose to "
                            "drop or fill gaps.")
        if profile.gap_cells:
            raise DataError(_gap_message(profile))
    keep = np.ones(n, dtype=bool)
    keep[no_label] = False
    if missing == "drop":
        keep &= ~profile.gap_mask()
    if not keep.any():
        raise DataError(f"{filename}: every row has a gap, so none is left; fill the gaps instead, or fix the file.")
    blocks, start, text_columns = [], 0, []
    for c in profile.used:
        if c.role == "text":
            text_columns.append(c.name)
            continue
        values, categories, *_ = column_values(frame[c.name], c.role, c.date_format)
        names = [f"{c.name}={v}" for v in categories] if c.role == "categorical" else [c.name]
        block = FeatureBlock(c.name, c.role, start, start + len(names), tuple(categories))
        blocks.append((block, values if keep.all() else values[keep], names))
        start = block.stop
    _feature_limit([(b, v) for b, v, _ in blocks], filename)
    where = f"label column {quoted(profile.label)}"
    labels, variants = merge_label_variants(frame[profile.label][keep], merge_labels, filename, where)
    y, class_names = check_labels(labels, filename, where)
    x = np.empty((int(keep.sum()), start), dtype=np.float32)
    for block, values, _ in blocks:
        x[:, block.start:block.stop] = values
    id_name, ids = case_ids(raw, profile)
    texts = None
    if text_columns:
        cells = [_as_text(frame[name])[keep].fillna("").tolist() for name in text_columns]
        texts = as_texts(list(zip(*cells, strict=True)))
    return Dataset(PurePosixPath(filename).stem, x, y, class_names, "tabular",
                   tuple(name for _, _, names in blocks for name in names), columns=tuple(b for b, _, _ in blocks),
                   label_variants=variants, ids=ids[keep], id_name=id_name, texts=texts,
                   text_names=tuple(text_columns))


def case_ids(raw: RawTable, profile: TableProfile) -> tuple[str, np.ndarray]:
    """(what identifies a row, each row's identifier as text): the first ID-like column (its
    value; an empty cell becomes "(row N)"), else the row number in the file as a
    spreadsheet shows it (the header is row 1). Left out of the features either way, it
    names the case wherever one is listed, so a clinician can find the patient."""
    rows = np.arange(len(raw.frame)) + raw.first_row
    column = next((c.name for c in profile.columns if c.role == "id"), None)
    if column is None:
        return ROW_IDS, as_ids(rows)
    text = _as_text(raw.frame[column])
    return column, as_ids(v if isinstance(v, str) else f"({ROW_IDS} {r})" for v, r in zip(text, rows, strict=True))
