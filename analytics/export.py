"""The export contract (SPEC §4): the four export files as bytes, and their atomic writing.

``export_files`` renders patient_cycles.csv, cohort_cycles.csv, rejected_rows.csv and
manifest.json; the command line and the dashboard's download buttons both call it, so the same data
and parameters give the same bytes. Every CSV goes through ``csv_bytes``: booleans as true/false,
dates as YYYY-MM-DD, missing values as empty cells, and text cells that a spreadsheet would run as a
formula (starting with =, +, -, @, tab or carriage return) prefixed with a single quote.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from analytics import __version__
from analytics.cohort import COHORT_CYCLE_COLUMNS
from analytics.cycles import PATIENT_CYCLE_COLUMNS
from analytics.load import Dataset
from analytics.pipeline import Analysis

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
RESULT_FILES = ("patient_cycles.csv", "cohort_cycles.csv")
EXPORT_FILES = (*RESULT_FILES, "rejected_rows.csv", "manifest.json")


def _text_cell(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _csv_column(column: pd.Series) -> pd.Series:
    """One column as the strings written to CSV."""
    if pd.api.types.is_bool_dtype(column) or str(column.dtype) == "boolean":
        return column.map({True: "true", False: "false"}).astype(object).where(column.notna(), "")
    if pd.api.types.is_datetime64_any_dtype(column):
        return column.dt.strftime("%Y-%m-%d").where(column.notna(), "")
    if pd.api.types.is_integer_dtype(column):
        return column.astype(object).where(column.notna(), "").map(str)
    if pd.api.types.is_float_dtype(column):
        values = column.astype("float64")
        return values.map(repr).where(values.notna(), "")
    return column.map(_text_cell)


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The one CSV writer of the project (UTF-8, header row, formula-safe text cells)."""
    text = pd.DataFrame({name: _csv_column(frame[name]) for name in frame.columns}, columns=frame.columns)
    text.columns = [_text_cell(c) for c in frame.columns]
    return text.to_csv(index=False, lineterminator="\n").encode("utf-8")


def manifest(
    analysis: Analysis, dataset: Dataset, exported_at: datetime, extra: Mapping[str, object] | None = None
) -> dict[str, object]:
    """as_of, every parameter, per input file its SHA-256 and row counts, version and time."""
    parameters = analysis.config.parameters()
    parameters["as_of"] = analysis.as_of.date().isoformat()
    return {
        "as_of": analysis.as_of.date().isoformat(),
        "as_of_source": "given" if analysis.config.as_of else "latest accepted session or diary date",
        "parameters": parameters,
        "files": {
            f.file: {
                "sha256": f.sha256,
                "rows_read": f.rows_read,
                "rows_accepted": f.rows_accepted,
                "rows_rejected": f.rows_rejected,
                "columns_ignored": list(f.columns_ignored),
            }
            for f in dataset.files
        },
        "rows_rejected_total": int(len(dataset.rejected)),
        "software": {"name": "botox-outcomes-analytics", "version": __version__},
        "exported_at": exported_at.astimezone(UTC).isoformat(timespec="seconds"),
        "definitions": "SPEC.md §3; the project's data dictionary (README) documents the rest",
        **(dict(extra) if extra else {}),
    }


def export_files(
    analysis: Analysis,
    dataset: Dataset,
    exported_at: datetime | None = None,
    extra_manifest: Mapping[str, object] | None = None,
) -> dict[str, bytes]:
    """The four export files of SPEC §4, by file name."""
    exported_at = exported_at or datetime.now(UTC)
    patient_table = analysis.patient_cycles[PATIENT_CYCLE_COLUMNS]
    cohort_table = analysis.cohort_cycles[[c for c in analysis.cohort_cycles.columns if c in COHORT_CYCLE_COLUMNS or c.startswith("new_responder_50_ci")]]
    return {
        "patient_cycles.csv": csv_bytes(patient_table),
        "cohort_cycles.csv": csv_bytes(cohort_table),
        "rejected_rows.csv": csv_bytes(dataset.rejected),
        "manifest.json": (json.dumps(manifest(analysis, dataset, exported_at, extra_manifest), indent=2) + "\n").encode(),
    }


def write_atomically(files: Mapping[str, bytes], out_dir: Path) -> None:
    """Write every file or none: all go to a temporary folder beside ``out_dir``, then move in.

    A new ``out_dir`` appears whole with one rename; in an existing one each file is replaced by
    ``os.replace`` (the manifest last), so no reader sees a half-written table.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        for name, data in files.items():
            with open(staging / name, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        if not out_dir.exists():
            os.rename(staging, out_dir)
            return
        for name in sorted(files, key=lambda n: n == "manifest.json"):
            os.replace(staging / name, out_dir / name)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
