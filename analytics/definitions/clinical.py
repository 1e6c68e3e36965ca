"""Patient-level clinical definitions beyond SPEC §3's core: status, stopping rules and profiles.

Everything here is built from the tables ``pipeline.analyse`` returns (the per-patient-cycle table
and the per-patient-day frame) plus the optional input files, and works on all patients at once
with group-bys and merges, so the Patient page filters one patient out of tables computed once and
the Clinic page builds its worklists from the same tables. Each public definition function states
its definition in the first paragraph of its docstring; ``DEFINITIONS`` collects those paragraphs
with the parameters they use, and the data dictionary renders them with the current values.
Thresholds that are not SPEC §3 parameters live in ``ClinicalParameters`` with their basis.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd

from analytics.definitions.config import AnalysisConfig
from analytics.definitions.cycles import assign_days_to_windows
from analytics.definitions.pipeline import Analysis
from analytics.ingest.load import Dataset

MINUS = "−"
TOLERANCE = 1e-9
_T = TypeVar("_T")


def _param(default: _T, doc: str, basis: str) -> _T:
    return field(default=default, metadata={"doc": doc, "basis": basis})


@dataclass(frozen=True)
class ClinicalParameters:
    """Thresholds of the patient-level definitions; defaults follow the cited guidance."""

    chronic_min_headache_days: float = _param(
        15.0,
        "Baseline headache days per 28 days for chronic migraine (at least).",
        "ICHD-3 / NICE TA260: >=15 headache days a month",
    )
    chronic_min_migraine_days: float = _param(
        8.0,
        "Baseline migraine days per 28 days for chronic migraine (at least).",
        "ICHD-3 / NICE TA260: >=8 of them migraine days",
    )
    min_prior_preventives: int = _param(
        3, "Prior preventive treatments that failed (at least).", "NICE TA260: failure of >=3 preventive treatments"
    )
    overuse_acute_days: float = _param(
        10.0,
        "Baseline acute-medication days per 28 days that suggest medication overuse (at least).",
        "ICHD-3 medication-overuse headache: triptans or combinations on >=10 days a month",
    )
    stopping_cycle: int = _param(
        2, "Cycle at which the NICE stopping rule is assessed.", "NICE TA260: after 2 treatment cycles"
    )
    stopping_min_reduction: float = _param(
        30.0, "Reduction of headache days (%) needed to continue.", "NICE TA260: stop when <30% reduction"
    )
    episodic_max_days: float = _param(
        15.0,
        "Headache days per 28 days below which a period counts as episodic (NICE).",
        "NICE TA260: <15 headache days a month",
    )
    ehf_max_days: float = _param(
        10.0,
        "Headache days per 28 days below which a period counts as episodic (EHF variant).",
        "EHF consensus: <10 headache days a month for 3 months",
    )
    episodic_periods: int = _param(
        3, "Consecutive 28-day periods needed for episodic conversion.", "NICE TA260 / EHF: 3 consecutive months"
    )
    period_days: int = _param(
        28, "Length of a rolling window and of a conversion period (days).", "one diary month of 28 days"
    )
    onset_reduction: float = _param(
        30.0,
        "Reduction of weekly headache days from baseline (%) that marks onset of effect.",
        "NICE continuation threshold applied per week",
    )
    onset_confirm_weeks: int = _param(
        2,
        "Consecutive weeks the reduction must hold to count as onset.",
        "one reduced week alone is within diary noise",
    )
    wearing_off_reference_weeks: tuple[int, int] = _param(
        (3, 8),
        "Weeks since injection that define the cycle's effect level.",
        "onset at 2-3 weeks; steady effect to week 8",
    )
    wearing_off_late_days: int = _param(
        28, "The last days of a cycle examined for wearing-off.", "the last 4 weeks of a 12-week cycle"
    )
    wearing_off_min_late_days: int = _param(
        14,
        "Days the late part must span (after the reference weeks) to be assessed.",
        "at least 2 weeks to judge a rise",
    )
    wearing_off_min_rise: float = _param(
        2.0,
        "Rise of headache days per 28 days, late part over weeks 3-8 (at least).",
        "two more headache days a month is noticeable",
    )
    wearing_off_min_relative: float = _param(
        0.25,
        "Relative rise, late part over weeks 3-8 (at least).",
        "guards against a small absolute rise at high rates",
    )

    def parameters(self) -> dict[str, object]:
        """The parameters as JSON-ready values."""
        return {
            f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v) for f in dataclasses.fields(self)
        }


def clinical_parameter_docs() -> list[dict[str, object]]:
    """Each clinical parameter with its default, meaning and basis, for the data dictionary."""
    return [
        {"parameter": f.name, "default": f.default, "meaning": f.metadata["doc"], "basis": f.metadata["basis"]}
        for f in dataclasses.fields(ClinicalParameters)
    ]


# --- vectorised formatting of numbers inside reasons (presentation of one column at a time)


def _fmt1(values: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    return numbers.map(lambda v: f"{v:.1f}").astype(object).where(numbers.notna(), "—")


def _fmt_pct(values: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    return numbers.map(lambda v: f"{v:+.0f}%".replace("-", MINUS)).astype(object).where(numbers.notna(), "—")


def _fmt_date(values: pd.Series) -> pd.Series:
    return values.dt.strftime("%Y-%m-%d").astype(object).where(values.notna(), "—")


def _int_text(values: pd.Series) -> pd.Series:
    return values.astype("Int64").astype("string").fillna("—")


def _joined(texts: list[pd.Series], separator: str = ", ") -> pd.Series:
    out = texts[0]
    for text in texts[1:]:
        out = out + separator + text
    return out


def _treated_patients(cycles: pd.DataFrame) -> pd.DataFrame:
    """One row per treated patient (every treated patient has a baseline row, cycle 0)."""
    return cycles.loc[cycles["cycle"] == 0, ["patient_id"]].reset_index(drop=True)


# --- response status


RESPONSE_CLASSES = ("excellent", "responder", "partial", "non-responder", "not evaluable")
RESPONSE_CLASS_LABELS = {
    "excellent": "Excellent responder (≥75%)",
    "responder": "Responder (≥50%)",
    "partial": "Partial responder (30–49%)",
    "non-responder": "Non-responder (<30%)",
    "not evaluable": "Response not evaluable",
}


def response_class(cycles: pd.DataFrame) -> pd.DataFrame:
    """Response class at the latest evaluable cycle: the latest cycle k >= 1 with a change from baseline (SPEC
    §3: cycle and baseline evaluable, baseline > 0) is classed by its reduction of headache days per 28 days
    as excellent (>=75%), responder (50-74%), partial (30-49%) or non-responder (<30%), using the SPEC
    responder flags; "not evaluable" when no cycle has a change.

    Returns one row per treated patient: latest_evaluable_cycle, latest_mhd, latest_pct_change and
    response_class.
    """
    treated = cycles[(cycles["cycle"] >= 1) & cycles["mhd_pct_change"].notna()]
    latest = treated.sort_values(["patient_id", "cycle"], kind="stable").groupby("patient_id", sort=False).tail(1)
    chosen = np.select(
        [
            latest["responder_75"].fillna(False).astype(bool),
            latest["responder_50"].fillna(False).astype(bool),
            latest["responder_30"].fillna(False).astype(bool),
        ],
        ["excellent", "responder", "partial"],
        "non-responder",
    )
    found = pd.DataFrame(
        {
            "patient_id": latest["patient_id"].to_numpy(),
            "latest_evaluable_cycle": latest["cycle"].astype("Int64").to_numpy(),
            "latest_mhd": latest["mhd"].to_numpy(),
            "latest_pct_change": latest["mhd_pct_change"].to_numpy(),
            "response_class": chosen,
        }
    )
    out = _treated_patients(cycles).merge(found, on="patient_id", how="left")
    out["response_class"] = out["response_class"].fillna("not evaluable")
    out["latest_evaluable_cycle"] = out["latest_evaluable_cycle"].astype("Int64")
    return out


def cumulative_response(cycles: pd.DataFrame) -> pd.DataFrame:
    """Cumulative responder: the SPEC §3 cumulative 50% responder flag through the patient's latest cycle (true
    if responder_50 in any cycle so far; false when none responded and at least one cycle had a value; empty
    otherwise), with the first cycle of a 50% response.

    Returns one row per treated patient: cumulative_responder_50 and first_response_cycle.
    """
    treated = cycles[cycles["cycle"] >= 1].sort_values(["patient_id", "cycle"], kind="stable")
    last = treated.groupby("patient_id", sort=False).tail(1)[["patient_id", "cumulative_responder_50"]]
    responded = treated[treated["responder_50"].fillna(False).astype(bool)]
    first = responded.groupby("patient_id", sort=False)["cycle"].min().rename("first_response_cycle")
    out = _treated_patients(cycles).merge(last, on="patient_id", how="left")
    out = out.merge(first, left_on="patient_id", right_index=True, how="left")
    out["cumulative_responder_50"] = out["cumulative_responder_50"].astype("boolean")
    out["first_response_cycle"] = out["first_response_cycle"].astype("Int64")
    return out


def sustained_response(cycles: pd.DataFrame) -> pd.DataFrame:
    """Sustained response: a 50% response (responder_50) in at least 2 consecutive cycles k and k+1; a cycle
    without a value breaks the run. False when no such pair exists and at least one cycle has a value; empty
    when no cycle has one.

    Returns one row per treated patient: sustained_responder and sustained_from_cycle (the first k).
    """
    treated = cycles[cycles["cycle"] >= 1].sort_values(["patient_id", "cycle"], kind="stable")
    responded = treated["responder_50"].fillna(False).astype(bool)
    by_patient = responded.groupby(treated["patient_id"], sort=False)
    # Cycles of a patient are consecutive integers, so the previous row is cycle k - 1.
    pair = responded & by_patient.shift(1, fill_value=False).astype(bool)
    pairs = treated.loc[pair, ["patient_id", "cycle"]]
    first = (pairs.groupby("patient_id", sort=False)["cycle"].min() - 1).rename("sustained_from_cycle")
    valued = treated["responder_50"].notna().groupby(treated["patient_id"], sort=False).any().rename("valued")
    out = _treated_patients(cycles).merge(first, left_on="patient_id", right_index=True, how="left")
    out = out.merge(valued, left_on="patient_id", right_index=True, how="left")
    sustained = pd.Series(pd.NA, index=out.index, dtype="boolean")
    sustained[out["valued"].fillna(False).astype(bool)] = False
    sustained[out["sustained_from_cycle"].notna()] = True
    out["sustained_responder"] = sustained
    out["sustained_from_cycle"] = out["sustained_from_cycle"].astype("Int64")
    return out.drop(columns="valued")


# --- suitability at baseline


def baseline_suitability(cycles: pd.DataFrame, patients: pd.DataFrame, params: ClinicalParameters) -> pd.DataFrame:
    """Suitability at baseline: chronic migraine when the evaluable baseline has >= chronic_min_headache_days
    headache days per 28 days (and, reported beside it, >= chronic_min_migraine_days migraine days); prior
    preventives meets NICE when >= min_prior_preventives failed; medication overuse as recorded in
    patients.csv, with the diary signal of acute medication on >= overuse_acute_days days per 28 at baseline.
    Suitable = chronic migraine and enough prior preventives (Kleene logic: empty when either is unknown and
    neither is false).

    Returns one row per treated patient with the baseline numbers, their n and each criterion.
    """
    base = cycles.loc[
        cycles["cycle"] == 0,
        [
            "patient_id",
            "start_date",
            "end_date",
            "window_days",
            "recorded_days",
            "completeness",
            "evaluable",
            "mhd",
            "mmd",
            "amd",
        ],
    ].rename(
        columns={
            c: f"baseline_{c}"
            for c in (
                "start_date",
                "end_date",
                "window_days",
                "recorded_days",
                "completeness",
                "evaluable",
                "mhd",
                "mmd",
                "amd",
            )
        }
    )
    out = base.reset_index(drop=True)
    evaluable = out["baseline_evaluable"].astype(bool)

    def criterion(values: pd.Series, threshold: float) -> pd.Series:
        met = pd.Series(values.astype("float64") >= threshold - TOLERANCE, dtype="boolean")
        # pandas-stubs (2.3.3.260113) leaves pd.NA out of Series.where's other; pandas takes it.
        return met.where(evaluable & values.notna(), pd.NA)  # type: ignore[call-overload]

    out["chronic_migraine"] = criterion(out["baseline_mhd"], params.chronic_min_headache_days)
    out["migraine_days_criterion"] = criterion(out["baseline_mmd"], params.chronic_min_migraine_days)
    out["acute_overuse_signal"] = criterion(out["baseline_amd"], params.overuse_acute_days)
    listed = patients[["patient_id", "prior_preventives", "medication_overuse"]].drop_duplicates("patient_id")
    out = out.merge(listed, on="patient_id", how="left")
    out["prior_preventives"] = out["prior_preventives"].astype("Int64")
    out["preventives_criterion"] = (out["prior_preventives"] >= params.min_prior_preventives).astype("boolean")
    out["medication_overuse"] = out["medication_overuse"].astype("boolean")
    out["suitable"] = out["chronic_migraine"] & out["preventives_criterion"]
    return out


def suitability_statements(row: pd.Series, params: ClinicalParameters) -> list[tuple[str, str]]:
    """The suitability criteria of one patient's status row in words, marked met, not met, unknown or caution.

    Medication overuse is not an exclusion (NICE TA260 asks that it be managed), so it is marked
    caution when present rather than not met.
    """

    def flag(value: bool | pd.api.typing.NAType | None) -> str:
        return "unknown" if value is None or pd.isna(value) else ("met" if bool(value) else "not met")

    n = f"{int(row['baseline_recorded_days'])} of {int(row['baseline_window_days'])} days recorded"
    if not bool(row["baseline_evaluable"]):
        chronic = (
            f"Baseline not evaluable ({n}, {row['baseline_completeness']:.0%}): chronic migraine cannot be confirmed "
            "from the diary"
        )
    else:
        chronic = (
            f"Baseline {row['baseline_mhd']:.1f} headache days / 28 d "
            f"(chronic migraine needs ≥{params.chronic_min_headache_days:g}; {n})"
        )
    statements: list[tuple[str, str]] = [(chronic, flag(row["chronic_migraine"]))]
    if pd.notna(row["baseline_mmd"]) and bool(row["baseline_evaluable"]):
        statements.append(
            (
                f"Baseline {row['baseline_mmd']:.1f} migraine days / 28 d "
                f"(ICHD-3 asks for ≥{params.chronic_min_migraine_days:g})",
                flag(row["migraine_days_criterion"]),
            )
        )
    if pd.isna(row["prior_preventives"]):
        statements.append(
            (f"Prior preventives not recorded (NICE asks for ≥{params.min_prior_preventives} failed)", "unknown")
        )
    else:
        statements.append(
            (
                f"{int(row['prior_preventives'])} prior preventives failed "
                f"(NICE asks for ≥{params.min_prior_preventives})",
                flag(row["preventives_criterion"]),
            )
        )
    overuse = row["medication_overuse"]
    overuse_text = "not recorded" if pd.isna(overuse) else ("yes" if overuse else "no")
    diary = ""
    if pd.notna(row["baseline_amd"]) and bool(row["baseline_evaluable"]):
        diary = f"; acute medication on {row['baseline_amd']:.1f} days / 28 d at baseline"
        if bool(row["acute_overuse_signal"]):
            diary += f" (≥{params.overuse_acute_days:g}: overuse likely)"
    signal = pd.notna(row["acute_overuse_signal"]) and bool(row["acute_overuse_signal"])
    if pd.isna(overuse):
        mark = "caution" if signal else "unknown"
    else:
        mark = "caution" if bool(overuse) or signal else "met"
    if mark == "caution":
        diary += "; to be managed alongside treatment (NICE)"
    statements.append((f"Medication overuse: {overuse_text}{diary}", mark))
    return statements


# --- NICE TA260 stopping rule


STOPPING_STATES = ("stop", "continue", "pending", "not assessable")


def nice_stopping_rule(cycles: pd.DataFrame, config: AnalysisConfig, params: ClinicalParameters) -> pd.DataFrame:
    """NICE TA260 stopping rule: at cycle stopping_cycle (2), treatment should stop when headache days per 28
    days fell by less than stopping_min_reduction (30%) from the baseline (SPEC §3 mhd_pct_change of that
    cycle > -30%). States: stop, continue, pending (cycle 2 not reached or ongoing; a provisional change is
    given when the ongoing cycle is already evaluable), not assessable (baseline or cycle 2 not evaluable, or
    baseline without headache days).

    Returns one row per treated patient: nice_state, nice_stop (boolean, empty unless assessed) and
    nice_reason in words and numbers, e.g. "NICE TA260: <30% reduction after 2 cycles (21.0 → 17.2
    headache days/28 d, −18%)".
    """
    k, t = params.stopping_cycle, params.stopping_min_reduction
    base = cycles.loc[cycles["cycle"] == 0, ["patient_id", "mhd", "evaluable", "recorded_days", "window_days"]]
    base = base.rename(
        columns={"mhd": "b_mhd", "evaluable": "b_evaluable", "recorded_days": "b_recorded", "window_days": "b_days"}
    )
    at_k = cycles.loc[
        cycles["cycle"] == k,
        ["patient_id", "mhd", "mhd_pct_change", "evaluable", "status", "recorded_days", "window_days", "completeness"],
    ]
    out = base.merge(at_k, on="patient_id", how="left").reset_index(drop=True)
    pct = out["mhd_pct_change"]
    reached = out["status"].notna()
    ongoing = out["status"].eq("ongoing")
    base_ok = out["b_evaluable"].astype(bool) & (out["b_mhd"] > 0)
    assessed = base_ok & reached & ~ongoing & pct.notna()
    stop = pct > -t + TOLERANCE
    numbers = " (" + _fmt1(out["b_mhd"]) + " → " + _fmt1(out["mhd"]) + " headache days/28 d, " + _fmt_pct(pct) + ")"
    n_k = _int_text(out["recorded_days"]) + " of " + _int_text(out["window_days"]) + " days recorded"
    n_base = _int_text(out["b_recorded"]) + " of " + _int_text(out["b_days"]) + " days recorded"
    rule = f"NICE TA260 after {k} cycles"
    conditions = [
        ~out["b_evaluable"].astype(bool),
        ~base_ok,
        ~reached,
        ongoing & pct.notna(),
        ongoing,
        pct.isna(),
        stop,
    ]
    states = ["not assessable", "not assessable", "pending", "pending", "pending", "not assessable", "stop"]
    reasons: list[str | pd.Series] = [
        rule + ": not assessable, baseline not evaluable (" + n_base + ")",
        rule + ": not assessable, no headache days at baseline",
        pd.Series(f"{rule}: pending, cycle {k} not reached yet", index=out.index),
        rule + f": pending, cycle {k} ongoing; provisional" + numbers,
        rule + f": pending, cycle {k} ongoing (" + n_k + ")",
        rule + f": not assessable, cycle {k} not evaluable (" + n_k + ")",
        f"NICE TA260: <{t:g}% reduction after {k} cycles" + numbers,
    ]
    out["stopping_state"] = np.select(conditions, states, "continue")
    out["stopping_reason"] = np.select(conditions, reasons, f"NICE TA260: ≥{t:g}% reduction after {k} cycles" + numbers)
    # pandas-stubs (2.3.3.260113) leaves pd.NA out of Series.where's other; pandas takes it.
    out["stopping_met"] = pd.Series(stop, dtype="boolean").where(assessed, pd.NA)  # type: ignore[call-overload]
    out["stopping_pct_change"] = pct.where(assessed | ongoing)
    return out[["patient_id", "stopping_state", "stopping_met", "stopping_pct_change", "stopping_reason"]]


# --- the daily diary grid and what is built on it


CALENDAR_CATEGORIES = (
    "not recorded",
    "headache-free",
    "headache below the headache-day hours",
    "headache day, mild or severity not given",
    "headache day, moderate",
    "headache day, severe",
)


def diary_days(analysis: Analysis, params: ClinicalParameters) -> pd.DataFrame:
    """The daily diary grid: every calendar day of a patient's follow-up, recorded or not, from the earlier of
    the first diary day and the baseline start to the later of the last diary day and the last cycle's end
    (never after as_of). An unrecorded day stays unrecorded (recorded = false, counts empty), never
    headache-free. A day is a headache day when headache_hours >= headache_min_hours (SPEC §3). Rolling
    headache days per 28 days on day t = headache days / recorded days x 28 over [t - 27, t], empty unless
    recorded days / 28 >= min_completeness; the 7-day moving average is the same over [t - 6, t] per 7 days.

    Columns: patient_id, date, cycle, day_in_cycle (empty outside every window), injection_cycle
    (the session given that day), the diary values, recorded, headache_day, category (index into
    CALENDAR_CATEGORIES), rolling_recorded, rolling_headache_days, rolling_mhd, ma7_recorded, ma7_headache_days.
    """
    config = analysis.config
    days, cycles = analysis.patient_days, analysis.patient_cycles
    span = (
        pd.concat(
            [
                days.groupby("patient_id")["date"].agg(["min", "max"]),
                cycles.groupby("patient_id").agg(min=("start_date", "min"), max=("end_date", "max")),
            ]
        )
        .groupby(level=0)
        .agg({"min": "min", "max": "max"})
    )
    # pandas-stubs types clip bounds as float or array only; pandas clips datetimes at a Timestamp.
    span["max"] = span["max"].clip(upper=analysis.as_of)  # type: ignore[call-overload]
    span = span[span["max"] >= span["min"]]
    lengths = ((span["max"] - span["min"]).dt.days + 1).to_numpy()
    starts = np.repeat(span["min"].to_numpy(), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    grid = pd.DataFrame(
        {
            "patient_id": pd.array(np.repeat(span.index.to_numpy(), lengths), dtype="string"),
            "date": starts + offsets.astype("timedelta64[D]"),
        }
    )
    windows = cycles[["patient_id", "cycle", "start_date", "end_date"]]
    grid = assign_days_to_windows(grid, windows)
    values = days[["patient_id", "date", "headache_hours", "migraine", "severity", "acute_medication"]]
    grid = grid.merge(values, on=["patient_id", "date"], how="left")
    sessions = cycles.loc[cycles["cycle"] >= 1, ["patient_id", "start_date", "cycle"]].rename(
        columns={"start_date": "date", "cycle": "injection_cycle"}
    )
    grid = grid.merge(sessions, on=["patient_id", "date"], how="left")
    grid = grid.sort_values(["patient_id", "date"], kind="stable").reset_index(drop=True)
    grid["injection_cycle"] = grid["injection_cycle"].astype("Int64")

    hours = grid["headache_hours"]
    grid["recorded"] = hours.notna()
    headache_day = pd.Series(hours >= config.headache_min_hours, dtype="boolean")
    # pandas-stubs (2.3.3.260113) leaves pd.NA out of Series.where's other; pandas takes it.
    grid["headache_day"] = headache_day.where(grid["recorded"], pd.NA)  # type: ignore[call-overload]
    severity = grid["severity"].fillna(0).astype("int64")
    grid["category"] = np.select(
        [~grid["recorded"], hours == 0, hours < config.headache_min_hours, severity == 3, severity == 2],
        [0, 1, 2, 5, 4],
        3,
    ).astype("int64")

    by_patient = grid["patient_id"]
    recorded = grid["recorded"].astype("int64")
    headaches = grid["headache_day"].fillna(False).astype("int64")
    for prefix, width in (("rolling", params.period_days), ("ma7", 7)):
        cum_recorded = recorded.groupby(by_patient, sort=False).cumsum()
        cum_headache = headaches.groupby(by_patient, sort=False).cumsum()
        # Days before a patient's grid are unrecorded, so the shifted cumulative count starts at 0.
        in_window = cum_recorded - cum_recorded.groupby(by_patient, sort=False).shift(width, fill_value=0)
        headache_in_window = cum_headache - cum_headache.groupby(by_patient, sort=False).shift(width, fill_value=0)
        enough = in_window / width >= config.min_completeness - TOLERANCE
        rate = (headache_in_window / in_window.replace(0, np.nan) * width).where(enough & (in_window > 0))
        grid[f"{prefix}_recorded"] = in_window.astype("int64")
        grid[f"{prefix}_headache_days"] = headache_in_window.astype("int64")
        grid[f"{prefix}_mhd" if prefix == "rolling" else f"{prefix}_headache_days_per_7"] = rate
    return grid


def weekly_profile(grid: pd.DataFrame, config: AnalysisConfig) -> pd.DataFrame:
    """Within-cycle weekly profile: for each cycle k >= 1, week w since the injection covers days 7(w-1)+1 .. 7w
    of the cycle; headache days per 7 days = headache days / recorded days x 7. A week is evaluable when it
    lies wholly inside the cycle (7 days) and recorded days / 7 >= min_completeness (5 of 7 with the default);
    otherwise its rate is empty.

    Columns: patient_id, cycle, week, days, recorded_days, headache_days, headache_days_per_7, evaluable.
    """
    inside = grid[grid["cycle"].notna() & (grid["cycle"] >= 1)]
    weeks = pd.DataFrame(
        {
            "patient_id": inside["patient_id"],
            "cycle": inside["cycle"].astype("int64"),
            "week": (inside["day_in_cycle"].astype("int64") - 1) // 7 + 1,
            "days": 1,
            "recorded_days": inside["recorded"].astype("int64"),
            "headache_days": inside["headache_day"].fillna(False).astype("int64"),
        }
    )
    out = weeks.groupby(["patient_id", "cycle", "week"], sort=True).sum().reset_index()
    out["evaluable"] = (out["days"] == 7) & (out["recorded_days"] / 7 >= config.min_completeness - TOLERANCE)
    rate = out["headache_days"] / out["recorded_days"].replace(0, np.nan) * 7
    out["headache_days_per_7"] = rate.where(out["evaluable"])
    return out


def onset_week(weekly: pd.DataFrame, cycles: pd.DataFrame, params: ClinicalParameters) -> pd.DataFrame:
    """Onset week of a cycle: the first week since the injection from which headache days per 7 days stay at
    least onset_reduction (30%) below the baseline's weekly rate (baseline headache days per 28 days x 7/28)
    for onset_confirm_weeks (2) consecutive evaluable weeks. Empty when the baseline is not eligible (not
    evaluable or no headache days) or no week qualifies.

    Columns: patient_id, cycle, baseline_per_7, onset_threshold_per_7, onset_week.
    """
    base = cycles.loc[(cycles["cycle"] == 0) & cycles["eligible"].astype(bool), ["patient_id", "mhd"]]
    base = base.assign(baseline_per_7=base["mhd"] * 7 / 28).drop(columns="mhd")
    base["onset_threshold_per_7"] = base["baseline_per_7"] * (1 - params.onset_reduction / 100)
    frame = weekly.merge(base, on="patient_id", how="inner").sort_values(["patient_id", "cycle", "week"], kind="stable")
    reduced = frame["evaluable"] & (frame["headache_days_per_7"] <= frame["onset_threshold_per_7"] + TOLERANCE)
    groups = [frame["patient_id"], frame["cycle"]]
    held = reduced.copy()
    for ahead in range(1, params.onset_confirm_weeks):
        later = reduced.groupby(groups, sort=False).shift(-ahead, fill_value=False).astype(bool)
        later_week = frame.groupby(groups, sort=False)["week"].shift(-ahead)
        held &= later & (later_week == frame["week"] + ahead)
    onset = frame[held].groupby(["patient_id", "cycle"], sort=False)["week"].min().rename("onset_week")
    treated = cycles.loc[cycles["cycle"] >= 1, ["patient_id", "cycle"]].merge(base, on="patient_id", how="left")
    out = treated.merge(onset, left_on=["patient_id", "cycle"], right_index=True, how="left")
    out["onset_week"] = out["onset_week"].astype("Int64")
    return out.reset_index(drop=True)


def wearing_off(
    grid: pd.DataFrame, cycles: pd.DataFrame, config: AnalysisConfig, params: ClinicalParameters
) -> pd.DataFrame:
    """Wearing-off in a complete cycle of W days: the late part is its last wearing_off_late_days (28) days but
    never before the day after the reference weeks (days max(57, W - 27) .. W with the defaults); the
    reference part is weeks 3-8 (days 15-56). Both are rated as headache days per 28 days over their recorded
    days. The cycle is assessable when it is complete, the late part spans >= wearing_off_min_late_days (14)
    days and both parts have recorded days / days >= min_completeness. Wearing-off is flagged when late -
    reference >= wearing_off_min_rise (2 headache days per 28 days) and late >= reference x (1 +
    wearing_off_min_relative) (25% higher).

    Columns: patient_id, cycle, reference_mhd, late_mhd, their recorded days and days, rise,
    assessable, wearing_off (boolean, empty when not assessable).
    """
    first_week, last_week = params.wearing_off_reference_weeks
    ref_start, ref_end = 7 * (first_week - 1) + 1, 7 * last_week
    inside = grid[grid["cycle"].notna() & (grid["cycle"] >= 1)]
    inside = inside.merge(
        cycles[["patient_id", "cycle", "window_days", "status"]].astype({"cycle": "Int64"}), on=["patient_id", "cycle"]
    )
    day = inside["day_in_cycle"].astype("int64")
    late_start = np.maximum(ref_end + 1, inside["window_days"] - params.wearing_off_late_days + 1)
    parts = pd.DataFrame(
        {
            "patient_id": inside["patient_id"],
            "cycle": inside["cycle"].astype("int64"),
            "reference_days": day.between(ref_start, ref_end).astype("int64"),
            "late_days": (day >= late_start).astype("int64"),
        }
    )
    recorded = inside["recorded"].astype("int64")
    headache = inside["headache_day"].fillna(False).astype("int64")
    for part in ("reference", "late"):
        parts[f"{part}_recorded"] = parts[f"{part}_days"] * recorded
        parts[f"{part}_headache_days"] = parts[f"{part}_days"] * headache
    sums = parts.groupby(["patient_id", "cycle"], sort=False).sum()
    out = cycles.loc[cycles["cycle"] >= 1, ["patient_id", "cycle", "status", "window_days"]].merge(
        sums, left_on=["patient_id", "cycle"], right_index=True, how="left"
    )
    count_columns = list(sums.columns)
    out[count_columns] = out[count_columns].fillna(0).astype("int64")
    for part in ("reference", "late"):
        out[f"{part}_mhd"] = out[f"{part}_headache_days"] / out[f"{part}_recorded"].replace(0, np.nan) * 28

    def complete_enough(part: str) -> pd.Series:
        share = out[f"{part}_recorded"] / out[f"{part}_days"].replace(0, np.nan)
        return share >= config.min_completeness - TOLERANCE

    out["assessable"] = (
        out["status"].eq("complete")
        & (out["reference_days"] == ref_end - ref_start + 1)
        & (out["late_days"] >= params.wearing_off_min_late_days)
        & complete_enough("reference")
        & complete_enough("late")
    )
    out["rise"] = (out["late_mhd"] - out["reference_mhd"]).where(out["assessable"])
    flagged = (out["rise"] >= params.wearing_off_min_rise - TOLERANCE) & (
        out["late_mhd"] >= out["reference_mhd"] * (1 + params.wearing_off_min_relative) - TOLERANCE
    )
    # pandas-stubs (2.3.3.260113) leaves pd.NA out of Series.where's other; pandas takes it.
    out["wearing_off"] = pd.Series(flagged, dtype="boolean").where(out["assessable"], pd.NA)  # type: ignore[call-overload]
    return out.drop(columns=["status", "window_days"]).reset_index(drop=True)


def conversion_periods(
    grid: pd.DataFrame, cycles: pd.DataFrame, config: AnalysisConfig, params: ClinicalParameters
) -> pd.DataFrame:
    """28-day periods since the first injection: period j covers days D1 + 28(j-1) .. D1 + 28j - 1 (D1 the first
    session), only complete periods up to the end of the diary grid; headache days per 28 days over recorded
    days; a period is evaluable when recorded days / 28 >= min_completeness.

    Columns: patient_id, period, start_date, end_date, days, recorded_days, headache_days, mhd, evaluable.
    """
    first = cycles.loc[cycles["cycle"] == 1, ["patient_id", "start_date"]].rename(
        columns={"start_date": "first_session"}
    )
    treated = grid.merge(first, on="patient_id", how="inner")
    treated = treated[treated["date"] >= treated["first_session"]]
    offset = (treated["date"] - treated["first_session"]).dt.days
    frame = pd.DataFrame(
        {
            "patient_id": treated["patient_id"],
            "period": offset // params.period_days + 1,
            "start_date": treated["first_session"]
            + pd.to_timedelta(offset // params.period_days * params.period_days, unit="D"),
            "days": 1,
            "recorded_days": treated["recorded"].astype("int64"),
            "headache_days": treated["headache_day"].fillna(False).astype("int64"),
        }
    )
    out = frame.groupby(["patient_id", "period", "start_date"], sort=True).sum().reset_index()
    out = out[out["days"] == params.period_days].reset_index(drop=True)
    out["end_date"] = out["start_date"] + pd.Timedelta(days=params.period_days - 1)
    out["evaluable"] = out["recorded_days"] / params.period_days >= config.min_completeness - TOLERANCE
    out["mhd"] = (out["headache_days"] / out["recorded_days"].replace(0, np.nan) * 28).where(out["recorded_days"] > 0)
    return out[
        ["patient_id", "period", "start_date", "end_date", "days", "recorded_days", "headache_days", "mhd", "evaluable"]
    ]


EPISODIC_PREFIX = {"nice": "episodic", "ehf": "ehf_episodic"}
NO_PERIOD_YET = "not yet assessable, no complete 28-day period since the first injection"


def episodic_conversion(
    periods: pd.DataFrame, cycles: pd.DataFrame, params: ClinicalParameters, variant: str = "nice"
) -> pd.DataFrame:
    """Episodic conversion: headache days per 28 days below the threshold (NICE: < episodic_max_days = 15; EHF
    variant: < ehf_max_days = 10) in episodic_periods (3) consecutive evaluable 28-day periods since the first
    injection; a period that is not evaluable breaks the run. Reported at the first time the run reaches 3
    periods, with the three rates; otherwise the longest run and the latest period.

    Returns one row per treated patient with columns prefixed ``episodic_`` (NICE) or
    ``ehf_episodic_`` (EHF): converted (boolean, empty without any complete period), converted_on
    (end of the third period), run (current run of periods below the threshold) and reason.
    """
    prefix = EPISODIC_PREFIX[variant]
    threshold = params.episodic_max_days if variant == "nice" else params.ehf_max_days
    label = "NICE TA260 episodic conversion" if variant == "nice" else "EHF episodic conversion"
    needed = params.episodic_periods
    if periods.empty:
        treated = _treated_patients(cycles)
        return pd.DataFrame(
            {
                "patient_id": treated["patient_id"],
                f"{prefix}_converted": pd.array([pd.NA] * len(treated), dtype="boolean"),
                f"{prefix}_converted_on": pd.Series(pd.NaT, index=treated.index, dtype="datetime64[ns]"),
                f"{prefix}_run": pd.array([pd.NA] * len(treated), dtype="Int64"),
                f"{prefix}_reason": pd.array(
                    [f"{label}: {NO_PERIOD_YET}"] * len(treated),
                    dtype="string",
                ),
            }
        )
    frame = periods.sort_values(["patient_id", "period"], kind="stable").reset_index(drop=True)
    below = frame["evaluable"] & (frame["mhd"] < threshold - TOLERANCE)
    by_patient = frame["patient_id"]
    # Run length of consecutive periods below the threshold (periods of a patient are consecutive).
    breaks = (~below).astype("int64").groupby(by_patient, sort=False).cumsum()
    run = below.astype("int64").groupby([by_patient, breaks], sort=False).cumsum()
    frame["run"] = run
    rates = [_fmt1(frame.groupby(by_patient, sort=False)["mhd"].shift(lag)) for lag in range(needed - 1, -1, -1)]
    starts = frame.groupby(by_patient, sort=False)["start_date"].shift(needed - 1)
    reached = frame[run >= needed].groupby("patient_id", sort=False).head(1)
    idx = reached.index
    reached_text = (
        f"{label}: <{threshold:g} headache days/28 d in {needed} consecutive 28-day periods (periods "
        + (frame.loc[idx, "period"] - needed + 1).astype("string")
        + "–"
        + frame.loc[idx, "period"].astype("string")
        + ", "
        + _fmt_date(starts.loc[idx])
        + " to "
        + _fmt_date(frame.loc[idx, "end_date"])
        + ": "
        + _joined([r.loc[idx] for r in rates])
        + ")"
    )
    converted = pd.DataFrame(
        {"patient_id": frame.loc[idx, "patient_id"], "converted_on": frame.loc[idx, "end_date"], "reason": reached_text}
    )
    last = frame.groupby("patient_id", sort=False).tail(1)
    longest = frame.groupby("patient_id", sort=False)["run"].max().rename("longest")
    latest = pd.DataFrame(
        {
            "patient_id": last["patient_id"],
            "run": last["run"].astype("int64"),
            "latest_text": (
                "latest period "
                + last["period"].astype("string")
                + " ("
                + _fmt_date(last["start_date"])
                + " to "
                + _fmt_date(last["end_date"])
                + "): "
                + np.where(last["evaluable"], _fmt1(last["mhd"]) + " headache days/28 d", "not evaluable")
                + " ("
                + last["recorded_days"].astype("string")
                + " of "
                + str(params.period_days)
                + " days recorded)"
            ),
        }
    ).merge(longest, left_on="patient_id", right_index=True)
    out = (
        _treated_patients(cycles)
        .merge(converted, on="patient_id", how="left")
        .merge(latest, on="patient_id", how="left")
    )
    has_periods = out["run"].notna()
    not_met = (
        f"{label} not met: longest run of periods <{threshold:g} is "
        + out["longest"].astype("Int64").astype("string").fillna("0")
        + f" of the {needed} needed; "
        + out["latest_text"].fillna("")
    )
    out["reason"] = np.where(
        out["converted_on"].notna(),
        out["reason"],
        np.where(has_periods, not_met, f"{label}: {NO_PERIOD_YET}"),
    )
    # pandas-stubs (2.3.3.260113) leaves pd.NA out of Series.where's other; pandas takes it.
    flag = pd.Series(out["converted_on"].notna(), dtype="boolean").where(has_periods, pd.NA)  # type: ignore[call-overload]
    return pd.DataFrame(
        {
            "patient_id": out["patient_id"],
            f"{prefix}_converted": flag,
            f"{prefix}_converted_on": out["converted_on"],
            f"{prefix}_run": out["run"].astype("Int64"),
            f"{prefix}_reason": out["reason"].astype("string"),
        }
    )


# --- questionnaires, adverse events, injection sites


HIT6_BANDS = (
    (36, 49, "little or no impact (≤49)"),
    (50, 55, "some impact (50–55)"),
    (56, 59, "substantial impact (56–59)"),
    (60, 78, "severe impact (≥60)"),
)
MIDAS_GRADES = (
    (0, 5, "I: little or no disability (0–5)"),
    (6, 10, "II: mild disability (6–10)"),
    (11, 20, "III: moderate disability (11–20)"),
    (21, 270, "IV: severe disability (≥21)"),
)
BANDED_INSTRUMENTS = {"HIT-6": HIT6_BANDS, "MIDAS": MIDAS_GRADES}


def questionnaire_bands(questionnaires: pd.DataFrame) -> pd.DataFrame:
    """Questionnaire bands: HIT-6 <=49 little or no impact, 50-55 some, 56-59 substantial, >=60 severe impact;
    MIDAS grade I 0-5, II 6-10, III 11-20, IV >=21. A score between two integer limits (e.g. 49.5) falls in
    the higher band. Other instruments have no band.

    Adds band (label) and band_level (1-4, empty without a band) to each questionnaire row.
    """
    out = questionnaires.sort_values(["patient_id", "date", "instrument"], kind="stable").reset_index(drop=True)
    score = out["score"].to_numpy(dtype="float64")
    conditions, levels, labels = [], [], []
    for instrument, bands in BANDED_INSTRUMENTS.items():
        upper_limits = np.array([high for _, high, _ in bands[:-1]], dtype="float64")
        index = np.searchsorted(upper_limits, score, side="left")
        conditions.append((out["instrument"] == instrument).to_numpy())
        levels.append(index + 1)
        labels.append(np.array([label for _, _, label in bands], dtype=object)[index])
    level = np.select(conditions, levels, 0)
    # numpy's stubs leave None out of np.select's default; numpy takes it as an object fill.
    out["band"] = pd.array(np.select(conditions, labels, None), dtype="string")  # type: ignore[call-overload]
    # pandas-stubs (2.3.3.260113) leaves pd.NA out of Series.where's other; pandas takes it.
    out["band_level"] = pd.Series(level, index=out.index, dtype="Int64").where(level > 0, pd.NA)  # type: ignore[call-overload]
    return out


def adverse_events_by_cycle(adverse_events: pd.DataFrame, cycles: pd.DataFrame) -> pd.DataFrame:
    """Adverse events by cycle: an event belongs to the cycle started by the session it followed (session k
    starts cycle k); days_to_onset = onset - session date; resolved when a resolved_date is given;
    duration_days = resolved - onset + 1 (empty when unresolved or onset unknown).

    Columns: the adverse_events columns plus cycle, cycle_end, days_to_onset, resolved, duration_days.
    """
    starts = cycles.loc[cycles["cycle"] >= 1, ["patient_id", "start_date", "end_date", "cycle"]].rename(
        columns={"start_date": "session_date", "end_date": "cycle_end"}
    )
    out = adverse_events.drop(columns=["line"], errors="ignore").merge(
        starts, on=["patient_id", "session_date"], how="left"
    )
    out["cycle"] = out["cycle"].astype("Int64")
    out["days_to_onset"] = (out["onset_date"] - out["session_date"]).dt.days.astype("Int64")
    out["resolved"] = out["resolved_date"].notna()
    out["duration_days"] = ((out["resolved_date"] - out["onset_date"]).dt.days + 1).astype("Int64")
    return out.sort_values(["patient_id", "session_date", "onset_date"], kind="stable").reset_index(drop=True)


# PREEMPT fixed-site, fixed-dose paradigm per side: (units, sites). 155 U / 31 sites in total.
PREEMPT_PER_SIDE: dict[str, tuple[float, int]] = {
    "corrugator": (5, 1),
    "procerus": (5, 1),
    "frontalis": (10, 2),
    "temporalis": (20, 4),
    "occipitalis": (15, 3),
    "cervical_paraspinal": (10, 2),
    "trapezius": (15, 3),
}
MIDLINE_MUSCLES = frozenset({"procerus"})
UNITS_PER_SITE = 5.0


def injection_sites(injections: pd.DataFrame) -> pd.DataFrame:
    """Injection sites against PREEMPT: per session, muscle and side, the fixed PREEMPT dose is 5 U per site with
    corrugator 1, procerus 1 (midline), frontalis 2, temporalis 4, occipitalis 3, cervical paraspinal 2 and
    trapezius 3 sites per side (155 U / 31 sites). Units and sites above that are follow-the-pain extras
    (extra_units, extra_sites; "other" muscles are all extra); fewer is below_protocol. Missing sites are
    taken as units / 5.

    Columns: the injections columns plus sites_given, standard_units, standard_sites, extra_units,
    extra_sites, below_protocol.
    """
    out = injections.drop(columns=["line"], errors="ignore").reset_index(drop=True)
    per_side = out["muscle"].map({m: u for m, (u, _) in PREEMPT_PER_SIDE.items()}).astype("float64")
    per_side_sites = out["muscle"].map({m: s for m, (_, s) in PREEMPT_PER_SIDE.items()}).astype("float64")
    # A bilateral muscle recorded without a side stands for both sides.
    sides = np.where(out["side"].isna() & ~out["muscle"].isin(list(MIDLINE_MUSCLES)), 2, 1)
    out["standard_units"] = (per_side * sides).fillna(0)
    out["standard_sites"] = (per_side_sites * sides).fillna(0).astype("int64")
    derived = (out["units"] / UNITS_PER_SITE).round()
    out["sites_given"] = out["sites"].astype("float64").fillna(derived).astype("int64")
    out["extra_units"] = (out["units"] - out["standard_units"]).clip(lower=0)
    out["extra_sites"] = (out["sites_given"] - out["standard_sites"]).clip(lower=0).astype("int64")
    out["below_protocol"] = out["units"] < out["standard_units"] - TOLERANCE
    return out


# --- one patient's header and badges (shared by the Patient page and the printable summary)


HEADER_MEASURES = (
    ("mhd", "headache_days", "Headache days / 28 d"),
    ("mmd", "migraine_days", "Migraine days / 28 d"),
    ("amd", "acute_med_days", "Acute-medication days / 28 d"),
)


def _window_label(row: pd.Series) -> str:
    if int(row["cycle"]) == 0:
        return "baseline"
    return f"cycle {int(row['cycle'])}" + (" (ongoing)" if row["status"] == "ongoing" else "")


def header_measures(cycles: pd.DataFrame) -> list[dict[str, Any]]:
    """Baseline and latest-cycle rates of one patient, each with its n of recorded days.

    ``cycles`` is one patient's rows of ``patient_cycles``. The latest cycle is the patient's last
    window (possibly ongoing or not evaluable, which is said); change is latest − baseline and is
    empty unless both windows are evaluable.
    """
    ordered = cycles.sort_values("cycle")
    if ordered.empty:
        return []
    base, latest = ordered.iloc[0], ordered.iloc[-1]
    both = bool(base["evaluable"]) and bool(latest["evaluable"]) and int(latest["cycle"]) > 0
    out = []
    for rate, _count, label in HEADER_MEASURES:
        b, v = base[rate], latest[rate]
        out.append(
            {
                "measure": label,
                "baseline": float(b) if pd.notna(b) else np.nan,
                "baseline_n": f"{int(base['recorded_days'])} of {int(base['window_days'])} days recorded",
                "baseline_evaluable": bool(base["evaluable"]),
                "latest": float(v) if pd.notna(v) and int(latest["cycle"]) > 0 else np.nan,
                "latest_label": _window_label(latest),
                "latest_n": f"{int(latest['recorded_days'])} of {int(latest['window_days'])} days recorded",
                "latest_evaluable": bool(latest["evaluable"]),
                "change": float(v - b) if both and pd.notna(v) and pd.notna(b) else np.nan,
            }
        )
    return out


def status_badges(row: pd.Series) -> list[tuple[str, str]]:
    """One patient's status as short badges (text, tone); tone is good, bad, warn, info or neutral."""
    badges: list[tuple[str, str]] = []
    klass = row["response_class"]
    tone = {"excellent": "good", "responder": "good", "partial": "warn", "non-responder": "bad"}.get(klass, "neutral")
    text = RESPONSE_CLASS_LABELS[klass]
    if klass != "not evaluable":
        change = _fmt_pct(pd.Series([row["latest_pct_change"]])).iloc[0]
        text += f" at cycle {int(row['latest_evaluable_cycle'])} ({change})"
    badges.append((text, tone))
    cumulative = row["cumulative_responder_50"]
    if pd.notna(cumulative) and bool(cumulative):
        badges.append((f"Cumulative 50% responder (first at cycle {int(row['first_response_cycle'])})", "good"))
    elif pd.notna(cumulative):
        badges.append(("Not yet a 50% responder", "neutral"))
    sustained = row["sustained_responder"]
    if pd.notna(sustained) and bool(sustained):
        badges.append((f"Sustained response from cycle {int(row['sustained_from_cycle'])}", "good"))
    elif pd.notna(sustained):
        badges.append(("No sustained response (50% in 2 consecutive cycles)", "neutral"))
    state = row["stopping_state"]
    badges.append(
        {
            "stop": ("NICE stopping rule met", "bad"),
            "continue": ("NICE stopping rule: continue", "good"),
            "pending": ("NICE stopping rule: pending", "info"),
        }.get(state, ("NICE stopping rule not assessable", "neutral"))
    )
    for prefix, label in (("episodic", "Episodic (<15 d, NICE)"), ("ehf_episodic", "Episodic (<10 d, EHF)")):
        if pd.notna(row[f"{prefix}_converted"]) and bool(row[f"{prefix}_converted"]):
            badges.append((f"{label} since {row[f'{prefix}_converted_on']:%d %b %Y}", "info"))
    assessable = int(row["wearing_off_assessable"])
    if assessable:
        flagged = int(row["wearing_off_cycles"])
        tone = "warn" if pd.notna(row["wearing_off_latest"]) and bool(row["wearing_off_latest"]) else "neutral"
        badges.append((f"Wearing-off in {flagged} of {assessable} assessable cycles", tone))
    return badges


# --- everything at once


@dataclass(frozen=True)
class ClinicalTables:
    """The patient-level tables for all patients, computed once per dataset and parameters."""

    params: ClinicalParameters
    status: pd.DataFrame
    """One row per treated patient: response, suitability, stopping rules, wearing-off, latest scores."""
    days: pd.DataFrame
    """The daily diary grid (``diary_days``)."""
    weekly: pd.DataFrame
    cycle_profile: pd.DataFrame
    """Per patient and cycle >= 1: onset week and the wearing-off assessment."""
    periods: pd.DataFrame
    adverse_events: pd.DataFrame
    questionnaires: pd.DataFrame
    injections: pd.DataFrame
    available: frozenset[str]
    """Optional input files that were provided (patients, injections, adverse_events, questionnaires)."""


def _latest_scores(questionnaires: pd.DataFrame) -> pd.DataFrame:
    latest = questionnaires[questionnaires["instrument"].isin(list(BANDED_INSTRUMENTS))]
    latest = (
        latest.sort_values(["patient_id", "instrument", "date"], kind="stable")
        .groupby(["patient_id", "instrument"])
        .tail(1)
    )
    wide = latest.pivot(index="patient_id", columns="instrument", values=["score", "band", "date"])
    wide.columns = [
        f"latest_{instrument.lower().replace('-', '')}_{what}" for what, instrument in cast(pd.MultiIndex, wide.columns)
    ]
    return wide.reset_index()


def patient_status(
    cycles: pd.DataFrame,
    patients: pd.DataFrame,
    config: AnalysisConfig,
    params: ClinicalParameters,
    periods: pd.DataFrame,
    profile: pd.DataFrame,
    questionnaires: pd.DataFrame,
) -> pd.DataFrame:
    """One row per treated patient joining every patient-level definition (the Clinic page's worklist source)."""
    latest_cycle = (
        cycles[cycles["cycle"] >= 1].sort_values(["patient_id", "cycle"], kind="stable").groupby("patient_id").tail(1)
    )
    latest_cycle = latest_cycle[
        [
            "patient_id",
            "cycle",
            "status",
            "start_date",
            "end_date",
            "window_days",
            "recorded_days",
            "completeness",
            "evaluable",
            "mhd",
            "mmd",
            "amd",
            "mhd_pct_change",
            "n_sessions",
        ]
    ].rename(columns=lambda c: c if c in ("patient_id", "n_sessions") else f"current_{c}")
    assessed = profile[profile["assessable"]].sort_values(["patient_id", "cycle"], kind="stable")
    wearing = assessed.groupby("patient_id").agg(
        wearing_off_cycles=("wearing_off", "sum"),
        wearing_off_assessable=("wearing_off", "size"),
        wearing_off_latest=("wearing_off", "last"),
    )
    with_onset = profile[profile["onset_week"].notna()].sort_values(["patient_id", "cycle"], kind="stable")
    onset = with_onset.groupby("patient_id")["onset_week"].last()
    out = _treated_patients(cycles)
    for part in (
        response_class(cycles),
        cumulative_response(cycles),
        sustained_response(cycles),
        baseline_suitability(cycles, patients, params),
        nice_stopping_rule(cycles, config, params),
        episodic_conversion(periods, cycles, params, "nice"),
        episodic_conversion(periods, cycles, params, "ehf"),
        latest_cycle,
    ):
        out = out.merge(part, on="patient_id", how="left")
    out = out.merge(wearing, left_on="patient_id", right_index=True, how="left")
    out = out.merge(
        onset.rename("latest_onset_week").astype("Int64"), left_on="patient_id", right_index=True, how="left"
    )
    out["wearing_off_cycles"] = out["wearing_off_cycles"].fillna(0).astype("int64")
    out["wearing_off_assessable"] = out["wearing_off_assessable"].fillna(0).astype("int64")
    out["wearing_off_latest"] = out["wearing_off_latest"].astype("boolean")
    out = out.merge(_latest_scores(questionnaires), on="patient_id", how="left")
    return out


def clinical_tables(analysis: Analysis, dataset: Dataset, params: ClinicalParameters | None = None) -> ClinicalTables:
    """Compute every patient-level table for all patients from one analysis (vectorised, once)."""
    params = params or ClinicalParameters()
    config, cycles = analysis.config, analysis.patient_cycles
    grid = diary_days(analysis, params)
    weekly = weekly_profile(grid, config)
    profile = onset_week(weekly, cycles, params).merge(
        wearing_off(grid, cycles, config, params), on=["patient_id", "cycle"], how="left"
    )
    periods = conversion_periods(grid, cycles, config, params)
    as_of = analysis.as_of
    questionnaires = questionnaire_bands(dataset.tables["questionnaires"].loc[lambda q: q["date"] <= as_of])
    status = patient_status(cycles, dataset.tables["patients"], config, params, periods, profile, questionnaires)
    available = frozenset(
        stem
        for stem in ("patients", "injections", "adverse_events", "questionnaires")
        if dataset.present_columns.get(stem)
    )
    return ClinicalTables(
        params=params,
        status=status,
        days=grid,
        weekly=weekly,
        cycle_profile=profile,
        periods=periods,
        adverse_events=adverse_events_by_cycle(
            dataset.tables["adverse_events"].loc[lambda a: a["session_date"] <= as_of], cycles
        ),
        questionnaires=questionnaires,
        injections=injection_sites(dataset.tables["injections"].loc[lambda i: i["session_date"] <= as_of]),
        available=available,
    )


# --- the data dictionary's view of these definitions


def _definition(name: str, function: Callable[..., object], parameters: tuple[str, ...]) -> dict[str, object]:
    doc = inspect.getdoc(function) or ""
    # Docstrings are ASCII; the dictionary shows the comparison signs a reader expects.
    text = doc.split("\n\n")[0].replace("\n", " ").replace(">=", "≥").replace("<=", "≤")
    return {"name": name, "definition": text, "parameters": parameters}


DEFINITIONS: list[dict[str, object]] = [
    _definition(
        "Response class at the latest evaluable cycle",
        response_class,
        ("responder_thresholds", "min_completeness", "min_window_days"),
    ),
    _definition("Cumulative responder (50%)", cumulative_response, ("responder_thresholds",)),
    _definition("Sustained response", sustained_response, ("responder_thresholds",)),
    _definition(
        "Suitability at baseline",
        baseline_suitability,
        (
            "chronic_min_headache_days",
            "chronic_min_migraine_days",
            "min_prior_preventives",
            "overuse_acute_days",
            "baseline_days",
            "min_completeness",
        ),
    ),
    _definition("NICE TA260 stopping rule", nice_stopping_rule, ("stopping_cycle", "stopping_min_reduction")),
    _definition("28-day periods since the first injection", conversion_periods, ("period_days", "min_completeness")),
    _definition(
        "Episodic conversion (NICE) and the EHF variant",
        episodic_conversion,
        ("episodic_max_days", "ehf_max_days", "episodic_periods", "period_days"),
    ),
    _definition(
        "Daily diary grid, rolling 28-day headache days, 7-day moving average",
        diary_days,
        ("headache_min_hours", "period_days", "min_completeness"),
    ),
    _definition("Within-cycle weekly profile", weekly_profile, ("headache_min_hours", "min_completeness")),
    _definition("Onset week", onset_week, ("onset_reduction", "onset_confirm_weeks")),
    _definition(
        "Wearing-off",
        wearing_off,
        (
            "wearing_off_reference_weeks",
            "wearing_off_late_days",
            "wearing_off_min_late_days",
            "wearing_off_min_rise",
            "wearing_off_min_relative",
            "min_completeness",
        ),
    ),
    _definition("Questionnaire bands (HIT-6, MIDAS)", questionnaire_bands, ()),
    _definition("Adverse events by cycle", adverse_events_by_cycle, ()),
    _definition("Injection sites and follow-the-pain extras", injection_sites, ()),
]


def definitions_with_values(config: AnalysisConfig, params: ClinicalParameters) -> list[dict[str, str]]:
    """DEFINITIONS with each parameter written as name = current value (SPEC §3 or clinical parameter)."""
    values = {**config.parameters(), **params.parameters()}
    return [
        {
            "name": str(d["name"]),
            "definition": str(d["definition"]),
            "parameters": "; ".join(f"{p} = {values[p]}" for p in cast("tuple[str, ...]", d["parameters"])),
        }
        for d in DEFINITIONS
    ]
