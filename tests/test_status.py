"""SPEC §5: patient_status.csv and safety.csv.

Three kinds of check: (1) the vectorised tables against an independent per-patient reading of the
SPEC (tests/status_reference.py) on the sample data, the conformance data and seeded random
datasets built to hit every branch, under default and changed parameters; (2) hand-computed rows
for each definition and each branch of nice_state and ehf_state, boundaries included; (3) the
export command writes both files and records every §5 parameter in the manifest.
"""

from __future__ import annotations

import json
import math
import random
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from analytics.cli import main
from analytics.definitions.config import STATUS_PARAMETERS, AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.definitions.status import PATIENT_STATUS_COLUMNS, SAFETY_COLUMNS
from analytics.ingest.load import load_dataset
from tests.status_reference import reference_safety, reference_status

PROJECT = Path(__file__).resolve().parent.parent
CONFORMANCE = PROJECT / "tests" / "conformance"


def _norm(v: object) -> object:
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, pd.Timestamp):
        return v.date()
    if hasattr(v, "item"):
        return v.item()
    return v


def _same(a: object, b: object) -> bool:
    a, b = _norm(a), _norm(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (a is not None and b is not None and bool(a) == bool(b) and type(a) is type(b))
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def assert_matches_reference(folder: Path, config: AnalysisConfig | None = None) -> pd.DataFrame:
    dataset = load_dataset(folder)
    analysis = analyse(dataset, config or AnalysisConfig())
    expected = reference_status(dataset, analysis.patient_cycles, analysis.as_of, analysis.config)
    status = analysis.patient_status
    assert list(status.columns) == PATIENT_STATUS_COLUMNS
    assert set(status["patient_id"]) == set(expected)
    problems = []
    for row in status.to_dict("records"):
        want = expected[row["patient_id"]]
        for column in PATIENT_STATUS_COLUMNS[1:]:
            if not _same(row[column], want[column]):
                problems.append(f"{row['patient_id']} {column}: got {row[column]!r}, expected {want[column]!r}")
    assert not problems, "\n".join(problems[:20])
    safety = reference_safety(dataset, analysis.patient_cycles)
    if safety is None:
        assert analysis.safety is None
    else:
        got = analysis.safety.to_dict("records")
        assert [r["event"] for r in got] == [r["event"] for r in safety]
        for g, w in zip(got, safety, strict=True):
            for column in SAFETY_COLUMNS:
                assert _same(g[column], w[column]), (g["event"], column, g[column], w[column])
    return status


# --- (1) against the independent reading ---------------------------------------------------------


def test_sample_data_matches_the_reference() -> None:
    status = assert_matches_reference(PROJECT / "sample_data")
    # The sample exercises the states a clinic sees (a smoke check that the comparison meant something).
    assert len(set(status["treatment_state"])) >= 3
    assert {"stop", "continue", "pending", "not reached", "not assessable"} <= set(status["nice_state"])


def test_conformance_data_matches_the_reference() -> None:
    assert_matches_reference(CONFORMANCE / "data")


@pytest.mark.parametrize(
    "changes",
    [
        {"lapse_days": 150, "on_time_max_days": 90, "on_time_min_days": 70},
        {"stopping_cycle": 3, "ehf_cycles": 2, "stopping_min_reduction": 50.0},
        {"episodic_periods": 2, "episodic_max_days": 12.0, "ehf_episodic_max_days": 8.0, "min_completeness": 0.5},
        {"chronic_min_headache_days": 10.0, "chronic_min_migraine_days": 4.0, "min_prior_preventives": 1},
        {"cycle_days": 70, "baseline_days": 35, "headache_min_hours": 2.0, "overuse_acute_days": 6.0},
    ],
)
def test_changed_parameters_match_the_reference(changes: dict[str, object]) -> None:
    assert_matches_reference(PROJECT / "sample_data", AnalysisConfig(**changes))  # type: ignore[arg-type]


def _random_dataset(folder: Path, seed: int, migraine: bool = True, patients_file: bool = True) -> Path:
    """A small dataset aimed at the branches: short and long gaps, sparse and missing diaries, dropouts."""
    rng = random.Random(seed)
    sessions, diary, patients, events = [], [], [], []
    origin = date(2024, 1, 1)
    for i in range(40):
        pid = f"S{seed}_{i:02d}"
        d1 = origin + timedelta(days=rng.randint(0, 400))
        dates = [d1]
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3, 4, 6])):
            dates.append(dates[-1] + timedelta(days=rng.choice([60, 76, 77, 84, 90, 98, 99, 120, 182, 183, 200])))
        for d in dates:
            sessions.append(f"{pid},{d}")
        level = rng.choice([6, 12, 16, 20, 24])
        completeness = rng.choice([0.0, 0.5, 0.69, 0.7, 0.85, 1.0])
        end = dates[-1] + timedelta(days=rng.randint(0, 260))
        day = d1 - timedelta(days=28 + rng.randint(0, 5))
        while day <= end:
            if rng.random() < completeness:
                improve = 0.35 * max(0, (day - d1).days) / 84
                p = max(0.0, level / 28 - improve * rng.random())
                hours = rng.choice([4, 6, 8]) if rng.random() < p else rng.choice([0, 0, 2, 3.9])
                mig = ("true" if rng.random() < 0.6 else "false") if hours >= 4 else "false"
                acute = "true" if rng.random() < 0.4 else ""
                diary.append(f"{pid},{day},{hours},{mig},,{acute}" if migraine else f"{pid},{day},{hours},,{acute}")
            day += timedelta(days=1)
        prior = rng.choice(["", "0", "2", "3", "5"])
        stop = rng.choice(["", "", "", "before", "last", "after_last", "future"])
        stopped = {
            "": "",
            "before": str(dates[-1] - timedelta(days=10)),
            "last": str(dates[-1]),
            "after_last": str(dates[-1] + timedelta(days=30)),
            "future": "2030-01-01",
        }[stop]
        patients.append(f"{pid},{rng.choice(['F', 'M'])},40-49,North,{prior},,{stopped},")
        for d in dates:
            if rng.random() < 0.3:
                event = rng.choice(["neck_pain", "eyelid_ptosis", "headache", "other"])
                events.append(f"{pid},{d},{event},mild,,,{rng.choice(['true', 'false', ''])}")
    folder.mkdir(parents=True)
    (folder / "sessions.csv").write_text("patient_id,session_date\n" + "\n".join(sessions) + "\n")
    header = (
        "patient_id,date,headache_hours,migraine,severity,acute_medication"
        if migraine
        else ("patient_id,date,headache_hours,severity,acute_medication")
    )
    (folder / "diary.csv").write_text(header + "\n" + "\n".join(diary) + "\n")
    if patients_file:
        (folder / "patients.csv").write_text(
            "patient_id,sex,age_band,clinic,prior_preventives,medication_overuse,discontinued_on,discontinuation_reason\n"
            + "\n".join(patients)
            + "\n"
        )
        (folder / "adverse_events.csv").write_text(
            "patient_id,session_date,event,severity,onset_date,resolved_date,serious\n" + "\n".join(events) + "\n"
        )
    return folder


@pytest.mark.parametrize("seed", range(6))
def test_random_datasets_match_the_reference(tmp_path: Path, seed: int) -> None:
    folder = _random_dataset(tmp_path / "d", seed, migraine=seed % 3 != 1, patients_file=seed % 3 != 2)
    status = assert_matches_reference(folder)
    assert status["nice_state"].nunique() >= 3
    assert_matches_reference(folder, AnalysisConfig(as_of=date(2025, 3, 1)))


# --- (2) hand-computed rows ----------------------------------------------------------------------

D1 = date(2024, 1, 1)


def _d(offset: int) -> str:
    return str(D1 + timedelta(days=offset))


def _diary(pid: str, start: int, end: int, hours: object = 0, skip: object = None) -> list[str]:
    """Diary lines from day ``start`` to ``end`` (offsets from D1); ``hours`` a value or f(offset).

    Every headache day (≥4 h) is a migraine day.
    """
    rows = []
    for i in range(start, end + 1):
        if skip is not None and skip(i):  # type: ignore[operator]
            continue
        h = hours(i) if callable(hours) else hours
        rows.append(f"{pid},{_d(i)},{h},{'true' if float(h) >= 4 else 'false'},,")
    return rows


def _analyse(
    tmp_path: Path,
    sessions: list[str],
    diary: list[str],
    patients: list[str] | None = None,
    diary_header: str = "patient_id,date,headache_hours,migraine,severity,acute_medication",
    config: AnalysisConfig | None = None,
):  # type: ignore[no-untyped-def]
    folder = tmp_path / f"hand{len(list(tmp_path.glob('hand*')))}"
    folder.mkdir()
    (folder / "sessions.csv").write_text("patient_id,session_date\n" + "\n".join(sessions) + "\n")
    (folder / "diary.csv").write_text(diary_header + "\n" + "\n".join(diary) + "\n")
    if patients is not None:
        (folder / "patients.csv").write_text(
            "patient_id,prior_preventives,discontinued_on\n" + "\n".join(patients) + "\n"
        )
    analysis = analyse(load_dataset(folder), config or AnalysisConfig())
    return analysis.patient_status.set_index("patient_id")


def _chronic_then(rate_after: object, baseline: int = 20) -> object:
    """Baseline ``baseline`` headache days of 28 (offsets −28..−1), then ``rate_after`` per 28 days."""

    def hours(i: int) -> int:
        if i < 0:
            return 6 if (i + 28) % 28 < baseline else 0
        r = rate_after(i) if callable(rate_after) else rate_after
        return 6 if i % 28 < r else 0

    return hours


@pytest.mark.parametrize(
    ("gap", "state", "overdue"),
    [(98, "active", 0), (99, "overdue", 1), (182, "overdue", 84), (183, "lapsed", 85)],
)
def test_treatment_state_boundaries(tmp_path: Path, gap: int, state: str, overdue: int) -> None:
    # as_of is the last diary day: D1 + gap.
    status = _analyse(tmp_path, [f"A,{_d(0)}"], _diary("A", -28, gap, _chronic_then(20)))
    row = status.loc["A"]
    assert row["treatment_state"] == state
    assert row["days_overdue"] == overdue
    assert row["next_due"] == pd.Timestamp(_d(84))


def test_discontinuation_counts_only_on_or_after_the_last_session(tmp_path: Path) -> None:
    sessions = [f"A,{_d(0)}", f"A,{_d(84)}", f"B,{_d(0)}", f"B,{_d(84)}", f"C,{_d(0)}", f"C,{_d(84)}"]
    diary = _diary("A", -28, 120) + _diary("B", -28, 120) + _diary("C", -28, 120)
    # A stopped before its last session (then restarted), B on the day of it, C after as_of (D1+120).
    patients = ["A,3," + _d(50), "B,3," + _d(84), "C,3," + _d(200)]
    status = _analyse(tmp_path, sessions, diary, patients)
    assert status.loc["A", "treatment_state"] == "active"
    assert status.loc["B", "treatment_state"] == "discontinued"
    assert pd.isna(status.loc["B", "next_due"]) and pd.isna(status.loc["B", "days_overdue"])
    assert status.loc["C", "treatment_state"] == "active"


def test_intervals_on_time_early_late_at_77_and_98(tmp_path: Path) -> None:
    offsets = [0, 76, 153, 251, 350]  # gaps 76 (early), 77 (on time), 98 (on time), 99 (late)
    status = _analyse(tmp_path, [f"A,{_d(o)}" for o in offsets], _diary("A", -28, 360))
    row = status.loc["A"]
    assert (row["intervals_early"], row["intervals_on_time"], row["intervals_late"]) == (1, 2, 1)
    assert row["max_interval_days"] == 99
    single = _analyse(tmp_path, [f"B,{_d(0)}"], _diary("B", -28, 10)).loc["B"]
    assert (single["intervals_early"], single["intervals_on_time"], single["intervals_late"]) == (0, 0, 0)
    assert pd.isna(single["max_interval_days"])


def test_nice_and_ehf_states(tmp_path: Path) -> None:
    s3 = [_d(0), _d(84), _d(168)]
    cases = {
        # pid: (sessions, headache days per 28 after D1 (baseline 20), last diary offset)
        "STOP": (s3, 16, 260),  # -20% at every cycle: NICE stop, EHF stop after 3 complete cycles
        "CONT": (s3, 10, 260),  # -50%: continue on both, but 10 < 15 a month: episodic now
        "EDGE": (s3, 14, 260),  # exactly -30%: meets the rule (continue)
    }
    sessions, diary = [], []
    for pid, (dates, rate, last) in cases.items():
        sessions += [f"{pid},{d}" for d in dates]
        diary += _diary(pid, -28, last, _chronic_then(rate))
    # KEEP: baseline 24, then 16 (-33%): continue, and 16 is not episodic: nothing indicates a stop.
    sessions += [f"KEEP,{d}" for d in s3]
    diary += _diary("KEEP", -28, 260, _chronic_then(16, baseline=24))
    # PEND: one session on D1+200, 60 days before as_of (D1+260): cycle 2 not reached, still active.
    sessions.append(f"PEND,{_d(200)}")
    diary += _diary("PEND", 172, 260, lambda i: 6 if (i - 200) % 28 < (20 if i < 200 else 16) else 0)
    status = _analyse(tmp_path, sessions, diary)
    assert tuple(status.loc["STOP", ["nice_state", "ehf_state", "stop_indicated"]]) == ("stop", "stop", True)
    assert tuple(status.loc["CONT", ["nice_state", "ehf_state", "episodic_now", "stop_indicated"]]) == (
        "continue",
        "continue",
        True,
        True,
    )
    assert tuple(status.loc["KEEP", ["nice_state", "ehf_state", "episodic_now", "stop_indicated"]]) == (
        "continue",
        "continue",
        False,
        False,
    )
    assert tuple(status.loc["EDGE", ["nice_state", "ehf_state"]]) == ("continue", "continue")
    assert tuple(status.loc["PEND", ["nice_state", "ehf_state", "treatment_state"]]) == ("pending", "pending", "active")


def test_rules_not_reached_when_off_treatment_and_not_assessable(tmp_path: Path) -> None:
    sessions = [
        f"GONE,{_d(0)}",
        f"NOBASE,{_d(0)}",
        f"NOBASE,{_d(84)}",
        f"GAP,{_d(0)}",
        f"GAP,{_d(84)}",
        f"GAP,{_d(168)}",
        f"LATE,{_d(300)}",
    ]
    diary = (
        _diary("GONE", -28, 60, _chronic_then(16))
        + _diary("NOBASE", 0, 170, 6)  # no baseline diary
        + _diary("GAP", -28, 250, _chronic_then(16), skip=lambda i: 84 <= i < 168)  # cycle 2 not evaluable
        + _diary("LATE", 272, 300 + 200, 6)  # keeps as_of late: GONE lapses
    )
    status = _analyse(tmp_path, sessions, diary)
    assert tuple(status.loc["GONE", ["treatment_state", "nice_state", "ehf_state"]]) == (
        "lapsed",
        "not reached",
        "not reached",
    )
    assert pd.isna(status.loc["GONE", "stop_indicated"])
    assert tuple(status.loc["NOBASE", ["nice_state", "ehf_state"]]) == ("not assessable", "not assessable")
    # GAP: cycle 2 complete but not evaluable -> NICE not assessable; EHF: cycles 1 and 3 valued, 2 not.
    assert tuple(status.loc["GAP", ["nice_state", "ehf_state"]]) == ("not assessable", "not assessable")


def test_episodic_conversion_run_broken_by_a_sparse_period(tmp_path: Path) -> None:
    # Chronic baseline (20/28), then 8 headache days per 28 (episodic); period 2 has 10 recorded days only.
    sparse = lambda i: 28 <= i < 56 and i % 28 >= 10  # noqa: E731
    status = _analyse(
        tmp_path,
        [f"A,{_d(0)}", f"A,{_d(84)}", f"A,{_d(168)}"],
        _diary("A", -28, 28 * 6 - 1, _chronic_then(8), skip=sparse),
    )
    row = status.loc["A"]
    # periods 1 (episodic), 2 (not evaluable: breaks), 3, 4, 5 -> first run of 3 ends with period 5.
    assert row["episodic_converted_on"] == pd.Timestamp(_d(28 * 5 - 1))
    assert row["episodic_now"] == True  # noqa: E712  periods 4, 5, 6
    # EHF threshold 10: 8 < 10 too.
    assert row["ehf_episodic_converted_on"] == pd.Timestamp(_d(28 * 5 - 1))
    assert row["stop_indicated"] == True  # noqa: E712


def test_episodic_needs_a_chronic_baseline_and_clears(tmp_path: Path) -> None:
    def low_then_high(i: int) -> int:
        if i < 0:
            return 6 if (i + 28) % 28 < 10 else 0  # baseline 10/28: never chronic
        return 6 if i % 28 < 5 else 0

    def episodic_then_back(i: int) -> int:
        if i < 0:
            return 6 if (i + 28) % 28 < 20 else 0
        return 6 if i % 28 < (5 if i < 28 * 4 else 16) else 0

    status = _analyse(
        tmp_path,
        [f"EPI,{_d(0)}", f"BACK,{_d(0)}", f"BACK,{_d(84)}"],
        _diary("EPI", -28, 28 * 6 - 1, low_then_high) + _diary("BACK", -28, 28 * 7 - 1, episodic_then_back),
    )
    assert status.loc["EPI", "chronic_at_baseline"] == False  # noqa: E712
    assert pd.isna(status.loc["EPI", "episodic_converted_on"]) and pd.isna(status.loc["EPI", "episodic_now"])
    back = status.loc["BACK"]
    assert back["episodic_converted_on"] == pd.Timestamp(_d(28 * 3 - 1))
    assert back["episodic_now"] == False  # noqa: E712  periods 5..7 at 16/28
    # EHF (<10): 5 < 10 as well, then back to 16.
    assert back["ehf_episodic_converted_on"] == pd.Timestamp(_d(28 * 3 - 1))
    assert back["ehf_episodic_now"] == False  # noqa: E712


def test_chronic_without_a_migraine_column(tmp_path: Path) -> None:
    diary = [
        line.replace(",false,,", ",,").replace(",true,,", ",,") for line in _diary("A", -28, 40, _chronic_then(16))
    ]
    status = _analyse(
        tmp_path, [f"A,{_d(0)}"], diary, diary_header="patient_id,date,headache_hours,severity,acute_medication"
    )
    row = status.loc["A"]
    assert pd.isna(row["baseline_mmd"])
    assert row["chronic_at_baseline"] == True  # noqa: E712


def test_chronic_needs_eight_migraine_days(tmp_path: Path) -> None:
    def hours(i: int) -> int:
        return 6 if (i + 28) % 28 < 20 else 0

    # 20 headache days, migraine on 7 (A) or 8 (B) of them.
    a = [f"A,{_d(i)},{hours(i)},{'true' if (i + 28) % 28 < 7 else 'false'},," for i in range(-28, 0)]
    b = [f"B,{_d(i)},{hours(i)},{'true' if (i + 28) % 28 < 8 else 'false'},," for i in range(-28, 0)]
    status = _analyse(tmp_path, [f"A,{_d(0)}", f"B,{_d(0)}"], a + b, ["A,3,", "B,2,"])
    assert status.loc["A", "chronic_at_baseline"] == False  # noqa: E712
    assert status.loc["A", "suitable_nice"] == False  # noqa: E712
    assert status.loc["B", "chronic_at_baseline"] == True  # noqa: E712
    assert status.loc["B", "suitable_nice"] == False  # noqa: E712  2 prior preventives
    assert status.loc["B", "baseline_mmd"] == 8.0


def test_sustained_response(tmp_path: Path) -> None:
    dates = [_d(0), _d(84), _d(168), _d(252)]
    rates = {"SUS": lambda i: 8, "ALT": lambda i: 8 if (i // 84) % 2 == 0 else 18}
    sessions, diary = [], []
    for pid, rate in rates.items():
        sessions += [f"{pid},{d}" for d in dates]
        diary += _diary(pid, -28, 330, _chronic_then(rate))
    sessions.append(f"ONE,{_d(0)}")
    diary += _diary("ONE", -28, 80, _chronic_then(8))
    status = _analyse(tmp_path, sessions, diary)
    assert status.loc["SUS", "sustained_responder_50"] == True  # noqa: E712
    assert status.loc["ALT", "sustained_responder_50"] == False  # noqa: E712
    assert status.loc["ALT", "ever_responder_50"] == True  # noqa: E712
    assert pd.isna(status.loc["ONE", "sustained_responder_50"])


# --- (3) the export --------------------------------------------------------------------------------


def test_export_writes_status_and_safety_with_every_parameter(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["export", "--data", str(PROJECT / "sample_data"), "--out", str(out), "--lapse-days", "150"]) == 0
    status = pd.read_csv(out / "patient_status.csv", dtype=str, keep_default_na=False)
    assert list(status.columns) == PATIENT_STATUS_COLUMNS
    safety = pd.read_csv(out / "safety.csv", dtype=str, keep_default_na=False)
    assert list(safety.columns) == SAFETY_COLUMNS
    assert safety["event"].iloc[-1] == "any"
    parameters = json.loads((out / "manifest.json").read_text())["parameters"]
    assert set(STATUS_PARAMETERS) <= set(parameters)
    assert parameters["lapse_days"] == 150


def test_no_safety_file_without_adverse_events(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["export", "--data", str(CONFORMANCE / "data"), "--out", str(out)]) == 0
    assert (out / "patient_status.csv").exists()
    assert not (out / "safety.csv").exists()
