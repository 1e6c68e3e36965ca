"""An independent, literal reading of SPEC §5, one patient at a time, for the tests.

It is written from the SPEC's text only (plain Python over dates and numbers, no shared code with
``analytics.definitions.status`` beyond the core per-patient-cycle table of §3, which the conformance case and
its own tests verify), so that a disagreement points at a misreading on one side or the other.
"""

from __future__ import annotations

import itertools
import math
from datetime import date, timedelta

import pandas as pd

from analytics.definitions.config import AnalysisConfig
from analytics.ingest.load import Dataset

TOL = 1e-9
VOCABULARY = (
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


def _value(v: object) -> object:
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, pd.Timestamp):
        return v.date()
    return v


def _days(a: date, b: date) -> int:
    return (a - b).days


def reference_status(
    dataset: Dataset, cycles: pd.DataFrame, as_of: pd.Timestamp, config: AnalysisConfig
) -> dict[str, dict[str, object]]:
    """patient_id -> SPEC §5.1 row (None for empty)."""
    cut = as_of.date()
    by_patient: dict[str, dict[int, dict[str, object]]] = {}
    for row in cycles.to_dict("records"):
        by_patient.setdefault(row["patient_id"], {})[int(row["cycle"])] = {k: _value(v) for k, v in row.items()}
    diary: dict[str, dict[date, float]] = {}
    for pid, d, hours in zip(
        dataset.tables["diary"]["patient_id"],
        dataset.tables["diary"]["date"],
        dataset.tables["diary"]["headache_hours"],
        strict=True,
    ):
        if d.date() <= cut:
            diary.setdefault(pid, {})[d.date()] = hours
    patients = {}
    if "patients" in dataset.tables and len(dataset.tables["patients"]):
        for row in dataset.tables["patients"].to_dict("records"):
            patients[row["patient_id"]] = {k: _value(v) for k, v in row.items()}
    has_ae = any(f.file.lower().startswith("adverse_events.") for f in dataset.files)
    events = dataset.tables.get("adverse_events") if has_ae else None
    has_migraine = dataset.has_column("diary", "migraine")
    out = {}
    for pid, cyc in by_patient.items():
        n = max(cyc)
        if n < 1:
            continue
        sessions = [cyc[k]["start_date"] for k in range(1, n + 1)]
        base = cyc[0]
        r: dict[str, object] = {"n_sessions": n, "first_session": sessions[0], "last_session": sessions[-1]}
        b_ev = bool(base["evaluable"])
        r["baseline_evaluable"] = b_ev
        r["baseline_mhd"], r["baseline_mmd"], r["baseline_amd"] = base["mhd"], base["mmd"], base["amd"]
        if not b_ev:
            chronic = None
        else:
            mhd, mmd = base["mhd"], base["mmd"]
            mig_ok = (mmd is not None and mmd >= config.chronic_min_migraine_days - TOL) or (
                mmd is None and not has_migraine
            )
            chronic = mhd is not None and mhd >= config.chronic_min_headache_days - TOL and mig_ok
        r["chronic_at_baseline"] = chronic
        if not b_ev or base["amd"] is None:
            r["overuse_at_baseline"] = None
        else:
            r["overuse_at_baseline"] = base["amd"] >= config.overuse_acute_days - TOL
        info = patients.get(pid, {})
        prior = info.get("prior_preventives")
        r["prior_preventives"] = prior
        if chronic is False or (prior is not None and prior < config.min_prior_preventives):
            r["suitable_nice"] = False
        elif chronic is True and prior is not None and prior >= config.min_prior_preventives:
            r["suitable_nice"] = True
        else:
            r["suitable_nice"] = None
        valued = [k for k in range(1, n + 1) if cyc[k]["mhd_pct_change"] is not None]
        r["latest_evaluable_cycle"] = max(valued) if valued else None
        r["latest_mhd_pct_change"] = cyc[max(valued)]["mhd_pct_change"] if valued else None
        r["ever_responder_50"] = cyc[n]["cumulative_responder_50"]
        sustained = None
        for k in range(1, n):
            a, b = cyc[k]["responder_50"], cyc[k + 1]["responder_50"]
            if a is not None and b is not None:
                sustained = sustained or False
                if a and b:
                    sustained = True
        r["sustained_responder_50"] = sustained
        stopped = info.get("discontinued_on")
        dn = sessions[-1]
        g = _days(cut, dn)
        if stopped is not None and dn <= stopped <= cut:
            state = "discontinued"
        elif g <= config.on_time_max_days:
            state = "active"
        elif g <= config.lapse_days:
            state = "overdue"
        else:
            state = "lapsed"
        r["treatment_state"] = state
        r["next_due"] = None if state == "discontinued" else dn + timedelta(days=config.cycle_days)
        r["days_overdue"] = None if state == "discontinued" else max(0, g - config.on_time_max_days)
        gaps = [_days(b, a) for a, b in itertools.pairwise(sessions)]
        r["intervals_on_time"] = sum(config.on_time_min_days <= x <= config.on_time_max_days for x in gaps)
        r["intervals_early"] = sum(x < config.on_time_min_days for x in gaps)
        r["intervals_late"] = sum(x > config.on_time_max_days for x in gaps)
        r["max_interval_days"] = max(gaps) if gaps else None
        off = state in ("lapsed", "discontinued")
        r["nice_state"] = _nice(cyc, n, b_ev, base["mhd"], off, config)
        r["ehf_state"] = _ehf(cyc, n, b_ev, base["mhd"], off, config)
        for prefix, x in (("", config.episodic_max_days), ("ehf_", config.ehf_episodic_max_days)):
            conv, now = _episodic(diary.get(pid, {}), sessions[0], cut, chronic, x, config)
            r[f"{prefix}episodic_converted_on"] = conv
            r[f"{prefix}episodic_now"] = now
        stop = r["nice_state"] == "stop" or r["ehf_state"] == "stop" or r["episodic_now"] is True
        r["stop_indicated"] = True if stop else (None if off else False)
        if events is None:
            r["sessions_with_adverse_event"] = r["serious_adverse_events"] = None
        else:
            mine = events[(events["patient_id"] == pid) & events["session_date"].dt.date.isin(sessions)]
            r["sessions_with_adverse_event"] = mine["session_date"].nunique()
            r["serious_adverse_events"] = int(mine["serious"].fillna(False).astype(bool).sum())
        out[pid] = r
    return out


def _nice(cyc, n, b_ev, b_mhd, off, config) -> str:  # type: ignore[no-untyped-def]
    s, t = config.stopping_cycle, config.stopping_min_reduction
    if not b_ev or not b_mhd:
        return "not assessable"
    if n < s or cyc[s]["status"] == "ongoing":
        return "not reached" if off else "pending"
    pct = cyc[s]["mhd_pct_change"]
    if pct is None:
        return "not assessable"
    return "stop" if pct > -t + TOL else "continue"


def _ehf(cyc, n, b_ev, b_mhd, off, config) -> str:  # type: ignore[no-untyped-def]
    c, t = config.ehf_cycles, config.stopping_min_reduction
    if not b_ev or not b_mhd:
        return "not assessable"
    first = [cyc[k] for k in range(1, min(n, c) + 1)]
    if any(w["mhd_pct_change"] is not None and w["mhd_pct_change"] <= -t + TOL for w in first):
        return "continue"
    if n >= c and all(w["status"] == "complete" and w["mhd_pct_change"] is not None for w in first):
        return "stop"
    if n < c or cyc[c]["status"] == "ongoing":
        return "not reached" if off else "pending"
    return "not assessable"


def _episodic(days: dict[date, float], d1: date, cut: date, chronic, x: float, config):  # type: ignore[no-untyped-def]
    periods = []
    j = 1
    while True:
        start = d1 + timedelta(days=28 * (j - 1))
        end = d1 + timedelta(days=28 * j - 1)
        if end > cut:
            break
        recorded = [days[start + timedelta(days=i)] for i in range(28) if start + timedelta(days=i) in days]
        headache = sum(h >= config.headache_min_hours for h in recorded)
        evaluable = len(recorded) / 28 >= config.min_completeness - TOL
        rate = headache / len(recorded) * 28 if recorded else None
        periods.append((end, evaluable, rate))
        j += 1
    if chronic is not True:
        return None, None
    p = config.episodic_periods
    converted, run = None, 0
    for end, evaluable, rate in periods:
        run = run + 1 if evaluable and rate is not None and rate < x - TOL else 0
        if run == p:
            converted = end
            break
    now = None
    if len(periods) >= p:
        last = periods[-p:]
        if all(ev and rate is not None and rate < x - TOL for _, ev, rate in last):
            now = True
        if any(ev and rate is not None and rate >= x - TOL for _, ev, rate in last):
            now = False
    return converted, now


def reference_safety(dataset: Dataset, cycles: pd.DataFrame) -> list[dict[str, object]] | None:
    """SPEC §5.4 rows in order, or None without adverse_events.csv."""
    if not any(f.file.lower().startswith("adverse_events.") for f in dataset.files):
        return None
    sessions: dict[str, list[date]] = {}
    for pid, k, start in zip(cycles["patient_id"], cycles["cycle"], cycles["start_date"], strict=True):
        if k >= 1:
            sessions.setdefault(pid, []).append(start.date())
    for dates in sessions.values():
        dates.sort()
    counted = []
    for row in dataset.tables["adverse_events"].to_dict("records"):
        pid, sd = row["patient_id"], row["session_date"].date()
        if pid in sessions and sd in sessions[pid]:
            counted.append((pid, sd, row["event"], _value(row["serious"]) is True))
    patients = len(sessions)
    two = {p for p, d in sessions.items() if len(d) >= 2}
    n_sessions = sum(len(d) for d in sessions.values())
    present = {e for _, _, e, _ in counted}
    rows = []
    for event in [e for e in VOCABULARY if e in present] + ["any"]:
        mine = [c for c in counted if event == "any" or c[2] == event]
        with_event = {c[0] for c in mine}
        early = {c[0] for c in mine if c[0] in two and c[1] in sessions[c[0]][:2]}
        rows.append(
            {
                "event": event,
                "patients": patients,
                "patients_with_event": len(with_event),
                "patients_with_event_pct": 100 * len(with_event) / patients if patients else None,
                "patients_with_event_2_cycles": len(early),
                "patients_2_cycles": len(two),
                "pct_2_cycles": 100 * len(early) / len(two) if two else None,
                "sessions": n_sessions,
                "events": len(mine),
                "events_per_100_sessions": 100 * len(mine) / n_sessions if n_sessions else None,
                "serious_events": sum(c[3] for c in mine),
            }
        )
    return rows
