"""Patient-level clinical views beyond SPEC §3's core: status in words, profiles, side effects and sites.

The flags a doctor acts on (chronic baseline, suitability, sustained response, treatment state, the
NICE and EHF non-response rules, conversion to episodic migraine, stop indicated) are SPEC §5's and
are computed once by ``analytics.definitions.status`` into ``analysis.patient_status``; this module reads those
columns and only puts them into words, with the rule's numbers taken from the per-patient-cycle
table. Its own definitions (response class, the daily diary grid, the weekly profile, onset and
wearing-off, questionnaire bands, injection sites) are built from the tables ``pipeline.analyse``
returns plus the optional input files, on all patients at once with group-bys and merges, so the
Patient page filters one patient out of tables computed once; only the daily grid is built for one
patient at a time (``patient_calendar``), since a grid of every patient's calendar days is millions
of rows. Each own definition states itself in the first paragraph of its docstring and
``DEFINITIONS`` collects those paragraphs; the data
dictionary renders them, and SPEC §5's (``analytics.views.dictionary.STATUS_DEFINITIONS``), with the current
parameter values, and so does the printable summary (``definitions_with_values``).
Thresholds that are not parameters of ``AnalysisConfig`` live in ``ClinicalParameters`` with their basis.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from analytics.definitions.config import AnalysisConfig
from analytics.definitions.cycles import assign_days_to_windows
from analytics.definitions.pipeline import Analysis, PatientDays
from analytics.definitions.registry import Definition
from analytics.ingest.load import Dataset
from analytics.views.dictionary import STATUS_DEFINITIONS, fill, parameter_values

MINUS = "−"


def _param(default: object, doc: str, basis: str) -> Any:
    return field(default=default, metadata={"doc": doc, "basis": basis})


@dataclass(frozen=True)
class ClinicalParameters:
    """Thresholds of the project's own patient-level definitions; defaults follow the cited guidance.

    The SPEC §5 thresholds (chronic migraine, prior preventives, medication overuse, the NICE and EHF
    rules, episodic conversion) are ``AnalysisConfig`` fields, not repeated here.
    """

    period_days: int = _param(
        28, "Length of the rolling window of headache days on the Patient page (days).", "one diary month of 28 days"
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


def shown_change(value: float | None, decimals: int = 1) -> float | None:
    """A change as a number to show (a metric's delta): rounded to ``decimals`` places, with a value that rounds
    to −0 shown as 0 (a change too small to show is no change, not a fall); None when the change is empty."""
    if value is None or pd.isna(value):
        return None
    return round(float(value), decimals) + 0.0  # −0.0 + 0.0 is 0.0


def signed(value: float | None, decimals: int = 0, suffix: str = "") -> str:
    """A change as text with its sign (+3.0, −18%), a typographic minus, and no sign when it rounds to 0
    ("0%", never "−0%"); "—" when empty."""
    shown = shown_change(value, decimals)
    if shown is None:
        return "—"
    text = f"{shown:.{decimals}f}" if shown == 0 else f"{shown:+.{decimals}f}"
    return text.replace("-", MINUS) + suffix


def _fmt_pct(values: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce").astype("float64")
    return numbers.map(lambda v: signed(v, 0, "%")).astype(object).where(numbers.notna(), "—")


def _fmt_date(values: pd.Series) -> pd.Series:
    return values.dt.strftime("%Y-%m-%d").astype(object).where(values.notna(), "—")


def _int_text(values: pd.Series) -> pd.Series:
    return values.astype("Int64").astype("string").fillna("—").astype(object)


def _joined(texts: list[pd.Series], separator: str = ", ") -> pd.Series:
    out = texts[0]
    for text in texts[1:]:
        out = out + separator + text
    return out


def _treated_patients(cycles: pd.DataFrame) -> pd.DataFrame:
    """One row per treated patient (every treated patient has a baseline row, cycle 0)."""
    return cycles.loc[cycles["cycle"] == 0, ["patient_id"]].reset_index(drop=True)


def _is_true(values: pd.Series) -> pd.Series:
    """A nullable boolean column as plain booleans, empty counting as false."""
    return values.eq(True).fillna(False).astype(bool)


# --- response status


EXCELLENT, RESPONDER, PARTIAL, NON_RESPONDER = (
    "≥75% excellent",
    "50–<75% responder",
    "30–<50% partial",
    "<30% non-responder",
)
NOT_EVALUABLE, NOT_REACHED = "not evaluable", "did not reach cycle"
RESPONSE_CLASSES = (EXCELLENT, RESPONDER, PARTIAL, NON_RESPONDER, NOT_EVALUABLE, NOT_REACHED)
RESPONSE_CLASS_LABELS = {
    EXCELLENT: "Excellent responder (≥75%)",
    RESPONDER: "Responder (50–<75%)",
    PARTIAL: "Partial responder (30–<50%)",
    NON_RESPONDER: "Non-responder (<30%)",
    NOT_EVALUABLE: "Response not evaluable",
    NOT_REACHED: "Cycle not reached",
}


def _flag(frame: pd.DataFrame, column: str) -> pd.Series:
    return _is_true(frame[column]) if column in frame else pd.Series(False, index=frame.index)


def response_class(cycles: pd.DataFrame, cycle: int | None = None) -> pd.DataFrame:
    """Response class of a cycle k >= 1 with a change from baseline (SPEC §3 mhd_pct_change: cycle and baseline
    evaluable, baseline > 0), from the SPEC responder flags: >=75% excellent (responder_75), 50-<75% responder
    (responder_50), 30-<50% partial (responder_30) or <30% non-responder; "not evaluable" when the cycle has no
    change, "did not reach cycle" when the patient has fewer than k sessions. The Patient page classes the
    latest cycle with a change ("not evaluable" when no cycle has one); the Outcomes page's Table 1 a chosen cycle.

    Returns one row per treated patient: response_cycle (the cycle classed, empty when none),
    response_mhd, response_pct_change and response_class (one of ``RESPONSE_CLASSES``).
    """
    treated = cycles[cycles["cycle"] >= 1]
    if cycle is None:
        valued = treated[treated["mhd_pct_change"].notna()]
        chosen = valued.sort_values(["patient_id", "cycle"], kind="stable").groupby("patient_id", sort=False).tail(1)
    else:
        chosen = treated[treated["cycle"] == cycle]
    r50 = _flag(chosen, "responder_50")
    # Without a 30% threshold in the parameters there is no partial class: a 50% non-responder is below 30%.
    r30 = _flag(chosen, "responder_30") if "responder_30" in chosen else r50
    classes = np.select(
        [chosen["mhd_pct_change"].isna(), _flag(chosen, "responder_75"), r50, r30],
        [NOT_EVALUABLE, EXCELLENT, RESPONDER, PARTIAL],
        NON_RESPONDER,
    )
    found = pd.DataFrame(
        {
            "patient_id": chosen["patient_id"].to_numpy(),
            "response_cycle": chosen["cycle"].to_numpy(),
            "response_mhd": chosen["mhd"].to_numpy(dtype="float64"),
            "response_pct_change": chosen["mhd_pct_change"].to_numpy(dtype="float64"),
            "response_class": classes,
        }
    )
    out = _treated_patients(cycles).merge(found, on="patient_id", how="left")
    out["response_class"] = out["response_class"].fillna(NOT_EVALUABLE if cycle is None else NOT_REACHED)
    out["response_cycle"] = out["response_cycle"].astype("Int64")
    return out


def response_milestones(cycles: pd.DataFrame) -> pd.DataFrame:
    """Cycle numbers shown beside SPEC §5's ever_responder_50 and sustained_responder_50 (display only): the
    first cycle with responder_50 true, and the first k with responder_50 true in cycles k and k+1.

    Returns one row per treated patient: first_response_cycle and sustained_from_cycle (empty when none).
    """
    treated = cycles[cycles["cycle"] >= 1].sort_values(["patient_id", "cycle"], kind="stable")
    responded = _is_true(treated["responder_50"])
    first = treated.loc[responded].groupby("patient_id", sort=False)["cycle"].min().rename("first_response_cycle")
    # Cycles of a patient are consecutive integers, so the previous row is cycle k - 1.
    pair = responded & responded.groupby(treated["patient_id"], sort=False).shift(1, fill_value=False).astype(bool)
    sustained = (treated.loc[pair].groupby("patient_id", sort=False)["cycle"].min() - 1).rename("sustained_from_cycle")
    out = _treated_patients(cycles).merge(first, left_on="patient_id", right_index=True, how="left")
    out = out.merge(sustained, left_on="patient_id", right_index=True, how="left")
    return out.astype({"first_response_cycle": "Int64", "sustained_from_cycle": "Int64"})


# --- per cycle: medication overuse and late re-injections


def cycle_flags(cycles: pd.DataFrame, config: AnalysisConfig) -> pd.DataFrame:
    """Medication overuse per window and late re-injection per session: a window (the baseline or cycle k) shows
    overuse when its acute-medication days per 28 days (amd) are >= overuse_acute_days, compared with SPEC's
    1e-9 tolerance as SPEC §5.1 overuse_at_baseline is; empty when amd is empty (no acute_medication column or
    no recorded day) or the window is not evaluable. Session k (k >= 2) is a late re-injection when it came more
    than on_time_max_days after session k - 1 (interval_days = Dk - D(k-1)); empty for the first session.

    ``cycles`` are rows of ``patient_cycles`` (all patients or one); returns them with overuse (boolean),
    interval_days, late_reinjection (boolean) and days_late (interval_days - on_time_max_days when late) added.
    """
    out = cycles.copy()
    amd = out["amd"].astype("float64")
    known = out["evaluable"].astype(bool) & amd.notna()
    overuse = (amd >= config.overuse_acute_days - config.tolerance).to_numpy(dtype=bool)
    out["overuse"] = pd.Series(overuse, index=out.index, dtype="boolean").mask(~known)
    sessions = out.loc[out["cycle"] >= 1, ["patient_id", "cycle", "start_date"]].sort_values(
        ["patient_id", "cycle"], kind="stable"
    )
    # Cycles of a patient are consecutive, so the previous treated row is session k - 1.
    previous = sessions.groupby("patient_id", sort=False)["start_date"].shift(1)
    interval = (sessions["start_date"] - previous).dt.days.astype("Int64")
    out["interval_days"] = interval.reindex(out.index)
    late = out["interval_days"] > config.on_time_max_days
    out["late_reinjection"] = late.astype("boolean")
    out["days_late"] = (out["interval_days"] - config.on_time_max_days).where(late.fillna(False).astype(bool))
    return out


# --- suitability at baseline, in words (SPEC §5.1 chronic_at_baseline, overuse_at_baseline, suitable_nice)


def _mark(value: Any) -> str:
    return "unknown" if value is None or pd.isna(value) else ("met" if bool(value) else "not met")


def suitability_statements(row: pd.Series, config: AnalysisConfig) -> list[tuple[str, str]]:
    """The suitability criteria of one patient's status row in words, marked met, not met, unknown or caution.

    The marks are SPEC §5's chronic_at_baseline and suitable_nice (and overuse_at_baseline beside the
    recorded medication_overuse); only the prior-preventives line compares its count with the
    parameter itself. Medication overuse is not an exclusion (NICE TA260 asks that it be managed), so
    it is marked caution when present rather than not met.
    """
    evaluable = bool(row["baseline_evaluable"])
    n = f"{int(row['baseline_recorded_days'])} of {int(row['baseline_window_days'])} days recorded"
    if not evaluable:
        chronic = (
            f"Baseline not evaluable ({n}, {row['baseline_completeness']:.0%}): chronic migraine cannot be confirmed "
            "from the diary"
        )
    else:
        headache = f"≥{config.chronic_min_headache_days:g} headache days"
        if pd.notna(row["baseline_mmd"]):
            measured = f"{row['baseline_mhd']:.1f} headache days and {row['baseline_mmd']:.1f} migraine days / 28 d"
            needs = f"{headache}, ≥{config.chronic_min_migraine_days:g} of them migraine days"
        else:
            measured = f"{row['baseline_mhd']:.1f} headache days / 28 d"
            needs = (
                f"{headache}; diary.csv has no migraine column, so the ≥{config.chronic_min_migraine_days:g} "
                "migraine-day criterion is not applied"
            )
        chronic = f"Baseline {measured} (chronic migraine needs {needs}; {n})"
    statements: list[tuple[str, str]] = [(chronic, _mark(row["chronic_at_baseline"]))]
    prior, needed = row["prior_preventives"], config.min_prior_preventives
    if pd.isna(prior):
        statements.append((f"Prior preventives not recorded (NICE asks for ≥{needed} failed)", "unknown"))
    else:
        met = "met" if int(prior) >= needed else "not met"
        statements.append((f"{int(prior)} prior preventives failed (NICE asks for ≥{needed})", met))
    overuse = row["medication_overuse"]
    overuse_text = "not recorded" if pd.isna(overuse) else ("yes" if overuse else "no")
    signal = pd.notna(row["overuse_at_baseline"]) and bool(row["overuse_at_baseline"])
    diary = ""
    if pd.notna(row["baseline_amd"]) and evaluable:
        diary = f"; acute medication on {row['baseline_amd']:.1f} days / 28 d at baseline"
        if signal:
            diary += f" (≥{config.overuse_acute_days:g}: overuse likely)"
    if pd.isna(overuse):
        mark = "caution" if signal else "unknown"
    else:
        mark = "caution" if bool(overuse) or signal else "met"
    if mark == "caution":
        diary += "; to be managed alongside treatment (NICE)"
    statements.append((f"Medication overuse: {overuse_text}{diary}", mark))
    suitable = row["suitable_nice"]
    verdict = "unknown" if pd.isna(suitable) else ("yes" if suitable else "no")
    statements.append(
        (f"Suitable under NICE TA260 (chronic migraine and ≥{needed} failed preventives): {verdict}", _mark(suitable))
    )
    return statements


# --- the stopping rules in words (SPEC §5.2 nice_state and ehf_state, §5.3 episodic conversion)


def _cycle_column(cycles: pd.DataFrame, cycle: int, column: str, ids: pd.Series) -> pd.Series:
    """One column of cycle ``cycle`` for the patients ``ids`` (empty where a patient has no such cycle)."""
    values = cycles.loc[cycles["cycle"] == cycle].set_index("patient_id")[column]
    return pd.Series(values.reindex(ids.to_numpy()).to_numpy(), index=ids.index)


def stop_rules(status: pd.DataFrame, config: AnalysisConfig) -> pd.Series:
    """The rules behind SPEC §5's stop_indicated, named: NICE 30% (nice_state stop), EHF (ehf_state stop),
    episodic now (episodic_now); empty text when none holds."""
    names = [
        (status["nice_state"].eq("stop"), f"NICE {config.stopping_min_reduction:g}%"),
        (status["ehf_state"].eq("stop"), "EHF"),
        (_is_true(status["episodic_now"]), "episodic now"),
    ]
    texts = [pd.Series(np.where(held, name, ""), index=status.index) for held, name in names]
    joined = _joined(texts, "; ").str.replace(r"(; )+", "; ", regex=True).str.strip("; ")
    return joined.astype(object)


def rule_statements(status: pd.DataFrame, cycles: pd.DataFrame, config: AnalysisConfig) -> pd.DataFrame:
    """Each stopping-rule state of SPEC §5 in words with the rule's numbers (presentation only).

    ``status`` has SPEC §5's columns (one row per patient); the numbers come from the per-patient-cycle
    table. Returns patient_id, nice_reason, ehf_reason, episodic_reason, ehf_episodic_reason and
    stop_rules, e.g. "NICE TA260: <30% reduction after 2 cycles (21.0 → 17.2 headache days/28 d, −18%)".
    """
    ids = status["patient_id"]
    s, c, t = config.stopping_cycle, config.ehf_cycles, config.stopping_min_reduction
    state = status["treatment_state"].astype(object)
    base_n = (
        _int_text(_cycle_column(cycles, 0, "recorded_days", ids))
        + " of "
        + _int_text(_cycle_column(cycles, 0, "window_days", ids))
        + " days recorded"
    )
    no_baseline = ~_is_true(status["baseline_evaluable"])
    no_headache = ~no_baseline & ~(status["baseline_mhd"] > 0).fillna(False)

    def cycle_n(k: int) -> pd.Series:
        recorded, days = _cycle_column(cycles, k, "recorded_days", ids), _cycle_column(cycles, k, "window_days", ids)
        return _int_text(recorded) + " of " + _int_text(days) + " days recorded"

    def baseline_reasons(rule: str) -> list[tuple[pd.Series, pd.Series | str]]:
        return [
            (no_baseline, rule + ": not assessable, baseline not evaluable (" + base_n + ")"),
            (no_headache, f"{rule}: not assessable, no headache days at baseline"),
        ]

    def choose(rows: list[tuple[pd.Series, pd.Series | str]]) -> pd.Series:
        conditions = [condition.to_numpy(dtype=bool) for condition, _ in rows]
        texts = [
            np.asarray(text if isinstance(text, pd.Series) else pd.Series(text, index=ids.index), dtype=object)
            for _, text in rows
        ]
        return pd.Series(np.select(conditions, texts, ""), index=ids.index, dtype=object)

    pct_s, mhd_s = _cycle_column(cycles, s, "mhd_pct_change", ids), _cycle_column(cycles, s, "mhd", ids)
    numbers = (
        " (" + _fmt1(status["baseline_mhd"]) + " → " + _fmt1(mhd_s) + " headache days/28 d, " + _fmt_pct(pct_s) + ")"
    )
    not_started = status["n_sessions"] < s
    nice_rule, nice = f"NICE TA260 after {s} cycles", status["nice_state"]
    provisional: pd.Series = pd.Series(np.where(pct_s.notna(), "; provisional" + numbers, ""), index=ids.index)
    nice_reason = choose(
        [
            (nice.eq("stop"), f"NICE TA260: <{t:g}% reduction after {s} cycles" + numbers),
            (nice.eq("continue"), f"NICE TA260: ≥{t:g}% reduction after {s} cycles" + numbers),
            (nice.eq("pending") & not_started, f"{nice_rule}: pending, cycle {s} not reached yet"),
            (nice.eq("pending"), nice_rule + f": pending, cycle {s} ongoing (" + cycle_n(s) + ")" + provisional),
            (
                nice.eq("not reached"),
                nice_rule + ": not reached, treatment " + state + f" before cycle {s} was complete",
            ),
            *baseline_reasons(nice_rule),
            (nice.eq("not assessable"), nice_rule + f": not assessable, cycle {s} not evaluable (" + cycle_n(s) + ")"),
        ]
    )

    changes = _joined([_fmt_pct(_cycle_column(cycles, k, "mhd_pct_change", ids)) for k in range(1, c + 1)])
    cycles_text = f" (cycles 1–{c}: " if c > 1 else " (cycle 1: "
    ehf_numbers = cycles_text + changes + ")"
    ehf_rule, ehf = f"EHF after {c} cycles", status["ehf_state"]
    ehf_reason = choose(
        [
            (ehf.eq("continue"), f"EHF: ≥{t:g}% reduction within the first {c} cycles" + ehf_numbers),
            (ehf.eq("stop"), f"EHF: <{t:g}% reduction in each of the first {c} cycles" + ehf_numbers),
            (
                ehf.eq("pending") & (status["n_sessions"] < c),
                f"{ehf_rule}: pending, cycle {c} not reached yet" + ehf_numbers,
            ),
            (ehf.eq("pending"), f"{ehf_rule}: pending, cycle {c} ongoing" + ehf_numbers),
            (ehf.eq("not reached"), ehf_rule + ": not reached, treatment " + state + f" before cycle {c} was complete"),
            *baseline_reasons(ehf_rule),
            (
                ehf.eq("not assessable"),
                f"{ehf_rule}: not assessable, a complete cycle among 1–{c} is not evaluable" + ehf_numbers,
            ),
        ]
    )

    out = pd.DataFrame({"patient_id": ids, "nice_reason": nice_reason, "ehf_reason": ehf_reason})
    chronic = status["chronic_at_baseline"]
    for prefix, label, threshold in (
        ("", "NICE TA260", config.episodic_max_days),
        ("ehf_", "EHF", config.ehf_episodic_max_days),
    ):
        rule = (
            f"{label} episodic conversion (<{threshold:g} headache days/28 d in {config.episodic_periods} "
            "consecutive 28-day periods)"
        )
        converted, now = status[f"{prefix}episodic_converted_on"], status[f"{prefix}episodic_now"]
        since = pd.Series(
            np.where(converted.notna(), "converted on " + _fmt_date(converted), "no conversion yet"),
            index=ids.index,
            dtype=object,
        )
        periods = f"the last {config.episodic_periods} 28-day periods"
        current = choose(
            [
                (_is_true(now), f"episodic now (each of {periods} below {threshold:g})"),
                (now.eq(False).fillna(False), f"not episodic now (one of {periods} at {threshold:g} or more)"),
                (pd.Series(True, index=ids.index), f"not judged now ({periods} are too few or not all evaluable)"),
            ]
        )
        out[f"{prefix}episodic_reason"] = choose(
            [
                (chronic.isna(), f"{rule}: not assessable, chronic migraine at baseline not established"),
                (chronic.eq(False).fillna(False), f"{rule}: does not apply, migraine was not chronic at baseline"),
                (pd.Series(True, index=ids.index), rule + ": " + since + "; " + current),
            ]
        )
    out["stop_rules"] = stop_rules(status, config)
    return out.reset_index(drop=True)


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
    return _calendar(analysis.patient_days, analysis.patient_cycles, analysis.as_of, analysis.config, params)


def patient_calendar(
    analysis: Analysis,
    patient_id: str,
    params: ClinicalParameters,
    days: PatientDays | None = None,
) -> pd.DataFrame:
    """One patient's daily diary grid (``diary_days``), built from that patient's rows only: the same rows as the
    all-patient grid's for this patient. ``days`` (``analysis.days_by_patient()``) finds the patient's days
    without scanning the whole per-patient-day frame (and, for an analysis read from the store, reads only them)."""
    cycles = analysis.patient_cycles
    if days is None:
        own_days = analysis.patient_days[analysis.patient_days["patient_id"] == patient_id]
    else:
        own_days = days.of(patient_id)
    own_cycles = cycles[cycles["patient_id"] == patient_id]
    return _calendar(own_days, own_cycles, analysis.as_of, analysis.config, params)


def _with_day_flags(days: pd.DataFrame, config: AnalysisConfig) -> pd.DataFrame:
    """``days`` with recorded (headache_hours given) and headache_day (SPEC §3; empty when not recorded)."""
    hours = days["headache_hours"]
    recorded = hours.notna()
    # pandas-stubs: Series.where does not take pd.NA as other
    headache_day = pd.Series(hours >= config.headache_min_hours, dtype="boolean").where(recorded, pd.NA)  # type: ignore[call-overload]
    return days.assign(recorded=recorded, headache_day=headache_day)


def _calendar(
    days: pd.DataFrame, cycles: pd.DataFrame, as_of: pd.Timestamp, config: AnalysisConfig, params: ClinicalParameters
) -> pd.DataFrame:
    """``diary_days`` over the given patients' per-patient-day rows and per-patient-cycle rows.

    The grid holds each patient's days in one block, patients in id order and days in date order, so a
    (patient, date) has a row number (block start + days since the patient's first day): the diary values and
    the sessions are put in their rows by that number, and the rolling counts are differences of cumulative
    sums within a block, with no merge, sort or group-by (a patient switch builds one patient's grid).
    """
    patient_ids = pd.concat([days["patient_id"], cycles["patient_id"]], ignore_index=True)
    span = pd.DataFrame(
        {
            "min": pd.concat([days["date"], cycles["start_date"]], ignore_index=True).groupby(patient_ids).min(),
            "max": pd.concat([days["date"], cycles["end_date"]], ignore_index=True).groupby(patient_ids).max(),
        }
    )
    # pandas-stubs: Series.clip takes no Timestamp bound
    span["max"] = span["max"].clip(upper=as_of)  # type: ignore[call-overload]
    span = span[span["max"] >= span["min"]]
    lengths = ((span["max"] - span["min"]).dt.days + 1).to_numpy()
    block = np.cumsum(lengths) - lengths  # each patient's first row
    first_day = span["min"].to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    offsets = np.arange(lengths.sum()) - np.repeat(block, lengths)  # days since the patient's first day
    grid = pd.DataFrame(
        {
            "patient_id": pd.array(np.repeat(span.index.to_numpy(), lengths), dtype="string"),
            "date": (np.repeat(first_day, lengths) + offsets).astype("datetime64[ns]"),
        }
    )
    windows = cycles[["patient_id", "cycle", "start_date", "end_date"]]
    grid = assign_days_to_windows(grid, windows)  # keeps the grid's order

    def taken(ids: pd.Series, dates: pd.Series) -> np.ndarray:
        """For each grid row, the position of the (ids, dates) row on that day, or -1 (pairs are unique)."""
        patient = span.index.get_indexer(pd.Index(ids))
        known = patient >= 0
        patient = np.where(known, patient, 0)
        day = (dates.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]") - first_day[patient]).astype("int64")
        inside = known & (day >= 0) & (day < lengths[patient])
        positions = np.full(len(grid), -1, dtype="int64")
        positions[block[patient[inside]] + day[inside]] = np.flatnonzero(inside)
        return positions

    found = taken(days["patient_id"], days["date"])
    for column in ("headache_hours", "migraine", "severity", "acute_medication"):
        grid[column] = days[column].array.take(found, allow_fill=True)
    sessions = cycles[cycles["cycle"] >= 1]
    grid["injection_cycle"] = (
        sessions["cycle"]
        .astype("Int64")
        .array.take(taken(sessions["patient_id"], sessions["start_date"]), allow_fill=True)
    )

    hours = grid["headache_hours"]
    grid = _with_day_flags(grid, config)
    severity = grid["severity"].fillna(0).astype("int64")
    grid["category"] = np.select(
        [~grid["recorded"], hours == 0, hours < config.headache_min_hours, severity == 3, severity == 2],
        [0, 1, 2, 5, 4],
        3,
    ).astype("int64")

    recorded = grid["recorded"].to_numpy(dtype="int64")
    headaches = grid["headache_day"].fillna(False).to_numpy(dtype="int64")
    for prefix, width in (("rolling", params.period_days), ("ma7", 7)):

        def in_window(flags: np.ndarray, width: int = width) -> np.ndarray:
            """Days flagged in the ``width`` days ending on each day (days before a patient's grid count 0)."""
            total = np.cumsum(flags)
            within = total - np.repeat(total[block] - flags[block], lengths)  # the cumulative sum within a block
            earlier = np.zeros_like(within)
            late = offsets >= width
            earlier[late] = within[np.flatnonzero(late) - width]
            return within - earlier

        recorded_in = pd.Series(in_window(recorded), index=grid.index)
        headache_in = pd.Series(in_window(headaches), index=grid.index)
        enough = recorded_in / width >= config.min_completeness - config.tolerance
        rate = (headache_in / recorded_in.replace(0, np.nan) * width).where(enough & (recorded_in > 0))
        grid[f"{prefix}_recorded"] = recorded_in
        grid[f"{prefix}_headache_days"] = headache_in
        grid[f"{prefix}_mhd" if prefix == "rolling" else f"{prefix}_headache_days_per_7"] = rate
    return grid


def weekly_profile(grid: pd.DataFrame, config: AnalysisConfig, cycles: pd.DataFrame | None = None) -> pd.DataFrame:
    """Within-cycle weekly profile: for each cycle k >= 1, week w since the injection covers days 7(w-1)+1 .. 7w
    of the cycle; headache days per 7 days = headache days / recorded days x 7. A week is evaluable when it
    lies wholly inside the cycle (7 days) and recorded days / 7 >= min_completeness (5 of 7 with the default);
    otherwise its rate is empty.

    ``grid`` is a daily grid (``diary_days`` or ``patient_calendar``), where each row is a calendar day; or,
    with ``cycles`` (rows of ``patient_cycles``), the per-patient-day frame of recorded days only, whose
    calendar days are counted from the cycle windows (which end at as_of at the latest), so that no
    calendar of all patients is needed. Both give the same rows.

    Columns: patient_id, cycle, week, days, recorded_days, headache_days, headache_days_per_7, evaluable.
    """
    inside = grid[grid["cycle"].notna() & (grid["cycle"] >= 1)]
    keys = ["patient_id", "cycle"]
    if cycles is None:  # a daily grid has a row per calendar day, so a cycle's window is its rows
        windows = inside.groupby(keys).size().rename("window_days").reset_index()
    else:
        windows = cycles.loc[cycles["cycle"] >= 1, [*keys, "window_days"]]
    window = pd.MultiIndex.from_frame(windows[keys].astype({"cycle": "int64"})).get_indexer(
        pd.MultiIndex.from_arrays([inside["patient_id"], inside["cycle"].astype("int64")])
    )
    return treatment_weeks(
        windows,
        window,
        inside["day_in_cycle"].to_numpy(dtype="int64"),
        inside["recorded"].to_numpy(dtype=bool),
        inside["headache_day"].fillna(False).to_numpy(dtype=bool),
        config,
    )


def treatment_weeks(
    windows: pd.DataFrame,
    window: np.ndarray,
    day_in_cycle: np.ndarray,
    recorded: np.ndarray,
    headache: np.ndarray,
    config: AnalysisConfig,
) -> pd.DataFrame:
    """The rows of ``weekly_profile``, counted from days: the one place its rule is computed.

    ``windows`` holds cycle windows k >= 1 (patient_id, cycle, window_days); each counted day gives its window (row
    position in ``windows``, -1 for none), its day_in_cycle, and whether it is recorded and a headache day. Every
    week of every window is a row, sorted by patient, cycle and week, whether or not any day of it is counted;
    integer counting only, so that a registry's or a cohort's days are summarised at once.
    """
    windows = windows.reset_index(drop=True)
    order = windows.sort_values(["patient_id", "cycle"], kind="stable").index.to_numpy()
    window_days = windows["window_days"].to_numpy(dtype="int64")[order]
    n_weeks = -(-window_days // 7)
    first = np.cumsum(n_weeks) - n_weeks
    week = np.arange(n_weeks.sum()) - np.repeat(first, n_weeks) + 1
    out = pd.DataFrame(
        {
            "patient_id": np.repeat(windows["patient_id"].to_numpy()[order], n_weeks),
            "cycle": np.repeat(windows["cycle"].to_numpy(dtype="int64")[order], n_weeks),
            "week": week.astype("int64"),
            "days": np.minimum(7, np.repeat(window_days, n_weeks) - 7 * (week - 1)).astype("int64"),
        }
    )
    # A day's window as a position in the sorted windows; a day without one (-1) falls in an empty last window.
    rank = np.full(len(order) + 1, len(order), dtype="int64")
    rank[order] = np.arange(len(order))
    position = rank[window]
    offset = (day_in_cycle - 1) // 7
    counted = recorded & (offset >= 0) & (offset < np.append(n_weeks, 0)[position])
    row = np.append(first, 0)[position] + offset
    out["recorded_days"] = np.bincount(row[counted], minlength=len(out)).astype("int64")
    out["headache_days"] = np.bincount(row[counted & headache], minlength=len(out)).astype("int64")
    out["evaluable"] = (out["days"] == 7) & (out["recorded_days"] / 7 >= config.min_completeness - config.tolerance)
    rate = out["headache_days"] / out["recorded_days"].replace(0, np.nan) * 7
    out["headache_days_per_7"] = rate.where(out["evaluable"])
    return out


def onset_week(
    weekly: pd.DataFrame, cycles: pd.DataFrame, config: AnalysisConfig, params: ClinicalParameters
) -> pd.DataFrame:
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
    reduced = frame["evaluable"] & (frame["headache_days_per_7"] <= frame["onset_threshold_per_7"] + config.tolerance)
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

    ``grid`` is a daily grid or the per-patient-day frame of recorded days (with recorded and headache_day): a
    part's calendar days are counted from the cycle's window, only its recorded days from ``grid``.

    Columns: patient_id, cycle, reference_mhd, late_mhd, their recorded days and days, rise,
    assessable, wearing_off (boolean, empty when not assessable).
    """
    first_week, last_week = params.wearing_off_reference_weeks
    ref_start, ref_end = 7 * (first_week - 1) + 1, 7 * last_week
    inside = grid[grid["cycle"].notna() & (grid["cycle"] >= 1)]
    day = inside["day_in_cycle"].astype("int64")
    # Only days after the reference weeks can be late, so the window length is looked up for those alone.
    after = inside[(day > ref_end).to_numpy()].merge(
        cycles[["patient_id", "cycle", "window_days"]].astype({"cycle": "Int64"}), on=["patient_id", "cycle"]
    )
    late = after["day_in_cycle"].astype("int64") >= after["window_days"] - params.wearing_off_late_days + 1
    counted = [
        pd.DataFrame(
            {
                "patient_id": rows["patient_id"],
                "cycle": rows["cycle"].astype("int64"),
                f"{part}_recorded": rows["recorded"].astype("int64"),
                f"{part}_headache_days": rows["headache_day"].fillna(False).astype("int64"),
            }
        )
        .groupby(["patient_id", "cycle"], sort=False)
        .sum()
        for part, rows in (("reference", inside[day.between(ref_start, ref_end).to_numpy()]), ("late", after[late]))
    ]
    sums = counted[0].join(counted[1], how="outer")
    out = cycles.loc[cycles["cycle"] >= 1, ["patient_id", "cycle", "status", "window_days"]].merge(
        sums, left_on=["patient_id", "cycle"], right_index=True, how="left"
    )
    count_columns = list(sums.columns)
    out[count_columns] = out[count_columns].fillna(0).astype("int64")
    # Calendar days of each part, from the window (every day of it up to as_of), recorded or not.
    window_days = out["window_days"].to_numpy(dtype="int64")
    out.insert(2, "reference_days", np.clip(np.minimum(window_days, ref_end) - ref_start + 1, 0, None))
    late_from = np.maximum(ref_end + 1, window_days - params.wearing_off_late_days + 1)
    out.insert(3, "late_days", np.clip(window_days - late_from + 1, 0, None))
    for part in ("reference", "late"):
        out[f"{part}_mhd"] = out[f"{part}_headache_days"] / out[f"{part}_recorded"].replace(0, np.nan) * 28

    def complete_enough(part: str) -> pd.Series:
        share = out[f"{part}_recorded"] / out[f"{part}_days"].replace(0, np.nan)
        return share >= config.min_completeness - config.tolerance

    out["assessable"] = (
        out["status"].eq("complete")
        & (out["reference_days"] == ref_end - ref_start + 1)
        & (out["late_days"] >= params.wearing_off_min_late_days)
        & complete_enough("reference")
        & complete_enough("late")
    )
    out["rise"] = (out["late_mhd"] - out["reference_mhd"]).where(out["assessable"])
    flagged = (out["rise"] >= params.wearing_off_min_rise - config.tolerance) & (
        out["late_mhd"] >= out["reference_mhd"] * (1 + params.wearing_off_min_relative) - config.tolerance
    )
    # pandas-stubs: Series.where does not take pd.NA as other
    out["wearing_off"] = pd.Series(flagged, dtype="boolean").where(out["assessable"], pd.NA)  # type: ignore[call-overload]
    return out.drop(columns=["status", "window_days"]).reset_index(drop=True)


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
    # numpy stubs: np.select does not take None as default
    out["band"] = pd.array(np.select(conditions, labels, None), dtype="string")  # type: ignore[call-overload]
    # pandas-stubs: Series.where does not take pd.NA as other
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


def injection_sites(injections: pd.DataFrame, config: AnalysisConfig | None = None) -> pd.DataFrame:
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
    out["below_protocol"] = out["units"] < out["standard_units"] - (config or AnalysisConfig()).tolerance
    return out


# --- one patient's header and badges (shared by the Patient page and the printable summary)


HEADER_MEASURES = (
    ("mhd", "headache_days", "Headache days / 28 d"),
    ("mmd", "migraine_days", "Migraine days / 28 d"),
    ("amd", "acute_med_days", "Acute-med. days / 28 d"),  # short enough for a metric card at 1280 px
)


def _window_label(row: pd.Series) -> str:
    if int(row["cycle"]) == 0:
        return "baseline"
    return f"cycle {int(row['cycle'])}" + (" (ongoing)" if row["status"] == "ongoing" else "")


def header_measures(cycles: pd.DataFrame) -> list[dict[str, object]]:
    """Baseline and latest-cycle rates of one patient, each with its n of recorded days.

    ``cycles`` is one patient's rows of ``patient_cycles``. The latest cycle is the patient's last
    window (possibly ongoing or not evaluable, which is said); change is latest − baseline and is
    empty unless both windows are evaluable; change_shown is the change a metric's delta shows
    (``shown_change``: one decimal, never −0.0; None when empty).
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
                "change_shown": shown_change(v - b) if both and pd.notna(v) and pd.notna(b) else None,
            }
        )
    return out


RULE_TONES = {
    "stop": "bad",
    "continue": "good",
    "pending": "info",
    "not reached": "neutral",
    "not assessable": "neutral",
}


def _date(value: Any) -> str:
    return f"{pd.Timestamp(value):%d %b %Y}" if pd.notna(value) else "—"


def treatment_badge(row: pd.Series, config: AnalysisConfig) -> tuple[str, str]:
    """SPEC §5.1 treatment_state in words with next_due and days_overdue; a discontinued patient with the reason."""
    state = row["treatment_state"]
    if state == "discontinued":
        reason = row["discontinuation_reason"]
        said = f": {reason}" if pd.notna(reason) and str(reason).strip() else " (no reason recorded)"
        return f"Discontinued on {_date(row['discontinued_on'])}{said}", "neutral"
    if state == "active":
        return f"Active: next session due {_date(row['next_due'])}", "good"
    overdue = int(row["days_overdue"])
    days = f"{overdue} day" + ("" if overdue == 1 else "s")
    late = f"next session was due {_date(row['next_due'])}; {days} past the {config.on_time_max_days}-day limit"
    if state == "overdue":
        return f"Overdue: {late}", "warn"
    return (
        f"Lapsed: no session for {int(row['days_since_last_session'])} days (over {config.lapse_days}); {late}",
        "bad",
    )


def status_badges(row: pd.Series, config: AnalysisConfig) -> list[tuple[str, str]]:
    """One patient's status as short badges (text, tone); tone is good, bad, warn, info or neutral.

    Treatment state, stop indicated, the NICE and EHF rules, episodic conversion, ever and sustained
    response are SPEC §5's columns; the response class, wearing-off and onset are this module's.
    Off treatment (lapsed or discontinued), a rule's verdict is shown without a colour.
    """
    badges = [treatment_badge(row, config)]
    off = row["treatment_state"] in ("lapsed", "discontinued")
    stop = row["stop_indicated"]
    if pd.notna(stop) and bool(stop):
        badges.append((f"Stop indicated: {row['stop_rules']}", "neutral" if off else "bad"))
    elif pd.notna(stop):
        badges.append(("No stopping rule met", "neutral"))
    klass = row["response_class"]
    tone = {EXCELLENT: "good", RESPONDER: "good", PARTIAL: "warn", NON_RESPONDER: "bad"}.get(klass, "neutral")
    text = RESPONSE_CLASS_LABELS[klass]
    if klass != NOT_EVALUABLE:
        change = _fmt_pct(pd.Series([row["latest_mhd_pct_change"]])).iloc[0]
        text += f" at cycle {int(row['latest_evaluable_cycle'])} ({change})"
    badges.append((text, tone))
    ever = row["ever_responder_50"]
    if pd.notna(ever) and bool(ever):
        badges.append((f"50% responder (first at cycle {int(row['first_response_cycle'])})", "good"))
    elif pd.notna(ever):
        badges.append(("Not yet a 50% responder", "neutral"))
    sustained = row["sustained_responder_50"]
    if pd.notna(sustained) and bool(sustained):
        badges.append((f"Sustained 50% response from cycle {int(row['sustained_from_cycle'])}", "good"))
    elif pd.notna(sustained):
        badges.append(("No sustained response (50% in 2 consecutive cycles)", "neutral"))
    for column, label in (("nice_state", "NICE TA260"), ("ehf_state", "EHF")):
        state = row[column]
        badges.append((f"{label}: {state}", "neutral" if off and state in ("stop", "continue") else RULE_TONES[state]))
    for prefix, label, threshold in (
        ("", "NICE", config.episodic_max_days),
        ("ehf_", "EHF", config.ehf_episodic_max_days),
    ):
        now, converted = row[f"{prefix}episodic_now"], row[f"{prefix}episodic_converted_on"]
        if pd.notna(now) and bool(now):
            badges.append((f"Episodic now (<{threshold:g} headache days/28 d, {label})", "info"))
        elif pd.notna(converted):
            badges.append((f"Episodic (<{threshold:g} d, {label}) from {_date(converted)}, not now", "neutral"))
    assessable = int(row["wearing_off_assessable"])
    if assessable:
        flagged = int(row["wearing_off_cycles"])
        tone = "warn" if pd.notna(row["wearing_off_latest"]) and bool(row["wearing_off_latest"]) else "neutral"
        badges.append((f"Wearing-off in {flagged} of {assessable} assessable cycles", tone))
    if pd.notna(row["last_onset_week"]):
        badges.append(
            (
                f"Onset in week {int(row['last_onset_week'])} of cycle {int(row['last_onset_cycle'])} "
                "(latest cycle with an onset)",
                "info",
            )
        )
    return badges


# --- everything at once


@dataclass(frozen=True)
class ClinicalTables:
    """The patient-level tables for all patients, computed once per dataset and parameters."""

    params: ClinicalParameters
    status: pd.DataFrame
    """One row per treated patient: SPEC §5's patient_status, the response class, wearing-off, onset, statements."""
    days: PatientDays
    """``analysis.days_by_patient()``: each patient's rows of ``analysis.patient_days``, for ``patient_calendar``."""
    weekly: pd.DataFrame
    """The weekly profile of every patient (``weekly_profile``), from group-bys of the recorded days: what the onset
    and wearing-off are derived from. Empty when read from the analysis store, which does not keep it (millions of
    rows no page reads; the Patient page builds one patient's from their days)."""
    cycle_profile: pd.DataFrame
    """Per patient and cycle >= 1: onset week and the wearing-off assessment."""
    adverse_events: pd.DataFrame
    questionnaires: pd.DataFrame
    injections: pd.DataFrame
    available: frozenset[str]
    """Optional input files that were provided (patients, injections, adverse_events, questionnaires)."""
    injection_rows: PatientDays | None = None
    """Read from the analysis store: each patient's ``injections`` rows, read from disk by patient (millions of
    rows for a network); ``injections`` is then empty. Read one patient's with ``injections_of``."""

    def injections_of(self, patient_id: str) -> pd.DataFrame:
        """One patient's rows of ``injections`` (from disk for a stored ClinicalTables), numbered from 0."""
        if self.injection_rows is not None:
            return self.injection_rows.of(patient_id)
        return self.injections[self.injections["patient_id"] == patient_id].reset_index(drop=True)


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
    analysis: Analysis,
    patients: pd.DataFrame,
    profile: pd.DataFrame,
    questionnaires: pd.DataFrame,
) -> pd.DataFrame:
    """One row per treated patient: SPEC §5's columns as ``analysis.patient_status`` has them (never recomputed),
    joined with this module's response class, wearing-off and onset, the latest questionnaire scores, the
    patients.csv facts the statements quote, and the statements themselves (``rule_statements``)."""
    cycles, config = analysis.patient_cycles, analysis.config
    base = cycles.loc[cycles["cycle"] == 0, ["patient_id", "recorded_days", "window_days", "completeness"]]
    base = base.rename(columns=lambda c: c if c == "patient_id" else f"baseline_{c}")
    response = response_class(cycles)[["patient_id", "response_mhd", "response_class"]]
    assessed = profile[profile["assessable"]].sort_values(["patient_id", "cycle"], kind="stable")
    wearing = assessed.groupby("patient_id").agg(
        wearing_off_cycles=("wearing_off", "sum"),
        wearing_off_assessable=("wearing_off", "size"),
        wearing_off_latest=("wearing_off", "last"),
    )
    # The onset week of the most recent cycle that had an onset (not necessarily the latest cycle).
    with_onset = profile[profile["onset_week"].notna()].sort_values(["patient_id", "cycle"], kind="stable")
    onset = with_onset.groupby("patient_id").tail(1)[["patient_id", "cycle", "onset_week"]]
    onset = onset.rename(columns={"cycle": "last_onset_cycle", "onset_week": "last_onset_week"})
    listed = patients[["patient_id", "medication_overuse", "discontinued_on", "discontinuation_reason"]]
    out = analysis.patient_status.merge(base, on="patient_id", how="left")
    out = out.merge(response.rename(columns={"response_mhd": "latest_mhd"}), on="patient_id", how="left")
    out = out.merge(response_milestones(cycles), on="patient_id", how="left")
    out = out.merge(wearing, left_on="patient_id", right_index=True, how="left")
    out = out.merge(onset, on="patient_id", how="left")
    out = out.merge(listed.drop_duplicates("patient_id"), on="patient_id", how="left")
    out["medication_overuse"] = out["medication_overuse"].astype("boolean")
    out["last_onset_cycle"] = out["last_onset_cycle"].astype("Int64")
    out["last_onset_week"] = out["last_onset_week"].astype("Int64")
    out["wearing_off_cycles"] = out["wearing_off_cycles"].fillna(0).astype("int64")
    out["wearing_off_assessable"] = out["wearing_off_assessable"].fillna(0).astype("int64")
    out["wearing_off_latest"] = out["wearing_off_latest"].astype("boolean")
    out["days_since_last_session"] = (analysis.as_of - out["last_session"]).dt.days.astype("int64")
    out = out.merge(rule_statements(out, cycles, config), on="patient_id", how="left")
    return out.merge(_latest_scores(questionnaires), on="patient_id", how="left")


def listed_patients(tables: ClinicalTables, analysis: Analysis, dataset: Dataset) -> tuple[list[str], int]:
    """Every patient with sessions, diary days or a patients.csv row, sorted as Python sorts text (by code point),
    and the position of the first whose response can be judged (an eligible cycle: an evaluable baseline), 0 when
    none can. In Arrow: at 100,000 patients the union, sort and lookup in Python took a fifth of a restarted
    server's first page."""
    ids = pa.chunked_array(
        [
            pa.array(tables.status["patient_id"], type=pa.string()),
            pa.array(list(tables.days.patient_ids()), type=pa.string()),
            pa.array(dataset.tables["patients"]["patient_id"], type=pa.string()),
        ],
        type=pa.string(),
    ).unique()
    ids = ids.take(pc.sort_indices(ids))  # UTF-8 byte order is code point order
    cycles = analysis.patient_cycles
    judged = pa.array(cycles.loc[cycles["eligible"].astype(bool), "patient_id"], type=pa.string())
    first = np.flatnonzero(pc.is_in(ids, value_set=judged).to_numpy(zero_copy_only=False))
    return ids.to_pylist(), int(first[0]) if len(first) else 0


def clinical_tables(analysis: Analysis, dataset: Dataset, params: ClinicalParameters | None = None) -> ClinicalTables:
    """Compute every patient-level table for all patients from one analysis (vectorised, once).

    No daily grid of all patients is built (millions of rows for a large registry): the weekly profile, onset
    and wearing-off come from group-bys of the recorded days; one patient's grid is ``patient_calendar``.
    """
    params = params or ClinicalParameters()
    config, cycles = analysis.config, analysis.patient_cycles
    # Recorded days only: the calendar days that complete a week or a part are counted from the cycle windows.
    days = _with_day_flags(analysis.day_columns(["patient_id", "cycle", "day_in_cycle", "headache_hours"]), config)
    weekly = weekly_profile(days, config, cycles)
    profile = onset_week(weekly, cycles, config, params).merge(
        wearing_off(days, cycles, config, params), on=["patient_id", "cycle"], how="left"
    )
    as_of = analysis.as_of
    questionnaires = questionnaire_bands(dataset.tables["questionnaires"].loc[lambda q: q["date"] <= as_of])
    status = patient_status(analysis, dataset.tables["patients"], profile, questionnaires)
    available = frozenset(
        stem
        for stem in ("patients", "injections", "adverse_events", "questionnaires")
        if dataset.present_columns.get(stem)
    )
    return ClinicalTables(
        params=params,
        status=status,
        days=analysis.days_by_patient(),
        weekly=weekly,
        cycle_profile=profile,
        adverse_events=adverse_events_by_cycle(
            dataset.tables["adverse_events"].loc[lambda a: a["session_date"] <= as_of], cycles
        ),
        questionnaires=questionnaires,
        injections=injection_sites(dataset.tables["injections"].loc[lambda i: i["session_date"] <= as_of], config),
        available=available,
    )


# --- the data dictionary's view of these definitions


def _definition(name: str, function: Callable[..., object], parameters: tuple[str, ...]) -> Definition:
    doc = inspect.getdoc(function) or ""
    # Docstrings are ASCII; the dictionary shows the comparison signs a reader expects.
    text = doc.split("\n\n")[0].replace("\n", " ").replace(">=", "≥").replace("<=", "≤")
    return Definition(name, text, parameters=parameters)


DEFINITIONS: list[Definition] = [
    _definition(
        "Response class at the latest evaluable cycle (Patient page) or a chosen cycle (Table 1)",
        response_class,
        ("responder_thresholds", "min_completeness", "min_window_days"),
    ),
    _definition(
        "Daily diary grid, rolling 28-day headache days, 7-day moving average",
        diary_days,
        ("headache_min_hours", "period_days", "min_completeness"),
    ),
    _definition(
        "Medication overuse per cycle (MO) and late re-injection per session",
        cycle_flags,
        ("overuse_acute_days", "on_time_max_days", "min_completeness", "min_window_days"),
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
    """SPEC §5's definitions (the flags shown) and this module's DEFINITIONS, with the values in use filled in and
    each parameter written as name = value (SPEC parameter or clinical parameter)."""
    values = {**config.parameters(), **params.parameters()}
    shown = parameter_values(config)
    return [
        {
            "name": d.name,
            "definition": fill(d.text, shown),
            "parameters": "; ".join(f"{p} = {values[p]}" for p in d.parameters),
        }
        for d in [*STATUS_DEFINITIONS, *DEFINITIONS]
    ]
