"""Data quality: what happened to every row read, and how complete the diaries are.

The Data page shows these tables; they are computed here so that the page only renders them. The
file reconciliation restates SPEC §2.1's promise that nothing is silently dropped (rows read =
accepted + rejected, and the rejection report lists exactly the rejected rows of each file) and
names every file of the source that was not read, with the reason; the
completeness distribution bins ``completeness`` of the per-patient-cycle table, the share of a
window's days with a diary entry that decides whether the window is evaluable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.definitions.config import TOLERANCE, AnalysisConfig
from analytics.ingest.load import Dataset

RECONCILIATION_COLUMNS = [
    "file",
    "rows_read",
    "rows_accepted",
    "rows_rejected",
    "rejected_rows_listed",
    "reconciles",
    "columns_ignored",
    "sha256",
]
BASELINE_WINDOW = "baseline (cycle 0)"
TREATMENT_WINDOW = "treatment cycles (1, 2, …)"
NOT_READ_COLUMNS = ["file", "reason"]
NOT_READ_LISTED = 5  # files named in the reconciliation sentence; the table lists them all


def file_reconciliation(dataset: Dataset) -> pd.DataFrame:
    """Per file read: rows read, accepted and rejected, the rejected rows listed, and whether they add up.

    ``reconciles`` is true when rows_read = rows_accepted + rows_rejected and the rejection report
    lists exactly rows_rejected rows of that file, or, beyond its listing cap, lists some and counts
    the rest (``Dataset.rejected_unlisted``).
    """
    listed = dataset.rejected["file"].value_counts()
    unlisted = dataset.rejected_unlisted.groupby("file")["rows"].sum()
    frame = pd.DataFrame(
        [
            {
                "file": f.file,
                "rows_read": f.rows_read,
                "rows_accepted": f.rows_accepted,
                "rows_rejected": f.rows_rejected,
                "rejected_rows_listed": int(listed.get(f.file, 0)),
                "columns_ignored": ", ".join(f.columns_ignored),
                "sha256": f.sha256,
            }
            for f in dataset.files
        ],
        columns=[c for c in RECONCILIATION_COLUMNS if c != "reconciles"],
    )
    counts = ["rows_read", "rows_accepted", "rows_rejected", "rejected_rows_listed"]
    frame[counts] = frame[counts].astype("int64")
    unlisted_rows = frame["file"].map(unlisted).fillna(0).astype("int64")
    frame["reconciles"] = (frame["rows_read"] == frame["rows_accepted"] + frame["rows_rejected"]) & (
        frame["rows_rejected"] == frame["rejected_rows_listed"] + unlisted_rows
    )
    return frame[RECONCILIATION_COLUMNS]


def unreported_rejections(dataset: Dataset) -> int:
    """Rows in the rejection report whose file is not among the files read (should be 0)."""
    return int((~dataset.rejected["file"].isin([f.file for f in dataset.files])).sum())


def files_not_read(dataset: Dataset) -> pd.DataFrame:
    """Every file of the source that was not read, with the reason and a suggestion: file, reason."""
    return pd.DataFrame(dataset.files_not_read, columns=NOT_READ_COLUMNS).astype(str)


@dataclass(frozen=True)
class ReconciliationStatement:
    """The Data page's one-paragraph verdict on the files: ``tone`` is success, warning or error."""

    tone: str
    text: str


def _not_read_sentence(dataset: Dataset) -> str:
    unread = dataset.files_not_read
    if not unread:
        return ""
    listed = "; ".join(f"{name} ({reason})" for name, reason in unread[:NOT_READ_LISTED])
    more = f"; and {len(unread) - NOT_READ_LISTED} more" if len(unread) > NOT_READ_LISTED else ""
    verb = "file was" if len(unread) == 1 else "files were"
    return f" {len(unread)} {verb} not read: {listed}{more}."


def reconciliation_statement(dataset: Dataset) -> ReconciliationStatement:
    """Whether every row is accounted for (rows read = accepted + rejected, all rejected rows listed), and
    every file of the source that was not read: success when both hold, warning when the rows add up but
    a file was not read, error when the row counts do not add up."""
    files = file_reconciliation(dataset)
    read, accepted, rejected = (int(files[c].sum()) for c in ("rows_read", "rows_accepted", "rows_rejected"))
    stray = unreported_rejections(dataset)
    unread = _not_read_sentence(dataset)
    if files["reconciles"].all() and stray == 0:
        shown = int(files["rejected_rows_listed"].sum()) if "rejected_rows_listed" in files else rejected
        listed = (
            f", and the rejection report lists all {rejected:,} rejected rows."
            if rejected and shown == rejected
            else f"; the rejection report lists the first {shown:,} and counts the rest by reason."
            if rejected
            else "."
        )
        text = f"Every row is accounted for: {read:,} rows read = {accepted:,} accepted + {rejected:,} rejected{listed}"
        return ReconciliationStatement("warning" if unread else "success", text + unread)
    broken = ", ".join(files.loc[~files["reconciles"], "file"]) or "none"
    text = (
        f"The row counts do not add up (files: {broken}; rejected rows of unknown files: {stray}). "
        "Please report this: no row should ever be dropped silently."
    )
    return ReconciliationStatement("error", text + unread)


def rejection_summary(dataset: Dataset) -> pd.DataFrame:
    """Rejected rows counted by file and reason (listed or not), the most frequent first."""
    if dataset.rejected.empty and dataset.rejected_unlisted.empty:
        empty = pd.DataFrame({"file": [], "reason": [], "rows": []})
        return empty.astype({"file": str, "reason": str, "rows": "int64"})
    counts = dataset.rejection_counts()
    ordered = counts.sort_values(["rows", "file", "reason"], ascending=[False, True, True], kind="stable")
    return ordered.reset_index(drop=True)


def completeness_bins(patient_cycles: pd.DataFrame, width: float = 0.05) -> pd.DataFrame:
    """Patient-cycle windows per completeness bin, baseline and treatment cycles apart.

    Bins are [0, w), [w, 2w), …, and the last one is closed ([1 − w, 1]); every window of the
    table is counted once, including ongoing cycles with the days so far. Columns: bin_low,
    bin_high, window, windows.
    """
    n_bins = round(1 / width)
    completeness = patient_cycles["completeness"].astype("float64").to_numpy()
    known = ~np.isnan(completeness)
    # A completeness on a bin edge (e.g. 21 of 30 days = 0.7) belongs to the bin it starts, whatever rounding says.
    index = np.minimum(np.floor(completeness[known] * n_bins + TOLERANCE), n_bins - 1).astype(int)
    kinds = np.where(patient_cycles["cycle"].to_numpy()[known] == 0, BASELINE_WINDOW, TREATMENT_WINDOW)
    counts = pd.crosstab(pd.Categorical(index, categories=pd.RangeIndex(n_bins)), kinds, dropna=False)
    counts = counts.reindex(columns=[BASELINE_WINDOW, TREATMENT_WINDOW], fill_value=0)
    stacked = counts.rename_axis(index="bin", columns="window").stack()
    assert isinstance(stacked, pd.Series)  # one column level, so stack gives a Series
    long = stacked.rename("windows").reset_index()
    long["bin"] = long["bin"].astype(int)
    long["bin_low"] = long["bin"] / n_bins
    long["bin_high"] = (long["bin"] + 1) / n_bins
    return long[["bin_low", "bin_high", "window", "windows"]].astype({"windows": "int64"})


@dataclass(frozen=True)
class CompletenessSummary:
    """How complete the diaries are across the patient-cycle windows, with the counts behind it."""

    windows: int
    patients: int
    baseline_windows: int
    treatment_windows: int
    below_threshold: int
    """Windows with completeness under ``min_completeness`` (not evaluable for that reason)."""
    median: float | None
    min_completeness: float

    @property
    def below_share(self) -> float | None:
        return self.below_threshold / self.windows if self.windows else None


def completeness_summary(patient_cycles: pd.DataFrame, config: AnalysisConfig) -> CompletenessSummary:
    completeness = patient_cycles["completeness"].astype("float64")
    below = completeness < config.min_completeness - TOLERANCE
    return CompletenessSummary(
        windows=int(completeness.notna().sum()),
        patients=int(patient_cycles["patient_id"].nunique()),
        baseline_windows=int((patient_cycles["cycle"] == 0).sum()),
        treatment_windows=int((patient_cycles["cycle"] >= 1).sum()),
        below_threshold=int(below.sum()),
        median=float(completeness.median()) if completeness.notna().any() else None,
        min_completeness=config.min_completeness,
    )
