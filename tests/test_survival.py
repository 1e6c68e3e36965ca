"""Kaplan–Meier and Aalen–Johansen (analytics.statistics.survival) against hand-worked examples and references.

The Kaplan–Meier example follows the product-limit and Greenwood formulas step by step with exact
fractions; the reference implementation is lifelines' ``KaplanMeierFitter`` (exponential Greenwood
interval, the same log(−log S) transform), compared to 1e-6 on survival and both interval limits.

The cumulative incidence comes from lifelines' ``AalenJohansenFitter``, so it is checked against
an Aalen–Johansen estimate written out here (``aalen_johansen_by_hand``: the textbook tied-times
formula, a loop over distinct times) on data full of ties, and against exact fractions on a tiny
case; its interval is compared with lifelines called directly on data without ties (where
lifelines does not jitter), to 1e-9.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from lifelines import AalenJohansenFitter, KaplanMeierFitter

from analytics.statistics.survival import AJ_CI_METHOD, KM_CI_METHOD, at_risk_table, cumulative_incidence, kaplan_meier

Z = 1.959963984540054  # standard normal 97.5% quantile


def log_log_interval(s: float, greenwood_sum: float) -> tuple[float, float]:
    """The exponential Greenwood interval S ** exp(± z √V / |log S|), written out by hand."""
    spread = Z * math.sqrt(greenwood_sum) / abs(math.log(s))
    return s ** math.exp(spread), s ** math.exp(-spread)


def test_hand_worked_example() -> None:
    # Six subjects: events at 1, 2, 3, 5; censored at 2 (tied with an event) and 4.
    curve = kaplan_meier([1, 2, 2, 3, 4, 5], [True, True, False, True, False, True])
    table = curve.table.set_index("time")
    # At risk: 6 at 1; 5 at 2 (the censored subject at 2 still counts); 3 at 3; 2 at 4; 1 at 5.
    assert table["at_risk"].tolist() == [6, 6, 5, 3, 2, 1]
    assert table["events"].tolist() == [0, 1, 1, 1, 0, 1]
    assert table["censored"].tolist() == [0, 0, 1, 0, 1, 0]
    expected = {0: 1.0, 1: 5 / 6, 2: 5 / 6 * 4 / 5, 3: 5 / 6 * 4 / 5 * 2 / 3, 4: 4 / 9, 5: 0.0}
    for time, s in expected.items():
        assert table.loc[time, "survival"] == pytest.approx(s, abs=1e-12)
    # Greenwood sums: 1/(6·5); + 1/(5·4) = 1/12; + 1/(3·2) = 1/4.
    for time, v in ((1, 1 / 30), (2, 1 / 12), (3, 1 / 4), (4, 1 / 4)):
        # e.g. t = 1: S = 5/6, z·√(1/30)/|log S| = 1.963, so the interval is S^7.12 = 0.273 to S^0.140 = 0.975.
        low, high = log_log_interval(expected[time], v)
        assert table.loc[time, "ci_low"] == pytest.approx(low, abs=1e-12)
        assert table.loc[time, "ci_high"] == pytest.approx(high, abs=1e-12)
    assert (table.loc[0, "ci_low"], table.loc[0, "ci_high"]) == (1.0, 1.0)
    assert (table.loc[5, "ci_low"], table.loc[5, "ci_high"]) == (0.0, 0.0)
    assert curve.median() == 3  # first time S ≤ 0.5: S(3) = 4/9
    assert curve.n == 6 and curve.n_events == 4
    assert curve.at_risk([0, 1.5, 2, 2.5, 5, 6]).tolist() == [6, 5, 5, 3, 1, 0]
    assert curve.survival_at([-1, 0.5, 2, 2.9, 4.5]).tolist() == pytest.approx([1, 1, 2 / 3, 2 / 3, 4 / 9])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matches_lifelines(seed: int) -> None:
    """Survival and the 95% interval agree with lifelines to 1e-6 at every time of its timeline."""
    rng = np.random.default_rng(seed)
    n = [40, 150, 300, 12][seed]
    durations = rng.integers(0, 400, size=n).astype(float)  # integer days: many ties, and a few at 0
    events = rng.random(n) < [0.6, 0.3, 0.8, 1.0][seed]
    if seed == 2:  # the longest duration is an event: the curve reaches 0
        events[np.argmax(durations)] = True
    curve = kaplan_meier(durations, events)
    reference = KaplanMeierFitter().fit(durations, events)
    np.testing.assert_allclose(curve.table["time"], reference.survival_function_.index, atol=0)
    np.testing.assert_allclose(curve.table["survival"], reference.survival_function_.iloc[:, 0], atol=1e-6)
    np.testing.assert_allclose(curve.table["ci_low"], reference.confidence_interval_.iloc[:, 0], atol=1e-6)
    np.testing.assert_allclose(curve.table["ci_high"], reference.confidence_interval_.iloc[:, 1], atol=1e-6)
    assert curve.median() == reference.median_survival_time_ or (
        math.isnan(curve.median()) and math.isinf(reference.median_survival_time_)
    )
    at_risk = reference.event_table["at_risk"].to_numpy()
    np.testing.assert_array_equal(curve.table["at_risk"], at_risk)


def test_all_censored_curve_stays_at_one_and_has_no_median() -> None:
    curve = kaplan_meier([3, 5, 8], [False, False, False])
    assert curve.table["survival"].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert curve.table[["ci_low", "ci_high"]].to_numpy().min() == 1.0
    assert math.isnan(curve.median())


def test_at_risk_table_is_empty_beyond_the_last_observation() -> None:
    curve = kaplan_meier([10, 20, 30], [True, False, True])
    rows = at_risk_table(curve, [0, 15, 30, 45])
    assert rows["at_risk"].tolist() == [3, 2, 1, 0]
    assert rows["survival"].iloc[:3].tolist() == pytest.approx([1.0, 2 / 3, 0.0])
    assert rows[["survival", "ci_low", "ci_high"]].iloc[3].isna().all()


def test_empty_and_invalid_input() -> None:
    curve = kaplan_meier([], [])
    assert curve.n == 0 and curve.table.empty and math.isnan(curve.median())
    assert at_risk_table(curve, [0, 84])["at_risk"].tolist() == [0, 0]
    with pytest.raises(ValueError):
        kaplan_meier([-1, 2], [True, True])
    with pytest.raises(ValueError):
        kaplan_meier([1, 2], [True])


def test_the_result_names_its_method() -> None:
    curve = kaplan_meier([1, 2], [True, False])
    assert "Kaplan–Meier" in curve.describe()
    assert "log(−log S)" in KM_CI_METHOD and KM_CI_METHOD in curve.describe()
    assert "n = 2, events = 1" in curve.describe()


# --- cumulative incidence with a competing event ------------------------------------------------


def aalen_johansen_by_hand(durations: list[float], causes: list[int]) -> dict[float, tuple[float, float, float]]:
    """Textbook Aalen–Johansen with ties, one distinct time at a time: at t_i with n_i subjects of duration ≥ t_i,
    d1 events, d2 competing events, F_c(t_i) = F_c(t_(i−1)) + S(t_(i−1)) · d_c / n_i and S(t_i) = S(t_(i−1)) ·
    (1 − (d1 + d2) / n_i). Returns {time: (F_1, F_2, S)} at every distinct time."""
    out, f1, f2, s = {}, 0.0, 0.0, 1.0
    for t in sorted(set(durations)):
        n = sum(1 for d in durations if d >= t)
        d1 = sum(1 for d, c in zip(durations, causes, strict=True) if d == t and c == 1)
        d2 = sum(1 for d, c in zip(durations, causes, strict=True) if d == t and c == 2)
        f1, f2, s = f1 + s * d1 / n, f2 + s * d2 / n, s * (1 - (d1 + d2) / n)
        out[t] = (f1, f2, s)
    return out


def test_cumulative_incidence_hand_worked_example() -> None:
    # Six subjects: at day 2 one event, one competing event and one censored (all tied); an event at 4;
    # censored at 5; a competing event at 6.
    curve = cumulative_incidence([2, 2, 2, 4, 5, 6], [1, 2, 0, 1, 0, 2])
    table = curve.table.set_index("time")
    assert table["at_risk"].tolist() == [6, 6, 3, 2, 1]  # the subject censored at 2 is at risk at 2
    assert table[["events", "competing", "censored"]].loc[2].tolist() == [1, 1, 1]
    # t = 2: n = 6, S(2−) = 1: F1 = 1/6, F2 = 1/6, S = 4/6. t = 4: n = 3: F1 += 2/3 · 1/3, S = 2/3 · 2/3 = 4/9.
    # t = 6: n = 1: F2 += 4/9 · 1/1, S = 0.
    f1 = {0: 0, 2: Fraction(1, 6), 4: Fraction(1, 6) + Fraction(2, 9), 5: Fraction(7, 18), 6: Fraction(7, 18)}
    f2 = {0: 0, 2: Fraction(1, 6), 4: Fraction(1, 6), 5: Fraction(1, 6), 6: Fraction(1, 6) + Fraction(4, 9)}
    for time in f1:
        assert table.loc[time, "incidence"] == pytest.approx(float(f1[time]), abs=1e-12)
        assert table.loc[time, "competing_incidence"] == pytest.approx(float(f2[time]), abs=1e-12)
        assert table.loc[time, "event_free"] == pytest.approx(1 - float(f1[time] + f2[time]), abs=1e-12)
    # 1 − Kaplan–Meier with the competing events censored says 1 − 5/6 · 2/3 = 4/9 = 8/18 at t = 4: more than 7/18.
    naive = 1 - kaplan_meier([2, 2, 2, 4, 5, 6], [True, False, False, True, False, False]).survival_at([4])[0]
    assert naive == pytest.approx(8 / 18) and table.loc[4, "incidence"] < naive
    assert math.isnan(curve.median())  # F1 never reaches 1/2
    assert (curve.n, curve.n_events, curve.n_competing, curve.n_censored) == (6, 2, 2, 2)
    rows = curve.at([1, 3, 6, 7])
    assert rows["at_risk"].tolist() == [6, 3, 1, 0]
    assert rows["incidence"].iloc[:3].tolist() == pytest.approx([0, 1 / 6, 7 / 18])
    assert rows.iloc[3, 2:].isna().all()  # not estimated beyond the last observation


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_cumulative_incidence_matches_the_hand_written_estimator_with_ties(seed: int) -> None:
    """Tied times of every kind (integer days 1..30, and cycle-like days 84/168/252 for seed 3)."""
    rng = np.random.default_rng(seed)
    n = [25, 60, 200, 120][seed]
    durations = (rng.integers(1, 31, size=n) if seed < 3 else rng.choice([84, 168, 252, 300], size=n)).astype(float)
    causes = rng.choice([0, 1, 2], size=n, p=[[0.3, 0.4, 0.3], [0.1, 0.6, 0.3], [0.5, 0.3, 0.2], [0.2, 0.5, 0.3]][seed])
    curve = cumulative_incidence(durations, causes)
    expected = aalen_johansen_by_hand(durations.tolist(), causes.tolist())
    table = curve.table.set_index("time")
    assert list(table.index) == [0.0, *sorted(expected)]
    for time, (f1, f2, s) in expected.items():
        assert table.loc[time, "incidence"] == pytest.approx(f1, abs=1e-9)
        assert table.loc[time, "competing_incidence"] == pytest.approx(f2, abs=1e-9)
        assert table.loc[time, "event_free"] == pytest.approx(s, abs=1e-9)
    finite = table.dropna(subset=["ci_low", "ci_high"])
    assert (finite["ci_low"] <= finite["incidence"] + 1e-12).all()
    assert (finite["incidence"] <= finite["ci_high"] + 1e-12).all()
    assert ((finite["ci_low"] >= 0) & (finite["ci_high"] <= 1)).all()
    # Reproducible: lifelines would jitter these ties at random; the fixed tie-break gives the same table twice.
    assert cumulative_incidence(durations, causes).table.equals(curve.table)


def test_cumulative_incidence_interval_is_lifelines_on_untied_data() -> None:
    """Without ties lifelines does not jitter: both incidences and both limits equal its own, at 95% and 90%."""
    rng = np.random.default_rng(7)
    durations = rng.permutation(np.arange(1, 81)).astype(float)
    causes = rng.choice([0, 1, 2], size=80, p=[0.3, 0.45, 0.25])
    for level in (0.95, 0.90):
        curve = cumulative_incidence(durations, causes, level=level)
        for code, (value, low, high) in {
            1: ("incidence", "ci_low", "ci_high"),
            2: ("competing_incidence", "competing_ci_low", "competing_ci_high"),
        }.items():
            reference = AalenJohansenFitter(alpha=1 - level).fit(durations, causes, event_of_interest=code)
            np.testing.assert_allclose(curve.table[value], reference.cumulative_density_.iloc[:, 0], atol=1e-12)
            limits = reference.confidence_interval_.to_numpy()
            inside = (curve.table[value] > 0) & (curve.table[value] < 1)
            np.testing.assert_allclose(curve.table.loc[inside, low], limits[inside.to_numpy()].min(axis=1), atol=1e-9)
            np.testing.assert_allclose(curve.table.loc[inside, high], limits[inside.to_numpy()].max(axis=1), atol=1e-9)
    wide = cumulative_incidence(durations, causes, level=0.95).table
    narrow = cumulative_incidence(durations, causes, level=0.90).table
    assert (wide["ci_high"] - wide["ci_low"] >= narrow["ci_high"] - narrow["ci_low"] - 1e-12).all()


def test_without_competing_events_the_incidence_is_one_minus_kaplan_meier() -> None:
    durations = [1, 2, 2, 3, 4, 5]
    events = [True, True, False, True, False, True]
    incidence = cumulative_incidence(durations, [1 if e else 0 for e in events]).table
    np.testing.assert_allclose(
        incidence["incidence"], 1 - kaplan_meier(durations, events).table["survival"], atol=1e-12
    )
    assert (incidence["competing_incidence"] == 0).all()


def test_cumulative_incidence_edge_cases() -> None:
    empty = cumulative_incidence([], [])
    assert empty.n == 0 and empty.table.empty and math.isnan(empty.median())
    assert empty.at([0, 84])["at_risk"].tolist() == [0, 0]
    censored = cumulative_incidence([3, 5], [0, 0]).table
    assert censored[["incidence", "ci_low", "ci_high", "competing_incidence"]].to_numpy().max() == 0
    at_zero = cumulative_incidence([0, 0, 4], [1, 2, 0]).table.set_index("time")  # lifelines alone would drop these
    assert at_zero.loc[0, ["incidence", "competing_incidence"]].tolist() == pytest.approx([1 / 3, 1 / 3])
    assert cumulative_incidence([1, 2, 3], [1, 1, 1]).median() == 2  # F = 2/3 at 2
    with pytest.raises(ValueError):
        cumulative_incidence([1, 2], [1, 3])
    with pytest.raises(ValueError):
        cumulative_incidence([-1, 2], [1, 1])
    with pytest.raises(ValueError):
        cumulative_incidence([1, 2], [1])


def test_cumulative_incidence_names_its_method() -> None:
    curve = cumulative_incidence([1, 2, 3], [1, 2, 0])
    assert "Aalen–Johansen" in curve.describe() and AJ_CI_METHOD in curve.describe()
    assert "n = 3, events = 1, competing events = 1, censored = 1" in curve.describe()
