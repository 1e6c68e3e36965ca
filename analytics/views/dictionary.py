"""The data dictionary: every input column, every parameter and every definition, generated.

Nothing here is hand-copied from the contract: input columns come from ``analytics.ingest.schemas.FILES``
(file, required, valid values, rejection reason, meaning), parameters from
``analytics.definitions.config.parameter_docs`` with the values of the running configuration, the core
definitions of SPEC §3 and the patient status and safety definitions of SPEC §5 are templates filled
with those values, and any analytics module listed in
``DEFINITION_MODULES`` may contribute its own definitions through a module-level ``DEFINITIONS``
list (modules that do not exist yet are skipped). The Data page renders these tables and offers
``data_dictionary`` as one CSV, so what a user reads is what the code runs.

A ``DEFINITIONS`` entry is a ``analytics.definitions.registry.Definition`` record (name, text, the
output columns it defines, the parameters it uses, its source); a mapping or an object with ``term``
(or ``name``) and ``definition`` (or ``text``), or a (term, definition) pair, is read into one.
``{parameter}`` placeholders in the text are filled with the current values, e.g.
``"at least {headache_min_hours} h"``, and the parameters used are listed as ``name = value``.
A module may also document parameters of its own with a function whose name ends in
``parameter_docs`` (returning the same records as ``analytics.definitions.config.parameter_docs``);
those are listed with their defaults, which are the values in use since the dashboard does not
change them.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterable, Mapping
from datetime import date
from string import Formatter
from types import ModuleType

import pandas as pd

from analytics.definitions.config import STATUS_PARAMETERS, AnalysisConfig, parameter_docs
from analytics.definitions.registry import Definition
from analytics.ingest import schemas

# Analytics modules that may expose ``DEFINITIONS``; a module that is absent is skipped.
DEFINITION_MODULES = (
    "analytics.definitions.clinical",
    "analytics.views.clinic",
    "analytics.views.outcomes",
    "analytics.views.continuation",
    "analytics.views.cohort_filter",
    "analytics.statistics.survival",
    "analytics.scale.engine",
    "analytics.adherence",
    "analytics.safety",
    "analytics.questionnaires",
)

# Readable titles for the groups of definitions, by the module (or SPEC section) a definition comes from; a
# source falls under the longest key it starts with. Module names are for developers, not for the reader.
SECTION_TITLES = {
    "SPEC §3": "Core definitions (SPEC §3)",
    "SPEC §5": "Patient status, stopping rules and safety (SPEC §5)",
    "analytics.definitions.clinical": "Patient page: response, diary, onset, wearing-off and side effects",
    "analytics.views.continuation": "Should we continue? The clinic's own comparable patients",
    "analytics.views.clinic": "Clinic page: activity, re-injection, retention and worklists",
    "analytics.views.outcomes": "Outcomes page: cohort statistics and models",
    "analytics.views.cohort_filter": "Cohort filter",
    "analytics.statistics.survival": "Time-to-event estimates",
    "analytics.scale": "Registry scale: partitioned tables and exports",
}
OTHER_SECTION = "Other definitions"

COLUMN_FIELDS = [
    "file",
    "file_required",
    "one_row_per",
    "column",
    "required",
    "valid_values",
    "rejection_reason",
    "meaning",
]
PARAMETER_FIELDS = ["parameter", "value", "default", "differs_from_default", "meaning", "basis", "source"]
DEFINITION_FIELDS = ["term", "definition", "columns", "parameters", "source"]


def _basis(section: str, *definitions: Definition) -> tuple[Definition, ...]:
    """``definitions`` with ``section`` (a part of the SPEC) as their source."""
    return tuple(dataclasses.replace(d, source=section) for d in definitions)


# SPEC §3, with the parameters as placeholders so the text always states the values in use.
SPEC_DEFINITIONS: tuple[Definition, ...] = _basis(
    "SPEC §3",
    Definition(
        "Data cut-off (as_of)",
        "{as_of}. Sessions and diary days dated after it are ignored.",
        parameters=("as_of",),
    ),
    Definition(
        "Patient and cycle",
        (
            "Each row of patient_cycles.csv is one treated patient (patient_id, the pseudonym of the input files) "
            "and one window: cycle 0 is the baseline, cycle k ≥ 1 follows the k-th session."
        ),
        columns=("patient_id", "cycle"),
    ),
    Definition(
        "Baseline (cycle 0)",
        "The {baseline_days} days before the first injection: [D1 − {baseline_days}, D1 − 1].",
        columns=("cycle", "start_date", "end_date", "status"),
        parameters=("baseline_days",),
    ),
    Definition(
        "Cycle k",
        (
            "Starts on the k-th session date Dk and ends on min(D(k+1) − 1, Dk + {cycle_days} − 1). The last "
            "cycle ends on Dn + {cycle_days} − 1, or on as_of with status 'ongoing' when that is later "
            "(otherwise 'complete'). A late re-injection never stretches a cycle past {cycle_days} days."
        ),
        columns=("cycle", "start_date", "end_date", "status"),
        parameters=("cycle_days",),
    ),
    Definition(
        "Window days, recorded days, completeness",
        (
            "window_days = end − start + 1; recorded_days = distinct diary dates in the window; "
            "completeness = recorded_days / window_days. A day absent from the diary is missing, never headache-free."
        ),
        columns=("window_days", "recorded_days", "completeness"),
    ),
    Definition(
        "Evaluable window",
        "completeness ≥ {min_completeness} and window_days ≥ {min_window_days}.",
        columns=("evaluable",),
        parameters=("min_completeness", "min_window_days"),
    ),
    Definition(
        "Headache day",
        "A recorded diary day with headache_hours ≥ {headache_min_hours} h.",
        columns=("headache_days",),
        parameters=("headache_min_hours",),
    ),
    Definition(
        "Migraine days, acute-medication days",
        (
            "Recorded days with migraine true, and with acute_medication true (a missing value counts as false; "
            "the count is empty when the column is absent from diary.csv)."
        ),
        columns=("migraine_days", "acute_med_days"),
    ),
    Definition(
        "Monthly rates (per 28 days)",
        (
            "mhd = headache_days / recorded_days × 28; mmd and amd likewise for migraine and acute-medication "
            "days; empty when recorded_days is 0."
        ),
        columns=("mhd", "mmd", "amd"),
    ),
    Definition(
        "Change from baseline",
        (
            "When cycle k and the baseline are both evaluable and baseline mhd > 0: mhd_change = mhd_k − mhd_0 and "
            "mhd_pct_change = 100 × mhd_change / mhd_0; otherwise both are empty."
        ),
        columns=("mhd_change", "mhd_pct_change"),
        parameters=("min_completeness", "min_window_days"),
    ),
    Definition(
        "Responder at t%",
        (
            "For t in {responder_thresholds}: mhd_pct_change ≤ −t (within 1e-9, so 20 → 10 headache days is "
            "exactly a 50% responder); empty when mhd_pct_change is empty."
        ),
        columns=("responder_30", "responder_50", "responder_75"),
        parameters=("responder_thresholds",),
    ),
    Definition(
        "Cumulative 50% responder through cycle k",
        (
            "True if responder_50 is true in any cycle 1..k; false if not and at least one of cycles 1..k has "
            "a responder_50 value; otherwise empty."
        ),
        columns=("cumulative_responder_50",),
    ),
    Definition(
        "Eligible patient",
        "At least one session and an evaluable baseline with mhd_0 > 0.",
        columns=("eligible",),
        parameters=("min_completeness", "min_window_days"),
    ),
    Definition(
        "Treated and evaluable patients per cycle",
        (
            "n_treated: patients with at least k sessions (cycle 0: at least one). n_evaluable: of those, "
            "patients with a non-empty mhd_change at cycle k (cycle 0: eligible patients); mean_mhd is over them."
        ),
        columns=("n_treated", "n_evaluable", "mean_mhd"),
    ),
    Definition(
        "Mean change with 95% t-interval",
        (
            "mean_mhd_change ± t(0.975, n − 1) · sd / √n with sd on n − 1 degrees of freedom, over the n_evaluable "
            "patients; empty when n < 2. median_mhd_change beside it."
        ),
        columns=("mean_mhd_change", "mean_mhd_change_ci_low", "mean_mhd_change_ci_high", "median_mhd_change"),
    ),
    Definition(
        "50% responder rate (Wilson 95% interval)",
        (
            "responder_50_n / n_evaluable with a 95% Wilson score interval; the interval is empty when the "
            "denominator is 0."
        ),
        columns=("responder_50_n", "responder_50_rate", "responder_50_ci_low", "responder_50_ci_high"),
    ),
    Definition(
        "Cumulative responder rate, completers",
        (
            "Among eligible patients with at least k sessions, the share who were 50% responders in any "
            "cycle 1..k (Wilson 95% interval)."
        ),
        columns=(
            "cum_responder_50_completers_n",
            "cum_responder_50_completers_denom",
            "cum_responder_50_completers_rate",
            "cum_responder_50_completers_ci_low",
            "cum_responder_50_completers_ci_high",
        ),
    ),
    Definition(
        "Cumulative responder rate, intention-to-treat",
        (
            "Among eligible patients who had the time to complete k cycles by as_of (D1 + k × {cycle_days} − 1 "
            "≤ as_of), the share who were 50% responders in any cycle 1..k; patients who stopped count as "
            "non-responders from then on (Wilson 95% interval)."
        ),
        columns=(
            "cum_responder_50_itt_n",
            "cum_responder_50_itt_denom",
            "cum_responder_50_itt_rate",
            "cum_responder_50_itt_ci_low",
            "cum_responder_50_itt_ci_high",
        ),
        parameters=("cycle_days",),
    ),
    Definition(
        "Conditional new-responder rate",
        (
            "Among eligible patients with an evaluable change at cycle k and no 50% response in cycles 1..k − 1, "
            "the share who respond at cycle k (Wilson 95% interval)."
        ),
        columns=(
            "new_responder_50_n",
            "prior_nonresponder_denom",
            "new_responder_50_rate",
            "new_responder_50_ci_low",
            "new_responder_50_ci_high",
        ),
    ),
)

# SPEC §5 (patient_status.csv, safety.csv): what each column means, in short, with the parameters in use. The
# exact order of the branches is the SPEC's; every page, worklist and the printable summary shows these values.
STATUS_DEFINITIONS: tuple[Definition, ...] = _basis(
    "SPEC §5",
    Definition(
        "Treated patient and sessions (SPEC §5.1)",
        (
            "One row of patient_status.csv per patient with at least one accepted session up to as_of: the "
            "number of sessions n and the first and last session dates D1 and Dn."
        ),
        columns=("patient_id", "n_sessions", "first_session", "last_session"),
        parameters=("as_of",),
    ),
    Definition(
        "Baseline values (SPEC §5.1)",
        "The baseline window's (cycle 0's) evaluable, mhd, mmd and amd of SPEC §3.",
        columns=("baseline_evaluable", "baseline_mhd", "baseline_mmd", "baseline_amd"),
        parameters=("baseline_days", "min_completeness", "min_window_days"),
    ),
    Definition(
        "Chronic migraine, medication overuse and NICE suitability at baseline (SPEC §5.1)",
        (
            "chronic_at_baseline: empty when the baseline is not evaluable; else baseline mhd ≥ "
            "{chronic_min_headache_days} and baseline mmd ≥ {chronic_min_migraine_days} (the migraine criterion "
            "is not applied when diary.csv has no migraine column). overuse_at_baseline: baseline amd ≥ "
            "{overuse_acute_days} (empty without an evaluable baseline or amd). prior_preventives from patients.csv. "
            "suitable_nice: true when chronic at baseline and prior_preventives ≥ {min_prior_preventives}; false when "
            "either fails; empty otherwise. Comparisons within 1e-9."
        ),
        columns=("chronic_at_baseline", "overuse_at_baseline", "prior_preventives", "suitable_nice"),
        parameters=(
            "chronic_min_headache_days",
            "chronic_min_migraine_days",
            "overuse_acute_days",
            "min_prior_preventives",
        ),
    ),
    Definition(
        "Latest change, ever and sustained 50% response (SPEC §5.1)",
        (
            "latest_evaluable_cycle: the largest cycle k ≥ 1 with a mhd_pct_change, and that value. "
            "ever_responder_50: cumulative_responder_50 of the last cycle. sustained_responder_50: responder_50 true "
            "in two consecutive cycles k and k+1; false when some such pair has both values; else empty."
        ),
        columns=("latest_evaluable_cycle", "latest_mhd_pct_change", "ever_responder_50", "sustained_responder_50"),
        parameters=("responder_thresholds",),
    ),
    Definition(
        "Treatment state, next due date, days overdue (SPEC §5.1)",
        (
            "discontinued when discontinued_on lies between the last session Dn and as_of (an earlier one was "
            "followed by a new start); otherwise, with g = as_of − Dn: active when g ≤ {on_time_max_days}, overdue "
            "when g ≤ {lapse_days}, lapsed beyond. next_due = Dn + {cycle_days} days; days_overdue = max(0, g − "
            "{on_time_max_days}); both empty when discontinued. Lapsed and discontinued patients are off treatment."
        ),
        columns=("treatment_state", "next_due", "days_overdue"),
        parameters=("on_time_max_days", "lapse_days", "cycle_days"),
    ),
    Definition(
        "Re-injection intervals per patient (SPEC §5.1)",
        (
            "Of the n − 1 intervals between consecutive sessions: on time within [{on_time_min_days}, "
            "{on_time_max_days}] days, early below, late above; the longest interval (empty when n = 1)."
        ),
        columns=("intervals_on_time", "intervals_early", "intervals_late", "max_interval_days"),
        parameters=("on_time_min_days", "on_time_max_days"),
    ),
    Definition(
        "NICE TA260 non-response rule (SPEC §5.2)",
        (
            "In this order: not assessable without an evaluable baseline with headache days; pending while fewer "
            "than {stopping_cycle} sessions or cycle {stopping_cycle} is ongoing (not reached when the patient is "
            "off treatment); not assessable when cycle {stopping_cycle} has no mhd_pct_change; stop when it is "
            "above −{stopping_min_reduction}%; otherwise continue."
        ),
        columns=("nice_state",),
        parameters=("stopping_cycle", "stopping_min_reduction"),
    ),
    Definition(
        "EHF non-response rule (SPEC §5.2)",
        (
            "In this order: not assessable without an evaluable baseline with headache days; continue when any of "
            "cycles 1–{ehf_cycles} has mhd_pct_change ≤ −{stopping_min_reduction}%; stop when cycles 1–{ehf_cycles} "
            "all exist, are complete and have a mhd_pct_change; pending while fewer cycles exist or cycle "
            "{ehf_cycles} is ongoing (not reached when off treatment); otherwise not assessable."
        ),
        columns=("ehf_state",),
        parameters=("ehf_cycles", "stopping_min_reduction"),
    ),
    Definition(
        "Conversion to episodic migraine, NICE and EHF thresholds (SPEC §5.3)",
        (
            "Only for chronic migraine at baseline (otherwise empty). Fixed 28-day periods from D1 that end by "
            "as_of, evaluable with recorded days / 28 ≥ {min_completeness}, rated as headache days per 28 recorded "
            "days. converted_on: end of the first run of {episodic_periods} consecutive evaluable periods below the "
            "threshold ({episodic_max_days}; EHF: {ehf_episodic_max_days}). now: over the last {episodic_periods} "
            "periods, true when all are evaluable and below, false when one is evaluable and not below, else empty."
        ),
        columns=("episodic_converted_on", "episodic_now", "ehf_episodic_converted_on", "ehf_episodic_now"),
        parameters=("episodic_periods", "episodic_max_days", "ehf_episodic_max_days", "min_completeness"),
    ),
    Definition(
        "Stop indicated (SPEC §5.1)",
        (
            "True when nice_state or ehf_state is stop or episodic_now is true; empty when none holds and the "
            "patient is discontinued or lapsed; false otherwise."
        ),
        columns=("stop_indicated",),
    ),
    Definition(
        "Adverse events per patient (SPEC §5.1)",
        (
            "The patient's sessions with at least one accepted adverse_events.csv row, and those rows with serious "
            "true; empty without adverse_events.csv."
        ),
        columns=("sessions_with_adverse_event", "serious_adverse_events"),
    ),
    Definition(
        "Patients with an adverse event (SPEC §5.4)",
        (
            "One row of safety.csv per event of the vocabulary that occurs among the counted rows (accepted rows "
            "of treated patients' sessions up to as_of), then any: treated patients, those with at least one such "
            "row and 100 × their share."
        ),
        columns=("event", "patients", "patients_with_event", "patients_with_event_pct"),
        parameters=("as_of",),
    ),
    Definition(
        "Patients with an adverse event in the first two cycles (SPEC §5.4)",
        (
            "Among patients with at least 2 sessions, those with such a row for session D1 or D2, their number and "
            "100 × the share (PREEMPT's 24-week figures are of this kind); empty when no patient has 2 sessions."
        ),
        columns=("patients_with_event_2_cycles", "patients_2_cycles", "pct_2_cycles"),
    ),
    Definition(
        "Adverse events per 100 sessions (SPEC §5.4)",
        "Treated patients' sessions, such rows, 100 × rows / sessions, and the rows with serious true.",
        columns=("sessions", "events", "events_per_100_sessions", "serious_events"),
    ),
)


class _KeepUnknown(dict):
    """Leaves a placeholder that is not a parameter as it was, instead of failing."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _display(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(_display(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def parameter_values(config: AnalysisConfig, as_of: date | pd.Timestamp | None = None) -> dict[str, str]:
    """The current parameter values as text, for filling definition templates."""
    values = {name: _display(getattr(config, name)) for name in (p["parameter"] for p in parameter_docs())}
    values["responder_thresholds"] = ", ".join(f"{t}%" for t in config.responder_thresholds)
    if config.as_of is not None:
        values["as_of"] = f"{config.as_of.isoformat()} (set in the parameters)"
    elif as_of is not None:
        values["as_of"] = f"{pd.Timestamp(as_of).date().isoformat()} (the latest accepted session or diary date)"
    else:
        values["as_of"] = "The latest date among the accepted session and diary rows"
    return values


def fill(template: str, values: Mapping[str, str]) -> str:
    """A definition template with ``{parameter}`` placeholders replaced by their values.

    Text that is not a template (no placeholder, or braces that do not parse) comes back unchanged.
    """
    try:
        if not any(field for _, field, _, _ in Formatter().parse(template)):
            return template
        return template.format_map(_KeepUnknown(values))
    except (ValueError, IndexError):
        return template


def column_dictionary() -> pd.DataFrame:
    """Every input column of every file, and each file's row rules, from ``schemas.FILES``."""
    rows = []
    for spec in schemas.FILES.values():
        common = {"file": spec.filename, "file_required": spec.required, "one_row_per": spec.one_row_per}
        for col in spec.columns:
            reasons = [schemas.MISSING] if col.required else []
            if col.kind != "text" or col.choices:  # free text has no invalid values
                reasons.append(col.invalid_reason())
            rows.append(
                {
                    **common,
                    "column": col.name,
                    "required": col.required,
                    "valid_values": col.describe(),
                    "rejection_reason": "; ".join(reasons),
                    "meaning": col.doc,
                }
            )
        for rule, reason in _row_rules(spec):
            rows.append(
                {
                    **common,
                    "column": "(row)",
                    "required": False,
                    "valid_values": rule,
                    "rejection_reason": reason,
                    "meaning": "A rule across the columns or rows of the file.",
                }
            )
    return pd.DataFrame(rows, columns=COLUMN_FIELDS)


def _row_rules(spec: schemas.FileSpec) -> list[tuple[str, str]]:
    """The rules a file applies across columns or rows, in words, with their rejection reasons."""
    rules = []
    if spec.stem != "patients":
        rules.append(("patient_id must be listed in patients.csv when that file exists", schemas.UNKNOWN_PATIENT))
    if spec.session_linked:
        rules.append(("patient_id and session_date must match a session in sessions.csv", schemas.UNKNOWN_SESSION))
    key = ", ".join(spec.key)
    if spec.duplicates == "first":
        rules.append((f"one row per {key}; the first row is kept", spec.duplicate_reason))
    elif spec.duplicates == "identical":
        rules.append(("an exact repeat of a row is rejected; the first is kept", schemas.DUPLICATE_ROW))
    elif spec.duplicates == "diary":
        rules.append((f"identical rows for the same {key}: the first is kept", schemas.DUPLICATE_ROW))
        rules.append(
            (f"differing rows for the same {key}: all are rejected and the day is unrecorded", schemas.CONFLICT)
        )
    for check in spec.row_checks:
        rules.append((f"checked across {', '.join(check.columns)}", check.reason))
    rules.append(("a line that cannot be split into the header's fields", schemas.WRONG_FIELD_COUNT))
    return rules


def _modules(names: Iterable[str]) -> list[ModuleType]:
    """The listed modules that exist; a module that exists but fails to import is an error."""
    found = []
    for name in names:
        try:
            found.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the module is there but broken: that must not go unnoticed
                raise
    return found


def module_parameter_docs(modules: Iterable[str] = DEFINITION_MODULES) -> list[dict[str, object]]:
    """Parameters the listed modules document themselves (functions named ``*parameter_docs``)."""
    docs: list[dict[str, object]] = []
    for module in _modules(modules):
        for name, function in vars(module).items():
            defined_here = getattr(function, "__module__", None) == module.__name__
            if name.endswith("parameter_docs") and callable(function) and defined_here:
                docs.extend({**doc, "source": module.__name__} for doc in function())
    return docs


def parameter_dictionary(
    config: AnalysisConfig, as_of: date | pd.Timestamp | None = None, modules: Iterable[str] = DEFINITION_MODULES
) -> pd.DataFrame:
    """Every parameter with its current value, its default, whether it differs, meaning and basis."""
    current = parameter_values(config, as_of)
    default_values = parameter_values(AnalysisConfig())
    changed = config.differences_from_default()
    rows: list[dict[str, object]] = [
        {
            "parameter": doc["parameter"],
            "value": current[doc["parameter"]],
            "default": default_values[doc["parameter"]],
            "differs_from_default": doc["parameter"] in changed,
            "meaning": doc["meaning"],
            "basis": doc["basis"],
            "source": "SPEC §5" if doc["parameter"] in STATUS_PARAMETERS else "SPEC §3",
        }
        for doc in parameter_docs()
    ]
    seen = {row["parameter"] for row in rows}
    for doc in module_parameter_docs(modules):
        if doc["parameter"] in seen:
            continue
        seen.add(doc["parameter"])
        rows.append(
            {
                "parameter": doc["parameter"],
                "value": _display(doc["default"]),
                "default": _display(doc["default"]),
                "differs_from_default": False,
                "meaning": doc.get("meaning", ""),
                "basis": doc.get("basis", ""),
                "source": doc["source"],
            }
        )
    return pd.DataFrame(rows, columns=PARAMETER_FIELDS)


def _entry_field(entry: object, *names: str) -> object:
    for name in names:
        value = entry.get(name) if isinstance(entry, Mapping) else getattr(entry, name, None)
        if value is not None:
            return value
    return None


def _names(value: object) -> tuple[str, ...]:
    """Parameter or column names given as a sequence or as a comma- or semicolon-separated text."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(n.strip() for n in value.replace(";", ",").split(",") if n.strip())
    return tuple(str(n) for n in value)  # type: ignore[attr-defined]


def _as_definition(entry: object, module: str) -> Definition | None:
    """A ``DEFINITIONS`` entry as a ``Definition`` whose source is ``module`` unless it names its own; None when the
    entry has no name or no text."""
    if isinstance(entry, Definition):
        return entry if entry.source else dataclasses.replace(entry, source=module)
    if isinstance(entry, tuple) and len(entry) == 2:
        entry = {"term": entry[0], "definition": entry[1]}
    term = _entry_field(entry, "term", "name", "title")
    text = _entry_field(entry, "definition", "doc", "text", "description")
    if term is None or text is None:
        return None
    return Definition(
        str(term),
        str(text),
        columns=_names(_entry_field(entry, "columns")),
        parameters=_names(_entry_field(entry, "parameters")),
        source=str(_entry_field(entry, "source") or module),
    )


def module_definitions(modules: Iterable[str] = DEFINITION_MODULES) -> list[Definition]:
    """The ``DEFINITIONS`` of the listed analytics modules that exist, as ``Definition`` records."""
    found = (
        _as_definition(entry, module.__name__)
        for module in _modules(modules)
        for entry in getattr(module, "DEFINITIONS", ()) or ()
    )
    return [definition for definition in found if definition is not None]


def section_title(source: str) -> str:
    """The readable title of the group a definition's ``source`` belongs to (``SECTION_TITLES``)."""
    keys = [key for key in SECTION_TITLES if source == key or source.startswith(key + ".")]
    return SECTION_TITLES[max(keys, key=len)] if keys else OTHER_SECTION


def definition_sections(definitions: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """``definition_dictionary``'s rows (or some of them) grouped under readable titles, in the order of
    ``SECTION_TITLES`` and then "Other definitions": [(title, rows), ...], e.g. for one expander per group."""
    titles = definitions["source"].map(section_title)
    order = [*SECTION_TITLES.values(), OTHER_SECTION]
    return [(title, definitions[titles == title]) for title in order if (titles == title).any()]


def definition_dictionary(
    config: AnalysisConfig, as_of: date | pd.Timestamp | None = None, modules: Iterable[str] = DEFINITION_MODULES
) -> pd.DataFrame:
    """SPEC §3's definitions and the modules' own, with the current parameter values filled in.

    The ``parameters`` column lists each parameter a definition uses as ``name = value``.
    """
    parameter_table = parameter_dictionary(config, as_of, modules)
    values: dict[str, str] = dict(zip(parameter_table["parameter"], parameter_table["value"], strict=True))
    rows = [
        {
            "term": d.name,
            "definition": fill(d.text, values),
            "columns": ", ".join(d.columns),
            "parameters": "; ".join(f"{name} = {values[name]}" if name in values else name for name in d.parameters),
            "source": d.source,
        }
        for d in [*SPEC_DEFINITIONS, *STATUS_DEFINITIONS, *module_definitions(modules)]
    ]
    return pd.DataFrame(rows, columns=DEFINITION_FIELDS)


def data_dictionary(
    config: AnalysisConfig, as_of: date | pd.Timestamp | None = None, modules: Iterable[str] = DEFINITION_MODULES
) -> pd.DataFrame:
    """The three parts as one tidy table (section, item, ...) for a single CSV download."""
    columns = column_dictionary().assign(section="input column", item=lambda f: f["file"] + ":" + f["column"])
    parameters = parameter_dictionary(config, as_of, modules).assign(section="parameter", item=lambda f: f["parameter"])
    definitions = definition_dictionary(config, as_of, modules).assign(section="definition", item=lambda f: f["term"])
    combined = pd.concat(
        [
            columns.rename(columns={"meaning": "description"}),
            parameters.rename(columns={"meaning": "description"}),
            definitions.rename(columns={"definition": "description"}),
        ],
        ignore_index=True,
    )
    # Flags become nullable booleans so the CSV says true/false, and empty where they do not apply.
    flags = ["file_required", "required", "differs_from_default"]
    combined[flags] = combined[flags].astype("boolean")
    ordered = [
        "section",
        "item",
        "description",
        "file",
        "file_required",
        "one_row_per",
        "column",
        "required",
        "valid_values",
        "rejection_reason",
        "value",
        "default",
        "differs_from_default",
        "basis",
        "columns",
        "parameters",
        "source",
    ]
    return combined[ordered]
