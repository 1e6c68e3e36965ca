"""Clinic-level measures (analytics.views.clinic) on a five-patient dataset worked by hand, plus invariants.

The hand dataset (data cut-off 2024-12-31):

    A North  sessions 01-01 (INJ1), 03-25 (INJ2), 07-01 (INJ1), 10-14 (INJ1)  intervals 84, 98, 105
    B North  sessions 02-01 (INJ2), 04-15 (INJ2)                                interval 74; lapsed
    C South  session  03-01 (INJ3), discontinued 2024-05-01
    D South  sessions 09-01 (INJ3), 11-20 (INJ3)                                interval 80
    E (no clinic) session 06-01 (no injector)                                    lapsed

Diaries: A, B and D have a 28-day baseline with 20 headache days (the migraine column is empty, so 0
migraine days: no chronic migraine at baseline under SPEC §5); A's cycle 2 has 8 headache days in
84 (a 50% responder, and three 28-day periods under 15 days); B's cycle 2 has 45 of 84 (−25%: NICE
says stop); D's ongoing cycle 2 has 3 in 42 (a responder). A's current cycle is recorded every
other day (40 of 79 days). Expected values are derived in the comments.

A second hand dataset (``WORKLIST_*``, below) has one patient per worklist case of SPEC §5.
"""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from analytics.definitions.cohort import cohort_cycles
from analytics.definitions.config import AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.ingest.load import load_dataset
from analytics.statistics.survival import kaplan_meier
from analytics.views import clinic

AS_OF = date(2024, 12, 31)

SESSIONS = """patient_id,session_date,total_units,n_injections,injector_id,protocol
A,2024-01-01,155,31,INJ1,PREEMPT
A,2024-03-25,155,31,INJ2,PREEMPT
A,2024-07-01,155,31,INJ1,PREEMPT
A,2024-10-14,155,31,INJ1,PREEMPT
B,2024-02-01,155,31,INJ2,PREEMPT
B,2024-04-15,155,31,INJ2,PREEMPT
C,2024-03-01,155,31,INJ3,PREEMPT
D,2024-09-01,155,31,INJ3,PREEMPT
D,2024-11-20,155,31,INJ3,PREEMPT
E,2024-06-01,155,31,,PREEMPT
"""

PATIENTS = """patient_id,sex,age_band,clinic,prior_preventives,medication_overuse,discontinued_on,discontinuation_reason
A,F,40-49,North,3,true,,
B,F,30-39,North,3,false,,
C,M,50-59,South,4,true,2024-05-01,patient choice
D,F,40-49,South,3,false,,
E,F,60-69,,3,false,,
"""

ADVERSE_EVENTS = """patient_id,session_date,event,severity,onset_date,resolved_date,serious
A,2024-10-14,neck_pain,mild,2024-10-16,2024-10-20,false
D,2024-11-20,eyelid_ptosis,moderate,2024-12-05,,false
D,2024-11-20,neck_pain,mild,,,false
B,2024-02-01,neck_pain,mild,2024-02-03,2024-02-10,false
"""


DIARY_HEADER = "patient_id,date,headache_hours,migraine,severity,acute_medication"


def diary_lines(patient_id: str, first: str, n_days: int, headache_days: int = 0, every: int = 1) -> list[str]:
    """Diary lines on every ``every``-th day from ``first``: 6 h of headache on the first ``headache_days``."""
    start = date.fromisoformat(first)
    return [
        f"{patient_id},{start + timedelta(days=i)},{6 if i < headache_days else 0},,," for i in range(0, n_days, every)
    ]


def diary_csv() -> str:
    rows = []
    for pid, baseline_start in (("A", "2023-12-04"), ("B", "2024-01-04"), ("D", "2024-08-04")):
        rows += diary_lines(pid, baseline_start, 28, headache_days=20)
    rows += diary_lines("A", "2024-03-25", 84, headache_days=8)
    rows += diary_lines("A", "2024-10-14", 79, every=2)  # 40 of 79 days
    rows += diary_lines("B", "2024-04-15", 84, headache_days=45)
    rows += diary_lines("D", "2024-11-20", 42, headache_days=3)
    return "\n".join([DIARY_HEADER, *rows]) + "\n"


@pytest.fixture(scope="module")
def hand(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    folder = tmp_path_factory.mktemp("clinic")
    for stem, text in (
        ("sessions", SESSIONS),
        ("diary", diary_csv()),
        ("patients", PATIENTS),
        ("adverse_events", ADVERSE_EVENTS),
    ):
        (folder / f"{stem}.csv").write_text(text, encoding="utf-8")
    dataset = load_dataset(folder)
    assert dataset.rejected.empty, dataset.rejected
    analysis = analyse(dataset, AnalysisConfig(as_of=AS_OF))
    view = clinic.clinic_view(dataset, analysis, clinic.ClinicFilter())
    return SimpleNamespace(dataset=dataset, analysis=analysis, view=view)


def test_roster_status_as_of_the_cut_off(hand: SimpleNamespace) -> None:
    register = clinic.session_register(hand.dataset, hand.analysis.as_of)
    roster = clinic.patient_roster(hand.dataset, register, hand.analysis).set_index("patient_id")
    # Days since the last session on 2024-12-31: A 78 (10-14), B 260, C 305, D 41, E 213.
    assert roster["days_since_last_session"].to_dict() == {"A": 78, "B": 260, "C": 305, "D": 41, "E": 213}
    assert roster.index[roster["active"]].tolist() == ["A", "D"]  # C is discontinued, B and E past 98 days
    # SPEC §5: more than 182 days (lapse_days) without a session is lapsed, not overdue (the clinic's earlier
    # "overdue" was anything past 98 days). C's discontinued_on 2024-05-01 is after its last session.
    assert roster["treatment_state"].to_dict() == {
        "A": "active",
        "B": "lapsed",
        "C": "discontinued",
        "D": "active",
        "E": "lapsed",
    }
    assert roster.loc["E", "clinic"] == clinic.NOT_RECORDED and roster.loc["E", "first_injector"] == clinic.NOT_RECORDED
    assert roster.loc["A", "first_injector"] == "INJ1" and roster.loc["A", "last_injector"] == "INJ1"
    assert roster["n_sessions"].to_dict() == {"A": 4, "B": 2, "C": 1, "D": 2, "E": 1}


def test_activity_and_monthly_volumes(hand: SimpleNamespace) -> None:
    view = hand.view
    assert view.activity == clinic.Activity(
        active=2, ever_treated=5, treated_in_period=5, sessions_in_period=10, new_in_period=5
    )
    totals = view.monthly_totals.set_index(view.monthly_totals["month"].dt.strftime("%Y-%m"))["sessions"]
    assert totals.to_dict() == {
        "2024-01": 1,
        "2024-02": 1,
        "2024-03": 2,
        "2024-04": 1,
        "2024-06": 1,
        "2024-07": 1,
        "2024-09": 1,
        "2024-10": 1,
        "2024-11": 1,
    }
    assert view.monthly["sessions"].sum() == 10
    # The period runs from the first session (2024-01-01) to the cut-off: only December is cut, and it is empty.
    assert not view.monthly["partial_month"].any()


def test_reinjection_intervals(hand: SimpleNamespace) -> None:
    summary = hand.view.interval_summary
    # Intervals 84, 98, 105 (A), 74 (B), 80 (D): median 84, quartiles 80 and 98.
    assert sorted(hand.view.intervals["interval_days"].tolist()) == [74, 80, 84, 98, 105]
    assert (summary.median_days, summary.q1_days, summary.q3_days) == (84, 80, 98)
    assert (summary.on_time.numerator, summary.on_time.denominator) == (3, 5)  # 84, 98 and 80
    assert (summary.early, summary.late) == (1, 1)
    # Gaps over 91 days: only A (98 and 105) of the 3 patients with an interval.
    assert (summary.patients_with_long_gap.numerator, summary.patients_with_long_gap.denominator) == (1, 3)
    distribution = hand.view.interval_distribution.set_index(["bin_start", "category"])["intervals"]
    # 98 is on time and 105 late, in different bins; 74 (70–76) early, 80 and 84 in 77–83 and 84–90.
    assert distribution.to_dict() == {
        (70, "early"): 1,
        (77, "on time"): 1,
        (84, "on time"): 1,
        (98, "on time"): 1,
        (105, "late"): 1,
    }


def test_retention_counts_and_time_to_reach(hand: SimpleNamespace) -> None:
    table = hand.view.retention.set_index("cycle")
    assert table["reached_n"].tolist() == [5, 3, 1, 1]
    assert table["reached_share"].tolist() == pytest.approx([1, 0.6, 0.2, 0.2])
    # Had the time when first session + (k − 1)·98 ≤ 2024-12-31: D (09-01) only for cycle 2, E (06-01)
    # up to cycle 3 (2024-12-14), A, B, C for all four.
    assert table["had_time_n"].tolist() == [5, 5, 4, 3]
    assert table["reached_had_time_n"].tolist() == [5, 3, 1, 1]
    assert table.loc[3, "reached_had_time_rate"] == 0.25


def test_persistence_definition_and_kaplan_meier(hand: SimpleNamespace) -> None:
    rows = hand.view.persistence.set_index("patient_id")
    # A: censored, 2024-01-01 → 2024-12-31 = 365 days. B: lapsed at 04-15 + 98 = 07-22, 172 days after 02-01.
    # C: recorded discontinuation 05-01 (before its lapse on 06-07), 61 days. D: censored, 121 days.
    # E: lapsed at 06-01 + 98 = 09-07, 98 days.
    assert rows["duration_days"].to_dict() == {"A": 365, "B": 172, "C": 61, "D": 121, "E": 98}
    assert rows["event"].to_dict() == {"A": False, "B": True, "C": True, "D": False, "E": True}
    assert rows.loc["C", "end_reason"] == "discontinued (recorded)"
    assert rows.loc["B", "end_reason"].startswith("lapsed")
    assert rows.loc["B", "end_date"] == pd.Timestamp("2024-07-22")
    curve = hand.view.persistence_curve
    # S: 4/5 after day 61, 3/5 after 98, 3/10 after 172 (2 at risk after D's censoring at 121).
    assert curve.survival_at([61, 98, 121, 172, 365]).tolist() == pytest.approx([0.8, 0.6, 0.6, 0.3, 0.3])
    assert curve.median() == 172
    at_risk = hand.view.persistence_at_risk
    assert at_risk["time"].tolist() == [0, 84, 168, 252, 336]
    assert at_risk["at_risk"].tolist() == [5, 4, 2, 1, 1]


def test_responder_rates_reuse_cohort_cycles_on_the_filtered_patients(hand: SimpleNamespace) -> None:
    north = clinic.clinic_view(hand.dataset, hand.analysis, clinic.ClinicFilter(clinic="North"))
    table = hand.analysis.patient_cycles
    expected = cohort_cycles(table[table["patient_id"].isin(["A", "B"])], hand.analysis.as_of, hand.analysis.config)
    pd.testing.assert_frame_equal(north.responder_rates, expected)
    cycle2 = north.responder_rates.set_index("cycle").loc[2]
    assert (cycle2["responder_50_n"], cycle2["n_evaluable"]) == (1, 2)  # A −87%, B −25%


def test_adverse_event_rates_per_100_sessions(hand: SimpleNamespace) -> None:
    rates = hand.view.adverse_events.set_index("event")
    assert rates.loc["neck_pain", "events"] == 3 and rates.loc["eyelid_ptosis", "events"] == 1
    assert rates.loc["dysphagia", "events"] == 0 and rates.loc["all events", "events"] == 4
    assert (rates["sessions"] == 10).all()
    assert rates.loc["neck_pain", "per_100_sessions"] == pytest.approx(30.0)
    # Exact Poisson (Garwood) 95% limits from published tables: k = 3: 0.619–8.767; k = 1: 0.0253–5.572;
    # k = 0: 0–3.689 events, here per 10 sessions × 100.
    assert rates.loc["neck_pain", ["ci_low", "ci_high"]].tolist() == pytest.approx([6.19, 87.67], abs=0.01)
    assert rates.loc["eyelid_ptosis", ["ci_low", "ci_high"]].tolist() == pytest.approx([0.253, 55.72], abs=0.01)
    assert rates.loc["dysphagia", ["ci_low", "ci_high"]].tolist() == pytest.approx([0.0, 36.89], abs=0.01)


def test_adverse_event_rates_are_missing_without_the_file(tmp_path, write_dataset) -> None:
    folder = write_dataset(tmp_path, sessions=SESSIONS, diary="patient_id,date,headache_hours\nA,2024-01-02,0\n")
    dataset = load_dataset(folder)
    view = clinic.clinic_view(dataset, analyse(dataset, AnalysisConfig(as_of=AS_OF)), clinic.ClinicFilter())
    assert view.adverse_events is None and view.worklists["adverse_events"] is None
    assert view.current_cycles["clinic"].eq(clinic.NOT_RECORDED).all()  # no patients.csv: no clinic


def test_current_cycle_completeness(hand: SimpleNamespace) -> None:
    current = hand.view.current_cycles.set_index("patient_id")
    assert current.index.tolist() == ["A", "D"]
    # A: cycle 4 from 10-14, ongoing to 12-31 = 79 days, 40 recorded. D: cycle 2 from 11-20, 42 of 42.
    assert current.loc["A", ["cycle", "recorded_days", "elapsed_days"]].tolist() == [4, 40, 79]
    assert current.loc["A", "completeness"] == pytest.approx(40 / 79)
    assert current.loc["D", "completeness"] == 1.0
    assert current["poor_completeness"].to_dict() == {"A": True, "D": False}
    dist = hand.view.completeness_distribution.set_index("bin_label")["patients"]
    assert dist.to_dict() == {"50–<60%": 1, "90–100%": 1}


def test_worklists(hand: SimpleNamespace) -> None:
    lists = hand.view.worklists
    # SPEC §5: B (260 days) and E (213 days) are past lapse_days = 182, so lapsed, and nobody is overdue (98 < days
    # ≤ 182). The clinic's earlier definition listed both as overdue.
    assert lists["overdue"].empty
    lapsed = lists["lapsed"]
    assert lapsed["patient"].tolist() == ["B", "E"]  # longest wait first: 260 and 213 days
    assert lapsed["next_due"].tolist() == [pd.Timestamp("2024-07-08"), pd.Timestamp("2024-08-24")]  # + 84 days
    assert lapsed["days_overdue"].tolist() == [162, 115]  # days past 98
    assert lapsed["patient"].iloc[0] == "B"  # plain ids, so a worklist's CSV holds ids (the page shows links)
    # Stop indicated among patients still on treatment: none. B's NICE "stop" (−25% at cycle 2) stands, but B is
    # lapsed; A's three 28-day periods under 15 headache days do not count because A's baseline had no migraine
    # day (not chronic migraine, SPEC §5.3). The earlier list had B (NICE) and A ("episodic").
    status = hand.analysis.patient_status.set_index("patient_id")
    assert status.loc["B", "nice_state"] == "stop" and bool(status.loc["B", "stop_indicated"]) is True
    assert bool(status.loc["A", "chronic_at_baseline"]) is False and pd.isna(status.loc["A", "episodic_now"])
    assert lists["stop_indicated"].empty
    assert lists["diary"]["patient"].tolist() == ["A"]
    assert lists["diary"][["recorded_days", "elapsed_days"]].iloc[0].tolist() == [40, 79]
    recent = lists["adverse_events"]
    # Only D's ptosis (onset 12-05) is in the 30 days to 12-31; D's neck pain has no onset, its session was 11-20.
    assert recent["patient"].tolist() == ["D"] and recent["event"].tolist() == ["eyelid_ptosis"]
    assert recent["days_since"].tolist() == [26] and recent["injector"].tolist() == ["INJ3"]


def test_filters(hand: SimpleNamespace) -> None:
    def view(**kwargs: object) -> clinic.ClinicView:
        return clinic.clinic_view(hand.dataset, hand.analysis, clinic.ClinicFilter(**kwargs))

    north = view(clinic="North")
    assert (north.activity.active, north.activity.ever_treated, north.activity.sessions_in_period) == (1, 2, 6)
    assert north.worklists["lapsed"]["patient"].tolist() == ["B"]
    # Injector INJ1: its sessions (A's 1st, 3rd and 4th) and the intervals ending there (98, 105);
    # patient-level figures follow the patients whose first session it gave (A).
    inj1 = view(injector="INJ1")
    assert inj1.activity.sessions_in_period == 3 and inj1.activity.new_in_period == 1
    assert sorted(inj1.intervals["interval_days"].tolist()) == [98, 105]
    assert inj1.adverse_events.set_index("event").loc["all events", "events"] == 1  # A's neck pain after 10-14
    # Period March–June: sessions A 03-25, B 04-15, C 03-01, E 06-01; patients starting then: C and E.
    spring = view(start=date(2024, 3, 1), end=date(2024, 6, 30))
    assert spring.activity.sessions_in_period == 4 and spring.activity.new_in_period == 2
    assert sorted(spring.intervals["interval_days"].tolist()) == [74, 84]
    assert spring.retention["started_n"].iloc[0] == 2
    assert spring.persistence["patient_id"].tolist() == ["C", "E"]
    assert spring.worklists["lapsed"]["patient"].tolist() == ["B", "E"]  # worklists are as of the cut-off
    not_recorded = view(clinic=clinic.NOT_RECORDED)
    assert not_recorded.activity.ever_treated == 1 and not_recorded.activity.sessions_in_period == 1


def test_funnels_attribute_patients_to_their_first_injector(hand: SimpleNamespace) -> None:
    view = clinic.clinic_view(hand.dataset, hand.analysis, clinic.ClinicFilter(clinic="North", injector="INJ2"))
    injectors = view.injector_funnel.units.set_index("unit")
    # Within North: A's first session was by INJ1 (responder at cycle 2), B's by INJ2 (not).
    assert injectors.index.tolist() == ["INJ1", "INJ2"]
    assert injectors[["evaluable_n", "responders_n"]].to_numpy().tolist() == [[1, 1], [1, 0]]
    assert view.injector_funnel.highlight == "INJ2"
    # Clinics are compared with each other whatever clinic is chosen: North 1/2, South 1/1 (D), E not evaluable.
    clinics = view.clinic_funnel.units.set_index("unit")
    assert clinics.loc["North", ["evaluable_n", "responders_n"]].tolist() == [2, 1]
    assert clinics.loc["South", ["evaluable_n", "responders_n"]].tolist() == [1, 1]
    assert clinics.loc[clinic.NOT_RECORDED, "position"] == "not evaluable"
    assert (view.clinic_funnel.overall.numerator, view.clinic_funnel.overall.denominator) == (2, 3)


def test_definitions_fill_parameters(hand: SimpleNamespace) -> None:
    text = clinic.definition("overdue", AnalysisConfig(cycle_days=90, lapse_days=150))
    assert "+ 90 days" in text and "at most 150 days" in text and "{" not in text
    assert "0.8" in clinic.definition("diary", AnalysisConfig(min_completeness=0.8))
    assert {d["key"] for d in clinic.DEFINITIONS} >= {"active", "persistence", "funnel", "interval"}


# --- worklists by SPEC §5 treatment_state and stop_indicated, on a second hand dataset ------------

WORKLIST_AS_OF = date(2025, 6, 30)
# patient: (sessions, baseline headache days in 28, headache days per 28-day block after D1, diary to,
#           discontinued_on). Headache days carry migraine = true; every day is recorded up to "diary to".
WORKLIST_PATIENTS = {
    # active (96 days since 03-26); cycle 2 17/28 against 20/28: −15%, NICE stop.
    "P1": (["2025-01-01", "2025-03-26"], 20, 17, "2025-06-30", ""),
    # overdue (149 days since 02-01); 5 per 28 days since D1: episodic now; NICE −75%: continue.
    "P2": (["2024-11-08", "2025-02-01"], 20, 5, "2025-06-30", ""),
    # lapsed (241 days since 2024-11-01); NICE −15%: stop, but off treatment.
    "P3": (["2024-08-09", "2024-11-01"], 20, 17, "2025-01-23", ""),
    # discontinued 2025-06-20 (after its last session) with NICE stop: off treatment.
    "P4": (["2025-01-01", "2025-03-26"], 20, 17, "2025-06-20", "2025-06-20"),
    # discontinued 2024-09-01, then a new start 2025-05-01: active (60 days); 16 per 28 days: no rule met.
    "P5": (["2024-06-01", "2025-05-01"], 20, 16, "2025-06-30", "2024-09-01"),
    # never chronic (12 baseline headache days); 5 per 28 days after: no episodic "conversion"; NICE continue.
    "P6": (["2025-01-01", "2025-03-26"], 12, 5, "2025-06-30", ""),
    # overdue (149 days); 8 per 28 days until 2025-02-28 only: converted once, "now" not judged; cycle 2 not
    # evaluable (NICE not assessable); EHF continue (−60% at cycle 1): no rule met.
    "P7": (["2024-11-08", "2025-02-01"], 20, 8, "2025-02-28", ""),
}


def worklist_files() -> dict[str, bytes]:
    sessions, diary, patients = (
        ["patient_id,session_date"],
        [DIARY_HEADER],
        ["patient_id,clinic,prior_preventives,discontinued_on,discontinuation_reason"],
    )
    for pid, (dates, baseline, per_block, until, stopped) in WORKLIST_PATIENTS.items():
        sessions += [f"{pid},{d}" for d in dates]
        first = date.fromisoformat(dates[0])
        for offset in range(-28, (date.fromisoformat(until) - first).days + 1):
            headache = offset < -28 + baseline if offset < 0 else offset % 28 < per_block
            diary.append(f"{pid},{first + timedelta(days=offset)},{6 if headache else 0},{str(headache).lower()},,")
        patients.append(f"{pid},North,3,{stopped},{'lack of efficacy' if stopped else ''}")
    return {
        name: ("\n".join(lines) + "\n").encode()
        for name, lines in (("sessions.csv", sessions), ("diary.csv", diary), ("patients.csv", patients))
    }


@pytest.fixture(scope="module")
def worklist_case() -> SimpleNamespace:
    dataset = load_dataset(worklist_files())
    assert dataset.rejected.empty, dataset.rejected
    analysis = analyse(dataset, AnalysisConfig(as_of=WORKLIST_AS_OF))
    return SimpleNamespace(analysis=analysis, view=clinic.clinic_view(dataset, analysis, clinic.ClinicFilter()))


def test_worklists_follow_treatment_state_and_stop_indicated(worklist_case: SimpleNamespace) -> None:
    status = worklist_case.analysis.patient_status.set_index("patient_id")
    assert status["treatment_state"].to_dict() == {
        "P1": "active",
        "P2": "overdue",
        "P3": "lapsed",
        "P4": "discontinued",
        "P5": "active",
        "P6": "active",
        "P7": "overdue",
    }
    assert status["nice_state"].to_dict() == {
        "P1": "stop",
        "P2": "continue",
        "P3": "stop",
        "P4": "stop",
        "P5": "pending",
        "P6": "continue",
        "P7": "not assessable",
    }
    assert bool(status.loc["P6", "chronic_at_baseline"]) is False  # 12 < 15 baseline headache days
    assert pd.notna(status.loc["P7", "episodic_converted_on"]) and pd.isna(status.loc["P7", "episodic_now"])
    lists = worklist_case.view.worklists
    # Overdue: 149 days each, then by id. Lapsed: P3 only. The discontinued P4 is on no list; P5's earlier
    # discontinuation was followed by a new start, so it counts as active.
    assert lists["overdue"]["patient"].tolist() == ["P2", "P7"]
    assert lists["overdue"]["next_due"].tolist() == [pd.Timestamp("2025-04-26")] * 2  # 2025-02-01 + 84
    assert lists["overdue"]["days_overdue"].tolist() == [51, 51]  # 149 − 98
    assert lists["lapsed"]["patient"].tolist() == ["P3"]
    assert lists["lapsed"]["days_since_last_session"].tolist() == [241]
    # Stop indicated and still on treatment, next due first: P2 (due 2025-04-26, episodic now) and P1 (due
    # 2025-06-18, NICE 30%). Not P3 (lapsed), P4 (discontinued), P6 (never chronic) or P7 (not episodic now).
    stop = lists["stop_indicated"]
    assert stop["patient"].tolist() == ["P2", "P1"]
    assert stop["rules"].tolist() == ["episodic now", "NICE 30%"]
    assert stop["treatment_state"].tolist() == ["overdue", "active"]
    assert stop["latest_mhd_pct_change"].round(6).tolist() == [-75.0, -15.0]  # 5 and 17 against 20 per 28 days
    assert worklist_case.view.activity.active == 3  # P1, P5, P6


def test_persistence_follows_treatment_state(worklist_case: SimpleNamespace) -> None:
    rows = worklist_case.view.persistence.set_index("patient_id")
    # Ended: P3 lapsed (at 2024-11-01 + 98 = 2025-02-07) and P4 discontinued (2025-06-20). P5's discontinuation
    # before its new start does not end it; overdue P2 and P7 are censored (they may still come).
    assert rows.index[rows["event"]].tolist() == ["P3", "P4"]
    assert rows.loc["P3", "end_date"] == pd.Timestamp("2025-02-07")
    assert rows.loc["P4", "end_date"] == pd.Timestamp("2025-06-20")
    assert rows.loc["P3", "duration_days"] == 182  # 2024-08-09 to 2025-02-07


# --- invariants on a synthetic cohort ---------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    from analytics.synth import generate_cohort, write_cohort

    folder = tmp_path_factory.mktemp("synthetic")
    write_cohort(generate_cohort(120, seed=7), folder)
    dataset = load_dataset(folder)
    return SimpleNamespace(dataset=dataset, analysis=analyse(dataset, AnalysisConfig()))


@pytest.mark.parametrize(
    "flt",
    [
        clinic.ClinicFilter(),
        clinic.ClinicFilter(clinic="North"),
        clinic.ClinicFilter(injector="INJ05"),
        clinic.ClinicFilter(start=date(2024, 1, 1), end=date(2024, 12, 31)),
    ],
)
def test_invariants_on_a_synthetic_cohort(synthetic: SimpleNamespace, flt: clinic.ClinicFilter) -> None:
    view = clinic.clinic_view(synthetic.dataset, synthetic.analysis, flt)
    assert view.monthly["sessions"].sum() == view.activity.sessions_in_period == view.monthly_totals["sessions"].sum()
    assert view.interval_distribution["intervals"].sum() == view.interval_summary.n_intervals
    summary = view.interval_summary
    assert summary.on_time.numerator + summary.early + summary.late == summary.n_intervals
    assert view.completeness_distribution["patients"].sum() == len(view.current_cycles) == view.activity.active
    # The persistence curve is the KM of the per-patient table; the retention cohort is the same patients.
    km = kaplan_meier(view.persistence["duration_days"], view.persistence["event"])
    pd.testing.assert_frame_equal(km.table, view.persistence_curve.table)
    assert view.retention["started_n"].iloc[0] == len(view.persistence) == view.activity.new_in_period
    # The funnel of injectors covers the same patients as the responder rates when no injector is chosen.
    if flt.injector is None:
        cycle2 = view.responder_rates.set_index("cycle")
        if 2 in cycle2.index:
            assert view.injector_funnel.overall.numerator == cycle2.loc[2, "responder_50_n"]
            assert view.injector_funnel.overall.denominator == cycle2.loc[2, "n_evaluable"]
    # Rates stay empty, never 0, where a unit has no evaluable patient.
    units = view.clinic_funnel.units
    assert units.loc[units["evaluable_n"] == 0, "rate"].isna().all()
    # Every worklist patient is a patient of the selection.
    selected = set(view.current_cycles["patient_id"])
    assert set(view.worklists["diary"]["patient"]) <= selected
    config = synthetic.analysis.config
    overdue_days = view.worklists["overdue"]["days_since_last_session"]
    assert np.all((overdue_days > config.on_time_max_days) & (overdue_days <= config.lapse_days))
    assert np.all(view.worklists["lapsed"]["days_since_last_session"] > config.lapse_days)
    # The stop list is exactly SPEC §5's stop_indicated among the selection's patients still on treatment.
    status = synthetic.analysis.patient_status
    on_treatment = status["treatment_state"].isin(["active", "overdue"]) & status["stop_indicated"].eq(True)
    roster = clinic.patient_roster(
        synthetic.dataset, clinic.session_register(synthetic.dataset, view.as_of), synthetic.analysis
    )
    chosen = roster[
        roster["clinic"].eq(flt.clinic or roster["clinic"])
        & roster["first_injector"].eq(flt.injector or roster["first_injector"])
    ]
    wanted = set(status.loc[on_treatment, "patient_id"]) & set(chosen["patient_id"])
    assert len(wanted) > 0 or flt.injector is not None
    assert set(view.worklists["stop_indicated"]["patient"]) == wanted


def test_safety_view_adds_wilson_intervals_and_the_published_figures(hand: SimpleNamespace) -> None:
    view = clinic.safety_view(hand.analysis)
    table = view.table.set_index("event")
    # 5 treated patients, 3 with at least 2 sessions (A, B, D). Neck pain: A (after session 4), B (session 1),
    # D (session 2): 3 of 5 at any time, 2 of 3 after session 1 or 2. Eyelid ptosis: D (session 2).
    assert table.loc[
        "neck_pain", ["patients_with_event", "patients", "patients_with_event_2_cycles", "patients_2_cycles"]
    ].tolist() == [3, 5, 2, 3]
    # Wilson 95% limits from published tables: 3/5 -> 23.07–88.24%, 2/3 -> 20.77–93.85%, 1/3 -> 6.15–79.23%.
    assert table.loc[
        "neck_pain", ["patients_with_event_ci_low", "patients_with_event_ci_high"]
    ].tolist() == pytest.approx([23.07, 88.24], abs=0.01)
    assert table.loc["neck_pain", ["pct_2_cycles_ci_low", "pct_2_cycles_ci_high"]].tolist() == pytest.approx(
        [20.77, 93.85], abs=0.01
    )
    assert table.loc["eyelid_ptosis", ["pct_2_cycles_ci_low", "pct_2_cycles_ci_high"]].tolist() == pytest.approx(
        [6.15, 79.23], abs=0.01
    )
    # Beside them the published figures: PREEMPT's 24-week share of patients with neck pain (8.7%) and COMPEL's
    # treatment-related share over 108 weeks (4.1%, 29 of 716); nothing published of PREEMPT's kind for "any".
    assert table.loc["neck_pain", ["preempt_pct_2_cycles", "compel_pct_treatment_related"]].tolist() == [8.7, 4.1]
    assert pd.isna(table.loc["any", "preempt_pct_2_cycles"])
    assert table.loc["any", "compel_pct_treatment_related"] == 18.3
    assert set(view.published["event"]) == {"neck_pain", "eyelid_ptosis", "any"}
    assert view.published["source"].str.contains(r"Headache 2010;50:921|J Headache Pain 2018;19:13").all()
    assert view.method == "95% Wilson score interval"


def test_safety_view_is_empty_without_the_file(tmp_path, write_dataset) -> None:
    folder = write_dataset(tmp_path, sessions=SESSIONS, diary="patient_id,date,headache_hours\nA,2024-01-02,0\n")
    assert clinic.safety_view(analyse(load_dataset(folder), AnalysisConfig(as_of=AS_OF))) is None


def test_worklist_cells_are_never_empty_so_no_none_is_shown(hand: SimpleNamespace) -> None:
    # D's ptosis (onset 12-05) has no resolved date; give it no severity and no 'serious' either.
    events = hand.dataset.tables["adverse_events"].copy()
    ptosis = events["event"] == "eyelid_ptosis"
    events.loc[ptosis, "severity"] = pd.NA
    events["serious"] = events["serious"].mask(ptosis)
    register = clinic.session_register(hand.dataset, hand.analysis.as_of)
    recent = clinic.recent_adverse_events(events, register, hand.analysis.as_of, clinic.ClinicFilter())
    row = recent.iloc[0]
    assert (row["event"], row["onset_date"]) == ("eyelid_ptosis", pd.Timestamp("2024-12-05"))  # kept as a date
    assert (row["severity"], row["serious"], row["resolved_date"]) == ("—", "—", "—")
    assert not recent.isna().any().any() and not (recent.astype(str) == "None").any().any()
    # A stop-indicated patient on treatment without an evaluable cycle (episodic now only): '—', not None.
    roster = pd.DataFrame(
        {
            "patient_id": ["P1", "P2"],
            "clinic": ["North", "North"],
            "treatment_state": ["active", "overdue"],
            "stop_indicated": pd.array([True, True], dtype="boolean"),
            "next_due": pd.to_datetime(["2025-01-10"] * 2),
            "days_overdue": pd.array([0, 12], dtype="Int64"),
            "nice_state": ["pending", "stop"],
            "ehf_state": ["pending", "stop"],
            "episodic_now": pd.array([True, False], dtype="boolean"),
            "latest_evaluable_cycle": pd.array([pd.NA, 3], dtype="Int64"),
            "latest_mhd_pct_change": [np.nan, -12.04],
            "last_session": pd.to_datetime(["2024-10-12"] * 2),
            "n_sessions": [2, 3],
        }
    )
    stop = clinic.stop_indicated_worklist(roster, AnalysisConfig()).set_index("patient")
    assert stop.loc["P1", ["latest_evaluable_cycle", "latest_mhd_pct_change"]].tolist() == ["—", "—"]
    assert stop.loc["P2", ["latest_evaluable_cycle", "latest_mhd_pct_change"]].tolist() == ["3", "-12"]
    assert stop["next_due"].dtype.kind == "M" and not stop.isna().any().any()
    assert clinic.filled_cells(pd.DataFrame({"change": [-0.04, np.nan]}))["change"].tolist() == ["0", "—"]
