"""The researcher's statistics (analytics.views.outcomes) on a five-patient cohort worked out by hand.

The cohort (``tiny``): baseline = the 28 days before D1 = 2024-01-29, two 84-day cycles, every day
recorded unless said, the first h days of each window are headache days (6 h, migraine), no acute
medication. Headache days per window (baseline / cycle 1 / cycle 2) and the resulting monthly rates:

    A  20/28 30/84 15/84 -> mhd 20, 10, 5   (-50%, -75%)   F 40-49 North prior 3 overuse yes
    B  16/28 48/84 36/84 -> mhd 16, 16, 12  (0%, -25%)     M 30-39 South prior 4 overuse no
    C  24/28 54/84 27/84 -> mhd 24, 18, 9   (-25%, -62.5%) F 40-49 North prior 5 overuse yes
    D  20/28 42/84       -> mhd 20, 14      (-30%), one session only; F 50-59 South, prior and overuse missing
    E  baseline 10 of 28 days recorded (5 headache: mhd 14, not evaluable, so not eligible); sex missing

Intervals are recomputed here from their formulas (Wilson, t) and tests are compared with scipy and
statsmodels called directly.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats as sps

from analytics.definitions import clinical
from analytics.definitions.config import SAMPLE_DATA_DIR, AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.ingest.load import load_dataset
from analytics.statistics.survival import kaplan_meier
from analytics.synth import generate_cohort, write_cohort
from analytics.views import outcomes
from analytics.views.cohort_filter import patient_attributes, restrict

D1 = date(2024, 1, 29)
Z = 1.959963984540054
HEADACHE_WINDOWS = {"A": (20, 30, 15), "B": (16, 48, 36), "C": (24, 54, 27), "D": (20, 42), "E": (5, 20, 20)}
PATIENTS = """patient_id,sex,age_band,clinic,prior_preventives,medication_overuse
A,F,40-49,North,3,true
B,M,30-39,South,4,false
C,F,40-49,North,5,true
D,F,50-59,South,,
E,,60-69,East,2,false
"""


def window_rows(
    patient: str,
    start: date,
    length: int,
    headache_days: int,
    recorded: int | None = None,
    migraine_column: bool = True,
) -> list[str]:
    rows = []
    for i in range(recorded if recorded is not None else length):
        hours = 6 if i < headache_days else 0
        flag = "true" if hours else "false"
        rows.append(f"{patient},{start + timedelta(i)},{hours}," + (f"{flag},," if migraine_column else ",") + "false")
    return rows


def write_tiny(folder: Path, migraine_column: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    sessions, diary = ["patient_id,session_date,total_units,n_injections,injector_id,protocol"], []
    for patient, windows in HEADACHE_WINDOWS.items():
        for k, headache in enumerate(windows):
            start = D1 - timedelta(28) if k == 0 else D1 + timedelta(84 * (k - 1))
            if k >= 1:
                sessions.append(f"{patient},{start},155,31,INJ1,PREEMPT")
            recorded = 10 if (patient == "E" and k == 0) else None
            diary += window_rows(patient, start, 28 if k == 0 else 84, headache, recorded, migraine_column)
    header = (
        "patient_id,date,headache_hours,"
        + ("migraine,severity," if migraine_column else "severity,")
        + "acute_medication"
    )
    (folder / "sessions.csv").write_text("\n".join(sessions) + "\n")
    (folder / "diary.csv").write_text("\n".join([header, *diary]) + "\n")
    (folder / "patients.csv").write_text(PATIENTS)
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    dataset = load_dataset(write_tiny(tmp_path_factory.mktemp("tiny")))
    analysis = analyse(dataset, AnalysisConfig())
    return dataset, analysis, patient_attributes(analysis, dataset)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    write_cohort(generate_cohort(80, seed=11), folder)
    dataset = load_dataset(folder)
    return dataset, analyse(dataset, AnalysisConfig())


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / (1 + Z**2 / n)
    return centre - half, centre + half


def test_the_tiny_cohort_is_as_designed(tiny) -> None:
    _, analysis, attributes = tiny
    table = analysis.patient_cycles.set_index(["patient_id", "cycle"])
    assert table.loc[("A", 1), "mhd"] == pytest.approx(10)
    assert table.loc[("C", 2), "mhd_pct_change"] == pytest.approx(-62.5)
    assert analysis.as_of == pd.Timestamp("2024-07-14")
    assert attributes.set_index("patient_id")["eligible"].to_dict() == {
        "A": True,
        "B": True,
        "C": True,
        "D": True,
        "E": False,
    }


def test_mean_change_has_the_t_interval_worked_by_hand(tiny) -> None:
    _, analysis, _ = tiny
    change = outcomes.change_by_cycle(analysis).set_index(["measure", "cycle"])
    # Cycle 1 changes: A −10, B 0, C −6, D −6: mean −5.5, sd √17 (n − 1 = 3).
    row = change.loc[("mhd", 1)]
    half = sps.t.ppf(0.975, 3) * math.sqrt(17) / 2
    assert row["n"] == 4
    assert row["mean_change"] == pytest.approx(-5.5)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((-5.5 - half, -5.5 + half))
    assert row["median_change"] == pytest.approx(-6)
    # Cycle 2: A −15, B −4, C −15 (D did not reach it, E is not eligible).
    assert change.loc[("mhd", 2), "n"] == 3
    assert change.loc[("mhd", 2), "mean_change"] == pytest.approx(-34 / 3)
    # Migraine days equal headache days here; acute medication is recorded as never taken: a real 0.
    assert change.loc[("mmd", 1), "mean_change"] == pytest.approx(-5.5)
    assert change.loc[("amd", 1), "mean_change"] == 0 and change.loc[("amd", 1), "n"] == 4
    # The mhd rows agree with the SPEC cohort table.
    cohort = analysis.cohort_cycles.set_index("cycle")
    assert change.loc[("mhd", 1), "ci_low"] == pytest.approx(float(cohort.loc[1, "mean_mhd_change_ci_low"]))


def test_a_missing_diary_column_gives_an_empty_change_not_zero(tmp_path) -> None:
    dataset = load_dataset(write_tiny(tmp_path / "no_migraine", migraine_column=False))
    change = outcomes.change_by_cycle(analyse(dataset)).set_index(["measure", "cycle"])
    assert change.loc[("mmd", 1), "n"] == 0
    assert np.isnan(change.loc[("mmd", 1), "mean_change"])
    assert change.loc[("mhd", 1), "n"] == 4


def test_responder_rates_have_wilson_intervals_worked_by_hand(tiny) -> None:
    _, analysis, _ = tiny
    rates = outcomes.responder_rates(analysis).set_index(["threshold", "cycle"])
    expected = {(30, 1): (2, 4), (50, 1): (1, 4), (75, 1): (0, 4), (50, 2): (2, 3), (75, 2): (1, 3)}
    for key, (k, n) in expected.items():
        row = rates.loc[key]
        assert (row["responders"], row["evaluable"]) == (k, n), key
        assert row["rate"] == pytest.approx(k / n)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(wilson_by_hand(k, n)), key


def test_cumulative_and_conditional_rates_carry_their_denominators(tiny) -> None:
    _, analysis, _ = tiny
    rows = outcomes.cumulative_response(analysis).set_index(["measure", "cycle"])
    # Completers: eligible with ≥k sessions; ITT: eligible with time for k cycles (D counts, as a non-responder);
    # new responders at cycle 2: B and C had no response before, C responds.
    expected = {
        ("completers", 1): (1, 4),
        ("completers", 2): (2, 3),
        ("itt", 2): (2, 4),
        ("new_responder", 1): (1, 4),
        ("new_responder", 2): (1, 2),
    }
    for key, (k, n) in expected.items():
        assert (rows.loc[key, "numerator"], rows.loc[key, "denominator"]) == (k, n), key
        assert (rows.loc[key, "ci_low"], rows.loc[key, "ci_high"]) == pytest.approx(wilson_by_hand(k, n)), key
    assert rows.loc[("itt", 2), "denominator_counts"].startswith("eligible patients with time")


def test_weekly_profile_by_hand(tiny) -> None:
    _, analysis, _ = tiny
    profile = outcomes.weekly_profile(analysis)
    weekly = profile.weekly.set_index(["cycle_group", "week"])
    assert weekly.loc[("Cycle 1", 1), "n"] == 4 and weekly.loc[("Cycle 1", 1), "mean_headache_days"] == 7
    # Week 5 of cycle 1 (days 29–35): A has headache on days 29 and 30 only; B, C and D every day.
    assert weekly.loc[("Cycle 1", 5), "mean_headache_days"] == pytest.approx((2 + 7 + 7 + 7) / 4)
    # Week 3 of cycle 2 (days 15–21): A on day 15 only; B and C every day; D never reached cycle 2.
    assert weekly.loc[("Cycle 2", 3), "n"] == 3
    assert weekly.loc[("Cycle 2", 3), "mean_headache_days"] == pytest.approx(5)
    assert profile.baseline_mean == pytest.approx((20 + 16 + 24 + 20) / 4 / 4) and profile.baseline_n == 4
    daily = profile.daily.set_index(["cycle_group", "day_in_cycle"])
    # Days 1–7 of cycle 1: all four patients recorded and had headache on every day.
    assert daily.loc[("Cycle 1", 4), "window_recorded"] == 28
    assert daily.loc[("Cycle 1", 4), "moving_average"] == pytest.approx(7)
    assert np.isnan(daily.loc[("Cycle 1", 3), "moving_average"])  # no full centred window yet


def test_patient_weeks_follow_the_clinical_weekly_rule(synthetic) -> None:
    _, analysis = synthetic
    mine = outcomes.patient_weeks(analysis)
    grid = clinical.diary_days(analysis, clinical.ClinicalParameters())
    theirs = clinical.weekly_profile(grid, analysis.config)
    table = analysis.patient_cycles
    eligible = table.loc[(table["cycle"] == 0) & table["eligible"], "patient_id"]
    theirs = theirs.loc[theirs["evaluable"] & theirs["patient_id"].isin(eligible)]
    merged = mine.merge(theirs, on=["patient_id", "cycle", "week"], how="outer", indicator=True)
    assert len(mine) > 100
    assert (merged["_merge"] == "both").all()
    np.testing.assert_allclose(merged["headache_days_per_7_x"], merged["headache_days_per_7_y"])


def test_weekly_profile_from_the_whole_datasets_days_equals_the_cohorts_own(synthetic) -> None:
    _, analysis = synthetic
    chosen = set(analysis.patient_cycles["patient_id"].unique()[::3])
    own = outcomes.weekly_profile(restrict(analysis, chosen))
    shared = outcomes.weekly_profile(restrict(analysis, chosen, with_days=False), days=outcomes.treated_days(analysis))
    pd.testing.assert_frame_equal(own.weekly, shared.weekly)
    pd.testing.assert_frame_equal(own.daily, shared.daily)
    assert own.baseline_mean == shared.baseline_mean and len(own.weekly) > 20


def test_time_to_first_response_by_hand(tiny) -> None:
    _, analysis, _ = tiny
    ttr = outcomes.time_to_response(analysis)
    patients = ttr.patients.set_index("patient_id")
    # A responds at the end of cycle 1 (day 84), C at the end of cycle 2 (day 168); B (active) is censored at the
    # end of cycle 2; D (one session, 167 days before as_of: overdue, not lapsed) at the end of cycle 1; E is not
    # eligible. Nobody stopped, so the cumulative incidence of response is 1 − Kaplan–Meier here.
    assert patients["duration_days"].to_dict() == {"A": 84, "B": 168, "C": 168, "D": 84}
    assert patients["outcome"].to_dict() == {"A": "responded", "B": "censored", "C": "responded", "D": "censored"}
    assert patients["treatment_state"].to_dict() == {"A": "active", "B": "active", "C": "active", "D": "overdue"}
    curve = ttr.cumulative().set_index("time")
    assert curve.loc[84, "responded"] == pytest.approx(1 / 4)  # 1 of 4 at risk responds
    assert curve.loc[168, "responded"] == pytest.approx(1 - 3 / 4 * 1 / 2)  # then 1 of 2
    assert (curve["stopped"] == 0).all()
    assert ttr.at_risk(84)["at_risk"].tolist() == [4, 4, 2]
    assert ttr.no_evaluable_cycle == 0


def stopping_variants(tmp_path: Path) -> dict[str, object]:
    """The tiny cohort with D off treatment: discontinued (patients.csv) or lapsed (lapse_days = 120 < 167)."""
    discontinued = write_tiny(tmp_path / "discontinued")
    lines = PATIENTS.strip().splitlines()
    lines = [lines[0] + ",discontinued_on"] + [
        line + (",2024-05-01" if line.startswith("D,") else ",") for line in lines[1:]
    ]
    (discontinued / "patients.csv").write_text("\n".join(lines) + "\n")
    lapsed = load_dataset(write_tiny(tmp_path / "lapsed"))
    return {
        "discontinued": analyse(load_dataset(discontinued), AnalysisConfig()),
        "lapsed": analyse(lapsed, AnalysisConfig(lapse_days=120)),
    }


@pytest.mark.parametrize("state", ["discontinued", "lapsed"])
def test_stopping_is_a_competing_event_by_hand(tmp_path, state: str) -> None:
    analysis = stopping_variants(tmp_path)[state]
    ttr = outcomes.time_to_response(analysis)
    patients = ttr.patients.set_index("patient_id")
    assert patients.loc["D", ["outcome", "duration_days", "treatment_state"]].tolist() == ["stopped", 84, state]
    curve = ttr.cumulative().set_index("time")
    # Day 84: 4 at risk, A responds and D stops: 1/4 each, 1/2 left. Day 168: B and C at risk, C responds:
    # 1/4 + 1/2 · 1/2 = 1/2 responded (1 − Kaplan–Meier with D censored would say 1 − 3/4 · 1/2 = 5/8).
    assert curve.loc[84, ["responded", "stopped", "neither"]].tolist() == pytest.approx([1 / 4, 1 / 4, 1 / 2])
    assert curve.loc[168, ["responded", "stopped", "neither"]].tolist() == pytest.approx([1 / 2, 1 / 4, 1 / 4])
    assert curve.loc[168, ["responses", "stops", "censored", "at_risk"]].tolist() == [1, 0, 1, 2]
    assert ttr.curve.median() == 168  # half of the eligible patients had responded by day 168
    np.testing.assert_allclose(
        ttr.at_risk(84)[["at_risk", "responded", "stopped"]],
        [[4, 0, 0], [4, 1 / 4, 1 / 4], [2, 1 / 2, 1 / 4]],
        atol=1e-12,
    )


def test_eligible_patients_without_an_evaluable_cycle_count(tmp_path) -> None:
    """B's diary stops after the baseline: B is eligible, has no responder_50 value, and still counts (censored
    at the end of cycle 2, still treated), so 4 eligible patients are at risk, not 3."""
    folder = write_tiny(tmp_path / "no_diary")
    diary = (folder / "diary.csv").read_text().splitlines()
    baseline_end = str(D1 - timedelta(1))
    kept = [row for row in diary if not row.startswith("B,") or row.split(",")[1] <= baseline_end]
    (folder / "diary.csv").write_text("\n".join(kept) + "\n")
    ttr = outcomes.time_to_response(analyse(load_dataset(folder), AnalysisConfig()))
    assert ttr.no_evaluable_cycle == 1
    assert ttr.patients.set_index("patient_id").loc["B", ["outcome", "duration_days"]].tolist() == ["censored", 168]
    assert ttr.curve.n == 4


@pytest.mark.skipif(not (SAMPLE_DATA_DIR / "sessions.csv").exists(), reason="no bundled sample data")
def test_cumulative_incidence_by_cycle_4_is_the_share_of_eligible_patients_responded_by_cycle_4() -> None:
    """On sample_data, the Aalen–Johansen share responded at the time cycle 4 ends (median over the eligible
    patients who reached it, days since D1) is close to the share of eligible patients who responded in cycles
    1..4, counted here directly from patient_cycles among those who had the time to complete 4 cycles (SPEC §3's
    intention-to-treat rate, no survival estimator involved). Tolerance 3 points: half the Wilson half-width of
    that share (about ±6 points with ~220 patients); the two differ only in how they use the patients without the
    time. 1 − Kaplan–Meier with stopping censored (the former estimator) overstates it by more than that."""
    analysis = analyse(load_dataset(SAMPLE_DATA_DIR), AnalysisConfig())
    table = analysis.patient_cycles
    eligible = table.loc[(table["cycle"] == 0) & table["eligible"], "patient_id"]
    d1 = table.loc[table["cycle"] == 1].set_index("patient_id")["start_date"].reindex(eligible)
    cycle_4 = table.loc[(table["cycle"] == 4) & table["patient_id"].isin(eligible)].set_index("patient_id")
    day = float(((cycle_4["end_date"] - d1.reindex(cycle_4.index)).dt.days + 1).median())
    had_time = eligible[(d1 + pd.Timedelta(days=4 * 84 - 1) <= analysis.as_of).to_numpy()]
    responders = table.loc[
        (table["cycle"].between(1, 4))
        & table["responder_50"].eq(True).fillna(False)
        & table["patient_id"].isin(had_time),
        "patient_id",
    ].nunique()
    share = responders / len(had_time)
    assert float(analysis.cohort_cycles.set_index("cycle").loc[4, "cum_responder_50_itt_rate"]) == pytest.approx(share)

    ttr = outcomes.time_to_response(analysis)
    incidence = float(ttr.curve.incidence_at([day])[0])
    assert incidence == pytest.approx(share, abs=0.03)
    patients = ttr.patients
    censoring_stops = (
        1 - kaplan_meier(patients["duration_days"], patients["outcome"] == "responded").survival_at([day])[0]
    )
    assert censoring_stops - share > 0.03
    # F(response) + F(stop) + still treated without a response = 1 at every time.
    curve = ttr.cumulative()
    np.testing.assert_allclose(curve["responded"] + curve["stopped"] + curve["neither"], 1, atol=1e-9)


def test_subgroup_counts_by_hand(tiny) -> None:
    _, analysis, attributes = tiny
    forest = outcomes.subgroup_response(analysis, attributes, cycle=1)
    counts = {
        (s, lv): (r, n)
        for s, lv, r, n in forest[["subgroup", "level", "responders", "evaluable"]].itertuples(index=False)
    }
    # Cycle 1: only A is a 50% responder among A, B, C, D (E has no value).
    assert counts[("Overall", "all evaluable patients")] == (1, 4)
    assert counts[("Sex", "F")] == (1, 3) and counts[("Sex", "M")] == (0, 1)
    assert ("Sex", "not recorded") not in counts  # E, the one without sex, is not evaluable
    assert counts[("Clinic", "North")] == (1, 2) and counts[("Clinic", "South")] == (0, 2)
    assert counts[("Prior preventives", "3–4")] == (1, 2) and counts[("Prior preventives", "not recorded")] == (0, 1)
    assert counts[("Medication overuse", "not recorded")] == (0, 1)
    row = forest.loc[(forest["subgroup"] == "Clinic") & (forest["level"] == "North")].iloc[0]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(wilson_by_hand(1, 2))
    age = forest.loc[forest["subgroup"] == "Age band", "level"].tolist()
    assert age == ["30-39", "40-49", "50-59"]


def test_table_one_counts_by_hand(tiny) -> None:
    _, analysis, attributes = tiny
    table = outcomes.baseline_table(analysis, attributes, cycle=2)
    classes = outcomes.response_class(analysis, attributes, 2).to_dict()
    # One response class for the Patient page and Table 1 (analytics.definitions.clinical.response_class):
    # at cycle 2 A's −75% is excellent and C's −62.5% a 50–<75% responder (the Outcomes page used to pool
    # both as ≥50%).
    assert classes == {
        "A": "≥75% excellent",
        "B": "<30% non-responder",
        "C": "50–<75% responder",
        "D": "did not reach cycle",
        "E": "not evaluable",
    }
    assert table.groups.to_dict() == {
        "Overall": 5,
        "≥75% excellent": 1,
        "50–<75% responder": 1,
        "<30% non-responder": 1,
        "not evaluable": 1,
        "did not reach cycle": 1,
    }
    long = table.long.set_index(["variable", "level", "group"])
    assert long.loc[("Sex", "F", "Overall"), "n"] == 3
    assert long.loc[("Sex", "F", "Overall"), "pct"] == pytest.approx(75)  # of the 4 with sex recorded
    assert long.loc[("Sex", "missing", "Overall"), "n"] == 1
    assert long.loc[("Sex", "F", "≥75% excellent"), "pct"] == pytest.approx(100)
    baseline = long.loc[("Baseline headache days / 28 d", "mean (SD)", "Overall")]
    assert baseline["mean"] == pytest.approx(18.8)
    assert baseline["sd"] == pytest.approx(math.sqrt(60.8 / 4))
    quartiles = long.loc[("Baseline headache days / 28 d", "median [IQR]", "Overall")]
    assert (quartiles["median"], quartiles["q1"], quartiles["q3"]) == pytest.approx((20, 16, 20))
    prior = long.loc[("Prior preventives (n)", "mean (SD)", "Overall")]
    assert (prior["n"], prior["mean"]) == (4, pytest.approx(3.5))
    assert long.loc[("Prior preventives (n)", "missing", "Overall"), "n"] == 1
    formatted = table.formatted().set_index(["variable", "level"])
    assert formatted.loc[("Sex", "F"), "Overall (n = 5)"] == "3 (75.0%)"
    # Baselines A 20 and C 24, one patient in each class: no SD.
    assert formatted.loc[("Baseline headache days / 28 d", "mean (SD)"), "≥75% excellent (n = 1)"] == "20.0 (—)"
    assert formatted.loc[("Baseline headache days / 28 d", "mean (SD)"), "50–<75% responder (n = 1)"] == "24.0 (—)"


def test_median_ci_from_order_statistics_by_hand() -> None:
    # n = 10: P(X ≤ 1) = 11/1024 ≤ 0.025 < P(X ≤ 2) = 56/1024, so the interval is (x(2), x(9)).
    assert outcomes.median_ci(np.arange(1, 11)) == (2.0, 9.0)
    assert all(np.isnan(outcomes.median_ci(np.arange(5))))  # n = 5 cannot reach 95%


def test_wilcoxon_matches_scipy_called_directly(tiny, synthetic) -> None:
    for analysis in (tiny[1], synthetic[1]):
        results = outcomes.wilcoxon_by_cycle(analysis)
        table = analysis.patient_cycles
        assert results
        for result in results:
            x = table.loc[(table["cycle"] == result.cycle) & table["mhd_change"].notna(), "mhd_change"].to_numpy()
            assert result.n == len(x)
            if np.count_nonzero(x) == 0:
                continue
            reference = sps.wilcoxon(x)
            assert result.statistic == pytest.approx(reference.statistic)
            assert result.p_value == pytest.approx(reference.pvalue)
            assert result.estimate == pytest.approx(np.median(x))
    cycle_1 = outcomes.wilcoxon_by_cycle(tiny[1])[0]
    assert any("Small n (4)" in c for c in cycle_1.caveats)
    assert any("1 zero difference" in c for c in cycle_1.caveats)  # B's change of 0


def test_mixed_model_matches_statsmodels_called_directly(synthetic) -> None:
    _, analysis = synthetic
    result = outcomes.mixed_model(analysis)
    table = analysis.patient_cycles
    data = table.loc[table["eligible"] & table["evaluable"], ["patient_id", "cycle", "mhd"]]
    data = data.loc[data["cycle"] <= max(result.cycles)].assign(patient_id=lambda f: f["patient_id"].astype(str))
    # Every cycle in the model has at least 10 evaluable patients, the next one (if any) fewer.
    counts = data.loc[data["cycle"] >= 1].groupby("cycle").size()
    assert (counts >= outcomes.MIN_PATIENTS_PER_MODEL_CYCLE).all()
    reference = smf.mixedlm("mhd ~ C(cycle)", data, groups=data["patient_id"]).fit(reml=True)
    terms = [f"C(cycle)[T.{c}]" for c in result.cycles[1:]]
    np.testing.assert_allclose(result.coefficients["estimate"], reference.fe_params[terms], rtol=1e-6)
    np.testing.assert_allclose(result.coefficients["ci_low"], reference.conf_int()[0][terms], rtol=1e-6)
    np.testing.assert_allclose(result.coefficients["p_value"], reference.pvalues[terms], rtol=1e-6, atol=1e-300)
    assert result.baseline_mean == pytest.approx(reference.fe_params["Intercept"])
    assert result.patient_variance == pytest.approx(float(reference.cov_re.iloc[0, 0]))
    assert (result.n_observations, result.n_patients) == (len(data), data["patient_id"].nunique())
    assert any("missing at random" in c for c in result.caveats)


def test_mixed_model_needs_data(tiny) -> None:
    # The tiny cohort has fewer than 10 evaluable patients at cycle 1: no cycle to model.
    assert outcomes.mixed_model(tiny[1]) is None
    assert outcomes.mixed_model(tiny[1], min_patients=2) is not None
