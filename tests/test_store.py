"""The analysis store: an entry read back is the dataset and analysis that were stored, exactly.

That the dashboard uses it (a restarted server reads the store, not the files) is
``tests/test_app_shell.py::test_a_restarted_server_reads_the_analysis_store``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.definitions.config import SAMPLE_DATA_DIR, AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.ingest.load import load_dataset
from analytics.output.export import export_files
from analytics.output.store import AnalysisStore, analysis_key, source_key

TESTS = Path(__file__).resolve().parent
CASES = [SAMPLE_DATA_DIR, TESTS / "conformance" / "data", TESTS / "hostile" / "corpus" / "ragged_rows"]


@pytest.mark.parametrize("folder", CASES, ids=lambda p: p.name)
def test_a_stored_dataset_and_analysis_come_back_exactly(tmp_path: Path, folder: Path) -> None:
    store = AnalysisStore(tmp_path)
    dataset = load_dataset(folder)
    analysis = analyse(dataset)
    store.put_dataset(source_key(folder), dataset)
    store.put_analysis(dataset, analysis)
    back = store.get_dataset(source_key(folder))
    assert back is not None
    for stem, table in dataset.tables.items():
        pd.testing.assert_frame_equal(back.tables[stem], table, check_exact=True)
    pd.testing.assert_frame_equal(back.rejected, dataset.rejected, check_exact=True)
    assert (back.files, back.present_columns, back.files_not_read) == (
        dataset.files,
        dataset.present_columns,
        dataset.files_not_read,
    )
    stored = store.get_analysis(back, AnalysisConfig())
    assert stored is not None and stored.as_of == analysis.as_of
    for name in ("patient_days", "patient_cycles", "cohort_cycles", "patient_status"):
        pd.testing.assert_frame_equal(getattr(stored, name), getattr(analysis, name), check_exact=True)
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert export_files(stored, back, at) == export_files(analysis, dataset, at)


def test_keys_change_with_any_file_or_parameter(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    for p in CASES[1].iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    before = source_key(folder)
    (folder / "diary.csv").write_bytes((folder / "diary.csv").read_bytes() + b"\n")
    assert source_key(folder) != before
    dataset = load_dataset(folder)
    keys = {
        analysis_key(dataset, AnalysisConfig()),
        analysis_key(dataset, AnalysisConfig(lapse_days=150)),
        analysis_key(dataset, AnalysisConfig(as_of=pd.Timestamp("2024-01-01").date())),
    }
    assert len(keys) == 3
    assert AnalysisStore(tmp_path / "store").get_analysis(dataset, AnalysisConfig()) is None


def test_an_entry_is_whole_or_absent_and_never_rewritten(tmp_path: Path) -> None:
    store = AnalysisStore(tmp_path)
    dataset = load_dataset(CASES[1])
    store.put_dataset("k", dataset)
    entry = tmp_path / "k"
    stamp = (entry / "meta.json").stat().st_mtime_ns
    store.put_dataset("k", dataset)
    assert (entry / "meta.json").stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".staging-")]
    (entry / "meta.json").unlink()  # a torn entry reads as absent
    assert store.get_dataset("k") is None


def test_the_patient_level_tables_come_back_exactly(tmp_path: Path) -> None:
    import dataclasses

    from analytics.definitions.clinical import ClinicalParameters, clinical_tables

    store = AnalysisStore(tmp_path)
    dataset = load_dataset(SAMPLE_DATA_DIR)
    analysis = analyse(dataset)
    tables = clinical_tables(analysis, dataset)
    assert store.get_clinical(dataset, analysis, ClinicalParameters()) is None
    store.put_clinical(dataset, analysis.config, tables)
    back = store.get_clinical(dataset, analysis, ClinicalParameters())
    assert back is not None and back.available == tables.available
    # The tables of the tabs a first page does not show stay on disk until asked for, then are read once.
    from analytics.output.store import ON_DEMAND_CLINICAL

    assert set(ON_DEMAND_CLINICAL) == {"cycle_profile", "adverse_events", "questionnaires"}
    assert not back._read  # type: ignore[attr-defined]
    for name in ("status", *ON_DEMAND_CLINICAL):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(tables, name), check_exact=True)
    assert set(back._read) == set(ON_DEMAND_CLINICAL)  # type: ignore[attr-defined]
    assert all(getattr(back, name) is getattr(back, name) for name in ON_DEMAND_CLINICAL)  # read once, then kept
    copy = dataclasses.replace(back, status=back.status)  # a copy is given the tables it was made from
    assert all(getattr(copy, name) is getattr(back, name) for name in ON_DEMAND_CLINICAL)
    # The injections are read by patient from disk (a row per injection: millions for a network).
    assert back.injections.empty and back.injection_rows is not None
    for patient_id in [*tables.injections["patient_id"].unique(), "NOT-A-PATIENT"]:
        pd.testing.assert_frame_equal(
            back.injections_of(patient_id), tables.injections_of(patient_id), check_exact=True
        )
    assert back.weekly.empty and list(back.weekly.columns) == list(tables.weekly.columns)  # not kept: no page reads it
    assert back.days.patient_ids() == tables.days.patient_ids()
    other = ClinicalParameters(onset_reduction=40.0)
    assert store.get_clinical(dataset, analysis, other) is None  # other thresholds, another entry


@pytest.mark.parametrize("grouped", [True, False], ids=["grouped", "interleaved"])
def test_stored_days_are_read_by_patient_or_by_column_exactly(tmp_path: Path, grouped: bool) -> None:
    """A stored analysis keeps patient_days on disk: one patient's rows (from the row groups that hold them, in
    the frame's order), some columns, or the whole frame, each equal to the in-memory analysis's. Interleaved:
    the patients' days are not grouped, so the store keeps a copy grouped by patient."""
    import dataclasses

    from analytics.definitions.pipeline import PatientDays
    from analytics.output import store as store_module

    dataset = load_dataset(SAMPLE_DATA_DIR)
    analysis = analyse(dataset)
    if not grouped:
        shuffled = analysis.patient_days.sample(frac=1.0, random_state=3).reset_index(drop=True)
        analysis = dataclasses.replace(analysis, patient_days=shuffled)
    store = AnalysisStore(tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store_module, "DAYS_ROW_GROUP", 997)  # many row groups: patients straddle their edges
        store.put_analysis(dataset, analysis)
    stored = store.get_analysis(dataset, AnalysisConfig())
    assert isinstance(stored, store_module.StoredAnalysis) and stored._days is None
    columns = ["patient_id", "cycle", "day_in_cycle", "headache_hours"]
    pd.testing.assert_frame_equal(stored.day_columns(columns), analysis.patient_days[columns], check_exact=True)
    days, expected = stored.days_by_patient(), PatientDays(analysis.patient_days)
    assert stored._days is None  # neither read the whole frame
    assert days.patient_ids() == expected.patient_ids()
    for patient_id in [*sorted(expected.patient_ids()), "no such patient"]:
        pd.testing.assert_frame_equal(days.of(patient_id), expected.of(patient_id), check_exact=True)
    pd.testing.assert_frame_equal(stored.patient_days, analysis.patient_days, check_exact=True)


def test_a_stored_dataset_reads_its_diary_only_when_asked(tmp_path: Path) -> None:
    from analytics.ingest.load import LazyTables

    dataset = load_dataset(SAMPLE_DATA_DIR)
    store = AnalysisStore(tmp_path)
    store.put_dataset("k", dataset)
    back = store.get_dataset("k")
    assert back is not None and isinstance(back.tables, LazyTables)
    assert "diary" not in back.tables._tables
    assert back.row_count("diary") == len(dataset.tables["diary"]) > 0
    assert sorted(back.tables) == sorted(dataset.tables)
    pd.testing.assert_frame_equal(back.tables["diary"], dataset.tables["diary"], check_exact=True)
    assert back.row_count("diary") == len(dataset.tables["diary"])


def test_a_folder_key_is_remembered_until_a_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The files are hashed once per version of the folder: a restart reads the remembered key, and a file whose
    size or modification time changed is hashed again (to the same key as ``source_key``)."""
    import analytics.output.store as stored

    folder = tmp_path / "data"
    folder.mkdir()
    for p in CASES[1].iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    hashed: list[Path] = []
    monkeypatch.setattr(stored, "source_key", lambda f: hashed.append(f) or source_key(f))
    store = AnalysisStore(tmp_path / "store")
    first = store.folder_key(folder)
    assert first == source_key(folder) and AnalysisStore(tmp_path / "store").folder_key(folder) == first
    assert len(hashed) == 1
    (folder / "diary.csv").write_bytes((folder / "diary.csv").read_bytes() + b"\n")
    assert store.folder_key(folder) == source_key(folder) != first
    assert len(hashed) == 2


def test_build_folder_stores_what_the_first_patient_page_needs(tmp_path: Path) -> None:
    """``build_folder`` (python -m analytics store) leaves the dataset, the default analysis and the patient-level
    tables in the store, equal to computing them in memory; a second build computes nothing."""
    from analytics.definitions.clinical import ClinicalParameters, clinical_tables
    from analytics.output.store import build_folder

    store = AnalysisStore(tmp_path)
    said: list[str] = []
    key = build_folder(CASES[1], store, workers=1, say=said.append)
    assert key == source_key(CASES[1]) and said[-1] == "done"
    dataset = store.get_dataset(key)
    assert dataset is not None
    analysis = store.get_analysis(dataset, AnalysisConfig())
    assert analysis is not None
    tables = store.get_clinical(dataset, analysis, ClinicalParameters())
    assert tables is not None
    fresh = load_dataset(CASES[1])
    expected = clinical_tables(analyse(fresh), fresh)
    pd.testing.assert_frame_equal(tables.status, expected.status, check_exact=True)
    assert tables.weekly.empty and not expected.weekly.empty  # no page reads every patient's weeks: not kept
    entries = sorted(p.name for p in tmp_path.iterdir())
    build_folder(CASES[1], store, workers=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == entries


@pytest.mark.parametrize("grouped", [True, False], ids=["grouped", "interleaved"])
def test_a_partitioned_build_keeps_the_workers_parts_and_reads_them_back_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, grouped: bool
) -> None:
    """A folder of several partitions is stored from the workers' Parquet parts (engine.write_parts), not gathered
    into one process: read back, every table, the per-patient-day frame (whole, by column, by patient) and the
    patient-level tables are those of the single process, rows in line order. Interleaved: the diary's rows are
    shuffled, so each part is regrouped by patient and read back in line order."""
    import shutil

    folder = SAMPLE_DATA_DIR
    if not grouped:
        folder = tmp_path / "data"
        shutil.copytree(SAMPLE_DATA_DIR, folder)
        header, *rows = (folder / "diary.csv").read_text().splitlines()
        rows = pd.Series(rows).sample(frac=1.0, random_state=5).tolist()
        (folder / "diary.csv").write_text("\n".join([header, *rows]) + "\n")
        tmp_path = tmp_path / "store"
    from analytics.definitions.clinical import ClinicalParameters, clinical_tables
    from analytics.definitions.pipeline import PatientDays
    from analytics.output import store as store_module
    from analytics.scale.engine import DAYS

    monkeypatch.setattr(store_module, "auto_partitions", lambda folder: 3)
    monkeypatch.setattr(store_module, "DAYS_ROW_GROUP", 997)  # many row groups: patients straddle their edges
    store = AnalysisStore(tmp_path)
    dataset = store.folder_dataset(folder)
    entry = tmp_path / store.folder_key(folder)
    assert sorted(p.name for p in (entry / "table_diary").iterdir())[-1] == "part-00002.parquet"
    fresh = load_dataset(folder)
    for stem, table in fresh.tables.items():
        pd.testing.assert_frame_equal(dataset.tables[stem], table, check_exact=True, obj=stem)
    assert dataset.row_count("diary") == len(fresh.tables["diary"])
    analysis = store.get_analysis(dataset, AnalysisConfig())
    assert isinstance(analysis, store_module.StoredAnalysis)
    assert (tmp_path / analysis_key(dataset, AnalysisConfig()) / DAYS).is_dir()
    expected = analyse(fresh)
    columns = ["patient_id", "cycle", "day_in_cycle", "headache_hours"]
    pd.testing.assert_frame_equal(analysis.day_columns(columns), expected.patient_days[columns], check_exact=True)
    days, by_patient = analysis.days_by_patient(), PatientDays(expected.patient_days)
    assert days.patient_ids() == by_patient.patient_ids()
    for patient_id in [*sorted(by_patient.patient_ids())[::7], "no such patient"]:
        pd.testing.assert_frame_equal(days.of(patient_id), by_patient.of(patient_id), check_exact=True)
    for name in ("patient_days", "patient_cycles", "cohort_cycles", "patient_status"):
        pd.testing.assert_frame_equal(getattr(analysis, name), getattr(expected, name), check_exact=True, obj=name)
    tables = store.get_clinical(dataset, analysis, ClinicalParameters())
    assert tables is not None
    single = clinical_tables(expected, fresh)
    for patient_id in sorted(by_patient.patient_ids())[::50]:
        pd.testing.assert_frame_equal(
            tables.injections_of(patient_id), single.injections_of(patient_id), check_exact=True
        )
    # The Outcomes page's treated days, made from the parts' numbers and their index: those of the single process.
    from analytics.views.outcomes import treated_days

    assert analysis.days_in_parts()
    fast, single_days = store_module._treated_days(analysis), treated_days(expected)
    assert fast.patient_ids.equals(single_days.patient_ids)
    for name in ("patient", "cycle", "day", "headache"):
        assert np.array_equal(getattr(fast, name), getattr(single_days, name)), name
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no parts or staging left behind


def test_a_partitioned_build_computes_the_outcomes_beside_the_clinic_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With two workers, ``build_folder`` computes the Outcomes page's statistics in a forked process while it
    computes the Clinic page's view: the stored statistics are those computed in memory; should that process fail,
    the build computes them itself."""
    from analytics.output import store as store_module
    from analytics.output.store import build_folder, derived_key
    from analytics.views.outcomes import RESULT_PARTS, cohort_results, treated_days

    monkeypatch.setattr(store_module, "auto_partitions", lambda folder: 2)
    forked: list[int] = []
    fork = store_module._fork
    monkeypatch.setattr(store_module, "_fork", lambda work: forked.append(1) or fork(work))
    store = AnalysisStore(tmp_path / "a")
    said: list[str] = []
    build_folder(CASES[1], store, workers=2, say=said.append)
    assert forked == [1] and said[-1] == "done"
    # The dashboard draws the first page on READY: the Clinic page's view is stored by then (its first visit does
    # not wait for it), the Outcomes page's statistics after.
    assert said.index("computing the Clinic page's view ...") < said.index(store_module.READY)
    assert said.index(store_module.READY) < said.index("computing the Outcomes page's statistics ...")
    dataset = store.get_dataset(store.folder_key(CASES[1]))
    assert dataset is not None
    analysis = store.get_analysis(dataset, AnalysisConfig())
    assert analysis is not None
    keys = [derived_key("outcomes", dataset, analysis.config, part) for part in RESULT_PARTS]
    parts = [store_module._get_pickle(store, key) for key in keys]
    assert all(isinstance(part, dict) for part in parts)
    stored = {name: value for part in parts for name, value in part.items()}
    expected = analyse(load_dataset(CASES[1]))
    computed = cohort_results(expected, treated_days(expected))
    assert stored.keys() == computed.keys()
    for name in ("change", "responders", "cumulative", "cohort_cycles", "wilcoxon"):
        pd.testing.assert_frame_equal(stored[name], computed[name], check_exact=True, obj=name)
    pd.testing.assert_frame_equal(stored["weekly"].daily, computed["weekly"].daily, check_exact=True)
    pd.testing.assert_frame_equal(stored["time_to_response"].cumulative(), computed["time_to_response"].cumulative())
    # The forked process fails: the outcomes are computed by the build itself.
    monkeypatch.setattr(store_module, "_fork", lambda work: fork(lambda: os._exit(3)))
    other = AnalysisStore(tmp_path / "b")
    build_folder(CASES[1], other, workers=2)
    for part in RESULT_PARTS:
        assert store_module._get_pickle(other, derived_key("outcomes", dataset, analysis.config, part)) is not None
