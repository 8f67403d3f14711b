"""Numbers written with thousands separators: "1.234,5" (points for thousands, a decimal comma,
as much of Europe writes them) and "1,234.5" (commas for thousands).

A CSV reader without a thousands setting keeps such cells as text, and a column of
distinct text looks like a code: the profile would call a lab value ID-like and leave it
out (or refuse the table when nothing else is left). Each text column's convention is
found from its own cells (a cell such as "1,5" or "1.234,5" can only be one way), never
mixed within a column, and the cells are read as numbers with a note saying so; a column
that uses both conventions is named instead.
"""

from __future__ import annotations

import re

import pandas as pd

from core.data._errors import quoted

__all__ = ["read_separated_numbers"]

_COMMA_DECIMAL = re.compile(r"^[+-]?(\d{1,3}(\.\d{3})+|\d+)(,\d+)?$")  # 1.234,5  12.345,0  1,5  1234
_POINT_DECIMAL = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$")  # 1,234.5  1.5  1234
_SEPARATOR = re.compile(r"[.,]")
MIN_NUMBER_SHARE = 0.8  # as for any number column: some cells may be 'n/a' and count as gaps
WAYS = {",": "1.234,5 (points between thousands, a decimal comma)",
        ".": "1,234.5 (commas between thousands, a decimal point)"}


def _convention(text: pd.Series, decimal: str) -> str | None:
    """',' or '.' (the decimal mark a column uses), 'mixed', or None for a column that is not
    numbers written with separators."""
    comma, point = text.str.match(_COMMA_DECIMAL), text.str.match(_POINT_DECIMAL)
    if (comma | point).mean() < MIN_NUMBER_SHARE or not text.str.contains(_SEPARATOR).any():
        return None
    only_comma, only_point = (comma & ~point).any(), (point & ~comma).any()
    if only_comma and only_point:
        return "mixed"
    way = "," if only_comma else "." if only_point else decimal  # only ambiguous cells: the file's own mark
    return way if (comma if way == "," else point).mean() >= MIN_NUMBER_SHARE else None


def read_separated_numbers(frame: pd.DataFrame, decimal: str = ".") -> tuple[pd.DataFrame, list[str]]:
    """(the frame with text columns of separated numbers read as numbers, one note per
    column read or left as text). `decimal` is the file's decimal mark as sniffed, used for
    columns whose cells fit both conventions ('1.234')."""
    notes = []
    for name in frame.columns:
        series = frame[name]
        if not (pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype)):
            continue
        text = series.dropna().astype("str").str.strip()
        text = text[text.ne("")]
        if text.empty:
            continue
        way = _convention(text, decimal)
        if way is None:
            continue
        if way == "mixed":
            notes.append(f"column {quoted(name)} writes numbers both as 1.234,5 and as 1,234.5, so it was left as "
                         "text; write them one way in the file to use it as numbers.")
            continue
        pattern = _COMMA_DECIMAL if way == "," else _POINT_DECIMAL
        fits = text[text.str.match(pattern)]
        thousands = "." if way == "," else ","
        numbers = fits.str.replace(thousands, "", regex=False).str.replace(",", ".", regex=False)
        if numbers.equals(fits):
            continue  # plain numbers beside some text: nothing to convert
        if len(fits) == len(text):
            converted = pd.Series(float("nan"), index=series.index, dtype="float64")
            converted[numbers.index] = pd.to_numeric(numbers).astype("float64")
        else:  # the cells that are not numbers stay as written and count as gaps
            converted = series.astype("object").copy()
            converted[numbers.index] = numbers
        frame[name] = converted
        notes.append(f"column {quoted(name)} writes numbers as {WAYS[way]}; read as numbers.")
    return frame, notes
