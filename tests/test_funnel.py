"""Funnel-plot control limits (analytics.views.clinic.funnel_limits) worked by hand, and the unit table.

Hand values use exact binomial probabilities written as fractions of 2**n (target 0.5) so that every
step of Spiegelhalter's interpolation can be followed; an invariant then checks, for many n and
targets, that an integer count lies outside a limit exactly when its one-sided exact binomial tail
probability is below the limit's tail level.
"""

from __future__ import annotations

from math import comb
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from analytics.views.clinic import funnel_curves, funnel_limits, responder_funnel


def binomial_cdf_half(r: int, n: int) -> float:
    """P(R ≤ r) for R ~ Binomial(n, 1/2), from binomial coefficients."""
    return sum(comb(n, k) for k in range(r + 1)) / 2**n


def test_limits_by_hand_n10_target_half() -> None:
    # F(1) = 11/1024, F(2) = 56/1024, F(7) = 968/1024, F(8) = 1013/1024.
    assert binomial_cdf_half(2, 10) == 56 / 1024 and binomial_cdf_half(8, 10) == 1013 / 1024
    # Lower 2.5%: r_p = 2 (F(1) < 0.025 ≤ F(2)); α = (56/1024 − 0.025)/(45/1024) = 0.675556; limit (2 − α)/10.
    alpha_low = (56 / 1024 - 0.025) / (45 / 1024)
    assert alpha_low == pytest.approx(0.6755556, abs=1e-7)
    assert funnel_limits(0.5, 10, 0.025)[()] == pytest.approx((2 - alpha_low) / 10, abs=1e-12)  # 0.132444
    # Upper 97.5%: r_p = 8 (F(7) < 0.975 ≤ F(8)); α = (1013/1024 − 0.975)/(45/1024) = 0.324444; (8 + 1 − α)/10.
    alpha_high = (1013 / 1024 - 0.975) / (45 / 1024)
    assert funnel_limits(0.5, 10, 0.975)[()] == pytest.approx((9 - alpha_high) / 10, abs=1e-12)  # 0.867556
    # With target 1/2 the two limits are mirror images.
    assert funnel_limits(0.5, 10, 0.025)[()] + funnel_limits(0.5, 10, 0.975)[()] == pytest.approx(1.0, abs=1e-12)


def test_limits_by_hand_998_n20() -> None:
    # 99.8% limits (tails 0.001) for n = 20, target 1/2: F(2) = 211/2**20 < 0.001 ≤ F(3) = 1351/2**20.
    assert binomial_cdf_half(2, 20) * 2**20 == 211 and binomial_cdf_half(3, 20) * 2**20 == 1351
    alpha = (1351 / 2**20 - 0.001) / (1140 / 2**20)  # 1140 = C(20, 3)
    assert alpha == pytest.approx(0.265284, abs=1e-6)
    assert funnel_limits(0.5, 20, 0.001)[()] == pytest.approx((3 - alpha) / 20, abs=1e-12)  # 0.136736
    assert funnel_limits(0.5, 20, 0.999)[()] == pytest.approx(1 - (3 - alpha) / 20, abs=1e-12)


def test_limits_clip_to_the_unit_interval_and_are_empty_for_no_patients() -> None:
    # n = 1, target 1/2: the lower limit would be (0 − 0.95)/1 and the upper (2 − 0.05)/1.
    assert funnel_limits(0.5, 1, 0.025)[()] == 0.0
    assert funnel_limits(0.5, 1, 0.975)[()] == 1.0
    assert np.isnan(funnel_limits(0.5, 0, 0.975)[()])


# Targets chosen so that no tail probability equals the level exactly (e.g. 0.1**3 = 0.001 would).
@pytest.mark.parametrize("target", [0.12, 0.5, 0.61, 0.88])
@pytest.mark.parametrize("tail", [0.025, 0.001])
def test_a_count_is_outside_a_limit_exactly_when_its_tail_is_below_the_level(target: float, tail: float) -> None:
    for n in (3, 7, 20, 41, 150):
        counts = np.arange(n + 1)
        rates = counts / n
        below = rates < funnel_limits(target, n, tail)
        above = rates > funnel_limits(target, n, 1 - tail)
        np.testing.assert_array_equal(below, sps.binom.cdf(counts, n, target) < tail)
        np.testing.assert_array_equal(above, sps.binom.sf(counts - 1, n, target) < tail)


def test_funnel_curves_narrow_with_n() -> None:
    curves = funnel_curves(0.6, 200)
    assert curves["n"].tolist() == list(range(1, 201))
    width = curves["upper_95"] - curves["lower_95"]
    assert width.iloc[-1] < width.iloc[20] < width.iloc[5]
    assert (curves["lower_998"] <= curves["lower_95"]).all() and (curves["upper_95"] <= curves["upper_998"]).all()


def test_unit_rates_and_positions() -> None:
    """Units X (3 of 4 evaluable respond), Y (0 of 1), Z (none evaluable: not evaluable, never 0%)."""
    cycles = pd.DataFrame(
        {
            "patient_id": ["x1", "x2", "x3", "x4", "x5", "y1", "y2", "z1", "x1"],
            "cycle": [2, 2, 2, 2, 2, 2, 2, 1, 1],
            "mhd_change": [-10.0, -12.0, -9.0, -1.0, np.nan, -2.0, np.nan, -8.0, -8.0],
            "responder_50": pd.array([True, True, True, False, pd.NA, False, pd.NA, True, True], dtype="boolean"),
        }
    )
    roster = pd.DataFrame({"patient_id": ["x1", "x2", "x3", "x4", "x5", "y1", "y2", "z1"], "clinic": list("XXXXXYYZ")})
    funnel = responder_funnel(SimpleNamespace(patient_cycles=cycles), roster, "clinic", "clinic", highlight="Y")
    units = funnel.units.set_index("unit")
    assert units["patients"].tolist() == [5, 2, 1]
    assert units["evaluable_n"].tolist() == [4, 1, 0]
    assert units["responders_n"].tolist() == [3, 0, 0]
    assert units.loc["X", "rate"] == 0.75 and units.loc["Y", "rate"] == 0.0 and np.isnan(units.loc["Z", "rate"])
    assert units.loc["Z", "position"] == "not evaluable"
    assert (funnel.overall.numerator, funnel.overall.denominator) == (3, 5)
    # At n = 1 around 3/5 the limits are [0, 1] (a single patient can never be outside them).
    assert units.loc["Y", "position"] == "within 95% limits"
    assert units.loc["X", "lower_95"] == pytest.approx(funnel_limits(0.6, 4, 0.025)[()])
    assert funnel.highlight == "Y" and funnel.cycle == 2
