"""SPEC §3 per-patient definitions, each on a hand-built dataset with its values worked out here.

Dates are worked by hand in the comments (2024 is a leap year: February has 29 days). Unless a
test says otherwise the parameters are SPEC's defaults: baseline 28 days, cycles of 84 days, a
headache day has >= 4 h, a window is evaluable with completeness >= 0.7 and >= 28 days.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from analytics.definitions.config import AnalysisConfig

SESSIONS = "patient_id,session_date\n"
DIARY = "patient_id,date,headache_hours,migraine,severity,acute_medication\n"


def iso(d0: str, offset: int = 0) -> str:
    return (date.fromisoformat(d0) + timedelta(days=offset)).isoformat()


def window_diary(pid: str, start: str, recorded: int, headache: int = 0, migraine: int = 0, acute: int = 0) -> str:
    """``recorded`` consecutive diary days from ``start``: the first ``headache`` have 6 h of headache,
    the first ``migraine`` are migraine days and the first ``acute`` took acute medication."""
    return "".join(
        f"{pid},{iso(start, i)},{6 if i < headache else 0},"
        f"{'yes' if i < migraine else 'no'},,{'y' if i < acute else 'n'}\n"
        for i in range(recorded)
    )


def by_cycle(analysis, pid: str = "P1") -> pd.DataFrame:
    table = analysis.patient_cycles
    return table[table["patient_id"] == pid].set_index("cycle")


def config(as_of: str | None = None, **changes) -> AnalysisConfig:
    return AnalysisConfig(as_of=date.fromisoformat(as_of) if as_of else None, **changes)


# --- windows -----------------------------------------------------------------------------------


def test_baseline_and_cycle_windows_capping_gap_and_ongoing_last_cycle(analyse_files) -> None:
    # Sessions D1 = 2024-03-01, D2 = 2024-05-10 (70 days later), D3 = 2024-09-01 (late: 114 days after
    # D2), and 2024-11-01, which is after as_of = 2024-10-15 and so ignored.
    #   cycle 0 (baseline): [D1 - 28, D1 - 1] = [2024-02-02, 2024-02-29], 28 days
    #   cycle 1: [2024-03-01, min(D2 - 1, D1 + 83)] = [2024-03-01, min(05-09, 05-23)] = 05-09, 70 days
    #   cycle 2: [2024-05-10, min(D3 - 1 = 08-31, D2 + 83 = 08-01)] = 08-01, 84 days (capped)
    #   the gap 2024-08-02 .. 2024-08-31 belongs to no window
    #   cycle 3: [2024-09-01, D3 + 83 = 2024-11-23] is after as_of, so it ends on 2024-10-15: ongoing, 45 days
    sessions = SESSIONS + "P1,2024-03-01\nP1,2024-05-10\nP1,2024-09-01\nP1,2024-11-01\n"
    days_and_cycles = {
        "2024-02-01": None,  # before the baseline
        "2024-02-02": (0, 1),
        "2024-02-29": (0, 28),
        "2024-03-01": (1, 1),
        "2024-05-09": (1, 70),
        "2024-05-10": (2, 1),
        "2024-08-01": (2, 84),
        "2024-08-02": None,
        "2024-08-31": None,  # the gap after a capped cycle
        "2024-09-01": (3, 1),
        "2024-10-15": (3, 45),
    }
    diary = DIARY + "".join(f"P1,{d},0,,,\n" for d in days_and_cycles) + "P1,2024-10-16,0,,,\n"  # after as_of
    analysis = analyse_files(sessions=sessions, diary=diary, config=config("2024-10-15"))

    table = by_cycle(analysis)
    assert table.index.tolist() == [0, 1, 2, 3]
    assert table["start_date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-02-02",
        "2024-03-01",
        "2024-05-10",
        "2024-09-01",
    ]
    assert table["end_date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-02-29",
        "2024-05-09",
        "2024-08-01",
        "2024-10-15",
    ]
    assert table["window_days"].tolist() == [28, 70, 84, 45]
    assert table["status"].tolist() == ["baseline", "complete", "complete", "ongoing"]
    assert table["recorded_days"].tolist() == [2, 2, 2, 2]

    days = analysis.patient_days
    assigned = {
        d.strftime("%Y-%m-%d"): (None if pd.isna(c) else (int(c), int(k)))
        for d, c, k in zip(days["date"], days["cycle"], days["day_in_cycle"], strict=True)
    }
    assert "2024-10-16" not in assigned, "rows dated after as_of are ignored"
    assert assigned == days_and_cycles


@pytest.mark.parametrize(
    ("as_of", "status", "end", "window_days"),
    [
        # D1 + 83 = 2024-05-23; on that day the cycle is complete, the day before it is ongoing.
        ("2024-05-23", "complete", "2024-05-23", 84),
        ("2024-05-22", "ongoing", "2024-05-22", 83),
        ("2024-12-31", "complete", "2024-05-23", 84),
        ("2024-03-01", "ongoing", "2024-03-01", 1),
    ],
)
def test_last_cycle_complete_or_ongoing_against_as_of(analyse_files, as_of, status, end, window_days) -> None:
    analysis = analyse_files(
        sessions=SESSIONS + "P1,2024-03-01\n", diary=DIARY + "P1,2024-03-01,0,,,\n", config=config(as_of)
    )
    last = by_cycle(analysis).loc[1]
    assert (last["status"], last["end_date"].date().isoformat(), last["window_days"]) == (status, end, window_days)


def test_late_reinjection_is_capped_and_its_gap_days_count_nowhere(analyse_files) -> None:
    # D1 = 2024-01-01, D2 = 2024-06-01. Cycle 1 ends at min(2024-05-31, D1 + 83 = 2024-03-24) = 2024-03-24.
    # Gap days 2024-03-25 .. 2024-05-31 are in no window: 10 of them are recorded, all headache days.
    sessions = SESSIONS + "P1,2024-01-01\nP1,2024-06-01\n"
    diary = DIARY + window_diary("P1", "2024-01-01", 84) + window_diary("P1", "2024-03-25", 10, headache=10)
    analysis = analyse_files(sessions=sessions, diary=diary, config=config("2024-12-31"))
    cycle1 = by_cycle(analysis).loc[1]
    assert cycle1["end_date"] == pd.Timestamp("2024-03-24")
    assert (cycle1["window_days"], cycle1["recorded_days"], cycle1["headache_days"]) == (84, 84, 0)
    cycle2 = by_cycle(analysis).loc[2]
    assert (cycle2["start_date"], cycle2["recorded_days"], cycle2["headache_days"]) == (
        pd.Timestamp("2024-06-01"),
        0,
        0,
    )
    gap = analysis.patient_days[analysis.patient_days["date"] >= pd.Timestamp("2024-03-25")]
    assert len(gap) == 10 and gap["cycle"].isna().all()


def test_as_of_defaults_to_the_latest_accepted_session_or_diary_date(analyse_files) -> None:
    sessions = SESSIONS + "P1,2024-03-01\n" + "P2,2024-04-02\n"
    diary = DIARY + "P1,2024-04-10,0,,,\n" + "P1,2024-12-01,99,,,\n"  # the later row is rejected
    analysis = analyse_files(sessions=sessions, diary=diary)
    assert analysis.as_of == pd.Timestamp("2024-04-10")
    # P1's only cycle runs to D1 + 83 = 2024-05-23 > as_of: ongoing, ending on as_of, 41 days.
    assert by_cycle(analysis).loc[1, "status"] == "ongoing"
    assert by_cycle(analysis).loc[1, "window_days"] == 41
    # Without any diary after the sessions the latest session is as_of.
    analysis = analyse_files(sessions=sessions, diary=DIARY + "P1,2024-02-10,0,,,\n")
    assert analysis.as_of == pd.Timestamp("2024-04-02")


def test_sessions_after_as_of_are_ignored(analyse_files) -> None:
    sessions = SESSIONS + "P1,2024-03-01\nP1,2024-05-24\nP2,2024-06-01\n"
    analysis = analyse_files(sessions=sessions, diary=DIARY + "P1,2024-03-01,0,,,\n", config=config("2024-05-01"))
    table = analysis.patient_cycles
    assert table["patient_id"].unique().tolist() == ["P1"], "P2's only session is after as_of: not treated"
    assert by_cycle(analysis).index.tolist() == [0, 1]
    assert by_cycle(analysis).loc[1, "status"] == "ongoing"


# --- completeness and evaluable ----------------------------------------------------------------


def test_evaluable_thresholds_exactly(analyse_files) -> None:
    # Every patient starts on D1 = 2024-03-01; baseline [2024-02-02, 2024-02-29] is 28 days.
    #   Q1: baseline 20/28 = 0.714 -> evaluable. D2 = D1 + 40: cycle 1 is 40 days, 28 recorded:
    #       28/40 = 0.7 exactly -> evaluable
    #   Q2: baseline 19/28 = 0.679 -> not. D2 = D1 + 40: 27 recorded: 0.675 -> not evaluable
    #   Q3: D2 = D1 + 28: cycle 1 is exactly 28 days, all recorded -> evaluable
    #   Q4: D2 = D1 + 27: cycle 1 is 27 days, all recorded: completeness 1 but too short -> not evaluable
    second = {"Q1": 40, "Q2": 40, "Q3": 28, "Q4": 27}
    recorded = {"Q1": 28, "Q2": 27, "Q3": 28, "Q4": 27}
    baseline = {"Q1": 20, "Q2": 19, "Q3": 28, "Q4": 28}
    sessions = SESSIONS + "".join(f"{p},2024-03-01\n{p},{iso('2024-03-01', d)}\n" for p, d in second.items())
    diary = DIARY + "".join(
        window_diary(p, "2024-02-02", baseline[p], headache=10) + window_diary(p, "2024-03-01", recorded[p], headache=5)
        for p in second
    )
    analysis = analyse_files(sessions=sessions, diary=diary, config=config("2024-12-31"))
    c0 = {p: by_cycle(analysis, p).loc[0] for p in second}
    c1 = {p: by_cycle(analysis, p).loc[1] for p in second}
    assert [c1[p]["window_days"] for p in second] == [40, 40, 28, 27]
    assert [c1[p]["completeness"] for p in second] == [0.7, 27 / 40, 1.0, 1.0]
    assert [bool(c1[p]["evaluable"]) for p in second] == [True, False, True, False]
    assert [c0[p]["completeness"] for p in second] == pytest.approx([20 / 28, 19 / 28, 1.0, 1.0])
    assert [bool(c0[p]["evaluable"]) for p in second] == [True, False, True, True]


def test_min_completeness_and_min_window_days_are_parameters(analyse_files) -> None:
    # One patient: D1 = 2024-03-01, D2 = D1 + 27; cycle 1 is 27 days with 20 recorded (0.741).
    sessions = SESSIONS + "P1,2024-03-01\nP1,2024-03-28\n"
    diary = DIARY + window_diary("P1", "2024-02-02", 28, headache=10) + window_diary("P1", "2024-03-01", 20)
    files = dict(sessions=sessions, diary=diary)
    assert not by_cycle(analyse_files(**files, config=config("2024-12-31"))).loc[1, "evaluable"]
    assert by_cycle(analyse_files(**files, config=config("2024-12-31", min_window_days=27))).loc[1, "evaluable"]
    assert not by_cycle(
        analyse_files(**files, config=config("2024-12-31", min_window_days=27, min_completeness=0.75))
    ).loc[1, "evaluable"]


# --- counts and monthly rates ------------------------------------------------------------------


def test_headache_migraine_and_acute_days_and_their_monthly_rates(analyse_files) -> None:
    # P1's baseline (28 days from 2024-02-02) is fully recorded:
    #   hours: days 0-9 exactly 4 h (count), days 10-14 3.5 h (do not), days 15-16 24 h (count), rest 0
    #     -> headache_days = 10 + 2 = 12, mhd = 12 / 28 * 28 = 12
    #   migraine: 'true' on days 0-2, 'false' on 3-5, missing after -> migraine_days = 3 (missing = false)
    #   acute: 'YES' on days 0-3, missing after -> acute_med_days = 4
    # P2's baseline has 21 recorded days, headache on the first 7, no migraine or acute values at all:
    #   headache_days 7, mhd = 7 / 21 * 28 = 9.333..., migraine_days 0, mmd 0 (the column exists)
    def hours(i: int) -> float:
        return 4.0 if i < 10 else 3.5 if i < 15 else 24 if i < 17 else 0

    p1 = "".join(
        f"P1,{iso('2024-02-02', i)},{hours(i)},"
        f"{'true' if i < 3 else 'false' if i < 6 else ''},,{'YES' if i < 4 else ''}\n"
        for i in range(28)
    )
    p2 = "".join(f"P2,{iso('2024-02-02', i)},{6 if i < 7 else 0},,,\n" for i in range(21))
    files = dict(sessions=SESSIONS + "P1,2024-03-01\nP2,2024-03-01\n", diary=DIARY + p1 + p2)
    analysis = analyse_files(**files, config=config("2024-12-31"))
    b1, b2 = by_cycle(analysis, "P1").loc[0], by_cycle(analysis, "P2").loc[0]
    assert (b1["headache_days"], b1["migraine_days"], b1["acute_med_days"]) == (12, 3, 4)
    assert (b1["mhd"], b1["mmd"], b1["amd"]) == (12.0, 3.0, 4.0)
    assert (b2["recorded_days"], b2["headache_days"], b2["migraine_days"], b2["acute_med_days"]) == (21, 7, 0, 0)
    assert b2["mhd"] == pytest.approx(7 / 21 * 28)
    assert (b2["mmd"], b2["amd"]) == (0.0, 0.0)

    # headache_min_hours is a parameter: at 3.5 h the five 3.5-hour days count too: 17.
    lower = analyse_files(**files, config=config("2024-12-31", headache_min_hours=3.5))
    assert by_cycle(lower, "P1").loc[0, "headache_days"] == 17


def test_counts_are_empty_when_their_column_is_absent(analyse_files) -> None:
    sessions = SESSIONS + "P1,2024-03-01\n"
    no_flags = "patient_id,date,headache_hours\n" + "".join(
        f"P1,{iso('2024-02-02', i)},{6 if i < 5 else 0}\n" for i in range(28)
    )
    base = by_cycle(analyse_files(sessions=sessions, diary=no_flags, config=config("2024-12-31"))).loc[0]
    assert (base["headache_days"], base["mhd"]) == (5, 5.0)
    assert pd.isna(base["migraine_days"]) and pd.isna(base["acute_med_days"])
    assert pd.isna(base["mmd"]) and pd.isna(base["amd"])

    only_migraine = "patient_id,date,headache_hours,migraine\n" + "".join(
        f"P1,{iso('2024-02-02', i)},6,{'y' if i < 2 else 'n'}\n" for i in range(28)
    )
    base = by_cycle(analyse_files(sessions=sessions, diary=only_migraine, config=config("2024-12-31"))).loc[0]
    assert (base["migraine_days"], base["mmd"]) == (2, 2.0)
    assert pd.isna(base["acute_med_days"]) and pd.isna(base["amd"])


def test_rates_are_empty_when_nothing_was_recorded(analyse_files) -> None:
    # Baseline recorded, cycle 1 (2024-03-01 .. 2024-05-23) has no diary at all.
    analysis = analyse_files(
        sessions=SESSIONS + "P1,2024-03-01\n",
        diary=DIARY + window_diary("P1", "2024-02-02", 28, headache=10, migraine=5, acute=5),
        config=config("2024-12-31"),
    )
    cycle1 = by_cycle(analysis).loc[1]
    assert (cycle1["window_days"], cycle1["recorded_days"], cycle1["completeness"]) == (84, 0, 0.0)
    assert not cycle1["evaluable"]
    for rate in ("mhd", "mmd", "amd", "mhd_change", "mhd_pct_change", "responder_50", "cumulative_responder_50"):
        assert pd.isna(cycle1[rate]), f"{rate} must be empty, not zero, when no day was recorded"


# --- change, responders, cumulative response, eligibility --------------------------------------


def responder_dataset() -> dict[str, str]:
    """One session on 2024-03-01 per patient; cycle 1 = [2024-03-01, 2024-05-23], 84 days.

    patient: (baseline recorded, baseline headache days, cycle-1 recorded, cycle-1 headache days)
    """
    plan = {
        "R50": (28, 20, 84, 30),  # 20 -> 30/84*28 = 10: -50% exactly
        "R30": (28, 20, 84, 42),  # 20 -> 14: -30% exactly
        "R75": (28, 20, 84, 15),  # 20 -> 5: -75%
        "WORSE": (28, 20, 84, 66),  # 20 -> 22: +10%
        "NEAR": (28, 20, 84, 31),  # 20 -> 10.33: -48.3%, not a 50% responder
        # Exact in arithmetic, inexact in floating point (the 1e-9 tolerance must save them):
        "F50": (21, 16, 84, 32),  # 16/21*28 = 21.333 -> 32/84*28 = 10.667: -50%
        "F30": (21, 12, 80, 32),  # 12/21*28 = 16 -> 32/80*28 = 11.2: -30%
        "BASE0": (28, 0, 84, 10),  # baseline evaluable but mhd 0: no change
        "BASENE": (19, 19, 84, 0),  # baseline 19/28 not evaluable
        "CYCNE": (28, 20, 58, 0),  # cycle 58/84 = 0.69 not evaluable
    }
    sessions = SESSIONS + "".join(f"{p},2024-03-01\n" for p in plan)
    diary = DIARY + "".join(
        window_diary(p, "2024-02-02", r0, headache=h0) + window_diary(p, "2024-03-01", r1, headache=h1)
        for p, (r0, h0, r1, h1) in plan.items()
    )
    return dict(sessions=sessions, diary=diary)


def test_change_and_responder_thresholds(analyse_files) -> None:
    analysis = analyse_files(**responder_dataset(), config=config("2024-12-31"))
    c1 = analysis.patient_cycles[analysis.patient_cycles["cycle"] == 1].set_index("patient_id")
    expected = {
        # patient: (mhd_change, mhd_pct_change, responder_30, responder_50, responder_75)
        "R50": (-10.0, -50.0, True, True, False),
        "R30": (-6.0, -30.0, True, False, False),
        "R75": (-15.0, -75.0, True, True, True),
        "WORSE": (2.0, 10.0, False, False, False),
        "NEAR": (31 / 3 - 20, 100 * (31 / 3 - 20) / 20, True, False, False),
        "F50": (32 / 3 - 64 / 3, -50.0, True, True, False),
        "F30": (11.2 - 16, -30.0, True, False, False),
    }
    for pid, (change, pct, r30, r50, r75) in expected.items():
        row = c1.loc[pid]
        assert row["mhd_change"] == pytest.approx(change, abs=1e-9), pid
        assert row["mhd_pct_change"] == pytest.approx(pct, abs=1e-9), pid
        assert (row["responder_30"], row["responder_50"], row["responder_75"]) == (r30, r50, r75), pid
        assert row["cumulative_responder_50"] == r50, pid
    for pid in ("BASE0", "BASENE", "CYCNE"):
        row = c1.loc[pid]
        for column in (
            "mhd_change",
            "mhd_pct_change",
            "responder_30",
            "responder_50",
            "responder_75",
            "cumulative_responder_50",
        ):
            assert pd.isna(row[column]), (pid, column)
    # The baseline row never has a change or a responder value.
    c0 = analysis.patient_cycles[analysis.patient_cycles["cycle"] == 0]
    assert c0[["mhd_change", "mhd_pct_change", "responder_50", "cumulative_responder_50"]].isna().all().all()
    # mhd of BASE0's baseline is 0 (evaluable, recorded), not empty; the cycle's own mhd is still given.
    assert by_cycle(analysis, "BASE0").loc[0, "mhd"] == 0.0
    assert by_cycle(analysis, "BASE0").loc[1, "mhd"] == pytest.approx(10 / 84 * 28)


def test_eligibility(analyse_files) -> None:
    analysis = analyse_files(**responder_dataset(), config=config("2024-12-31"))
    eligible = analysis.patient_cycles.groupby("patient_id")["eligible"].agg(["min", "max"])
    assert (eligible["min"] == eligible["max"]).all(), "eligibility is a property of the patient"
    assert sorted(eligible.index[eligible["min"].astype(bool)]) == sorted(
        ["R50", "R30", "R75", "WORSE", "NEAR", "F50", "F30", "CYCNE"]
    )
    # Cycle 0 of the cohort table counts eligible patients; BASE0 and BASENE are treated but not eligible.
    cohort0 = analysis.cohort_cycles.set_index("cycle").loc[0]
    assert (cohort0["n_treated"], cohort0["n_evaluable"]) == (10, 8)


def test_cumulative_responder_true_false_and_empty(analyse_files) -> None:
    # Sessions every 84 days from 2024-01-01 (5 sessions); baseline [2023-12-04, 2023-12-31] fully
    # recorded with 21 headache days (mhd 21). as_of = the last day of cycle 5, so all are complete.
    #   cycle 1: 30/84 recorded -> not evaluable -> responder empty -> cumulative empty
    #   cycle 2: 84 recorded, 48 headache days -> mhd 16 (-23.8%) -> false -> cumulative false
    #   cycle 3: 0 recorded -> empty -> cumulative stays false
    #   cycle 4: 84 recorded, 21 headache days -> mhd 7 (-66.7%) -> true -> cumulative true
    #   cycle 5: 84 recorded, 84 headache days -> mhd 28 (+33%) -> false, but cumulative stays true
    # P2 has only non-evaluable cycles: cumulative empty throughout.
    starts = [iso("2024-01-01", 84 * k) for k in range(5)]
    sessions = SESSIONS + "".join(f"P1,{d}\n" for d in starts) + "".join(f"P2,{d}\n" for d in starts[:2])
    diary = (
        DIARY + window_diary("P1", "2023-12-04", 28, headache=21) + window_diary("P2", "2023-12-04", 28, headache=21)
    )
    diary += window_diary("P1", starts[0], 30, headache=0)
    diary += window_diary("P1", starts[1], 84, headache=48)
    diary += window_diary("P1", starts[3], 84, headache=21)
    diary += window_diary("P1", starts[4], 84, headache=84)
    diary += window_diary("P2", starts[0], 10)
    as_of = iso(starts[4], 83)
    analysis = analyse_files(sessions=sessions, diary=diary, config=config(as_of))
    p1 = by_cycle(analysis, "P1")
    assert p1["status"].tolist() == ["baseline"] + ["complete"] * 5
    assert p1["responder_50"].tolist() == [pd.NA, pd.NA, False, pd.NA, True, False]
    assert p1["cumulative_responder_50"].tolist() == [pd.NA, pd.NA, False, False, True, True]
    assert p1.loc[2, "mhd_pct_change"] == pytest.approx(100 * (16 - 21) / 21)
    assert p1.loc[4, "mhd_pct_change"] == pytest.approx(100 * (7 - 21) / 21)
    assert by_cycle(analysis, "P2")["cumulative_responder_50"].isna().all()


def test_patients_without_sessions_are_not_treated(analyse_files) -> None:
    sessions = SESSIONS + "P1,2024-03-01\n"
    diary = (
        DIARY + window_diary("P1", "2024-02-02", 28, headache=10) + window_diary("P2", "2024-02-02", 28, headache=10)
    )
    analysis = analyse_files(sessions=sessions, diary=diary, config=config("2024-12-31"))
    assert analysis.patient_cycles["patient_id"].unique().tolist() == ["P1"]
    assert analysis.cohort_cycles.set_index("cycle").loc[0, "n_treated"] == 1


def test_baseline_days_and_cycle_days_are_parameters(analyse_files) -> None:
    # baseline_days 14: baseline [2024-02-16, 2024-02-29]; cycle_days 70: D1 + 69 = 2024-05-09.
    sessions = SESSIONS + "P1,2024-03-01\nP1,2024-06-01\n"
    analysis = analyse_files(
        sessions=sessions,
        diary=DIARY + "P1,2024-02-20,0,,,\n",
        config=config("2024-12-31", baseline_days=14, cycle_days=70),
    )
    table = by_cycle(analysis)
    assert table.loc[0, "start_date"] == pd.Timestamp("2024-02-16")
    assert table.loc[0, "window_days"] == 14
    assert table.loc[1, "end_date"] == pd.Timestamp("2024-05-09")
    assert table.loc[2, "end_date"] == pd.Timestamp(iso("2024-06-01", 69))
