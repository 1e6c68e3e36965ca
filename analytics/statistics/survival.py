"""Time-to-event curves with pointwise confidence intervals and numbers at risk.

``kaplan_meier`` serves the clinic page (persistence on treatment); ``cumulative_incidence``
serves the outcomes page (time to first 50% response, with stopping treatment as a competing
event). Estimation is separate from plotting: each returns a small result object holding its
table, the method names a caption should print, and helpers for the number at risk and the
median. The Kaplan–Meier interval is the exponential Greenwood interval (Greenwood's variance on
the log(−log S) scale, Kalbfleisch & Prentice 1980), the same one lifelines'
``KaplanMeierFitter`` reports; it is implemented with numpy/pandas only and the tests check it
against lifelines and a hand-worked case. The Aalen–Johansen estimate and its interval come from
lifelines' ``AalenJohansenFitter``; the tests check the estimate against one written out by hand.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from analytics.definitions.registry import Definition

KM_METHOD = "Kaplan–Meier product-limit estimator"
KM_CI_METHOD = "pointwise CI from Greenwood's variance on the log(−log S) scale (exponential Greenwood)"
KM_TABLE_COLUMNS = ["time", "at_risk", "events", "censored", "survival", "ci_low", "ci_high"]
AJ_METHOD = "Aalen–Johansen estimator of the cumulative incidence with a competing event (lifelines)"
AJ_CI_METHOD = (
    "pointwise CI from lifelines' delta-method variance of the cumulative incidence (Greenwood-type, Collett 2015 "
    "p. 411) on the log(−log F) scale"
)
CIF_TABLE_COLUMNS = [
    "time",
    "at_risk",
    "events",
    "competing",
    "censored",
    "incidence",
    "ci_low",
    "ci_high",
    "competing_incidence",
    "competing_ci_low",
    "competing_ci_high",
    "event_free",
]
CENSORED, EVENT, COMPETING = 0, 1, 2
"""Codes of ``cumulative_incidence``'s ``causes``."""

DEFINITIONS: tuple[Definition, ...] = (
    Definition(
        "Kaplan–Meier curve",
        (
            "S(t) = Π over event times t_i ≤ t of (1 − d_i / n_i), with n_i the subjects still observed at t_i "
            "(censored subjects tied with an event count as at risk) and d_i the events there. 95% pointwise "
            "interval: S(t) ** exp(± 1.96 · √V(t) / |log S(t)|), V(t) = Σ d_i / (n_i (n_i − d_i)) (Greenwood's "
            "variance on the log(−log S) scale, as lifelines reports). The number at risk under a chart counts "
            "subjects whose time is at least the tick's."
        ),
        columns=tuple(KM_TABLE_COLUMNS),
    ),
    Definition(
        "Cumulative incidence (Aalen–Johansen)",
        (
            "With a competing event that ends the chance of the event of interest, F(t) = Σ over event times t_i ≤ t "
            "of S(t_i−) · d_i / n_i, with S the Kaplan–Meier probability of neither event (both kinds of event end "
            "follow-up), d_i the events of interest at t_i and n_i the subjects still observed; the competing "
            "event's incidence likewise; F + F_competing + S = 1. Unlike 1 − Kaplan–Meier with competing events "
            "censored, it does not pretend that those who had the competing event could still have the event of "
            "interest. Ties: at one time, events of both kinds come before censorings (tied censored subjects "
            "count as at risk). 95% pointwise interval: lifelines' delta-method variance (Collett 2015) on the "
            "log(−log F) scale."
        ),
        columns=tuple(CIF_TABLE_COLUMNS),
    ),
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


# --- cumulative incidence with a competing event ------------------------------------------------


@dataclass(frozen=True)
class CumulativeIncidence:
    """Cumulative incidence of an event and of a competing event: one row per distinct time (0 first).

    ``table`` columns: time, at_risk (subjects with duration ≥ time), events, competing and
    censored at that time, incidence F(t) of the event with ci_low and ci_high, the competing
    event's competing_incidence with its interval, and event_free = 1 − F − F_competing (the
    Kaplan–Meier probability of neither). Each value holds from ``time`` until the next row.
    """

    table: pd.DataFrame
    durations: np.ndarray
    n: int
    n_events: int
    n_competing: int
    level: float = 0.95
    method: str = AJ_METHOD
    ci_method: str = AJ_CI_METHOD

    @property
    def n_censored(self) -> int:
        return self.n - self.n_events - self.n_competing

    def at(self, times: np.ndarray | list[float]) -> pd.DataFrame:
        """The table's values at the given times (time, at_risk, then the estimates and intervals).

        Before the first row the incidences are 0; beyond the last observation they are not
        estimated and stay empty, not the last value.
        """
        t = np.asarray(times, dtype="float64")
        out = pd.DataFrame({"time": t, "at_risk": self.at_risk(t).astype("int64")})
        columns = CIF_TABLE_COLUMNS[5:]
        if self.table.empty:
            return out.assign(**{c: np.nan for c in columns})
        index = np.searchsorted(self.table["time"].to_numpy(dtype="float64"), t, side="right") - 1
        for column in columns:
            values = self.table[column].to_numpy(dtype="float64")
            out[column] = np.where(index >= 0, values[np.clip(index, 0, None)], 1.0 if column == "event_free" else 0.0)
        out.loc[t > self.durations[-1], columns] = np.nan
        return out

    def incidence_at(self, times: np.ndarray | list[float]) -> np.ndarray:
        """F(t) of the event of interest at the given times (NaN beyond the last observation)."""
        return self.at(times)["incidence"].to_numpy(dtype="float64")

    def at_risk(self, times: np.ndarray | list[float]) -> np.ndarray:
        """Number of subjects still under observation (duration ≥ t) at each time t."""
        t = np.asarray(times, dtype="float64")
        return self.n - np.searchsorted(self.durations, t, side="left")

    def median(self) -> float:
        """The first time F(t) ≥ 0.5 (half of all subjects had the event); NaN when it never gets there."""
        reached = self.table.loc[self.table["incidence"] >= 0.5 - 1e-12, "time"]
        return float(reached.iloc[0]) if len(reached) else float("nan")

    def describe(self) -> str:
        """The method line a caption prints next to the curve."""
        return (
            f"{self.method}; {self.level:.0%} {self.ci_method}; n = {self.n}, events = {self.n_events}, "
            f"competing events = {self.n_competing}, censored = {self.n_censored}"
        )


def cumulative_incidence(
    durations: np.ndarray | pd.Series | list[float],
    causes: np.ndarray | pd.Series | list[int],
    level: float = 0.95,
) -> CumulativeIncidence:
    """The Aalen–Johansen cumulative incidences of ``EVENT`` and ``COMPETING`` for right-censored data.

    ``durations`` are times from the origin (≥ 0); ``causes`` says how each subject's follow-up
    ended: ``EVENT`` (1), ``COMPETING`` (2) or ``CENSORED`` (0). The estimates and intervals come
    from lifelines' ``AalenJohansenFitter``, fitted once per cause. lifelines breaks tied event
    times of different causes by random jitter (and sets the incidence at time 0 to 0); so that
    the result is reproducible and exactly the tied-times estimate, ties are broken here in a
    fixed order instead (events, then competing events, then censorings, a fraction of the
    smallest gap apart, all after time 0). The incidences do not depend on the order of tied
    events; tied censored subjects stay at risk for the events, the usual convention. An interval
    is empty at a time after which no one is left at risk (lifelines' variance is undefined there).
    ``event_free`` is ``kaplan_meier`` with either event as the event.
    """
    time = np.asarray(durations, dtype="float64")
    cause = np.asarray(causes)
    if time.shape != cause.shape:
        raise ValueError("durations and causes must have the same length")
    if np.isnan(time).any() or (time < 0).any():
        raise ValueError("durations must be non-negative numbers")
    if not np.isin(cause, (CENSORED, EVENT, COMPETING)).all():
        raise ValueError("causes must be 0 (censored), 1 (event) or 2 (competing event)")
    cause = cause.astype("int64")
    order = np.sort(time)
    if time.size == 0:
        return CumulativeIncidence(pd.DataFrame(columns=CIF_TABLE_COLUMNS), order, 0, 0, 0, level)

    counts = pd.crosstab(time, cause).reindex(columns=[CENSORED, EVENT, COMPETING], fill_value=0)
    grid = np.union1d([0.0], counts.index.to_numpy(dtype="float64"))
    counts = counts.reindex(grid, fill_value=0)
    removed = counts.sum(axis=1).to_numpy()
    at_risk = time.size - np.concatenate([[0], np.cumsum(removed)[:-1]])

    gap = float(np.diff(grid).min()) if grid.size > 1 else 1.0
    shift = np.select([cause == EVENT, cause == COMPETING], [1.0, 4 / 3], default=5 / 3) * gap
    # Past every tie-broken time of grid time t's block (≤ t + 5/3 gap), before the next block (≥ t + 2 gap).
    after_block = grid + 11 / 6 * gap
    estimates = {}
    for code, name in ((EVENT, "incidence"), (COMPETING, "competing_incidence")):
        incidence, low, high = _aalen_johansen(time + shift, cause, code, level, after_block)
        estimates[name] = incidence
        prefix = "" if code == EVENT else "competing_"
        estimates[f"{prefix}ci_low"], estimates[f"{prefix}ci_high"] = low, high

    table = pd.DataFrame(
        {
            "time": grid,
            "at_risk": at_risk.astype("int64"),
            "events": counts[EVENT].to_numpy(dtype="int64"),
            "competing": counts[COMPETING].to_numpy(dtype="int64"),
            "censored": counts[CENSORED].to_numpy(dtype="int64"),
            **estimates,
        }
    )
    table["event_free"] = kaplan_meier(time, cause != CENSORED, level).table["survival"].to_numpy()
    return CumulativeIncidence(
        table, order, int(time.size), int((cause == EVENT).sum()), int((cause == COMPETING).sum()), level
    )


def _aalen_johansen(
    time: np.ndarray, cause: np.ndarray, code: int, level: float, at: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """lifelines' incidence of cause ``code`` and its interval at the times ``at`` (times without ties
    between causes, so lifelines does not jitter them)."""
    from lifelines import AalenJohansenFitter

    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        fitter = AalenJohansenFitter(alpha=1 - level).fit(time, cause, event_of_interest=code)
    fitted_times = fitter.cumulative_density_.index.to_numpy(dtype="float64")
    row = np.searchsorted(fitted_times, at, side="right") - 1
    incidence = fitter.cumulative_density_.iloc[:, 0].to_numpy(dtype="float64")[row]
    # lifelines' two interval columns are labelled the wrong way round (upper holds the lower limit).
    bounds = fitter.confidence_interval_.to_numpy(dtype="float64")[row]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanmin(bounds, axis=1), np.nanmax(bounds, axis=1)
    # F = 0 and F = 1 have no log(−log F) interval: it is the point itself.
    low = np.where(incidence <= 0.0, 0.0, np.where(incidence >= 1.0, 1.0, low))
    high = np.where(incidence <= 0.0, 0.0, np.where(incidence >= 1.0, 1.0, high))
    return incidence, low, high
