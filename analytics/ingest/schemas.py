"""The input contract (SPEC §2): files, columns, value rules and their rejection reasons.

This module is the single source of truth for column names and for what makes a value valid.
Each column has a kind with one vectorised parser; the same parser validates a value (pandera
checks built from these specs) and converts it to its analysis type, so a rule cannot drift
between validation and use. Parsers work on the distinct values of a column and map back, which
keeps a 2-million-row diary fast: a diary has few distinct dates, hours and flags.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pandas as pd
import pandera.errors
import pandera.pandas as pa

PATIENT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_PATIENT_ID_RE = re.compile(PATIENT_ID_PATTERN)
# ASCII digits only: \d would also take other scripts' digits (２０２４-02-01), which ISO 8601 does not.
_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_AGE_BAND_RE = re.compile(r"^(\d{1,3})-(\d{1,3})$|^(\d{1,3})\+$")

# Text columns are Arrow-backed strings: hashing them (duplicate checks, group-bys, merges on
# patient_id) is several times faster than Python-object strings on a 2-million-row diary.
TEXT_DTYPE: Final = "string[pyarrow]"

TRUE_WORDS = frozenset({"true", "1", "yes", "y", "t"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "f"})

# Names of direct identifiers after lower-casing and removing everything but letters and digits
# (SPEC §2.1's list). Test a column name with ``direct_identifier``: the loader and the
# de-identification tool both use it, so the two can never disagree.
DIRECT_IDENTIFIERS = frozenset(
    "name firstname lastname surname fullname email emailaddress phone phonenumber telephone "
    "mobile address street postcode zipcode zip mrn medicalrecordnumber nhsnumber ssn "
    "socialsecuritynumber dob dateofbirth birthdate patientname forename givenname familyname "
    "nhsno hospitalnumber hospitalno phoneno telno mobileno contactnumber postalcode "
    "addressline1 addressline2".split()
)

# Rejection reasons, worded as in SPEC §2.1; listed in the order a row's first failure is reported.
MISSING = "missing required value"
INVALID_ID = "invalid patient_id"
INVALID_DATE = "invalid date"
INVALID_BOOLEAN = "invalid boolean"
UNKNOWN_PATIENT = "unknown patient"
UNKNOWN_SESSION = "unknown session"
DUPLICATE_PATIENT = "duplicate patient"
DUPLICATE_SESSION = "duplicate session"
DUPLICATE_ROW = "duplicate row"
CONFLICT = "conflicting entries for the same day"
WRONG_FIELD_COUNT = "wrong number of fields"

INSTRUMENT_RANGES: dict[str, tuple[float, float]] = {
    "HIT-6": (36, 78),
    "MIDAS": (0, 270),
    "MSQ-RFR": (0, 100),
    "MSQ-RFP": (0, 100),
    "MSQ-EF": (0, 100),
}
SCORE_OUT_OF_RANGE = "score out of range for instrument"


def normalise_column_name(name: str) -> str:
    """Lower-case a header and keep only letters and digits (the direct-identifier test).

    NFKC first, so full-width or ligature spellings (``Ｅ-mail``, ``ﬁrst name``) are the ASCII words.
    """
    return re.sub(r"[^a-z0-9]", "", unicodedata.normalize("NFKC", str(name)).lower())


def direct_identifier(name: str) -> str | None:
    """The SPEC §2.1 direct identifier a column name is (its normalised form, e.g. ``"email"``), or None.

    The one test of a column name for a direct identifier: loading refuses such a column (exit 3),
    de-identification drops it and refuses to ``--keep`` it. The returned word comes from the fixed
    list, never from the header, so it can be reported without repeating the header's text.
    """
    normalised = normalise_column_name(name)
    return normalised if normalised in DIRECT_IDENTIFIERS else None


# --- vectorised parsers: Series of stripped strings ("" = missing) -> typed Series (NA = invalid)


def _by_distinct(values: pd.Series, parse_distinct: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """Apply a parser to the distinct values only, then map the results back to every row."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    parsed = parse_distinct(pd.Series(uniques, dtype=object))
    return pd.Series(parsed.array.take(codes), index=values.index)


def _parse_dates(distinct: pd.Series) -> pd.Series:
    shaped = distinct.map(lambda v: isinstance(v, str) and bool(_DATE_RE.match(v)))
    out = pd.to_datetime(distinct.where(shaped), format="%Y-%m-%d", errors="coerce")
    return out.astype("datetime64[ns]")


def _parse_numbers(distinct: pd.Series) -> pd.Series:
    out = pd.to_numeric(distinct.where(distinct != ""), errors="coerce").astype("float64")
    return out.where(np.isfinite(out))


def _parse_integers(distinct: pd.Series) -> pd.Series:
    numbers = _parse_numbers(distinct)
    # Beyond 2**53 a float no longer holds every whole number exactly, and int64 overflows.
    whole = (numbers == np.floor(numbers)) & (numbers.abs() < 2**53)
    return numbers.where(whole).astype("Int64")


def _parse_booleans(distinct: pd.Series) -> pd.Series:
    lowered = distinct.str.lower()
    out = pd.Series(pd.NA, index=distinct.index, dtype="boolean")
    out[lowered.isin(TRUE_WORDS)] = True
    out[lowered.isin(FALSE_WORDS)] = False
    return out


def _parse_patient_ids(distinct: pd.Series) -> pd.Series:
    ok = distinct.map(lambda v: bool(_PATIENT_ID_RE.match(v)))
    return distinct.where(ok).astype(TEXT_DTYPE)


def _parse_age_bands(distinct: pd.Series) -> pd.Series:
    def valid(v: str) -> bool:
        m = _AGE_BAND_RE.match(v)
        return m is not None and (m.group(3) is not None or int(m.group(1)) <= int(m.group(2)))

    return distinct.where(distinct.map(valid)).astype(TEXT_DTYPE)


def _parse_text(distinct: pd.Series) -> pd.Series:
    """Free text; an empty cell is missing (NA), never the empty string."""
    return distinct.where(distinct != "").astype(TEXT_DTYPE)


@dataclass(frozen=True)
class ColumnSpec:
    """One column of an input file: its kind, whether required, its valid values and its reason."""

    name: str
    kind: str
    required: bool = False
    doc: str = ""
    choices: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    reason: str = ""

    def parse(self, values: pd.Series) -> pd.Series:
        """Typed values of a column of stripped strings; NA where missing or invalid."""
        parser = _KIND_PARSERS[self.kind]
        parsed = _by_distinct(values, parser)
        if self.choices:
            # Fixed vocabularies match in any case ("Temporalis", "hit-6") and are stored canonically.
            canonical = {str(choice).lower(): choice for choice in self.choices}
            parsed = parsed.str.lower().map(canonical).astype(parsed.dtype)
        if self.low is not None:
            above = parsed > self.low if not self.low_inclusive else parsed >= self.low
            parsed = parsed.where(above)
        if self.high is not None:
            parsed = parsed.where(parsed <= self.high)
        return parsed

    def invalid_reason(self) -> str:
        if self.reason:
            return self.reason
        return {
            "patient_id": INVALID_ID,
            "date": INVALID_DATE,
            "bool": INVALID_BOOLEAN,
        }.get(self.kind, f"invalid {self.name}")

    def describe(self) -> str:
        """The valid values in words, for the data dictionary."""
        if self.choices:
            return "one of " + ", ".join(self.choices) + " (any case)"
        kind_words = {
            "patient_id": f"pseudonym matching {PATIENT_ID_PATTERN}",
            "date": "date YYYY-MM-DD",
            "bool": "boolean: true/false, 1/0, yes/no, y/n, t/f (any case)",
            "text": "free text",
            "age_band": "age band such as 40-49 or 90+",
            "int": "whole number",
            "number": "number",
        }
        words = kind_words[self.kind]
        if self.low is not None or self.high is not None:
            left = "(" if not self.low_inclusive else "["
            words += f" in {left}{_fmt(self.low)}, {_fmt(self.high)}]"
        return words


def _fmt(value: float | None) -> str:
    if value is None:
        return "…"
    return str(int(value)) if float(value).is_integer() else str(value)


_KIND_PARSERS: dict[str, Callable[[pd.Series], pd.Series]] = {
    "patient_id": _parse_patient_ids,
    "date": _parse_dates,
    "number": _parse_numbers,
    "int": _parse_integers,
    "bool": _parse_booleans,
    "text": _parse_text,
    "age_band": _parse_age_bands,
}


@dataclass(frozen=True)
class RowCheck:
    """A rule across columns of one row; ``check`` gets the typed columns, True where valid."""

    reason: str
    columns: tuple[str, ...]
    check: Callable[[pd.DataFrame], pd.Series]


@dataclass(frozen=True)
class FileSpec:
    """One input file: its columns and the rule for repeated keys."""

    stem: str
    required: bool
    one_row_per: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...] = ()
    duplicates: str = "none"
    """How repeated keys are handled: 'first' keeps the first row and rejects the rest with
    ``duplicate_reason``; 'diary' keeps the first of identical rows and rejects every row of a
    key whose rows differ; 'identical' rejects exact repeats only."""
    duplicate_reason: str = DUPLICATE_ROW
    session_linked: bool = False
    """Rows refer to a session (patient_id, session_date) that must exist in sessions.csv."""
    row_checks: tuple[RowCheck, ...] = field(default=())

    @property
    def filename(self) -> str:
        return f"{self.stem}.csv"

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]


def _id() -> ColumnSpec:
    return ColumnSpec("patient_id", "patient_id", required=True, doc="Pseudonymous patient identifier.")


def _score_in_range(typed: pd.DataFrame) -> pd.Series:
    """Row check for questionnaires: the score lies in its instrument's range."""
    low = typed["instrument"].map({k: v[0] for k, v in INSTRUMENT_RANGES.items()}).astype("float64")
    high = typed["instrument"].map({k: v[1] for k, v in INSTRUMENT_RANGES.items()}).astype("float64")
    score = typed["score"].astype("float64")
    in_range = (score >= low) & (score <= high)
    return in_range | score.isna() | low.isna()


MUSCLES = (
    "corrugator",
    "procerus",
    "frontalis",
    "temporalis",
    "occipitalis",
    "cervical_paraspinal",
    "trapezius",
    "other",
)
EVENTS = (
    "neck_pain",
    "injection_site_pain",
    "eyelid_ptosis",
    "muscular_weakness",
    "musculoskeletal_stiffness",
    "headache",
    "facial_paresis",
    "dysphagia",
    "other",
)

FILES: dict[str, FileSpec] = {
    spec.stem: spec
    for spec in (
        FileSpec(
            "sessions",
            True,
            "injection session",
            (
                _id(),
                ColumnSpec("session_date", "date", required=True, doc="Date of the injection session."),
                ColumnSpec(
                    "total_units",
                    "number",
                    low=0,
                    high=400,
                    low_inclusive=False,
                    reason="implausible total_units",
                    doc="Total onabotulinumtoxinA units given (155 per PREEMPT, up to 195).",
                ),
                ColumnSpec(
                    "n_injections",
                    "int",
                    low=1,
                    high=100,
                    reason="implausible n_injections",
                    doc="Number of injection sites (31 per PREEMPT, up to 39).",
                ),
                ColumnSpec("injector_id", "text", doc="Pseudonymous identifier of the injecting clinician."),
                ColumnSpec("protocol", "text", doc="Injection protocol, e.g. PREEMPT or PREEMPT+FTP."),
            ),
            key=("patient_id", "session_date"),
            duplicates="first",
            duplicate_reason=DUPLICATE_SESSION,
        ),
        FileSpec(
            "diary",
            True,
            "patient-day recorded",
            (
                _id(),
                ColumnSpec("date", "date", required=True, doc="Diary day."),
                ColumnSpec(
                    "headache_hours",
                    "number",
                    required=True,
                    low=0,
                    high=24,
                    reason="headache_hours out of range",
                    doc="Hours of headache on the day (0-24).",
                ),
                ColumnSpec("migraine", "bool", doc="The headache met migraine criteria."),
                ColumnSpec(
                    "severity",
                    "int",
                    choices=(),
                    low=0,
                    high=3,
                    reason="severity out of range",
                    doc="Peak severity: 0 none, 1 mild, 2 moderate, 3 severe.",
                ),
                ColumnSpec("acute_medication", "bool", doc="Acute (rescue) medication taken on the day."),
            ),
            key=("patient_id", "date"),
            duplicates="diary",
        ),
        FileSpec(
            "patients",
            False,
            "patient",
            (
                _id(),
                ColumnSpec(
                    "sex",
                    "text",
                    choices=("F", "M", "X", "U"),
                    reason="invalid sex",
                    doc="Sex: F, M, X (other) or U (unknown).",
                ),
                ColumnSpec("age_band", "age_band", reason="invalid age_band", doc="Age band, e.g. 40-49 or 90+."),
                ColumnSpec("clinic", "text", doc="Clinic (site) treating the patient."),
                ColumnSpec(
                    "prior_preventives",
                    "int",
                    low=0,
                    high=50,
                    reason="invalid prior_preventives",
                    doc="Number of prior preventive treatments that failed (NICE asks for 3).",
                ),
                ColumnSpec("medication_overuse", "bool", doc="Medication overuse at baseline."),
                ColumnSpec("discontinued_on", "date", doc="Date treatment was stopped, if it was."),
                ColumnSpec("discontinuation_reason", "text", doc="Why treatment was stopped."),
            ),
            key=("patient_id",),
            duplicates="first",
            duplicate_reason=DUPLICATE_PATIENT,
        ),
        FileSpec(
            "injections",
            False,
            "muscle and side injected in a session",
            (
                _id(),
                ColumnSpec("session_date", "date", required=True, doc="Date of the injection session."),
                ColumnSpec(
                    "muscle",
                    "text",
                    required=True,
                    choices=MUSCLES,
                    reason="invalid muscle",
                    doc="Muscle group injected.",
                ),
                ColumnSpec(
                    "side", "text", choices=("left", "right", "midline"), reason="invalid side", doc="Side injected."
                ),
                ColumnSpec(
                    "units",
                    "number",
                    required=True,
                    low=0,
                    high=200,
                    low_inclusive=False,
                    reason="implausible units",
                    doc="Units injected into this muscle and side.",
                ),
                ColumnSpec(
                    "sites", "int", low=1, high=40, reason="implausible sites", doc="Number of injection sites."
                ),
            ),
            key=("patient_id", "session_date", "muscle", "side"),
            duplicates="identical",
            session_linked=True,
        ),
        FileSpec(
            "adverse_events",
            False,
            "adverse event after a session",
            (
                _id(),
                ColumnSpec("session_date", "date", required=True, doc="Session the event followed."),
                ColumnSpec(
                    "event", "text", required=True, choices=EVENTS, reason="invalid event", doc="Adverse event."
                ),
                ColumnSpec(
                    "severity",
                    "text",
                    choices=("mild", "moderate", "severe"),
                    reason="invalid severity",
                    doc="Severity of the event.",
                ),
                ColumnSpec("onset_date", "date", doc="Onset of the event."),
                ColumnSpec("resolved_date", "date", doc="Date the event resolved; empty if unresolved."),
                ColumnSpec("serious", "bool", doc="Serious adverse event."),
            ),
            key=("patient_id", "session_date", "event", "severity", "onset_date", "resolved_date", "serious"),
            duplicates="identical",
            session_linked=True,
        ),
        FileSpec(
            "questionnaires",
            False,
            "completed questionnaire",
            (
                _id(),
                ColumnSpec("date", "date", required=True, doc="Date the questionnaire was completed."),
                ColumnSpec(
                    "instrument",
                    "text",
                    required=True,
                    choices=tuple(INSTRUMENT_RANGES),
                    reason="invalid instrument",
                    doc="Instrument: HIT-6, MIDAS, MSQ-RFR, MSQ-RFP or MSQ-EF.",
                ),
                ColumnSpec(
                    "score",
                    "number",
                    required=True,
                    reason="invalid score",
                    doc="Score (HIT-6 36-78, MIDAS 0-270, MSQ 0-100).",
                ),
            ),
            key=("patient_id", "date", "instrument", "score"),
            duplicates="identical",
            row_checks=(RowCheck(SCORE_OUT_OF_RANGE, ("instrument", "score"), _score_in_range),),
        ),
    )
}


def required_columns(stem: str) -> list[dict[str, str]]:
    """The required columns of one input file, in file order, for a refusal to show first.

    Each is a record with ``column``, ``valid_values`` (``ColumnSpec.describe``) and ``meaning``
    (``ColumnSpec.doc``); ``stem`` is a key of ``FILES`` (``sessions``, ``diary``, ...).
    """
    return [
        {"column": c.name, "valid_values": c.describe(), "meaning": c.doc} for c in FILES[stem].columns if c.required
    ]


def rule_order(spec: FileSpec) -> list[str]:
    """Reasons in the order a row's first failure is reported (SPEC §2.1's order)."""
    value_reasons = [c.invalid_reason() for c in spec.columns if c.name != "patient_id"]
    ordered = [MISSING, INVALID_ID, INVALID_DATE]
    for reason in value_reasons + [rc.reason for rc in spec.row_checks]:
        if reason not in ordered:
            ordered.append(reason)
    return ordered


def pandera_schema(spec: FileSpec, typed: pd.DataFrame) -> pa.DataFrameSchema:
    """A pandera schema over the stripped string cells of a file's contract columns.

    Each check is named by its rejection reason, so pandera's failure-case table is the rejection
    report before precedence is applied. ``typed`` holds the same rows parsed once by
    ``ColumnSpec.parse`` (NA where missing or invalid): a non-empty cell whose typed value is NA
    breaks its column's rule. Only the columns present in the file are checked.
    """
    columns = {}
    for col in spec.columns:
        if col.name not in typed.columns:
            continue
        checks = []
        if col.required:
            checks.append(pa.Check(lambda s: s != "", name=MISSING))
        checks.append(pa.Check(_valid_or_empty(typed[col.name]), name=col.invalid_reason()))
        # No dtype or null check: cells are already strings ("" = missing), and pandera's
        # element-wise dtype check costs seconds on a 2-million-row diary.
        columns[col.name] = pa.Column(None, checks=checks, nullable=True, required=True)
    frame_checks = [
        pa.Check(_row_check(rule, typed), name=rule.reason)
        for rule in spec.row_checks
        if all(c in typed.columns for c in rule.columns)
    ]
    return pa.DataFrameSchema(columns, checks=frame_checks, strict=False, coerce=False)


def _valid_or_empty(parsed: pd.Series) -> Callable[[pd.Series], pd.Series]:
    def check(values: pd.Series) -> pd.Series:
        return (values == "") | parsed.notna()

    return check


def _row_check(rule: RowCheck, typed: pd.DataFrame) -> Callable[[pd.DataFrame], pd.Series]:
    def frame_check(frame: pd.DataFrame) -> pd.Series:
        return rule.check(typed[list(rule.columns)])

    return frame_check


def _load_pandera_parts() -> None:
    """pandera registers its pandas backends (importing its checks, and its data strategies where hypothesis is
    installed) at its first validation: 0.05–0.4 s of the first data load after a server start. A one-row frame
    with a column check and a frame check, one failing (the failure-case report), validated once at import."""
    schema = pa.DataFrameSchema(
        {"a": pa.Column(None, checks=[pa.Check(lambda s: s != "", name="missing")], nullable=True)},
        checks=[pa.Check(lambda frame: frame["a"] == "", name="row")],
    )
    with contextlib.suppress(pandera.errors.SchemaErrors):
        schema.validate(pd.DataFrame({"a": ["value"]}), lazy=True)


_load_pandera_parts()
