"""Column roles of an uploaded table: what each column is, why we think so, and its gaps.

Exported spreadsheets carry patient IDs, free-text notes, constant columns and dates next
to the measurements. One-hot encoding an ID gives one feature per row and drowns every
view that ranks features, so each column gets a detected role (number, category, date,
ID-like, free text, constant) with a reason a person can check, and only numbers,
categories, dates and free text (through a text encoder, after the split) become features
unless the user says otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.data._errors import DataError, missing_labels, quoted, short_list

__all__ = [
    "ROLE_LABELS", "ROLE_HELP", "USED_ROLES", "ColumnProfile", "TableProfile", "profile_table", "suggest_label",
    "column_values",
]

ROLE_LABELS = {"label": "label", "numeric": "number", "categorical": "category", "date": "date", "id": "ID-like",
               "text": "free text", "constant": "constant", "ignore": "left out"}
ROLE_HELP = {
    "numeric": "a measurement or count; used as it is (scaled)",
    "categorical": "a few named groups; one yes/no feature per group",
    "date": "used as the number of days since 1970",
    "id": "a different value in (nearly) every row, like a patient number; left out",
    "text": "sentences or notes; turned into word features by the run's text encoder (fitted on training rows)",
    "constant": "the same in every row, so it tells classes apart nowhere; left out",
    "ignore": "left out by choice",
}
USED_ROLES = frozenset({"numeric", "categorical", "date", "text"})
F32_MAX = float(np.finfo(np.float32).max)
MAX_CATEGORIES = 100  # more distinct text values than this: an identifier or free text, not a category
MAX_GUESSED_CLASSES = 50
MIN_TEXT_PHRASES = 30  # this many distinct entries of 3 or more words each: notes, not named groups
LABEL_WORDS = ("label", "labels", "target", "class", "classes", "y", "diagnosis", "dx", "outcome", "category",
               "response")
ID_WORDS = {"id", "ids", "identifier", "uuid", "guid", "key", "mrn", "ssn", "nhs", "record", "accession", "index",
            "no", "nr", "num", "number"}
DATE_FORMATS = ("ISO8601", "%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y", "%d-%m-%Y", "%Y/%m/%d", "%d/%m/%y", "%m/%d/%y",
                "%d %b %Y", "%d %B %Y", "%b %d %Y", "%b %d, %Y", "%B %d, %Y", "%d-%b-%Y")
SAMPLE = 500


def _words(name: str) -> list[str]:
    """'patientID' / 'patient_id' / 'Patient ID' -> ['patient', 'id']."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", str(name))
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def _id_like_name(name: str) -> bool:
    return bool(set(_words(name)) & ID_WORDS)


def _label_like_name(name: str) -> int | None:
    """Rank of a label-like name (lower is better), None when it does not look like one."""
    words = _words(name)
    for rank, word in enumerate(LABEL_WORDS):
        if word in words:
            return rank
    return None


def _number_text(v: float) -> str | None:
    if not np.isfinite(v):
        return None
    return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:g}"


def _as_text(series: pd.Series) -> pd.Series:
    """Cells as stripped text, NaN for empty ones; whole floats written without '.0'."""
    if pd.api.types.is_float_dtype(series.dtype):
        text = pd.Series([_number_text(v) for v in series.to_numpy(np.float64)], index=series.index, dtype="str")
        return text.where(series.notna())
    text = series.astype("str") if not pd.api.types.is_string_dtype(series.dtype) else series
    text = text.str.strip()
    return text.where(series.notna() & text.ne(""))


@dataclass(frozen=True)
class _Detected:
    role: str
    reason: str
    date_format: str | None = None
    distinct: int = 0
    max_share: float = 0.0  # most common value's share of the filled cells (label guess)
    min_share: float = 0.0


def _numeric_share(text: pd.Series) -> float:
    sample = text.dropna().head(SAMPLE)
    return float(pd.to_numeric(sample, errors="coerce").notna().mean()) if len(sample) else 0.0


_DATE_LIKE = (r"^\d{1,4}[-/. ]([A-Za-z]{3,9}|\d{1,2})[-/. ,]+\d{1,4}([ T]\d{1,2}:\d{2}.*)?$"  # 2023-08-09, 9 Aug 2023
              r"|^[A-Za-z]{3,9} \d{1,2},? \d{4}$")  # Aug 9, 2023


def _date_format(text: pd.Series) -> str | None:
    """The first of DATE_FORMATS that reads 90 % of a sample, for text that looks like dates."""
    sample = text.dropna().head(200)
    if sample.empty or sample.str.match(_DATE_LIKE).mean() < 0.9:
        return None
    for fmt in DATE_FORMATS:
        if pd.to_datetime(sample, format=fmt, errors="coerce").notna().mean() >= 0.9:
            return fmt
    return None


def _value_shares(values: pd.Series, exact: bool = True) -> dict:
    """Distinct values and the largest / smallest value's share. When a sample alone has
    more values than any class label could, the shares are skipped and (unless `exact`)
    the sample's distinct count stands in for the column's."""
    sample = values.head(5 * SAMPLE)
    in_sample = int(sample.nunique())
    if in_sample > 2 * MAX_GUESSED_CLASSES:
        return dict(distinct=int(values.nunique()) if exact else in_sample, max_share=0.0, min_share=0.0)
    counts = values.value_counts()
    return dict(distinct=len(counts), max_share=float(counts.iloc[0] / len(values)),
                min_share=float(counts.iloc[-1] / len(values)))


def _detect(series: pd.Series) -> _Detected:
    """The role a column looks like it has, and why, from its values alone."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        filled = series.dropna()
        if filled.empty:
            return _Detected("constant", "empty in every row")
        return _Detected("date", f"dates from {filled.min():%Y-%m-%d} to {filled.max():%Y-%m-%d}",
                         date_format="native", distinct=int(filled.nunique()))
    numeric_dtype = pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)
    filled = series.dropna() if numeric_dtype else _as_text(series).dropna()
    filled_n = len(filled)
    if filled_n == 0:
        return _Detected("constant", "empty in every row")
    numbers = filled.to_numpy(np.float64) if numeric_dtype else None
    whole = numeric_dtype and bool(np.all(np.isfinite(numbers) <= (numbers == np.round(numbers))))
    shares = _value_shares(filled, exact=whole or not numeric_dtype)
    distinct = shares["distinct"]
    if distinct == 1:
        return _Detected("constant", f"the same value ({quoted(filled.iloc[0])}) in every filled row", **shares)
    unique_share = distinct / filled_n
    if numeric_dtype or _numeric_share(filled) >= 0.8:
        values = numbers if numeric_dtype else pd.to_numeric(filled, errors="coerce").to_numpy(np.float64)
        finite = values[np.isfinite(values)]
        whole = finite.size > 0 and bool(np.all(finite == np.round(finite)))
        if whole and unique_share >= 0.95 and filled_n >= 20:
            steps = np.diff(np.sort(finite))
            if _id_like_name(series.name) or (steps.size and np.all(steps == 1)):
                return _Detected("id", f"a different whole number in {unique_share:.0%} of rows", **shares)
        if finite.size == 0:
            return _Detected("numeric", "numbers, but none of them finite", **shares)
        extra = "" if numeric_dtype or not np.isnan(values).any() else "; some cells are not numbers"
        return _Detected("numeric", f"numbers from {finite.min():.4g} to {finite.max():.4g}{extra}", **shares)
    fmt = _date_format(filled)
    if fmt is not None:
        dates = pd.to_datetime(filled, format=fmt, errors="coerce").dropna()
        if not dates.empty:
            return _Detected("date", f"dates from {dates.min():%Y-%m-%d} to {dates.max():%Y-%m-%d}", date_format=fmt,
                             **shares)
    words = float(filled.head(SAMPLE).str.count(r"\s+").mean()) + 1
    if filled_n >= 20 and (unique_share >= 0.95 or (_id_like_name(series.name) and unique_share >= 0.5)):
        if words >= 3:
            return _Detected("text", f"free text, about {words:.0f} words, different in {unique_share:.0%} of rows",
                             **shares)
        return _Detected("id", f"unique in {unique_share:.0%} of rows", **shares)
    if distinct > MAX_CATEGORIES or (filled_n >= 20 and unique_share > 0.5):
        if words >= 3:
            return _Detected("text", f"free text: {distinct:,} different entries, about {words:.0f} words each",
                             **shares)
        return _Detected("id", f"{distinct:,} different values in {filled_n:,} rows, like a code", **shares)
    if words >= 3 and distinct >= MIN_TEXT_PHRASES:
        return _Detected("text", f"free text: {distinct} different phrases of about {words:.0f} words; as a category "
                                 f"it would be {distinct} separate features", **shares)
    firsts = sorted(filled.head(5 * SAMPLE).unique().tolist())[:3]
    examples = ", ".join(quoted(v, 16) for v in firsts) + (", …" if distinct > 3 else "")
    return _Detected("categorical", f"{distinct} categories: {examples}", **shares)


def column_values(series: pd.Series, role: str, date_format: str | None = None, *, features: bool = True
                  ) -> tuple[np.ndarray | None, tuple[str, ...], np.ndarray, np.ndarray, np.ndarray]:
    """A used column as features: (values (N, k) float32 with NaN in gaps, categories, empty,
    unusable, non_finite) where the three masks mark empty cells, cells that are not a
    number (or date) and numbers that are infinite or beyond float32. `features=False`
    returns only the masks (values None), for counting gaps."""
    n = len(series)
    no = np.zeros(n, dtype=bool)
    if role == "categorical":
        text = _as_text(series)
        empty = text.isna().to_numpy()
        if not features:
            return None, (), empty, no, no
        codes, categories = pd.factorize(text, sort=True)
        block = np.zeros((n, len(categories)), dtype=np.float32)
        ok = codes >= 0
        block[np.flatnonzero(ok), codes[ok]] = 1.0
        block[~ok] = np.nan
        return block, tuple(str(c) for c in categories), empty, no, no
    if role == "date":
        if date_format == "native":
            dates = pd.to_datetime(series, errors="coerce")
            empty = series.isna().to_numpy()
        else:
            text = _as_text(series)
            empty = text.isna().to_numpy()
            dates = pd.to_datetime(text, format=date_format or "ISO8601", errors="coerce")
        if getattr(dates.dt, "tz", None) is not None:
            dates = dates.dt.tz_localize(None)
        days = ((dates - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)).to_numpy(np.float64)
        unusable = np.isnan(days) & ~empty
        return days.astype(np.float32)[:, None], (), empty, unusable, no
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        values = series.to_numpy(np.float64, na_value=np.nan)
        empty = np.isnan(values)
        unusable = no
    else:
        text = _as_text(series)
        empty = text.isna().to_numpy()
        values = pd.to_numeric(text, errors="coerce").to_numpy(np.float64)
        unusable = np.isnan(values) & ~empty
    with np.errstate(invalid="ignore"):
        non_finite = ~empty & ~unusable & ~(np.abs(values) <= F32_MAX)
    if not features:
        return None, (), empty, unusable, non_finite
    values = np.where(non_finite, np.nan, values).astype(np.float32)
    return values[:, None], (), empty, unusable, non_finite


@dataclass(frozen=True)
class ColumnProfile:
    """One column: its role (detected, or the user's), why, and its gaps."""

    name: str
    role: str  # the role in use: "label", or one of config.ColumnRole
    detected: str  # what `profile_table` found
    reason: str
    empty: int = 0
    unusable: int = 0  # text in a number column, or not a date in a date column
    non_finite: int = 0  # infinite, or beyond what float32 holds (about ±3.4e38)
    date_format: str | None = None
    gap_rows: np.ndarray = field(default=None, repr=False, compare=False)  # row indices with a gap
    examples: tuple[str, ...] = ()  # a few unusable or non-finite cells as written

    @property
    def used(self) -> bool:
        return self.role in USED_ROLES

    @property
    def gaps(self) -> int:
        return self.empty + self.unusable + self.non_finite


@dataclass(frozen=True)
class TableProfile:
    """Every column's role and gaps, the label (given or guessed) and notes from reading."""

    filename: str
    rows: int
    columns: tuple[ColumnProfile, ...]
    label: str | None
    label_reason: str
    label_guessed: bool
    label_missing_rows: np.ndarray = field(repr=False, compare=False)
    first_row: int = 2  # file row number of the first data row (the header is row 1)
    notes: tuple[str, ...] = ()

    def column(self, name: str) -> ColumnProfile:
        return next(c for c in self.columns if c.name == name)

    @property
    def used(self) -> list[ColumnProfile]:
        return [c for c in self.columns if c.used]

    @property
    def left_out(self) -> list[ColumnProfile]:
        return [c for c in self.columns if c.role != "label" and not c.used]

    @property
    def overrides(self) -> dict[str, str]:
        return {c.name: c.role for c in self.columns if c.role not in ("label", c.detected)}

    def gap_mask(self) -> np.ndarray:
        """Rows with a gap in a used column (rows without a label are separate)."""
        mask = np.zeros(self.rows, dtype=bool)
        for c in self.used:
            if c.gap_rows is not None and len(c.gap_rows):
                mask[c.gap_rows] = True
        return mask

    @property
    def gap_cells(self) -> int:
        return sum(c.gaps for c in self.used)


def suggest_label(frame: pd.DataFrame, detected: Mapping[str, _Detected] | None = None) -> tuple[str | None, str]:
    """(column, why) for the likely label: a few repeated values and a label-like name, else
    the most unequal category column; never a continuous number, an ID or free text."""
    detected = detected or {str(c): _detect(frame[c]) for c in frame.columns}

    def candidate(d: _Detected, limit: int) -> bool:
        return d.role in ("categorical", "numeric") and 2 <= d.distinct <= limit and (
            d.role == "categorical" or d.distinct <= 20)

    named = [(rank, i, name) for i, (name, d) in enumerate(detected.items())
             if (rank := _label_like_name(name)) is not None
             and (candidate(d, 2 * MAX_GUESSED_CLASSES) or d.role == "constant" and d.distinct == 1)]
    if named:
        name = min(named)[2]
        return name, f"named like a label, with {detected[name].distinct} classes"
    for role, what in (("categorical", "text"), ("numeric", "whole-number")):
        pool = [(d.max_share / max(d.min_share, 1e-12), name) for name, d in detected.items()
                if d.role == role and candidate(d, MAX_GUESSED_CLASSES)]
        if pool:
            ratio, name = max(pool)
            return name, (f"no column is named like a label; the most unequal {what} column, "
                          f"{detected[name].distinct} classes, {ratio:.0f} : 1")
    return None, "no column has a few repeated values that could name classes"


def profile_table(frame: pd.DataFrame, filename: str, label_column: str | None = None,
                  roles: Mapping[str, str] | None = None, *, first_row: int = 2,
                  notes: tuple[str, ...] = ()) -> TableProfile:
    """Detect every column's role, apply the user's `roles`, count each used column's gaps."""
    roles = dict(roles or {})
    names = [str(c) for c in frame.columns]
    unknown = [r for r in roles if r not in names]
    if unknown:
        raise DataError(f"{filename}: column_roles names {short_list([quoted(u) for u in unknown])}, not in the "
                        f"file; its columns are {short_list([quoted(c) for c in names], 5)}.")
    if label_column is not None and label_column not in names:
        raise DataError(f"{filename}: no column named {quoted(label_column)}; its columns are "
                        f"{short_list([quoted(c) for c in names], 5)}.")
    detected = {name: _detect(frame[name]) for name in names}
    guessed = label_column is None
    label, reason = (label_column, "chosen") if label_column else suggest_label(frame, detected)
    columns = []
    for name in names:
        d = detected[name]
        if name == label:
            columns.append(ColumnProfile(name, "label", d.role, "the class to predict"))
            continue
        role = roles.get(name, d.role)
        reason_text = d.reason if role == d.role else f"set by you (looked like: {ROLE_LABELS[d.role]}, {d.reason})"
        if role not in USED_ROLES or role == "text":  # an empty note is an empty text, not a gap
            columns.append(ColumnProfile(name, role, d.role, reason_text, date_format=d.date_format))
            continue
        fmt = d.date_format if role == "date" else None
        if role == "date" and fmt is None:
            fmt = "ISO8601"
        _, _, empty, unusable, non_finite = column_values(frame[name], role, fmt, features=False)
        bad = unusable | non_finite
        examples = tuple(dict.fromkeys(quoted(v, 16) for v in frame[name][bad].head(20).tolist()))[:3]
        columns.append(ColumnProfile(name, role, d.role, reason_text, int(empty.sum()), int(unusable.sum()),
                                     int(non_finite.sum()), fmt, np.flatnonzero(empty | bad), examples))
    label_missing = np.flatnonzero(missing_labels(frame[label])) if label else np.array([], dtype=np.int64)
    return TableProfile(filename, len(frame), tuple(columns), label, reason, guessed, label_missing, first_row, notes)
