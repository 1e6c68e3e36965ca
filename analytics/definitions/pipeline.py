"""The analysis chain from a loaded dataset to the tables every page and export reads.

``analyse`` runs files -> per-patient-day frame -> cycle windows -> per-patient-cycle table ->
cohort table, and the patient status and safety tables of SPEC §5, once, for one set of
parameters; pages and the export command call it and never recompute a definition themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

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
