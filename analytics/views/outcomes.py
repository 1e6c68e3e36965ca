"""The researcher's outcome statistics: per-cycle tables, time to response, subgroups, Table 1, tests.

Every function takes an ``Analysis`` (usually narrowed to a cohort by ``cohort_filter.restrict``)
and returns a tidy table or a small result object that carries its n, its method and its caveats;
nothing here re-implements SPEC §3: change from baseline, responder flags and cumulative response
come from ``patient_cycles``, the cumulative / conditional rates from ``cohort_cycles``, intervals
from ``analytics.statistics.stats`` and the Aalen–Johansen estimate from ``analytics.statistics.survival``. The
definitions this module adds (the within-cycle weekly course, time to first 50% response, response
classes, the statistical models) are listed in ``DEFINITIONS`` for the data dictionary.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pandas as pd
from scipy import stats as sps

from analytics.definitions.clinical import RESPONSE_CLASSES, treatment_weeks
from analytics.definitions.clinical import response_class as classify_response
from analytics.definitions.pipeline import Analysis
from analytics.definitions.registry import Definition
from analytics.definitions.status import OFF_TREATMENT
from analytics.statistics.stats import T_METHOD, WILSON_METHOD, t_interval, wilson_interval
from analytics.statistics.survival import (
    CENSORED,
    COMPETING,
    EVENT,
    CumulativeIncidence,
    cumulative_incidence,
)
from analytics.views.cohort_filter import age_band_order

MEASURES: dict[str, str] = {
    "mhd": "headache days",
    "mmd": "migraine days",
    "amd": "acute-medication days",
}
"""Monthly rates (per 28 recorded days, SPEC §3) whose change from baseline is tabulated per cycle."""

RATE_METHOD = WILSON_METHOD
NOT_RECORDED = "not recorded"
SMALL_N = 10
"""Below this many patients a p-value or interval is flagged as unreliable in its caveats."""
MIN_PATIENTS_PER_MODEL_CYCLE = 10
"""The mixed model uses cycles 1..K where every cycle has at least this many evaluable patients."""


WEEKLY_METHOD = (
    "weekly headache days = headache days / recorded days × 7 per evaluable patient-cycle-week (wholly inside "
    "the cycle, recorded days / 7 ≥ min_completeness); mean over patient-cycles with a " + T_METHOD
)
MOVING_AVERAGE_METHOD = (
    "centred 7-day moving average: headache days / recorded patient-days over days d−3..d+3, × 7 "
    "(pooled over the patients recorded on those days)"
)
WILCOXON_METHOD = (
    "Wilcoxon signed-rank test of mhd_change (cycle − baseline), two-sided; zero differences dropped (scipy)"
)
WILCOXON_CAVEATS = (
    "Completers at this cycle only: patients without an evaluable cycle are not imputed; if dropout depends on "
    "response the estimate is biased.",
    "One test per cycle, not adjusted for multiple comparisons.",
)
"""Caveats of every per-cycle Wilcoxon result (row-specific ones, e.g. small n, are added per cycle)."""
MEDIAN_CI_METHOD = "distribution-free 95% CI of the median from binomial order statistics (coverage ≥ 95%)"
MIXED_MODEL_METHOD = (
    "linear mixed model mhd ~ C(cycle) (cycle 0 = baseline as reference) with a random intercept per patient, "
    "REML (statsmodels MixedLM); Wald 95% CIs and p-values"
)

TIME_TO_RESPONSE_DEFINITION = (
    "Among eligible patients (evaluable baseline with headache days > 0), days from the first injection D1 to the "
    "first of: a 50% response, dated at the end of the first cycle with responder_50 true (end − D1 + 1: the "
    "response is established when that window closes); or stopping without a response, when treatment_state is "
    "discontinued or lapsed (SPEC §5.1), dated at the end of the last cycle window (the end of the last "
    "injection's cover; discontinued_on is not used as the date); otherwise (active or overdue, no response yet) "
    "censored at the end of the last cycle window (as_of for an ongoing cycle). Eligible patients without any "
    "evaluable cycle are included: they can only stop or be censored. Stopping is a competing event, not a "
    "censoring: a patient who stopped can no longer respond. Aalen–Johansen cumulative incidence of response and "
    "of stopping (lifelines) with 95% pointwise intervals from lifelines' delta-method variance on the log(−log F) "
    "scale; the share responded by day t is of all eligible patients, not only of those still treated."
)

DEFINITIONS: list[Definition] = [
    Definition(
        "Cohort filter (Outcomes page, export --filter-file)",
        (
            "Treated patients matching every active criterion: sex, age band, clinic, prior preventives range, "
            "medication overuse, baseline headache days per 28 days range, first-injection date range, minimum "
            "number of cycles started. A missing attribute never matches an active criterion. Cohort statistics "
            "are recomputed for the selected patients with the same as_of and parameters."
        ),
        columns=("cohort_filter (manifest.json)",),
        source="analytics.views.cohort_filter",
    ),
    Definition(
        "Change in migraine days / acute-medication days",
        (
            "mmd (or amd) of cycle k minus that of the baseline, for the patients with a non-empty mhd_change at "
            "cycle k (so the three per-cycle change charts describe the same patients); empty when the diary has no "
            "migraine (acute_medication) column."
        ),
        columns=("mean_change", "ci_low", "ci_high", "n"),
        source="analytics.views.outcomes.change_by_cycle",
    ),
    Definition(
        "Within-cycle weekly headache days",
        (
            "For eligible patients, days since the injection (day_in_cycle; week w = days 7w−6..7w). A patient-"
            "cycle-week counts when it lies wholly inside the cycle and recorded days / 7 ≥ {min_completeness} (the "
            "patient-level rule of the weekly profile); its weekly headache days are headache days / recorded days "
            "× 7, averaged over patient-cycles. Cycles from 5 on are pooled. The 7-day moving average is centred "
            "and pooled over patient-days. The baseline line is the eligible patients' mean baseline mhd / 4."
        ),
        parameters=("min_completeness", "headache_min_hours"),
        source="analytics.views.outcomes.weekly_profile",
    ),
    Definition(
        "Time to first 50% response",
        TIME_TO_RESPONSE_DEFINITION,
        parameters=("cycle_days", "lapse_days"),
        source="analytics.views.outcomes.time_to_response",
    ),
    Definition(
        "Response class at cycle k",
        (
            "The response class of analytics.definitions.clinical.response_class (the Patient page's) "
            "at the chosen cycle k: "
            "≥75% excellent, 50–<75% responder, 30–<50% partial, <30% non-responder (SPEC §3 responder flags); "
            "not evaluable (reached cycle k, no mhd_change); did not reach cycle k (fewer than k sessions)."
        ),
        source="analytics.definitions.clinical.response_class",
    ),
    Definition(
        "Mixed model of monthly headache days",
        (
            "mhd of every evaluable window (baseline and cycles 1..K) of eligible patients, mhd ~ C(cycle) with a "
            "random intercept per patient (REML). Each C(cycle) coefficient is the model-based mean change from "
            "baseline at that cycle; patients with missing cycles still contribute (valid if missing at random). "
            "K is the last cycle before one with fewer than 10 evaluable patients."
        ),
        source="analytics.views.outcomes.mixed_model",
    ),
]


# --- per-cycle tables -----------------------------------------------------------------------


def change_by_cycle(analysis: Analysis) -> pd.DataFrame:
    """Mean change from baseline of mhd, mmd and amd per cycle 1..K, with a 95% t-interval and n.

    The patients at cycle k are those with a non-empty mhd_change (SPEC §3: both windows evaluable,
    baseline mhd > 0) and, for mmd and amd, a non-empty rate in both windows.
    """
    table = analysis.patient_cycles
    k_max = int(table["cycle"].max()) if len(table) else 0
    baseline = table.loc[table["cycle"] == 0].set_index("patient_id")
    rows = table.loc[(table["cycle"] >= 1) & table["mhd_change"].notna()]
    frames = []
    for measure in MEASURES:
        base = baseline[measure].reindex(rows["patient_id"]).to_numpy(dtype="float64")
        value = rows[measure].to_numpy(dtype="float64")
        change = rows["mhd_change"].to_numpy(dtype="float64") if measure == "mhd" else value - base
        frames.append(
            pd.DataFrame(
                {
                    "measure": measure,
                    "cycle": rows["cycle"].to_numpy(),
                    "baseline": base,
                    "value": value,
                    "change": change,
                }
            )
        )
    long = pd.concat(frames, ignore_index=True).dropna(subset=["change"])
    grouped = long.groupby(["measure", "cycle"])
    stats = grouped.agg(
        n=("change", "size"),
        mean_baseline=("baseline", "mean"),
        mean_cycle=("value", "mean"),
        mean_change=("change", "mean"),
        sd_change=("change", "std"),
        median_change=("change", "median"),
    )
    grid = pd.MultiIndex.from_product([list(MEASURES), range(1, k_max + 1)], names=["measure", "cycle"])
    out = stats.reindex(grid).reset_index()
    out["n"] = out["n"].fillna(0).astype("int64")
    out["ci_low"], out["ci_high"] = t_interval(out["mean_change"], out["sd_change"], out["n"])
    out.insert(1, "measure_label", out["measure"].map(MEASURES))
    return out[
        [
            "measure",
            "measure_label",
            "cycle",
            "n",
            "mean_baseline",
            "mean_cycle",
            "mean_change",
            "ci_low",
            "ci_high",
            "sd_change",
            "median_change",
        ]
    ]


def responder_rates(analysis: Analysis) -> pd.DataFrame:
    """Responders at each threshold per cycle 1..K: numerator, evaluable denominator, rate, 95% Wilson CI."""
    table = analysis.patient_cycles
    k_max = int(table["cycle"].max()) if len(table) else 0
    rows = table.loc[table["cycle"] >= 1]
    frames = []
    for threshold in analysis.config.responder_thresholds:
        flag = rows[f"responder_{threshold}"]
        by_cycle = flag.groupby(rows["cycle"])
        frame = pd.DataFrame(
            {
                "threshold": threshold,
                "cycle": np.arange(1, k_max + 1),
                "responders": by_cycle.sum().reindex(range(1, k_max + 1), fill_value=0).to_numpy(dtype="int64"),
                "evaluable": by_cycle.count().reindex(range(1, k_max + 1), fill_value=0).to_numpy(dtype="int64"),
            }
        )
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)  # the thresholds always include 50 (AnalysisConfig)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rate"] = np.where(out["evaluable"] > 0, out["responders"] / out["evaluable"].replace(0, np.nan), np.nan)
    out["ci_low"], out["ci_high"] = wilson_interval(out["responders"], out["evaluable"])
    return out


CUMULATIVE_MEASURES = {
    "completers": (
        "Cumulative 50% response, completers",
        "eligible patients with at least k sessions",
        "cum_responder_50_completers",
        "cum_responder_50_completers_denom",
    ),
    "itt": (
        "Cumulative 50% response, intention-to-treat",
        "eligible patients with time to complete k cycles by as_of (stopped = non-responder)",
        "cum_responder_50_itt",
        "cum_responder_50_itt_denom",
    ),
    "new_responder": (
        "Conditional new-responder rate",
        "eligible patients with an evaluable change at cycle k and no 50% response in cycles 1..k−1",
        "new_responder_50",
        "prior_nonresponder_denom",
    ),
}


def cumulative_response(analysis: Analysis) -> pd.DataFrame:
    """The SPEC §3 cumulative and conditional 50% response rates of ``cohort_cycles`` in long form.

    One row per measure and cycle 1..K with its numerator, denominator (and what the denominator
    counts), rate and 95% Wilson interval.
    """
    cohort = analysis.cohort_cycles
    cohort = cohort.loc[cohort["cycle"] >= 1]
    frames = []
    for measure, (label, denominator_label, prefix, denominator) in CUMULATIVE_MEASURES.items():
        numerator = cohort[f"{prefix}_n"].to_numpy(dtype="float64", na_value=np.nan)
        denom = cohort[denominator].to_numpy(dtype="float64", na_value=np.nan)
        if f"{prefix}_ci_low" in cohort:
            low = cohort[f"{prefix}_ci_low"].to_numpy(dtype="float64", na_value=np.nan)
            high = cohort[f"{prefix}_ci_high"].to_numpy(dtype="float64", na_value=np.nan)
        else:
            low, high = wilson_interval(numerator, denom)
        frames.append(
            pd.DataFrame(
                {
                    "measure": measure,
                    "label": label,
                    "denominator_counts": denominator_label,
                    "cycle": cohort["cycle"].to_numpy(dtype="int64"),
                    "numerator": numerator,
                    "denominator": denom,
                    "rate": cohort[f"{prefix}_rate"].to_numpy(dtype="float64", na_value=np.nan),
                    "ci_low": low,
                    "ci_high": high,
                }
            )
        )
    columns = [
        "measure",
        "label",
        "denominator_counts",
        "cycle",
        "numerator",
        "denominator",
        "rate",
        "ci_low",
        "ci_high",
    ]
    out = pd.concat(frames, ignore_index=True)
    out[["numerator", "denominator"]] = out[["numerator", "denominator"]].fillna(0).astype("int64")
    return out[columns]


# --- within-cycle course ----------------------------------------------------------------------


@dataclass(frozen=True)
class WithinCycleProfile:
    """Weekly headache days by week since injection, the daily 7-day moving average and the baseline."""

    weekly: pd.DataFrame
    """cycle_group, week, n (patient-cycles), mean_headache_days, sd, ci_low, ci_high."""
    daily: pd.DataFrame
    """cycle_group, day_in_cycle, recorded (patient-days), headache_days, moving_average, window_recorded."""
    baseline_mean: float
    """Mean weekly headache days in the baseline window (mean baseline mhd / 4) of the same patients."""
    baseline_n: int
    method: str = WEEKLY_METHOD
    moving_average_method: str = MOVING_AVERAGE_METHOD


def cycle_group_labels(pooled_from: int) -> list[str]:
    return [f"Cycle {k}" for k in range(1, pooled_from)] + [f"Cycle {pooled_from}+"]


@dataclass(frozen=True)
class TreatedDays:
    """Every recorded diary day inside a treatment cycle (cycle ≥ 1), as integer arrays.

    Built once per analysis (``treated_days``) so that the within-cycle course of any cohort is
    counted without touching the millions of diary rows' text patient_ids again.
    """

    patient_ids: pd.Index
    """The patients, by code."""
    patient: np.ndarray
    """Each day's patient code (position in ``patient_ids``)."""
    cycle: np.ndarray
    day: np.ndarray
    """day_in_cycle (1 = injection day)."""
    headache: np.ndarray
    """1 for a headache day (headache_hours ≥ headache_min_hours), else 0."""


def treated_days(analysis: Analysis) -> TreatedDays:
    """The recorded diary days in cycles ≥ 1 of ``analysis`` (all its patients) as a ``TreatedDays``."""
    days = analysis.day_columns(["patient_id", "cycle", "day_in_cycle", "headache_day"])  # a stored one: from disk
    return treated_days_from(
        days["patient_id"].array,
        days["cycle"].to_numpy(dtype="float64", na_value=np.nan),
        days["day_in_cycle"].to_numpy(dtype="float64", na_value=0),
        days["headache_day"].to_numpy(dtype=bool),
    )


def treated_days_from(
    patient: np.ndarray | pd.api.extensions.ExtensionArray,
    cycle: np.ndarray,
    day: np.ndarray,
    headache: np.ndarray,
    labels: np.ndarray | None = None,
) -> TreatedDays:
    """``treated_days`` of the per-patient-day rows given as arrays, in the frame's (line) order: each row's patient
    (its patient_id, or its position in ``labels``), cycle (NaN: none), day_in_cycle (0: none) and headache_day.

    The patients are coded in the order they first appear among the treated days."""
    in_cycle = cycle >= 1
    codes, uniques = pd.factorize(patient[in_cycle])  # type: ignore[arg-type]  # pandas-stubs: ExtensionArray too
    patient_ids = uniques if labels is None else labels[uniques]
    return TreatedDays(
        patient_ids=pd.Index(np.asarray(patient_ids, dtype=object), dtype=object),
        patient=codes.astype("int64"),
        cycle=cycle[in_cycle].astype("int64"),
        day=day[in_cycle].astype("int64"),
        headache=headache[in_cycle].astype("int64"),
    )


RESULT_PARTS: dict[str, tuple[str, ...]] = {
    "statistics": ("change", "responders", "cumulative", "wilcoxon", "cohort_cycles"),
    "weekly": ("weekly",),
    "time_to_response": ("time_to_response",),
}
"""``cohort_results`` in the parts the Outcomes page's tabs read, each computed (and stored) on its own: a page
shows its open tab without waiting for the others (at 100,000 patients the within-cycle course and the time to
response take seconds each, the per-cycle statistics a fraction of that)."""


def cohort_results(cohort: Analysis, days: TreatedDays | None, part: str | None = None) -> dict[str, object]:
    """The Outcomes page's statistics of a cohort (an analysis, or its restriction to the cohort's patients):
    change, responders, cumulative response, the within-cycle course (counted from ``days``, the whole
    dataset's ``treated_days``, or the cohort's own days when None), time to response, the Wilcoxon tests and
    the cohort table; with ``part``, only that part's (``RESULT_PARTS``)."""
    compute: dict[str, Callable[[], object]] = {
        "change": lambda: change_by_cycle(cohort),
        "responders": lambda: responder_rates(cohort),
        "cumulative": lambda: cumulative_response(cohort),
        "wilcoxon": lambda: results_frame(wilcoxon_by_cycle(cohort), omit_caveats=WILCOXON_CAVEATS),
        "cohort_cycles": lambda: cohort.cohort_cycles,
        "weekly": lambda: weekly_profile(cohort, days=days),
        "time_to_response": lambda: time_to_response(cohort),
    }
    names = RESULT_PARTS[part] if part is not None else [name for names in RESULT_PARTS.values() for name in names]
    return {name: compute[name]() for name in names}


def _eligible_treated_days(
    analysis: Analysis, days: TreatedDays | None = None
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Eligible patients (patient_id, mhd at baseline) and their treated days as arrays: patient (index
    into the first frame), cycle, day (day_in_cycle) and headache (0/1).

    ``days`` may be the ``treated_days`` of a larger analysis that holds this one's patients (the
    whole dataset, when this analysis is a cohort of it); then ``analysis.patient_days`` is not read.
    """
    table = analysis.patient_cycles
    eligible = table.loc[(table["cycle"] == 0) & table["eligible"], ["patient_id", "mhd"]].reset_index(drop=True)
    days = treated_days(analysis) if days is None else days
    # Integer codes all the way: a patient's position among the eligible, or -1 for everyone else.
    position = np.full(len(days.patient_ids) + 1, -1, dtype="int64")
    found = days.patient_ids.get_indexer(pd.Index(eligible["patient_id"].to_numpy(dtype=object)))
    position[found[found >= 0]] = np.flatnonzero(found >= 0)
    patient = position[days.patient]
    keep = patient >= 0
    return eligible, {
        "patient": patient[keep],
        "cycle": days.cycle[keep],
        "day": days.day[keep],
        "headache": days.headache[keep],
    }


def patient_weeks(analysis: Analysis) -> pd.DataFrame:
    """Eligible patients' evaluable treatment weeks: patient_id, cycle, week, recorded_days,
    headache_days, headache_days_per_7.

    The rows of ``clinical.weekly_profile`` (computed by ``clinical.treatment_weeks``: week w of cycle k
    covers days 7(w−1)+1..7w since the injection; it is evaluable when it lies wholly inside the cycle
    window and recorded days / 7 ≥ min_completeness; its rate is headache days / recorded days × 7) that
    have a rate, for the eligible patients. Counted from the recorded diary days as integer arrays, so that
    a cohort of 10,000 patients is summarised in a fraction of a second.
    """
    return _patient_weeks(analysis, *_eligible_treated_days(analysis)).reset_index(drop=True)


def _patient_weeks(analysis: Analysis, eligible: pd.DataFrame, days: dict[str, np.ndarray]) -> pd.DataFrame:
    table = analysis.patient_cycles
    windows = table.loc[table["cycle"] >= 1, ["patient_id", "cycle", "window_days"]]
    patient = pd.Index(eligible["patient_id"]).get_indexer(windows["patient_id"])
    windows, patient = windows[patient >= 0], patient[patient >= 0]
    cycle = windows["cycle"].to_numpy(dtype="int64")
    n_cycles = int(max(cycle.max(initial=0), days["cycle"].max(initial=0))) + 1
    # Each day's window (its row in ``windows``, -1 for none) looked up in a table of every (patient, cycle) key:
    # an array index, not a hash of every treated day's key (30 M of them at 100,000 patients).
    lookup = np.full(len(eligible) * n_cycles, -1, dtype="int64")
    lookup[patient * n_cycles + cycle] = np.arange(len(windows))
    window = lookup[days["patient"] * n_cycles + days["cycle"]]
    recorded = np.ones(len(window), dtype=bool)  # the treated days are the recorded ones
    weeks = treatment_weeks(windows, window, days["day"], recorded, days["headache"].astype(bool), analysis.config)
    return weeks.loc[
        weeks["headache_days_per_7"].notna(),
        ["patient_id", "cycle", "week", "recorded_days", "headache_days", "headache_days_per_7"],
    ]


def weekly_profile(analysis: Analysis, pooled_from: int = 5, days: TreatedDays | None = None) -> WithinCycleProfile:
    """The within-cycle time course (onset and wearing-off) of the eligible patients.

    Weekly means over ``patient_weeks`` (cycles ``pooled_from`` and later pooled into one group,
    n = patient-cycles) and the pooled, centred 7-day moving average of the diary days by
    day_in_cycle (day 1 = injection day). See ``DEFINITIONS``. ``days``: the ``treated_days`` of
    the whole dataset's analysis, computed once, for a cohort restricted without its diary days.
    """
    config = analysis.config
    labels = np.array(cycle_group_labels(pooled_from))
    eligible, eligible_days = _eligible_treated_days(analysis, days)
    weeks = _patient_weeks(analysis, eligible, eligible_days)
    grouped = weeks.assign(group=np.minimum(weeks["cycle"], pooled_from)).groupby(["group", "week"])
    weekly = grouped["headache_days_per_7"].agg(n="size", mean_headache_days="mean", sd="std").reset_index()
    weekly["ci_low"], weekly["ci_high"] = t_interval(weekly["mean_headache_days"], weekly["sd"], weekly["n"])
    weekly.insert(0, "cycle_group", labels[weekly.pop("group").to_numpy(dtype="int64") - 1])

    span = config.cycle_days
    group = np.minimum(eligible_days["cycle"], pooled_from)
    flat = (group - 1) * span + (eligible_days["day"] - 1)
    size = pooled_from * span
    recorded = np.bincount(flat, minlength=size)[:size].reshape(pooled_from, span)
    hits = np.bincount(flat, weights=eligible_days["headache"], minlength=size)[:size].reshape(pooled_from, span)
    kernel = np.ones(7)
    window_recorded = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="same"), 1, recorded)
    window_hits = np.apply_along_axis(lambda r: np.convolve(r, kernel, mode="same"), 1, hits)
    with np.errstate(divide="ignore", invalid="ignore"):
        moving = np.where(window_recorded > 0, window_hits / window_recorded * 7, np.nan)
    # Only full 7-day windows: the first and last 3 days of a cycle have no centred average.
    moving[:, :3] = np.nan
    moving[:, span - 3 :] = np.nan
    daily = pd.DataFrame(
        {
            "cycle_group": np.repeat(labels, span),
            "day_in_cycle": np.tile(np.arange(1, span + 1), pooled_from),
            "recorded": recorded.ravel().astype("int64"),
            "headache_days": hits.ravel().astype("int64"),
            "moving_average": moving.ravel(),
            "window_recorded": window_recorded.ravel().astype("int64"),
        }
    )
    daily = daily.loc[daily["cycle_group"].isin(weekly["cycle_group"].unique())].reset_index(drop=True)
    baseline = eligible["mhd"].astype("float64") / 4
    return WithinCycleProfile(
        weekly, daily, float(baseline.mean()) if len(baseline) else float("nan"), int(baseline.notna().sum())
    )


# --- time to first response -------------------------------------------------------------------


@dataclass(frozen=True)
class TimeToResponse:
    """Time to first 50% response with stopping as a competing event: per-patient data and the curves."""

    patients: pd.DataFrame
    """patient_id, duration_days, outcome (responded / stopped / censored), cycle (the response cycle, or the
    last cycle), treatment_state."""
    curve: CumulativeIncidence
    """Aalen–Johansen cumulative incidence of response (incidence) and of stopping (competing_incidence)."""
    no_evaluable_cycle: int
    """Eligible patients without any cycle with a responder_50 value (they can only stop or be censored)."""
    definition: str = TIME_TO_RESPONSE_DEFINITION

    def cumulative(self) -> pd.DataFrame:
        """The curves per distinct day: at risk, responses, stops, censored, share responded and share
        stopped (each of all eligible patients) with 95% CIs, and the share still treated without a response."""
        table = self.curve.table
        return pd.DataFrame(
            {
                "time": table["time"],
                "at_risk": table["at_risk"],
                "responses": table["events"],
                "stops": table["competing"],
                "censored": table["censored"],
                "responded": table["incidence"],
                "ci_low": table["ci_low"],
                "ci_high": table["ci_high"],
                "stopped": table["competing_incidence"],
                "stopped_ci_low": table["competing_ci_low"],
                "stopped_ci_high": table["competing_ci_high"],
                "neither": table["event_free"],
            }
        )

    def at_risk(self, step_days: int) -> pd.DataFrame:
        """Number at risk and the shares responded and stopped (with CIs) at 0, step, 2·step, … up to the
        last observed time."""
        last = float(self.curve.durations[-1]) if self.curve.n else 0.0
        table = self.curve.at(np.arange(0, last + 1, step_days, dtype="float64"))
        return pd.DataFrame(
            {
                "day": table["time"].astype("int64"),
                "at_risk": table["at_risk"],
                "responded": table["incidence"],
                "ci_low": table["ci_low"],
                "ci_high": table["ci_high"],
                "stopped": table["competing_incidence"],
                "stopped_ci_low": table["competing_ci_low"],
                "stopped_ci_high": table["competing_ci_high"],
            }
        )


def time_to_response(analysis: Analysis) -> TimeToResponse:
    """Days from the first injection to the first 50% response, with stopping treatment as a competing
    event (see ``TIME_TO_RESPONSE_DEFINITION``): the Aalen–Johansen cumulative incidences."""
    table = analysis.patient_cycles
    eligible_ids = table.loc[(table["cycle"] == 0) & table["eligible"], "patient_id"]
    cycles = table.loc[
        (table["cycle"] >= 1) & table["patient_id"].isin(eligible_ids),
        ["patient_id", "cycle", "start_date", "end_date", "responder_50"],
    ].sort_values(["patient_id", "cycle"])
    first_session = cycles.drop_duplicates("patient_id", keep="first").set_index("patient_id")["start_date"]
    last = cycles.drop_duplicates("patient_id", keep="last").set_index("patient_id")
    response = (
        cycles.loc[cycles["responder_50"].eq(True).fillna(False).to_numpy(dtype=bool)]
        .drop_duplicates("patient_id", keep="first")
        .set_index("patient_id")
    )
    valued = cycles.loc[cycles["responder_50"].notna(), "patient_id"].unique()

    ids = last.index
    state = analysis.patient_status.set_index("patient_id")["treatment_state"].reindex(ids)
    responded = ids.isin(response.index)
    stopped = ~responded & state.isin(OFF_TREATMENT).to_numpy(dtype=bool)
    # The response cycle for responders, the last cycle for everyone else.
    chosen = response.reindex(ids).where(pd.Series(responded, index=ids), last, axis=0)
    duration = (pd.to_datetime(chosen["end_date"]) - pd.to_datetime(first_session.reindex(ids))).dt.days + 1
    cause = np.select([responded, stopped], [EVENT, COMPETING], default=CENSORED)
    patients = pd.DataFrame(
        {
            "patient_id": ids.astype("string"),
            "duration_days": duration.to_numpy(dtype="int64"),
            "outcome": np.select([responded, stopped], ["responded", "stopped"], default="censored"),
            "cycle": chosen["cycle"].to_numpy(dtype="int64"),
            "treatment_state": state.astype("string").to_numpy(),
        }
    )
    curve = cumulative_incidence(patients["duration_days"], cause)
    return TimeToResponse(patients, curve, int(len(ids) - len(valued)))


# --- subgroups and Table 1 --------------------------------------------------------------------


def _prior_band(values: pd.Series) -> pd.Series:
    bands = pd.cut(values.astype("float64"), [-np.inf, 2, 4, np.inf], labels=["0–2", "3–4", "≥5"])
    return bands.astype("string")


def _baseline_band(values: pd.Series) -> pd.Series:
    bands = pd.cut(
        values.astype("float64"), [-np.inf, 15, 20, 25, np.inf], right=False, labels=["<15", "15–<20", "20–<25", "≥25"]
    )
    return bands.astype("string")


def _yes_no(values: pd.Series) -> pd.Series:
    return values.map({True: "yes", False: "no"}).astype("string")


def subgroup_levels(attributes: pd.DataFrame) -> dict[str, pd.Series]:
    """Each subgroup variable as a Series of level labels over ``attributes`` (missing: not recorded)."""
    first_year = attributes["first_injection"].dt.year.astype("Int64").astype("string")
    variables = {
        "Sex": attributes["sex"],
        "Age band": attributes["age_band"],
        "Clinic": attributes["clinic"],
        "Prior preventives": _prior_band(attributes["prior_preventives"]),
        "Medication overuse": _yes_no(attributes["medication_overuse"]),
        "Baseline headache days / 28 d": _baseline_band(attributes["baseline_mhd"]),
        "First injection year": first_year,
    }
    return {name: values.astype("string").fillna(NOT_RECORDED) for name, values in variables.items()}


def _level_order(variable: str, levels: pd.Index) -> list[str]:
    named = [lv for lv in levels if lv != NOT_RECORDED]
    fixed = {
        "Prior preventives": ["0–2", "3–4", "≥5"],
        "Medication overuse": ["yes", "no"],
        "Baseline headache days / 28 d": ["<15", "15–<20", "20–<25", "≥25"],
    }
    if variable in fixed:
        named = [lv for lv in fixed[variable] if lv in named]
    elif variable == "Age band":
        named = age_band_order(named)
    else:
        named = sorted(named)
    return named + ([NOT_RECORDED] if NOT_RECORDED in levels else [])


def subgroup_response(analysis: Analysis, attributes: pd.DataFrame, cycle: int) -> pd.DataFrame:
    """50% response at ``cycle`` by subgroup: responders / evaluable patients, rate, 95% Wilson CI.

    The denominator is the patients with a responder_50 value at that cycle (SPEC's n_evaluable);
    the first row is the whole cohort. Levels without any evaluable patient are left out.
    """
    table = analysis.patient_cycles
    at_cycle = table.loc[(table["cycle"] == cycle) & table["responder_50"].notna(), ["patient_id", "responder_50"]]
    attrs = attributes.set_index("patient_id")
    levels = {name: values.set_axis(attrs.index) for name, values in subgroup_levels(attributes).items()}
    responder = at_cycle.set_index("patient_id")["responder_50"].astype(bool)
    frames = [
        pd.DataFrame(
            {
                "subgroup": ["Overall"],
                "level": ["all evaluable patients"],
                "responders": [int(responder.sum())],
                "evaluable": [len(responder)],
            }
        )
    ]
    for name, values in levels.items():
        level = values.reindex(responder.index)
        counts = responder.groupby(level).agg(["sum", "size"])
        order = _level_order(name, counts.index)
        counts = counts.reindex(order)
        frames.append(
            pd.DataFrame(
                {
                    "subgroup": name,
                    "level": order,
                    "responders": counts["sum"].to_numpy(dtype="int64"),
                    "evaluable": counts["size"].to_numpy(dtype="int64"),
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    out.insert(0, "cycle", cycle)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["rate"] = out["responders"] / out["evaluable"].replace(0, np.nan)
    out["ci_low"], out["ci_high"] = wilson_interval(out["responders"], out["evaluable"])
    return out


def response_class(analysis: Analysis, attributes: pd.DataFrame, cycle: int) -> pd.Series:
    """Each patient's response class at ``cycle`` (index: patient_id, values: ``RESPONSE_CLASSES``).

    The one definition of ``analytics.definitions.clinical.response_class``, which the Patient page uses too.
    """
    classes = classify_response(analysis.patient_cycles, cycle).set_index("patient_id")["response_class"]
    ids = pd.Index(attributes["patient_id"])
    return pd.Series(classes.reindex(ids).fillna(RESPONSE_CLASSES[-1]).to_numpy(), index=ids, name="response_class")


TABLE1_CATEGORICAL = {
    "sex": "Sex",
    "age_band": "Age band",
    "clinic": "Clinic",
    "medication_overuse": "Medication overuse",
}
TABLE1_CONTINUOUS = {
    "prior_preventives": "Prior preventives (n)",
    "baseline_mhd": "Baseline headache days / 28 d",
    "baseline_mmd": "Baseline migraine days / 28 d",
    "baseline_amd": "Baseline acute-medication days / 28 d",
    "baseline_completeness_pct": "Baseline diary completeness (%)",
}


@dataclass(frozen=True)
class BaselineTable:
    """Table 1: baseline characteristics by response class at one cycle.

    ``long`` has one row per variable, level and group with n, denominator and percentage
    (categorical: % of the group's patients with a recorded value) or mean, SD, median, quartiles
    (continuous), plus the missing count; ``groups`` is each column's n.
    """

    cycle: int
    long: pd.DataFrame
    groups: pd.Series

    def formatted(self) -> pd.DataFrame:
        """The table as a researcher reads it: rows of 'n (%)', 'mean (SD)', 'median [IQR]', 'missing'."""

        def cell(row: pd.Series) -> str:
            if row["kind"] == "categorical":
                if row["statistic"] == "missing":
                    return f"{int(row['n'])}"
                return f"{int(row['n'])} ({row['pct']:.1f}%)" if row["denominator"] else "—"
            if row["statistic"] == "missing":
                return f"{int(row['n'])}"
            if row["n"] == 0:
                return "—"
            if row["statistic"] == "mean (SD)":
                sd = "—" if pd.isna(row["sd"]) else f"{row['sd']:.1f}"
                return f"{row['mean']:.1f} ({sd})"
            return f"{row['median']:.1f} [{row['q1']:.1f}, {row['q3']:.1f}]"

        long = self.long.assign(cell=self.long.apply(cell, axis=1))
        wide = long.pivot_table(
            index=["order", "variable", "level"], columns="group", values="cell", aggfunc="first", sort=False
        )
        wide = wide.sort_index(level="order").reset_index().drop(columns="order")
        headers = {g: f"{g} (n = {int(n)})" for g, n in self.groups.items()}
        wide = wide[["variable", "level", *self.groups.index]].rename(columns=headers)
        wide.columns.name = None
        return wide.fillna("—")


def baseline_table(analysis: Analysis, attributes: pd.DataFrame, cycle: int) -> BaselineTable:
    """Table 1 of the cohort by response class at ``cycle`` (see ``RESPONSE_CLASSES``), with an Overall column."""
    classes = response_class(analysis, attributes, cycle).to_numpy()
    data = attributes.assign(
        baseline_completeness_pct=attributes["baseline_completeness"] * 100,
        medication_overuse=_yes_no(attributes["medication_overuse"]),
    )
    groups_present = [c for c in RESPONSE_CLASSES if (classes == c).any()]
    stacked = pd.concat([data.assign(group="Overall"), data.assign(group=classes)], ignore_index=True)
    group_order = ["Overall", *groups_present]
    group_sizes = stacked.groupby("group").size().reindex(group_order, fill_value=0)
    frames = []
    order = 0
    for column, label in TABLE1_CATEGORICAL.items():
        values: pd.Series = stacked[column].astype("string")
        counts = pd.crosstab(values.fillna(NOT_RECORDED), stacked["group"]).reindex(columns=group_order, fill_value=0)
        missing = counts.loc[NOT_RECORDED] if NOT_RECORDED in counts.index else pd.Series(0, index=group_order)
        counts = counts.drop(index=NOT_RECORDED, errors="ignore")
        counts = counts.reindex(_level_order(label, counts.index))
        recorded = counts.sum(axis=0)
        for level, row in counts.iterrows():
            order += 1
            with np.errstate(divide="ignore", invalid="ignore"):
                pct = np.where(recorded > 0, 100 * row / recorded.replace(0, np.nan), np.nan)
            frames.append(
                pd.DataFrame(
                    {
                        "order": order,
                        "variable": label,
                        "kind": "categorical",
                        "level": level,
                        "statistic": "n (%)",
                        "group": group_order,
                        "n": row.to_numpy(),
                        "denominator": recorded.to_numpy(),
                        "pct": pct,
                    }
                )
            )
        order += 1
        frames.append(
            pd.DataFrame(
                {
                    "order": order,
                    "variable": label,
                    "kind": "categorical",
                    "level": "missing",
                    "statistic": "missing",
                    "group": group_order,
                    "n": missing.to_numpy(),
                    "denominator": group_sizes.to_numpy(),
                    "pct": np.nan,
                }
            )
        )
    for column, label in TABLE1_CONTINUOUS.items():
        values = stacked[column].astype("float64")
        by_group = values.groupby(stacked["group"])
        summary = by_group.agg(n="count", mean="mean", sd="std", median="median").reindex(group_order)
        summary["q1"] = by_group.quantile(0.25).reindex(group_order)
        summary["q3"] = by_group.quantile(0.75).reindex(group_order)
        summary["n"] = summary["n"].fillna(0)
        missing = group_sizes - summary["n"]
        for statistic in ("mean (SD)", "median [IQR]"):
            order += 1
            frames.append(
                pd.DataFrame(
                    {
                        "order": order,
                        "variable": label,
                        "kind": "continuous",
                        "level": statistic,
                        "statistic": statistic,
                        "group": group_order,
                        "n": summary["n"].to_numpy(),
                        "denominator": group_sizes.to_numpy(),
                        "mean": summary["mean"].to_numpy(),
                        "sd": summary["sd"].to_numpy(),
                        "median": summary["median"].to_numpy(),
                        "q1": summary["q1"].to_numpy(),
                        "q3": summary["q3"].to_numpy(),
                    }
                )
            )
        order += 1
        frames.append(
            pd.DataFrame(
                {
                    "order": order,
                    "variable": label,
                    "kind": "continuous",
                    "level": "missing",
                    "statistic": "missing",
                    "group": group_order,
                    "n": missing.to_numpy(),
                    "denominator": group_sizes.to_numpy(),
                }
            )
        )
    long = pd.concat(frames, ignore_index=True)
    long["n"] = long["n"].astype("int64")
    long["denominator"] = long["denominator"].astype("int64")
    return BaselineTable(cycle, long, group_sizes)


# --- statistics panel -------------------------------------------------------------------------


@dataclass(frozen=True)
class StatResult:
    """One statistical result with what a reader needs beside it: method, n, estimate, CI, p, caveats."""

    name: str
    method: str
    n: int
    estimate: float
    estimate_label: str
    ci_low: float
    ci_high: float
    ci_method: str
    statistic: float
    p_value: float
    caveats: tuple[str, ...] = ()
    cycle: int | None = None


def median_ci(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of the median: order statistics x(j), x(n−j+1) with the largest j such
    that P(Binomial(n, ½) ≤ j − 1) ≤ (1 − level)/2; NaN when n is too small (n < 6 at 95%)."""
    x = np.sort(np.asarray(values, dtype="float64"))
    n = x.size
    if n == 0:
        return float("nan"), float("nan")
    j = np.arange(1, n // 2 + 1)
    ok = sps.binom.cdf(j - 1, n, 0.5) <= (1 - level) / 2
    if not ok.any():
        return float("nan"), float("nan")
    k = int(j[ok].max())
    return float(x[k - 1]), float(x[n - k])


def wilcoxon_by_cycle(analysis: Analysis) -> list[StatResult]:
    """Wilcoxon signed-rank test of mhd_change per cycle 1..K (patients with a non-empty change)."""
    table = analysis.patient_cycles
    rows = table.loc[(table["cycle"] >= 1) & table["mhd_change"].notna(), ["cycle", "mhd_change"]]
    results = []
    # pandas-stubs types a group key as any scalar; here it is the integer cycle number.
    for cycle, change in cast("Iterable[tuple[int, pd.Series]]", rows.groupby("cycle")["mhd_change"]):
        x = change.to_numpy(dtype="float64")
        zeros = int((np.abs(x) < analysis.config.tolerance).sum())
        caveats = list(WILCOXON_CAVEATS)
        if x.size < SMALL_N:
            caveats.insert(0, f"Small n ({x.size}): the p-value is unreliable.")
        if zeros:
            caveats.append(f"{zeros} zero difference(s) dropped (Wilcoxon's zero_method).")
        statistic = p_value = float("nan")
        if x.size - zeros >= 1:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                test = sps.wilcoxon(x, zero_method="wilcox", alternative="two-sided")
            statistic, p_value = float(test.statistic), float(test.pvalue)
        low, high = median_ci(x)
        results.append(
            StatResult(
                name=f"Cycle {cycle} vs baseline",
                method=WILCOXON_METHOD,
                n=int(x.size),
                estimate=float(np.median(x)),
                estimate_label="median change in headache days / 28 d",
                ci_low=low,
                ci_high=high,
                ci_method=MEDIAN_CI_METHOD,
                statistic=statistic,
                p_value=p_value,
                caveats=tuple(caveats),
                cycle=int(cycle),
            )
        )
    return results


def results_frame(results: list[StatResult], omit_caveats: tuple[str, ...] = ()) -> pd.DataFrame:
    """Statistical results as a table (one row each), caveats joined (less those in ``omit_caveats``,
    which a caller prints once beside the table)."""
    columns = [
        "name",
        "cycle",
        "n",
        "estimate_label",
        "estimate",
        "ci_low",
        "ci_high",
        "statistic",
        "p_value",
        "method",
        "ci_method",
        "caveats",
    ]
    if not results:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame([r.__dict__ for r in results])
    frame["caveats"] = frame["caveats"].map(lambda cs: " ".join(c for c in cs if c not in omit_caveats))
    return frame[columns]


@dataclass(frozen=True)
class MixedModelResult:
    """The mixed model's fixed effects per cycle (change from baseline) and its variance components."""

    method: str
    n_patients: int
    n_observations: int
    cycles: tuple[int, ...]
    coefficients: pd.DataFrame
    """term, cycle, n_patients (with an evaluable window at that cycle), estimate, ci_low, ci_high, p_value."""
    baseline_mean: float
    patient_variance: float
    residual_variance: float
    converged: bool
    caveats: tuple[str, ...] = field(default=())

    @property
    def icc(self) -> float:
        """Share of the variance between patients (intra-class correlation)."""
        total = self.patient_variance + self.residual_variance
        return self.patient_variance / total if total > 0 else float("nan")


def model_frame(analysis: Analysis, min_patients: int = MIN_PATIENTS_PER_MODEL_CYCLE) -> pd.DataFrame:
    """The mixed model's data: patient_id, cycle, mhd of eligible patients' evaluable windows, cycles 0..K."""
    table = analysis.patient_cycles
    rows = table.loc[table["eligible"] & table["evaluable"] & table["mhd"].notna(), ["patient_id", "cycle", "mhd"]]
    counts = rows.loc[rows["cycle"] >= 1].groupby("cycle").size()
    too_few = counts.index[counts < min_patients]
    k_max = int(too_few.min()) - 1 if len(too_few) else (int(counts.index.max()) if len(counts) else 0)
    rows = rows.loc[rows["cycle"] <= k_max]
    return rows.assign(patient_id=rows["patient_id"].astype(str), mhd=rows["mhd"].astype("float64")).reset_index(
        drop=True
    )


def mixed_model(analysis: Analysis, min_patients: int = MIN_PATIENTS_PER_MODEL_CYCLE) -> MixedModelResult | None:
    """mhd ~ C(cycle) with a random intercept per patient (REML); None when there is nothing to fit.

    Cycle is categorical (cycle 0, the baseline, is the reference) so no shape is imposed on the
    course over cycles: response builds up over cycles 1–3 and need not be linear.
    """
    import statsmodels.formula.api as smf
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    data = model_frame(analysis, min_patients)
    cycles = tuple(sorted(int(c) for c in data["cycle"].unique()))
    n_patients = int(data["patient_id"].nunique())
    if len(cycles) < 2 or n_patients < 2:
        return None
    caveats = [
        "Assumes missing cycles are missing at random given the observed values; dropout because of poor "
        "response (or because of response) biases the estimates.",
        "Assumes normally distributed random intercepts and residuals; headache-day rates are bounded (0–28) "
        "and often skewed.",
        "Estimates are changes in the cohort's mean headache days per 28 days versus baseline, adjusted for "
        "between-patient differences; p-values are not adjusted for multiple comparisons.",
    ]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = smf.mixedlm("mhd ~ C(cycle)", data, groups=data["patient_id"])
        fit = model.fit(reml=True)
    converged = bool(getattr(fit, "converged", True)) and not any(
        issubclass(w.category, ConvergenceWarning) for w in caught
    )
    if not converged:
        caveats.insert(0, "The fit did not converge cleanly; treat the estimates with caution.")
    if n_patients < 3 * SMALL_N:
        caveats.insert(0, f"Small n ({n_patients} patients): estimates and intervals are imprecise.")
    ci = fit.conf_int()
    per_cycle = data.groupby("cycle")["patient_id"].nunique()
    terms = [f"C(cycle)[T.{c}]" for c in cycles[1:]]
    coefficients = pd.DataFrame(
        {
            "term": terms,
            "cycle": list(cycles[1:]),
            "n_patients": per_cycle.reindex(list(cycles[1:])).to_numpy(dtype="int64"),
            "estimate": fit.fe_params.reindex(terms).to_numpy(dtype="float64"),
            "ci_low": ci[0].reindex(terms).to_numpy(dtype="float64"),
            "ci_high": ci[1].reindex(terms).to_numpy(dtype="float64"),
            "p_value": fit.pvalues.reindex(terms).to_numpy(dtype="float64"),
        }
    )
    patient_variance = float(np.asarray(fit.cov_re)[0, 0])
    if patient_variance < 1e-8:
        caveats.append("The between-patient variance is estimated at zero (boundary).")
    return MixedModelResult(
        method=MIXED_MODEL_METHOD,
        n_patients=n_patients,
        n_observations=len(data),
        cycles=cycles,
        coefficients=coefficients,
        baseline_mean=float(fit.fe_params["Intercept"]),
        patient_variance=patient_variance,
        residual_variance=float(fit.scale),
        converged=converged,
        caveats=tuple(caveats),
    )
