"""Kaplan–Meier (analytics.statistics.survival) against a hand-worked example and against lifelines.

The hand-worked example follows the product-limit and Greenwood formulas step by step with exact
fractions; the reference implementation is lifelines' ``KaplanMeierFitter`` (exponential Greenwood
interval, the same log(−log S) transform), compared to 1e-6 on survival and both interval limits.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from lifelines import KaplanMeierFitter

from analytics.statistics.survival import KM_CI_METHOD, at_risk_table, kaplan_meier

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
