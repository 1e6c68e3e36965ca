"""Per-patient definitions of SPEC §3: cycle windows and the per-patient-cycle table.

The chain is: accepted sessions -> cycle windows (cycle 0 is the baseline) -> diary days assigned
to windows with ``merge_asof`` -> counts per window -> rates, change from baseline, responder flags
and cumulative response. Every step is a vectorised DataFrame -> DataFrame function; no Python loop
runs per patient.
"""

from __future__ import annotations

from datetime import date
from typing import cast

import numpy as np
import pandas as pd

from analytics.definitions.config import AnalysisConfig

COUNT_COLUMNS = {"headache_days": "mhd", "migraine_days": "mmd", "acute_med_days": "amd"}


def data_cutoff(sessions: pd.DataFrame, diary: pd.DataFrame, config: AnalysisConfig) -> pd.Timestamp:
    """``as_of``: the configured cut-off, else the latest accepted session or diary date."""
    if config.as_of is not None:
        return pd.Timestamp(config.as_of)
    latest = pd.concat([sessions["session_date"], diary["date"]]).max()
    if pd.isna(latest):
        return pd.Timestamp(date.today())
    return pd.Timestamp(latest)


def cycle_windows(sessions: pd.DataFrame, as_of: pd.Timestamp, config: AnalysisConfig) -> pd.DataFrame:
    """One row per patient and window: cycle 0 (baseline) and cycles 1..n, with dates and status.

    Sessions after ``as_of`` are ignored. Cycle k runs from Dk to min(D(k+1) − 1, Dk + cycle_days − 1);
    the last cycle ends at Dn + cycle_days − 1, or at ``as_of`` (status ``ongoing``) when that is later.
    """
    one_day = pd.Timedelta(days=1)
    s = sessions.loc[sessions["session_date"] <= as_of, ["patient_id", "session_date"]]
    s = s.sort_values(["patient_id", "session_date"], kind="stable").reset_index(drop=True)
    by_patient = s.groupby("patient_id", sort=False)
    s["cycle"] = by_patient.cumcount() + 1
    next_session = by_patient["session_date"].shift(-1)
    full_end = s["session_date"] + pd.Timedelta(days=config.cycle_days) - one_day
    # np.minimum of two Series is a Series (numpy dispatches to pandas); numpy's stubs say ndarray.
    end = full_end.where(next_session.isna(), cast(pd.Series, np.minimum(next_session - one_day, full_end)))
    is_last = next_session.isna()
    ongoing = is_last & (end > as_of)
    treated = pd.DataFrame(
        {
            "patient_id": s["patient_id"],
            "cycle": s["cycle"],
            "start_date": s["session_date"],
            "end_date": end.where(~ongoing, as_of),
            "status": np.where(ongoing, "ongoing", "complete"),
        }
    )
    first = s[s["cycle"] == 1]
    baseline = pd.DataFrame(
        {
            "patient_id": first["patient_id"],
            "cycle": 0,
            "start_date": first["session_date"] - pd.Timedelta(days=config.baseline_days),
            "end_date": first["session_date"] - one_day,
            "status": "baseline",
        }
    )
    windows = pd.concat([baseline, treated], ignore_index=True)
    windows["cycle"] = windows["cycle"].astype("int64")
    windows["n_sessions"] = windows.groupby("patient_id")["cycle"].transform("max")
    windows["window_days"] = (windows["end_date"] - windows["start_date"]).dt.days + 1
    return windows.sort_values(["patient_id", "cycle"], kind="stable").reset_index(drop=True)


def assign_days_to_windows(diary: pd.DataFrame, windows: pd.DataFrame) -> pd.DataFrame:
    """The per-patient-day frame: each recorded diary day with the cycle whose window holds it.

    Windows of one patient never overlap, so the window starting last on or before a day holds
    it if the day is not past that window's end. Days in no window (before the baseline, in a
    gap after a capped cycle, or after ``as_of``) get cycle NA. Rows keep the diary's order.

    The lookup is one ``searchsorted`` over a combined (patient, date) key, so the diary is never
    sorted or merged (it is the largest table by far).
    """
    days = diary.copy(deep=False)  # new columns only; the diary's own columns are not written
    if windows.empty:
        days["cycle"] = days["day_in_cycle"] = pd.array([pd.NA] * len(days), dtype="Int64")
        return days
    codes, _ = pd.factorize(pd.concat([windows["patient_id"], diary["patient_id"]], ignore_index=True))
    window_code, day_code = codes[: len(windows)].astype("int64"), codes[len(windows) :].astype("int64")
    start = _day_number(windows["start_date"])
    end = _day_number(windows["end_date"])
    date = _day_number(diary["date"])
    span = int(max(start.max(initial=0), date.max(initial=0)) - min(start.min(initial=0), date.min(initial=0)) + 2)
    offset = min(start.min(initial=0), date.min(initial=0))
    window_key = window_code * span + (start - offset)
    order = np.argsort(window_key, kind="stable")
    found = np.searchsorted(window_key[order], day_code * span + (date - offset), side="right") - 1
    window = order[np.maximum(found, 0)]
    inside = (found >= 0) & (window_code[window] == day_code) & (date <= end[window])
    days["cycle"] = _masked_int(windows["cycle"].to_numpy(dtype="float64")[window], inside)
    days["day_in_cycle"] = _masked_int((date - start[window] + 1).astype("float64"), inside)
    return days


def _day_number(dates: pd.Series) -> np.ndarray:
    """Dates as whole days since 1970-01-01."""
    return dates.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype("int64")


def _masked_int(values: np.ndarray, keep: np.ndarray) -> pd.arrays.IntegerArray:
    """Int64 values where ``keep``, NA elsewhere (faster than astype("Int64") on floats with NaN)."""
    return pd.arrays.IntegerArray(np.where(keep, np.nan_to_num(values), 0).astype("int64"), ~keep)


def window_counts(
    days: pd.DataFrame, windows: pd.DataFrame, config: AnalysisConfig, present: frozenset[str]
) -> pd.DataFrame:
    """Windows with recorded_days, completeness, evaluable and the day counts of SPEC §3."""
    in_window = days[days["cycle"].notna()]
    flags = pd.DataFrame(
        {
            "patient_id": in_window["patient_id"],
            "cycle": in_window["cycle"].astype("int64"),
            "recorded_days": 1,
            "headache_days": in_window["headache_day"].astype("int64"),
            "migraine_days": in_window["migraine"].fillna(False).astype("int64"),
            "acute_med_days": in_window["acute_medication"].fillna(False).astype("int64"),
        }
    )
    counts = flags.groupby(["patient_id", "cycle"], sort=False).sum()
    out = windows.merge(counts, left_on=["patient_id", "cycle"], right_index=True, how="left")
    for column in ["recorded_days", *COUNT_COLUMNS]:
        out[column] = out[column].fillna(0).astype("Int64")
    for column, source in (("migraine_days", "migraine"), ("acute_med_days", "acute_medication")):
        if source not in present:
            out[column] = pd.array([pd.NA] * len(out), dtype="Int64")
    out["completeness"] = out["recorded_days"].astype("float64") / out["window_days"]
    out["evaluable"] = (out["completeness"] >= config.min_completeness - config.tolerance) & (
        out["window_days"] >= config.min_window_days
    )
    recorded = out["recorded_days"].astype("float64").replace(0, np.nan)
    for count, rate in COUNT_COLUMNS.items():
        out[rate] = out[count].astype("float64") / recorded * 28
    return out


def responses(windows: pd.DataFrame, config: AnalysisConfig) -> pd.DataFrame:
    """Change from baseline, responder flags and cumulative 50% response per cycle."""
    base = windows.loc[windows["cycle"] == 0, ["patient_id", "mhd", "evaluable"]].rename(
        columns={"mhd": "baseline_mhd", "evaluable": "baseline_evaluable"}
    )
    out = windows.merge(base, on="patient_id", how="left")
    comparable = (
        (out["cycle"] >= 1) & out["evaluable"] & out["baseline_evaluable"].fillna(False) & (out["baseline_mhd"] > 0)
    )
    out["mhd_change"] = (out["mhd"] - out["baseline_mhd"]).where(comparable)
    out["mhd_pct_change"] = (100 * out["mhd_change"] / out["baseline_mhd"]).where(comparable)
    for threshold in config.responder_thresholds:
        hit = out["mhd_pct_change"] <= -threshold + config.tolerance
        # pandas-stubs (2.3.3.260113) leaves pd.NA out of Series.where's other; pandas takes it.
        out[f"responder_{threshold}"] = hit.astype("boolean").where(comparable, pd.NA)  # type: ignore[call-overload]
    if "responder_50" not in out:
        raise ValueError("responder thresholds must include 50 (SPEC §3 cumulative response)")
    treated = out["cycle"] >= 1
    by_patient = out.groupby("patient_id", sort=False)
    ever_true = (out["responder_50"].fillna(False) & treated).astype("int64")
    ever_valued = (out["responder_50"].notna() & treated).astype("int64")
    any_true = ever_true.groupby(out["patient_id"]).cummax().astype(bool)
    any_valued = ever_valued.groupby(out["patient_id"]).cummax().astype(bool)
    cumulative = pd.Series(pd.NA, index=out.index, dtype="boolean")
    cumulative[any_valued] = False
    cumulative[any_true] = True
    # pandas-stubs (2.3.3.260113) leaves pd.NA out of Series.where's other; pandas takes it.
    out["cumulative_responder_50"] = cumulative.where(treated, pd.NA)  # type: ignore[call-overload]
    out["eligible"] = by_patient["baseline_evaluable"].transform("first").fillna(False) & (out["baseline_mhd"] > 0)
    return out.drop(columns=["baseline_evaluable"])


PATIENT_CYCLE_COLUMNS = [
    "patient_id",
    "cycle",
    "start_date",
    "end_date",
    "window_days",
    "recorded_days",
    "completeness",
    "evaluable",
    "headache_days",
    "migraine_days",
    "acute_med_days",
    "mhd",
    "mmd",
    "amd",
    "status",
    "mhd_change",
    "mhd_pct_change",
    "responder_30",
    "responder_50",
    "responder_75",
    "cumulative_responder_50",
]


def patient_cycles(
    sessions: pd.DataFrame, diary: pd.DataFrame, as_of: pd.Timestamp, config: AnalysisConfig, present: frozenset[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The per-patient-cycle table (SPEC §4 columns first, then helpers) and the per-patient-day frame.

    The per-patient-day frame has each accepted diary day up to as_of with its cycle, day_in_cycle and
    headache_day (headache_hours >= headache_min_hours)."""
    windows = cycle_windows(sessions, as_of, config)
    days = assign_days_to_windows(diary[diary["date"] <= as_of], windows)
    # SPEC §3's headache day, decided once here: every later step (window counts, SPEC §5's 28-day periods,
    # the Patient page's calendar) reads this column instead of comparing hours again.
    days["headache_day"] = days["headache_hours"].to_numpy() >= config.headache_min_hours
    table = responses(window_counts(days, windows, config, present), config)
    extra = [c for c in table.columns if c not in PATIENT_CYCLE_COLUMNS]
    return table[[c for c in PATIENT_CYCLE_COLUMNS if c in table.columns] + extra], days
