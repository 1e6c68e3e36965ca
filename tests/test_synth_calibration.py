"""The synthetic cohort is calibrated to published figures, measured the way the dashboard measures.

A clinical review of the previous generator found it too good after cycle 1 (61% of patients 50%
responders in cycle 2, 75-78% in cycles 4-7), with PREEMPT's per-patient two-cycle adverse-event
rates applied per session (eyelid ptosis in 8% of patients within two sessions) and too many
patients stopping (half reached cycle 5). This module generates a seeded cohort, writes it, runs the
project's own analysis on the files (analytics.ingest.load.load_dataset + analytics.definitions.pipeline.analyse, SPEC
§3) and checks each figure against its published target.

Ranges: the published figure plus or minus about three binomial standard errors for the
denominators of a 1,500-patient cohort (cycle 1-3 denominators ~650-1,200: SE 1.5-2 points) and a
little calibration slack; a 10,000-patient run lands within about a point of each target. Where a
SPEC definition differs from the trial's, the comment says how.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analytics.definitions.config import AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.ingest.load import load_dataset
from analytics.synth import generate_cohort, write_cohort

N_PATIENTS = 1_500
SEED = 7_310_522

# Time for four re-injection intervals of up to 16 weeks: the denominator of "reached cycle 5".
FOUR_INTERVALS_DAYS = 4 * 112


@pytest.fixture(scope="module", name="calibrated")
def calibrated_fixture(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder: Path = tmp_path_factory.mktemp("synth_calibration")
    write_cohort(generate_cohort(N_PATIENTS, seed=SEED), folder)
    dataset = load_dataset(folder)
    analysis = analyse(dataset, AnalysisConfig())
    sessions = dataset.tables["sessions"].sort_values(["patient_id", "session_date"], ignore_index=True)
    sessions["number"] = sessions.groupby("patient_id").cumcount() + 1
    return {
        "dataset": dataset,
        "analysis": analysis,
        "cohort": analysis.cohort_cycles.set_index("cycle"),
        "sessions": sessions,
    }


def _percent(row: pd.Series, column: str) -> float:
    return 100 * float(row[column])


def test_loads_with_zero_rejected_rows_and_three_clinics(calibrated: dict) -> None:
    dataset = calibrated["dataset"]
    assert len(dataset.rejected) == 0, dataset.rejected.head()
    assert dataset.tables["patients"]["clinic"].nunique() == 3


def test_baseline_is_about_twenty_headache_days(calibrated: dict) -> None:
    # PREEMPT pooled (Dodick 2010, Headache): 19.9 headache days per 28 days at baseline; the mean
    # among SPEC §3 eligible patients is cycle 0's mean_mhd.
    baseline = calibrated["cohort"].loc[0]
    assert baseline["n_evaluable"] >= 1_100
    assert 18.0 <= float(baseline["mean_mhd"]) <= 22.0


# PREEMPT pooled, per treatment cycle (Silberstein 2015, J Neurol Neurosurg Psychiatry; the cycle
# analysis of the 56-week program, Aurora 2011): 49.3% of patients were 50% responders after
# cycle 1, a further 11.3% after cycle 2 and 10.3% after cycle 3 -> cumulative 49.3, 60.6, 70.9%.
PREEMPT_CUMULATIVE = {1: 49.3, 2: 60.6, 3: 70.9}


@pytest.mark.parametrize("cycle", sorted(PREEMPT_CUMULATIVE))
def test_cumulative_responders_among_completers_follow_preempt(calibrated: dict, cycle: int) -> None:
    row = calibrated["cohort"].loc[cycle]
    assert row["cum_responder_50_completers_denom"] >= 700
    rate = _percent(row, "cum_responder_50_completers_rate")
    assert rate == pytest.approx(PREEMPT_CUMULATIVE[cycle], abs=5.5)


@pytest.mark.parametrize(("cycle", "low", "high"), [(1, 44.0, 55.0), (2, 54.0, 66.0), (3, 59.0, 75.0)])
def test_cumulative_responders_intention_to_treat(calibrated: dict, cycle: int, low: float, high: float) -> None:
    # The same PREEMPT targets. Intention-to-treat counts patients who stopped (the NICE TA260 review
    # after cycle 2, mostly of non-responders) as non-responders from then on, so from cycle 3 it runs
    # a few points below the completers' rate (~66% at cycle 3 on 10,000 patients); hence the lower
    # bound 59 rather than 65 there.
    row = calibrated["cohort"].loc[cycle]
    assert row["cum_responder_50_itt_denom"] >= 900
    assert low <= _percent(row, "cum_responder_50_itt_rate") <= high


def test_new_responders_add_about_eleven_then_ten_points(calibrated: dict) -> None:
    # Silberstein 2015: +11.3 points of patients after cycle 2, +10.3 after cycle 3 (completers).
    completers = calibrated["cohort"]["cum_responder_50_completers_rate"] * 100
    assert 7.0 <= completers[2] - completers[1] <= 15.5
    assert 6.0 <= completers[3] - completers[2] <= 14.5
    # Among patients evaluable at cycle k who had not yet responded, the share responding now
    # (SPEC §3 conditional new-responder rate): 11.3 / 50.7 = 22% and 10.3 / 39.4 = 26% in PREEMPT.
    conditional = calibrated["cohort"]["new_responder_50_rate"] * 100
    assert 15.0 <= conditional[2] <= 30.0
    assert 15.0 <= conditional[3] <= 32.0


def test_responders_per_cycle_stay_below_sixty_percent(calibrated: dict) -> None:
    cohort = calibrated["cohort"]
    # Pooled PREEMPT week 24 (end of cycle 2): 44.8% 50% responders (Diener 2020, Pain Ther). The
    # SPEC per-cycle rate is over patients evaluable in the cycle; cycle 1 runs ~4 points above the
    # cumulative rate above because ~8% of eligible patients have no evaluable cycle-1 window.
    assert 42.0 <= _percent(cohort.loc[2], "responder_50_rate") <= 53.0
    assert _percent(cohort.loc[1], "responder_50_rate") <= 58.0
    # Long term the benefit plateaus (COMPEL, 9 cycles: -9.2 headache days at week 60, -10.7 at week
    # 108 from 22.0, about half): no cycle with enough patients to judge has more than ~60% responders.
    judged = cohort[(cohort.index >= 1) & (cohort["n_evaluable"] >= 300)]
    assert len(judged) >= 5
    assert (judged["responder_50_rate"] * 100).max() <= 61.0, judged["responder_50_rate"]


# PREEMPT pooled double-blind phase (Dodick 2010; safety tables of Aurora 2010 / Diener 2010): share
# of patients with the event during the first two cycles. (low, high) in percent.
ADVERSE_EVENTS_2_CYCLES = {
    "neck_pain": (6.0, 11.5),  # 8.7%
    "muscular_weakness": (3.5, 7.8),  # 5.5%
    "musculoskeletal_stiffness": (2.0, 5.8),  # 3.8%
    "eyelid_ptosis": (1.8, 5.0),  # 3.3%
    "injection_site_pain": (1.6, 5.0),  # 3.2%
    "headache": (1.6, 5.0),  # 3.2%
}


def test_adverse_events_per_patient_over_two_cycles_match_preempt(calibrated: dict) -> None:
    # SPEC §5.4 pct_2_cycles: among patients with at least 2 sessions, those with the event after
    # session D1 or D2 (PREEMPT's 24-week figures are of this kind).
    sessions, events = calibrated["sessions"], calibrated["dataset"].tables["adverse_events"]
    per_patient = sessions.groupby("patient_id").size()
    two_cycles = per_patient[per_patient >= 2].index
    first_two = sessions[(sessions["number"] <= 2) & sessions["patient_id"].isin(two_cycles)]
    counted = events.merge(first_two[["patient_id", "session_date"]], on=["patient_id", "session_date"])
    assert len(two_cycles) >= 1_100
    percent = counted.groupby("event")["patient_id"].nunique() / len(two_cycles) * 100
    for event, (low, high) in ADVERSE_EVENTS_2_CYCLES.items():
        assert low <= percent.get(event, 0.0) <= high, (event, percent.get(event))
    # Per session the rate is about half the two-cycle figure (8.7% -> ~4.4% in cycles 1-2).
    per_session = events["event"].value_counts() / len(sessions) * 100
    assert 2.0 <= per_session["neck_pain"] <= 5.5
    assert 0.6 <= per_session["eyelid_ptosis"] <= 2.5


def test_about_seventy_percent_reach_cycle_five(calibrated: dict) -> None:
    # PREEMPT: 1,005 of 1,384 patients (72.6%) received all five cycles (Aurora 2014, Acta Neurol
    # Scand). Denominator: patients whose first session lies at least 4 x 16 weeks before the data
    # cut-off, so that four intervals, late ones included, fit; numerator: those with >= 5 sessions.
    sessions, as_of = calibrated["sessions"], calibrated["analysis"].as_of
    first = sessions.groupby("patient_id")["session_date"].min()
    per_patient = sessions.groupby("patient_id").size()
    had_the_time = first[first <= as_of - pd.Timedelta(days=FOUR_INTERVALS_DAYS)].index
    assert len(had_the_time) >= 700
    assert 64.0 <= 100 * (per_patient[had_the_time] >= 5).mean() <= 77.0


def test_reinjection_delays_are_repose_like(calibrated: dict) -> None:
    sessions, as_of = calibrated["sessions"], calibrated["analysis"].as_of
    gap = sessions.groupby("patient_id")["session_date"].diff().dt.days
    # Most re-injections on time (12 weeks, 77-98 days; SPEC §5 on_time_min/max_days).
    assert gap.dropna().between(77, 98).mean() >= 0.65
    # REPOSE (Ahmed 2019, J Headache Pain; 24 months of follow-up): 79.1% of patients had at least one
    # session more than 13 weeks after the previous one. Comparable patients here: first session at
    # least two years before the cut-off, with two sessions or more.
    late = sessions.assign(late=gap > 91).groupby("patient_id")["late"].any()
    first = sessions.groupby("patient_id")["session_date"].min()
    per_patient = sessions.groupby("patient_id").size()
    followed = first[(first <= as_of - pd.Timedelta(days=730)) & (per_patient.reindex(first.index) >= 2)].index
    assert len(followed) >= 300
    assert 70.0 <= 100 * late[followed].mean() <= 90.0
