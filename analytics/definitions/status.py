"""Patient status and safety (SPEC §5): the tables doctors and managers act on.

``patient_status`` builds ``patient_status.csv``, one row per treated patient: chronic baseline,
suitability, sustained response, treatment state and next due date, interval adherence, the NICE
and EHF non-response rules, conversion to episodic migraine and ``stop_indicated``. ``safety``
builds ``safety.csv``: adverse events per patient, per the first two cycles (as PREEMPT reports
them) and per 100 sessions. Both are built only from SPEC §3's windows and values (the
per-patient-cycle table and the per-patient-day frame of ``pipeline.analyse``) and the input files,
with group-bys over all patients at once. The dashboard's badges, stopping-rule statements and
worklists read these columns; no page computes its own version of them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.definitions.config import AnalysisConfig
from analytics.ingest.load import Dataset
from analytics.ingest.schemas import EVENTS

PATIENT_STATUS_COLUMNS = [
    "patient_id",
    "n_sessions",
    "first_session",
    "last_session",
    "baseline_evaluable",
    "baseline_mhd",
    "baseline_mmd",
    "baseline_amd",
    "chronic_at_baseline",
    "overuse_at_baseline",
    "prior_preventives",
    "suitable_nice",
    "latest_evaluable_cycle",
    "latest_mhd_pct_change",
    "ever_responder_50",
    "sustained_responder_50",
    "treatment_state",
    "next_due",
    "days_overdue",
    "intervals_on_time",
    "intervals_early",
    "intervals_late",
    "max_interval_days",
    "nice_state",
    "ehf_state",
    "episodic_converted_on",
    "episodic_now",
    "ehf_episodic_converted_on",
    "ehf_episodic_now",
    "stop_indicated",
    "sessions_with_adverse_event",
    "serious_adverse_events",
]

SAFETY_COLUMNS = [
    "event",
    "patients",
    "patients_with_event",
    "patients_with_event_pct",
    "patients_with_event_2_cycles",
    "patients_2_cycles",
    "pct_2_cycles",
    "sessions",
    "events",
    "events_per_100_sessions",
    "serious_events",
]

TREATMENT_STATES = ("active", "overdue", "lapsed", "discontinued")
OFF_TREATMENT = ("lapsed", "discontinued")
RULE_STATES = ("stop", "continue", "pending", "not reached", "not assessable")
PERIOD_DAYS = 28  # SPEC §5.3: months after the first injection are fixed 28-day periods


def _na_bool(values: pd.Series | np.ndarray, known: pd.Series | np.ndarray, index: pd.Index) -> pd.Series:
    """A nullable boolean column: ``values`` where ``known``, empty elsewhere."""
    out = pd.Series(np.asarray(values, dtype=bool), index=index, dtype="boolean")
    return out.mask(~np.asarray(known, dtype=bool))


def _at_least(values: pd.Series, threshold: float, config: AnalysisConfig) -> pd.Series:
    """values ≥ threshold with SPEC's tolerance (equal meets an "at least"); False where values are empty."""
    return (values >= threshold - config.tolerance).fillna(False).astype(bool)


def _below(values: pd.Series, threshold: float, config: AnalysisConfig) -> pd.Series:
    """values < threshold with SPEC's tolerance (equal fails a "below"); False where values are empty."""
    return (values < threshold - config.tolerance).fillna(False).astype(bool)


def _cycle_value(cycles: pd.DataFrame, cycle: int, column: str, index: pd.Index) -> pd.Series:
    """One column of cycle ``cycle`` per patient (NaN/NA where the patient has no such cycle)."""
    rows = cycles.loc[cycles["cycle"] == cycle, ["patient_id", column]].set_index("patient_id")[column]
    return rows.reindex(index)


def _interval_counts(sessions: pd.DataFrame, index: pd.Index, config: AnalysisConfig) -> pd.DataFrame:
    """Per patient: intervals D(k+1) − Dk on time, early and late, and the longest one."""
    s = sessions.sort_values(["patient_id", "session_date"], kind="stable")
    gap = (s.groupby("patient_id", sort=False)["session_date"].diff()).dt.days
    frame = pd.DataFrame({"patient_id": s["patient_id"].to_numpy(), "gap": gap.to_numpy()}).dropna(subset=["gap"])
    frame["on_time"] = frame["gap"].between(config.on_time_min_days, config.on_time_max_days)
    frame["early"] = frame["gap"] < config.on_time_min_days
    frame["late"] = frame["gap"] > config.on_time_max_days
    by = frame.groupby("patient_id", sort=False)
    out = pd.DataFrame(
        {
            "intervals_on_time": by["on_time"].sum(),
            "intervals_early": by["early"].sum(),
            "intervals_late": by["late"].sum(),
            "max_interval_days": by["gap"].max(),
        }
    ).reindex(index)
    for column in ("intervals_on_time", "intervals_early", "intervals_late"):
        out[column] = out[column].fillna(0).astype("int64")
    out["max_interval_days"] = out["max_interval_days"].astype("Int64")
    return out


def _periods(patient_days: pd.DataFrame, first: pd.Series, as_of: pd.Timestamp, config: AnalysisConfig) -> pd.DataFrame:
    """SPEC §5.3's 28-day periods after D1 that end on or before as_of, with recorded and headache days.

    One row per treated patient and period j = 1..m (m may be 0), in patient then period order.
    """
    n_periods = ((as_of - first).dt.days + 1) // PERIOD_DAYS
    n_periods = n_periods.clip(lower=0).astype("int64")
    patient = np.repeat(first.index.to_numpy(), n_periods.to_numpy())
    # 1..m for each patient without a Python loop: a running count within each patient's block.
    starts = np.repeat(np.cumsum(n_periods.to_numpy()) - n_periods.to_numpy(), n_periods.to_numpy())
    period = np.arange(len(patient), dtype="int64") - starts + 1
    grid = pd.DataFrame({"patient_id": patient, "period": period})
    grid["end_date"] = (
        np.repeat(first.to_numpy(), n_periods.to_numpy())
        + pd.to_timedelta(grid["period"] * PERIOD_DAYS - 1, unit="D").to_numpy()
    )

    days = patient_days[["patient_id", "date", "headache_day"]]
    days = days[days["patient_id"].isin(first.index)]
    d1 = first.reindex(days["patient_id"]).to_numpy()
    offset = (days["date"].to_numpy() - d1).astype("timedelta64[D]").astype("int64")
    j = offset // PERIOD_DAYS + 1
    limit = n_periods.reindex(days["patient_id"]).to_numpy(dtype="int64")
    keep = (offset >= 0) & (j <= limit)
    counted = pd.DataFrame(
        {
            "patient_id": days["patient_id"].to_numpy()[keep],
            "period": j[keep].astype("int64"),
            "recorded_days": 1,
            "headache_days": days["headache_day"].to_numpy()[keep].astype("int64"),
        }
    )
    sums = counted.groupby(["patient_id", "period"], sort=False)[["recorded_days", "headache_days"]].sum()
    grid = grid.merge(sums, left_on=["patient_id", "period"], right_index=True, how="left")
    grid[["recorded_days", "headache_days"]] = grid[["recorded_days", "headache_days"]].fillna(0).astype("int64")
    grid["evaluable"] = grid["recorded_days"] / PERIOD_DAYS >= config.min_completeness - config.tolerance
    with np.errstate(divide="ignore", invalid="ignore"):
        grid["rate"] = np.where(
            grid["recorded_days"] > 0, grid["headache_days"] / grid["recorded_days"] * PERIOD_DAYS, np.nan
        )
    grid["n_periods"] = np.repeat(n_periods.to_numpy(), n_periods.to_numpy())
    return grid


def _episodic(
    periods: pd.DataFrame, chronic: pd.Series, threshold: float, config: AnalysisConfig, index: pd.Index
) -> tuple[pd.Series, pd.Series]:
    """converted_on and now of SPEC §5.3 for one threshold."""
    p = config.episodic_periods
    episodic = periods["evaluable"] & _below(periods["rate"], threshold, config)
    # Length of the run of episodic periods ending at each period (a non-episodic period resets it).
    run_id = (~episodic).groupby(periods["patient_id"], sort=False).cumsum()
    run_length = episodic.astype("int64").groupby([periods["patient_id"], run_id], sort=False).cumsum()
    reached = periods.loc[run_length == p, ["patient_id", "end_date"]]
    converted = reached.groupby("patient_id", sort=False)["end_date"].first().reindex(index)
    is_chronic = chronic.fillna(False).astype(bool)
    converted = converted.where(is_chronic)

    last = periods[periods["period"] > periods["n_periods"] - p]
    high = last["evaluable"] & _at_least(last["rate"], threshold, config)
    by = pd.DataFrame({"patient_id": last["patient_id"], "episodic": episodic[last.index], "high": high}).groupby(
        "patient_id", sort=False
    )
    all_episodic = by["episodic"].all().reindex(index, fill_value=False).astype(bool)
    any_high = by["high"].any().reindex(index, fill_value=False).astype(bool)
    enough = periods.groupby("patient_id", sort=False)["n_periods"].first().reindex(index).fillna(0) >= p
    now = pd.Series(pd.NA, index=index, dtype="boolean")
    now[all_episodic] = True
    now[any_high] = False
    # pandas-stubs (2.3.3.260113) leaves pd.NA out of Series.where's other; pandas takes it.
    now = now.where(is_chronic & enough, pd.NA)  # type: ignore[call-overload]
    return converted, now


def _rule_states(
    cycles: pd.DataFrame, assessable: pd.Series, off: pd.Series, n_sessions: pd.Series, config: AnalysisConfig
) -> tuple[pd.Series, pd.Series]:
    """nice_state and ehf_state of SPEC §5.2, per patient."""
    index = assessable.index
    t, s, c = config.stopping_min_reduction, config.stopping_cycle, config.ehf_cycles
    pct_s = _cycle_value(cycles, s, "mhd_pct_change", index)
    ongoing_s = _cycle_value(cycles, s, "status", index).eq("ongoing").fillna(False).astype(bool)
    waiting = (n_sessions < s) | ongoing_s
    nice = np.select(
        [
            ~assessable,
            waiting & ~off,
            waiting & off,
            pct_s.isna(),
            pct_s > -t + config.tolerance,
        ],
        ["not assessable", "pending", "not reached", "not assessable", "stop"],
        default="continue",
    )

    first_c = cycles[(cycles["cycle"] >= 1) & (cycles["cycle"] <= c)]
    by = first_c.groupby("patient_id", sort=False)
    responded = (
        (first_c["mhd_pct_change"] <= -t + config.tolerance)
        .groupby(first_c["patient_id"], sort=False)
        .any()
        .reindex(index)
        .fillna(False)
        .astype(bool)
    )
    n_existing = by.size().reindex(index).fillna(0)
    all_complete = first_c["status"].eq("complete").groupby(first_c["patient_id"], sort=False).all()
    all_valued = first_c["mhd_pct_change"].notna().groupby(first_c["patient_id"], sort=False).all()
    judged = (n_existing >= c) & all_complete.reindex(index).fillna(False) & all_valued.reindex(index, fill_value=False)
    ongoing_c = _cycle_value(cycles, c, "status", index).eq("ongoing").fillna(False).astype(bool)
    waiting_c = (n_existing < c) | ongoing_c
    ehf = np.select(
        [~assessable, responded, judged.astype(bool), waiting_c & ~off, waiting_c & off],
        ["not assessable", "continue", "stop", "pending", "not reached"],
        default="not assessable",
    )
    return pd.Series(nice, index=index), pd.Series(ehf, index=index)


def patient_status(
    cycles: pd.DataFrame, patient_days: pd.DataFrame, as_of: pd.Timestamp, config: AnalysisConfig, dataset: Dataset
) -> pd.DataFrame:
    """``patient_status.csv`` (SPEC §5.1): one row per treated patient, in the order of ``cycles``.

    ``cycles`` and ``patient_days`` are ``pipeline.analyse``'s per-patient-cycle table and
    per-patient-day frame for ``as_of`` and ``config``.
    """
    treated = cycles[cycles["cycle"] >= 1]
    by = treated.groupby("patient_id", sort=False)
    out = pd.DataFrame(
        {
            "n_sessions": by["cycle"].max().astype("int64"),
            "first_session": by["start_date"].min(),
            "last_session": by["start_date"].max(),
        }
    )
    out.index.name = "patient_id"
    index = out.index
    base = cycles[cycles["cycle"] == 0].set_index("patient_id").reindex(index)
    out["baseline_evaluable"] = base["evaluable"].astype("boolean")
    for measure in ("mhd", "mmd", "amd"):
        out[f"baseline_{measure}"] = base[measure].astype("float64")
    evaluable = out["baseline_evaluable"].fillna(False).astype(bool)

    no_migraine_column = not dataset.has_column("diary", "migraine")
    migraine_ok = _at_least(out["baseline_mmd"], config.chronic_min_migraine_days, config) | (
        no_migraine_column & out["baseline_mmd"].isna()
    )
    chronic = _at_least(out["baseline_mhd"], config.chronic_min_headache_days, config) & migraine_ok
    out["chronic_at_baseline"] = _na_bool(chronic, evaluable, index)
    overuse = _at_least(out["baseline_amd"], config.overuse_acute_days, config)
    out["overuse_at_baseline"] = _na_bool(overuse, evaluable & out["baseline_amd"].notna(), index)

    patients = dataset.tables.get("patients")
    if patients is not None and "patient_id" in patients:
        patients = patients.drop_duplicates("patient_id").set_index("patient_id").reindex(index)
    else:
        patients = pd.DataFrame(index=index)
    prior = (
        patients["prior_preventives"].astype("Int64")
        if "prior_preventives" in patients
        else pd.Series(pd.NA, index=index, dtype="Int64")
    )
    out["prior_preventives"] = prior
    enough_prior = (prior >= config.min_prior_preventives).astype("boolean")
    suitable = pd.Series(pd.NA, index=index, dtype="boolean")
    suitable[out["chronic_at_baseline"].eq(True).fillna(False) & enough_prior.eq(True).fillna(False)] = True
    suitable[out["chronic_at_baseline"].eq(False).fillna(False) | enough_prior.eq(False).fillna(False)] = False
    out["suitable_nice"] = suitable

    valued = treated[treated["mhd_pct_change"].notna()]
    latest = valued.loc[valued.groupby("patient_id", sort=False)["cycle"].idxmax()].set_index("patient_id")
    out["latest_evaluable_cycle"] = latest["cycle"].reindex(index).astype("Int64")
    out["latest_mhd_pct_change"] = latest["mhd_pct_change"].reindex(index).astype("float64")
    last = treated.loc[by["cycle"].idxmax()].set_index("patient_id")
    out["ever_responder_50"] = last["cumulative_responder_50"].reindex(index).astype("boolean")

    following = by["responder_50"].shift(-1)
    pair_valued = treated["responder_50"].notna() & following.notna()
    pair_true = treated["responder_50"].fillna(False).astype(bool) & following.fillna(False).astype(bool)
    any_true = pair_true.groupby(treated["patient_id"], sort=False).any().reindex(index, fill_value=False).astype(bool)
    any_valued = (
        pair_valued.groupby(treated["patient_id"], sort=False).any().reindex(index, fill_value=False).astype(bool)
    )
    sustained = pd.Series(pd.NA, index=index, dtype="boolean")
    sustained[any_valued] = False
    sustained[any_true] = True
    out["sustained_responder_50"] = sustained

    stopped_on = (
        patients["discontinued_on"]
        if "discontinued_on" in patients
        else pd.Series(pd.NaT, index=index, dtype="datetime64[ns]")
    )
    discontinued = (stopped_on >= out["last_session"]) & (stopped_on <= as_of)
    gap = (as_of - out["last_session"]).dt.days
    state = np.select(
        [discontinued.to_numpy(), (gap <= config.on_time_max_days).to_numpy(), (gap <= config.lapse_days).to_numpy()],
        ["discontinued", "active", "overdue"],
        default="lapsed",
    )
    out["treatment_state"] = state
    on_treatment = ~discontinued
    out["next_due"] = (out["last_session"] + pd.Timedelta(days=config.cycle_days)).where(on_treatment)
    out["days_overdue"] = (gap - config.on_time_max_days).clip(lower=0).astype("Int64").where(on_treatment)

    out = out.join(_interval_counts(treated.rename(columns={"start_date": "session_date"}), index, config))

    off = out["treatment_state"].isin(OFF_TREATMENT)
    assessable = evaluable & (out["baseline_mhd"] > 0).fillna(False)
    out["nice_state"], out["ehf_state"] = _rule_states(cycles, assessable, off, out["n_sessions"], config)

    periods = _periods(patient_days, out["first_session"], as_of, config)
    for prefix, threshold in (("", config.episodic_max_days), ("ehf_", config.ehf_episodic_max_days)):
        converted, now = _episodic(periods, out["chronic_at_baseline"], threshold, config, index)
        out[f"{prefix}episodic_converted_on"] = converted
        out[f"{prefix}episodic_now"] = now

    stop = out["nice_state"].eq("stop") | out["ehf_state"].eq("stop") | out["episodic_now"].eq(True).fillna(False)
    out["stop_indicated"] = _na_bool(stop, stop | ~off, index)

    events = counted_adverse_events(cycles, dataset)
    if events is None:
        out["sessions_with_adverse_event"] = pd.Series(pd.NA, index=index, dtype="Int64")
        out["serious_adverse_events"] = pd.Series(pd.NA, index=index, dtype="Int64")
    else:
        counted = events
        by_patient = counted.groupby("patient_id", sort=False)
        out["sessions_with_adverse_event"] = (
            by_patient["session_date"].nunique().reindex(index).fillna(0).astype("Int64")
        )
        serious = counted["serious"].fillna(False).astype(bool)
        out["serious_adverse_events"] = (
            serious.groupby(counted["patient_id"], sort=False).sum().reindex(index).fillna(0).astype("Int64")
        )
    return out.reset_index()[PATIENT_STATUS_COLUMNS]


def _has_adverse_events(dataset: Dataset) -> bool:
    """Whether ``adverse_events.csv`` (or .parquet) is in the dataset."""
    return any(f.file.split(".")[0].rstrip("/").lower() == "adverse_events" for f in dataset.files)


def counted_adverse_events(cycles: pd.DataFrame, dataset: Dataset) -> pd.DataFrame | None:
    """SPEC §5.4's counted rows: accepted adverse events of treated patients' sessions up to as_of.

    With the session's cycle; None when the dataset has no ``adverse_events.csv``.
    """
    if not _has_adverse_events(dataset):
        return None
    treated = cycles.loc[cycles["cycle"] >= 1, ["patient_id", "start_date", "cycle"]]
    sessions = treated.rename(columns={"start_date": "session_date"})
    events = dataset.tables["adverse_events"][["patient_id", "session_date", "event", "serious"]]
    return events.merge(sessions, on=["patient_id", "session_date"], how="inner")


def safety(cycles: pd.DataFrame, counted: pd.DataFrame | None) -> pd.DataFrame | None:
    """``safety.csv`` (SPEC §5.4) over the patients of ``cycles`` and their ``counted_adverse_events``."""
    if counted is None:
        return None
    treated = cycles[cycles["cycle"] >= 1]
    n_patients = treated["patient_id"].nunique()
    n_sessions = len(treated)
    two_cycles = set(treated.loc[treated["cycle"] == 2, "patient_id"])
    n_two = len(two_cycles)
    counted = counted[counted["patient_id"].isin(treated["patient_id"])].copy()
    counted["early"] = (counted["cycle"] <= 2) & counted["patient_id"].isin(two_cycles)
    counted["serious"] = counted["serious"].fillna(False).astype(bool)
    present = set(counted["event"].dropna())
    groups = [(event, counted[counted["event"] == event]) for event in EVENTS if event in present]
    groups.append(("any", counted))
    rows = []
    for event, rows_of_event in groups:  # at most ten groups: one per event of the vocabulary, then any
        with_event = rows_of_event["patient_id"].nunique()
        early = rows_of_event.loc[rows_of_event["early"], "patient_id"].nunique()
        rows.append(
            {
                "event": event,
                "patients": n_patients,
                "patients_with_event": with_event,
                "patients_with_event_pct": 100 * with_event / n_patients if n_patients else np.nan,
                "patients_with_event_2_cycles": early,
                "patients_2_cycles": n_two,
                "pct_2_cycles": 100 * early / n_two if n_two else np.nan,
                "sessions": n_sessions,
                "events": len(rows_of_event),
                "events_per_100_sessions": 100 * len(rows_of_event) / n_sessions if n_sessions else np.nan,
                "serious_events": int(rows_of_event["serious"].sum()),
            }
        )
    table = pd.DataFrame(rows, columns=SAFETY_COLUMNS)
    for column in ("patients_with_event_pct", "pct_2_cycles", "events_per_100_sessions"):
        table[column] = table[column].astype("float64")
    return table
