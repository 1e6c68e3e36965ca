"""Property tests (hypothesis): order invariance, rates inside their Wilson intervals, row reconciliation.

Datasets are drawn small (1-4 patients, up to 4 sessions, a few hundred diary days) and messy:
duplicates spelled differently, conflicting days, invalid values, blank lines and ragged rows.
Bulk diary rows come from a ``random.Random`` seeded by hypothesis; the structure is drawn directly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from statsmodels.stats.proportion import proportion_confint

from analytics.definitions.config import AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.ingest.load import load_dataset
from analytics.statistics.stats import wilson_interval

# Modest example counts: each example loads and analyses one or two datasets.
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

SESSION_COLUMNS = ["patient_id", "session_date", "total_units", "injector_id"]
DIARY_COLUMNS = ["patient_id", "date", "headache_hours", "migraine", "severity", "acute_medication"]
HOURS = ["0", "2", "3.5", "4", "4.0", "8", "24"]
TRUE_WORDS = ["yes", "Y", "true", "1", "T"]
FALSE_WORDS = ["no", "n", "FALSE", "0", "f"]


@dataclass
class Cohort:
    """Rows of sessions.csv and diary.csv as lists of cells, and the analysis cut-off."""

    sessions: list[list[str]]
    diary: list[list[str]]
    as_of: date | None


def respell(row: list[str], rng: random.Random) -> list[str]:
    """The same diary row after parsing, written differently (a duplicate, not a conflict)."""

    def flag(cell: str) -> str:
        if cell in TRUE_WORDS:
            return rng.choice(TRUE_WORDS)
        if cell in FALSE_WORDS:
            return rng.choice(FALSE_WORDS)
        return cell

    pid, day, hours, migraine, severity, acute = row
    return [f" {pid}", day, f"{float(hours)} ", flag(migraine), severity, flag(acute)]


@st.composite
def cohorts(draw: st.DrawFn) -> Cohort:
    # Hundreds of diary days come from a seeded generator: drawing each from hypothesis would make
    # every example huge. The structure (patients, sessions, gaps, completeness, mess) is drawn.
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    n_patients = draw(st.integers(1, 4))
    sessions: list[list[str]] = []
    diary: list[list[str]] = []
    last_day = date(2024, 1, 1)
    for p in range(n_patients):
        pid = f"P{p}"
        d = date(2024, 1, 1) + timedelta(days=draw(st.integers(0, 60)))
        first = d
        for _ in range(draw(st.integers(1, 4))):
            sessions.append([pid, d.isoformat(), rng.choice(["155", "195", ""]), rng.choice(["I1", "I2"])])
            last = d
            d += timedelta(days=draw(st.sampled_from([20, 27, 28, 60, 84, 100, 130])))
        recorded = draw(st.sampled_from([0.3, 0.72, 0.95, 1.0]))
        baseline_level = rng.random()
        for i in range(-35, (last - first).days + 40):
            if rng.random() >= recorded:
                continue
            day = first + timedelta(days=i)
            headache = rng.random() < (baseline_level if i < 0 else baseline_level * rng.random())
            hours = rng.choice(["4", "4.0", "8", "24"]) if headache else rng.choice(["0", "2", "3.5"])
            migraine = rng.choice([*TRUE_WORDS, *FALSE_WORDS, ""]) if headache else rng.choice([*FALSE_WORDS, ""])
            acute = rng.choice([*TRUE_WORDS, *FALSE_WORDS, ""])
            diary.append([pid, day.isoformat(), hours, migraine, rng.choice(["", "0", "1", "2", "3"]), acute])
            last_day = max(last_day, day)
    # Mess: respelled duplicates, conflicting days, invalid rows, duplicate sessions.
    for row in rng.sample(diary, k=min(len(diary), draw(st.integers(0, 5)))):
        diary.append(respell(row, rng))
    for row in rng.sample(diary, k=min(len(diary), draw(st.integers(0, 3)))):
        diary.append([*row[:2], "12" if row[2] != "12" else "1", *row[3:]])
    for _ in range(draw(st.integers(0, 3))):
        pid = f"P{rng.randrange(n_patients)}"
        diary.append(
            rng.choice(
                [
                    [pid, "2024-02-30", "4", "", "", ""],
                    [pid, "2024-03-01", "30", "", "", ""],
                    [pid, "2024-03-02", "2", "maybe", "", ""],
                    [pid, "2024-03-03", "2", "", "7", ""],
                    ["bad id", "2024-03-04", "1", "", "", ""],
                ]
            )
        )
    for row in rng.sample(sessions, k=min(len(sessions), draw(st.integers(0, 2)))):
        sessions.append([row[0], row[1], rng.choice(["155", "0"]), "I3"])
    as_of = draw(st.one_of(st.none(), st.just(last_day - timedelta(days=draw(st.integers(0, 150))))))
    return Cohort(sessions, diary, as_of)


def render(columns: list[str], rows: list[list[str]], order: list[int] | None = None) -> str:
    order = order if order is not None else list(range(len(columns)))
    lines = [",".join(columns[i] for i in order)] + [",".join(row[i] for i in order) for row in rows]
    return "\n".join(lines) + "\n"


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def run(folder: Path, as_of: date | None):
    dataset = load_dataset(folder)
    return dataset, analyse(dataset, AnalysisConfig(as_of=as_of))


def canonical(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


@SETTINGS
@given(cohort=cohorts(), data=st.data())
def test_shuffling_rows_and_columns_never_changes_the_outputs(tmp_path_factory, cohort: Cohort, data) -> None:
    rng = random.Random(data.draw(st.integers(0, 2**32 - 1)))
    shuffled_sessions, shuffled_diary = cohort.sessions[:], cohort.diary[:]
    rng.shuffle(shuffled_sessions)
    rng.shuffle(shuffled_diary)
    session_order = rng.sample(range(len(SESSION_COLUMNS)), len(SESSION_COLUMNS))
    diary_order = rng.sample(range(len(DIARY_COLUMNS)), len(DIARY_COLUMNS))
    root = tmp_path_factory.mktemp("shuffle")
    original = write(
        root / "a",
        {
            "sessions.csv": render(SESSION_COLUMNS, cohort.sessions),
            "diary.csv": render(DIARY_COLUMNS, cohort.diary),
        },
    )
    shuffled = write(
        root / "b",
        {
            "sessions.csv": render(SESSION_COLUMNS, shuffled_sessions, session_order),
            "diary.csv": render(DIARY_COLUMNS, shuffled_diary, diary_order),
        },
    )
    ds_a, a = run(original, cohort.as_of)
    ds_b, b = run(shuffled, cohort.as_of)
    assert a.as_of == b.as_of
    pd.testing.assert_frame_equal(
        canonical(a.patient_cycles, ["patient_id", "cycle"]), canonical(b.patient_cycles, ["patient_id", "cycle"])
    )
    pd.testing.assert_frame_equal(a.cohort_cycles, b.cohort_cycles)
    # The same rows are rejected for the same reasons (their line numbers move with the rows).
    reasons = ["file", "patient_id", "reason"]
    pd.testing.assert_frame_equal(
        canonical(ds_a.rejected[reasons], reasons), canonical(ds_b.rejected[reasons], reasons)
    )


RATE_PARTS = {
    "responder_50": ("responder_50_n", "n_evaluable"),
    "cum_responder_50_completers": ("cum_responder_50_completers_n", "cum_responder_50_completers_denom"),
    "cum_responder_50_itt": ("cum_responder_50_itt_n", "cum_responder_50_itt_denom"),
    "new_responder_50": ("new_responder_50_n", "prior_nonresponder_denom"),
}


@SETTINGS
@given(cohort=cohorts())
def test_every_rate_lies_in_0_1_and_within_its_wilson_interval(tmp_path_factory, cohort: Cohort) -> None:
    folder = write(
        tmp_path_factory.mktemp("rates") / "d",
        {
            "sessions.csv": render(SESSION_COLUMNS, cohort.sessions),
            "diary.csv": render(DIARY_COLUMNS, cohort.diary),
        },
    )
    _, analysis = run(folder, cohort.as_of)
    table = analysis.cohort_cycles[analysis.cohort_cycles["cycle"] >= 1]
    for prefix, (num, den) in RATE_PARTS.items():
        for _, row in table.iterrows():
            k, n, rate = row[num], row[den], row[f"{prefix}_rate"]
            assert 0 <= k <= n
            low_col, high_col = f"{prefix}_ci_low", f"{prefix}_ci_high"
            if n == 0:
                assert pd.isna(rate)
                if low_col in row:
                    assert pd.isna(row[low_col]) and pd.isna(row[high_col])
                continue
            assert rate == pytest.approx(k / n)
            assert 0 <= rate <= 1
            if low_col in row:
                assert 0 <= row[low_col] <= rate <= row[high_col] <= 1, (prefix, row["cycle"], k, n)
    # Counts nest as the definitions say.
    assert (table["n_evaluable"] <= table["n_treated"]).all()
    assert (table["cum_responder_50_completers_denom"] <= table["n_treated"]).all()
    itt = table["cum_responder_50_itt_denom"].to_numpy(dtype=float)
    assert (np.diff(itt) <= 0).all(), "who had the time for k + 1 cycles had it for k"
    treated = table["n_treated"].to_numpy(dtype=float)
    assert (np.diff(treated) <= 0).all()
    # Per patient and cycle: fractions and counts stay in range; cumulative response never reverts.
    cycles = analysis.patient_cycles
    assert ((cycles["completeness"] >= 0) & (cycles["completeness"] <= 1)).all()
    assert (cycles["recorded_days"] <= cycles["window_days"]).all()
    assert (cycles["headache_days"] <= cycles["recorded_days"]).all()
    ever = cycles.assign(c=cycles["cumulative_responder_50"].fillna(False).astype(int)).groupby("patient_id")["c"]
    assert (ever.diff().fillna(0) >= 0).all()


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 10_000), data=st.data())
def test_wilson_holds_its_rate_and_matches_statsmodels(n: int, data) -> None:
    k = data.draw(st.integers(0, n))
    low, high = wilson_interval(k, n)
    assert 0 <= low <= k / n <= high <= 1
    ref = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert (float(low), float(high)) == pytest.approx(ref, abs=1e-12)


# --- reconciliation on random messy rows -----------------------------------------------------

CELLS = {
    "patient_id": ["P1", "P2", " P3 ", "", "bad id", "P-4_x"],
    "session_date": ["2024-03-01", "2024-05-24", "2024/05/01", "2024-02-30", "", " 2024-03-01 "],
    "date": ["2024-02-01", "2024-02-02", "2024-13-01", "", "2024-02-29"],
    "total_units": ["155", "0", "400", "400.5", "abc", ""],
    "injector_id": ["I1", '"I, 2"', '"multi\nline"', ""],
    "headache_hours": ["0", "4", "24", "25", "-1", "x", ""],
    "migraine": ["yes", "NO", "t", "maybe", ""],
    "severity": ["0", "3", "4", "1.5", ""],
    "acute_medication": ["1", "0", "Y", "2", ""],
    "sex": ["F", "M", "Q", ""],
    "muscle": ["frontalis", "trapezius", "neck", ""],
    "units": ["5", "0", "abc", ""],
    "event": ["neck_pain", "rash", ""],
    "instrument": ["HIT-6", "MIDAS", "PHQ-9", ""],
    "score": ["50", "36", "300", "abc", ""],
}
FILE_COLUMNS = {
    "sessions.csv": ["patient_id", "session_date", "total_units", "injector_id"],
    "diary.csv": ["patient_id", "date", "headache_hours", "migraine", "severity", "acute_medication"],
    "patients.csv": ["patient_id", "sex"],
    "injections.csv": ["patient_id", "session_date", "muscle", "units"],
    "adverse_events.csv": ["patient_id", "session_date", "event"],
    "questionnaires.csv": ["patient_id", "date", "instrument", "score"],
}


@st.composite
def messy_file(draw: st.DrawFn, columns: list[str]) -> tuple[str, list[int]]:
    """A CSV text and the physical line numbers of its data records (blank lines excluded)."""
    rng = draw(st.randoms(use_true_random=False))
    text = ",".join(columns) + "\n"
    line = 2
    record_lines = []
    for _ in range(draw(st.integers(0, 25))):
        kind = rng.random()
        if kind < 0.1:
            record = rng.choice(["", "   "])  # a blank line: not a row
        else:
            cells = [rng.choice(CELLS[c]) for c in columns]
            if kind < 0.2:  # ragged: a field too few or too many, never an empty first field
                cells = [rng.choice(["P1", "P9"])] + (cells[1:-1] if rng.random() < 0.5 else [*cells[1:], "extra"])
            record = ",".join(cells)
            if not record.strip() or record.strip('",') == "":
                record = "P1" + record  # keep it a data record
            record_lines.append(line)
        text += record + "\n"
        line += record.count("\n") + 1
    return text, record_lines


@SETTINGS
@given(data=st.data())
def test_rows_read_equal_accepted_plus_rejected_on_random_messy_files(tmp_path_factory, data) -> None:
    files = {}
    expected_lines = {}
    for name, columns in FILE_COLUMNS.items():
        if name in ("sessions.csv", "diary.csv") or data.draw(st.booleans()):
            files[name], expected_lines[name] = data.draw(messy_file(columns))
    folder = write(tmp_path_factory.mktemp("reconcile") / "d", files)
    dataset = load_dataset(folder)
    reports = {f.file: f for f in dataset.files}
    assert set(reports) == set(files)
    for name, report in reports.items():
        accepted = dataset.tables[name.removesuffix(".csv")]["line"].tolist()
        rejected = dataset.rejected.loc[dataset.rejected["file"] == name, "line"].tolist()
        assert report.rows_read == report.rows_accepted + report.rows_rejected
        assert (report.rows_accepted, report.rows_rejected) == (len(accepted), len(rejected))
        assert report.rows_read == len(expected_lines[name]), name
        # Every data record is accounted for exactly once, at its physical line.
        assert sorted(accepted + rejected) == expected_lines[name], name
