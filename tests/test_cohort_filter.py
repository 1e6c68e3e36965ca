"""The cohort filter: each criterion by hand on the five-patient cohort of test_outcomes, its text forms
(JSON, URL query parameters, command-line flags) round trip, and a restricted analysis equals the
analysis of a dataset holding only the selected patients."""

from __future__ import annotations

import importlib.util
import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from analytics.cli import build_parser
from analytics.definitions.config import AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.ingest.load import load_dataset
from analytics.output.export import export_files
from analytics.synth import generate_cohort, write_cohort
from analytics.views.cohort_filter import (
    CohortFilter,
    attribute_options,
    export_command,
    filtered_export,
    from_args,
    patient_attributes,
    restrict,
)

TESTS = Path(__file__).resolve().parent


def tiny_cohort_writer():
    """``write_tiny`` of test_outcomes.py, where the hand-worked cohort is described (loaded by path so that
    it works under any pytest import mode)."""
    spec = importlib.util.spec_from_file_location("outcomes_tiny_cohort", TESTS / "test_outcomes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_tiny


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    dataset = load_dataset(tiny_cohort_writer()(tmp_path_factory.mktemp("tiny")))
    analysis = analyse(dataset, AnalysisConfig())
    return dataset, analysis, patient_attributes(analysis, dataset)


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ({}, {"A", "B", "C", "D", "E"}),
        ({"sex": ["F"]}, {"A", "C", "D"}),  # E's sex is not recorded: it matches no sex
        ({"sex": ["F", "M"]}, {"A", "B", "C", "D"}),
        ({"age_band": ["40-49", "60-69"]}, {"A", "C", "E"}),
        ({"clinic": ["North"]}, {"A", "C"}),
        ({"prior_preventives_min": 4}, {"B", "C"}),  # D's prior preventives are missing
        ({"prior_preventives_min": 3, "prior_preventives_max": 4}, {"A", "B"}),
        ({"medication_overuse": True}, {"A", "C"}),
        ({"medication_overuse": False}, {"B", "E"}),  # D's is missing
        ({"baseline_mhd_min": 20}, {"A", "C", "D"}),  # 20 is inside [20, ...]
        ({"baseline_mhd_max": 16}, {"B", "E"}),  # E's baseline (14) exists though it is not evaluable
        ({"baseline_mhd_min": 16, "baseline_mhd_max": 20}, {"A", "B", "D"}),
        ({"first_injection_from": date(2024, 1, 29)}, {"A", "B", "C", "D", "E"}),
        ({"first_injection_to": date(2024, 1, 28)}, set()),
        ({"min_cycles": 2}, {"A", "B", "C", "E"}),
        ({"sex": ["F"], "clinic": ["South"], "min_cycles": 1}, {"D"}),
    ],
)
def test_each_criterion_selects_the_patients_worked_out_by_hand(tiny, criteria, expected) -> None:
    dataset, analysis, attributes = tiny
    cohort_filter = CohortFilter(**criteria)
    assert cohort_filter.apply(analysis, dataset) == expected
    assert cohort_filter.select(attributes) == expected
    assert cohort_filter.is_empty() == (not criteria)


def test_attributes_and_options(tiny) -> None:
    _, _, attributes = tiny
    row = attributes.set_index("patient_id").loc["E"]
    assert pd.isna(row["sex"]) and row["n_cycles"] == 2 and row["baseline_mhd"] == pytest.approx(14)
    options = attribute_options(attributes)
    assert options["sex"] == ["F", "M"]
    assert options["age_band"] == ["30-39", "40-49", "50-59", "60-69"]
    assert options["prior_preventives"] == [2, 5]
    assert options["baseline_mhd"] == [14.0, 24.0]


def test_restricted_analysis_equals_the_analysis_of_only_those_patients(tmp_path) -> None:
    folder = tmp_path / "all"
    tables = generate_cohort(60, seed=5)
    write_cohort(tables, folder)
    dataset = load_dataset(folder)
    analysis = analyse(dataset)
    cohort_filter = CohortFilter(sex=["F"], min_cycles=2)
    selected = cohort_filter.apply(analysis, dataset)
    assert 5 < len(selected) < 60
    subset = tmp_path / "subset"
    write_cohort({stem: t.loc[t["patient_id"].isin(selected)] for stem, t in tables.items()}, subset)
    alone = analyse(load_dataset(subset), AnalysisConfig(as_of=analysis.as_of.date()))
    restricted = restrict(analysis, selected)
    pd.testing.assert_frame_equal(restricted.cohort_cycles, alone.cohort_cycles)
    pd.testing.assert_frame_equal(
        restricted.patient_cycles.reset_index(drop=True), alone.patient_cycles.reset_index(drop=True)
    )
    assert set(restricted.patient_days["patient_id"]) == selected


def test_an_empty_cohort_gives_empty_tables(tiny) -> None:
    _, analysis, _ = tiny
    empty = restrict(analysis, set())
    assert empty.patient_cycles.empty
    assert empty.cohort_cycles["n_treated"].tolist() == [0]


FULL = CohortFilter(
    sex=("M", "F"),
    age_band=("40-49",),
    clinic=("North", "South, East"),
    prior_preventives_min=3,
    prior_preventives_max=6,
    medication_overuse=False,
    baseline_mhd_min=15,
    baseline_mhd_max=22.5,
    first_injection_from=date(2023, 3, 1),
    first_injection_to=date(2024, 12, 31),
    min_cycles=2,
)


def test_json_round_trip() -> None:
    assert CohortFilter.from_json(FULL.to_json()) == FULL
    assert CohortFilter.from_json(CohortFilter().to_json()) == CohortFilter()
    data = json.loads(FULL.to_json())
    assert data["sex"] == ["F", "M"]  # normalised: sorted, so equal filters serialise equally
    assert data["first_injection_to"] == "2024-12-31" and data["medication_overuse"] is False
    # A manifest that records a filter is a filter file too; one of a whole-cohort export selects everyone.
    assert CohortFilter.from_dict({"as_of": "2024-01-01", "cohort_filter": data}) == FULL
    assert CohortFilter.from_dict({"parameters": {}, "files": {}}) == CohortFilter()


def test_json_refuses_what_it_does_not_know() -> None:
    with pytest.raises(ValueError, match="unknown cohort filter field"):
        CohortFilter.from_dict({"sexx": ["F"]})
    with pytest.raises(ValueError, match="is after"):
        CohortFilter(baseline_mhd_min=20, baseline_mhd_max=10)
    with pytest.raises(ValueError):
        CohortFilter.from_dict({"first_injection_from": "2024/01/01"})


def test_query_parameters_round_trip() -> None:
    params = FULL.to_query_params()
    assert params["clinic"] == ["North", "South, East"]  # repeated values, so a comma in a name is safe
    assert params["baseline_mhd"] == ["15", "22.5"]
    assert params["medication_overuse"] == ["false"]
    assert CohortFilter.from_query_params(params) == (FULL, [])
    # A one-sided range is written with the data's bound (as the page's slider shows it) and read back open.
    one_sided = CohortFilter(prior_preventives_min=4)
    bounds = {"prior_preventives": (2, 8)}
    assert one_sided.to_query_params(bounds) == {"prior_preventives": ["4", "8"]}
    assert CohortFilter.from_query_params(one_sided.to_query_params(bounds), bounds) == (one_sided, [])
    assert CohortFilter.from_query_params(one_sided.to_query_params()) == (one_sided, [])


def test_bad_query_parameters_are_dropped_and_reported() -> None:
    cohort_filter, problems = CohortFilter.from_query_params(
        {
            "sex": ["F"],
            "prior_preventives": ["6", "3"],
            "min_cycles": ["two"],
            "baseline_mhd": ["15"],
            "patient": ["P001"],
        }
    )
    assert cohort_filter == CohortFilter(sex=["F"])
    assert len(problems) == 3 and any(p.startswith("prior_preventives") for p in problems)


def test_command_line_flags_make_the_same_filter(tmp_path) -> None:
    args = build_parser().parse_args(["export", "--data", "d", "--out", "o", *FULL.cli_arguments()])
    assert from_args(args) == FULL
    assert from_args(build_parser().parse_args(["export", "--data", "d", "--out", "o"])) == CohortFilter()
    # A filter file, with flags replacing its criteria.
    path = tmp_path / "cohort_filter.json"
    path.write_text(FULL.to_json())
    args = build_parser().parse_args(
        ["export", "--data", "d", "--out", "o", "--filter-file", str(path), "--sex", "X", "--min-cycles", "3"]
    )
    chosen = from_args(args)
    assert chosen.sex == ("X",) and chosen.min_cycles == 3 and chosen.clinic == FULL.clinic


def test_export_command_reproduces_parameters_and_filter() -> None:
    config = AnalysisConfig(cycle_days=90, min_completeness=0.8)
    command = export_command(FULL, config, data="sample_data", out="out", filter_file="cohort_filter.json")
    assert command == (
        "python -m analytics export --data sample_data --out out --cycle-days 90 "
        "--min-completeness 0.8 --filter-file cohort_filter.json"
    )
    flags = export_command(CohortFilter(clinic=["South, East"]), AnalysisConfig())
    assert flags.endswith("--clinic 'South, East'")


def test_an_empty_filter_exports_exactly_the_unfiltered_files(tiny) -> None:
    dataset, analysis, _ = tiny
    when = pd.Timestamp("2025-01-01T00:00:00Z").to_pydatetime()
    assert filtered_export(analysis, dataset, CohortFilter(), when) == export_files(analysis, dataset, when)


def test_the_filtered_manifest_records_the_filter(tiny) -> None:
    dataset, analysis, _ = tiny
    files = filtered_export(analysis, dataset, CohortFilter(clinic=["North"]))
    manifest = json.loads(files["manifest.json"])
    assert manifest["cohort_filter"]["clinic"] == ["North"]
    assert manifest["cohort"]["patients_selected"] == 2 and manifest["cohort"]["patients_treated"] == 5
    assert set(pd.read_csv(pd.io.common.BytesIO(files["patient_cycles.csv"]))["patient_id"]) == {"A", "C"}
    suppressed = json.loads(
        filtered_export(analysis, dataset, CohortFilter(clinic=["North"]), min_cell=5)["manifest.json"]
    )
    assert "patients_selected" not in suppressed["cohort"]  # a small count is left to the suppression rule
