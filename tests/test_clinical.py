"""Patient-level views (analytics.definitions.clinical) against values worked out by hand.

The flags (chronic baseline, suitability, sustained response, treatment state, the NICE and EHF rules,
episodic conversion, stop indicated) are SPEC §5's, computed by analytics.definitions.status and checked in
tests/test_status.py; here they are checked as the Patient page receives them (``clinical_tables(...).status``
must carry exactly ``analysis.patient_status``'s values) and as it words them. The expectations below that
changed with SPEC §5 say so.

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
from analytics.definitions.config import SAMPLE_DATA_DIR, AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.definitions.status import PATIENT_STATUS_COLUMNS
from analytics.ingest.load import load_dataset
from analytics.views import dictionary

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
    sessions = (
        "\n".join(
            ["patient_id,session_date,total_units"]
            + [f"A1,{at(o)},155" for o in (0, 84, 168)]
            + [f"B2,{at(o)},155" for o in (0, 84)]
            + [f"C3,{at(o)},155" for o in (0, 84)]
            + ["D4,2024-10-01,155", f"E5,{at(0)},155"]
        )
        + "\n"
    )
    patients = (
        "patient_id,prior_preventives,medication_overuse\n"
        "A1,2,false\nB2,4,true\nC3,,\nD4,3,false\nE5,5,false\nF6,3,false\n"
    )
    return {"diary.csv": diary.encode(), "sessions.csv": sessions.encode(), "patients.csv": patients.encode()}


# With as_of = 2024-11-07: A1 last session 2024-08-16 (83 days: active), B2 and C3 2024-05-24 (167 days: overdue),
# D4 2024-10-01 (37 days: active), E5 2024-03-01 (251 days: lapsed).


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


def test_status_carries_spec_5_patient_status_unchanged(case):
    _, analysis, tables = case
    mine = tables.status.set_index("patient_id")[list(PATIENT_STATUS_COLUMNS[1:])]
    theirs = analysis.patient_status.set_index("patient_id")
    pd.testing.assert_frame_equal(mine, theirs.loc[mine.index], check_index_type=False)


def test_response_class_at_the_latest_evaluable_cycle(status):
    # A1: -30% (partial) at cycle 1, -50% at 2, -65% at 3; the latest evaluable cycle is 3.
    assert status.loc["A1", "response_class"] == clinical.RESPONDER
    assert status.loc["A1", "latest_evaluable_cycle"] == 3
    assert status.loc["A1", "latest_mhd_pct_change"] == pytest.approx(-65.0)
    assert status.loc["A1", "latest_mhd"] == pytest.approx(7.0)
    # B2: 21.0 -> 17.0 = -19.05% at cycle 2.
    assert status.loc["B2", "response_class"] == clinical.NON_RESPONDER
    assert status.loc["B2", "latest_mhd_pct_change"] == pytest.approx(-400 / 21)
    # D4: 18 -> 0 headache days in the ongoing, already evaluable cycle 1 (38 days, all recorded).
    assert status.loc["D4", "response_class"] == clinical.EXCELLENT
    assert status.loc["C3", "response_class"] == clinical.NOT_EVALUABLE
    assert pd.isna(status.loc["C3", "latest_evaluable_cycle"])


def test_one_response_class_for_the_patient_page_and_table_one(case):
    # The Outcomes page's Table 1 classes a chosen cycle with the same function: A1 at cycle 1 is -30% (partial),
    # C3 reached cycle 1 without a change, D4 has no cycle 2.
    _, analysis, _ = case
    at_1 = clinical.response_class(analysis.patient_cycles, 1).set_index("patient_id")["response_class"]
    assert at_1["A1"] == clinical.PARTIAL and at_1["C3"] == clinical.NOT_EVALUABLE
    at_2 = clinical.response_class(analysis.patient_cycles, 2).set_index("patient_id")["response_class"]
    assert at_2["D4"] == clinical.NOT_REACHED and at_2["A1"] == clinical.RESPONDER


def test_response_class_uses_the_tolerance_at_exactly_30_percent():
    cycles = pd.DataFrame(
        {
            "patient_id": ["X", "X"],
            "cycle": [0, 1],
            "mhd_pct_change": [np.nan, -30.0],
            "mhd": [20.0, 14.0],
            "responder_30": pd.array([pd.NA, True], dtype="boolean"),
            "responder_50": pd.array([pd.NA, False], dtype="boolean"),
            "responder_75": pd.array([pd.NA, False], dtype="boolean"),
        }
    )
    assert clinical.response_class(cycles)["response_class"].tolist() == [clinical.PARTIAL]


def test_ever_and_sustained_response(status):
    assert bool(status.loc["A1", "ever_responder_50"]) is True
    assert status.loc["A1", "first_response_cycle"] == 2
    # 50% responder at cycles 2 and 3: sustained from cycle 2.
    assert bool(status.loc["A1", "sustained_responder_50"]) is True
    assert status.loc["A1", "sustained_from_cycle"] == 2
    assert bool(status.loc["B2", "ever_responder_50"]) is False
    assert bool(status.loc["B2", "sustained_responder_50"]) is False
    # D4 responded at its only cycle: ever, but sustained cannot be judged yet. SPEC §5.1 leaves it empty without a
    # pair of consecutive valued cycles (the project's earlier definition said false).
    assert bool(status.loc["D4", "ever_responder_50"]) is True
    assert pd.isna(status.loc["D4", "sustained_responder_50"])
    assert pd.isna(status.loc["C3", "ever_responder_50"])
    assert pd.isna(status.loc["C3", "sustained_responder_50"])


def test_a_gap_in_the_responder_run_gives_no_sustained_cycle():
    flags = pd.array([pd.NA, True, pd.NA, True], dtype="boolean")
    cycles = pd.DataFrame({"patient_id": ["X"] * 4, "cycle": [0, 1, 2, 3], "responder_50": flags})
    out = clinical.response_milestones(cycles).iloc[0]
    assert out["first_response_cycle"] == 1 and pd.isna(out["sustained_from_cycle"])


def test_baseline_suitability(status):
    assert bool(status.loc["A1", "chronic_at_baseline"]) is True  # 20 headache days >= 15, 20 migraine days >= 8
    assert status.loc["A1", "prior_preventives"] == 2  # < 3
    assert bool(status.loc["A1", "suitable_nice"]) is False
    assert bool(status.loc["B2", "suitable_nice"]) is True  # 21 >= 15, 21 >= 8 and 4 >= 3
    assert bool(status.loc["B2", "overuse_at_baseline"]) is True  # acute medication on 21 days / 28
    assert bool(status.loc["E5", "chronic_at_baseline"]) is False  # 14 < 15
    # C3: baseline not evaluable and prior preventives unknown -> unknown, never "not suitable".
    assert pd.isna(status.loc["C3", "chronic_at_baseline"])
    assert pd.isna(status.loc["C3", "prior_preventives"])
    assert pd.isna(status.loc["C3", "suitable_nice"])


def test_suitability_statements_in_words(case, status):
    config = case[1].config
    b2 = dict(clinical.suitability_statements(status.loc["B2"].rename("B2"), config))
    assert (
        b2[
            "Baseline 21.0 headache days and 21.0 migraine days / 28 d (chronic migraine needs ≥15 headache days, "
            "≥8 of them migraine days; 28 of 28 days recorded)"
        ]
        == "met"
    )
    assert b2["4 prior preventives failed (NICE asks for ≥3)"] == "met"
    overuse = next(text for text in b2 if text.startswith("Medication overuse"))
    assert b2[overuse] == "caution"
    assert b2["Suitable under NICE TA260 (chronic migraine and ≥3 failed preventives): yes"] == "met"
    a1 = dict(clinical.suitability_statements(status.loc["A1"].rename("A1"), config))
    assert a1["Suitable under NICE TA260 (chronic migraine and ≥3 failed preventives): no"] == "not met"
    c3 = clinical.suitability_statements(status.loc["C3"].rename("C3"), config)
    assert c3[0] == (
        "Baseline not evaluable (10 of 28 days recorded, 36%): chronic migraine cannot be confirmed from the diary",
        "unknown",
    )


def test_nice_and_ehf_states_and_reasons(status):
    assert status.loc["A1", "nice_state"] == "continue"
    assert status.loc["A1", "nice_reason"] == (
        "NICE TA260: ≥30% reduction after 2 cycles (20.0 → 10.0 headache days/28 d, −50%)"
    )
    assert status.loc["B2", "nice_state"] == "stop"
    assert status.loc["B2", "nice_reason"] == (
        "NICE TA260: <30% reduction after 2 cycles (21.0 → 17.0 headache days/28 d, −19%)"
    )
    assert status.loc["C3", "nice_state"] == "not assessable"
    assert status.loc["C3", "nice_reason"] == (
        "NICE TA260 after 2 cycles: not assessable, baseline not evaluable (10 of 28 days recorded)"
    )
    assert status.loc["D4", "nice_state"] == "pending"
    assert status.loc["D4", "nice_reason"] == "NICE TA260 after 2 cycles: pending, cycle 2 not reached yet"
    # E5 had one session and is lapsed: the rule was never reached (the earlier version said "pending" forever).
    assert status.loc["E5", "nice_state"] == "not reached"
    assert status.loc["E5", "nice_reason"] == (
        "NICE TA260 after 2 cycles: not reached, treatment lapsed before cycle 2 was complete"
    )
    # EHF: A1 reached -30% at cycle 1 already; B2 has two of the three cycles and is still on treatment.
    assert status.loc["A1", "ehf_state"] == "continue"
    assert status.loc["A1", "ehf_reason"] == (
        "EHF: ≥30% reduction within the first 3 cycles (cycles 1–3: −30%, −50%, −65%)"
    )
    assert status.loc["B2", "ehf_state"] == "pending"
    assert status.loc["B2", "ehf_reason"] == (
        "EHF after 3 cycles: pending, cycle 3 not reached yet (cycles 1–3: −19%, −19%, —)"
    )


def test_rules_without_baseline_headache_days():
    # With 7 h for a headache day, A1's 6-hour headaches no longer count: no baseline to compare.
    dataset = load_dataset(dataset_files())
    analysis = analyse(dataset, AnalysisConfig(headache_min_hours=7))
    a1 = clinical.clinical_tables(analysis, dataset).status.set_index("patient_id").loc["A1"]
    assert a1["nice_state"] == "not assessable" and a1["ehf_state"] == "not assessable"
    assert a1["nice_reason"] == "NICE TA260 after 2 cycles: not assessable, no headache days at baseline"
    assert a1["ehf_reason"] == "EHF after 3 cycles: not assessable, no headache days at baseline"


def test_episodic_conversion_nice_and_ehf(status):
    nice = "NICE TA260 episodic conversion (<15 headache days/28 d in 3 consecutive 28-day periods)"
    ehf = "EHF episodic conversion (<10 headache days/28 d in 3 consecutive 28-day periods)"
    # Periods 1-3 have 14 headache days (< 15): NICE conversion at the end of period 3; periods 7-9 (7 each) are
    # below 15 too, so A1 is episodic now.
    assert status.loc["A1", "episodic_converted_on"] == pd.Timestamp("2024-05-23")
    assert bool(status.loc["A1", "episodic_now"]) is True
    assert status.loc["A1", "episodic_reason"] == (
        f"{nice}: converted on 2024-05-23; episodic now (each of the last 3 28-day periods below 15)"
    )
    # EHF needs < 10: periods 4-6 have exactly 10 (not below), periods 7-9 have 7.
    assert status.loc["A1", "ehf_episodic_converted_on"] == pd.Timestamp("2024-11-07")
    assert bool(status.loc["A1", "ehf_episodic_now"]) is True
    # B2: 17 headache days in periods 1-6, no diary in periods 7-9: not converted, "now" cannot be judged.
    assert pd.isna(status.loc["B2", "episodic_converted_on"]) and pd.isna(status.loc["B2", "episodic_now"])
    assert status.loc["B2", "episodic_reason"] == (
        f"{nice}: no conversion yet; not judged now (the last 3 28-day periods are too few or not all evaluable)"
    )
    # E5 (14 baseline headache days) never had chronic migraine, so it cannot "change to episodic" (SPEC §5.3);
    # the project's earlier version converted it after periods 1-3 of 14 headache days.
    assert pd.isna(status.loc["E5", "episodic_converted_on"]) and pd.isna(status.loc["E5", "episodic_now"])
    assert status.loc["E5", "episodic_reason"] == f"{nice}: does not apply, migraine was not chronic at baseline"
    assert status.loc["E5", "ehf_episodic_reason"] == f"{ehf}: does not apply, migraine was not chronic at baseline"
    assert status.loc["C3", "episodic_reason"] == (
        f"{nice}: not assessable, chronic migraine at baseline not established"
    )


def test_daily_grid_keeps_unrecorded_days_missing(case):
    days = clinical.diary_days(case[1], case[2].params)
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
    days = clinical.diary_days(case[1], case[2].params)
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
            "patient_id": ["X"] * 7,
            "date": pd.date_range("2024-01-01", periods=7),
            "cycle": pd.array([1] * 7, "Int64"),
            "day_in_cycle": pd.array(range(1, 8), "Int64"),
            "recorded": [True] * 4 + [False] * 3,
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
            "patient_id": ["A1", "A1"],
            "session_date": pd.to_datetime(["2024-05-24", "2024-08-16"]),
            "event": ["neck_pain", "eyelid_ptosis"],
            "severity": ["mild", "moderate"],
            "onset_date": pd.to_datetime(["2024-05-27", "2024-08-20"]),
            "resolved_date": pd.to_datetime(["2024-06-05", None]),
            "serious": pd.array([False, False], "boolean"),
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
            "patient_id": "X",
            "session_date": pd.Timestamp("2024-03-01"),
            "muscle": ["temporalis", "procerus", "other", "frontalis", "trapezius"],
            "side": ["right", "midline", None, "left", "left"],
            "units": [25.0, 5.0, 10.0, 5.0, 20.0],
            "sites": pd.array([5, 1, 2, 1, pd.NA], "Int64"),
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
    config = case[1].config
    badges = dict(clinical.status_badges(status.loc["A1"].rename("A1"), config))
    assert badges["Active: next session due 08 Nov 2024"] == "good"  # 2024-08-16 + 84 days
    assert badges["Stop indicated: episodic now"] == "bad"
    assert badges["Responder (50–<75%) at cycle 3 (−65%)"] == "good"
    assert badges["50% responder (first at cycle 2)"] == "good"
    assert badges["Sustained 50% response from cycle 2"] == "good"
    assert badges["NICE TA260: continue"] == "good"
    assert badges["EHF: continue"] == "good"
    assert badges["Episodic now (<15 headache days/28 d, NICE)"] == "info"
    assert badges["Episodic now (<10 headache days/28 d, EHF)"] == "info"
    assert badges["Wearing-off in 3 of 3 assessable cycles"] == "warn"
    # Cycle 3 weeks: 7, 0, ... (onset week 2, hand-computed like cycle 2's in test_weekly_profile_and_onset_week).
    assert badges["Onset in week 2 of cycle 3 (latest cycle with an onset)"] == "info"
    b2 = dict(clinical.status_badges(status.loc["B2"].rename("B2"), config))
    # B2: last session 2024-05-24, next due 2024-08-16; 167 days on 2024-11-07 are 69 past the 98-day limit.
    assert b2["Overdue: next session was due 16 Aug 2024; 69 days past the 98-day limit"] == "warn"
    assert b2["Stop indicated: NICE 30%"] == "bad"
    assert b2["NICE TA260: stop"] == "bad"
    e5 = dict(clinical.status_badges(status.loc["E5"].rename("E5"), config))
    assert (
        e5[
            "Lapsed: no session for 251 days (over 182); next session was due 24 May 2024; 153 days past the "
            "98-day limit"
        ]
        == "bad"
    )
    assert e5["NICE TA260: not reached"] == "neutral"
    assert not any(text.startswith(("Stop indicated", "No stopping rule")) for text in e5)  # empty when off treatment


def test_a_patient_discontinued_for_lack_of_efficacy_is_shown_as_discontinued():
    # One patient: baseline 20 of 28 headache days, cycles 1 and 2 with 8 of 84 (-87%: NICE "continue"), then
    # discontinued on 2024-06-01 for lack of efficacy. The badge says so; no green "continue".
    diary = [diary_line("X1", o, o < -8) for o in range(-28, 0)]
    diary += [diary_line("X1", o, o % 84 < 8) for o in range(0, 168)]
    files = {
        "diary.csv": "\n".join([DIARY_HEADER, *diary]).encode() + b"\n",
        "sessions.csv": f"patient_id,session_date\nX1,{at(0)}\nX1,{at(84)}\n".encode(),
        "patients.csv": b"patient_id,discontinued_on,discontinuation_reason\nX1,2024-06-01,lack of efficacy\n",
    }
    dataset = load_dataset(files)
    analysis = analyse(dataset)
    row = clinical.clinical_tables(analysis, dataset).status.set_index("patient_id").loc["X1"]
    assert row["treatment_state"] == "discontinued" and row["nice_state"] == "continue"
    badges = clinical.status_badges(row, analysis.config)
    assert badges[0] == ("Discontinued on 01 Jun 2024: lack of efficacy", "neutral")
    assert ("NICE TA260: continue", "neutral") in badges
    assert not any(tone == "good" and "NICE" in text for text, tone in badges)


def test_status_has_one_row_per_treated_patient(case):
    status = case[2].status
    assert sorted(status["patient_id"]) == ["A1", "B2", "C3", "D4", "E5"]
    assert status["patient_id"].is_unique
    for column in ("nice_reason", "ehf_reason", "episodic_reason", "ehf_episodic_reason"):
        assert status[column].str.len().gt(20).all()
    assert status.set_index("patient_id")["stop_rules"].to_dict() == {
        "A1": "episodic now",
        "B2": "NICE 30%",
        "C3": "",
        "D4": "",
        "E5": "",
    }


def test_stopping_rule_agrees_with_the_spec_responder_flag_on_the_sample_cohort():
    """Invariant on a synthetic cohort: 'stop' exactly when cycle 2 is assessed and not a 30% responder."""
    dataset = load_dataset(_synth_files())
    analysis = analyse(dataset)
    tables = clinical.clinical_tables(analysis, dataset)
    status = tables.status.set_index("patient_id")
    c2 = analysis.patient_cycles[analysis.patient_cycles["cycle"] == 2].set_index("patient_id")
    assessed = status[status["nice_state"].isin(["stop", "continue"])]
    assert len(assessed) > 10
    expected_stop = ~c2.loc[assessed.index, "responder_30"].astype(bool).to_numpy()
    assert (assessed["nice_state"].eq("stop").to_numpy() == expected_stop).all()
    grid = clinical.diary_days(analysis, tables.params)
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
    assert len(clinical.DEFINITIONS) >= 8
    for entry in clinical.DEFINITIONS:
        assert entry["name"] and len(str(entry["definition"])) > 40
        assert set(entry["parameters"]) <= known, entry["name"]
    rows = clinical.definitions_with_values(AnalysisConfig(lapse_days=150), clinical.ClinicalParameters())
    assert len(rows) == len(dictionary.STATUS_DEFINITIONS) + len(clinical.DEFINITIONS)
    stopping = next(r for r in rows if r["name"] == "NICE TA260 non-response rule (SPEC §5.2)")
    assert stopping["parameters"] == "stopping_cycle = 2; stopping_min_reduction = 30.0"
    assert "below −30%" not in stopping["definition"] and "above −30%" in stopping["definition"]
    state = next(r for r in rows if r["name"] == "Treatment state, next due date, days overdue (SPEC §5.1)")
    assert "overdue when g ≤ 150" in state["definition"]
    assert "≥" in next(r for r in rows if r["name"] == "Wearing-off")["definition"]


@pytest.mark.parametrize(
    ("sessions", "diary", "treated", "episodic"),
    [
        ("", "A,2024-01-01,5\nA,2024-01-02,0\n", 0, None),
        ("A,2024-01-03\n", "A,2024-01-01,5\nA,2024-01-02,0\n", 1, "chronic migraine at baseline not established"),
        ("A,2024-01-03\n", "", 1, "chronic migraine at baseline not established"),
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
        assert row["nice_state"] == "not assessable" and "baseline not evaluable" in row["nice_reason"]
        assert episodic in row["episodic_reason"] and pd.isna(row["episodic_converted_on"])
        assert row["response_class"] == clinical.NOT_EVALUABLE


def test_cycle_flags_overuse_per_window_and_late_reinjection_per_session():
    # Two patients' windows by hand. overuse_acute_days = 10 and on_time_max_days = 98 (SPEC §5 defaults).
    cycles = pd.DataFrame(
        {
            "patient_id": ["A"] * 5 + ["B"] * 2,
            "cycle": [0, 1, 2, 3, 4, 0, 1],
            "start_date": pd.to_datetime(
                ["2024-02-02", "2024-03-01", "2024-05-24", "2024-09-13", "2024-12-06", "2024-01-04", "2024-02-01"]
            ),
            "amd": [12.0, 9.0, 10.0 - 1e-12, 28.0, 0.0, np.nan, 15.0],
            "evaluable": [True, True, True, False, True, True, True],
        }
    )
    flags = clinical.cycle_flags(cycles, AnalysisConfig())
    # A: 12 ≥ 10; 9 < 10; 10 − 1e-12 meets "at least 10" within the 1e-9 tolerance; 28 but not evaluable: empty.
    # B: no acute-medication value at baseline: empty.
    assert flags["overuse"].tolist() == [True, False, True, pd.NA, False, pd.NA, True]
    # Intervals: 03-01 → 05-24 = 84, 05-24 → 09-13 = 112 (> 98: 14 days late), 09-13 → 12-06 = 84.
    assert flags["interval_days"].tolist() == [pd.NA, pd.NA, 84, 112, 84, pd.NA, pd.NA]
    assert flags["late_reinjection"].tolist() == [pd.NA, pd.NA, False, True, False, pd.NA, pd.NA]
    assert flags["days_late"].tolist() == [pd.NA, pd.NA, pd.NA, 14, pd.NA, pd.NA, pd.NA]
    # An interval of exactly on_time_max_days is on time; one day more is late.
    edge = clinical.cycle_flags(cycles, AnalysisConfig(on_time_max_days=112))
    assert edge["late_reinjection"].tolist()[2:5] == [False, False, False]
    assert cycles.columns.tolist() == ["patient_id", "cycle", "start_date", "amd", "evaluable"]  # not modified


def test_a_change_that_rounds_to_zero_is_shown_as_zero_not_minus_zero():
    # Headache days 10.00 → 9.96 per 28 days: a change of −0.04, shown with one decimal as 0.0 (never "−0.0").
    cycles = pd.DataFrame(
        {
            "cycle": [0, 1],
            "status": ["baseline", "complete"],
            "mhd": [10.0, 9.96],
            "mmd": [np.nan, np.nan],
            "amd": [4.0, 4.0],
            "recorded_days": [28, 84],
            "window_days": [28, 84],
            "evaluable": [True, True],
        }
    )
    headache, _, acute = clinical.header_measures(cycles)
    assert headache["change"] == pytest.approx(-0.04)
    assert headache["change_shown"] == 0.0 and str(headache["change_shown"]) == "0.0"
    assert acute["change_shown"] == 0.0 and str(acute["change_shown"]) == "0.0"  # 4.0 − 4.0
    assert clinical.header_measures(cycles.assign(mhd=[10.0, 7.46]))[0]["change_shown"] == -2.5
    assert clinical.header_measures(cycles.assign(evaluable=[False, True]))[0]["change_shown"] is None
    assert clinical.shown_change(-0.04) == 0.0 and str(clinical.shown_change(-0.04)) == "0.0"
    assert [clinical.signed(v, 0, "%") for v in (-0.3, 0.4, -18.4, 12.0, np.nan)] == ["0%", "0%", "−18%", "+12%", "—"]
    assert clinical.signed(-0.04, 1) == "0.0" and clinical.signed(3, 1) == "+3.0"


@pytest.fixture(scope="module")
def sample():
    dataset = load_dataset(SAMPLE_DATA_DIR)
    analysis = analyse(dataset)
    return dataset, analysis, clinical.clinical_tables(analysis, dataset)


def test_one_patients_calendar_is_their_rows_of_the_all_patient_grid(sample):
    """The Patient page builds one patient's grid from that patient's rows; it must be the all-patient grid's rows."""
    _, analysis, tables = sample
    grid = clinical.diary_days(analysis, tables.params)
    status = tables.status.set_index("patient_id")
    untreated = sorted(set(grid["patient_id"]) - set(status.index))
    chosen = [
        status.index[0],  # the first patient the page opens
        status["n_sessions"].idxmax(),  # the most sessions
        status["treatment_state"].eq("discontinued").idxmax(),
        status["treatment_state"].eq("lapsed").idxmax(),
        status["nice_state"].eq("stop").idxmax(),
        status["wearing_off_cycles"].idxmax(),  # a patient with wearing-off
        *untreated[:1],  # a diary without sessions
    ]
    assert len(set(chosen)) >= 4
    for patient_id in chosen:
        expected = grid[grid["patient_id"] == patient_id].reset_index(drop=True)
        assert len(expected) > 0
        for rows in (tables.days, None):
            own = clinical.patient_calendar(analysis, patient_id, tables.params, rows)
            pd.testing.assert_frame_equal(own, expected)
        weekly = tables.weekly[tables.weekly["patient_id"] == patient_id].reset_index(drop=True)
        pd.testing.assert_frame_equal(clinical.weekly_profile(own, analysis.config), weekly)
    # Every patient the all-patient grid has is a patient with diary days or a treated patient.
    assert set(grid["patient_id"]) == tables.days.patient_ids() | set(status.index)


def test_the_grid_puts_each_diary_day_and_session_in_its_row_as_a_merge_would(sample):
    """The grid places the diary values and sessions by row number (block start + days since the patient's first
    day); a merge on (patient_id, date), the earlier construction, must give the same values."""
    _, analysis, tables = sample
    grid = clinical.diary_days(analysis, tables.params)
    # One row per calendar day, patients in id order, days in date order without gaps.
    assert grid[["patient_id", "date"]].equals(grid.sort_values(["patient_id", "date"])[["patient_id", "date"]])
    steps = grid.groupby("patient_id")["date"].diff().dropna()
    assert (steps == pd.Timedelta(days=1)).all()
    columns = ["headache_hours", "migraine", "severity", "acute_medication"]
    diary = analysis.patient_days[["patient_id", "date", *columns]].astype({"patient_id": "object"})
    merged = grid[["patient_id", "date"]].astype({"patient_id": "object"}).merge(diary, how="left")
    for column in columns:
        pd.testing.assert_series_equal(grid[column], merged[column])
    cycles = analysis.patient_cycles
    sessions = cycles.loc[cycles["cycle"] >= 1, ["patient_id", "start_date", "cycle"]].astype({"patient_id": "object"})
    sessions = sessions.rename(columns={"start_date": "date", "cycle": "injection_cycle"})
    merged = grid[["patient_id", "date"]].astype({"patient_id": "object"}).merge(sessions, how="left")
    pd.testing.assert_series_equal(grid["injection_cycle"], merged["injection_cycle"].astype("Int64"))
    # Every diary day up to the data cut-off is in the grid, once.
    assert int(grid["recorded"].sum()) == int(analysis.patient_days["headache_hours"].notna().sum())


def test_status_and_profiles_from_the_recorded_days_equal_those_from_the_all_patient_grid(sample):
    """Before: weekly profile, onset and wearing-off were built from the daily grid of every patient (a calendar row
    per day); now from group-bys of the recorded days, the calendar days counted from the cycle windows."""
    dataset, analysis, tables = sample
    config, cycles, params = analysis.config, analysis.patient_cycles, tables.params
    grid = clinical.diary_days(analysis, params)
    weekly = clinical.weekly_profile(grid, config)  # counts the grid's rows as the calendar days
    pd.testing.assert_frame_equal(tables.weekly, weekly)
    profile = clinical.onset_week(weekly, cycles, config, params).merge(
        clinical.wearing_off(grid, cycles, config, params), on=["patient_id", "cycle"], how="left"
    )
    pd.testing.assert_frame_equal(tables.cycle_profile, profile)
    # The calendar days of each wearing-off part, counted on the grid, are those taken from the windows.
    first_week, last_week = params.wearing_off_reference_weeks
    inside = grid[grid["cycle"].notna() & (grid["cycle"] >= 1)].merge(
        cycles[["patient_id", "cycle", "window_days"]].astype({"cycle": "Int64"}), on=["patient_id", "cycle"]
    )
    day = inside["day_in_cycle"].astype("int64")
    late_from = np.maximum(7 * last_week + 1, inside["window_days"] - params.wearing_off_late_days + 1)
    counted = (
        pd.DataFrame(
            {
                "patient_id": inside["patient_id"].astype(object),
                "cycle": inside["cycle"].astype("int64"),
                "reference_days": day.between(7 * (first_week - 1) + 1, 7 * last_week).astype("int64"),
                "late_days": (day >= late_from).astype("int64"),
            }
        )
        .groupby(["patient_id", "cycle"])
        .sum()
    )
    from_windows = tables.cycle_profile.astype({"patient_id": object}).set_index(["patient_id", "cycle"])
    pd.testing.assert_frame_equal(from_windows.loc[counted.index, ["reference_days", "late_days"]], counted)
    status = clinical.patient_status(
        analysis, dataset.tables["patients"], profile, clinical.questionnaire_bands(dataset.tables["questionnaires"])
    )
    pd.testing.assert_frame_equal(tables.status, status)
    assert tables.status["wearing_off_cycles"].sum() > 0 and tables.status["last_onset_week"].notna().sum() > 10


def test_the_patient_list_is_every_known_patient_sorted_by_code_point_with_the_first_judged_one():
    """``listed_patients`` (in Arrow) against the sets and ``sorted`` it replaced, on ids that sort differently
    by code point than by locale or case (``Z1`` < ``a1`` < ``Ä1``); a patient known only from the diary or from
    patients.csv is listed, and the first whose baseline is evaluable is the one opened."""
    from types import SimpleNamespace

    from analytics.definitions.pipeline import PatientDays

    text = "string[pyarrow]"
    status = pd.DataFrame({"patient_id": pd.Series(["Ä1", "a1", "b2"], dtype=text)})
    days = PatientDays(pd.DataFrame({"patient_id": pd.Series(["Z1", "a1", "a1"], dtype=text)}))
    patients = pd.DataFrame({"patient_id": pd.Series(["b2", "P9"], dtype=text)})
    cycles = pd.DataFrame({"patient_id": pd.Series(["Ä1", "b2", "a1"], dtype=text), "eligible": [True, True, False]})
    tables = SimpleNamespace(status=status, days=days)
    listed, first = clinical.listed_patients(
        tables,  # type: ignore[arg-type]
        SimpleNamespace(patient_cycles=cycles),  # type: ignore[arg-type]
        SimpleNamespace(tables={"patients": patients}),  # type: ignore[arg-type]
    )
    assert listed == ["P9", "Z1", "a1", "b2", "Ä1"] and first == 3  # b2: the first with an eligible cycle
    nobody = cycles.assign(eligible=False)
    assert clinical.listed_patients(
        tables,  # type: ignore[arg-type]
        SimpleNamespace(patient_cycles=nobody),  # type: ignore[arg-type]
        SimpleNamespace(tables={"patients": patients}),  # type: ignore[arg-type]
    ) == (listed, 0)

    dataset = load_dataset(SAMPLE_DATA_DIR)
    analysis = analyse(dataset)
    sample = clinical.clinical_tables(analysis, dataset)
    expected = sorted(
        set(sample.status["patient_id"]) | sample.days.patient_ids() | set(dataset.tables["patients"]["patient_id"])
    )
    judged = set(analysis.patient_cycles.loc[analysis.patient_cycles["eligible"].astype(bool), "patient_id"])
    assert clinical.listed_patients(sample, analysis, dataset) == (
        expected,
        next(i for i, pid in enumerate(expected) if pid in judged),
    )
