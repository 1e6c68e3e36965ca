"""One patient's rows for the PDF summaries, cut from tables computed once for all patients.

The PDF clinical summary and the plain-words patient page (``analytics.views.summary_pdf``) show
one patient at a time, but the clinic prints many at once (``python -m analytics summary``). So
``PatientRecords`` groups the analysis and ``clinical_tables`` by patient once, and ``record``
hands out one ``PatientRecord``: SPEC §3's windows, SPEC §5's status row with this project's
statements, the daily diary grid, questionnaires and adverse events. ``window_table`` puts the
windows of all patients at once into the numbers the summary prints, with the per-window marks
(medication overuse, late re-injection) that the status table only counts; ``due_within`` picks the patients whose next
injection (SPEC §5 ``next_due``) falls in the coming days. Nothing here recomputes a SPEC definition.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from analytics.definitions.clinical import ClinicalParameters, ClinicalTables, cycle_flags, patient_calendar
from analytics.definitions.config import AnalysisConfig
from analytics.definitions.pipeline import Analysis
from analytics.definitions.status import OFF_TREATMENT
from analytics.ingest.load import Dataset

FACT_COLUMNS = (("sex", "sex"), ("age band", "age_band"), ("clinic", "clinic"))
KINDS = ("doctor", "patient")
"""The summaries: the doctor's one-page clinical summary, the patient's plain-words page."""
PAGE_SIZE_NAMES = ("a4", "letter")


@dataclass(frozen=True)
class SummaryContext:
    """What every patient's PDF of one run shares: parameters, data cut-off, data source, time made."""

    config: AnalysisConfig
    params: ClinicalParameters
    as_of: pd.Timestamp
    source: str
    generated_at: datetime | None = None


@dataclass(frozen=True)
class PatientRecord:
    """Everything the summaries show of one patient."""

    patient_id: str
    cycles: pd.DataFrame
    """The patient's rows of ``patient_cycles`` (cycle 0..n, in order); empty without a session."""
    windows: pd.DataFrame
    """The same windows as the summary prints them (``window_table``)."""
    status: pd.Series | None
    """The patient's row of ``clinical_tables(...).status``; None without a session up to as_of."""
    days: pd.DataFrame
    """The patient's daily diary grid (``clinical.diary_days``)."""
    questionnaires: pd.DataFrame
    """The patient's questionnaires with their bands, by date."""
    adverse_events: pd.DataFrame | None
    """The patient's adverse events by cycle; None when the dataset has no adverse_events.csv."""
    facts: Mapping[str, str] = field(default_factory=dict)
    """sex, age band and clinic from patients.csv, where given."""

    @property
    def treated(self) -> bool:
        return self.status is not None


def _groups(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return {str(key): rows for key, rows in frame.groupby("patient_id", sort=False, observed=True)}


class PatientRecords:
    """The analysis of one dataset, grouped by patient once, handing out ``PatientRecord``s."""

    def __init__(self, analysis: Analysis, dataset: Dataset, tables: ClinicalTables) -> None:
        self.analysis = analysis
        self._cycles = _groups(analysis.patient_cycles.sort_values(["patient_id", "cycle"], kind="stable"))
        windows = window_table(analysis.patient_cycles, analysis.config)
        self._windows = _groups(windows)
        self._status = {str(row["patient_id"]): row for _, row in tables.status.iterrows()}
        self._tables = tables  # a patient's daily grid is built when their record is asked for
        self._questionnaires = _groups(tables.questionnaires.sort_values(["patient_id", "date"], kind="stable"))
        self._has_adverse_events = "adverse_events" in tables.available
        self._adverse_events = _groups(tables.adverse_events)
        patients = dataset.tables["patients"]
        self._facts: dict[str, dict[str, str]] = {}
        for _, row in patients.drop_duplicates("patient_id").iterrows():
            self._facts[str(row["patient_id"])] = {
                label: str(row[column]) for label, column in FACT_COLUMNS if column in row and pd.notna(row[column])
            }
        known = set(self._cycles) | tables.days.patient_ids() | set(self._facts)
        known |= {str(p) for p in dataset.tables["sessions"]["patient_id"].dropna().unique()}
        self.ids: list[str] = sorted(known)
        """Every patient id in the accepted data (treated or not), sorted."""
        self._known = frozenset(known)
        self._empty = {
            "cycles": analysis.patient_cycles.iloc[:0],
            "windows": windows.iloc[:0],
            "questionnaires": tables.questionnaires.iloc[:0],
            "adverse_events": tables.adverse_events.iloc[:0],
        }

    def record(self, patient_id: str) -> PatientRecord:
        """The patient's record; ``KeyError`` for an id that is not in the data."""
        if patient_id not in self._known:
            raise KeyError(patient_id)
        events = self._adverse_events.get(patient_id, self._empty["adverse_events"])
        return PatientRecord(
            patient_id=patient_id,
            cycles=self._cycles.get(patient_id, self._empty["cycles"]).reset_index(drop=True),
            windows=self._windows.get(patient_id, self._empty["windows"]).reset_index(drop=True),
            status=self._status.get(patient_id),
            days=patient_calendar(self.analysis, patient_id, self._tables.params, self._tables.days),
            questionnaires=self._questionnaires.get(patient_id, self._empty["questionnaires"]).reset_index(drop=True),
            adverse_events=events.reset_index(drop=True) if self._has_adverse_events else None,
            facts=self._facts.get(patient_id, {}),
        )

    def unknown(self, patient_ids: Iterable[str]) -> list[str]:
        """The ids among ``patient_ids`` that are not in the data, in the order given."""
        return [p for p in patient_ids if p not in self._known]


def due_within(status: pd.DataFrame, as_of: pd.Timestamp, days: int) -> list[str]:
    """Patients whose next injection is due by as_of + ``days``: SPEC §5 next_due ≤ as_of + days and
    treatment_state active or overdue (a patient already past the due date but not lapsed is due now;
    lapsed and discontinued patients are not expected). In next_due order, then patient_id."""
    limit = as_of + pd.Timedelta(days=days)
    chosen = status[
        status["next_due"].notna() & (status["next_due"] <= limit) & ~status["treatment_state"].isin(OFF_TREATMENT)
    ]
    return [str(p) for p in chosen.sort_values(["next_due", "patient_id"], kind="stable")["patient_id"]]


def window_table(cycles: pd.DataFrame, config: AnalysisConfig) -> pd.DataFrame:
    """Every window (baseline, cycles) of the patients in ``cycles`` as the summary prints them.

    One row per patient and cycle, in patient then cycle order. Columns: patient_id, cycle, label,
    start_date, end_date, status, recorded_days, window_days, completeness, evaluable, mhd, mmd, amd,
    mhd_pct_change (SPEC §3), mmd_pct_change and amd_pct_change (SPEC §3's change rule applied to
    migraine and acute-medication days: both windows evaluable, baseline above 0), response (≥75% /
    50–74% / 30–49% / <30%, from the SPEC responder flags), and ``clinical.cycle_flags``'s marks:
    overuse (medication overuse in that window), interval_days (days since the previous session) and
    late (a late re-injection), each True, False or empty as defined there.
    """
    c = cycles.sort_values(["patient_id", "cycle"], kind="stable").reset_index(drop=True)
    out = c[
        [
            "patient_id",
            "cycle",
            "start_date",
            "end_date",
            "status",
            "recorded_days",
            "window_days",
            "completeness",
            "mhd",
            "mmd",
            "amd",
            "mhd_pct_change",
        ]
    ].copy()
    evaluable = c["evaluable"].eq(True).fillna(False).astype(bool)
    out["evaluable"] = evaluable
    out["label"] = np.where(out["cycle"] == 0, "Baseline", "Cycle " + out["cycle"].astype(str))
    baseline = c[c["cycle"] == 0].set_index("patient_id")
    base_evaluable = c["patient_id"].map(baseline["evaluable"].eq(True)).fillna(False).astype(bool)
    compared = evaluable & base_evaluable & (c["cycle"] >= 1)
    for rate in ("mmd", "amd"):
        base = c["patient_id"].map(baseline[rate].astype("float64")).astype("float64")
        change = 100 * (c[rate].astype("float64") - base) / base.where(base > 0)
        out[f"{rate}_pct_change"] = change.where(compared)
    out["response"] = np.select(
        [
            c["responder_75"].eq(True).fillna(False).astype(bool),
            c["responder_50"].eq(True).fillna(False).astype(bool),
            c["responder_30"].eq(True).fillna(False).astype(bool),
            c["mhd_pct_change"].notna(),
        ],
        ["≥75%", "50–74%", "30–49%", "<30%"],
        "",
    )
    flags = cycle_flags(c, config)
    out["overuse"] = flags["overuse"]
    out["interval_days"] = flags["interval_days"]
    out["late"] = flags["late_reinjection"]
    return out


def diary_completeness(days: pd.DataFrame) -> tuple[int, int, pd.Timestamp | None, pd.Timestamp | None]:
    """Recorded days, calendar days, first and last day of the patient's diary grid (``clinical.diary_days``: from
    the baseline's start or the first diary day to the last cycle's end or the last diary day, never after as_of)."""
    if days.empty:
        return 0, 0, None, None
    return int(days["recorded"].sum()), len(days), days["date"].min(), days["date"].max()
