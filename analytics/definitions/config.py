"""Analysis parameters (SPEC §3 and §5) and project paths.

One frozen dataclass holds every parameter of the clinical definitions with its documented
default, so the export manifest, the data dictionary and the dashboard sidebar all read the
same values. Each field's metadata documents it (meaning, basis) and, for the parameters the
dashboard lets a user change, describes the sidebar control (label, widget, range), so the
command-line flags, the sidebar and the dictionary are generated from the field alone. Paths are
computed from this file's location, never from the working directory.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypedDict

PROJECT_DIR = Path(__file__).resolve().parents[2]  # analytics/definitions/config.py
SAMPLE_DATA_DIR = PROJECT_DIR / "sample_data"

TOLERANCE = 1e-9
"""How far a value may fall short of a threshold and still meet it: rates and shares are float quotients,
so 20 -> 10 headache days must be exactly a 50% reduction and 21 of 30 days exactly 0.7 complete."""


@dataclass(frozen=True)
class NumberControl:
    """The dashboard's sidebar control of a numeric parameter: a number box, or a slider, over [low, high]."""

    label: str
    low: float
    high: float
    step: float
    slider: bool = False


@dataclass(frozen=True)
class DateControl:
    """The dashboard's sidebar control of a date parameter: a date picker, empty meaning automatic."""

    label: str


def _doc(doc: str, basis: str, control: NumberControl | DateControl | None = None) -> dict[str, object]:
    """Field metadata: the parameter's meaning and its basis, for the data dictionary, and its sidebar control
    when the dashboard lets a user change it."""
    return {"doc": doc, "basis": basis} | ({"control": control} if control else {})


# The parameters of SPEC §5 (patient status and safety), in the SPEC's order.
STATUS_PARAMETERS = (
    "chronic_min_headache_days",
    "chronic_min_migraine_days",
    "min_prior_preventives",
    "overuse_acute_days",
    "stopping_cycle",
    "stopping_min_reduction",
    "ehf_cycles",
    "episodic_max_days",
    "ehf_episodic_max_days",
    "episodic_periods",
    "on_time_min_days",
    "on_time_max_days",
    "lapse_days",
)


@dataclass(frozen=True)
class AnalysisConfig:
    """Parameters of the definitions in SPEC §3 and §5; defaults are the SPEC's."""

    headache_min_hours: float = field(
        default=4.0,
        metadata=_doc(
            "A headache day has at least this many hours of headache.",
            "PREEMPT: a headache day has >=4 h of headache",
            NumberControl("Headache day: at least … hours", 0.0, 24.0, 0.5),
        ),
    )
    baseline_days: int = field(
        default=28,
        metadata=_doc(
            "Length of the prospective baseline window before the first injection (days).",
            "PREEMPT / COMPEL 28-day prospective baseline",
            NumberControl("Baseline window (days)", 7, 180, 1),
        ),
    )
    cycle_days: int = field(
        default=84,
        metadata=_doc(
            "Treatment cycle length: a cycle never runs past this many days (days).",
            "12-week re-injection interval",
            NumberControl("Cycle length (days)", 28, 365, 1),
        ),
    )
    min_completeness: float = field(
        default=0.7,
        metadata=_doc(
            "A window is evaluable with at least this share of its days recorded.",
            ">=20 of 28 days, i.e. >=5 diary days a week",
            NumberControl("Minimum diary completeness", 0.0, 1.0, 0.05, slider=True),
        ),
    )
    min_window_days: int = field(
        default=28,
        metadata=_doc(
            "A window is evaluable only when it spans at least this many days.",
            "a cycle is judged on at least 4 weeks",
            NumberControl("Minimum window length (days)", 1, 365, 1),
        ),
    )
    responder_thresholds: tuple[int, ...] = field(
        default=(30, 50, 75),
        metadata=_doc(
            "Responder thresholds, % reduction of monthly headache days.",
            "NICE / EHF continuation, trial standard, 'excellent'",
        ),
    )
    chronic_min_headache_days: float = field(
        default=15.0,
        metadata=_doc(
            "Baseline headache days per 28 days for chronic migraine (at least).",
            "ICHD-3 / NICE TA260: >=15 headache days a month",
        ),
    )
    chronic_min_migraine_days: float = field(
        default=8.0,
        metadata=_doc(
            "Baseline migraine days per 28 days for chronic migraine (at least).",
            "ICHD-3: of which >=8 migraine days",
        ),
    )
    min_prior_preventives: int = field(
        default=3,
        metadata=_doc("Prior preventive treatments that failed (at least).", "NICE TA260: >=3 preventives failed"),
    )
    overuse_acute_days: float = field(
        default=10.0,
        metadata=_doc(
            "Acute-medication days per 28 days that indicate medication overuse (at least).",
            "ICHD-3 medication overuse: acute medication on >=10 days a month",
        ),
    )
    stopping_cycle: int = field(
        default=2,
        metadata=_doc("Cycle at which the NICE non-response rule is judged.", "NICE TA260: after 2 treatment cycles"),
    )
    stopping_min_reduction: float = field(
        default=30.0,
        metadata=_doc(
            "Reduction of monthly headache days (%) below which treatment stops (NICE and EHF rules).",
            "NICE TA260 / EHF: stop below a 30% reduction",
        ),
    )
    ehf_cycles: int = field(
        default=3,
        metadata=_doc(
            "Cycles without a response after which the EHF rule says stop.",
            "EHF 2018: stop after no response to the first 2-3 cycles",
        ),
    )
    episodic_max_days: float = field(
        default=15.0,
        metadata=_doc(
            "Headache days per 28 days below which a 28-day period counts as episodic (NICE).",
            "NICE TA260: changed to episodic, <15 headache days a month",
        ),
    )
    ehf_episodic_max_days: float = field(
        default=10.0,
        metadata=_doc(
            "Headache days per 28 days below which a 28-day period counts as episodic (EHF).",
            "EHF 2018: <10 headache days a month",
        ),
    )
    episodic_periods: int = field(
        default=3,
        metadata=_doc(
            "Consecutive evaluable 28-day periods below the threshold for conversion to episodic migraine.",
            "NICE TA260 / EHF: for 3 consecutive months",
        ),
    )
    on_time_min_days: int = field(
        default=77,
        metadata=_doc("Shortest on-time interval between sessions (days).", "re-injection at 12 weeks - 3 weeks"),
    )
    on_time_max_days: int = field(
        default=98,
        metadata=_doc(
            "Longest on-time interval between sessions (days); later is overdue.", "re-injection at 12 weeks + 3 weeks"
        ),
    )
    lapse_days: int = field(
        default=182,
        metadata=_doc(
            "Days since the last session after which a patient is lapsed (lost to follow-up).",
            "no session for about 6 months",
        ),
    )
    as_of: date | None = field(
        default=None,
        metadata=_doc(
            "Data cut-off; empty means the latest date among accepted session and diary rows. "
            "Rows dated after it are ignored.",
            "the data cut-off",
            DateControl("Data cut-off (as_of)"),
        ),
    )
    tolerance: float = field(default=TOLERANCE, repr=False)

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.headache_min_hours <= 24:
            problems.append("headache_min_hours must lie in [0, 24]")
        for name in ("baseline_days", "cycle_days", "min_window_days"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be a positive number of days")
        for name in ("min_prior_preventives", "on_time_min_days", "on_time_max_days", "lapse_days"):
            if int(getattr(self, name)) < 0:
                problems.append(f"{name} must not be negative")
        for name in ("stopping_cycle", "ehf_cycles", "episodic_periods"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be at least 1")
        if self.on_time_min_days > self.on_time_max_days:
            problems.append("on_time_min_days must not exceed on_time_max_days")
        if not 0 <= self.min_completeness <= 1:
            problems.append("min_completeness must lie in [0, 1]")
        if problems:
            raise ValueError("; ".join(problems))

    def replace(self, **changes: Any) -> AnalysisConfig:
        return dataclasses.replace(self, **changes)

    def parameters(self) -> dict[str, object]:
        """The parameters as JSON-ready values, as recorded in every export manifest."""
        return {
            "headache_min_hours": self.headache_min_hours,
            "baseline_days": self.baseline_days,
            "cycle_days": self.cycle_days,
            "min_completeness": self.min_completeness,
            "min_window_days": self.min_window_days,
            "responder_thresholds": list(self.responder_thresholds),
            **{name: getattr(self, name) for name in STATUS_PARAMETERS},
            "as_of": self.as_of.isoformat() if self.as_of else None,
        }

    def flag_arguments(self) -> list[str]:
        """The command-line flags that set this configuration's parameters where they differ from the default."""
        default = AnalysisConfig()
        args: list[str] = []
        for name in flag_parameters():
            value = getattr(self, name)
            if value != getattr(default, name):
                args += [flag_name(name), f"{value:g}" if isinstance(value, float) else str(value)]
        return args

    def differences_from_default(self) -> dict[str, tuple[object, object]]:
        """Parameters whose value differs from the SPEC default: name -> (default, value)."""
        default = AnalysisConfig()
        return {
            f.name: (getattr(default, f.name), getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.repr and getattr(default, f.name) != getattr(self, f.name)
        }


class ParameterDoc(TypedDict):
    """One parameter as the data dictionary lists it."""

    parameter: str
    default: object
    meaning: str
    basis: str


def parameter_docs() -> list[ParameterDoc]:
    """Each parameter with its default, meaning and basis, for the data dictionary."""
    return [
        {"parameter": f.name, "default": f.default, "meaning": f.metadata["doc"], "basis": f.metadata["basis"]}
        for f in dataclasses.fields(AnalysisConfig)
        if f.repr
    ]


def sidebar_controls() -> list[tuple[str, NumberControl | DateControl]]:
    """The parameters the dashboard's sidebar lets a user change, in field order, with their controls."""
    return [(f.name, f.metadata["control"]) for f in dataclasses.fields(AnalysisConfig) if "control" in f.metadata]


def flag_parameters() -> list[str]:
    """The parameters that the command line takes as flags of their own (as_of has --as-of)."""
    skipped = ("as_of", "responder_thresholds")
    return [f.name for f in dataclasses.fields(AnalysisConfig) if f.repr and f.name not in skipped]


def flag_name(parameter: str) -> str:
    """The command-line flag of a parameter: ``--`` and its name with dashes (SPEC §4)."""
    return "--" + parameter.replace("_", "-")
