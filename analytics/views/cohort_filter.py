"""The researcher's cohort filter: which treated patients an outcomes analysis or export describes.

A ``CohortFilter`` is a frozen set of criteria on one row per treated patient
(``patient_attributes``): sex, age band, clinic, prior preventives, medication overuse, baseline
monthly headache days, first-injection date and number of cycles. An empty criterion selects
everyone; a patient whose attribute is missing (not recorded, or no ``patients.csv``) never matches
an active criterion on that attribute, because "not recorded" is not any of the chosen values.
``restrict`` narrows an ``Analysis`` to the selected patients and recomputes the cohort table with
``cohort.cohort_cycles`` (same ``as_of`` and parameters), so a filtered cohort's statistics follow
SPEC §3 exactly. The filter travels as JSON (``to_dict`` / ``from_dict``, recorded in the export
manifest and downloaded from the Outcomes page), as URL query parameters and as command-line flags
of ``python -m analytics export``; ``filtered_export`` is the one function both the page and the
command line call, so the same data, parameters and filter give the same bytes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import pandas as pd

from analytics.definitions.cohort import cohort_cycles
from analytics.definitions.config import TOLERANCE, AnalysisConfig
from analytics.definitions.pipeline import Analysis
from analytics.definitions.status import safety
from analytics.errors import AnalyticsRefusal
from analytics.ingest.load import Dataset
from analytics.output.export import export_files, suppressed_export_files

if TYPE_CHECKING:
    from _typeshed import SupportsAllComparisons

FILTER_FILE_NAME = "cohort_filter.json"
MANIFEST_KEY = "cohort_filter"

ATTRIBUTE_COLUMNS = [
    "patient_id",
    "sex",
    "age_band",
    "clinic",
    "prior_preventives",
    "medication_overuse",
    "first_injection",
    "n_cycles",
    "eligible",
    "baseline_evaluable",
    "baseline_completeness",
    "baseline_mhd",
    "baseline_mmd",
    "baseline_amd",
]
"""Columns of ``patient_attributes``; the filter criteria read a subset, Table 1 and subgroups read more."""

_CATEGORICAL = ("sex", "age_band", "clinic")
_AGE_LOW_RE = re.compile(r"^(\d+)")

# URL query parameters (the Outcomes page binds its widgets to these names): a categorical
# criterion is a repeated parameter, a range two values (low, high), a choice one value.
RANGES: dict[str, tuple[str, str, type]] = {
    "prior_preventives": ("prior_preventives_min", "prior_preventives_max", int),
    "baseline_mhd": ("baseline_mhd_min", "baseline_mhd_max", float),
    "first_injection": ("first_injection_from", "first_injection_to", date),
}
QUERY_PARAMETERS = (
    "sex",
    "age_band",
    "clinic",
    "prior_preventives",
    "medication_overuse",
    "baseline_mhd",
    "first_injection",
    "min_cycles",
)
Bounds = Mapping[str, Sequence[object]]
"""The data's (low, high) per range parameter: a range end at (or beyond) its bound is open."""


class CohortFilterError(AnalyticsRefusal, ValueError):
    """A cohort filter with an unknown, malformed or contradictory criterion; ``str()`` says which."""


def _yes_no(value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "y", "1", "t"):
        return True
    if text in ("false", "no", "n", "0", "f"):
        return False
    if text in ("", "any", "none", "null"):
        return None
    raise ValueError(f"medication_overuse must be true/yes, false/no or empty, not {value!r}")


def _as_date(value: object) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value).strip())


def _as_number(value: str | float | None, kind: type) -> float | int | None:
    if value is None or value == "":
        return None
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"not a finite number: {value!r}")
    if kind is int:
        if number != int(number):
            raise ValueError(f"not a whole number: {value!r}")
        return int(number)
    return number


def _values(value: str | Iterable[object] | None) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (value.strip(),)
    return tuple(sorted({str(v).strip() for v in value if str(v).strip()}))


def _text(value: object) -> str:
    """One criterion value as it appears in a link, a flag or a caption."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def age_band_order(bands: Iterable[str]) -> list[str]:
    """Age bands sorted by their lower bound (``90+`` after ``80-89``), text order among ties."""

    def low(band: str) -> tuple[int, str]:
        match = _AGE_LOW_RE.match(band)
        return (int(match.group(1)) if match else 10**6, band)

    return sorted(set(bands), key=low)


@dataclass(frozen=True)
class CohortFilter:
    """Criteria on treated patients; every field at its default selects everyone.

    - ``sex``, ``age_band``, ``clinic``: the values to keep (empty: all); missing never matches.
    - ``prior_preventives_min`` / ``_max``: inclusive range of failed prior preventives.
    - ``medication_overuse``: True (overuse at baseline), False (none), None (either).
    - ``baseline_mhd_min`` / ``_max``: inclusive range of baseline monthly headache days (headache
      days per 28 recorded days in the baseline window, SPEC §3); a patient with no recorded
      baseline day has none and never matches.
    - ``first_injection_from`` / ``_to``: inclusive range of the first session date (D1).
    - ``min_cycles``: at least this many treatment cycles started (sessions up to as_of).
    """

    sex: tuple[str, ...] = ()
    age_band: tuple[str, ...] = ()
    clinic: tuple[str, ...] = ()
    prior_preventives_min: int | None = None
    prior_preventives_max: int | None = None
    medication_overuse: bool | None = None
    baseline_mhd_min: float | None = None
    baseline_mhd_max: float | None = None
    first_injection_from: date | None = None
    first_injection_to: date | None = None
    min_cycles: int = 0

    def __post_init__(self) -> None:
        try:
            self._normalise()
        except ValueError as exc:
            raise CohortFilterError(str(exc)) from exc

    def _normalise(self) -> None:
        # Normalise so that equal criteria compare, hash and serialise equally (cache keys, URLs).
        for name in _CATEGORICAL:
            object.__setattr__(self, name, _values(getattr(self, name)))
        for name, kind in (
            ("prior_preventives_min", int),
            ("prior_preventives_max", int),
            ("baseline_mhd_min", float),
            ("baseline_mhd_max", float),
        ):
            object.__setattr__(self, name, _as_number(getattr(self, name), kind))
        object.__setattr__(self, "medication_overuse", _yes_no(self.medication_overuse))
        object.__setattr__(self, "first_injection_from", _as_date(self.first_injection_from))
        object.__setattr__(self, "first_injection_to", _as_date(self.first_injection_to))
        object.__setattr__(self, "min_cycles", int(_as_number(self.min_cycles, int) or 0))
        problems = []
        for low, high in (
            ("prior_preventives_min", "prior_preventives_max"),
            ("baseline_mhd_min", "baseline_mhd_max"),
            ("first_injection_from", "first_injection_to"),
        ):
            a, b = getattr(self, low), getattr(self, high)
            if a is not None and b is not None and a > b:
                problems.append(f"{low} ({a}) is after {high} ({b})")
        if self.min_cycles < 0:
            problems.append("min_cycles must not be negative")
        if problems:
            raise CohortFilterError("; ".join(problems))

    # --- selection --------------------------------------------------------------------------

    def is_empty(self) -> bool:
        """True when the filter selects every treated patient."""
        return self == CohortFilter()

    def mask(self, attributes: pd.DataFrame) -> pd.Series:
        """Boolean Series over ``patient_attributes`` rows: True where every active criterion holds."""
        keep = pd.Series(True, index=attributes.index)
        for name in _CATEGORICAL:
            chosen = getattr(self, name)
            if chosen:
                keep &= attributes[name].isin(chosen).fillna(False).astype(bool)

        def in_range(column: str, low: object, high: object) -> None:
            nonlocal keep
            values = attributes[column]
            if low is not None:
                keep &= (values >= low).fillna(False).astype(bool)
            if high is not None:
                keep &= (values <= high).fillna(False).astype(bool)

        in_range("prior_preventives", self.prior_preventives_min, self.prior_preventives_max)
        # A small tolerance so that a baseline of exactly 20.0 days is inside [20, 25] after float division.
        in_range(
            "baseline_mhd",
            None if self.baseline_mhd_min is None else self.baseline_mhd_min - TOLERANCE,
            None if self.baseline_mhd_max is None else self.baseline_mhd_max + TOLERANCE,
        )
        in_range(
            "first_injection",
            None if self.first_injection_from is None else pd.Timestamp(self.first_injection_from),
            None if self.first_injection_to is None else pd.Timestamp(self.first_injection_to),
        )
        if self.medication_overuse is not None:
            keep &= (attributes["medication_overuse"] == self.medication_overuse).fillna(False).astype(bool)
        if self.min_cycles > 0:
            keep &= attributes["n_cycles"] >= self.min_cycles
        return keep

    def select(self, attributes: pd.DataFrame) -> set[str]:
        """The patient_ids of ``patient_attributes`` rows that match."""
        return set(attributes.loc[self.mask(attributes), "patient_id"].astype(str))

    def apply(self, analysis: Analysis, dataset: Dataset) -> set[str]:
        """The treated patients (patient_ids) of ``analysis`` that match the filter."""
        return self.select(patient_attributes(analysis, dataset))

    def filter_analysis(self, analysis: Analysis, dataset: Dataset) -> Analysis:
        """``analysis`` narrowed to the matching patients (unchanged when the filter is empty)."""
        if self.is_empty():
            return analysis
        return restrict(analysis, self.apply(analysis, dataset))

    # --- text forms -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, object]:
        """JSON-ready criteria: every field, lists for values, ISO dates, null for 'any'."""
        out: dict[str, object] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, date):
                value = value.isoformat()
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> CohortFilter:
        """The filter of ``to_dict`` output, of a filter file, or of a manifest.json recording one.

        Unknown keys raise ``CohortFilterError`` (a misspelt criterion must not silently select everyone).
        """
        if MANIFEST_KEY in data and isinstance(data[MANIFEST_KEY], Mapping):
            data = data[MANIFEST_KEY]  # type: ignore[assignment]
        elif "parameters" in data and "files" in data:  # the manifest of an export of the whole cohort
            return cls()
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise CohortFilterError(
                f"unknown cohort filter field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**{k: v for k, v in data.items() if v is not None})  # type: ignore[arg-type]

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> CohortFilter:
        try:
            data = json.loads(text)
        except ValueError as exc:  # not JSON, or not UTF-8
            raise CohortFilterError(str(exc)) from exc
        if not isinstance(data, Mapping):
            raise CohortFilterError("a cohort filter file holds one JSON object")
        return cls.from_dict(data)

    @classmethod
    def from_file(cls, path: Path | str) -> CohortFilter:
        """Read a filter file (``cohort_filter.json``) or an export's ``manifest.json``."""
        return cls.from_json(Path(path).read_bytes())

    def to_query_params(self, bounds: Bounds | None = None) -> dict[str, list[str]]:
        """The active criteria as URL query parameters: repeated values, ranges as (low, high).

        An open range end is written as the data's bound from ``bounds`` (as the page's sliders
        show it) or, without bounds, as an empty value.
        """
        params: dict[str, list[str]] = {}
        for name in _CATEGORICAL:
            if getattr(self, name):
                params[name] = list(getattr(self, name))
        for name, (low_field, high_field, _kind) in RANGES.items():
            low, high = getattr(self, low_field), getattr(self, high_field)
            if low is None and high is None:
                continue
            edge = list((bounds or {}).get(name) or ("", ""))
            params[name] = [_text(edge[0] if low is None else low), _text(edge[1] if high is None else high)]
        if self.medication_overuse is not None:
            params["medication_overuse"] = ["true" if self.medication_overuse else "false"]
        if self.min_cycles:
            params["min_cycles"] = [str(self.min_cycles)]
        return params

    @classmethod
    def from_query_params(
        cls, params: Mapping[str, Sequence[str]], bounds: Bounds | None = None
    ) -> tuple[CohortFilter, list[str]]:
        """The filter in URL query parameters, and what in them was ignored as invalid.

        Links can be edited by hand, so a bad value drops that criterion (reported) instead of
        failing the page; parameters of other pages are ignored. With ``bounds``, a range end at or
        beyond the data's bound is open (the full extent of the data means "any").
        """
        fields: dict[str, object] = {}
        problems: list[str] = []

        # Raw criterion values (text from the URL, parsed ends): CohortFilter normalises its own fields.
        def take(name: str, value: Sequence[Any], field_names: tuple[str, ...]) -> None:
            try:
                trial = cls(**dict(zip(field_names, value, strict=True)))  # validates this criterion alone
                fields.update({f: getattr(trial, f) for f in field_names})
            except (TypeError, ValueError) as exc:
                problems.append(f"{name}={'&'.join(map(str, params.get(name, [])))!r} ignored ({exc})")

        for name in _CATEGORICAL:
            values = [v for v in params.get(name, []) if v]
            if values:
                take(name, [values], (name,))
        for name, (low_field, high_field, kind) in RANGES.items():
            values = list(params.get(name, []))
            if not values:
                continue
            if len(values) != 2:
                problems.append(f"{name} ignored (a range needs two values, low and high)")
                continue
            try:
                low, high = (_as_date(v) if kind is date else _as_number(v, kind) for v in values)
            except ValueError as exc:
                problems.append(f"{name} ignored ({exc})")
                continue
            edge = (bounds or {}).get(name)
            if edge:
                # A bound is a date or a number like the range's ends (by ``kind``), so they compare.
                low_bound, high_bound = (
                    cast("SupportsAllComparisons", _as_date(e) if kind is date else e) for e in edge
                )
                low = None if low is not None and low <= low_bound else low
                high = None if high is not None and high >= high_bound else high
            take(name, [low, high], (low_field, high_field))
        for name in ("medication_overuse", "min_cycles"):
            values = list(params.get(name, []))
            if values:
                take(name, [values[-1]], (name,))
        try:
            return cls(**fields), problems  # type: ignore[arg-type]
        except ValueError as exc:  # e.g. a minimum above its maximum
            return cls(), [*problems, f"the filter in the link was ignored ({exc})"]

    def cli_arguments(self) -> list[str]:
        """The flags of ``python -m analytics export`` that select the same patients."""
        args: list[str] = []
        for name in _CATEGORICAL:
            for value in getattr(self, name):
                args += [f"--{name.replace('_', '-')}", value]
        for name in (
            "prior_preventives_min",
            "prior_preventives_max",
            "baseline_mhd_min",
            "baseline_mhd_max",
            "first_injection_from",
            "first_injection_to",
        ):
            value = getattr(self, name)
            if value is not None:
                args += [f"--{name.replace('_', '-')}", _text(value)]
        if self.medication_overuse is not None:
            args += ["--medication-overuse", "yes" if self.medication_overuse else "no"]
        if self.min_cycles:
            args += ["--min-cycles", str(self.min_cycles)]
        return args

    def describe(self) -> list[str]:
        """The active criteria in words, one per line (empty list: all treated patients)."""
        lines = []
        labels = {"sex": "sex", "age_band": "age band", "clinic": "clinic"}
        for name in _CATEGORICAL:
            if getattr(self, name):
                lines.append(f"{labels[name]}: {', '.join(getattr(self, name))}")

        def span(label: str, low: object, high: object) -> None:
            if low is not None and high is not None:
                lines.append(f"{label}: {_text(low)}–{_text(high)}")
            elif low is not None:
                lines.append(f"{label}: ≥ {_text(low)}")
            elif high is not None:
                lines.append(f"{label}: ≤ {_text(high)}")

        span("prior preventives", self.prior_preventives_min, self.prior_preventives_max)
        if self.medication_overuse is not None:
            lines.append(f"medication overuse: {'yes' if self.medication_overuse else 'no'}")
        span("baseline headache days / 28 d", self.baseline_mhd_min, self.baseline_mhd_max)
        span("first injection", self.first_injection_from, self.first_injection_to)
        if self.min_cycles:
            lines.append(f"at least {self.min_cycles} cycle{'s' if self.min_cycles != 1 else ''} started")
        return lines


def patient_attributes(analysis: Analysis, dataset: Dataset) -> pd.DataFrame:
    """One row per treated patient: the filter's attributes plus the baseline values Table 1 reads.

    first_injection is D1; n_cycles the number of sessions up to as_of (cycles started);
    baseline_* are the cycle-0 window's completeness and monthly rates (SPEC §3, empty when no
    baseline day was recorded); eligible is SPEC §3's eligibility for response statistics.
    Patient attributes come from ``patients.csv`` and are missing when it or the column is absent.
    """
    table = analysis.patient_cycles
    baseline = table.loc[table["cycle"] == 0].set_index("patient_id")
    first = table.loc[table["cycle"] == 1].set_index("patient_id")["start_date"]
    out = pd.DataFrame(
        {
            "first_injection": first.reindex(baseline.index),
            "n_cycles": baseline["n_sessions"].astype("int64"),
            "eligible": baseline["eligible"].astype(bool),
            "baseline_evaluable": baseline["evaluable"].astype(bool),
            "baseline_completeness": baseline["completeness"].astype("float64"),
            "baseline_mhd": baseline["mhd"].astype("float64"),
            "baseline_mmd": baseline["mmd"].astype("float64"),
            "baseline_amd": baseline["amd"].astype("float64"),
        },
        index=baseline.index,
    )
    people = dataset.tables["patients"].drop_duplicates("patient_id").set_index("patient_id")
    present = dataset.present_columns.get("patients", frozenset())
    patient_columns: tuple[tuple[str, Literal["string", "Int64", "boolean"]], ...] = (
        ("sex", "string"),
        ("age_band", "string"),
        ("clinic", "string"),
        ("prior_preventives", "Int64"),
        ("medication_overuse", "boolean"),
    )
    for column, dtype in patient_columns:
        if column in present and column in people:
            out[column] = people[column].reindex(out.index).astype(dtype)
        else:
            out[column] = pd.array([pd.NA] * len(out), dtype=dtype)
    out = out.rename_axis("patient_id").reset_index()
    out["patient_id"] = out["patient_id"].astype("string")
    return out[ATTRIBUTE_COLUMNS].reset_index(drop=True)


def restrict(analysis: Analysis, patient_ids: Iterable[str], with_days: bool = True) -> Analysis:
    """The analysis of only ``patient_ids``: their patient_cycles and patient_days rows, and a
    cohort_cycles table recomputed from them with the same as_of and parameters (SPEC §3).

    patient_status keeps their rows (SPEC §5 is per patient) and safety is recomputed over them.
    ``with_days=False`` leaves patient_days empty (same columns): copying millions of diary rows is
    most of the cost of a filter change, and a caller that reads the days through
    ``outcomes.treated_days`` of the whole analysis (the Outcomes page) does not need them.
    """
    keep = pd.Index(list(patient_ids), dtype="string")
    table = analysis.patient_cycles
    table = table.loc[table["patient_id"].isin(keep)].reset_index(drop=True)
    days = analysis.patient_days
    days = days.loc[days["patient_id"].isin(keep)] if with_days else days.iloc[:0]
    cohort = cohort_cycles(table, analysis.as_of, analysis.config)
    status = analysis.patient_status
    status = status.loc[status["patient_id"].isin(keep)].reset_index(drop=True)
    events = analysis.adverse_events
    events = None if events is None else events.loc[events["patient_id"].isin(keep)].reset_index(drop=True)
    return dataclasses.replace(
        analysis,
        patient_cycles=table,
        patient_days=days.reset_index(drop=True),
        cohort_cycles=cohort,
        patient_status=status,
        adverse_events=events,
        safety=safety(table, events),
    )


def filter_manifest(
    cohort_filter: CohortFilter, selected: int, treated: int, min_cell: int | None = None
) -> dict[str, object]:
    """What an export's manifest records about the cohort (nothing for the whole cohort).

    A suppressed export (``min_cell``) leaves out the number selected: it is cycle 0's n_treated
    in cohort_cycles.csv, where the suppression rule decides whether it may be shown.
    """
    if cohort_filter.is_empty():
        return {}
    cohort: dict[str, object] = {"patients_selected": int(selected), "patients_treated": int(treated)}
    if min_cell is not None:
        cohort.pop("patients_selected")
    return {
        MANIFEST_KEY: cohort_filter.to_dict(),
        "cohort": {
            **cohort,
            "criteria": cohort_filter.describe(),
            "note": (
                "patient_cycles and cohort_cycles describe the selected patients only (cohort statistics "
                "recomputed for them, same as_of and parameters); rejected rows and the file counts describe "
                "the whole dataset as loaded. A patient with a missing attribute never matches a criterion on it."
            ),
        },
    }


def filtered_export(
    analysis: Analysis,
    dataset: Dataset,
    cohort_filter: CohortFilter,
    exported_at: datetime | None = None,
    attributes: pd.DataFrame | None = None,
    min_cell: int | None = None,
) -> dict[str, bytes]:
    """The SPEC §4 export files of the filtered cohort, with the filter recorded in manifest.json.

    The command line (``export`` with filter flags or ``--filter-file``) and the Outcomes page both
    call this, so the same data, parameters and filter give the same bytes (except exported_at);
    with an empty filter it is exactly ``export_files``. ``min_cell`` gives the suppressed,
    aggregate-only export of ``export.suppressed_export_files`` for the cohort instead.
    ``attributes`` may pass a precomputed ``patient_attributes`` table.
    """
    extra: dict[str, object] = {}
    if not cohort_filter.is_empty():
        attributes = patient_attributes(analysis, dataset) if attributes is None else attributes
        selected = cohort_filter.select(attributes)
        analysis = restrict(analysis, selected, with_days=False)  # the export files hold no diary days
        extra = filter_manifest(cohort_filter, len(selected), len(attributes), min_cell)
    if min_cell is not None:
        return suppressed_export_files(analysis, dataset, min_cell, exported_at, extra_manifest=extra or None)
    return export_files(analysis, dataset, exported_at, extra_manifest=extra or None)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The cohort filter's flags of ``python -m analytics export`` (the Outcomes page's cohort builder)."""
    group = parser.add_argument_group(
        "cohort filter", "Export only the treated patients matching every criterion given (as on the Outcomes page)."
    )
    group.add_argument(
        "--filter-file",
        type=Path,
        metavar="FILE.json",
        help=f"a {FILTER_FILE_NAME} downloaded from the Outcomes page, or a manifest.json that records "
        "one; criteria given as flags replace the file's",
    )
    group.add_argument("--sex", action="append", metavar="CODE", help="keep this sex (F, M, X, U); repeat for several")
    group.add_argument("--age-band", action="append", metavar="BAND", help="keep this age band, e.g. 40-49; repeatable")
    group.add_argument("--clinic", action="append", metavar="NAME", help="keep this clinic; repeatable")
    group.add_argument("--prior-preventives-min", type=int, metavar="N", help="at least N failed prior preventives")
    group.add_argument("--prior-preventives-max", type=int, metavar="N", help="at most N failed prior preventives")
    group.add_argument("--medication-overuse", choices=("yes", "no"), help="medication overuse at baseline")
    group.add_argument(
        "--baseline-mhd-min", type=float, metavar="X", help="baseline headache days per 28 days at least X"
    )
    group.add_argument(
        "--baseline-mhd-max", type=float, metavar="X", help="baseline headache days per 28 days at most X"
    )
    group.add_argument("--first-injection-from", metavar="YYYY-MM-DD", help="first injection on or after this date")
    group.add_argument("--first-injection-to", metavar="YYYY-MM-DD", help="first injection on or before this date")
    group.add_argument("--min-cycles", type=int, metavar="N", help="at least N treatment cycles started")


def from_args(args: argparse.Namespace) -> CohortFilter:
    """The filter of the command line: ``--filter-file`` (if given) with the flags' criteria replacing its own.

    Raises ``CohortFilterError`` (or ``OSError`` for an unreadable file) with a one-line message.
    """
    chosen = CohortFilter.from_file(args.filter_file) if getattr(args, "filter_file", None) else CohortFilter()
    changes = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(CohortFilter)
        if getattr(args, f.name, None) is not None
    }
    return dataclasses.replace(chosen, **changes)


def export_command(
    cohort_filter: CohortFilter,
    config: AnalysisConfig,
    data: str = "DATA_DIR",
    out: str = "OUT_DIR",
    filter_file: str | None = None,
) -> str:
    """The ``python -m analytics export`` command line that reproduces a filtered export.

    Parameter flags appear only where they differ from the SPEC defaults; the filter appears as
    ``--filter-file`` when a file name is given, else as flags.
    """
    args = ["python", "-m", "analytics", "export", "--data", data, "--out", out]
    if config.as_of is not None:
        args += ["--as-of", config.as_of.isoformat()]
    args += config.flag_arguments()
    if not cohort_filter.is_empty():
        args += ["--filter-file", filter_file] if filter_file else cohort_filter.cli_arguments()
    return shlex.join(args)


def attribute_options(attributes: pd.DataFrame) -> dict[str, list]:
    """The values and ranges present in a cohort, for building filter controls."""

    def distinct(column: str) -> list[str]:
        return sorted(attributes[column].dropna().astype(str).unique().tolist())

    prior = attributes["prior_preventives"].dropna()
    baseline = attributes["baseline_mhd"].dropna()
    first = attributes["first_injection"].dropna()
    return {
        "sex": distinct("sex"),
        "age_band": age_band_order(distinct("age_band")),
        "clinic": distinct("clinic"),
        "prior_preventives": [int(prior.min()), int(prior.max())] if len(prior) else [],
        "baseline_mhd": [float(np.floor(baseline.min())), float(np.ceil(baseline.max()))] if len(baseline) else [],
        "first_injection": [first.min().date(), first.max().date()] if len(first) else [],
        "n_cycles": [int(attributes["n_cycles"].min()), int(attributes["n_cycles"].max())] if len(attributes) else [],
    }
