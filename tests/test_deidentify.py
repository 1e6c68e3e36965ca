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
RAW_IDS = ["Smith, John", "MRN-000123", HYPERLINK, 'Ó\'Brien "Dee"']


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
        patients.append(
            [
                pid,
                "F",
                ages[i],
                (first + timedelta(days=200)).isoformat() if i == 1 else "",
                f"p{i}@example.org",
                "1931-02-03",
                "Dr Who",
            ]
        )
        adverse.append(
            [
                pid,
                first.isoformat(),
                "neck_pain",
                (first + timedelta(days=2)).isoformat(),
                (first + timedelta(days=9)).isoformat(),
            ]
        )
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
    return {
        "status": status,
        "raw": raw,
        "out": out,
        "key_file": key_file,
        "key": bytes.fromhex(key_file.read_text().strip()),
        "tmp": tmp_path,
    }


def test_key_file_is_created_secret(deidentified: dict) -> None:
    key_file: Path = deidentified["key_file"]
    assert deidentified["status"] == 0
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}\n", key_file.read_text())


def test_identifier_and_free_columns_are_dropped_and_named(deidentified: dict) -> None:
    out: Path = deidentified["out"]
    assert sorted(p.name for p in out.iterdir()) == [
        "adverse_events.csv",
        "deidentify_report.json",
        "diary.csv",
        "patients.csv",
        "questionnaires.csv",
        "sessions.csv",
    ]
    assert (out / "sessions.csv").read_text().splitlines()[0] == "patient_id,session_date,total_units"
    assert (out / "patients.csv").read_text().splitlines()[0] == "patient_id,sex,age_band,discontinued_on,referrer"
    report = json.loads((out / "deidentify_report.json").read_text())
    # Dropped columns by position in the raw file and category, never by header text.
    assert report["files"]["sessions.csv"]["columns_dropped"] == [
        "column 4: direct identifier (surname)",
        "column 5: direct identifier (mrn)",
        "column 6: not in the data contract",
    ]
    assert report["files"]["patients.csv"]["columns_dropped"] == [
        "column 5: direct identifier (email)",
        "column 6: direct identifier (dateofbirth)",
    ]
    assert report["files"]["diary.csv"]["columns_dropped"] == ["column 5: direct identifier (phone)"]
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
    date_columns = {
        "sessions": ["session_date"],
        "diary": ["date"],
        "patients": ["discontinued_on"],
        "adverse_events": ["session_date", "onset_date", "resolved_date"],
        "questionnaires": ["date"],
    }
    for stem, columns in date_columns.items():
        before = _rows((raw / f"{stem}.csv").read_bytes().removeprefix(b"\xef\xbb\xbf"))
        after = _rows((out / f"{stem}.csv").read_bytes())
        # Every written row is its raw row with the pseudonym and every date moved back by the
        # patient's one offset, the same in every file (rows are reordered: compared as multisets).
        expected = []
        for b in before:
            if stem == "diary" and b["headache_hours"] is None:
                continue  # the ragged row is not written
            shift = timedelta(days=deid.shift_days(key, b["patient_id"]))
            moved = [
                ""
                if not b[c]
                else deid.INVALID_DATE_MARKER
                if "/" in b[c]
                else (date.fromisoformat(b[c]) - shift).isoformat()
                for c in columns
            ]
            expected.append((deid.pseudonym(key, b["patient_id"]), *moved))
        written = [(a["patient_id"], *(a[c] for c in columns)) for a in after]
        assert sorted(written) == sorted(expected), stem
        assert all(PSEUDONYM.fullmatch(a["patient_id"]) for a in after)


def test_rows_are_in_pseudonym_then_date_order_whatever_the_raw_order(tmp_path: Path) -> None:
    # Security review: output rows kept the input's order, so an export sorted by name stayed so.
    names = [
        "Adams, Ann",
        "Baker, Bob",
        "Clark, Cy",
        "Davis, Di",
        "Evans, Ed",
        "Foster, Flo",
        "Green, Gus",
        "Hill, Hal",
        "Irwin, Ivy",
        "Jones, Jo",
        "King, Kit",
        "Lewis, Liz",
    ]
    sessions = [["patient_id", "session_date", "total_units"]]
    diary = [["patient_id", "date", "headache_hours"]]
    for i, name in enumerate(names):  # sorted by name, then date: the order a clinic's export has
        for k in range(3):
            sessions.append([name, (date(2024, 1, 1) + timedelta(days=i + 90 * k)).isoformat(), "155"])
        for d in range(5):
            diary.append([name, (date(2024, 1, 1) + timedelta(days=i + d)).isoformat(), str(d)])
    # A repeated session with other units: the loader keeps the first, so that one must stay first.
    sessions.insert(2, [names[0], sessions[1][1], "195"])
    source = {"sessions.csv": _csv(sessions).encode(), "diary.csv": _csv(diary).encode()}
    result = deid.deidentify(source, KEY)
    csvs = {n: b for n, b in result.files.items() if n.endswith(".csv")}
    out = _rows(result.files["sessions.csv"])
    keys = [(r["patient_id"], r["session_date"]) for r in out]
    assert keys == sorted(keys)  # by pseudonym, then by date
    diary_keys = [(r["patient_id"], r["date"]) for r in _rows(result.files["diary.csv"])]
    assert diary_keys == sorted(diary_keys)
    patients_in_order = list(dict.fromkeys(r["patient_id"] for r in out))
    assert patients_in_order == sorted(deid.pseudonym(KEY, n) for n in names)
    assert patients_in_order != [deid.pseudonym(KEY, n) for n in names]  # not the name order (1 in 12!)
    adams = deid.pseudonym(KEY, names[0])
    assert [r["total_units"] for r in out if r["patient_id"] == adams][:2] == ["155", "195"]
    loaded = load_dataset(csvs)
    assert list(loaded.rejected["reason"]) == ["duplicate session"]
    kept = loaded.tables["sessions"]
    assert kept.loc[kept["patient_id"] == adams, "total_units"].tolist() == [155, 155, 155]

    # Any other order of the raw rows (the repeated session's two rows kept in their order) gives
    # the same bytes: the output order carries nothing of the input's.
    rng = np.random.default_rng(1)
    for _ in range(3):
        shuffled = [sessions[0], *(sessions[1 + i] for i in rng.permutation(len(sessions) - 1))]
        first, second = shuffled.index(sessions[1]), shuffled.index(sessions[2])
        if first > second:
            shuffled[first], shuffled[second] = shuffled[second], shuffled[first]
        other = deid.deidentify(
            {"sessions.csv": _csv(shuffled).encode(), "diary.csv": _csv([diary[0], *reversed(diary[1:])]).encode()}, KEY
        )
        assert {n: b for n, b in other.files.items() if n.endswith(".csv")} == csvs


def test_ages_over_89_become_90_plus_and_invalid_dates_are_withheld(deidentified: dict) -> None:
    out, key = deidentified["out"], deidentified["key"]
    ages = {r["patient_id"]: r["age_band"] for r in _rows((out / "patients.csv").read_bytes())}
    expected = dict(zip(RAW_IDS, ["90+", "90+", "90+", "40-49"], strict=True))
    assert ages == {deid.pseudonym(key, pid): age for pid, age in expected.items()}
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
    secrets = [
        key.hex().encode(),
        key,
        *[pid.encode() for pid in RAW_IDS],
        b"Smith",
        b"MRN-000",
        b"HYPERLINK",
        b"example.org",
        b"07700",
        b"1931-02-03",
        b"2024/05/01",
        b"calc",
        b"Surname0",
    ]
    for secret in secrets:
        assert secret not in every_byte, secret
    assert not any(p.name != "deidentify_report.json" and p.suffix != ".csv" for p in out.iterdir())
    assert "letters_to_Smith" not in (out / "deidentify_report.json").read_text()


def test_same_key_same_bytes_other_key_other_pseudonyms_and_shifts(deidentified: dict) -> None:
    tmp, raw, out = deidentified["tmp"], deidentified["raw"], deidentified["out"]
    again = tmp / "again"
    assert (
        main(
            [
                "deidentify",
                "--in",
                str(raw),
                "--out",
                str(again),
                "--key-file",
                str(deidentified["key_file"]),
                "--keep",
                "referrer",
            ]
        )
        == 0
    )
    for p in out.iterdir():
        assert (again / p.name).read_bytes() == p.read_bytes(), p.name
    other = deid.deidentify(raw, OTHER_KEY, ["referrer"])
    first = _rows((out / "sessions.csv").read_bytes())
    second = _rows(other.files["sessions.csv"])
    assert all(a["patient_id"] != b["patient_id"] for a, b in zip(first, second, strict=True))
    key = deidentified["key"]
    assert [deid.shift_days(key, p) for p in RAW_IDS] != [deid.shift_days(OTHER_KEY, p) for p in RAW_IDS]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o610, 0o601, 0o660, 0o666])
def test_a_key_file_others_may_access_is_refused(tmp_path: Path, capsys, mode: int) -> None:
    # Security review: a key readable by others was used with a warning. Any group/other bit refuses.
    raw = _raw_export(tmp_path / "raw")
    key_file = tmp_path / "shared.key"
    key_file.write_text(KEY.hex() + "\n")
    os.chmod(key_file, mode)
    argv = ["deidentify", "--in", str(raw), "--out", str(tmp_path / "out"), "--key-file", str(key_file)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        f"error: key file {key_file} is accessible to other users (mode {mode:04o}), so the key may no longer be "
        f"secret; if nobody else has read it, run: chmod 600 {key_file}; otherwise make a new key (pseudonyms then "
        "change)"
    )
    assert not (tmp_path / "out").exists()
    assert key_file.read_text() == KEY.hex() + "\n"  # never overwritten
    os.chmod(key_file, 0o600)  # the advice works
    assert main(argv) == 0
    sessions = _rows((tmp_path / "out" / "sessions.csv").read_bytes())
    assert {r["patient_id"] for r in sessions} == {deid.pseudonym(KEY, pid) for pid in RAW_IDS}


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (bytes(32), "is not random"),  # all zeros
        (b"\xab" * 32, "is not random"),  # one byte repeated
        (bytes.fromhex("0123456789abcdef" * 4), "is not random"),  # an 8-byte pattern, 8 distinct bytes
        (b"\x00\x01" * 20, "is not random"),
        (bytes(31) + b"\x01", "is not random"),  # 2 distinct bytes
        (bytes(range(16)), "holds 16 bytes; a key needs at least 32 random bytes"),
        (bytes(range(31)), "holds 31 bytes; a key needs at least 32 random bytes"),
    ],
)
def test_a_degenerate_key_is_refused(tmp_path: Path, capsys, key: bytes, message: str) -> None:
    raw = _raw_export(tmp_path / "raw")
    key_file = tmp_path / "weak.key"
    key_file.write_text(key.hex() + "\n")
    os.chmod(key_file, 0o600)
    assert main(["deidentify", "--in", str(raw), "--out", str(tmp_path / "out"), "--key-file", str(key_file)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: key file {key_file} ") and message in err[-1]
    assert not (tmp_path / "out").exists()
    with pytest.raises(deid.DeidentifyError, match=message):  # the library refuses it too
        deid.deidentify(raw, key)


def test_a_random_key_passes_the_degenerate_key_checks() -> None:
    for _ in range(200):
        deid.check_key(os.urandom(32))
    deid.check_key(KEY)


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


def test_the_report_never_repeats_the_header_of_a_dropped_column(tmp_path: Path, capsys) -> None:
    # Security review: an e-mail address or a name used as a header was copied into the report.
    headers = ["jane.doe@example.org", "Dr Jane Doe (GMC 7012345)", "E-mail: jdoe@nhs.net", "Smith_notes_1999-12-31"]
    raw = _raw_export(tmp_path / "raw")
    for name in ("sessions.csv", "patients.csv"):
        lines = (raw / name).read_text(encoding="utf-8").removeprefix("\ufeff").splitlines()
        rows = [lines[0] + "".join(f',"{h}"' for h in headers), *(line + ',"x"' * len(headers) for line in lines[1:])]
        (raw / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
    out, key_file = tmp_path / "out", tmp_path / "new.key"
    assert main(["deidentify", "--in", str(raw), "--out", str(out), "--key-file", str(key_file)]) == 0
    report_text = (out / "deidentify_report.json").read_text(encoding="utf-8")
    every_byte = b"".join(p.read_bytes() for p in sorted(out.iterdir())) + capsys.readouterr().err.encode()
    for secret in ("jane", "Jane", "Doe", "7012345", "jdoe", "nhs.net", "Smith", "1999-12-31"):
        assert secret.encode() not in every_byte, secret
    report = json.loads(report_text)
    assert report["files"]["sessions.csv"]["columns_dropped"][-4:] == [
        "column 7: not in the data contract",
        "column 8: not in the data contract",
        "column 9: not in the data contract",
        "column 10: not in the data contract",
    ]


@pytest.mark.parametrize("column", ["Patient Name", "nhs_no", "phone_no", "postal_code", "Hospital No.", "DOB"])
def test_keep_of_a_direct_identifier_is_refused_not_warned(tmp_path: Path, capsys, column: str) -> None:
    # Security review: names on SPEC §2.1's longer list were kept with a mere warning.
    raw = _raw_export(tmp_path / "raw")
    patients = (raw / "patients.csv").read_text(encoding="utf-8").splitlines()
    (raw / "patients.csv").write_text(
        "\n".join([f'{patients[0]},"{column}"', *(f'{row},"Jane Doe 0123"' for row in patients[1:])]) + "\n",
        encoding="utf-8",
    )
    out, key_file = tmp_path / "out", tmp_path / "new.key"
    argv = ["deidentify", "--in", str(raw), "--out", str(out), "--key-file", str(key_file)]
    assert main([*argv, "--keep", column]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: --keep ") and "is a direct identifier" in err[-1]
    assert not out.exists() and not key_file.exists()
    with pytest.raises(deid.DeidentifyError, match="direct identifier"):
        deid.deidentify(raw, KEY, [column])
    # Without --keep the column is dropped as a direct identifier, and the output loads.
    assert main(argv) == 0
    assert b"Jane Doe" not in b"".join(p.read_bytes() for p in out.iterdir())
    load_dataset(out)


# --- free text: dropped, pseudonymised or date-checked ----------------------------------------------


INJECTOR = "Dr Jane Doe (GMC 7012345)"


def _free_text_export(folder: Path, reasons: list[str], protocols: list[str], clinics: list[str]) -> Path:
    """Three patients whose free text names people, places and real dates."""
    folder.mkdir()
    sessions = [["patient_id", "session_date", "injector_id", "protocol", "referral_note"]]
    diary = [["patient_id", "date", "headache_hours"]]
    patients = [["patient_id", "clinic", "discontinued_on", "discontinuation_reason"]]
    for i in range(3):
        pid, first = f"MRN-{i}", date(2024, 3, 1) + timedelta(days=7 * i)
        sessions.append(
            [
                pid,
                first.isoformat(),
                INJECTOR if i < 2 else "jd7012345",
                protocols[i],
                "referred 1998-07-15" if i == 0 else "by GP",
            ]
        )
        diary.append([pid, first.isoformat(), "4"])
        patients.append([pid, clinics[i], (first + timedelta(days=100)).isoformat(), reasons[i]])
    for name, rows in (("sessions", sessions), ("diary", diary), ("patients", patients)):
        (folder / f"{name}.csv").write_text(_csv(rows), encoding="utf-8")
    return folder


def test_free_text_is_dropped_and_injector_ids_are_pseudonymised(tmp_path: Path) -> None:
    # Security review: protocol, discontinuation_reason and injector_id were copied verbatim.
    raw = _free_text_export(
        tmp_path / "raw",
        ["Moved to Leeds with Jane", "ptosis", ""],
        ["PREEMPT as agreed with Jane", "PREEMPT", "PREEMPT"],
        ["North", "North", "South"],
    )
    result = deid.deidentify(raw, KEY)
    every_byte = b"".join(result.files.values())
    for secret in (b"Jane", b"Doe", b"7012345", b"Leeds", b"agreed", b"ptosis", b"MRN-"):
        assert secret not in every_byte, secret
    sessions, patients = _rows(result.files["sessions.csv"]), _rows(result.files["patients.csv"])
    assert list(sessions[0]) == ["patient_id", "session_date", "injector_id"]
    assert list(patients[0]) == ["patient_id", "clinic", "discontinued_on"]
    # clinic is kept (clinic scoping needs it); injector_id is keyed, stable, and in its own domain.
    assert sorted(r["clinic"] for r in patients) == ["North", "North", "South"]
    doe = "I" + hmac.new(KEY, f"injector:{INJECTOR}".encode(), hashlib.sha256).hexdigest()[:16]
    assert deid.injector_pseudonym(KEY, f" {INJECTOR} ") == doe
    assert sorted(r["injector_id"] for r in sessions) == sorted([doe, doe, deid.injector_pseudonym(KEY, "jd7012345")])
    assert doe != deid.pseudonym(KEY, INJECTOR) and not doe.startswith("P")
    assert deid.injector_pseudonym(OTHER_KEY, INJECTOR) != doe
    assert deid.deidentify(raw, KEY).files == result.files
    report = result.report["files"]
    assert report["sessions.csv"]["columns_dropped"] == [
        "column 4: protocol (free text; keep it with --keep protocol)",
        "column 5: not in the data contract",
    ]
    assert report["patients.csv"]["columns_dropped"] == [
        "column 4: discontinuation_reason (free text; keep it with --keep discontinuation_reason)",
    ]
    load_dataset({n: b for n, b in result.files.items() if n.endswith(".csv")})  # the output loads


def test_free_text_kept_on_request_is_copied(tmp_path: Path) -> None:
    raw = _free_text_export(
        tmp_path / "raw", ["ptosis", "no benefit", ""], ["PREEMPT", "PREEMPT+FTP", ""], ["North", "North", "South"]
    )
    result = deid.deidentify(raw, KEY, ["protocol", "discontinuation_reason"])
    assert sorted(r["protocol"] for r in _rows(result.files["sessions.csv"])) == ["", "PREEMPT", "PREEMPT+FTP"]
    assert sorted(r["discontinuation_reason"] for r in _rows(result.files["patients.csv"])) == [
        "",
        "no benefit",
        "ptosis",
    ]
    assert all(not r["date_like_text_withheld"] for r in result.report["files"].values())


@pytest.mark.parametrize(
    ("column", "how"),
    [
        ("injector_id", "pseudonymised"),
        ("patient_id", "pseudonymised"),
        ("session_date", "date-shifted"),
        ("age_band", "top-coded"),
    ],
)
def test_keep_of_a_transformed_column_is_refused(tmp_path: Path, column: str, how: str) -> None:
    raw = _free_text_export(tmp_path / "raw", ["", "", ""], ["", "", ""], ["", "", ""])
    with pytest.raises(deid.DeidentifyError, match=f"'{column}' is always {how}, never copied as is"):
        deid.deidentify(raw, KEY, [column])


def test_kept_text_with_a_real_date_is_withheld_and_counted(tmp_path: Path, capsys) -> None:
    # Security review: a real date in free text, next to the shifted dates, gives the offset away.
    raw = _free_text_export(
        tmp_path / "raw",
        reasons=["stopped 3 March 2024 (ptosis)", "seen 01/03/2024, no benefit", "no benefit"],
        protocols=["PREEMPT since 20240301", "PREEMPT", "PREEMPT, follow the pain on Tuesdays"],
        clinics=["North", "North Christmas clinic", "South"],
    )
    out, key_file = tmp_path / "out", tmp_path / "new.key"
    assert (
        main(
            [
                "deidentify",
                "--in",
                str(raw),
                "--out",
                str(out),
                "--key-file",
                str(key_file),
                "--keep",
                "protocol",
                "--keep",
                "discontinuation_reason",
                "--keep",
                "referral_note",
            ]
        )
        == 0
    )
    every_byte = b"".join(p.read_bytes() for p in out.iterdir())
    for secret in (b"March", b"01/03/2024", b"20240301", b"Tuesday", b"Christmas", b"1998-07-15", b"ptosis"):
        assert secret not in every_byte, secret
    sessions, patients = _rows((out / "sessions.csv").read_bytes()), _rows((out / "patients.csv").read_bytes())
    assert sorted(r["protocol"] for r in sessions) == ["", "", "PREEMPT"]
    assert sorted(r["referral_note"] for r in sessions) == ["", "by GP", "by GP"]
    assert sorted(r["discontinuation_reason"] for r in patients) == ["", "", "no benefit"]
    assert sorted(r["clinic"] for r in patients) == ["", "North", "South"]
    report = json.loads((out / "deidentify_report.json").read_text())["files"]
    assert report["sessions.csv"]["date_like_text_withheld"] == {"protocol": 2, "referral_note": 1}
    assert report["patients.csv"]["date_like_text_withheld"] == {"clinic": 1, "discontinuation_reason": 2}
    err = capsys.readouterr().err
    assert "patients.csv: 2 values of discontinuation_reason contain something date-like and were withheld" in err


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-01",
        "on 2024/3/1",
        "1.3.24",
        "01/03/2024",
        "3-1-2024",
        "20240301",
        "in 2023",
        "3/4",
        "12/1 review",
        "3 March",
        "Mar 3rd",
        "sept",
        "MAY",
        "since Monday",
        "on Tuesdays",
        "sat",
        "Xmas",
        "after Easter",
        "(2019)",
        "x1999y",
    ],
)
def test_date_like_text(text: str) -> None:
    assert deid.DATE_LIKE.search(text), text


@pytest.mark.parametrize(
    "text",
    [
        "North",
        "PREEMPT",
        "PREEMPT 31/39",
        "GMC 7012345",
        "155 units",
        "1.5",
        "Site 12-3",
        "3-4 days",
        "ptosis",
        "St Mary's",
        "Marchant",
        "Sunderland",
        "Dr Jane Doe",
        "I0123456789abcdef",
    ],
)
def test_not_date_like_text(text: str) -> None:
    assert not deid.DATE_LIKE.search(text), text


def test_an_invalid_coded_value_is_withheld_not_copied(tmp_path: Path) -> None:
    # A coded column carries no free text: a value its rule rejects is replaced, and still rejected.
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "sessions.csv").write_text(
        _csv(
            [
                ["patient_id", "session_date", "total_units"],
                ["A", "2024-03-01", "155 (Dr Doe)"],
                ["B", "2024-03-01", "155"],
            ]
        )
    )
    (raw / "diary.csv").write_text(
        _csv(
            [
                ["patient_id", "date", "headache_hours", "migraine"],
                ["A", "2024-03-01", "4", "per Jane, yes"],
                ["B", "2024-03-01", "0", "no"],
            ]
        )
    )
    (raw / "patients.csv").write_text(
        _csv([["patient_id", "sex", "age_band"], ["A", "Jane (F)", "born 1931"], ["B", "f", "40-49"]])
    )
    result = deid.deidentify(raw, KEY)
    every_byte = b"".join(result.files.values())
    for secret in (b"Doe", b"Jane", b"1931", b"born"):
        assert secret not in every_byte, secret
    files = result.report["files"]
    assert files["sessions.csv"]["invalid_values_withheld"] == {"total_units": 1}
    assert files["diary.csv"]["invalid_values_withheld"] == {"migraine": 1}
    assert files["patients.csv"]["invalid_values_withheld"] == {"sex": 1, "age_band": 1}
    rejected = load_dataset({n: b for n, b in result.files.items() if n.endswith(".csv")}).rejected
    assert sorted(rejected["reason"]) == ["implausible total_units", "invalid boolean", "invalid sex"]
    assert set(rejected["value"]) == {deid.INVALID_VALUE_MARKER}


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
    for column in (
        "window_days",
        "recorded_days",
        "headache_days",
        "mhd",
        "mhd_change",
        "responder_50",
        "cumulative_responder_50",
    ):
        pd.testing.assert_series_equal(complete[f"{column}_raw"], complete[f"{column}_deid"], check_names=False)


# --- fuzz -------------------------------------------------------------------------------------------

IDS = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=16),
    st.sampled_from(["=1+1", "+cmd", "-2", "@SUM(A1)", 'Smith, "J"', " a ", "\t\r\n", "", "ünï cødé", "1,2"]),
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
        date_column = "session_date" if name == "sessions.csv" else "date"
        # Rows are in pseudonym, then date order, not in the raw order.
        order = [(row["patient_id"], row[date_column]) for row in rows]
        assert order == sorted(order)
        # Each patient has as many rows as in the raw data (keyed and stable; valid under the SPEC
        # pattern unless the raw id was blank), each date empty, withheld or moved back by the offset.
        raw_by_patient: dict[str, list[tuple[str, str]]] = {}
        for raw_row in raw:
            raw_by_patient.setdefault(deid.pseudonym(KEY, raw_row[0]), []).append(raw_row[:2])
        out_by_patient: dict[str, list[str]] = {}
        for row in rows:
            out_by_patient.setdefault(row["patient_id"], []).append(row[date_column])
        assert {p: len(d) for p, d in out_by_patient.items()} == {p: len(r) for p, r in raw_by_patient.items()}
        for patient, dates in out_by_patient.items():
            assert PSEUDONYM.fullmatch(patient) or all(not pid.strip() for pid, _ in raw_by_patient[patient])
            allowed = {"", deid.INVALID_DATE_MARKER}
            for pid, value in raw_by_patient[patient]:
                try:
                    allowed.add(
                        (date.fromisoformat(value.strip()) - timedelta(days=deid.shift_days(KEY, pid))).isoformat()
                    )
                except (ValueError, OverflowError):
                    pass
            assert set(dates) <= allowed
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
