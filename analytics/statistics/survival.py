"""Kaplan–Meier estimation of time-to-event curves with pointwise confidence intervals and numbers at risk.

Shared by the clinic page (persistence on treatment) and the outcomes page (time to first 50%
response). Estimation is separate from plotting: ``kaplan_meier`` returns a small result object
holding the product-limit table, the method names a caption should print, and helpers for the
number at risk and the median. The confidence interval is the exponential Greenwood interval
(Greenwood's variance on the log(−log S) scale, Kalbfleisch & Prentice 1980), the same one
lifelines' ``KaplanMeierFitter`` reports, so it stays inside [0, 1] and the two agree to rounding.
Implemented with numpy/pandas only; the tests check it against lifelines and a hand-worked case.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

KM_METHOD = "Kaplan–Meier product-limit estimator"
KM_CI_METHOD = "pointwise CI from Greenwood's variance on the log(−log S) scale (exponential Greenwood)"
KM_TABLE_COLUMNS = ["time", "at_risk", "events", "censored", "survival", "ci_low", "ci_high"]

DEFINITIONS: tuple[dict[str, str], ...] = (
    {
        "term": "Kaplan–Meier curve",
        "definition": (
            "S(t) = Π over event times t_i ≤ t of (1 − d_i / n_i), with n_i the subjects still observed at t_i "
            "(censored subjects tied with an event count as at risk) and d_i the events there. 95% pointwise "
            "interval: S(t) ** exp(± 1.96 · √V(t) / |log S(t)|), V(t) = Σ d_i / (n_i (n_i − d_i)) (Greenwood's "
            "variance on the log(−log S) scale, as lifelines reports). The number at risk under a chart counts "
            "subjects whose time is at least the tick's."
        ),
        "columns": ", ".join(KM_TABLE_COLUMNS),
    },
)


@dataclass(frozen=True)
class KaplanMeier:
    """A Kaplan–Meier curve: one row per distinct time (0 first) with S(t) and its pointwise CI.

    ``table`` columns: time, at_risk (subjects with duration ≥ time), events and censored at that
    time, survival S(t) (right-continuous step: the value from ``time`` until the next row),
    ci_low and ci_high. ``durations`` keeps the sorted input for numbers at risk at any time.
    """

    table: pd.DataFrame
    durations: np.ndarray
    n: int
    n_events: int
    level: float = 0.95
    method: str = KM_METHOD
    ci_method: str = KM_CI_METHOD

    def survival_at(self, times: np.ndarray | list[float]) -> np.ndarray:
        """S(t) at the given times (1 before the first row; NaN for an empty curve)."""
        t = np.asarray(times, dtype="float64")
        if self.table.empty:
            return np.full(t.shape, np.nan)
        index = np.searchsorted(self.table["time"].to_numpy(dtype="float64"), t, side="right") - 1
        values = self.table["survival"].to_numpy(dtype="float64")
        return np.where(index >= 0, values[np.clip(index, 0, None)], 1.0)

    def at_risk(self, times: np.ndarray | list[float]) -> np.ndarray:
        """Number of subjects still under observation (duration ≥ t) at each time t."""
        t = np.asarray(times, dtype="float64")
        return self.n - np.searchsorted(self.durations, t, side="left")

    def median(self) -> float:
        """The median time: the first time S(t) ≤ 0.5; NaN when the curve never gets there."""
        # The product of the steps is computed in logs, so an exact 1/2 can come out a hair above it.
        reached = self.table.loc[self.table["survival"] <= 0.5 + 1e-12, "time"]
        return float(reached.iloc[0]) if len(reached) else float("nan")

    def describe(self) -> str:
        """The method line a caption prints next to the curve."""
        return f"{self.method}; {self.level:.0%} {self.ci_method}; n = {self.n}, events = {self.n_events}"


def kaplan_meier(
    durations: np.ndarray | pd.Series | list[float],
    events: np.ndarray | pd.Series | list[bool],
    level: float = 0.95,
) -> KaplanMeier:
    """The Kaplan–Meier estimate for right-censored data.

    ``durations`` are times from the origin (≥ 0); ``events`` is True where the event was observed
    and False where the subject was censored at that time. Censored subjects at a time tied with an
    event are counted at risk for it (the usual convention). S(t) = Π_{t_i ≤ t} (1 − d_i / n_i);
    Greenwood's sum V(t) = Σ d_i / (n_i (n_i − d_i)) gives the interval
    S(t) ** exp(± z · √V(t) / log S(t)), which is 1 where S = 1 and 0 where S = 0.
    """
    time = np.asarray(durations, dtype="float64")
    observed = np.asarray(events, dtype=bool)
    if time.shape != observed.shape:
        raise ValueError("durations and events must have the same length")
    if np.isnan(time).any() or (time < 0).any():
        raise ValueError("durations must be non-negative numbers")
    order = np.sort(time)
    if time.size == 0:
        return KaplanMeier(pd.DataFrame(columns=KM_TABLE_COLUMNS), order, 0, 0, level)

    per_time = pd.DataFrame({"time": time, "event": observed.astype("int64")}).groupby("time")["event"]
    counts = per_time.agg(["size", "sum"])
    grid = np.union1d([0.0], counts.index.to_numpy())
    removed = counts["size"].reindex(grid, fill_value=0).to_numpy()
    deaths = counts["sum"].reindex(grid, fill_value=0).to_numpy()
    at_risk = time.size - np.concatenate([[0], np.cumsum(removed)[:-1]])

    with np.errstate(divide="ignore", invalid="ignore"):
        log_step = np.log1p(-deaths / at_risk)
        survival = np.exp(np.cumsum(log_step))
        # A step where everyone at risk has the event makes S = 0; its Greenwood term is infinite
        # and carries no information about the interval (which is 0 there), so it adds nothing.
        greenwood_terms = np.where(at_risk > deaths, deaths / (at_risk * (at_risk - deaths)), 0.0)
        variance = np.cumsum(greenwood_terms)
        log_s = np.log(survival)
        z = float(sps.norm.ppf(0.5 + level / 2))
        spread = z * np.sqrt(variance) / log_s
        low = np.exp(-np.exp(np.log(-log_s) - spread))
        high = np.exp(-np.exp(np.log(-log_s) + spread))
    low = np.where(survival >= 1.0, 1.0, np.where(survival <= 0.0, 0.0, low))
    high = np.where(survival >= 1.0, 1.0, np.where(survival <= 0.0, 0.0, high))

    table = pd.DataFrame(
        {
            "time": grid,
            "at_risk": at_risk.astype("int64"),
            "events": deaths.astype("int64"),
            "censored": (removed - deaths).astype("int64"),
            "survival": survival,
            "ci_low": low,
            "ci_high": high,
        }
    )
    return KaplanMeier(table, order, int(time.size), int(observed.sum()), level)


def at_risk_table(curve: KaplanMeier, times: np.ndarray | list[float]) -> pd.DataFrame:
    """The number-at-risk row under a chart: time, at_risk, and S(t) with its CI at that time."""
    t = np.asarray(times, dtype="float64")
    rows = curve.table
    index = np.searchsorted(rows["time"].to_numpy(dtype="float64"), t, side="right") - 1 if len(rows) else None
    out = pd.DataFrame({"time": t, "at_risk": curve.at_risk(t).astype("int64"), "survival": curve.survival_at(t)})
    for column in ("ci_low", "ci_high"):
        if index is None:
            out[column] = np.nan
        else:
            values = rows[column].to_numpy(dtype="float64")
            out[column] = np.where(index >= 0, values[np.clip(index, 0, None)], 1.0)
    # Beyond the last observation the curve is not estimated: show it as empty, not as the last value.
    beyond = t > (curve.durations[-1] if curve.n else -np.inf)
    out.loc[beyond, ["survival", "ci_low", "ci_high"]] = np.nan
    return out
