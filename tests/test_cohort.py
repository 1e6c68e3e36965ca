"""SPEC §3 cohort statistics on a tiny cohort worked out by hand, checked against scipy/statsmodels.

The cohort (as_of = 2024-09-30, defaults otherwise; every baseline window fully recorded unless
said; mhd = headache days / recorded days x 28, so a fully recorded 84-day cycle has mhd = h / 3):

    patient  D1          sessions  baseline mhd        cycle mhd (change from baseline)
    A        2024-01-01  4         20                  c1 10 (-10, -50%)  c2 16 (-4, -20%)  c3 8 (-12, -60%)  c4 22 days
    B        2024-01-01  3         20                  c1 14 (-6, -30%)   c2 8 (-12, -60%)  c3 9 (-11, -55%)
    C        2024-01-01  1         20                  c1 16 (-4, -20%)   then stopped: a non-responder who had the time
    E        2024-01-01  1         20                  c1 6 (-14, -70%)   then stopped: a responder who stays one
    F        2024-01-01  2         14 (10/28 days:     c1 5, c2 5         not eligible (baseline not evaluable)
                                   not evaluable)
    G        2024-06-22  2         20                  c1 12 (-8, -40%)   c2 ongoing 17 days, not evaluable

ITT "had the time to complete k cycles": D1 + 84k - 1 <= 2024-09-30. For D1 = 2024-01-01 that is
2024-03-24, 2024-06-16 and 2024-09-08 for k = 1, 2, 3 (yes) and 2024-12-01 for k = 4 (no); for G
(D1 = 2024-06-22, exactly 100 days before as_of) 2024-09-13 for k = 1 (yes), 2024-12-06 for k = 2 (no).
"""

from __future__ import annotations

import math
import statistics
from datetime import date, timedelta

import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

from analytics.definitions.cohort import COHORT_CYCLE_COLUMNS
from analytics.definitions.config import AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.ingest.load import load_dataset

AS_OF = date(2024, 9, 30)


def iso(d0: str, offset: int = 0) -> str:
    return (date.fromisoformat(d0) + timedelta(days=offset)).isoformat()


def window(pid: str, start: str, recorded: int, headache: int) -> str:
    return "".join(f"{pid},{iso(start, i)},{6 if i < headache else 0}\n" for i in range(recorded))


def cohort_files() -> dict[str, str]:
    d1 = "2024-01-01"
    plan = {
        # patient: (D1, n sessions, (baseline recorded, baseline headache days), [headache days per full cycle])
        "A": (d1, 4, (28, 20), [30, 48, 24]),
        "B": (d1, 3, (28, 20), [42, 24, 27]),
        "C": (d1, 1, (28, 20), [48]),
        "E": (d1, 1, (28, 20), [18]),
        "F": (d1, 2, (10, 5), [15, 15]),
        "G": ("2024-06-22", 2, (28, 20), [36]),
    }
    sessions = "patient_id,session_date\n"
    diary = "patient_id,date,headache_hours\n"
    for pid, (first, n, (r0, h0), cycles) in plan.items():
        starts = [iso(first, 84 * k) for k in range(n)]
        sessions += "".join(f"{pid},{s}\n" for s in starts)
        diary += window(pid, iso(first, -28), r0, h0)
        diary += "".join(window(pid, starts[k], 84, h) for k, h in enumerate(cycles))
    # G's ongoing cycle 2 (2024-09-14 .. as_of, 17 days) is fully recorded but too short to judge.
    diary += window("G", "2024-09-14", 17, 0)
    return {"sessions": sessions, "diary": diary}


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> pd.DataFrame:
    folder = tmp_path_factory.mktemp("cohort")
    for stem, text in cohort_files().items():
        (folder / f"{stem}.csv").write_text(text)
    analysis = analyse(load_dataset(folder), AnalysisConfig(as_of=AS_OF))
    assert analysis.as_of == pd.Timestamp(AS_OF)
    return analysis.cohort_cycles.set_index("cycle")


def wilson(k: int, n: int) -> tuple[float, float]:
    return proportion_confint(k, n, alpha=0.05, method="wilson")


def t_ci(values: list[float]) -> tuple[float, float]:
    n = len(values)
    return sps.t.interval(0.95, n - 1, loc=statistics.mean(values), scale=statistics.stdev(values) / math.sqrt(n))


def test_one_row_per_cycle_up_to_the_most_sessions(cohort) -> None:
    assert cohort.index.tolist() == [0, 1, 2, 3, 4]
    assert [c for c in COHORT_CYCLE_COLUMNS if c != "cycle"] == [c for c in cohort.columns if c in COHORT_CYCLE_COLUMNS]


def test_treated_and_evaluable_counts(cohort) -> None:
    # n_treated: at least k sessions (cycle 0: at least one) -> 6, 6, 4 (A B F G), 2 (A B), 1 (A).
    assert cohort["n_treated"].tolist() == [6, 6, 4, 2, 1]
    # n_evaluable: cycle 0 eligible (all but F) = 5; then a non-empty change: c1 A B C E G, c2 A B, c3 A B, c4 none.
    assert cohort["n_evaluable"].tolist() == [5, 5, 2, 2, 0]


def test_means_medians_and_t_intervals(cohort) -> None:
    # Cycle 0's mean_mhd is over eligible patients only (F's 14 is left out): 20.
    assert cohort.loc[0, "mean_mhd"] == pytest.approx(20.0)
    changes = {1: [-10, -6, -4, -14, -8], 2: [-4, -12], 3: [-12, -11]}
    mhd = {1: [10, 14, 16, 6, 12], 2: [16, 8], 3: [8, 9]}
    # By hand for cycle 1: mean -42/5 = -8.4, median of (-14, -10, -8, -6, -4) = -8,
    # sd^2 = (1.6^2 + 2.4^2 + 4.4^2 + 5.6^2 + 0.4^2) / 4 = 59.2 / 4 = 14.8.
    assert statistics.variance(changes[1]) == pytest.approx(14.8)
    assert cohort.loc[1, "mean_mhd_change"] == pytest.approx(-8.4)
    assert cohort.loc[1, "median_mhd_change"] == pytest.approx(-8.0)
    half = sps.t.ppf(0.975, 4) * math.sqrt(14.8) / math.sqrt(5)
    assert (cohort.loc[1, "mean_mhd_change_ci_low"], cohort.loc[1, "mean_mhd_change_ci_high"]) == pytest.approx(
        (-8.4 - half, -8.4 + half)
    )
    for k in (1, 2, 3):
        assert cohort.loc[k, "mean_mhd"] == pytest.approx(statistics.mean(mhd[k]))
        assert cohort.loc[k, "mean_mhd_change"] == pytest.approx(statistics.mean(changes[k]))
        assert cohort.loc[k, "median_mhd_change"] == pytest.approx(statistics.median(changes[k]))
        low, high = t_ci(changes[k])
        assert cohort.loc[k, "mean_mhd_change_ci_low"] == pytest.approx(low, rel=1e-9)
        assert cohort.loc[k, "mean_mhd_change_ci_high"] == pytest.approx(high, rel=1e-9)
    # Cycle 4 has nobody evaluable: every mean, median and interval is empty, not zero.
    for column in (
        "mean_mhd",
        "mean_mhd_change",
        "mean_mhd_change_ci_low",
        "mean_mhd_change_ci_high",
        "median_mhd_change",
    ):
        assert pd.isna(cohort.loc[4, column]), column


RATES = {
    # prefix: (numerator column, denominator column)
    "responder_50": ("responder_50_n", "n_evaluable"),
    "cum_responder_50_completers": ("cum_responder_50_completers_n", "cum_responder_50_completers_denom"),
    "cum_responder_50_itt": ("cum_responder_50_itt_n", "cum_responder_50_itt_denom"),
    "new_responder_50": ("new_responder_50_n", "prior_nonresponder_denom"),
}

EXPECTED_RATES = {
    # cycle: {prefix: (numerator, denominator)}
    1: {
        "responder_50": (2, 5),  # A (-50% exactly) and E (-70%)
        "cum_responder_50_completers": (2, 5),  # eligible with >= 1 session: A B C E G
        "cum_responder_50_itt": (2, 5),  # all five had the time for one cycle
        "new_responder_50": (2, 5),  # nobody could have responded before cycle 1
    },
    2: {
        "responder_50": (1, 2),  # B (-60%); A is -20% this cycle
        "cum_responder_50_completers": (2, 3),  # eligible with >= 2 sessions: A (c1) yes, B (c2) yes, G no
        # ITT: A B C E had the time (G did not: excluded); C stopped as a non-responder and
        # counts as one, E stopped as a responder and stays one -> A B E.
        "cum_responder_50_itt": (3, 4),
        "new_responder_50": (1, 1),  # evaluable at 2 without an earlier response: B only; B responds
    },
    3: {
        "responder_50": (2, 2),  # A -60%, B -55%
        "cum_responder_50_completers": (2, 2),
        "cum_responder_50_itt": (3, 4),  # A B E of A B C E
        "new_responder_50": (0, 0),  # A and B had responded before: nobody left to respond anew
    },
    4: {
        "responder_50": (0, 0),
        "cum_responder_50_completers": (1, 1),  # A, a responder since cycle 1
        "cum_responder_50_itt": (0, 0),  # nobody has had the time for four cycles
        "new_responder_50": (0, 0),
    },
}


@pytest.mark.parametrize("cycle", [1, 2, 3, 4])
def test_rates_with_numerators_denominators_and_wilson_intervals(cohort, cycle: int) -> None:
    row = cohort.loc[cycle]
    for prefix, (k, n) in EXPECTED_RATES[cycle].items():
        numerator, denominator = RATES[prefix]
        assert (row[numerator], row[denominator]) == (k, n), prefix
        if n == 0:
            # No denominator: the rate and its interval are empty, never 0.
            assert pd.isna(row[f"{prefix}_rate"]), prefix
            if f"{prefix}_ci_low" in row:
                assert pd.isna(row[f"{prefix}_ci_low"]) and pd.isna(row[f"{prefix}_ci_high"]), prefix
            continue
        assert row[f"{prefix}_rate"] == pytest.approx(k / n), prefix
        if f"{prefix}_ci_low" in row:
            low, high = wilson(k, n)
            assert row[f"{prefix}_ci_low"] == pytest.approx(low, abs=1e-12), prefix
            assert row[f"{prefix}_ci_high"] == pytest.approx(high, abs=1e-12), prefix


def test_cycle_zero_describes_the_baseline_only(cohort) -> None:
    baseline = cohort.loc[0]
    filled = {"n_treated", "n_evaluable", "mean_mhd"}
    for column in COHORT_CYCLE_COLUMNS:
        if column == "cycle":
            continue
        assert pd.isna(baseline[column]) != (column in filled), column


def test_one_evaluable_patient_has_a_mean_but_no_interval(analyse_files) -> None:
    # Baseline 28/28 with 21 headache days (mhd 21); cycle 1 fully recorded with 42 (mhd 14): change -7.
    sessions = "patient_id,session_date\nP1,2024-03-01\n"
    diary = "patient_id,date,headache_hours\n" + window("P1", "2024-02-02", 28, 21) + window("P1", "2024-03-01", 84, 42)
    cohort = analyse_files(sessions=sessions, diary=diary, config=AnalysisConfig(as_of=AS_OF)).cohort_cycles.set_index(
        "cycle"
    )
    row = cohort.loc[1]
    assert (row["n_evaluable"], row["mean_mhd_change"], row["median_mhd_change"]) == (1, -7.0, -7.0)
    assert pd.isna(row["mean_mhd_change_ci_low"]) and pd.isna(row["mean_mhd_change_ci_high"])
    # 0 of 1 is a proportion with a Wilson interval all the same.
    assert (row["responder_50_n"], row["responder_50_rate"]) == (0, 0.0)
    assert (row["responder_50_ci_low"], row["responder_50_ci_high"]) == pytest.approx(wilson(0, 1))


def test_a_dataset_without_treated_patients_gives_an_empty_cohort(analyse_files) -> None:
    # A diary without any session treats nobody: cycle 0 alone, with n_treated 0 and no mean.
    analysis = analyse_files(
        sessions="patient_id,session_date\n",
        diary="patient_id,date,headache_hours\nP1,2024-02-01,3\n",
        config=AnalysisConfig(as_of=AS_OF),
    )
    assert analysis.patient_cycles.empty
    assert analysis.cohort_cycles["cycle"].tolist() == [0]
    assert analysis.cohort_cycles["n_treated"].tolist() == [0]
    assert pd.isna(analysis.cohort_cycles["mean_mhd"].iloc[0])
