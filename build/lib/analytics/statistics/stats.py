"""Small statistical helpers: Wilson score intervals and t-intervals, vectorised over arrays.

Each function names its method so that captions and the data dictionary can say how an interval
was computed. Empty denominators and n < 2 give NaN (shown and exported as empty), never zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# scipy.special holds the two quantile functions scipy.stats itself calls; importing scipy.stats
# would add about 0.7 s to every command-line run.
from scipy.special import ndtri, stdtrit

Z_95 = float(ndtri(0.975))
WILSON_METHOD = "95% Wilson score interval"
T_METHOD = "95% t-interval (mean ± t(0.975, n−1)·sd/√n, sd with n−1)"


@dataclass(frozen=True)
class Proportion:
    """A rate with its numerator, denominator and 95% Wilson interval."""

    numerator: int
    denominator: int
    rate: float
    ci_low: float
    ci_high: float
    method: str = WILSON_METHOD

    def label(self) -> str:
        if self.denominator == 0:
            return "— (n = 0)"
        return f"{self.rate:.0%} ({self.numerator}/{self.denominator}; 95% CI {self.ci_low:.0%}–{self.ci_high:.0%})"


def wilson_interval(successes: npt.ArrayLike, n: npt.ArrayLike, z: float = Z_95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion; NaN where n is 0."""
    k = np.asarray(successes, dtype="float64")
    n = np.asarray(n, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    # The exact interval always holds p (its ends are exactly 0 at k = 0 and 1 at k = n); rounding
    # can leave a low end of 3e-18 above a rate of 0, so the rate bounds the ends.
    low = np.where(n > 0, np.minimum(np.clip(centre - half, 0, 1), p), np.nan)
    high = np.where(n > 0, np.maximum(np.clip(centre + half, 0, 1), p), np.nan)
    return low, high


def proportion(successes: int, n: int) -> Proportion:
    low, high = wilson_interval(successes, n)
    rate = successes / n if n else float("nan")
    return Proportion(int(successes), int(n), rate, float(low), float(high))


def t_interval(
    mean: npt.ArrayLike, sd: npt.ArrayLike, n: npt.ArrayLike, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Mean ± t(1 − α/2, n − 1) · sd / √n; NaN where n < 2."""
    mean = np.asarray(mean, dtype="float64")
    sd = np.asarray(sd, dtype="float64")
    n = np.asarray(n, dtype="float64")
    df = np.where(n >= 2, n - 1, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        half = stdtrit(df, 0.5 + level / 2) * sd / np.sqrt(n)
    return np.where(n >= 2, mean - half, np.nan), np.where(n >= 2, mean + half, np.nan)
