"""Clinic-level measures for the clinic manager: volumes, re-injection timing, retention, outcomes, safety, worklists.

Everything the clinic page shows is computed here from the loaded dataset and the analysis, for one
``ClinicFilter`` (clinic, injector, period), by vectorised group-bys over the session register and
the per-patient roster; ``clinic_view`` returns it all as one ``ClinicView`` so that the page can cache
it in a single call. Outcome rates reuse ``analytics.definitions.cohort.cohort_cycles`` on the filtered
patient_cycles rather than restating SPEC §3, persistence uses ``analytics.statistics.survival``, and who is active,
overdue, lapsed or discontinued and who has a stopping rule met are SPEC §5's columns of
``analysis.patient_status`` (the same values the Patient page shows), never recomputed here; the
safety view sets SPEC §5.4's ``analysis.safety`` beside published trial figures. Every rate
carries its numerator, denominator and a named interval; ``DEFINITIONS`` states each definition in
words for the data dictionary, and ``FILTER_NOTES`` (shown on the page) says which filter applies to
what: the clinic always, the injector per session for session-level figures and per first session
for patient-level ones, the period to sessions dated in it or to the patients who started in it;
current status (active patients, current-cycle diary completeness, worklists) is as of ``as_of``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from scipy import stats as sps

from analytics.definitions.clinical import stop_rules
from analytics.definitions.cohort import cohort_cycles
from analytics.definitions.config import TOLERANCE, AnalysisConfig
from analytics.definitions.pipeline import Analysis
from analytics.definitions.registry import Definition
from analytics.ingest.load import Dataset
from analytics.ingest.schemas import EVENTS
from analytics.output import cells
from analytics.statistics.stats import WILSON_METHOD, Proportion, proportion, wilson_interval
from analytics.statistics.survival import KaplanMeier, at_risk_table, kaplan_meier
from analytics.views.dictionary import parameter_values

NOT_RECORDED = "(not recorded)"

REPOSE_GAP_DAYS = 91
"""REPOSE counted gaps longer than 13 weeks (91 days) between sessions."""
REPOSE_GAP_SHARE = 0.79
"""REPOSE: 79% of patients had at least one gap longer than 13 weeks."""
RECENT_AE_DAYS = 30
FUNNEL_CYCLE = 2
"""Units are compared on 50% response at cycle 2, the NICE TA260 review point."""
FUNNEL_LEVELS = (0.95, 0.998)
MIN_ELAPSED_DAYS = 7
"""A current cycle is judged for diary completeness once a week of it has passed."""
INTERVAL_BIN_DAYS = 7
INTERVAL_OVERFLOW_DAYS = 182
"""Intervals of 26 weeks or more share one overflow bar in the distribution."""

POISSON_METHOD = "95% exact Poisson (Garwood) interval on the event count"
FUNNEL_METHOD = (
    "exact binomial control limits around the overall rate with Spiegelhalter's (2005) interpolation between "
    "counts — lower (r_p − α)/n, upper (r_p + 1 − α)/n, where r_p is the binomial p-quantile and "
    "α = (F(r_p) − p)/(F(r_p) − F(r_p − 1)) — so a unit is outside a limit exactly when its one-sided exact "
    "binomial tail probability is below 2.5% (95% limits) or 0.1% (99.8% limits)"
)

STOP_RULES_NOTE = (
    "SPEC §5 stop_indicated: NICE {stopping_min_reduction}% (less than a {stopping_min_reduction}% reduction of "
    "headache days per 28 days at cycle {stopping_cycle}, nice_state stop), EHF (no {stopping_min_reduction}% "
    "reduction in any of the first {ehf_cycles} complete cycles, ehf_state stop) or episodic now (the last "
    "{episodic_periods} 28-day periods each below {episodic_max_days} headache days, for patients with chronic "
    "migraine at baseline)."
)

DEFINITIONS: tuple[Definition, ...] = (
    Definition(
        "Active patient (clinic page)",
        (
            "SPEC §5 treatment_state active: at most {on_time_max_days} days from the last session to as_of, and "
            "not discontinued (discontinued_on between the last session and as_of)."
        ),
        key="active",
    ),
    Definition(
        "Re-injection interval",
        (
            "Days from one session to the patient's next session, counted at the later session (its date and "
            "injector). On time at {on_time_min_days}–{on_time_max_days} days, early below, late above; the share "
            f"on time has a 95% Wilson interval. The REPOSE comparison counts patients with at least one interval "
            f"over {REPOSE_GAP_DAYS} days (13 weeks); REPOSE found {REPOSE_GAP_SHARE:.0%}."
        ),
        key="interval",
    ),
    Definition(
        "Retention across cycles",
        (
            "Of the patients whose first session was in the period, how many reached cycle k (had at least k "
            "sessions by as_of), as a count and a share of those who started; also the share among those who "
            "had the time to reach it (first session + (k − 1) × {on_time_max_days} days ≤ as_of), with a "
            "95% Wilson interval."
        ),
        key="retention",
    ),
    Definition(
        "Persistence on treatment",
        (
            "Kaplan–Meier estimate of the time from the first session to the end of treatment, which follows SPEC "
            "§5 treatment_state: a discontinued patient ends on discontinued_on, a lapsed one (no session for more "
            "than {lapse_days} days) at the last session + {on_time_max_days} days, the last on-time date of the "
            "session that never came. Active and overdue patients are censored at as_of. 95% pointwise interval: "
            "Greenwood variance on the log(−log S) scale."
        ),
        parameters=("as_of", "lapse_days", "on_time_max_days"),
        key="persistence",
    ),
    Definition(
        "Responder rate per cycle (clinic page)",
        (
            "responder_50_n / n_evaluable of SPEC §3, computed by cohort_cycles over the patient_cycles of the "
            "patients whose first session was in the period (and who match the clinic and injector), with a "
            "95% Wilson interval."
        ),
        key="responders",
    ),
    Definition(
        "Adverse events against the published figures",
        (
            "SPEC §5.4 safety.csv over all treated patients (not the filter): the share of patients with each event "
            "at any time, and among patients with at least 2 sessions the share with the event after session 1 or "
            "2 (PREEMPT's 24-week figures are of this kind), each with a 95% Wilson interval, beside the published "
            "figures of PREEMPT (pooled double-blind phase, 24 weeks) and COMPEL (treatment-related events, 108 "
            "weeks), with their sources."
        ),
        key="safety",
    ),
    Definition(
        "Adverse events per 100 sessions",
        (
            "Events of each type that followed the sessions of the selection (onset on or before as_of), per 100 "
            f"of those sessions, with a {POISSON_METHOD}."
        ),
        key="adverse_events",
    ),
    Definition(
        "Current cycle",
        (
            "An active patient's latest cycle window; its diary completeness is recorded days / days elapsed "
            "(the window runs to as_of while ongoing)."
        ),
        key="current_cycle",
    ),
    Definition(
        "Overdue for re-injection (worklist)",
        (
            "SPEC §5 treatment_state overdue: more than {on_time_max_days} and at most {lapse_days} days since the "
            "last session as of as_of, not discontinued. next_due = last session + {cycle_days} days; days_overdue "
            "= days past {on_time_max_days}. Longest wait first."
        ),
        parameters=("cycle_days", "on_time_max_days", "lapse_days"),
        key="overdue",
    ),
    Definition(
        "Lapsed (worklist)",
        (
            "SPEC §5 treatment_state lapsed: more than {lapse_days} days since the last session as of as_of, not "
            "discontinued (lost to follow-up unless the clinic knows better). Longest wait first."
        ),
        parameters=("lapse_days",),
        key="lapsed",
    ),
    Definition(
        "Poor diary completeness (worklist)",
        (
            "An active patient whose current-cycle completeness is below {min_completeness}, once at least "
            f"{MIN_ELAPSED_DAYS} days of the cycle have passed."
        ),
        parameters=("min_completeness",),
        key="diary",
    ),
    Definition(
        "Stop indicated (worklist)",
        STOP_RULES_NOTE + " Listed for patients still on treatment (active or overdue), next due first.",
        parameters=("stopping_min_reduction", "stopping_cycle", "ehf_cycles", "episodic_periods", "episodic_max_days"),
        key="stop_indicated",
    ),
    Definition(
        "Recent adverse event (worklist)",
        (
            f"An adverse event whose onset (or, without an onset date, its session) lies in the {RECENT_AE_DAYS} "
            "days up to as_of."
        ),
        key="recent_adverse_events",
    ),
    Definition(
        "Funnel plot of 50% response",
        (
            f"Each unit's share of 50% responders among its patients evaluable at cycle {FUNNEL_CYCLE} (a "
            "non-empty mhd_change there), plotted against that number of patients. A patient's outcome is "
            "attributed to the injector of their first session. Limits: 95% and 99.8% " + FUNNEL_METHOD + "."
        ),
        key="funnel",
    ),
)


FILTER_NOTES = (
    "- **Clinic**: the patient's clinic in patients.csv, for every figure and worklist.\n"
    "- **Injector**: volumes, re-injection intervals, adverse event rates and the adverse event worklist use the "
    "injector of each session; retention, persistence, responder rates and the other worklists attribute a patient "
    "to the injector of their first session.\n"
    "- **Period**: volumes, intervals and adverse event rates count sessions dated in the period; retention, "
    "persistence, responder rates and the funnel plots follow the patients whose first session was in the period "
    "(an inception cohort). Active patients, current-cycle diary completeness and the worklists are as of the data "
    "cut-off (as_of)."
)


def definition(key: str, config: AnalysisConfig) -> str:
    """One of ``DEFINITIONS`` by key, with the configuration's parameter values filled in."""
    entry = next(d for d in DEFINITIONS if d.key == key)
    return entry.text.format_map(parameter_values(config))


# --- the filter ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClinicFilter:
    """What the clinic page looks at: a clinic and an injector (None = all) and a period (None = open)."""

    clinic: str | None = None
    injector: str | None = None
    start: date | None = None
    end: date | None = None


# --- the session register and the patient roster ------------------------------------------------


def _or_not_recorded(values: pd.Series) -> pd.Series:
    """Text with empty cells (missing or blank) shown as ``NOT_RECORDED``."""
    text = values.astype("string").str.strip()
    return text.mask(text.eq("")).fillna(NOT_RECORDED)


def patient_clinics(dataset: Dataset) -> pd.Series:
    """Each listed patient's clinic (``NOT_RECORDED`` when empty), indexed by patient_id."""
    patients = dataset.tables["patients"]
    return _or_not_recorded(patients.set_index("patient_id")["clinic"])


def session_register(dataset: Dataset, as_of: pd.Timestamp) -> pd.DataFrame:
    """Sessions up to as_of with their injector, the patient's clinic and the interval that ends there.

    Columns: patient_id, session_date, injector, clinic, session_number (1, 2, …),
    previous_session_date and interval_days (empty for a patient's first session).
    """
    sessions = dataset.tables["sessions"]
    s = sessions.loc[sessions["session_date"] <= as_of, ["patient_id", "session_date", "injector_id"]]
    s = s.sort_values(["patient_id", "session_date"], kind="stable").reset_index(drop=True)
    by_patient = s.groupby("patient_id", sort=False)
    clinic = _or_not_recorded(s["patient_id"].map(patient_clinics(dataset)))
    previous = by_patient["session_date"].shift(1)
    return pd.DataFrame(
        {
            "patient_id": s["patient_id"],
            "session_date": s["session_date"],
            "injector": _or_not_recorded(s["injector_id"]),
            "clinic": clinic,
            "session_number": by_patient.cumcount() + 1,
            "previous_session_date": previous,
            "interval_days": (s["session_date"] - previous).dt.days.astype("Int64"),
        }
    )


ROSTER_STATUS_COLUMNS = (
    "treatment_state",
    "next_due",
    "days_overdue",
    "stop_indicated",
    "nice_state",
    "ehf_state",
    "episodic_now",
    "latest_evaluable_cycle",
    "latest_mhd_pct_change",
)
"""The SPEC §5 patient_status columns the roster carries (the worklists and persistence read them)."""


def patient_roster(dataset: Dataset, register: pd.DataFrame, analysis: Analysis) -> pd.DataFrame:
    """One row per treated patient: clinic, first and last session and injector, SPEC §5 status as of as_of.

    ``active`` is treatment_state active; discontinued_on and its reason are kept only for patients whose
    treatment_state is discontinued (a discontinued_on before the last session was followed by a new start).
    """
    as_of = analysis.as_of
    by_patient = register.groupby("patient_id", sort=True)
    roster = pd.DataFrame(
        {
            "clinic": by_patient["clinic"].first(),
            "first_session": by_patient["session_date"].min(),
            "last_session": by_patient["session_date"].max(),
            "n_sessions": by_patient.size().astype("int64"),
            "first_injector": by_patient["injector"].first(),
            "last_injector": by_patient["injector"].last(),
        }
    )
    status = analysis.patient_status.set_index("patient_id")
    for column in ROSTER_STATUS_COLUMNS:
        roster[column] = status[column].reindex(roster.index)
    discontinued = roster["treatment_state"].eq("discontinued")
    patients = dataset.tables["patients"].drop_duplicates("patient_id").set_index("patient_id")
    roster["discontinued_on"] = patients["discontinued_on"].reindex(roster.index).where(discontinued)
    roster["discontinuation_reason"] = patients["discontinuation_reason"].reindex(roster.index).where(discontinued)
    roster["days_since_last_session"] = (as_of - roster["last_session"]).dt.days.astype("int64")
    roster["active"] = roster["treatment_state"].eq("active")
    roster.index.name = "patient_id"
    return roster.reset_index()


@dataclass(frozen=True)
class FilterOptions:
    """What the filter widgets offer: clinics, injectors per clinic, and the date range of the data."""

    clinics: list[str]
    injectors: dict[str | None, list[str]]
    first_date: date
    last_date: date
    has_clinics: bool


def filter_options(dataset: Dataset, register: pd.DataFrame, as_of: pd.Timestamp) -> FilterOptions:
    """Clinics present, the injectors who gave sessions to each clinic's patients (None = any clinic)."""
    injectors: dict[str | None, list[str]] = {None: sorted(register["injector"].unique())}
    pairs = register[["clinic", "injector"]].drop_duplicates()
    for clinic, group in pairs.groupby("clinic"):
        injectors[str(clinic)] = sorted(group["injector"])
    first = register["session_date"].min()
    return FilterOptions(
        clinics=sorted(register["clinic"].unique()),
        injectors=injectors,
        first_date=(first if pd.notna(first) else as_of).date(),
        last_date=as_of.date(),
        has_clinics=dataset.has_column("patients", "clinic"),
    )


def _period(flt: ClinicFilter, options_first: pd.Timestamp, as_of: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    start = pd.Timestamp(flt.start) if flt.start else options_first
    end = min(pd.Timestamp(flt.end), as_of) if flt.end else as_of
    return start, end


def _matches(values: pd.Series, wanted: str | None) -> pd.Series:
    return pd.Series(True, index=values.index) if wanted is None else values.eq(wanted).fillna(False).astype(bool)


# --- activity ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Activity:
    """Headline counts of the selection."""

    active: int
    ever_treated: int
    treated_in_period: int
    sessions_in_period: int
    new_in_period: int


def sessions_per_month(sessions: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Sessions per calendar month and injector; months at the period's edges are flagged partial.

    Columns: month (first day), injector, sessions, patients (distinct), partial_month.
    """
    months = sessions["session_date"].dt.to_period("M").dt.to_timestamp()
    counts = (
        sessions.assign(month=months)
        .groupby(["month", "injector"], sort=True)
        .agg(sessions=("patient_id", "size"), patients=("patient_id", "nunique"))
        .reset_index()
    )
    month_end = counts["month"] + pd.offsets.MonthEnd(0)
    counts["partial_month"] = (counts["month"] < start) | (month_end > end)
    return counts


def monthly_totals(sessions: pd.DataFrame) -> pd.DataFrame:
    """Sessions and distinct patients per calendar month (all injectors of the selection)."""
    months = sessions["session_date"].dt.to_period("M").dt.to_timestamp()
    return (
        sessions.assign(month=months)
        .groupby("month", sort=True)
        .agg(sessions=("patient_id", "size"), patients=("patient_id", "nunique"))
        .reset_index()
    )


# --- re-injection intervals ---------------------------------------------------------------------


@dataclass(frozen=True)
class IntervalSummary:
    """Re-injection timing of the selection: median and quartiles, on-time share, REPOSE comparison."""

    n_intervals: int
    n_patients: int
    median_days: float
    q1_days: float
    q3_days: float
    on_time: Proportion
    early: int
    late: int
    patients_with_long_gap: Proportion
    on_time_days: tuple[int, int]
    """The on-time range of the configuration (on_time_min_days, on_time_max_days)."""
    method: str = WILSON_METHOD


def interval_category(days: pd.Series, config: AnalysisConfig | None = None) -> pd.Series:
    """early (< on_time_min_days), on time (on_time_min_days–on_time_max_days) or late (> on_time_max_days)."""
    config = config or AnalysisConfig()
    low, high = config.on_time_min_days, config.on_time_max_days
    values = days.astype("float64")
    return pd.Series(
        np.select([values < low, values <= high], ["early", "on time"], "late"), index=days.index, dtype="string"
    ).where(values.notna())


def summarise_intervals(intervals: pd.DataFrame, config: AnalysisConfig | None = None) -> IntervalSummary:
    """Median (IQR), share on time (Wilson) and patients with a gap over 13 weeks (Wilson)."""
    config = config or AnalysisConfig()
    days = intervals["interval_days"].astype("float64")
    category = intervals["category"]
    per_patient = (days > REPOSE_GAP_DAYS).groupby(intervals["patient_id"]).any()
    quartiles = days.quantile([0.25, 0.5, 0.75]) if len(days) else pd.Series([np.nan] * 3, index=[0.25, 0.5, 0.75])
    return IntervalSummary(
        n_intervals=len(days),
        n_patients=int(per_patient.size),
        median_days=float(quartiles[0.5]),
        q1_days=float(quartiles[0.25]),
        q3_days=float(quartiles[0.75]),
        on_time=proportion(int((category == "on time").sum()), len(days)),
        early=int((category == "early").sum()),
        late=int((category == "late").sum()),
        patients_with_long_gap=proportion(int(per_patient.sum()), int(per_patient.size)),
        on_time_days=(config.on_time_min_days, config.on_time_max_days),
    )


def interval_distribution(intervals: pd.DataFrame) -> pd.DataFrame:
    """Intervals per 7-day bin split by category, so a bar straddling 77 or 98 days is split exactly.

    Columns: bin_start (days), bin_label, category, intervals. Intervals of 26 weeks or more share
    the last bin.
    """
    days = intervals["interval_days"].astype("int64")
    start = np.minimum(days // INTERVAL_BIN_DAYS * INTERVAL_BIN_DAYS, INTERVAL_OVERFLOW_DAYS)
    counts = (
        pd.DataFrame({"bin_start": start, "category": intervals["category"]})
        .groupby(["bin_start", "category"], sort=True)
        .size()
        .rename("intervals")
        .reset_index()
    )
    counts["bin_label"] = np.where(
        counts["bin_start"] >= INTERVAL_OVERFLOW_DAYS,
        f"≥ {INTERVAL_OVERFLOW_DAYS} days",
        counts["bin_start"].astype(str) + "–" + (counts["bin_start"] + INTERVAL_BIN_DAYS - 1).astype(str) + " days",
    )
    return counts[["bin_start", "bin_label", "category", "intervals"]]


# --- retention and persistence -------------------------------------------------------------------


def retention(patients: pd.DataFrame, as_of: pd.Timestamp, config: AnalysisConfig | None = None) -> pd.DataFrame:
    """How many of the patients who started reach cycle 1, 2, 3, …

    Columns: cycle, started_n, reached_n, reached_share (of started), had_time_n (first session +
    (k − 1) × on_time_max_days ≤ as_of), reached_had_time_n, reached_had_time_rate with a 95% Wilson interval.
    """
    config = config or AnalysisConfig()
    k_max = int(patients["n_sessions"].max()) if len(patients) else 0
    cycles = np.arange(1, k_max + 1)
    sessions = patients["n_sessions"].to_numpy()[:, None]
    reached = sessions >= cycles[None, :]
    reach_by = (
        patients["first_session"].to_numpy()[:, None]
        + pd.to_timedelta((cycles - 1) * config.on_time_max_days, unit="D").to_numpy()[None, :]
    )
    had_time = reach_by <= as_of.to_datetime64()
    out = pd.DataFrame(
        {
            "cycle": cycles,
            "started_n": len(patients),
            "reached_n": reached.sum(axis=0),
            "had_time_n": had_time.sum(axis=0),
            "reached_had_time_n": (reached & had_time).sum(axis=0),
        }
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        out["reached_share"] = np.where(out["started_n"] > 0, out["reached_n"] / out["started_n"], np.nan)
        out["reached_had_time_rate"] = np.where(
            out["had_time_n"] > 0, out["reached_had_time_n"] / out["had_time_n"], np.nan
        )
    out["ci_low"], out["ci_high"] = wilson_interval(out["reached_had_time_n"], out["had_time_n"])
    return out[
        [
            "cycle",
            "started_n",
            "reached_n",
            "reached_share",
            "had_time_n",
            "reached_had_time_n",
            "reached_had_time_rate",
            "ci_low",
            "ci_high",
        ]
    ]


def persistence(patients: pd.DataFrame, as_of: pd.Timestamp, config: AnalysisConfig) -> pd.DataFrame:
    """Per patient: time on treatment from the first session, and whether it ended (else censored at as_of).

    The end follows SPEC §5 treatment_state (roster rows): discontinued ends on discontinued_on, lapsed at
    the last session + on_time_max_days (the last on-time date of the session that never came); active and
    overdue patients are censored at as_of. ``end_reason`` says which; ``duration_days`` is never negative.
    """
    state = patients["treatment_state"]
    discontinued, lapsed = state.eq("discontinued"), state.eq("lapsed")
    # pandas-stubs: Series.clip takes no Timestamp bound
    lapse = (patients["last_session"] + pd.Timedelta(days=config.on_time_max_days)).clip(upper=as_of)  # type: ignore[call-overload]
    end = patients["discontinued_on"].where(discontinued, lapse.where(lapsed))
    event = (discontinued | lapsed).to_numpy()
    reason = np.select(
        [discontinued, lapsed],
        ["discontinued (recorded)", f"lapsed (no session for more than {config.lapse_days} days)"],
        "on treatment (censored at as_of)",
    )
    stop = end.where(event, as_of)
    return pd.DataFrame(
        {
            "patient_id": patients["patient_id"].to_numpy(),
            "first_session": patients["first_session"].to_numpy(),
            "end_date": end.to_numpy(),
            "event": event,
            "end_reason": reason,
            "duration_days": np.maximum((stop - patients["first_session"]).dt.days.to_numpy(), 0).astype("int64"),
        }
    )


# --- outcomes -----------------------------------------------------------------------------------


def responder_rates(analysis: Analysis, patient_ids: pd.Index | pd.Series) -> pd.DataFrame:
    """SPEC §3 cohort statistics (cohort_cycles) over the given patients' patient_cycles."""
    table = analysis.patient_cycles
    # Index lookups, not Series.isin: pandas' isin on Arrow-backed text converts the wanted ids one at a time (0.85 s
    # of the Clinic page's view at 100,000 patients); the same rows.
    wanted = pd.Index(patient_ids).unique().get_indexer(table["patient_id"]) >= 0
    return cohort_cycles(table[wanted], analysis.as_of, analysis.config)


def poisson_interval(events: np.ndarray | pd.Series | float, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) interval for a Poisson count: χ²(α/2; 2k)/2 to χ²(1 − α/2; 2k + 2)/2; 0 below at k = 0."""
    k = np.asarray(events, dtype="float64")
    alpha = 1 - level
    with np.errstate(invalid="ignore"):
        low = np.where(k > 0, sps.chi2.ppf(alpha / 2, 2 * k) / 2, 0.0)
    high = sps.chi2.ppf(1 - alpha / 2, 2 * k + 2) / 2
    return low, high


def adverse_event_rates(adverse_events: pd.DataFrame, sessions: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Adverse events per 100 sessions by event type, with an exact Poisson interval, and all types together.

    Every event type of the contract is listed (0 events is a real zero when adverse_events.csv exists).
    Columns: event, events, serious, sessions, per_100_sessions, ci_low, ci_high.
    """
    linked = adverse_events.merge(sessions[["patient_id", "session_date"]], on=["patient_id", "session_date"])
    linked = linked[~(linked["onset_date"] > as_of)]
    counts = linked.groupby("event")["patient_id"].size().reindex(list(EVENTS), fill_value=0)
    serious_flags = linked["serious"].fillna(False).astype(bool)
    serious = serious_flags.groupby(linked["event"]).sum().reindex(list(EVENTS), fill_value=0)
    out = pd.DataFrame({"event": [*EVENTS, "all events"]})
    out["events"] = np.append(counts.to_numpy(), counts.sum()).astype("int64")
    out["serious"] = np.append(serious.to_numpy(), serious.sum()).astype("int64")
    out["sessions"] = len(sessions)
    n = out["sessions"].to_numpy(dtype="float64")
    low, high = poisson_interval(out["events"])
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(n > 0, 100 / n, np.nan)
    out["per_100_sessions"] = out["events"] * scale
    out["ci_low"] = low * scale
    out["ci_high"] = high * scale
    return out


# --- current cycle and diary completeness -------------------------------------------------------


def current_cycles(analysis: Analysis, patients: pd.DataFrame) -> pd.DataFrame:
    """The latest cycle window of each active patient: recorded and elapsed days, completeness.

    Columns: patient_id, cycle, start_date, status, recorded_days, elapsed_days, completeness,
    poor_completeness (below min_completeness after at least a week).
    """
    config = analysis.config
    table = analysis.patient_cycles
    latest = table.loc[
        table["cycle"] == table["n_sessions"],
        ["patient_id", "cycle", "start_date", "status", "recorded_days", "window_days", "completeness"],
    ]
    active = patients.loc[patients["active"], ["patient_id", "clinic", "first_injector", "last_session"]]
    out = active.merge(latest, on="patient_id", how="inner").rename(columns={"window_days": "elapsed_days"})
    out["poor_completeness"] = (out["completeness"] < config.min_completeness - config.tolerance) & (
        out["elapsed_days"] >= MIN_ELAPSED_DAYS
    )
    return out


def completeness_distribution(current: pd.DataFrame, min_completeness: float) -> pd.DataFrame:
    """Active patients per 10% completeness bin, split by below / at or above min_completeness.

    Columns: bin_low (0, 0.1, …, 0.9; 100% falls in the last bin), bin_label, below_threshold, patients.
    """
    bin_low = np.minimum(np.floor(current["completeness"].to_numpy(dtype="float64") * 10 + TOLERANCE), 9) / 10
    counts = (
        pd.DataFrame({"bin_low": bin_low, "below_threshold": current["completeness"] < min_completeness - TOLERANCE})
        .groupby(["bin_low", "below_threshold"], sort=True)
        .size()
        .rename("patients")
        .reset_index()
    )
    low = (counts["bin_low"] * 100).round().astype(int)
    # Bins are [low, low + 10%) except the last, which holds 100% as well.
    counts["bin_label"] = np.where(low >= 90, "90–100%", low.astype(str) + "–<" + (low + 10).astype(str) + "%")
    return counts[["bin_low", "bin_label", "below_threshold", "patients"]]


# --- worklists ---------------------------------------------------------------------------------


EMPTY_CELL = cells.EMPTY_CELL


def filled_cells(worklist: pd.DataFrame) -> pd.DataFrame:
    """A worklist without empty cells (``analytics.output.cells.readable_cells``, numbers with at most one
    decimal): a column with an empty cell becomes text, ``EMPTY_CELL`` where empty."""
    return cells.readable_cells(worklist, places=1)


def _waiting_worklist(patients: pd.DataFrame, state: str) -> pd.DataFrame:
    """Patients whose SPEC §5 treatment_state is ``state``, longest wait first."""
    due = patients.loc[patients["treatment_state"].eq(state)]
    due = due.sort_values(["days_since_last_session", "patient_id"], ascending=[False, True], kind="stable")
    return (
        pd.DataFrame(
            {
                "patient": due["patient_id"],
                "clinic": due["clinic"],
                "last_session": due["last_session"],
                "next_due": due["next_due"],
                "days_since_last_session": due["days_since_last_session"],
                "days_overdue": due["days_overdue"],
                "sessions": due["n_sessions"],
                "last_injector": due["last_injector"],
            }
        )
        .reset_index(drop=True)
        .pipe(filled_cells)
    )


def overdue_worklist(patients: pd.DataFrame) -> pd.DataFrame:
    """Roster patients whose SPEC §5 treatment_state is overdue, longest wait first."""
    return _waiting_worklist(patients, "overdue")


def lapsed_worklist(patients: pd.DataFrame) -> pd.DataFrame:
    """Roster patients whose SPEC §5 treatment_state is lapsed, longest wait first."""
    return _waiting_worklist(patients, "lapsed")


def diary_worklist(current: pd.DataFrame) -> pd.DataFrame:
    """Active patients whose current-cycle diary completeness is below min_completeness, lowest first."""
    poor = current.loc[current["poor_completeness"]].sort_values(["completeness", "patient_id"], kind="stable")
    return (
        pd.DataFrame(
            {
                "patient": poor["patient_id"],
                "clinic": poor["clinic"],
                "cycle": poor["cycle"],
                "cycle_start": poor["start_date"],
                "status": poor["status"],
                "recorded_days": poor["recorded_days"],
                "elapsed_days": poor["elapsed_days"],
                "completeness": poor["completeness"],
            }
        )
        .reset_index(drop=True)
        .pipe(filled_cells)
    )


def recent_adverse_events(
    adverse_events: pd.DataFrame, register: pd.DataFrame, as_of: pd.Timestamp, flt: ClinicFilter
) -> pd.DataFrame:
    """Adverse events with onset (else session date) in the 30 days up to as_of, newest first.

    Filtered by the patient's clinic and the injector of the session the event followed.
    """
    events = adverse_events.merge(
        register[["patient_id", "session_date", "injector", "clinic"]], on=["patient_id", "session_date"]
    )
    onset = events["onset_date"].fillna(events["session_date"])
    recent = (onset <= as_of) & (onset > as_of - pd.Timedelta(days=RECENT_AE_DAYS))
    keep = recent & _matches(events["clinic"], flt.clinic) & _matches(events["injector"], flt.injector)
    events = events.loc[keep].assign(event_date=onset[keep])
    events = events.sort_values(["event_date", "patient_id"], ascending=[False, True], kind="stable")
    return (
        pd.DataFrame(
            {
                "patient": events["patient_id"],
                "clinic": events["clinic"],
                "event": events["event"],
                "severity": events["severity"],
                "serious": events["serious"],
                "onset_date": events["onset_date"],
                "session_date": events["session_date"],
                "days_since": (as_of - events["event_date"]).dt.days.astype("int64"),
                "resolved_date": events["resolved_date"],
                "injector": events["injector"],
            }
        )
        .reset_index(drop=True)
        .pipe(filled_cells)
    )


def stop_indicated_worklist(patients: pd.DataFrame, config: AnalysisConfig) -> pd.DataFrame:
    """Roster patients still on treatment (SPEC §5 treatment_state active or overdue) with stop_indicated true,
    next due first, with the rule(s) that indicate the stop (``analytics.definitions.clinical.stop_rules``)."""
    on_treatment = patients["treatment_state"].isin(["active", "overdue"])
    rows = patients.loc[on_treatment & patients["stop_indicated"].eq(True).fillna(False)]
    rows = rows.sort_values(["next_due", "patient_id"], kind="stable")
    return (
        pd.DataFrame(
            {
                "patient": rows["patient_id"],
                "clinic": rows["clinic"],
                "rules": stop_rules(rows, config),
                "treatment_state": rows["treatment_state"],
                "next_due": rows["next_due"],
                "days_overdue": rows["days_overdue"],
                "nice_state": rows["nice_state"],
                "ehf_state": rows["ehf_state"],
                "latest_evaluable_cycle": rows["latest_evaluable_cycle"],
                "latest_mhd_pct_change": rows["latest_mhd_pct_change"],
                "last_session": rows["last_session"],
                "sessions": rows["n_sessions"],
            }
        )
        .reset_index(drop=True)
        .pipe(filled_cells)
    )


# --- funnel plots -------------------------------------------------------------------------------


def funnel_limits(target: float, n: np.ndarray | float, probability: float) -> np.ndarray:
    """The exact binomial control limit at cumulative probability p for denominators n (Spiegelhalter 2005).

    r_p is the smallest r with F(r) = P(R ≤ r) ≥ p for R ~ Binomial(n, target), and α = (F(r_p) − p) /
    (F(r_p) − F(r_p − 1)) interpolates between counts. A lower limit (p < 0.5) is (r_p − α)/n and an
    upper limit (p > 0.5) is (r_p + 1 − α)/n: an observed count r then lies strictly below the lower
    limit exactly when P(R ≤ r) < p, and strictly above the upper one exactly when P(R ≥ r) < 1 − p, so
    the limits are symmetric for target 0.5 (the common shortcut (r_p − α)/n for both tails flags a
    count of r_p above the upper limit although its tail probability is larger than 1 − p). Clipped to
    [0, 1]; empty (NaN) where n is 0.
    """
    n = np.asarray(n, dtype="float64")
    safe_n = np.where(n > 0, n, 1)
    r_p = sps.binom.ppf(probability, safe_n, target)
    # Guard the quantile against rounding in scipy's inversion: F(r_p − 1) < p ≤ F(r_p).
    r_p = np.where(sps.binom.cdf(r_p - 1, safe_n, target) >= probability, r_p - 1, r_p)
    r_p = np.where(sps.binom.cdf(r_p, safe_n, target) < probability, r_p + 1, r_p)
    at_r = sps.binom.cdf(r_p, safe_n, target)
    below_r = sps.binom.cdf(r_p - 1, safe_n, target)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(at_r > below_r, (at_r - probability) / (at_r - below_r), 0.0)
    count = r_p - alpha if probability < 0.5 else r_p + 1 - alpha
    return np.where(n > 0, np.clip(count / safe_n, 0, 1), np.nan)


@dataclass(frozen=True)
class Funnel:
    """A funnel-plot comparison: one row per unit, the overall rate and the control-limit curves."""

    unit_label: str
    units: pd.DataFrame
    overall: Proportion
    curves: pd.DataFrame
    cycle: int = FUNNEL_CYCLE
    method: str = FUNNEL_METHOD
    highlight: str | None = None


def _position(rate: pd.Series, limits: dict[str, np.ndarray]) -> np.ndarray:
    r = rate.to_numpy(dtype="float64")
    return np.select(
        [np.isnan(r), r > limits["upper_998"], r > limits["upper_95"], r < limits["lower_998"], r < limits["lower_95"]],
        ["not evaluable", "above 99.8% limit", "above 95% limit", "below 99.8% limit", "below 95% limit"],
        "within 95% limits",
    )


def funnel_curves(target: float, n_max: int) -> pd.DataFrame:
    """The four control limits for n = 1 … n_max."""
    n = np.arange(1, max(n_max, 1) + 1)
    out = pd.DataFrame({"n": n})
    for level in FUNNEL_LEVELS:
        suffix = "95" if level == 0.95 else "998"
        out[f"lower_{suffix}"] = funnel_limits(target, n, (1 - level) / 2)
        out[f"upper_{suffix}"] = funnel_limits(target, n, 1 - (1 - level) / 2)
    return out


def responder_funnel(
    analysis: Analysis, patients: pd.DataFrame, unit_column: str, unit_label: str, highlight: str | None = None
) -> Funnel:
    """Each unit's 50% responder rate at cycle 2 against its number of evaluable patients.

    ``patients`` are roster rows; ``unit_column`` names the unit (``clinic`` or ``first_injector``).
    Units with patients but none evaluable are listed as not evaluable, never as 0%.
    """
    table = analysis.patient_cycles
    at_cycle = (table["cycle"] == FUNNEL_CYCLE) & table["mhd_change"].notna()
    evaluable = table.loc[at_cycle, ["patient_id", "responder_50"]]
    rows = patients[["patient_id", unit_column]].merge(evaluable, on="patient_id", how="left")
    rows["evaluable"] = rows["responder_50"].notna()
    rows["responder"] = rows["responder_50"].fillna(False).astype(bool)
    units = (
        rows.groupby(unit_column, sort=True)
        .agg(patients=("patient_id", "size"), evaluable_n=("evaluable", "sum"), responders_n=("responder", "sum"))
        .reset_index()
        .rename(columns={unit_column: "unit"})
    )
    overall = proportion(int(units["responders_n"].sum()), int(units["evaluable_n"].sum()))
    n = units["evaluable_n"].to_numpy(dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        units["rate"] = np.where(n > 0, units["responders_n"] / n, np.nan)
    units["ci_low"], units["ci_high"] = wilson_interval(units["responders_n"], n)
    target = overall.rate if overall.denominator else np.nan
    limits = {}
    for level in FUNNEL_LEVELS:
        suffix = "95" if level == 0.95 else "998"
        for side, probability in (("lower", (1 - level) / 2), ("upper", 1 - (1 - level) / 2)):
            limit = funnel_limits(target, n, probability) if overall.denominator else np.full(n.shape, np.nan)
            limits[f"{side}_{suffix}"] = units[f"{side}_{suffix}"] = limit
    units["position"] = _position(units["rate"], limits)
    # The curves run a fifth past the largest unit so that its point and label sit inside the funnel's frame.
    n_max = int(np.ceil(n.max() * 1.2)) if len(n) else 1
    curves = funnel_curves(target, n_max) if overall.denominator else pd.DataFrame()
    return Funnel(unit_label, units, overall, curves, highlight=highlight)


# --- safety against the literature ---------------------------------------------------------------

PREEMPT_SOURCE = (
    "PREEMPT pooled double-blind phase, 24 weeks (2 cycles), all adverse events regardless of cause, N = 687 "
    "onabotulinumtoxinA: Dodick DW et al., Headache 2010;50:921–936 (with Aurora SK et al., Cephalalgia 2010 and "
    "Diener HC et al., Cephalalgia 2010)"
)
COMPEL_SOURCE = (
    "COMPEL, open label, 108 weeks (9 cycles), treatment-related adverse events, N = 716: Blumenfeld AM et al., "
    "J Headache Pain 2018;19:13, Table 2"
)
PUBLISHED_SAFETY = pd.DataFrame(
    [
        # study, event, pct, compare_with, source, checked, note
        (
            "PREEMPT",
            "neck_pain",
            8.7,
            "pct_2_cycles",
            PREEMPT_SOURCE,
            True,
            "8.7% vs 2.7% on placebo, as also quoted by Blumenfeld AM et al., Headache 2017;57:766–777",
        ),
        (
            "PREEMPT",
            "eyelid_ptosis",
            3.6,
            "pct_2_cycles",
            PREEMPT_SOURCE,
            True,
            "3.6% as quoted by Blumenfeld AM et al., Headache 2017;57:766–777; a figure of 3.3% is also in "
            "circulation and was not confirmed",
        ),
        (
            "PREEMPT",
            "muscular_weakness",
            5.5,
            "pct_2_cycles",
            PREEMPT_SOURCE,
            False,
            "recalled, not checked against the paper",
        ),
        (
            "PREEMPT",
            "injection_site_pain",
            3.2,
            "pct_2_cycles",
            PREEMPT_SOURCE,
            False,
            "recalled, not checked against the paper",
        ),
        (
            "PREEMPT",
            "headache",
            2.9,
            "pct_2_cycles",
            PREEMPT_SOURCE,
            False,
            "recalled, not checked against the paper; may be the treatment-related rate",
        ),
        ("COMPEL", "neck_pain", 4.1, "patients_with_event_pct", COMPEL_SOURCE, True, "29 of 716"),
        ("COMPEL", "eyelid_ptosis", 2.5, "patients_with_event_pct", COMPEL_SOURCE, True, "18 of 716"),
        ("COMPEL", "musculoskeletal_stiffness", 2.4, "patients_with_event_pct", COMPEL_SOURCE, True, "17 of 716"),
        ("COMPEL", "injection_site_pain", 2.0, "patients_with_event_pct", COMPEL_SOURCE, True, "14 of 716"),
        ("COMPEL", "headache", 1.7, "patients_with_event_pct", COMPEL_SOURCE, True, "12 of 716"),
        ("COMPEL", "muscular_weakness", 1.4, "patients_with_event_pct", COMPEL_SOURCE, True, "10 of 716"),
        ("COMPEL", "facial_paresis", 1.3, "patients_with_event_pct", COMPEL_SOURCE, True, "9 of 716"),
        (
            "COMPEL",
            "any",
            18.3,
            "patients_with_event_pct",
            COMPEL_SOURCE,
            True,
            "131 of 716 with at least one treatment-related adverse event",
        ),
    ],
    columns=["study", "event", "published_pct", "compare_with", "source", "checked", "note"],
)
"""Published shares of patients with an adverse event, with their sources. PREEMPT's are of the kind of SPEC
§5.4 pct_2_cycles (events after the first two sessions); COMPEL's count treatment-related events over nine
cycles, so they compare with patients_with_event_pct over a long follow-up, and a clinic recording every event
regardless of cause should expect more. REPOSE (Ahmed F et al., J Headache Pain 2019;20:26) is not listed:
its per-event figures could not be checked here."""


@dataclass(frozen=True)
class SafetyView:
    """SPEC §5.4 safety.csv with 95% Wilson intervals, and the published figures for its events."""

    table: pd.DataFrame
    """analysis.safety plus patients_with_event_ci_low/high and pct_2_cycles_ci_low/high (in %), and the
    published PREEMPT (2 cycles) and COMPEL (any time) percentages of the same event, empty where none."""
    published: pd.DataFrame
    """The rows of ``PUBLISHED_SAFETY`` for the events in ``table``."""
    method: str = WILSON_METHOD


def safety_view(analysis: Analysis) -> SafetyView | None:
    """``analysis.safety`` (SPEC §5.4, all treated patients) beside the published figures; None without the file."""
    safety = analysis.safety
    if safety is None:
        return None
    table = safety.copy()
    for pct, numerator, denominator in (
        ("patients_with_event", "patients_with_event", "patients"),
        ("pct_2_cycles", "patients_with_event_2_cycles", "patients_2_cycles"),
    ):
        low, high = wilson_interval(table[numerator], table[denominator])
        table[f"{pct}_ci_low"], table[f"{pct}_ci_high"] = 100 * low, 100 * high
    published = PUBLISHED_SAFETY[PUBLISHED_SAFETY["event"].isin(table["event"])].reset_index(drop=True)
    for study, column in (("PREEMPT", "preempt_pct_2_cycles"), ("COMPEL", "compel_pct_treatment_related")):
        figures = PUBLISHED_SAFETY.loc[PUBLISHED_SAFETY["study"] == study].set_index("event")["published_pct"]
        table[column] = table["event"].map(figures).astype("float64")
    return SafetyView(table, published)


# --- the whole view ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClinicView:
    """Everything the clinic page shows for one filter."""

    filter: ClinicFilter
    as_of: pd.Timestamp
    period_start: pd.Timestamp
    period_end: pd.Timestamp
    activity: Activity
    monthly: pd.DataFrame
    monthly_totals: pd.DataFrame
    intervals: pd.DataFrame
    interval_summary: IntervalSummary
    interval_distribution: pd.DataFrame
    retention: pd.DataFrame
    persistence: pd.DataFrame
    persistence_curve: KaplanMeier
    persistence_at_risk: pd.DataFrame
    responder_rates: pd.DataFrame
    adverse_events: pd.DataFrame | None
    current_cycles: pd.DataFrame
    completeness_distribution: pd.DataFrame
    worklists: dict[str, pd.DataFrame | None]
    injector_funnel: Funnel
    clinic_funnel: Funnel


def clinic_view(dataset: Dataset, analysis: Analysis, flt: ClinicFilter) -> ClinicView:
    """Compute every clinic-page figure and worklist for one filter."""
    as_of, config = analysis.as_of, analysis.config
    register = session_register(dataset, as_of)
    roster = patient_roster(dataset, register, analysis)
    first = register["session_date"].min() if len(register) else as_of
    start, end = _period(flt, first, as_of)

    in_clinic = _matches(roster["clinic"], flt.clinic)
    current = roster[in_clinic & _matches(roster["first_injector"], flt.injector)]
    cohort = current[current["first_session"].between(start, end)]
    sessions = register[
        _matches(register["clinic"], flt.clinic)
        & _matches(register["injector"], flt.injector)
        & register["session_date"].between(start, end)
    ]
    intervals = sessions.loc[sessions["interval_days"].notna()].copy()
    intervals["category"] = interval_category(intervals["interval_days"], config)

    curve_input = persistence(cohort, as_of, config)
    curve = kaplan_meier(curve_input["duration_days"], curve_input["event"])
    longest = int(curve_input["duration_days"].max()) if len(curve_input) else 0
    ticks = np.arange(0, longest + 1, analysis.config.cycle_days)

    has_ae = bool(dataset.present_columns.get("adverse_events"))
    adverse = dataset.tables["adverse_events"]
    cycles_now = current_cycles(analysis, current)
    worklists: dict[str, pd.DataFrame | None] = {
        "overdue": overdue_worklist(current),
        "lapsed": lapsed_worklist(current),
        "stop_indicated": stop_indicated_worklist(current, config),
        "diary": diary_worklist(cycles_now),
        "adverse_events": recent_adverse_events(adverse, register, as_of, flt) if has_ae else None,
    }
    # Units are compared within the period's inception cohort: injectors within the chosen clinic, clinics
    # with each other (the chosen clinic and injector are highlighted rather than filtered away).
    clinic_cohort = roster[roster["first_session"].between(start, end)]
    injector_cohort = roster[in_clinic & roster["first_session"].between(start, end)]
    return ClinicView(
        filter=flt,
        as_of=as_of,
        period_start=start,
        period_end=end,
        activity=Activity(
            active=int(current["active"].sum()),
            ever_treated=len(current),
            treated_in_period=int(sessions["patient_id"].nunique()),
            sessions_in_period=len(sessions),
            new_in_period=len(cohort),
        ),
        monthly=sessions_per_month(sessions, start, end),
        monthly_totals=monthly_totals(sessions),
        intervals=intervals,
        interval_summary=summarise_intervals(intervals, config),
        interval_distribution=interval_distribution(intervals),
        retention=retention(cohort, as_of, config),
        persistence=curve_input,
        persistence_curve=curve,
        persistence_at_risk=at_risk_table(curve, ticks),
        responder_rates=responder_rates(analysis, cohort["patient_id"]),
        adverse_events=adverse_event_rates(adverse, sessions, as_of) if has_ae else None,
        current_cycles=cycles_now,
        completeness_distribution=completeness_distribution(cycles_now, analysis.config.min_completeness),
        worklists=worklists,
        injector_funnel=responder_funnel(analysis, injector_cohort, "first_injector", "injector", flt.injector),
        clinic_funnel=responder_funnel(analysis, clinic_cohort, "clinic", "clinic", flt.clinic),
    )
