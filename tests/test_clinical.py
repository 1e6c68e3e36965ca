"""Patient-level definitions (analytics.definitions.clinical) against values worked out by hand.

One small dataset is built day by day so that every count is easy to check on paper. Dates are
given as offsets from the first session D1 = 2024-03-01 (the baseline is offsets -28..-1,
2024-02-02..2024-02-29; cycle k runs over offsets 84(k-1)..84k-1). The diary of patient A1 is
built from 28-day blocks after D1 with 14, 14, 14, 10, 10, 10, 7, 7, 7 headache days at the start
of each block, so cycle 1 has 42 headache days (14.0 / 28 d), cycle 2 has 30 (10.0) and cycle 3
has 21 (7.0) against a baseline of 20 headache days in 28.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from analytics.definitions import clinical
from analytics.definitions.config import AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.ingest.load import load_dataset

D1 = date(2024, 3, 1)
DIARY_HEADER = "patient_id,date,headache_hours,migraine,severity,acute_medication"


def at(offset: int, start: date = D1) -> str:
    return (start + timedelta(days=offset)).isoformat()


def diary_line(patient: str, offset: int, headache: bool, start: date = D1) -> str:
    if headache:
        return f"{patient},{at(offset, start)},6,true,2,true"
    return f"{patient},{at(offset, start)},0,false,0,false"


def blocks(offsets: range, counts: list[int]) -> dict[int, bool]:
    """Headache on the first counts[j] days of each 28-day block j after D1."""
    return {o: (o % 28) < counts[o // 28] for o in offsets}


def dataset_files() -> dict[str, bytes]:
    lines = []
    # A1: baseline 20 of 28 headache days (offsets -28..-9), then the 28-day blocks.
    lines += [diary_line("A1", o, o < -8) for o in range(-28, 0)]
    lines += [diary_line("A1", o, h) for o, h in blocks(range(0, 252), [14, 14, 14, 10, 10, 10, 7, 7, 7]).items()]
    # B2: baseline 21 of 28 (all but offsets divisible by 4), then 17 headache days per block.
    lines += [diary_line("B2", o, o % 4 != 0) for o in range(-28, 0)]
    lines += [diary_line("B2", o, h) for o, h in blocks(range(0, 168), [17] * 6).items()]
    # C3: only 10 baseline days recorded (not evaluable), then 7 headache days per block.
    lines += [diary_line("C3", o, True) for o in range(-10, 0)]
    lines += [diary_line("C3", o, h) for o, h in blocks(range(0, 168), [7] * 6).items()]
    # D4: one session on 2024-10-01, baseline 18 of 28, then headache-free to as_of (2024-11-07).
    d4 = date(2024, 10, 1)
    lines += [diary_line("D4", o, o < -10, d4) for o in range(-28, 0)]
    lines += [diary_line("D4", o, False, d4) for o in range(0, 38)]
    # E5: headache every other day, before and after its single session (no wearing-off).
    lines += [diary_line("E5", o, o % 2 != 0) for o in range(-28, 84)]
    # F6: a diary without any session.
    lines += [diary_line("F6", o, o % 3 == 0) for o in range(0, 20)]
    diary = "\n".join([DIARY_HEADER, *lines]) + "\n"
    sessions = "\n".join(
        ["patient_id,session_date,total_units"]
        + [f"A1,{at(o)},155" for o in (0, 84, 168)]
        + [f"B2,{at(o)},155" for o in (0, 84)]
        + [f"C3,{at(o)},155" for o in (0, 84)]
        + ["D4,2024-10-01,155", f"E5,{at(0)},155"]
    ) + "\n"
    patients = (
        "patient_id,prior_preventives,medication_overuse\n"
        "A1,2,false\nB2,4,true\nC3,,\nD4,3,false\nE5,5,false\nF6,3,false\n"
    )
    return {"diary.csv": diary.encode(), "sessions.csv": sessions.encode(), "patients.csv": patients.encode()}


@pytest.fixture(scope="module")
def case():
    dataset = load_dataset(dataset_files())
    assert dataset.rejected.empty
    analysis = analyse(dataset)
    return dataset, analysis, clinical.clinical_tables(analysis, dataset)


@pytest.fixture(scope="module")
def status(case):
    return case[2].status.set_index("patient_id")


def test_the_case_is_what_the_docstring_says(case):
    _, analysis, _ = case
    assert analysis.as_of == pd.Timestamp("2024-11-07")
    a1 = analysis.patient_cycles.set_index(["patient_id", "cycle"]).loc["A1"]
    assert a1["mhd"].round(9).tolist() == [20.0, 14.0, 10.0, 7.0]
    assert a1["status"].tolist() == ["baseline", "complete", "complete", "complete"]


def test_response_class_at_the_latest_evaluable_cycle(status):
    # A1: -30% (partial) at cycle 1, -50% at 2, -65% at 3; the latest evaluable cycle is 3.
    assert status.loc["A1", "response_class"] == "responder"
    assert status.loc["A1", "latest_evaluable_cycle"] == 3
    assert status.loc["A1", "latest_pct_change"] == pytest.approx(-65.0)
    # B2: 21.0 -> 17.0 = -19.05% at cycle 2.
    assert status.loc["B2", "response_class"] == "non-responder"
    assert status.loc["B2", "latest_pct_change"] == pytest.approx(-400 / 21)
    # D4: 18 -> 0 headache days in the ongoing, already evaluable cycle 1 (38 days, all recorded).
    assert status.loc["D4", "response_class"] == "excellent"
    assert status.loc["C3", "response_class"] == "not evaluable"
    assert pd.isna(status.loc["C3", "latest_evaluable_cycle"])


def test_response_class_uses_the_tolerance_at_exactly_30_percent():
    cycles = pd.DataFrame(
        {
            "patient_id": ["X", "X"], "cycle": [0, 1], "mhd_pct_change": [np.nan, -30.0], "mhd": [20.0, 14.0],
            "responder_30": pd.array([pd.NA, True], dtype="boolean"),
            "responder_50": pd.array([pd.NA, False], dtype="boolean"),
            "responder_75": pd.array([pd.NA, False], dtype="boolean"),
        }
    )
    assert clinical.response_class(cycles)["response_class"].tolist() == ["partial"]


def test_cumulative_and_sustained_response(status):
    assert bool(status.loc["A1", "cumulative_responder_50"]) is True
    assert status.loc["A1", "first_response_cycle"] == 2
    # 50% responder at cycles 2 and 3: sustained from cycle 2.
    assert bool(status.loc["A1", "sustained_responder"]) is True
    assert status.loc["A1", "sustained_from_cycle"] == 2
    assert bool(status.loc["B2", "cumulative_responder_50"]) is False
    assert bool(status.loc["B2", "sustained_responder"]) is False
    # D4 responded at its only cycle: cumulative, but not (yet) sustained.
    assert bool(status.loc["D4", "cumulative_responder_50"]) is True
    assert bool(status.loc["D4", "sustained_responder"]) is False
    assert pd.isna(status.loc["C3", "cumulative_responder_50"])
    assert pd.isna(status.loc["C3", "sustained_responder"])


def test_a_gap_in_the_responder_run_breaks_sustained_response():
    flags = pd.array([pd.NA, True, pd.NA, True], dtype="boolean")
    cycles = pd.DataFrame({"patient_id": ["X"] * 4, "cycle": [0, 1, 2, 3], "responder_50": flags})
    out = clinical.sustained_response(cycles)
    assert bool(out["sustained_responder"].iloc[0]) is False


def test_baseline_suitability(status):
    assert bool(status.loc["A1", "chronic_migraine"]) is True  # 20 >= 15
    assert bool(status.loc["A1", "preventives_criterion"]) is False  # 2 < 3
    assert bool(status.loc["A1", "suitable"]) is False
    assert bool(status.loc["B2", "suitable"]) is True  # 21 >= 15 and 4 >= 3
    assert bool(status.loc["B2", "acute_overuse_signal"]) is True  # acute medication on 21 days / 28
    assert bool(status.loc["E5", "chronic_migraine"]) is False  # 14 < 15
    # C3: baseline not evaluable and prior preventives unknown -> unknown, never "not suitable".
    assert pd.isna(status.loc["C3", "chronic_migraine"])
    assert pd.isna(status.loc["C3", "preventives_criterion"])
    assert pd.isna(status.loc["C3", "suitable"])


def test_suitability_statements_in_words(case, status):
    params = case[2].params
    b2 = dict(clinical.suitability_statements(status.loc["B2"].rename("B2"), params))
    assert b2["Baseline 21.0 headache days / 28 d (chronic migraine needs ≥15; 28 of 28 days recorded)"] == "met"
    assert b2["4 prior preventives failed (NICE asks for ≥3)"] == "met"
    overuse = next(text for text in b2 if text.startswith("Medication overuse"))
    assert b2[overuse] == "caution"
    c3 = clinical.suitability_statements(status.loc["C3"].rename("C3"), params)
    assert c3[0] == (
        "Baseline not evaluable (10 of 28 days recorded, 36%): chronic migraine cannot be confirmed from the diary",
        "unknown",
    )


def test_nice_stopping_rule_states_and_reasons(status):
    assert status.loc["A1", "stopping_state"] == "continue"
    assert status.loc["A1", "stopping_reason"] == (
        "NICE TA260: ≥30% reduction after 2 cycles (20.0 → 10.0 headache days/28 d, −50%)"
    )
    assert status.loc["B2", "stopping_state"] == "stop"
    assert bool(status.loc["B2", "stopping_met"]) is True
    assert status.loc["B2", "stopping_reason"] == (
        "NICE TA260: <30% reduction after 2 cycles (21.0 → 17.0 headache days/28 d, −19%)"
    )
    assert status.loc["C3", "stopping_state"] == "not assessable"
    assert status.loc["C3", "stopping_reason"] == (
        "NICE TA260 after 2 cycles: not assessable, baseline not evaluable (10 of 28 days recorded)"
    )
    assert pd.isna(status.loc["C3", "stopping_met"])
    assert status.loc["D4", "stopping_state"] == "pending"
    assert status.loc["D4", "stopping_reason"] == "NICE TA260 after 2 cycles: pending, cycle 2 not reached yet"


def test_stopping_rule_without_baseline_headache_days():
    # With 7 h for a headache day, A1's 6-hour headaches no longer count: no baseline to compare.
    dataset = load_dataset(dataset_files())
    analysis = analyse(dataset, AnalysisConfig(headache_min_hours=7))
    out = clinical.nice_stopping_rule(analysis.patient_cycles, analysis.config, clinical.ClinicalParameters())
    a1 = out.set_index("patient_id").loc["A1"]
    assert a1["stopping_state"] == "not assessable"
    assert a1["stopping_reason"] == "NICE TA260 after 2 cycles: not assessable, no headache days at baseline"


def test_episodic_conversion_nice_and_ehf(status):
    # Periods 1-3 have 14 headache days (< 15): NICE conversion at the end of period 3 = cycle 1.
    assert bool(status.loc["A1", "episodic_converted"]) is True
    assert status.loc["A1", "episodic_converted_on"] == pd.Timestamp("2024-05-23")
    assert status.loc["A1", "episodic_reason"] == (
        "NICE TA260 episodic conversion: <15 headache days/28 d in 3 consecutive 28-day periods "
        "(periods 1–3, 2024-03-01 to 2024-05-23: 14.0, 14.0, 14.0)"
    )
    # EHF needs < 10: periods 4-6 have exactly 10 (not below), periods 7-9 have 7.
    assert status.loc["A1", "ehf_episodic_converted_on"] == pd.Timestamp("2024-11-07")
    assert "(periods 7–9, 2024-08-16 to 2024-11-07: 7.0, 7.0, 7.0)" in status.loc["A1", "ehf_episodic_reason"]
    assert bool(status.loc["B2", "episodic_converted"]) is False
    assert status.loc["D4", "episodic_reason"] == (
        "NICE TA260 episodic conversion not met: longest run of periods <15 is 1 of the 3 needed; latest period 1 "
        "(2024-10-01 to 2024-10-28): 0.0 headache days/28 d (28 of 28 days recorded)"
    )


def test_a_non_evaluable_period_breaks_the_episodic_run():
    periods = pd.DataFrame(
        {
            "patient_id": ["X"] * 4, "period": [1, 2, 3, 4],
            "start_date": pd.to_datetime(["2024-01-01", "2024-01-29", "2024-02-26", "2024-03-25"]),
            "end_date": pd.to_datetime(["2024-01-28", "2024-02-25", "2024-03-24", "2024-04-21"]),
            "days": 28, "recorded_days": [28, 10, 28, 28], "headache_days": [5, 1, 5, 5],
            "mhd": [5.0, 2.8, 5.0, 5.0], "evaluable": [True, False, True, True],
        }
    )
    cycles = pd.DataFrame({"patient_id": ["X"], "cycle": [0]})
    out = clinical.episodic_conversion(periods, cycles, clinical.ClinicalParameters())
    assert bool(out["episodic_converted"].iloc[0]) is False
    assert out["episodic_run"].iloc[0] == 2


def test_daily_grid_keeps_unrecorded_days_missing(case):
    days = case[2].days
    c3 = days[days["patient_id"] == "C3"].set_index("date")
    # C3's grid starts at its baseline start although the diary starts 18 days later.
    assert c3.index.min() == pd.Timestamp("2024-02-02")
    unrecorded = c3.loc["2024-02-02"]
    assert not unrecorded["recorded"] and pd.isna(unrecorded["headache_day"]) and unrecorded["category"] == 0
    assert pd.isna(c3.loc["2024-02-29", "rolling_mhd"])  # 10 of 28 days recorded < 70%
    assert set(days["patient_id"]) == {"A1", "B2", "C3", "D4", "E5", "F6"}
    a1 = days[days["patient_id"] == "A1"].set_index("date")
    assert a1.loc["2024-03-01", "injection_cycle"] == 1
    assert a1.loc["2024-05-24", "injection_cycle"] == 2


def test_rolling_28_day_headache_days_by_hand_and_by_brute_force(case):
    days = case[2].days
    a1 = days[days["patient_id"] == "A1"].set_index("date")
    assert a1.loc["2024-02-29", "rolling_mhd"] == pytest.approx(20.0)  # the whole baseline
    assert a1.loc["2024-03-28", "rolling_mhd"] == pytest.approx(14.0)  # block 1: 14 of 28
    assert a1.loc["2024-03-07", "ma7_headache_days_per_7"] == pytest.approx(7.0)
    for patient in ("A1", "C3", "E5"):
        frame = days[days["patient_id"] == patient].reset_index(drop=True)
        recorded = frame["recorded"].to_numpy()
        headache = frame["headache_day"].fillna(False).to_numpy(dtype=bool)
        for i in range(len(frame)):
            lo = max(0, i - 27)
            n = recorded[lo : i + 1].sum()
            expected = headache[lo : i + 1].sum() / n * 28 if n / 28 >= 0.7 else np.nan
            got = frame.loc[i, "rolling_mhd"]
            assert (np.isnan(expected) and np.isnan(got)) or got == pytest.approx(expected), (patient, i)


def test_weekly_profile_and_onset_week(case):
    weekly = case[2].weekly.set_index(["patient_id", "cycle", "week"])
    assert weekly.loc[("A1", 1, 1), "headache_days_per_7"] == 7.0
    assert weekly.loc[("A1", 1, 3), "headache_days_per_7"] == 0.0
    assert weekly.loc[("A1", 2, 2), "headache_days"] == 3  # block days 8-10 of 28
    profile = case[2].cycle_profile.set_index(["patient_id", "cycle"])
    assert profile.loc[("A1", 1), "baseline_per_7"] == pytest.approx(5.0)
    assert profile.loc[("A1", 1), "onset_threshold_per_7"] == pytest.approx(3.5)
    # Cycle 1 weeks 7, 7, 0, 0: onset week 3; cycle 2 weeks 7, 3, 0: onset week 2.
    assert profile.loc[("A1", 1), "onset_week"] == 3
    assert profile.loc[("A1", 2), "onset_week"] == 2
    assert pd.isna(profile.loc[("C3", 1), "onset_week"])  # baseline not evaluable


def test_a_week_with_fewer_than_five_days_recorded_is_a_gap():
    grid = pd.DataFrame(
        {
            "patient_id": ["X"] * 7, "date": pd.date_range("2024-01-01", periods=7),
            "cycle": pd.array([1] * 7, "Int64"),
            "day_in_cycle": pd.array(range(1, 8), "Int64"), "recorded": [True] * 4 + [False] * 3,
            "headache_day": pd.array([True] * 4 + [pd.NA] * 3, dtype="boolean"),
        }
    )
    week = clinical.weekly_profile(grid, AnalysisConfig()).iloc[0]
    assert week["recorded_days"] == 4 and not week["evaluable"] and pd.isna(week["headache_days_per_7"])


def test_wearing_off(case):
    profile = case[2].cycle_profile.set_index(["patient_id", "cycle"])
    a1 = profile.loc[("A1", 1)]
    # Weeks 3-8 (days 15-56): 14 headache days in 42 -> 9.33; days 57-84: 14 in 28 -> 14.0.
    assert a1["reference_mhd"] == pytest.approx(14 / 42 * 28)
    assert a1["late_mhd"] == pytest.approx(14.0)
    assert a1["rise"] == pytest.approx(14 - 14 / 42 * 28)
    assert bool(a1["wearing_off"]) is True
    # Cycle 3: 4.67 -> 7.0, a rise of 2.33 (>= 2) and 50% (>= 25%).
    assert bool(profile.loc[("A1", 3), "wearing_off"]) is True
    e5 = profile.loc[("E5", 1)]
    assert e5["reference_mhd"] == pytest.approx(14.0) and e5["late_mhd"] == pytest.approx(14.0)
    assert bool(e5["assessable"]) and bool(e5["wearing_off"]) is False
    d4 = profile.loc[("D4", 1)]  # ongoing
    assert not d4["assessable"] and pd.isna(d4["wearing_off"])


def test_questionnaire_bands_at_their_limits():
    scores = [49, 49.5, 50, 55, 56, 59, 60, 0, 5, 6, 10, 11, 20, 21, 50]
    instruments = ["HIT-6"] * 7 + ["MIDAS"] * 7 + ["MSQ-EF"]
    frame = pd.DataFrame(
        {"patient_id": "X", "date": pd.date_range("2024-01-01", periods=15), "instrument": instruments, "score": scores}
    )
    out = clinical.questionnaire_bands(frame)
    assert out["band_level"].tolist()[:14] == [1, 2, 2, 2, 3, 3, 4, 1, 1, 2, 2, 3, 3, 4]
    assert pd.isna(out["band_level"].iloc[14]) and pd.isna(out["band"].iloc[14])
    assert out["band"].iloc[6] == "severe impact (≥60)"
    assert out["band"].iloc[13] == "IV: severe disability (≥21)"


def test_adverse_events_by_cycle(case):
    cycles = case[1].patient_cycles
    events = pd.DataFrame(
        {
            "patient_id": ["A1", "A1"], "session_date": pd.to_datetime(["2024-05-24", "2024-08-16"]),
            "event": ["neck_pain", "eyelid_ptosis"], "severity": ["mild", "moderate"],
            "onset_date": pd.to_datetime(["2024-05-27", "2024-08-20"]),
            "resolved_date": pd.to_datetime(["2024-06-05", None]), "serious": pd.array([False, False], "boolean"),
        }
    )
    out = clinical.adverse_events_by_cycle(events, cycles)
    assert out["cycle"].tolist() == [2, 3]
    assert out["days_to_onset"].tolist() == [3, 4]
    assert out["resolved"].tolist() == [True, False]
    assert out["duration_days"].iloc[0] == 10 and pd.isna(out["duration_days"].iloc[1])


def test_injection_sites_against_preempt():
    frame = pd.DataFrame(
        {
            "patient_id": "X", "session_date": pd.Timestamp("2024-03-01"),
            "muscle": ["temporalis", "procerus", "other", "frontalis", "trapezius"],
            "side": ["right", "midline", None, "left", "left"],
            "units": [25.0, 5.0, 10.0, 5.0, 20.0], "sites": pd.array([5, 1, 2, 1, pd.NA], "Int64"),
        }
    )
    out = clinical.injection_sites(frame).set_index("muscle")
    assert out.loc["temporalis", "extra_units"] == 5 and out.loc["temporalis", "extra_sites"] == 1
    assert out.loc["procerus", "extra_units"] == 0
    assert out.loc["other", "extra_units"] == 10 and out.loc["other", "standard_units"] == 0
    assert bool(out.loc["frontalis", "below_protocol"]) is True  # 5 of the 10 U per side
    assert out.loc["trapezius", "sites_given"] == 4  # missing sites = 20 U / 5
    assert out.loc["trapezius", "extra_units"] == 5


def test_header_measures_and_badges(case, status):
    cycles = case[1].patient_cycles
    measures = clinical.header_measures(cycles[cycles["patient_id"] == "A1"])
    headache = measures[0]
    assert headache["baseline"] == 20.0 and headache["latest"] == pytest.approx(7.0)
    assert headache["change"] == pytest.approx(-13.0)
    assert headache["baseline_n"] == "28 of 28 days recorded" and headache["latest_n"] == "84 of 84 days recorded"
    assert headache["latest_label"] == "cycle 3"
    badges = dict(clinical.status_badges(status.loc["A1"].rename("A1")))
    assert badges["Responder (≥50%) at cycle 3 (−65%)"] == "good"
    assert badges["NICE stopping rule: continue"] == "good"
    assert badges["Wearing-off in 3 of 3 assessable cycles"] == "warn"
    assert dict(clinical.status_badges(status.loc["B2"].rename("B2")))["NICE stopping rule met"] == "bad"


def test_status_has_one_row_per_treated_patient(case):
    status = case[2].status
    assert sorted(status["patient_id"]) == ["A1", "B2", "C3", "D4", "E5"]
    assert status["patient_id"].is_unique
    for column in ("stopping_reason", "episodic_reason", "ehf_episodic_reason"):
        assert status[column].str.len().gt(20).all()


def test_stopping_rule_agrees_with_the_spec_responder_flag_on_the_sample_cohort():
    """Invariant on a synthetic cohort: 'stop' exactly when cycle 2 is assessed and not a 30% responder."""
    dataset = load_dataset(_synth_files())
    analysis = analyse(dataset)
    tables = clinical.clinical_tables(analysis, dataset)
    status = tables.status.set_index("patient_id")
    c2 = analysis.patient_cycles[analysis.patient_cycles["cycle"] == 2].set_index("patient_id")
    assessed = status[status["stopping_state"].isin(["stop", "continue"])]
    assert len(assessed) > 10
    expected_stop = ~c2.loc[assessed.index, "responder_30"].astype(bool).to_numpy()
    assert (assessed["stopping_state"].eq("stop").to_numpy() == expected_stop).all()
    grid = tables.days
    enough = grid["rolling_recorded"] / 28 >= 0.7
    assert grid.loc[~enough, "rolling_mhd"].isna().all()
    assert grid.loc[enough & (grid["rolling_recorded"] > 0), "rolling_mhd"].notna().all()


def _synth_files() -> dict[str, bytes]:
    import tempfile
    from pathlib import Path

    from analytics import synth

    with tempfile.TemporaryDirectory() as folder:
        synth.main(["--patients", "40", "--seed", "3", "--out", folder])
        return {p.name: p.read_bytes() for p in Path(folder).glob("*.csv")}


def test_definitions_name_their_parameters():
    known = set(AnalysisConfig().parameters()) | set(clinical.ClinicalParameters().parameters())
    assert len(clinical.DEFINITIONS) >= 12
    for entry in clinical.DEFINITIONS:
        assert entry["name"] and len(str(entry["definition"])) > 40
        assert set(entry["parameters"]) <= known, entry["name"]
    rows = clinical.definitions_with_values(AnalysisConfig(), clinical.ClinicalParameters())
    stopping = next(r for r in rows if r["name"] == "NICE TA260 stopping rule")
    assert "stopping_min_reduction = 30.0" in stopping["parameters"]
    assert "≥" in next(r for r in rows if r["name"] == "Wearing-off")["definition"]


@pytest.mark.parametrize(
    ("sessions", "diary", "treated", "episodic"),
    [
        ("", "A,2024-01-01,5\nA,2024-01-02,0\n", 0, None),
        ("A,2024-01-03\n", "A,2024-01-01,5\nA,2024-01-02,0\n", 1, "not yet assessable"),
        ("A,2024-01-03\n", "", 1, "not yet assessable"),
    ],
    ids=["no session", "no diary after the session", "no diary at all"],
)
def test_degenerate_datasets_give_reasons_not_errors(sessions, diary, treated, episodic):
    files = {
        "sessions.csv": ("patient_id,session_date\n" + sessions).encode(),
        "diary.csv": ("patient_id,date,headache_hours\n" + diary).encode(),
    }
    dataset = load_dataset(files)
    analysis = analyse(dataset)
    tables = clinical.clinical_tables(analysis, dataset)
    assert len(tables.status) == treated
    if treated:
        row = tables.status.iloc[0]
        assert row["stopping_state"] == "not assessable" and "baseline not evaluable" in row["stopping_reason"]
        assert episodic in row["episodic_reason"] and pd.isna(row["episodic_converted"])
        assert row["response_class"] == "not evaluable"
