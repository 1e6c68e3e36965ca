"""Table cells as a reader sees them: missing values as a dash, never Python's ``None``/``nan``/``NaT``/``<NA>``.

The dashboard's tables print an empty cell as the word "None", so every table it shows goes through
``readable_cells`` (``ui.render.table``): a column with an empty cell becomes text, its values written
as they would have been shown (dates YYYY-MM-DD, booleans yes/no, numbers in the column's format) and
``EMPTY_CELL`` where empty. Columns without an empty cell keep their type (and their number formats).
The CSV downloads are not changed: there a missing value stays an empty cell (``export.csv_bytes``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import partial

import pandas as pd

EMPTY_CELL = "—"
"""What an empty table cell shows."""

PERCENT = "percent"
"""The number format that writes 0.253 as 25.3%."""

MISSING_WORDS = frozenset({"None", "nan", "NaN", "NaT", "<NA>"})
"""How Python and pandas write a missing value; no shown cell may hold one."""


def _number(value: float, number_format: str | None, places: int) -> str:
    if number_format == PERCENT:
        return f"{value:.1%}"
    if number_format and "%" in number_format:
        return number_format % value
    # Rounded first, and + 0.0 so that a value rounding to −0.0 reads 0; trailing zeros dropped.
    text = f"{round(value, places) + 0.0:.{places}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _shown_number(value: float, number_format: str | None, places: int) -> object:
    return value if pd.isna(value) else _number(float(value), number_format, places)


def _text(value: object) -> object:
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def readable_cells(
    frame: pd.DataFrame, formats: Mapping[str, str | None] | None = None, places: int = 4
) -> pd.DataFrame:
    """``frame`` with every column that has an empty cell turned into text, empty cells as ``EMPTY_CELL``.

    ``formats`` maps a numeric column to its number format (``"percent"`` or a printf format such as
    ``"%.2f"``); other numbers are written with at most ``places`` decimals. Text cells that are blank
    or hold one of ``MISSING_WORDS`` count as empty too.
    """
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        missing = values.isna()
        if values.dtype == object or isinstance(values.dtype, pd.StringDtype):
            missing |= values.astype("string").str.strip().isin(MISSING_WORDS | {""}).fillna(False)
        if not missing.any():
            continue
        if pd.api.types.is_datetime64_any_dtype(values):
            text = values.dt.strftime("%Y-%m-%d")
        elif pd.api.types.is_bool_dtype(values):
            text = values.map({True: "yes", False: "no"})
        elif pd.api.types.is_numeric_dtype(values):
            number_format = (formats or {}).get(column)
            numbers = values.astype("float64")
            text = numbers.map(partial(_shown_number, number_format=number_format, places=places))
        else:
            text = values.map(_text)
        out[column] = text.astype("string").mask(missing, EMPTY_CELL)
    return out
