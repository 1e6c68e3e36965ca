"""The interval helpers against independent implementations (statsmodels, scipy) and hand values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint

from analytics.statistics.stats import T_METHOD, WILSON_METHOD, proportion, t_interval, wilson_interval

GRID = [
    (k, n) for n in (1, 2, 3, 5, 10, 19, 22, 100, 361) for k in sorted({0, 1, n // 3, n // 2, n - 1, n}) if 0 <= k <= n
]


@pytest.mark.parametrize(("k", "n"), GRID)
def test_wilson_matches_statsmodels(k: int, n: int) -> None:
    low, high = wilson_interval(k, n)
    ref_low, ref_high = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert float(low) == pytest.approx(ref_low, abs=1e-12)
    assert float(high) == pytest.approx(ref_high, abs=1e-12)
    assert 0 <= low <= k / n <= high <= 1


def test_wilson_by_hand() -> None:
    # 2 of 5 (z = 1.959964): centre = (0.4 + z^2/10) / (1 + z^2/5) = 0.784146 / 1.768292 = 0.443448;
    # half = z * sqrt(0.24/5 + z^2/100) / 1.768292 = 1.959964 * 0.277050 / 1.768292 = 0.307083.
    low, high = wilson_interval(2, 5)
    assert (float(low), float(high)) == pytest.approx((0.1176, 0.7693), abs=1e-4)


def test_wilson_is_vectorised_and_empty_without_a_denominator() -> None:
    k = np.array([0, 3, 0, 7])
    n = np.array([0, 10, 4, 7])
    low, high = wilson_interval(k, n)
    assert np.isnan(low[0]) and np.isnan(high[0])
    for i in (1, 2, 3):
        assert (low[i], high[i]) == pytest.approx(proportion_confint(k[i], n[i], method="wilson"), abs=1e-12)


@pytest.mark.parametrize("n", [2, 3, 5, 30])
def test_t_interval_matches_scipy(n: int) -> None:
    rng = np.random.default_rng(n)
    values = rng.normal(-6, 4, size=n)
    mean, sd = values.mean(), values.std(ddof=1)
    low, high = t_interval(mean, sd, n)
    ref = sps.t.interval(0.95, n - 1, loc=mean, scale=sd / math.sqrt(n))
    assert (float(low), float(high)) == pytest.approx(ref, rel=1e-12)


def test_t_interval_by_hand_and_empty_below_two() -> None:
    # n = 2, mean -8, sd 5.656854 (values -4, -12): -8 -/+ 12.7062 * 5.656854 / 1.414214 = -8 -/+ 50.8248.
    low, high = t_interval(np.array([-8.0, 3.0, 1.0]), np.array([math.sqrt(32), np.nan, 0.0]), np.array([2, 1, 0]))
    assert (low[0], high[0]) == pytest.approx((-58.8248, 42.8248), abs=1e-4)
    assert np.isnan(low[1:]).all() and np.isnan(high[1:]).all()


def test_proportion_carries_numerator_denominator_and_method() -> None:
    p = proportion(4, 19)
    assert (p.numerator, p.denominator) == (4, 19)
    assert p.rate == pytest.approx(4 / 19)
    assert (p.ci_low, p.ci_high) == pytest.approx(proportion_confint(4, 19, method="wilson"), abs=1e-12)
    assert p.method == WILSON_METHOD and "Wilson" in p.method
    assert "4/19" in p.label() and "95% CI" in p.label()
    empty = proportion(0, 0)
    assert math.isnan(empty.rate) and math.isnan(empty.ci_low) and math.isnan(empty.ci_high)
    assert "n = 0" in empty.label() and "0%" not in empty.label()
    assert "t(0.975, n−1)" in T_METHOD
