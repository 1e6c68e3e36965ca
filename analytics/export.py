"""The export contract (SPEC §4): the four export files as bytes, and their atomic writing.

``export_files`` renders patient_cycles.csv, cohort_cycles.csv, rejected_rows.csv and
manifest.json; the command line and the dashboard's download buttons both call it, so the same data
and parameters give the same bytes. Every CSV goes through ``csv_bytes``: booleans as true/false,
dates as YYYY-MM-DD, missing values as empty cells, and text cells that a spreadsheet would run as a
formula (starting with =, +, -, @, tab or carriage return) prefixed with a single quote. A text cell
that is a plain number such as -4.5 or +1e3 is left alone: a spreadsheet can only read it as that
number, and a rejected value is shown back to the user as it was typed.
"""

from __future__ import annotations

import json
import os
import re
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
from analytics.suppression import describe, suppress_cohort_cycles, suppress_rejections

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
RESULT_FILES = ("patient_cycles.csv", "cohort_cycles.csv")
EXPORT_FILES = (*RESULT_FILES, "rejected_rows.csv", "manifest.json")
SUPPRESSED_EXPORT_FILES = ("cohort_cycles.csv", "rejected_counts.csv", "manifest.json")
PATIENT_LEVEL_FILES = ("patient_cycles.csv", "rejected_rows.csv")


def _text_cell(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text) else text


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
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    texts = np.asarray([_text_cell(u) for u in uniques] + [""], dtype=object)  # code -1 (missing) -> ""
    return pd.Series(texts[codes], index=column.index)


_NEEDS_QUOTES = re.compile(r'[,"\n\r]')


def _csv_field(text: str) -> str:
    """RFC 4180 quoting. The csv module (and so ``DataFrame.to_csv``) with a "\\n" line end leaves a bare
    carriage return unquoted, which a spreadsheet reads as a new row, whose first cell could then be
    a formula; so quoting is done here, for a comma, a quote, a line feed or a carriage return."""
    return '"' + text.replace('"', '""') + '"' if _NEEDS_QUOTES.search(text) else text


def _csv_fields(cells: pd.Series, lone: bool) -> np.ndarray:
    # Each distinct value is quoted once: a diary column holds few distinct values.
    codes, uniques = pd.factorize(cells, use_na_sentinel=False)
    fields = np.asarray([_csv_field(str(u)) for u in uniques], dtype=object)[codes]
    # A row of one empty field would be a blank line, which readers skip: write it as "".
    return np.where(fields == "", '""', fields) if lone else fields


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The one CSV writer of the project (UTF-8, header row, "\\n" line ends, formula-safe text cells)."""
    lone = frame.shape[1] == 1
    lines = np.full(len(frame), "", dtype=object)
    for position, name in enumerate(frame.columns):
        fields = _csv_fields(_csv_column(frame[name]), lone)
        lines = fields if position == 0 else lines + "," + fields
    header = ",".join(_csv_field(_text_cell(c)) for c in frame.columns)
    return ("\n".join([header, *lines]) + "\n").encode("utf-8")


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
        "rows_rejected_total": dataset.rejected_total(),
        **_listing_note(dataset),
        "software": {"name": "botox-outcomes-analytics", "version": __version__},
        "exported_at": exported_at.astimezone(UTC).isoformat(timespec="seconds"),
        "definitions": "SPEC.md §3; the project's data dictionary (README) documents the rest",
        **(dict(extra) if extra else {}),
    }


def _listing_note(dataset: Dataset) -> dict[str, object]:
    """When rejected_rows.csv does not list every rejected row: how many it lists, and the exact counts."""
    listed = dataset.rejected_listed_per_file()
    if not listed:
        return {}
    counts = dataset.rejection_counts()
    return {
        "rejected_rows_listed": len(dataset.rejected),
        "rejected_rows_note": (
            "rejected_rows.csv lists the first rejected rows of each file (by line), at most "
            f"{max(listed.values()):,} per file; rows_rejected counts every rejected row. For "
            + ", ".join(listed)
            + " the exact counts by reason are in rejected_rows_by_reason."
        ),
        "rejected_rows_by_reason": {
            name: {r: int(n) for r, n in zip(group["reason"], group["rows"], strict=True)}
            for name, group in counts[counts["file"].isin(list(listed))].groupby("file", sort=True)
        },
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
    cohort_table = analysis.cohort_cycles[
        [c for c in analysis.cohort_cycles.columns if c in COHORT_CYCLE_COLUMNS or c.startswith("new_responder_50_ci")]
    ]
    return {
        "patient_cycles.csv": csv_bytes(patient_table),
        "cohort_cycles.csv": csv_bytes(cohort_table),
        "rejected_rows.csv": csv_bytes(dataset.rejected),
        "manifest.json": (
            json.dumps(manifest(analysis, dataset, exported_at, extra_manifest), indent=2) + "\n"
        ).encode(),
    }


def suppressed_export_files(
    analysis: Analysis,
    dataset: Dataset,
    min_cell: int,
    exported_at: datetime | None = None,
    extra_manifest: Mapping[str, object] | None = None,
) -> dict[str, bytes]:
    """The export to share outside the clinic (``--min-cell K``): aggregate tables only, small cells suppressed.

    No patient_cycles.csv and no rejected_rows.csv, which name patients. cohort_cycles.csv goes
    through ``suppression.suppress_cohort_cycles``; rejected_counts.csv gives rejected rows per file
    and reason; the manifest's per-file row counts are suppressed with them (and its total over
    files left out, which would undo that), and it records ``min_cell`` and the rule.
    """
    exported_at = exported_at or datetime.now(UTC)
    cohort = suppress_cohort_cycles(analysis.cohort_cycles, min_cell)
    reasons, counts = suppress_rejections(dataset.file_summary(), dataset.rejection_counts(), min_cell)
    record = manifest(analysis, dataset, exported_at, extra_manifest)
    record.pop("rows_rejected_total")
    for key in ("rejected_rows_listed", "rejected_rows_note", "rejected_rows_by_reason"):  # no rejected_rows.csv here
        record.pop(key, None)
    shown = counts.set_index("file")
    columns = ("rows_read", "rows_accepted", "rows_rejected")
    record["files"] = {
        name: {**entry, **{c: _count_or_marker(shown.at[name, c]) for c in columns}}
        for name, entry in record["files"].items()  # type: ignore[attr-defined]
    }
    record["min_cell"] = min_cell
    record["suppression"] = describe(min_cell)
    return {
        "cohort_cycles.csv": csv_bytes(cohort),
        "rejected_counts.csv": csv_bytes(reasons),
        "manifest.json": (json.dumps(record, indent=2) + "\n").encode(),
    }


def _count_or_marker(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def write_atomically(files: Mapping[str, bytes], out_dir: Path) -> None:
    """Write every file or none: all go to a temporary folder beside ``out_dir``, then move in.

    A new ``out_dir`` appears whole with one rename; in an existing one each file is replaced by
    ``os.replace`` (the manifest last), so no reader sees a half-written table. If a replacement
    fails midway (a table held open by a spreadsheet on Windows, say), the files already replaced
    are put back, so the folder never mixes new tables with a previous export's.
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
        previous = staging / ".previous"
        previous.mkdir()
        replaced: list[str] = []
        try:
            for name in sorted(files, key=lambda n: n == "manifest.json"):
                if (out_dir / name).exists():
                    _keep_copy(out_dir / name, previous / name)
                os.replace(staging / name, out_dir / name)
                replaced.append(name)
        except OSError:
            for name in replaced:
                if (previous / name).exists():
                    os.replace(previous / name, out_dir / name)
                else:
                    (out_dir / name).unlink(missing_ok=True)
            raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _keep_copy(path: Path, copy: Path) -> None:
    """A hard link to ``path`` (no data copied), or a copy where the file system has no links."""
    try:
        os.link(path, copy)
    except OSError:
        shutil.copy2(path, copy)
