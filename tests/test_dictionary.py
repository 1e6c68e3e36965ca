"""The generated data dictionary (analytics.views.dictionary) against its sources of truth.

Each input column must come from ``schemas.FILES`` once, with the rejection reasons the loader
really gives; the parameters must show the values of the configuration in use; every definition
must have its parameter placeholders filled with those values; every column of the SPEC §4 exports
must be documented by a SPEC §3 definition, and every column of the SPEC §5 tables by a SPEC §5 one;
the dictionary carries no description of the patient-level rules that SPEC §5 replaced; and analytics
modules contribute their own ``DEFINITIONS`` (in any of the accepted shapes) without a missing module breaking anything.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from datetime import date
from types import ModuleType

import pandas as pd
import pytest

from analytics.definitions.cohort import COHORT_CYCLE_COLUMNS
from analytics.definitions.config import AnalysisConfig, parameter_docs
from analytics.definitions.cycles import PATIENT_CYCLE_COLUMNS
from analytics.definitions.status import PATIENT_STATUS_COLUMNS, SAFETY_COLUMNS
from analytics.ingest import schemas
from analytics.ingest.load import load_dataset
from analytics.output.export import csv_bytes
from analytics.views import dictionary

SPEC_SOURCES = ("SPEC §3", "SPEC §5")


def row(frame: pd.DataFrame, **match: object) -> pd.Series:
    selected = frame
    for column, value in match.items():
        selected = selected[selected[column] == value]
    assert len(selected) == 1, f"{match}: {len(selected)} rows"
    return selected.iloc[0]


def test_every_input_column_appears_once_with_its_file_and_required_flag() -> None:
    columns = dictionary.column_dictionary()
    listed = columns[columns["column"] != "(row)"]
    expected = {(spec.filename, c.name, c.required) for spec in schemas.FILES.values() for c in spec.columns}
    assert set(zip(listed["file"], listed["column"], listed["required"], strict=True)) == expected
    assert len(listed) == len(expected)


def test_rejection_reasons_are_the_loaders_words(write_dataset, tmp_path) -> None:
    columns = dictionary.column_dictionary()
    assert row(columns, file="diary.csv", column="headache_hours")["rejection_reason"] == (
        "missing required value; headache_hours out of range"
    )
    assert row(columns, file="patients.csv", column="sex")["rejection_reason"] == "invalid sex"
    assert row(columns, file="sessions.csv", column="injector_id")["rejection_reason"] == ""  # free text
    assert row(columns, file="sessions.csv", column="total_units")["valid_values"] == "number in (0, 400]"
    # The documented reason is what the loader writes for such a row.
    folder = write_dataset(
        tmp_path,
        sessions="patient_id,session_date\nP1,2024-01-01\n",
        diary="patient_id,date,headache_hours\nP1,2024-01-02,25\n",
    )
    assert load_dataset(folder).rejected["reason"].tolist() == ["headache_hours out of range"]


def test_row_rules_list_the_duplicate_and_relation_reasons() -> None:
    rules = dictionary.column_dictionary().query("column == '(row)'")
    diary_reasons = set(rules.loc[rules["file"] == "diary.csv", "rejection_reason"])
    assert {schemas.DUPLICATE_ROW, schemas.CONFLICT, schemas.UNKNOWN_PATIENT} <= diary_reasons
    assert schemas.UNKNOWN_SESSION in set(rules.loc[rules["file"] == "injections.csv", "rejection_reason"])
    assert schemas.DUPLICATE_PATIENT in set(rules.loc[rules["file"] == "patients.csv", "rejection_reason"])


def test_parameters_show_current_values_and_which_differ_from_the_defaults() -> None:
    config = AnalysisConfig(min_completeness=0.8, headache_min_hours=3.5)
    table = dictionary.parameter_dictionary(config, modules=())
    assert list(table["parameter"]) == [d["parameter"] for d in parameter_docs()]
    completeness = row(table, parameter="min_completeness")
    assert completeness[["value", "default", "differs_from_default"]].tolist() == ["0.8", "0.7", True]
    assert row(table, parameter="headache_min_hours")["value"] == "3.5"
    assert row(table, parameter="cycle_days")[["value", "differs_from_default"]].tolist() == ["84", False]
    assert row(table, parameter="responder_thresholds")["value"] == "30%, 50%, 75%"
    assert table["differs_from_default"].sum() == 2


@pytest.mark.parametrize(
    ("config", "as_of", "expected"),
    [
        (AnalysisConfig(as_of=date(2025, 6, 30)), None, "2025-06-30 (set in the parameters)"),
        (AnalysisConfig(), pd.Timestamp("2025-11-30"), "2025-11-30 (the latest accepted session or diary date)"),
    ],
)
def test_the_cut_off_says_where_it_comes_from(config: AnalysisConfig, as_of: object, expected: str) -> None:
    assert row(dictionary.parameter_dictionary(config, as_of, modules=()), parameter="as_of")["value"] == expected
    cut_off = row(dictionary.definition_dictionary(config, as_of, modules=()), term="Data cut-off (as_of)")
    assert cut_off["definition"].startswith(expected)


def test_definitions_state_the_parameter_values_in_use() -> None:
    config = AnalysisConfig(min_completeness=0.8, min_window_days=21, headache_min_hours=2, cycle_days=90)
    table = dictionary.definition_dictionary(config, modules=())
    evaluable = row(table, term="Evaluable window")
    assert evaluable["definition"] == "completeness ≥ 0.8 and window_days ≥ 21."
    assert evaluable["parameters"] == "min_completeness = 0.8; min_window_days = 21"
    assert row(table, term="Headache day")["definition"] == "A recorded diary day with headache_hours ≥ 2 h."
    assert "Dk + 90 − 1" in row(table, term="Cycle k")["definition"]
    assert not table["definition"].str.contains(r"\{[a-z_]+\}").any()  # no placeholder left unfilled


def test_every_export_column_is_documented_by_a_spec_definition() -> None:
    spec = dictionary.definition_dictionary(AnalysisConfig(), modules=("analytics.definitions.status",)).query(
        "source in ('SPEC §3', 'SPEC §5')"
    )
    documented = {name.strip() for text in spec["columns"] for name in text.split(",") if name.strip()}
    assert set(PATIENT_CYCLE_COLUMNS) | set(COHORT_CYCLE_COLUMNS) <= documented


def test_every_status_and_safety_column_is_documented_by_a_spec_5_definition() -> None:
    spec = dictionary.definition_dictionary(AnalysisConfig(), modules=()).query("source == 'SPEC §5'")
    documented = {name.strip() for text in spec["columns"] for name in text.split(",") if name.strip()}
    assert set(PATIENT_STATUS_COLUMNS) | set(SAFETY_COLUMNS) <= documented


def test_spec_5_definitions_state_the_values_in_use() -> None:
    config = AnalysisConfig(lapse_days=150, chronic_min_migraine_days=6, episodic_max_days=12, stopping_cycle=3)
    table = dictionary.definition_dictionary(config, modules=())
    state = row(table, term="Treatment state, next due date, days overdue (SPEC §5.1)")
    assert "overdue when g ≤ 150, lapsed beyond" in state["definition"]
    assert "lapse_days = 150" in state["parameters"]
    chronic = row(table, term="Chronic migraine, medication overuse and NICE suitability at baseline (SPEC §5.1)")
    assert "baseline mmd ≥ 6 " in chronic["definition"]
    assert (
        "threshold (12; EHF: 10)"
        in row(
            table,
            source="SPEC §5",
            columns=("episodic_converted_on, episodic_now, ehf_episodic_converted_on, ehf_episodic_now"),
        )["definition"]
    )
    assert "cycle 3 has no mhd_pct_change" in row(table, term="NICE TA260 non-response rule (SPEC §5.2)")["definition"]


def test_no_description_of_the_rules_spec_5_replaced() -> None:
    # The project's earlier versions (a stopping_state, episodic_converted ever-true flags, conversion periods with
    # their own ehf_max_days) are gone: the dictionary describes only SPEC §5's and the project's own definitions.
    table = dictionary.definition_dictionary(AnalysisConfig())
    text = " ".join(table["definition"]) + " ".join(table["columns"]) + " ".join(table["parameters"])
    removed = ("stopping_state", "episodic_converted ", "ehf_max_days", "28-day periods since the first injection")
    assert not [phrase for phrase in removed if phrase in text]
    own = table[table["source"] == "analytics.definitions.clinical"]
    assert {"Onset week", "Wearing-off"} <= set(own["term"])
    assert row(own, term="Onset week")["parameters"] == "onset_reduction = 30; onset_confirm_weeks = 2"


def test_every_parameter_is_used_by_some_spec_definition() -> None:
    spec = dictionary.definition_dictionary(AnalysisConfig(), modules=()).query("source in @SPEC_SOURCES")
    used = {part.split(" = ")[0] for text in spec["parameters"] for part in text.split("; ") if part}
    assert {d["parameter"] for d in parameter_docs()} <= used


class _Definition:
    term = "Attribute-style definition"
    definition = "uses {cycle_days} days"
    columns = ("x", "y")


@pytest.fixture
def fake_module(monkeypatch: pytest.MonkeyPatch) -> str:
    """An analytics module exposing DEFINITIONS in three shapes and a parameter_docs function."""
    module = ModuleType("analytics._dictionary_probe")

    def probe_parameter_docs() -> list[dict[str, object]]:
        return [{"parameter": "probe_weeks", "default": 6, "meaning": "Weeks probed.", "basis": "a test"}]

    probe_parameter_docs.__module__ = module.__name__
    module.probe_parameter_docs = probe_parameter_docs
    module.DEFINITIONS = [
        {
            "name": "Mapping with name",
            "definition": "at least {min_completeness} of days",
            "parameters": ("min_completeness", "probe_weeks"),
        },
        _Definition(),
        ("Tuple term", "plain text with a brace } that is not a template"),
        {"key": "no-text"},  # neither term nor definition: skipped
    ]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module.__name__


def test_module_definitions_in_any_shape_are_included_with_values(fake_module: str) -> None:
    modules = (fake_module, "analytics._no_such_module")
    table = dictionary.definition_dictionary(AnalysisConfig(min_completeness=0.75), modules=modules)
    mine = table[table["source"] == fake_module]
    assert list(mine["term"]) == ["Mapping with name", "Attribute-style definition", "Tuple term"]
    first = row(mine, term="Mapping with name")
    assert first["definition"] == "at least 0.75 of days"
    assert first["parameters"] == "min_completeness = 0.75; probe_weeks = 6"
    assert row(mine, term="Attribute-style definition")[["definition", "columns"]].tolist() == ["uses 84 days", "x, y"]
    assert row(mine, term="Tuple term")["definition"] == "plain text with a brace } that is not a template"
    parameters = dictionary.parameter_dictionary(AnalysisConfig(), modules=modules)
    assert row(parameters, parameter="probe_weeks")[["value", "source"]].tolist() == ["6", fake_module]


def test_a_module_that_exists_but_fails_to_import_is_not_hidden(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    (tmp_path / "broken_probe_module.py").write_text("import a_dependency_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="a_dependency_that_is_not_installed"):
        dictionary.module_definitions(["broken_probe_module"])


def test_the_registered_modules_that_exist_contribute_every_definition() -> None:
    present = [m for m in dictionary.DEFINITION_MODULES if importlib.util.find_spec(m) is not None]
    expected = sum(len(getattr(importlib.import_module(m), "DEFINITIONS", ())) for m in present)
    table = dictionary.definition_dictionary(AnalysisConfig())
    assert (table["source"] == "SPEC §3").sum() == len(dictionary.SPEC_DEFINITIONS)
    assert (table["source"] == "SPEC §5").sum() == len(dictionary.STATUS_DEFINITIONS)
    assert len(table) == len(dictionary.SPEC_DEFINITIONS) + len(dictionary.STATUS_DEFINITIONS) + expected


def test_the_combined_dictionary_has_every_part_and_writes_true_false() -> None:
    config = AnalysisConfig(min_completeness=0.8)
    combined = dictionary.data_dictionary(config, modules=())
    sizes = combined["section"].value_counts()
    assert sizes["input column"] == len(dictionary.column_dictionary())
    assert sizes["parameter"] == len(parameter_docs())
    assert sizes["definition"] == len(dictionary.SPEC_DEFINITIONS) + len(dictionary.STATUS_DEFINITIONS)
    text = csv_bytes(combined).decode()
    header, first = text.splitlines()[:2]
    assert header.startswith("section,item,description,file,file_required")
    assert first.startswith("input column,sessions.csv:patient_id,Pseudonymous patient identifier.,sessions.csv,true,")
    assert "parameter,min_completeness," in text and ",0.8,0.7,true," in text


def test_definition_sections_have_titles_for_readers_not_module_names() -> None:
    table = dictionary.definition_dictionary(AnalysisConfig())
    sections = dictionary.definition_sections(table)
    titles = [title for title, _ in sections]
    assert titles[:2] == ["Core definitions (SPEC §3)", "Patient status, stopping rules and safety (SPEC §5)"]
    assert not [t for t in titles if "analytics" in t or t == dictionary.OTHER_SECTION]
    assert sum(len(rows) for _, rows in sections) == len(table)  # every definition in exactly one section
    by_title = dict(sections)
    continuation = by_title["Should we continue? The clinic's own comparable patients"]
    assert set(continuation["source"]) == {
        "analytics.views.continuation",
        "analytics.views.continuation.PUBLISHED_CONTINUATION",
    }
    # A definition's source that names a function of a module falls under that module's title.
    outcomes = dictionary.section_title("analytics.views.outcomes.mixed_model")
    assert outcomes == "Outcomes page: cohort statistics and models"
    assert dictionary.section_title("analytics.views.clinical_notes") == dictionary.OTHER_SECTION
