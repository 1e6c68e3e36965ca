"""The analysis chain from a loaded dataset to the tables every page and export reads.

``analyse`` runs files -> per-patient-day frame -> cycle windows -> per-patient-cycle table ->
cohort table, and the patient status and safety tables of SPEC §5, once, for one set of
parameters; pages and the export command call it and never recompute a definition themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.definitions.cohort import cohort_cycles
from analytics.definitions.config import AnalysisConfig
from analytics.definitions.cycles import data_cutoff, patient_cycles
from analytics.definitions.status import counted_adverse_events, patient_status, safety
from analytics.ingest.load import Dataset


@dataclass(frozen=True)
class Analysis:
    """The results of one run of the definitions over one dataset."""

    config: AnalysisConfig
    as_of: pd.Timestamp
    patient_days: pd.DataFrame
    """Accepted diary days up to as_of, each with its cycle (NA outside every window) and day_in_cycle."""
    patient_cycles: pd.DataFrame
    """One row per treated patient and cycle 0..n (SPEC §4 columns, then eligible, n_sessions, baseline_mhd)."""
    cohort_cycles: pd.DataFrame
    """One row per cycle 0..K (SPEC §4 columns)."""
    patient_status: pd.DataFrame
    """One row per treated patient (SPEC §5.1 columns)."""
    adverse_events: pd.DataFrame | None
    """The adverse-event rows SPEC §5.4 counts (treated patients' sessions up to as_of), with the cycle."""
    safety: pd.DataFrame | None
    """Adverse events per event (SPEC §5.4); None when the dataset has no adverse_events.csv."""

    def day_columns(self, columns: Sequence[str]) -> pd.DataFrame:
        """Some columns of ``patient_days``, in its order (an analysis read from the store reads only these)."""
        return self.patient_days[list(columns)]

    def days_by_patient(self) -> PatientDays:
        """``patient_days`` one patient at a time (an analysis read from the store reads that patient's rows)."""
        return PatientDays(self.patient_days)


def rows_by_patient(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The row positions of each patient in ``frame`` (in the frame's order), for picking one patient's rows of a
    large table without comparing every row's patient_id."""
    codes, ids = pd.factorize(frame["patient_id"])
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(ids) + 1))
    return {str(pid): order[bounds[i] : bounds[i + 1]] for i, pid in enumerate(ids)}


class PatientDays:
    """Each patient's rows of a per-patient-day frame (in the frame's order), found without scanning the frame."""

    def __init__(self, frame: pd.DataFrame):
        self._frame = frame
        self._rows = rows_by_patient(frame)

    def patient_ids(self) -> frozenset[str]:
        """The patients with at least one row."""
        return frozenset(self._rows)

    def of(self, patient_id: str) -> pd.DataFrame:
        """The patient's rows (none for a patient without diary days), index reset."""
        return self._frame.iloc[self._rows.get(patient_id, np.empty(0, dtype="int64"))].reset_index(drop=True)


def analyse(dataset: Dataset, config: AnalysisConfig | None = None) -> Analysis:
    config = config or AnalysisConfig()
    return analyse_at(dataset, config, data_cutoff(dataset.tables["sessions"], dataset.tables["diary"], config))


def analyse_at(dataset: Dataset, config: AnalysisConfig, as_of: pd.Timestamp) -> Analysis:
    """``analyse`` with ``as_of`` already known (the partitioned pipeline reduces it over all partitions first)."""
    sessions, diary = dataset.tables["sessions"], dataset.tables["diary"]
    table, days = patient_cycles(sessions, diary, as_of, config, dataset.present_columns.get("diary", frozenset()))
    status = patient_status(table, days, as_of, config, dataset)
    events = counted_adverse_events(table, dataset)
    return Analysis(
        config, as_of, days, table, cohort_cycles(table, as_of, config), status, events, safety(table, events)
    )
