"""Deterministic generator of a synthetic chronic-migraine onabotulinumtoxinA cohort (SPEC §2 files).

It writes the six input files of the data contract (sessions, diary, patients, injections,
adverse_events, questionnaires) for a made-up multi-clinic service, so that the dashboard, the tests
and the benchmarks have believable data without touching anyone's records: every patient, date and
value is drawn from a seeded random generator (``numpy.random.default_rng``) and the same seed gives
byte-identical files. The shape of the data follows published figures (PREEMPT, COMPEL, REPOSE,
NICE TA260 and a real-world within-cycle series), cited next to the parameters that use them, and
tests/test_synth_calibration.py checks them through the project's own analysis. Run it as
``python -m analytics.synth --patients N --seed S --out DIR``; it never imports streamlit.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

DEFAULT_START = date(2023, 1, 2)
DEFAULT_END = date(2025, 11, 30)

CLINICS = ("North", "South", "East")
CLINIC_SHARE = (0.45, 0.30, 0.25)
INJECTORS = ("INJ01", "INJ02", "INJ03", "INJ04", "INJ05", "INJ06", "INJ07")
INJECTOR_CLINIC = np.array([0, 0, 0, 1, 1, 2, 2])
# How often each injector adds follow-the-pain sites; practice varies more between injectors than
# between patients, which gives the injector comparison page something real to show.
INJECTOR_FTP_SHARE = np.array([0.15, 0.35, 0.60, 0.20, 0.50, 0.10, 0.30])
# Mean per-interval probability of a re-injection later than 13 weeks, by clinic (capacity differs).
# REPOSE (24 months, ~5.5 sessions per patient): 79.1% of patients had at least one session more than
# 13 weeks after the previous one. About 0.38 per interval gives ~80% among patients followed for two
# years, ~70% among all patients with two sessions or more, and ~3 in 4 intervals within 77-98 days.
CLINIC_LATE_SHARE = np.array([0.36, 0.46, 0.32])

SEXES = np.array(["F", "M", "X", "U"])
# Chronic migraine is about 4:1 female in clinic series (PREEMPT enrolled about 85% women).
SEX_SHARE = (0.80, 0.19, 0.005, 0.005)
AGE_BANDS = np.array(["18-29", "30-39", "40-49", "50-59", "60-69", "70-79", "80-89", "90+"])
# PREEMPT mean age ~41 y; clinic populations are a little older and include a few over 80.
AGE_SHARE = (0.11, 0.21, 0.28, 0.23, 0.11, 0.05, 0.009, 0.001)
# NICE TA260 asks for failure of at least 3 preventives; a few services treat after 2.
PRIOR_PREVENTIVES = np.arange(2, 9)
PRIOR_PREVENTIVES_SHARE = (0.05, 0.30, 0.28, 0.19, 0.10, 0.05, 0.03)
# Medication overuse: ~65% of PREEMPT patients, ~50-60% in UK real-world series.
MEDICATION_OVERUSE_SHARE = 0.55

# Response model. It is calibrated so that the project's own SPEC §3 statistics (load_dataset +
# analyse on the written files) land on the published figures; tests/test_synth_calibration.py holds
# it to them. PREEMPT pooled, per treatment cycle (Silberstein 2015, J Neurol Neurosurg Psychiatry):
# 49.3% of patients were 50% responders after cycle 1, a further 11.3% after cycle 2 and 10.3% after
# cycle 3 (cumulative 60.6%, 70.9%). Yet the share responding *in* a given cycle stays below 50%
# (pooled PREEMPT week 24: 44.8%, Diener 2020), and the long-term mean benefit plateaus near half the
# baseline headache days (COMPEL, 9 cycles: -9.2 days at week 60, -10.7 at week 108 from 22.0).
# Cumulative response therefore grows mainly because a patient's response varies from cycle to cycle
# around the 50% threshold; a model in which responders stay responders (the previous one) put 61%
# of patients over 50% at cycle 2 and 75-78% at cycles 4-7.
# - Each patient has a mean reduction of headache days (a share of baseline, normal between
#   patients), and each cycle varies independently around it.
EFFECT_MEAN = 0.49
EFFECT_SD = 0.22
EFFECT_RANGE = (-0.25, 0.95)
CYCLE_EFFECT_SD = 0.12
# - Cycle 1 gets a small extra, non-specific benefit (modelling assumption, reconciling the 49.3%
#   after cycle 1 with the 44.8% at week 24).
FIRST_CYCLE_EXTRA = 0.035
# - A few patients respond only from cycle 3 (partial effect before, a responder's effect from it).
LATE_ONSET_CYCLE = 3
LATE_ONSET_SHARE = 0.04
LATE_PARTIAL_RANGE = (0.05, 0.40)
LATE_FULL_RANGE = (0.55, 0.85)
# No growth of the mean benefit over later cycles: stopping for lack of efficacy already raises the
# responder rate among those still treated (to ~55% from cycle 3 on).

# Within-cycle profile of the treatment effect, as a share of the patient's full effect, by days
# since the injection: onset within 1-3 weeks, wearing-off in the last 3 weeks for many patients.
# Real-world series: 18.95 headache days/month at baseline, then 10.55, 9.31 and 11.97 in the three
# months of a cycle (reductions of 44%, 51%, 37%).
ONSET_START_SHARE = 0.2  # share of the full effect on the injection day, rising linearly ...
ONSET_FULL_DAY = 17  # ... to the full effect by day 17 (week 3)
WEAR_OFF_FROM_DAY = 56  # from week 9 the effect fades linearly by the patient's wear-off share at day 83
WEAR_OFF_SHARE = 0.55  # share of patients with a marked wearing-off

# Diary completeness: most patients record 80-98% of days, a minority far fewer.
LOW_COMPLETENESS_SHARE = 0.15

# Stopping rules applied at the review before each re-injection. With the adverse-event stops they
# leave ~70% of the patients who had the time on treatment at session 5, near PREEMPT's 72.6%
# (1,005 of 1,384 patients received all five cycles; Aurora 2014).
# NICE TA260: stop if <30% fewer headache days after 2 cycles. Modelling assumption: services apply
# it to about a third of such patients (others continue on benefit in severity or function), which
# also leaves the dashboard's "stopping rule met" worklist with patients on it.
NICE_STOP_PROBABILITY = 0.30
# EHF: stop after no response to the first 2-3 cycles; applied at a tenth of such reviews.
LATE_NONRESPONSE_STOP_PROBABILITY = 0.10
EPISODIC_STOP_PROBABILITY = 0.05  # NICE TA260: stop once episodic (<15 days/month) for 3 months
PATIENT_CHOICE_STOP_PROBABILITY = 0.0125
LOST_TO_FOLLOW_UP_PROBABILITY = 0.010
AE_STOP_PROBABILITY = {"mild": 0.01, "moderate": 0.12, "severe": 0.50}

REASON_NICE = "lack of efficacy (NICE <30% after 2 cycles)"
REASON_EFFICACY = "lack of efficacy"
REASON_EPISODIC = "converted to episodic migraine"
REASON_AE = "adverse event"
REASON_CHOICE = "patient choice"
REASON_LTFU = "lost to follow-up"
REASONS = np.array(["", REASON_NICE, REASON_EFFICACY, REASON_EPISODIC, REASON_AE, REASON_CHOICE, REASON_LTFU])
_REASON_CODE = {reason: code for code, reason in enumerate(REASONS)}

# PREEMPT fixed-site paradigm: 31 sites x 5 U = 155 U in 7 muscle groups.
PREEMPT_SITES = (
    ("corrugator", "left", 1),
    ("corrugator", "right", 1),
    ("procerus", "midline", 1),
    ("frontalis", "left", 2),
    ("frontalis", "right", 2),
    ("temporalis", "left", 4),
    ("temporalis", "right", 4),
    ("occipitalis", "left", 3),
    ("occipitalis", "right", 3),
    ("cervical_paraspinal", "left", 2),
    ("cervical_paraspinal", "right", 2),
    ("trapezius", "left", 3),
    ("trapezius", "right", 3),
)
UNITS_PER_SITE = 5
# Follow-the-pain: up to 8 extra sites (40 U, to 195 U / 39 sites) in temporalis, occipitalis and
# trapezius; index into PREEMPT_SITES and the share of extra sites each row receives.
FTP_ROWS = np.array([5, 6, 7, 8, 11, 12])
FTP_ROW_SHARE = (0.2, 0.2, 0.2, 0.2, 0.1, 0.1)
FTP_EXTRA_SITES_SHARE = (0.04, 0.12, 0.04, 0.28, 0.04, 0.10, 0.04, 0.34)

# Adverse events. PREEMPT pooled double-blind phase (Dodick 2010; Aurora 2011; Diener 2010 safety
# tables): the share of *patients* with each event over the first two cycles (24 weeks), which is what
# SPEC §5.4's safety.csv reports as pct_2_cycles: neck pain 8.7%, muscular weakness 5.5%,
# musculoskeletal stiffness 3.8%, eyelid ptosis 3.3%, injection-site pain 3.2%, headache 3.2%, facial
# paresis 2.2%; dysphagia is rare (<1%); "other" stands for the remaining related events.
AE_EVENTS = np.array(
    [
        "neck_pain",
        "eyelid_ptosis",
        "injection_site_pain",
        "muscular_weakness",
        "headache",
        "musculoskeletal_stiffness",
        "facial_paresis",
        "dysphagia",
        "other",
    ]
)
AE_PATIENTS_2_CYCLES = np.array([0.087, 0.033, 0.032, 0.055, 0.032, 0.038, 0.022, 0.006, 0.025])
# Rates fall in later cycles of the open-label phase (Aurora 2011): relative risk per session in
# cycle 1, cycle 2 and later cycles.
AE_CYCLE_FACTOR = (1.3, 1.0, 0.85)
# The per-session rate r (cycle-2 level) with which a patient has the event after D1 or D2 with the
# published probability p: 1 - (1 - 1.3 r)(1 - r) = p, so a session's rate is about half of p (the
# previous generator used p itself per session, which doubled the two-cycle figures).
_A = AE_CYCLE_FACTOR[0] * AE_CYCLE_FACTOR[1]
_B = AE_CYCLE_FACTOR[0] + AE_CYCLE_FACTOR[1]
AE_RATE_PER_SESSION = (_B - np.sqrt(_B**2 - 4 * _A * AE_PATIENTS_2_CYCLES)) / (2 * _A)
AE_ONSET_DAYS = np.array([[1, 7], [3, 10], [0, 2], [3, 10], [0, 3], [1, 7], [3, 10], [3, 10], [1, 14]])
AE_SEVERITIES = np.array(["mild", "moderate", "severe"])
AE_SEVERITY_SHARE = (0.72, 0.24, 0.04)
AE_UNRESOLVED_SHARE = 0.05

INSTRUMENTS = ("HIT-6", "MIDAS", "MSQ-RFR")

_DATE_BITS = 20  # packs (patient index, day) into one sortable int64 key


def _to_day(value: date) -> int:
    return int(np.datetime64(value, "D").astype(np.int64))


def _as_datetime(days: np.ndarray) -> np.ndarray:
    """Integer day numbers (days since 1970-01-01; negative = missing) as datetime64[ns] with NaT."""
    out = days.astype("datetime64[D]").astype("datetime64[ns]")
    out[days < 0] = np.datetime64("NaT")
    return out


def _ragged_index(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For groups of the given lengths: the group of each element and its position in the group."""
    owner = np.repeat(np.arange(len(lengths)), lengths)
    first = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return owner, np.arange(len(owner)) - first


def _within_group_rank(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random order 0, 1, 2, ... of the elements within each group."""
    order = np.lexsort((rng.random(len(groups)), groups))
    sorted_groups = groups[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_groups)) + 1]
    run_lengths = np.diff(np.r_[starts, len(groups)])
    rank = np.empty(len(groups), dtype=np.int64)
    rank[order] = np.arange(len(groups)) - np.repeat(starts, run_lengths)
    return rank


def _patients(rng: np.random.Generator, n: int, start: int, end: int) -> dict[str, np.ndarray]:
    """Visible characteristics and latent traits of each patient."""
    clinic = rng.choice(len(CLINICS), size=n, p=CLINIC_SHARE)
    medication_overuse = rng.random(n) < MEDICATION_OVERUSE_SHARE
    # Baseline headache days per 28 days within 15..28 (chronic migraine), mean ~20: PREEMPT pooled
    # baseline 19.9 headache days / 28 days; overusers a little higher.
    baseline_mhd = 15 + 13 * np.where(medication_overuse, rng.beta(1.9, 2.4, size=n), rng.beta(1.5, 2.8, size=n))
    low_diary = rng.random(n) < LOW_COMPLETENESS_SHARE
    completeness = np.where(
        low_diary, 0.45 + 0.30 * rng.beta(2.0, 2.0, size=n), 0.80 + 0.18 * rng.beta(2.5, 1.8, size=n)
    )
    # The prospective baseline diary runs 28-35 days before the first injection; first injections
    # are spread over the period, and a few patients are still in their baseline at the end.
    baseline_length = rng.integers(28, 36, size=n)
    first_session = start + 35 + rng.integers(0, end + 21 - (start + 35), size=n)
    onset_cycle = np.where(rng.random(n) < LATE_ONSET_SHARE, LATE_ONSET_CYCLE, 1)
    wears_off = rng.random(n) < WEAR_OFF_SHARE
    wear_off = np.where(wears_off, rng.uniform(0.40, 0.90, size=n), rng.uniform(0.0, 0.10, size=n))
    mean_effect = np.clip(rng.normal(EFFECT_MEAN, EFFECT_SD, size=n), *EFFECT_RANGE)
    late_full = rng.uniform(*LATE_FULL_RANGE, size=n)
    partial_effect = rng.uniform(*LATE_PARTIAL_RANGE, size=n)
    full_effect = np.where(onset_cycle > 1, late_full, mean_effect)  # from the onset cycle on
    late_share = CLINIC_LATE_SHARE[clinic]
    late_propensity = rng.beta(late_share * 6, (1 - late_share) * 6)
    # INJECTOR_CLINIC is sorted by clinic, so a clinic's injectors are one contiguous block.
    per_clinic = np.bincount(INJECTOR_CLINIC)
    main_injector = (np.cumsum(per_clinic) - per_clinic)[clinic] + (rng.random(n) * per_clinic[clinic]).astype(np.int64)
    return {
        "clinic": clinic,
        "sex": rng.choice(SEXES, size=n, p=SEX_SHARE),
        "age_band": rng.choice(AGE_BANDS, size=n, p=AGE_SHARE),
        "prior_preventives": rng.choice(PRIOR_PREVENTIVES, size=n, p=PRIOR_PREVENTIVES_SHARE),
        "medication_overuse": medication_overuse,
        "baseline_mhd": baseline_mhd,
        "completeness": completeness,
        "baseline_length": baseline_length,
        "first_session": first_session,
        "onset_cycle": onset_cycle,
        "wear_off": wear_off,
        "partial_effect": partial_effect,
        "full_effect": full_effect,
        "late_propensity": late_propensity,
        "main_injector": main_injector,
        "migraine_share": rng.uniform(0.60, 0.92, size=n),
        "acute_share": np.where(medication_overuse, rng.uniform(0.70, 0.90, size=n), rng.uniform(0.45, 0.70, size=n)),
        "short_headache_share": rng.uniform(0.08, 0.25, size=n),
    }


def _potential_schedule(rng: np.random.Generator, patients: dict, n_slots: int) -> np.ndarray:
    """Session dates each patient would have if nobody stopped: an (n, n_slots) day-number matrix."""
    n = len(patients["first_session"])
    late = rng.random((n, n_slots - 1)) < patients["late_propensity"][:, None]
    early = ~late & (rng.random((n, n_slots - 1)) < 0.12)
    # Re-injection every 12 weeks (84 days). REPOSE: 79% of patients had at least one interval over
    # 13 weeks (91 days); some are brought forward to 77-83 days.
    on_time = 84 + rng.choice(8, size=(n, n_slots - 1), p=(0.30, 0.15, 0.12, 0.10, 0.10, 0.08, 0.08, 0.07))
    delayed = 92 + np.minimum(rng.exponential(16.0, size=(n, n_slots - 1)).astype(np.int64), 110)
    brought_forward = rng.integers(77, 84, size=(n, n_slots - 1))
    interval = np.where(late, delayed, np.where(early, brought_forward, on_time))
    schedule = np.empty((n, n_slots), dtype=np.int64)
    schedule[:, 0] = patients["first_session"]
    schedule[:, 1:] = patients["first_session"][:, None] + np.cumsum(interval, axis=1)
    return schedule


def _cycle_effect(rng: np.random.Generator, patients: dict, n_slots: int) -> np.ndarray:
    """Peak reduction of the daily headache probability per patient and cycle, (n, n_slots)."""
    n = len(patients["onset_cycle"])
    cycle = np.arange(1, n_slots + 1)[None, :]
    onset = patients["onset_cycle"][:, None]
    mean_effect = np.where(cycle >= onset, patients["full_effect"][:, None], patients["partial_effect"][:, None])
    mean_effect = mean_effect + FIRST_CYCLE_EXTRA * (cycle == 1)
    effect = mean_effect + rng.normal(0.0, CYCLE_EFFECT_SD, size=(n, n_slots))
    # Convert the cycle-mean reduction into the peak of the within-cycle profile.
    days_since = np.tile(np.arange(84), n)
    profile = _effect_profile(days_since, np.repeat(patients["wear_off"], 84))
    profile_mean = profile.reshape(n, 84).mean(axis=1)
    return np.clip(effect / profile_mean[:, None], -0.3, 0.97)


def _effect_profile(days_since: np.ndarray, wear_off: np.ndarray) -> np.ndarray:
    """Share of the peak effect by days since the injection (onset, plateau, wearing-off, beyond 84)."""
    onset = ONSET_START_SHARE + (1 - ONSET_START_SHARE) * days_since / ONSET_FULL_DAY
    wearing = 1 - wear_off * np.clip((days_since - WEAR_OFF_FROM_DAY + 1) / (84 - WEAR_OFF_FROM_DAY), 0, 1)
    # A late re-injection leaves the patient with a fading effect after week 12.
    beyond = np.clip(1 - (days_since - 83) / 56, 0.25, 1)
    return np.minimum(onset, 1) * wearing * beyond


def _simulate_days(
    rng: np.random.Generator, patients: dict, schedule: np.ndarray, peak_effect: np.ndarray, end: int
) -> dict[str, np.ndarray]:
    """Every patient-day from the start of the baseline diary to ``end``, recorded or not."""
    n, n_slots = schedule.shape
    diary_start = patients["first_session"] - patients["baseline_length"]
    owner, offset = _ragged_index(end - diary_start + 1)
    day = diary_start[owner] + offset
    key_base = int(diary_start.min())
    session_key = ((np.arange(n)[:, None] << _DATE_BITS) + (schedule - key_base)).ravel()
    day_key = (owner.astype(np.int64) << _DATE_BITS) + (day - key_base)
    cycle = np.searchsorted(session_key, day_key, side="right") - owner * n_slots
    treated = cycle > 0
    slot = np.maximum(cycle - 1, 0)
    days_since = day - schedule[owner, slot]

    effect = np.zeros(len(day))
    effect[treated] = peak_effect[owner[treated], slot[treated]] * _effect_profile(
        days_since[treated], patients["wear_off"][owner[treated]]
    )
    # Headache days cluster: a week-level multiplier adds bad and good weeks around the trend.
    n_weeks = int(offset.max()) // 7 + 1
    week_factor = rng.lognormal(0.0, 0.12, size=(n, n_weeks))[owner, offset // 7]
    headache_p = np.clip(patients["baseline_mhd"][owner] / 28 * (1 - effect) * week_factor, 0.003, 0.985)
    headache = rng.random(len(day)) < headache_p

    # Diaries are kept best during the baseline and a little less each cycle.
    completeness = patients["completeness"][owner] + np.where(treated, -0.012 * cycle, 0.02)
    recorded = rng.random(len(day)) < np.clip(completeness, 0.05, 0.99)

    # Inclusion needs >=15 headache days/month in the prospective baseline: the recorded days of the
    # 28-day baseline window hold exactly ceil(baseline_mhd x recorded / 28) headache days.
    first = patients["first_session"][owner]
    in_baseline = recorded & (day >= first - 28) & (day < first) & (first <= end)
    baseline_rows = np.flatnonzero(in_baseline)
    baseline_owner = owner[baseline_rows]
    baseline_recorded = np.bincount(baseline_owner, minlength=n)
    baseline_headache = np.minimum(np.ceil(patients["baseline_mhd"] * baseline_recorded / 28 - 1e-9), baseline_recorded)
    rank = _within_group_rank(baseline_owner, rng)
    headache[baseline_rows] = rank < baseline_headache[baseline_owner]
    return {
        "owner": owner,
        "day": day,
        "cycle": cycle,
        "days_since": days_since,
        "headache": headache,
        "recorded": recorded,
    }


def _observed_cycles(days: dict, schedule: np.ndarray, end: int) -> dict[str, np.ndarray]:
    """What the clinic sees in the diary at each review: SPEC §3 windows, mhd and % change."""
    n, n_slots = schedule.shape
    owner, cycle, recorded, headache = days["owner"], days["cycle"], days["recorded"], days["headache"]
    in_window = recorded & (cycle > 0) & (days["days_since"] < 84)
    cell = owner[in_window] * n_slots + cycle[in_window] - 1
    recorded_days = np.bincount(cell, minlength=n * n_slots).reshape(n, n_slots)
    headache_days = np.bincount(cell, weights=headache[in_window], minlength=n * n_slots).reshape(n, n_slots)
    window_end = np.minimum(np.c_[schedule[:, 1:] - 1, schedule[:, -1:] + 83], schedule + 83)
    window_days = np.minimum(window_end, end) - schedule + 1
    with np.errstate(divide="ignore", invalid="ignore"):
        evaluable = (window_days >= 28) & (recorded_days >= 0.7 * window_days)
        mhd = np.where(evaluable, headache_days / recorded_days * 28, np.nan)

    first = schedule[:, 0][owner]
    in_baseline = recorded & (days["day"] >= first - 28) & (days["day"] < first)
    base_recorded = np.bincount(owner[in_baseline], minlength=n)
    base_headache = np.bincount(owner[in_baseline], weights=headache[in_baseline], minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        base_mhd = np.where(base_recorded >= 0.7 * 28, base_headache / base_recorded * 28, np.nan)
    return {"mhd": mhd, "pct_change": 100 * (mhd / base_mhd[:, None] - 1)}


def _adverse_event_draws(rng: np.random.Generator, n: int, n_slots: int) -> dict[str, np.ndarray]:
    """Adverse events for every potential session: (n, n_slots, event) arrays."""
    factor = np.full(n_slots, AE_CYCLE_FACTOR[-1])
    factor[: len(AE_CYCLE_FACTOR) - 1] = AE_CYCLE_FACTOR[:-1]
    shape = (n, n_slots, len(AE_EVENTS))
    occurs = rng.random(shape) < AE_RATE_PER_SESSION[None, None, :] * factor[None, :, None]
    low, high = AE_ONSET_DAYS[:, 0], AE_ONSET_DAYS[:, 1]
    onset = low + (rng.random(shape) * (high - low + 1)).astype(np.int64)
    severity = rng.choice(len(AE_SEVERITIES), size=shape, p=AE_SEVERITY_SHARE)
    duration = rng.integers(7, 43, size=shape)
    unresolved = rng.random(shape) < AE_UNRESOLVED_SHARE
    serious = rng.random(shape) < np.where(severity == 2, 0.30, 0.002)
    stop_p = np.array([AE_STOP_PROBABILITY[s] for s in AE_SEVERITIES])[severity]
    stops = occurs & (rng.random(shape) < stop_p)
    return {
        "occurs": occurs,
        "onset": onset,
        "severity": severity,
        "duration": duration,
        "unresolved": unresolved,
        "serious": serious,
        "stops": stops,
    }


def _discontinuations(
    rng: np.random.Generator, schedule: np.ndarray, observed: dict, adverse: dict, end: int
) -> dict[str, np.ndarray]:
    """Who stops after which cycle, why and when; ``end`` censors decisions not yet taken."""
    n, n_slots = schedule.shape
    n_sessions = np.where(schedule[:, 0] <= end, 1, 0)
    stopped = n_sessions == 0
    discontinued_on = np.full(n, -1, dtype=np.int64)
    diary_end = np.full(n, end, dtype=np.int64)
    reason = np.zeros(n, dtype=np.int64)
    pct, mhd = observed["pct_change"], observed["mhd"]
    any_response_50 = np.zeros(n, dtype=bool)
    for k in range(1, n_slots):  # review at the end of cycle k, before session k + 1
        session, review = schedule[:, k - 1], schedule[:, k]
        active = ~stopped
        any_response_50 |= pct[:, k - 1] <= -50
        draws = rng.random((5, n))
        ae_day = np.where(adverse["stops"][:, k - 1, :], adverse["onset"][:, k - 1, :], 10**6).min(axis=1)
        ae_stop_date = session + ae_day + rng.integers(7, 36, size=n)
        stop_ae = active & (ae_day < 10**6) & (ae_stop_date <= end)
        due = active & ~stop_ae & (review <= end)
        # NICE TA260 judges the change after 2 cycles; without an evaluable cycle 2, cycle 1 is used.
        nice_change = np.where(np.isnan(pct[:, 1]), pct[:, 0], pct[:, 1]) if k == 2 else np.full(n, np.nan)
        stop_nice = due & (nice_change > -30) & (draws[0] < NICE_STOP_PROBABILITY)
        stop_efficacy = (
            due & (k >= 3) & ~any_response_50 & ~(pct[:, k - 1] <= -30) & (draws[1] < LATE_NONRESPONSE_STOP_PROBABILITY)
        )
        # Episodic: <15 headache days/month over the last two cycles (3+ consecutive months).
        episodic = (mhd[:, k - 1] < 15) & (mhd[:, k - 2] < 15) if k >= 2 else np.zeros(n, dtype=bool)
        stop_episodic = due & episodic & (draws[2] < EPISODIC_STOP_PROBABILITY)
        stop_choice = due & (draws[3] < PATIENT_CHOICE_STOP_PROBABILITY)
        lost = due & (draws[4] < LOST_TO_FOLLOW_UP_PROBABILITY)

        decided = np.zeros(n, dtype=bool)
        for mask, why in (
            (stop_ae, REASON_AE),
            (stop_nice, REASON_NICE),
            (stop_efficacy, REASON_EFFICACY),
            (stop_episodic, REASON_EPISODIC),
            (stop_choice, REASON_CHOICE),
            (lost, REASON_LTFU),
        ):
            new = mask & ~decided
            reason[new] = _REASON_CODE[why]
            decided |= new
        ae_new = decided & (reason == _REASON_CODE[REASON_AE])
        lost_new = decided & (reason == _REASON_CODE[REASON_LTFU])
        # Stops decided at the review take effect on the day the next injection was due.
        review_stop = decided & ~ae_new & ~lost_new
        discontinued_on[review_stop] = review[review_stop]
        diary_end[review_stop] = review[review_stop]
        discontinued_on[ae_new] = ae_stop_date[ae_new]
        diary_end[ae_new] = ae_stop_date[ae_new]
        # Lost to follow-up: the diary stops mid-cycle; the service discharges 2-4 months after the
        # missed appointment, which may still lie after the data cut-off.
        diary_end[lost_new] = np.minimum(session + rng.integers(14, 71, size=n), end)[lost_new]
        discharged = review + rng.integers(60, 121, size=n)
        discontinued_on[lost_new] = np.where(discharged <= end, discharged, -1)[lost_new]
        stopped |= decided
        n_sessions += ~stopped & (review <= end)
    reason[(discontinued_on < 0)] = 0
    return {
        "n_sessions": n_sessions,
        "discontinued_on": discontinued_on,
        "reason": reason,
        "diary_end": np.minimum(diary_end, end),
    }


def _diary_table(
    rng: np.random.Generator, patients: dict, days: dict, keep: np.ndarray, patient_ids: np.ndarray
) -> pd.DataFrame:
    owner, headache = days["owner"][keep], days["headache"][keep]
    m = len(owner)
    # A headache day has >=4 h (PREEMPT); other days may carry a short 1-3 h headache.
    long_hours = np.minimum(4 + rng.gamma(1.4, 4.0, size=m).astype(np.int64), 24)
    long_hours[rng.random(m) < 0.06] = 24
    short = ~headache & (rng.random(m) < patients["short_headache_share"][owner])
    hours = np.where(headache, long_hours, np.where(short, rng.integers(1, 4, size=m), 0))
    migraine = headache & (rng.random(m) < patients["migraine_share"][owner])
    severity_draw = rng.random(m)
    severity = np.select(
        [hours == 0, ~headache, migraine],
        [0, 1, np.where(severity_draw < 0.38, 3, 2)],
        np.where(severity_draw < 0.40, 2, 1),
    )
    acute_p = np.where(headache, patients["acute_share"][owner], np.where(short, 0.25, 0.0))
    acute = rng.random(m) < acute_p
    # A few entries leave the optional fields blank (missing is not "no").
    blank = rng.random((3, m)) < 0.003
    return pd.DataFrame(
        {
            "patient_id": patient_ids[owner],
            "date": _as_datetime(days["day"][keep]),
            "headache_hours": hours,
            "migraine": pd.Series(migraine, dtype="boolean").mask(blank[0]),
            "severity": pd.Series(severity, dtype="Int64").mask(blank[1]),
            "acute_medication": pd.Series(acute, dtype="boolean").mask(blank[2]),
        }
    )


def _session_tables(
    rng: np.random.Generator, patients: dict, schedule: np.ndarray, n_sessions: np.ndarray, patient_ids: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    given = np.arange(schedule.shape[1])[None, :] < n_sessions[:, None]
    owner, slot = np.nonzero(given)
    s = len(owner)
    # Most sessions are given by the patient's usual injector, some by a colleague in the clinic.
    colleague = rng.integers(0, 7, size=s)
    same_clinic = INJECTOR_CLINIC[colleague] == patients["clinic"][owner]
    injector = np.where((rng.random(s) < 0.8) | ~same_clinic, patients["main_injector"][owner], colleague)
    ftp = rng.random(s) < INJECTOR_FTP_SHARE[injector] * np.where(slot == 0, 0.8, 1.1)
    extra_sites = np.where(ftp, 1 + rng.choice(8, size=s, p=FTP_EXTRA_SITES_SHARE), 0)
    base_sites = np.array([site[2] for site in PREEMPT_SITES])
    sites = np.tile(base_sites, (s, 1))
    sites[:, FTP_ROWS] += rng.multinomial(extra_sites, FTP_ROW_SHARE)
    n_injections = sites.sum(axis=1)
    session_dates = _as_datetime(schedule[owner, slot])
    sessions = pd.DataFrame(
        {
            "patient_id": patient_ids[owner],
            "session_date": session_dates,
            "total_units": n_injections * UNITS_PER_SITE,
            "n_injections": n_injections,
            "injector_id": np.array(INJECTORS)[injector],
            "protocol": np.where(ftp, "PREEMPT+FTP", "PREEMPT"),
        }
    )
    n_rows = len(PREEMPT_SITES)
    injections = pd.DataFrame(
        {
            "patient_id": np.repeat(patient_ids[owner], n_rows),
            "session_date": np.repeat(session_dates, n_rows),
            "muscle": np.tile([site[0] for site in PREEMPT_SITES], s),
            "side": np.tile([site[1] for site in PREEMPT_SITES], s),
            "units": sites.ravel() * UNITS_PER_SITE,
            "sites": sites.ravel(),
        }
    )
    return sessions, injections, given


def _adverse_event_table(
    adverse: dict, schedule: np.ndarray, given: np.ndarray, diary_end: np.ndarray, end: int, patient_ids: np.ndarray
) -> pd.DataFrame:
    onset_day = schedule[:, :, None] + adverse["onset"]
    # Only events after sessions that happened, and reported by the end of the patient's follow-up.
    reported = adverse["occurs"] & given[:, :, None] & (onset_day <= diary_end[:, None, None])
    owner, slot, event = np.nonzero(reported)
    onset = onset_day[owner, slot, event]
    resolved = onset + adverse["duration"][owner, slot, event]
    resolved = np.where(adverse["unresolved"][owner, slot, event] | (resolved > end), -1, resolved)
    return pd.DataFrame(
        {
            "patient_id": patient_ids[owner],
            "session_date": _as_datetime(schedule[owner, slot]),
            "event": AE_EVENTS[event],
            "severity": AE_SEVERITIES[adverse["severity"][owner, slot, event]],
            "onset_date": _as_datetime(onset),
            "resolved_date": _as_datetime(resolved),
            "serious": adverse["serious"][owner, slot, event],
        }
    )


def _questionnaire_table(
    rng: np.random.Generator, days: dict, schedule: np.ndarray, given: np.ndarray, patient_ids: np.ndarray
) -> pd.DataFrame:
    """HIT-6, MIDAS and MSQ-RFR on session days (the first one is the baseline questionnaire)."""
    n = len(schedule)
    # True headache days in the 28 days before the visit, recorded in the diary or not.
    cumulative = np.r_[0, np.cumsum(days["headache"])]
    first_row = np.r_[0, np.cumsum(np.bincount(days["owner"], minlength=n))[:-1]]
    diary_start = days["day"][first_row]
    owner, slot = np.nonzero(given)
    visit = schedule[owner, slot]
    row = first_row[owner] + (visit - diary_start[owner])
    recent = (cumulative[row] - cumulative[row - 28]).astype(float)
    m = len(owner)
    person = rng.normal(0.0, 1.0, size=(3, n))[:, owner]
    noise = rng.normal(0.0, 1.0, size=(3, m))
    # HIT-6 ~ 50 + 0.6 x headache days/month (PREEMPT baseline ~65); MIDAS ~ 2-3 x headache days;
    # MSQ role function-restrictive falls as headache days rise (higher is better).
    hit6 = np.clip(np.rint(51.5 + 0.6 * recent + 2.5 * person[0] + 3.0 * noise[0]), 36, 78)
    midas = np.clip(np.rint(2.8 * recent * np.exp(0.3 * person[1] + 0.35 * noise[1])), 0, 270)
    msq = np.clip(np.round(100 - 2.6 * recent + 6.0 * person[2] + 8.0 * noise[2], 1), 0, 100)
    completed = rng.random((3, m)) < np.array([0.92, 0.90, 0.60])[:, None]
    frames = [
        pd.DataFrame(
            {
                "patient_id": patient_ids[owner[done]],
                "date": _as_datetime(visit[done]),
                "instrument": instrument,
                "score": score[done].astype(float),
            }
        )
        for instrument, score, done in zip(INSTRUMENTS, (hit6, midas, msq), completed, strict=True)
    ]
    table = pd.concat(frames, ignore_index=True)
    return table.sort_values(["patient_id", "date", "instrument"], kind="stable", ignore_index=True)


def generate_cohort(
    n_patients: int,
    seed: int,
    start: date = DEFAULT_START,
    end: date = DEFAULT_END,
    first_id: int = 1,
    id_width: int | None = None,
) -> dict[str, pd.DataFrame]:
    """Generate the six SPEC §2 tables for ``n_patients`` synthetic patients, keyed by file stem.

    Patients are numbered from ``first_id`` (``P`` and ``id_width`` digits, default at least 5), so a
    registry can be generated in parts that do not share ids.

    Dates are datetime64 columns, optional booleans and severities nullable; ``write_cohort`` turns
    them into the CSV conventions of the contract. The same arguments always give the same tables.
    """
    start_day, end_day = _to_day(start), _to_day(end)
    if n_patients < 1:
        raise ValueError("n_patients must be at least 1")
    if end_day - start_day < 120:
        raise ValueError("the period from start to end must span at least 120 days")
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(9)]
    width = id_width or max(5, len(str(first_id + n_patients - 1)))
    patient_ids = np.array([f"P{i:0{width}d}" for i in range(first_id, first_id + n_patients)], dtype=object)
    n_slots = (end_day - start_day) // 77 + 2

    patients = _patients(streams[0], n_patients, start_day, end_day)
    schedule = _potential_schedule(streams[1], patients, n_slots)
    peak_effect = _cycle_effect(streams[2], patients, n_slots)
    days = _simulate_days(streams[3], patients, schedule, peak_effect, end_day)
    observed = _observed_cycles(days, schedule, end_day)
    adverse = _adverse_event_draws(streams[4], n_patients, n_slots)
    course = _discontinuations(streams[5], schedule, observed, adverse, end_day)

    keep = days["recorded"] & (days["day"] <= course["diary_end"][days["owner"]])
    diary = _diary_table(streams[6], patients, days, keep, patient_ids)
    sessions, injections, given = _session_tables(streams[7], patients, schedule, course["n_sessions"], patient_ids)
    adverse_events = _adverse_event_table(adverse, schedule, given, course["diary_end"], end_day, patient_ids)
    questionnaires = _questionnaire_table(streams[8], days, schedule, given, patient_ids)
    patients_table = pd.DataFrame(
        {
            "patient_id": patient_ids,
            "sex": patients["sex"],
            "age_band": patients["age_band"],
            "clinic": np.array(CLINICS)[patients["clinic"]],
            "prior_preventives": patients["prior_preventives"],
            "medication_overuse": patients["medication_overuse"],
            "discontinued_on": _as_datetime(course["discontinued_on"]),
            "discontinuation_reason": REASONS[course["reason"]],
        }
    )
    return {
        "sessions": sessions,
        "diary": diary,
        "patients": patients_table,
        "injections": injections,
        "adverse_events": adverse_events,
        "questionnaires": questionnaires,
    }


def _csv_value(value: object) -> str:
    """One value in the contract's CSV conventions: ISO dates, true/false, quoted only if needed."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, (float, np.floating)):
        return f"{value:.10g}"
    text = str(value)
    if any(char in text for char in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_cells(column: pd.Series) -> np.ndarray:
    # Columns hold few distinct values (ids, dates, small integers), so each distinct value is
    # formatted once and the cells are looked up: far faster than DataFrame.to_csv for the diary.
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    labels = np.array([_csv_value(value) for value in uniques] + [""], dtype=object)
    return labels[codes]  # code -1 (missing) picks the trailing empty label


def write_cohort(tables: dict[str, pd.DataFrame], out_dir: Path | str) -> list[Path]:
    """Write each table as ``<stem>.csv`` in ``out_dir`` (created if needed); returns the paths.

    Dates are written ``YYYY-MM-DD``, booleans ``true``/``false``, missing values as empty cells.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, table in tables.items():
        lines = np.full(len(table), "", dtype=object)
        for position, name in enumerate(table.columns):
            cells = _csv_cells(table[name])
            lines = cells if position == 0 else lines + "," + cells
        path = out / f"{stem}.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            handle.write(",".join(table.columns) + "\n")
            if len(lines):
                handle.write("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def write_cohort_parquet(tables: dict[str, pd.DataFrame], out_dir: Path | str, part: int) -> list[Path]:
    """Write each table as part ``part`` of a partitioned Parquet table: ``<stem>/part-<part>.parquet``.

    Columns keep their types (dates as Parquet dates, booleans, integers); the loader reads a folder
    of parts as one table (``analytics.ingest.load.table_folders``).
    """
    paths = []
    for stem, table in tables.items():
        folder = Path(out_dir) / stem
        folder.mkdir(parents=True, exist_ok=True)
        arrow = pa.Table.from_pandas(table, preserve_index=False)
        for i, field in enumerate(arrow.schema):
            if pa.types.is_timestamp(field.type):
                arrow = arrow.set_column(i, field.name, arrow.column(i).cast(pa.date32()))
        path = folder / f"part-{part:05d}.parquet"
        pq.write_table(arrow, path)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analytics.synth", description="Write a synthetic Botox-for-migraine cohort (SPEC §2 files)."
    )
    parser.add_argument("--patients", type=int, required=True, help="number of synthetic patients")
    parser.add_argument("--seed", type=int, required=True, help="random seed; the same seed gives identical files")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--start",
        type=date.fromisoformat,
        default=DEFAULT_START,
        help=f"start of the data period, YYYY-MM-DD (default {DEFAULT_START})",
    )
    parser.add_argument(
        "--end",
        type=date.fromisoformat,
        default=DEFAULT_END,
        help=f"end of the data period, YYYY-MM-DD (default {DEFAULT_END})",
    )
    parser.add_argument(
        "--format",
        choices=("csv", "parquet"),
        default="csv",
        help="csv (default): one <stem>.csv per table; parquet: a folder of Parquet parts per table",
    )
    parser.add_argument(
        "--part-patients",
        type=int,
        default=25_000,
        metavar="N",
        help="with --format parquet: patients per part, each generated with its own seed (default 25,000)",
    )
    args = parser.parse_args(argv)
    began = time.perf_counter()
    if args.format == "csv":
        tables = generate_cohort(args.patients, args.seed, args.start, args.end)
        write_cohort(tables, args.out)
        rows = {stem: len(table) for stem, table in tables.items()}
    else:
        rows = {}
        width = max(5, len(str(args.patients)))
        for part, first in enumerate(range(1, args.patients + 1, args.part_patients)):
            n = min(args.part_patients, args.patients - first + 1)
            tables = generate_cohort(n, args.seed + part, args.start, args.end, first_id=first, id_width=width)
            write_cohort_parquet(tables, args.out, part)
            for stem, table in tables.items():
                rows[stem] = rows.get(stem, 0) + len(table)
            del tables
            print(f"synth: part {part}: patients {first:,}..{first + n - 1:,}", file=sys.stderr, flush=True)
    counts = ", ".join(f"{n:,} {stem}" for stem, n in rows.items())
    print(
        f"synth: seed {args.seed}, {args.start}..{args.end}: {counts} -> {args.out} "
        f"({time.perf_counter() - began:.1f} s)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
