"""Analysis parameters (SPEC §3) and project paths.

One frozen dataclass holds every parameter of the clinical definitions with its documented
default, so the export manifest, the data dictionary and the dashboard sidebar all read the
same values. Paths are computed from this file's location, never from the working directory.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]  # analytics/definitions/config.py
SAMPLE_DATA_DIR = PROJECT_DIR / "sample_data"


def _doc(doc: str, basis: str) -> dict[str, str]:
    """Field metadata: the parameter's meaning and its basis, for the data dictionary."""
    return {"doc": doc, "basis": basis}


@dataclass(frozen=True)
class AnalysisConfig:
    """Parameters of the definitions in SPEC §3; defaults are the SPEC's."""

    headache_min_hours: float = field(
        default=4.0,
        metadata=_doc(
            "A headache day has at least this many hours of headache.",
            "PREEMPT: a headache day has >=4 h of headache",
        ),
    )
    baseline_days: int = field(
        default=28,
        metadata=_doc(
            "Length of the prospective baseline window before the first injection (days).",
            "PREEMPT / COMPEL 28-day prospective baseline",
        ),
    )
    cycle_days: int = field(
        default=84,
        metadata=_doc(
            "Treatment cycle length: a cycle never runs past this many days (days).",
            "12-week re-injection interval",
        ),
    )
    min_completeness: float = field(
        default=0.7,
        metadata=_doc(
            "A window is evaluable with at least this share of its days recorded.",
            ">=20 of 28 days, i.e. >=5 diary days a week",
        ),
    )
    min_window_days: int = field(
        default=28,
        metadata=_doc(
            "A window is evaluable only when it spans at least this many days.",
            "a cycle is judged on at least 4 weeks",
        ),
    )
    responder_thresholds: tuple[int, ...] = field(
        default=(30, 50, 75),
        metadata=_doc(
            "Responder thresholds, % reduction of monthly headache days.",
            "NICE / EHF continuation, trial standard, 'excellent'",
        ),
    )
    as_of: date | None = field(
        default=None,
        metadata=_doc(
            "Data cut-off; empty means the latest date among accepted session and diary rows. "
            "Rows dated after it are ignored.",
            "the data cut-off",
        ),
    )
    tolerance: float = field(default=1e-9, repr=False)

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.headache_min_hours <= 24:
            problems.append("headache_min_hours must lie in [0, 24]")
        for name in ("baseline_days", "cycle_days", "min_window_days"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be a positive number of days")
        if not 0 <= self.min_completeness <= 1:
            problems.append("min_completeness must lie in [0, 1]")
        if problems:
            raise ValueError("; ".join(problems))

    def replace(self, **changes: object) -> AnalysisConfig:
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
            "as_of": self.as_of.isoformat() if self.as_of else None,
        }

    def differences_from_default(self) -> dict[str, tuple[object, object]]:
        """Parameters whose value differs from the SPEC default: name -> (default, value)."""
        default = AnalysisConfig()
        return {
            f.name: (getattr(default, f.name), getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.repr and getattr(default, f.name) != getattr(self, f.name)
        }


def parameter_docs() -> list[dict[str, object]]:
    """Each parameter with its default, meaning and basis, for the data dictionary."""
    return [
        {"parameter": f.name, "default": f.default, "meaning": f.metadata["doc"], "basis": f.metadata["basis"]}
        for f in dataclasses.fields(AnalysisConfig)
        if f.repr
    ]
