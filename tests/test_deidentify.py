"""De-identification (``python -m analytics deidentify``): what goes out, what never does, and what it keeps.

The keyed functions are checked against a re-implementation with the standard library's ``hmac``;
a raw export with names, record numbers and identifier columns is run through the command and
every output byte is scanned for what must not leak; the per-cycle statistics of raw and
de-identified data are compared number for number; and a hypothesis fuzz test throws hostile ids
and dates at it.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import re
import stat
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.cli import main
from analytics.definitions.config import AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.ingest.load import load_dataset
from analytics.ingest.schemas import PATIENT_ID_PATTERN
from analytics.privacy import deidentify as deid

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
PSEUDONYM = re.compile(PATIENT_ID_PATTERN)


def _csv(rows: list[list[str]]) -> str:
    """CSV text with every field quoted, as a clinic's export tool may write it."""
    return "".join(",".join('"' + v.replace('"', '""') + '"' for v in row) + "\n" for row in rows)


def _rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"), newline="")))


# --- the keyed functions ---------------------------------------------------------------------------


def test_pseudonym_is_hmac_sha256_of_the_stripped_id_shortened() -> None:
    expected = "P" + hmac.new(KEY, b"id:Smith, John", hashlib.sha256).hexdigest()[:16]
    assert deid.pseudonym(KEY, "Smith, John") == expected
    assert deid.pseudonym(KEY, "  Smith, John\t") == expected  # surrounding whitespace is not the id
    assert PSEUDONYM.fullmatch(expected)
    assert deid.pseudonym(OTHER_KEY, "Smith, John") != expected
    assert deid.pseudonym(KEY, "Smith, Joan") != expected
    assert deid.pseudonym(KEY, "   ") == ""  # missing stays missing: the loader still rejects the row


def test_shift_is_1_to_364_days_from_a_separate_hmac() -> None:
    digest = hmac.new(KEY, b"shift:MRN0042", hashlib.sha256).digest()
    assert deid.shift_days(KEY, "MRN0042") == 1 + int.from_bytes(digest[:8], "big") % 364
    shifts = np.array([deid.shift_days(KEY, f"MRN{i:05d}") for i in range(3000)])
    assert shifts.min() >= 1 and shifts.max() <= 364
    # Uniform on 1..364: every offset occurs, and the mean is near 182.5 (sd of the mean ~1.9).
    assert len(set(shifts)) == 364
    assert abs(shifts.mean() - 182.5) < 8


# --- the command on a raw export --------------------------------------------------------------------

HYPERLINK = '=HYPERLINK("http://x","y")'
RAW_IDS = ["Smith, John", "MRN-000123", HYPERLINK, "Ó'Brien \"Dee\""]


def _raw_export(folder: Path) -> Path:
    """A small raw export: names and record numbers as ids, identifier and free-text columns."""
    folder.mkdir()
    sessions = [["patient_id", "session_date", "total_units", "Surname", "MRN", "Room"]]
    diary = [["patient_id", "date", "headache_hours", "migraine", "Phone"]]
    patients = [["patient_id", "sex", "age_band", "discontinued_on", "E-mail", "Date of Birth", "referrer"]]
    adverse = [["patient_id", "session_date", "event", "onset_date", "resolved_date"]]
    questionnaires = [["patient_id", "date", "instrument", "score"]]
    ages = ["92", "90-94", "95+", "40-49"]
    for i, pid in enumerate(RAW_IDS):
        first = date(2024, 3, 1) + timedelta(days=10 * i)
        for k in range(2):
            session = (first + timedelta(days=90 * k)).isoformat()
            sessions.append([pid, session, "155", f"Surname{i}", f"MRN-000{i}", "=cmd|' /C calc'!A0"])
        for d in range(-28, 150, 3):
            diary.append([pid, (first + timedelta(days=d)).isoformat(), str((i + d) % 9), "yes", f"07700 900{i:03d}"])
        patients.append([pid, "F", ages[i], (first + timedelta(days=200)).isoformat() if i == 1 else "",
                         f"p{i}@example.org", "1931-02-03", "Dr Who"])
        adverse.append([pid, first.isoformat(), "neck_pain", (first + timedelta(days=2)).isoformat(),
                        (first + timedelta(days=9)).isoformat()])
        questionnaires.append([pid, first.isoformat(), "HIT-6", "64"])
    diary.append([RAW_IDS[0], "2024/05/01", "5", "no", ""])  # an invalid date: withheld, still rejected
    (folder / "sessions.csv").write_text("\ufeff" + _csv(sessions), encoding="utf-8")  # UTF-8 with BOM
    (folder / "diary.csv").write_text(_csv(diary) + '"MRN-000123","2024-06-01"\n', encoding="utf-8")  # ragged row
    (folder / "patients.csv").write_text(_csv(patients), encoding="utf-8")
    (folder / "adverse_events.csv").write_text(_csv(adverse), encoding="utf-8")
    (folder / "questionnaires.csv").write_text(_csv(questionnaires), encoding="utf-8")
    (folder / "letters_to_Smith.txt").write_text("not a data file", encoding="utf-8")
    return folder


@pytest.fixture(name="deidentified")
def deidentified_fixture(tmp_path: Path) -> dict[str, object]:
    raw = _raw_export(tmp_path / "raw")
    out, key_file = tmp_path / "out", tmp_path / "secret" / "deid.key"
    key_file.parent.mkdir()
    argv = ["deidentify", "--in", str(raw), "--out", str(out), "--key-file", str(key_file), "--keep", "referrer"]
    status = main(argv)
    return {"status": status, "raw": raw, "out": out, "key_file": key_file,
            "key": bytes.fromhex(key_file.read_text().strip()), "tmp": tmp_path}


def test_key_file_is_created_secret(deidentified: dict) -> None:
    key_file: Path = deidentified["key_file"]
    assert deidentified["status"] == 0
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}\n", key_file.read_text())


def test_identifier_and_free_columns_are_dropped_and_named(deidentified: dict) -> None:
    out: Path = deidentified["out"]
    assert sorted(p.name for p in out.iterdir()) == [
        "adverse_events.csv", "deidentify_report.json", "diary.csv", "patients.csv", "questionnaires.csv",
        "sessions.csv",
    ]
    assert (out / "sessions.csv").read_text().splitlines()[0] == "patient_id,session_date,total_units"
    assert (out / "patients.csv").read_text().splitlines()[0] == "patient_id,sex,age_band,discontinued_on,referrer"
    report = json.loads((out / "deidentify_report.json").read_text())
    assert report["files"]["sessions.csv"]["columns_dropped"] == {
        "Surname": "direct identifier", "MRN": "direct identifier", "Room": "not in the data contract",
    }
    assert report["files"]["patients.csv"]["columns_dropped"] == {
        "E-mail": "direct identifier", "Date of Birth": "direct identifier",
    }
    assert report["files"]["diary.csv"]["columns_dropped"] == {"Phone": "direct identifier"}
    assert report["columns_kept_on_request"] == ["referrer"]


def test_rows_are_counted_in_and_out(deidentified: dict) -> None:
    report = json.loads((deidentified["out"] / "deidentify_report.json").read_text())
    files = report["files"]
    assert report["patients"] == 4
    assert (files["sessions.csv"]["rows_in"], files["sessions.csv"]["rows_out"]) == (8, 8)
    # 4 patients x 60 days + the invalid-date row + the ragged row (not written, its line named).
    diary = files["diary.csv"]
    assert (diary["rows_in"], diary["rows_out"], diary["unreadable_lines"]) == (242, 241, [243])
    assert diary["invalid_dates_withheld"] == 1 and diary["dates_shifted"] == 240
    assert files["patients.csv"]["ages_top_coded"] == 3
    assert len(_rows((deidentified["out"] / "diary.csv").read_bytes())) == 241


def test_pseudonyms_and_date_shifts_are_one_per_patient_across_files(deidentified: dict) -> None:
    raw, out, key = deidentified["raw"], deidentified["out"], deidentified["key"]
    date_columns = {"sessions": ["session_date"], "diary": ["date"], "patients": ["discontinued_on"],
                    "adverse_events": ["session_date", "onset_date", "resolved_date"], "questionnaires": ["date"]}
    seen: dict[str, set[int]] = {pid: set() for pid in RAW_IDS}
    for stem, columns in date_columns.items():
        before = _rows((raw / f"{stem}.csv").read_bytes().removeprefix(b"\xef\xbb\xbf"))
        after = _rows((out / f"{stem}.csv").read_bytes())
        for b, a in zip(before, after, strict=False):  # rows keep their order
            assert a["patient_id"] == deid.pseudonym(key, b["patient_id"])
            assert PSEUDONYM.fullmatch(a["patient_id"])
            for column in columns:
                if not b[column] or "/" in b[column]:
                    continue
                shift = (date.fromisoformat(b[column]) - date.fromisoformat(a[column])).days
                seen[b["patient_id"]].add(shift)
    for pid, shifts in seen.items():
        assert shifts == {deid.shift_days(key, pid)}, pid  # one offset per patient, in every file


def test_ages_over_89_become_90_plus_and_invalid_dates_are_withheld(deidentified: dict) -> None:
    out = deidentified["out"]
    assert [r["age_band"] for r in _rows((out / "patients.csv").read_bytes())] == ["90+", "90+", "90+", "40-49"]
    withheld = [r for r in _rows((out / "diary.csv").read_bytes()) if r["date"] == deid.INVALID_DATE_MARKER]
    assert len(withheld) == 1
    dataset = load_dataset(out)  # the dashboard accepts the output; the bad date is still rejected
    rejected = dataset.rejected
    assert list(rejected["reason"]) == ["invalid date"]
    assert list(rejected["value"]) == [deid.INVALID_DATE_MARKER]
    for f in dataset.files:
        assert f.rows_read == f.rows_accepted + f.rows_rejected


def test_no_raw_id_key_or_identifier_reaches_the_output(deidentified: dict) -> None:
    out, key = deidentified["out"], deidentified["key"]
    every_byte = b"".join(p.read_bytes() for p in sorted(out.iterdir()))
    secrets = [key.hex().encode(), key, *[pid.encode() for pid in RAW_IDS], b"Smith", b"MRN-000", b"HYPERLINK",
               b"example.org", b"07700", b"1931-02-03", b"2024/05/01", b"calc", b"Surname0"]
    for secret in secrets:
        assert secret not in every_byte, secret
    assert not any(p.name != "deidentify_report.json" and p.suffix != ".csv" for p in out.iterdir())
    assert "letters_to_Smith" not in (out / "deidentify_report.json").read_text()


def test_same_key_same_bytes_other_key_other_pseudonyms_and_shifts(deidentified: dict) -> None:
    tmp, raw, out = deidentified["tmp"], deidentified["raw"], deidentified["out"]
    again = tmp / "again"
    assert main(["deidentify", "--in", str(raw), "--out", str(again), "--key-file", str(deidentified["key_file"]),
                 "--keep", "referrer"]) == 0
    for p in out.iterdir():
        assert (again / p.name).read_bytes() == p.read_bytes(), p.name
    other = deid.deidentify(raw, OTHER_KEY, ["referrer"])
    first = _rows((out / "sessions.csv").read_bytes())
    second = _rows(other.files["sessions.csv"])
    assert all(a["patient_id"] != b["patient_id"] for a, b in zip(first, second, strict=True))
    key = deidentified["key"]
    assert [deid.shift_days(key, p) for p in RAW_IDS] != [deid.shift_days(OTHER_KEY, p) for p in RAW_IDS]


def test_an_existing_key_readable_by_others_is_used_with_a_warning(tmp_path: Path, capsys) -> None:
    raw = _raw_export(tmp_path / "raw")
    key_file = tmp_path / "shared.key"
    key_file.write_text(KEY.hex() + "\n")
    os.chmod(key_file, 0o644)
    assert main(["deidentify", "--in", str(raw), "--out", str(tmp_path / "out"), "--key-file", str(key_file)]) == 0
    assert "can be read by other users (mode 0644)" in capsys.readouterr().err
    sessions = _rows((tmp_path / "out" / "sessions.csv").read_bytes())
    assert sessions[0]["patient_id"] == deid.pseudonym(KEY, RAW_IDS[0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("no_folder", "not a folder"),
        ("no_diary", "diary.csv: required file is missing"),
        ("keep_identifier", "--keep Surname: 'Surname' is a direct identifier"),
        ("no_patient_id", "sessions.csv: required column 'patient_id' is missing"),
        ("bad_key", "does not hold a hex key"),
        ("out_is_in", "--out must differ from --in"),
        ("key_in_out", "--key-file must be outside --out"),
        ("stale_output", "holds files this run would not replace (old.csv)"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_creates_no_key(tmp_path: Path, capsys, change: str, message: str) -> None:
    raw = _raw_export(tmp_path / "raw")
    out, key_file = tmp_path / "out", tmp_path / "new.key"
    argv = ["deidentify", "--in", str(raw), "--out", str(out), "--key-file", str(key_file)]
    if change == "no_folder":
        argv[2] = str(tmp_path / "missing")
    elif change == "no_diary":
        (raw / "diary.csv").unlink()
    elif change == "keep_identifier":
        argv += ["--keep", "Surname"]
    elif change == "no_patient_id":
        (raw / "sessions.csv").write_text("Patient ID,session_date\nA,2024-01-01\n")
    elif change == "bad_key":
        key_file.write_text("not a key\n")
    elif change == "out_is_in":
        argv[4] = str(raw)
    elif change == "key_in_out":
        argv[6] = str(out / "deid.key")
    elif change == "stale_output":
        out.mkdir()
        (out / "old.csv").write_text("x\n")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1]
    assert change == "bad_key" or not key_file.exists()


# --- statistics survive de-identification -------------------------------------------------------------


def _complete_cycles_export(folder: Path, n_patients: int = 14) -> Path:
    """Patients with 3 sessions 84-92 days apart and diaries through the end of cycle 3.

    Every cycle is complete and sessions are at least 84 days apart, so each patient had the time
    to complete their cycles by their own last diary day: ``as_of`` (the latest date of anyone)
    may move with the per-patient shifts without changing any status or ITT denominator.
    """
    folder.mkdir()
    rng = np.random.default_rng(7)
    sessions = [["patient_id", "session_date", "total_units"]]
    diary = [["patient_id", "date", "headache_hours", "migraine"]]
    for i in range(n_patients):
        pid = f"MRN{i:04d}"
        d1 = date(2023, 1, 5) + timedelta(days=11 * i)
        starts = [d1, d1 + timedelta(days=84 + i % 9), None]
        starts[2] = starts[1] + timedelta(days=84 + (2 * i) % 9)
        sessions += [[pid, s.isoformat(), "155"] for s in starts]
        end = starts[2] + timedelta(days=83)
        base_rate = rng.uniform(0.4, 0.8)
        effect = rng.uniform(0.0, 0.8)
        for d in range((end - d1).days + 29):
            day = d1 + timedelta(days=d - 28)
            if rng.random() < 0.12:  # unrecorded days
                continue
            rate = base_rate * (1 - effect if day >= d1 else 1)
            migraine = "true" if rng.random() < 0.5 else "f"
            diary.append([pid, day.isoformat(), str(int(rng.random() < rate) * 6), migraine])
    (folder / "sessions.csv").write_text(_csv(sessions), encoding="utf-8")
    (folder / "diary.csv").write_text(_csv(diary), encoding="utf-8")
    return folder


def test_per_cycle_statistics_are_unchanged_by_deidentification(tmp_path: Path) -> None:
    raw = _complete_cycles_export(tmp_path / "raw")
    result = deid.deidentify(raw, KEY)
    before = analyse(load_dataset(raw), AnalysisConfig())
    after = analyse(load_dataset({n: b for n, b in result.files.items() if n.endswith(".csv")}), AnalysisConfig())
    assert set(before.patient_cycles["status"]) == {"baseline", "complete"}
    assert before.as_of != after.as_of  # the cut-off moves, yet nothing below depends on it here

    pd.testing.assert_frame_equal(before.cohort_cycles, after.cohort_cycles)

    raw_ids = sorted(before.patient_cycles["patient_id"].unique())
    pseudonyms = {pid: deid.pseudonym(KEY, pid) for pid in raw_ids}
    shifts = {pid: pd.Timedelta(days=deid.shift_days(KEY, pid)) for pid in raw_ids}
    expected = before.patient_cycles.copy()
    for column in ("start_date", "end_date"):
        expected[column] = expected[column] - expected["patient_id"].map(shifts)
    expected["patient_id"] = expected["patient_id"].map(pseudonyms)
    key = ["patient_id", "cycle"]
    actual = after.patient_cycles.sort_values(key).reset_index(drop=True)
    expected = expected.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(actual, expected, check_dtype=False)


def test_on_realistic_data_every_complete_cycle_is_unchanged(tmp_path: Path) -> None:
    # The synthetic cohort has ongoing cycles at the cut-off: those may change status when as_of
    # moves (the documented caveat); every cycle complete in both runs is identical.
    from analytics.synth import generate_cohort, write_cohort

    raw = tmp_path / "raw"
    tables = generate_cohort(60, seed=3)
    write_cohort({k: v for k, v in tables.items() if k in ("sessions", "diary")}, raw)
    result = deid.deidentify(raw, KEY)
    before = analyse(load_dataset(raw)).patient_cycles
    after = analyse(load_dataset({n: b for n, b in result.files.items() if n.endswith(".csv")})).patient_cycles
    before = before.assign(patient_id=before["patient_id"].map(lambda p: deid.pseudonym(KEY, p)))
    merged = before.merge(after, on=["patient_id", "cycle"], suffixes=("_raw", "_deid"))
    assert len(merged) == len(before) == len(after)
    complete = merged[(merged["status_raw"] != "ongoing") & (merged["status_deid"] != "ongoing")]
    assert len(complete) > 0.8 * len(merged)
    for column in ("window_days", "recorded_days", "headache_days", "mhd", "mhd_change", "responder_50",
                   "cumulative_responder_50"):
        pd.testing.assert_series_equal(complete[f"{column}_raw"], complete[f"{column}_deid"], check_names=False)


# --- fuzz -------------------------------------------------------------------------------------------

IDS = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=16),
    st.sampled_from(['=1+1', '+cmd', '-2', '@SUM(A1)', 'Smith, "J"', ' a ', '\t\r\n', '', 'ünï cødé', '1,2']),
)
DATES = st.one_of(
    st.dates(date(1900, 1, 1), date(2199, 12, 31)).map(date.isoformat),
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=11),
)


def _fuzz_source(sessions: list, diary_rows: list) -> tuple[dict[str, bytes], list, list]:
    ids = [pid for pid, _ in sessions]
    diary = [(ids[i % len(ids)], d, hours) for i, d, hours in diary_rows]
    source = {
        "sessions.csv": _csv([["patient_id", "session_date"], *[[p, d] for p, d in sessions]]).encode(),
        "diary.csv": _csv([["patient_id", "date", "headache_hours"], *[list(r) for r in diary]]).encode(),
    }
    return source, sessions, diary


SESSIONS = st.lists(st.tuples(IDS, DATES), min_size=1, max_size=12)
DIARY = st.lists(st.tuples(st.integers(0, 11), DATES, st.sampled_from(["0", "5", "-1", "=1", ""])), max_size=15)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SESSIONS, DIARY)
def test_fuzz_deidentify_keeps_every_row_and_never_crashes(sessions: list, diary_rows: list) -> None:
    source, sessions, diary = _fuzz_source(sessions, diary_rows)
    result = deid.deidentify(source, KEY)
    assert [r.rows_in for r in result.results] == [len(sessions), len(diary)]
    assert [r.rows_out for r in result.results] == [len(sessions), len(diary)]
    for name, raw in (("sessions.csv", sessions), ("diary.csv", diary)):
        rows = _rows(result.files[name])
        assert len(rows) == len(raw)
        for row, raw_row in zip(rows, raw, strict=True):
            # Stable and keyed; valid under the SPEC pattern unless the raw id was blank.
            assert row["patient_id"] == deid.pseudonym(KEY, raw_row[0])
            assert PSEUDONYM.fullmatch(row["patient_id"]) or not raw_row[0].strip()
            date_column = "session_date" if name == "sessions.csv" else "date"
            assert row[date_column] == "" or row[date_column] == deid.INVALID_DATE_MARKER or (
                date.fromisoformat(raw_row[1].strip()) - date.fromisoformat(row[date_column])
            ).days == deid.shift_days(KEY, raw_row[0])
    assert deid.deidentify(source, KEY).files == result.files  # same key, same bytes


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SESSIONS, DIARY)
def test_fuzz_the_loader_takes_every_deidentified_row(sessions: list, diary_rows: list) -> None:
    # Slower (the loader runs each time), so fewer examples: the output always loads, row for row.
    source, sessions, diary = _fuzz_source(sessions, diary_rows)
    result = deid.deidentify(source, KEY)
    dataset = load_dataset({n: b for n, b in result.files.items() if n.endswith(".csv")})
    assert [f.rows_read for f in dataset.files] == [len(sessions), len(diary)]
    for f in dataset.files:
        assert f.rows_read == f.rows_accepted + f.rows_rejected
