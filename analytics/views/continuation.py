"""Should we continue? This clinic's own evidence for a patient who has not yet had a 50% response.

A doctor deciding whether to give another injection to a patient without a 50% response through their
latest evaluable cycle k wants to know how often such patients went on to respond. This module answers
from the clinic's own patients (the patients of the analysis it is given, i.e. the user's clinics
after scoping): among the *comparable* patients — eligible (SPEC §3), known 50% non-responders
through cycle k, and given session k + 1 — the share who responded at cycle k + 1 and by cycle k + 3,
each with its numerator, denominator and a 95% Wilson interval, and beside it the published figures
of that kind that could be checked. A denominator below ``MIN_COMPARABLE`` gives "too few comparable
patients (n = x)" instead of a rate. Everything is computed from SPEC §3's per-patient-cycle table
with group-bys over all patients at once: ``continuation_rows`` gives one row per patient and cycle
k, ``continuation_by_cycle`` the clinic's rates per k (the Clinic page's table), and
``continuation_all_patients`` every patient's own evidence (the patient excluded from their own
comparison group); ``continuation_evidence`` wraps one patient's row in sentences for the page.
``DEFINITIONS`` states the definitions for the data dictionary.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.definitions.config import AnalysisConfig
from analytics.definitions.pipeline import Analysis
from analytics.definitions.registry import Definition
from analytics.statistics.stats import WILSON_METHOD, Proportion, proportion, wilson_interval

MIN_COMPARABLE = 10
"""A rate needs at least this many comparable patients in its denominator."""
HORIZONS = {"next": 1, "within_3": 3}
"""The two outcomes: a response at cycle k + 1, and a response in any of cycles k + 1 .. k + 3."""


def continuation_parameter_docs() -> list[dict[str, object]]:
    """The module's own parameter, for the data dictionary."""
    return [
        {
            "parameter": "continuation_min_comparable",
            "default": MIN_COMPARABLE,
            "meaning": "Comparable patients needed before the continuation evidence gives a rate (fewer: 'too few "
            "comparable patients (n = x)').",
            "basis": "a Wilson interval on fewer than 10 patients spans most of 0–100%",
        }
    ]


# --- published figures ------------------------------------------------------------------------------

PREEMPT_SOURCE = (
    "PREEMPT pooled, onabotulinumtoxinA arm: Silberstein SD et al., Per cent of patients with chronic migraine who "
    "responded per onabotulinumtoxinA treatment cycle: PREEMPT. J Neurol Neurosurg Psychiatry 2015;86:996–1001"
)
SARCHIELLI_SOURCE = (
    "Sarchielli P et al., Stopping onabotulinum treatment after the first two cycles might not be justified: "
    "results of a real-life monocentric prospective study in chronic migraine. Front Neurol 2017;8:655 "
    "(doi:10.3389/fneur.2017.00655)"
)
PREEMPT_NOTE = (
    "Derived here from the cumulative 50% responder figures 49.3% after cycle 1, +11.3 points after cycle 2 and "
    "+10.3 after cycle 3, assuming one denominator throughout; a news report of the same analysis (MDedge, "
    "Dodick) gives 49%, +11% and +10%. The paper itself, and any conditional rate it states, were not read here."
)
PUBLISHED_CONTINUATION = pd.DataFrame(
    [
        # after_cycle, horizon, published_pct, description, citation, source, checked, note
        (
            1,
            1,
            100 * 11.3 / (100 - 49.3),
            "PREEMPT: of the patients without a 50% response after cycle 1, about 22% responded at cycle 2",
            "Silberstein et al., J Neurol Neurosurg Psychiatry 2015",
            PREEMPT_SOURCE,
            False,
            PREEMPT_NOTE,
        ),
        (
            2,
            1,
            100 * 10.3 / (100 - 49.3 - 11.3),
            "PREEMPT: of the patients still without a 50% response after cycle 2, about 26% responded at cycle 3",
            "Silberstein et al., J Neurol Neurosurg Psychiatry 2015",
            PREEMPT_SOURCE,
            False,
            PREEMPT_NOTE,
        ),
        (
            1,
            1,
            27.0,
            "Sarchielli 2017 (one Italian centre, 56 cycle-1 non-responders treated for 5 cycles): 27% were 50% "
            "responders at cycle 2",
            "Sarchielli et al., Front Neurol 2017",
            SARCHIELLI_SOURCE,
            True,
            "From the abstract; it gives 48% at cycle 5 (a per-cycle rate, not 'by cycle 4').",
        ),
    ],
    columns=["after_cycle", "horizon", "published_pct", "description", "citation", "source", "checked", "note"],
)
"""Published shares of responders among patients without a 50% response through cycle k, by k and horizon.
No figure of the kind 'by cycle k + 3' could be checked, so that outcome is shown without one."""


# --- the rows and the rates -------------------------------------------------------------------------


def continuation_rows(cycles: pd.DataFrame, as_of: pd.Timestamp, config: AnalysisConfig) -> pd.DataFrame:
    """Continuation evidence, comparable patients at cycle k: a patient is comparable at cycle k >= 1 when they
    are eligible (SPEC §3), are known 50% non-responders through cycle k (cumulative_responder_50 of cycle k is
    false: no responder_50 true in cycles 1..k and at least one of them evaluable) and had session k + 1.

    Returns one row per treated patient and cycle k: patient_id, cycle, comparable, and for each horizon h
    (``next``: 1 cycle, ``within_3``: 3) had_time_<h> (D(k+1) + h x cycle_days - 1 <= as_of), responded_<h>
    (responder_50 true in any of cycles k+1 .. k+h) and evaluated_<h> (any responder_50 value there).
    """
    treated = cycles.loc[
        cycles["cycle"] >= 1,
        ["patient_id", "cycle", "start_date", "responder_50", "cumulative_responder_50", "n_sessions", "eligible"],
    ].sort_values(["patient_id", "cycle"], kind="stable")
    true_so_far = treated["responder_50"].eq(True).fillna(False).astype("int64").groupby(treated["patient_id"]).cumsum()
    valued_so_far = treated["responder_50"].notna().astype("int64").groupby(treated["patient_id"]).cumsum()
    key = pd.MultiIndex.from_frame(treated[["patient_id", "cycle"]])
    true_at = pd.Series(true_so_far.to_numpy(), index=key)
    valued_at = pd.Series(valued_so_far.to_numpy(), index=key)
    start_at = pd.Series(treated["start_date"].to_numpy(), index=key)

    ids, k, n = treated["patient_id"].to_numpy(), treated["cycle"].to_numpy(), treated["n_sessions"].to_numpy()
    next_start = start_at.reindex(pd.MultiIndex.from_arrays([ids, k + 1])).to_numpy()
    out = pd.DataFrame(
        {
            "patient_id": treated["patient_id"].to_numpy(),
            "cycle": k,
            "comparable": (
                treated["eligible"].astype(bool).to_numpy()
                & treated["cumulative_responder_50"].eq(False).fillna(False).to_numpy(dtype=bool)
                & (n >= k + 1)
            ),
        }
    )
    for name, h in HORIZONS.items():
        last = pd.MultiIndex.from_arrays([ids, np.minimum(k + h, n)])
        # Responses and values in cycles k+1 .. min(k+h, n): a patient who stopped earlier has fewer cycles.
        new_true = true_at.reindex(last).to_numpy() - true_so_far.to_numpy()
        new_valued = valued_at.reindex(last).to_numpy() - valued_so_far.to_numpy()
        ready_by = next_start + np.timedelta64(h * config.cycle_days - 1, "D")
        out[f"had_time_{name}"] = ~pd.isna(next_start) & (ready_by <= as_of.to_datetime64())
        out[f"responded_{name}"] = (n > k) & (new_true > 0)
        out[f"evaluated_{name}"] = (n > k) & (new_valued > 0)
    return out


def _rates(numerator: pd.Series, denominator: pd.Series, min_comparable: int) -> pd.DataFrame:
    """Rate and 95% Wilson interval, empty when the denominator is below ``min_comparable``."""
    n = denominator.to_numpy(dtype="float64")
    low, high = wilson_interval(numerator.to_numpy(dtype="float64"), n)
    enough = n >= max(min_comparable, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(enough, numerator.to_numpy(dtype="float64") / n, np.nan)
    return pd.DataFrame(
        {"rate": rate, "ci_low": np.where(enough, low, np.nan), "ci_high": np.where(enough, high, np.nan)},
        index=numerator.index,
    )


def _outcome_columns(counts: pd.DataFrame, min_comparable: int) -> pd.DataFrame:
    """From <h>_n, <h>_denominator: the rate columns for each horizon (empty below ``min_comparable``)."""
    counts = counts.copy()
    for name in HORIZONS:
        rates = _rates(counts[f"{name}_n"], counts[f"{name}_denominator"], min_comparable)
        for column in rates:
            counts[f"{name}_{column}"] = rates[column]
    return counts


def _counts(rows: pd.DataFrame, among: Collection[str] | None = None) -> pd.DataFrame:
    """Per row: whether it counts in each horizon's denominator and numerator, and without any value there;
    rows of patients outside ``among`` (when given) count nowhere."""
    comparable = rows["comparable"] if among is None else rows["comparable"] & rows["patient_id"].isin(among)
    counted = pd.DataFrame({"comparable": comparable.astype("int64")}, index=rows.index)
    for name in HORIZONS:
        denominator = comparable & rows[f"had_time_{name}"]
        counted[f"{name}_denominator"] = denominator.astype("int64")
        counted[f"{name}_n"] = (denominator & rows[f"responded_{name}"]).astype("int64")
        counted[f"{name}_not_evaluated"] = (denominator & ~rows[f"evaluated_{name}"]).astype("int64")
    return counted


COUNT_COLUMNS = [
    "comparable",
    *(f"{name}_{part}" for name in HORIZONS for part in ("n", "denominator", "not_evaluated")),
]


def continuation_by_cycle(
    analysis: Analysis, min_comparable: int = MIN_COMPARABLE, among: Collection[str] | None = None
) -> pd.DataFrame:
    """The clinic's continuation evidence for each cycle k: comparable patients, and for each horizon
    (``next``: response at cycle k + 1; ``within_3``: by cycle k + 3) the responders (<h>_n), the denominator,
    those of them without any evaluable change in those cycles (<h>_not_evaluated, counted as no response), the
    rate and its 95% Wilson interval (empty below ``min_comparable``). One row per k with a comparable patient.
    ``among`` (patient ids) narrows the comparison to those patients, e.g. one clinic's; None: all of the analysis.
    """
    rows = continuation_rows(analysis.patient_cycles, analysis.as_of, analysis.config)
    counts = _counts(rows, among).groupby(rows["cycle"]).sum()
    counts = counts[counts["comparable"] > 0].reset_index()
    return _outcome_columns(counts[["cycle", *COUNT_COLUMNS]], min_comparable)


def continuation_all_patients(
    analysis: Analysis, min_comparable: int = MIN_COMPARABLE, among: Collection[str] | None = None
) -> pd.DataFrame:
    """Every treated patient's continuation evidence, vectorised: the patient's latest evaluable cycle k (SPEC §5.1
    latest_evaluable_cycle), whether the question applies (eligible, no 50% response through cycle k), and the
    ``continuation_by_cycle`` counts and rates at their k with the patient themself left out of the comparison
    (and, with ``among``, only those patients in it).

    Columns: patient_id, cycle, applies, comparable, and per horizon <h>_n, <h>_denominator, <h>_not_evaluated,
    <h>_rate, <h>_ci_low, <h>_ci_high (counts and rates empty when the question does not apply).
    """
    cycles = analysis.patient_cycles
    rows = continuation_rows(cycles, analysis.as_of, analysis.config)
    counted = _counts(rows, among)
    per_cycle = counted.groupby(rows["cycle"]).sum()
    status = analysis.patient_status[["patient_id", "latest_evaluable_cycle", "ever_responder_50"]]
    eligible = cycles.loc[cycles["cycle"] == 0].set_index("patient_id")["eligible"].astype(bool)
    k = status["latest_evaluable_cycle"]
    applies = (
        k.notna().to_numpy()
        & status["ever_responder_50"].eq(False).fillna(False).to_numpy(dtype=bool)
        & eligible.reindex(status["patient_id"]).fillna(False).to_numpy(dtype=bool)
    )
    chosen = status.loc[applies, ["patient_id"]].assign(cycle=k[applies].astype("int64").to_numpy())
    key = pd.MultiIndex.from_frame(chosen[["patient_id", "cycle"]])
    own = counted.set_axis(pd.MultiIndex.from_frame(rows[["patient_id", "cycle"]])).reindex(key).fillna(0)
    clinic = per_cycle.reindex(chosen["cycle"]).fillna(0)
    # The patient is not their own evidence: their row at cycle k leaves every count.
    counts = pd.DataFrame(clinic.to_numpy() - own.to_numpy(), columns=counted.columns, index=chosen.index)
    counts = _outcome_columns(counts.astype("int64")[COUNT_COLUMNS], min_comparable)
    out = status[["patient_id"]].assign(
        cycle=k.astype("Int64").where(applies),
        applies=applies,
    )
    out = out.join(counts)
    for column in COUNT_COLUMNS:
        out[column] = out[column].astype("Int64")
    return out.reset_index(drop=True)


# --- one patient, in words --------------------------------------------------------------------------


@dataclass(frozen=True)
class ContinuationOutcome:
    """One outcome of the evidence: its label, the rate (None when too few), the counts and the sentences."""

    label: str
    """'at cycle 3' or 'by cycle 5 (cycles 3–5)'."""
    numerator: int
    denominator: int
    not_evaluated: int
    proportion: Proportion | None
    """The rate with its 95% Wilson interval; None when the denominator is below the minimum."""
    statement: str
    published: tuple[str, ...]
    """Published figures of the same kind, each with its source, or a sentence saying there is none."""


@dataclass(frozen=True)
class ContinuationEvidence:
    """One patient's continuation evidence; ``lines()`` gives it in sentences for the page."""

    patient_id: str
    applies: bool
    summary: str
    """Why the question arises ('No 50% response through cycle 2 …') or why it does not."""
    cycle: int | None = None
    comparable: int = 0
    outcomes: tuple[ContinuationOutcome, ...] = ()
    method: str = WILSON_METHOD
    caveat: str = ""

    def lines(self) -> list[str]:
        """The summary, each outcome's statement with its published figures, and the caveat, as sentences."""
        if not self.applies:
            return [self.summary]
        lines = [self.summary]
        for outcome in self.outcomes:
            lines.append(outcome.statement)
            lines.extend(f"Published: {text}" for text in outcome.published)
        lines.append(self.caveat)
        return lines


CAVEAT = (
    "Comparable patients are chosen by their response alone, not by baseline severity, medication overuse or "
    "diary completeness; a patient who stopped, or kept no evaluable diary, counts as not responding. Published "
    "figures come from other populations and measurement windows."
)


def _published(k: int, horizon: int, window: str) -> tuple[str, ...]:
    rows = PUBLISHED_CONTINUATION[
        (PUBLISHED_CONTINUATION["after_cycle"] == k) & (PUBLISHED_CONTINUATION["horizon"] == horizon)
    ]
    if rows.empty:
        return (f"none of this kind (a response in {window} after none through cycle {k}) could be checked.",)
    return tuple(
        f"{r.description} ({r.citation}; "
        + ("from the abstract)" if r.checked else "derived from its cumulative figures, not read in the paper)")
        for r in rows.itertuples()
    )


def _outcome(row: pd.Series, name: str, k: int, min_comparable: int) -> ContinuationOutcome:
    h = HORIZONS[name]
    label = f"at cycle {k + 1}" if h == 1 else f"by cycle {k + h} (cycles {k + 1}–{k + h})"
    window = f"cycle {k + 1}" if h == 1 else f"cycles {k + 1}–{k + h}"
    numerator, denominator = int(row[f"{name}_n"]), int(row[f"{name}_denominator"])
    not_evaluated = int(row[f"{name}_not_evaluated"])
    if denominator < max(min_comparable, 1):
        result, statement = None, f"Response {label}: too few comparable patients (n = {denominator})."
    else:
        result = proportion(numerator, denominator)
        missing = (
            f"; {not_evaluated} of them had no evaluable change there and "
            + ("counts" if not_evaluated == 1 else "count")
            + " as not responding"
            if not_evaluated
            else ""
        )
        statement = (
            f"Response {label}: {numerator} of the {denominator} comparable patients who had the time to complete "
            f"{window} ({result.rate:.0%}; 95% Wilson CI {result.ci_low:.0%}–{result.ci_high:.0%}){missing}."
        )
    published = _published(k, h, window)
    return ContinuationOutcome(label, numerator, denominator, not_evaluated, result, statement, published)


def _not_applicable(analysis: Analysis, patient_id: str) -> str:
    status = analysis.patient_status.set_index("patient_id")
    if patient_id not in status.index:
        return "No injection session yet: the question does not arise."
    row = status.loc[patient_id]
    if pd.isna(row["latest_evaluable_cycle"]):
        if not bool(row["baseline_evaluable"]) or not row["baseline_mhd"] > 0:
            return "The baseline is not evaluable or has no headache days: response cannot be judged from the diary."
        return "No treatment cycle has an evaluable change from baseline yet: response cannot be judged."
    cycles = analysis.patient_cycles
    responded = cycles[(cycles["patient_id"] == patient_id) & cycles["responder_50"].eq(True).fillna(False)]
    return f"Already a 50% responder (first at cycle {int(responded['cycle'].min())}): the question does not arise."


def continuation_evidence(
    analysis: Analysis,
    patient_id: str,
    min_comparable: int = MIN_COMPARABLE,
    among: Collection[str] | None = None,
    table: pd.DataFrame | None = None,
) -> ContinuationEvidence:
    """One patient's continuation evidence (``continuation_all_patients``'s row, in words); ``among`` narrows the
    comparable patients to those ids (e.g. the patient's own clinic), None takes every patient of the analysis.

    ``table`` is ``continuation_all_patients(analysis, min_comparable, among)`` when the caller already has it (the
    Patient page computes it once per analysis, not on every patient switch); None computes it here.
    """
    if table is None:
        table = continuation_all_patients(analysis, min_comparable, among)
    own = table[table["patient_id"] == patient_id]
    if own.empty or not bool(own["applies"].iloc[0]):
        return ContinuationEvidence(patient_id, False, _not_applicable(analysis, patient_id))
    row = own.iloc[0]
    k = int(row["cycle"])
    change = analysis.patient_status.set_index("patient_id").loc[patient_id, "latest_mhd_pct_change"]
    change_text = f"{change:+.0f}%".replace("-", "−")
    comparable = int(row["comparable"])
    summary = (
        f"No 50% response through cycle {k} (latest evaluable cycle {k}: {change_text} headache days). Of this "
        f"clinic's patients, {comparable} were also without a 50% response through cycle {k} and were given "
        f"session {k + 1}:"
    )
    outcomes = tuple(_outcome(row, name, k, min_comparable) for name in HORIZONS)
    return ContinuationEvidence(patient_id, True, summary, k, comparable, outcomes, caveat=CAVEAT)


# --- the data dictionary's view -----------------------------------------------------------------------

DEFINITIONS: tuple[Definition, ...] = (
    Definition(
        "Continuation evidence: comparable patients",
        (
            "For a patient without a 50% response through their latest evaluable cycle k (SPEC §5.1 "
            "latest_evaluable_cycle; eligible per SPEC §3): the other patients of the analysis who are eligible, "
            "whose cumulative_responder_50 at cycle k is false (no responder_50 true in cycles 1..k and at least one "
            "of them evaluable) and who had session k + 1."
        ),
        columns=("cycle", "applies", "comparable"),
        parameters=("min_completeness", "min_window_days", "responder_thresholds"),
    ),
    Definition(
        "Continuation evidence: response at cycle k + 1 and by cycle k + 3",
        (
            "Among comparable patients who had the time, on the {cycle_days}-day schedule, to complete h more cycles "
            "after session k + 1 (D(k+1) + h × {cycle_days} − 1 ≤ as_of; h = 1 and 3): the share with responder_50 "
            "true at cycle k + 1 (h = 1), and in any of cycles k + 1..k + 3 (h = 3). As in the intention-to-treat "
            "rate of SPEC §3, a patient who stopped earlier, or whose cycles have no evaluable change, counts as not "
            "responding (the number without any evaluable change is given). Numerator, denominator and a 95% Wilson "
            "score interval; with fewer than {continuation_min_comparable} patients in the denominator, 'too few "
            "comparable patients (n = x)' instead of a rate."
        ),
        columns=(
            "next_n",
            "next_denominator",
            "next_not_evaluated",
            "next_rate",
            "next_ci_low",
            "next_ci_high",
            "within_3_n",
            "within_3_denominator",
            "within_3_not_evaluated",
            "within_3_rate",
            "within_3_ci_low",
            "within_3_ci_high",
        ),
        parameters=("cycle_days", "as_of", "continuation_min_comparable"),
    ),
    Definition(
        "Continuation evidence: published figures",
        (
            "After cycle 1, PREEMPT's cumulative 50% responder figures (49.3%, +11.3 and +10.3 points after cycles "
            "1, 2, 3) give about 22% of cycle-1 non-responders responding at cycle 2, and about 26% of the remaining "
            "non-responders at cycle 3 (derived, not read in the paper); Sarchielli 2017 found 27% of 56 cycle-1 "
            "non-responders responding at cycle 2. No published figure for 'by cycle k + 3' was checked. Sources: "
            f"{PREEMPT_SOURCE}; {SARCHIELLI_SOURCE}."
        ),
        source="analytics.views.continuation.PUBLISHED_CONTINUATION",
    ),
)
