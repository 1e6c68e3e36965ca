"""Rejection reports of bounded size: the counts stay exact, the listing may stop (Limits.max_rejected_listed).

A 100 MB CSV of one diary row repeated is 3 million rejected rows; listing each with its patient_id
and value took gigabytes. The rejection report lists the first rejected rows of each file (by
line), up to the cap, and counts the rest by reason and patient_id (``Dataset.rejected_unlisted``),
so rows_rejected, the counts by reason, the per-clinic counts and the manifest stay exact, and the
manifest says that rejected_rows.csv is cut short. Below the cap nothing changes.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pandas as pd
import pytest

from analytics.cli import main
from analytics.definitions.pipeline import analyse
from analytics.ingest import schemas
from analytics.ingest.load import FOLDER_LIMITS, Dataset, Limits, load_dataset
from analytics.output.export import export_files, suppressed_export_files
from analytics.privacy import access
from analytics.views import quality

SESSIONS = b"patient_id,session_date\nP1,2024-01-01\nP2,2024-01-01\n"
PATIENTS = b"patient_id,clinic\nP1,North\nP2,South\n"
HEADER = b"patient_id,date,headache_hours,migraine\n"
EXPORTED_AT = datetime(2025, 1, 1, tzinfo=UTC)


def diary() -> bytes:
    """Lines 2-3 kept, then 12 repeats of line 2 (P1), a ragged row, 3 bad hours and 10 repeats of line 3 (P2)."""
    rows = [b"P1,2024-01-02,3,true", b"P2,2024-01-02,5,false"]
    rows += [rows[0]] * 12  # lines 4-15
    rows += [b"P2,2024-01-03"]  # line 16: wrong number of fields
    rows += [b"P2,2024-01-%02d,25,true" % day for day in (4, 5, 6)]  # lines 17-19
    rows += [rows[1]] * 10  # lines 20-29
    return HEADER + b"\n".join(rows) + b"\n"


def load(max_listed: int) -> Dataset:
    limits = Limits(
        FOLDER_LIMITS.max_rows,
        FOLDER_LIMITS.max_values,
        FOLDER_LIMITS.max_decoded_bytes,
        max_rejected_listed=max_listed,
    )
    return load_dataset({"sessions.csv": SESSIONS, "patients.csv": PATIENTS, "diary.csv": diary()}, limits)


def test_the_listing_stops_at_the_cap_and_the_counts_stay_exact() -> None:
    dataset = load(max_listed=10)
    report = {f.file: f for f in dataset.files}["diary.csv"]
    assert (report.rows_read, report.rows_accepted, report.rows_rejected) == (28, 2, 26)
    listed = dataset.rejected[dataset.rejected["file"] == "diary.csv"]
    assert listed["line"].tolist() == list(range(4, 14))  # the first ten, by line
    assert set(listed["reason"]) == {schemas.DUPLICATE_ROW}
    assert dataset.rejected_total() == 26
    assert dataset.rejected_listed_per_file() == {"diary.csv": 10}
    counts = dataset.rejection_counts().set_index("reason")["rows"].to_dict()
    assert counts == {schemas.DUPLICATE_ROW: 22, schemas.WRONG_FIELD_COUNT: 1, "headache_hours out of range": 3}
    unlisted = dataset.rejected_unlisted.groupby(["reason", "patient_id"])["rows"].sum().to_dict()
    assert unlisted == {
        (schemas.DUPLICATE_ROW, "P1"): 2,
        (schemas.DUPLICATE_ROW, "P2"): 10,
        ("headache_hours out of range", "P2"): 3,
        (schemas.WRONG_FIELD_COUNT, "P2"): 1,
    }
    files = quality.file_reconciliation(dataset).set_index("file")
    assert files["reconciles"].all()
    assert files.loc["diary.csv", ["rows_rejected", "rejected_rows_listed"]].tolist() == [26, 10]
    summary = quality.rejection_summary(dataset)
    assert summary.values.tolist() == [
        ["diary.csv", schemas.DUPLICATE_ROW, 22],
        ["diary.csv", "headache_hours out of range", 3],
        ["diary.csv", schemas.WRONG_FIELD_COUNT, 1],
    ]


def test_below_the_cap_the_report_is_exactly_as_before() -> None:
    everything, at_cap = load(max_listed=FOLDER_LIMITS.max_rejected_listed), load(max_listed=26)
    assert everything.rejected_unlisted.empty and at_cap.rejected_unlisted.empty
    assert len(everything.rejected) == 26 and everything.rejected_listed_per_file() == {}
    pd.testing.assert_frame_equal(at_cap.rejected, everything.rejected)
    assert everything.files == at_cap.files
    manifest = json.loads(export_files(analyse(everything), everything, EXPORTED_AT)["manifest.json"])
    assert manifest["rows_rejected_total"] == 26 and "rejected_rows_note" not in manifest


def test_the_export_lists_the_first_rows_and_the_manifest_says_so() -> None:
    dataset = load(max_listed=10)
    files = export_files(analyse(dataset), dataset, EXPORTED_AT)
    rows = list(csv.DictReader(io.StringIO(files["rejected_rows.csv"].decode())))
    assert [int(r["line"]) for r in rows] == list(range(4, 14))
    manifest = json.loads(files["manifest.json"])
    assert manifest["files"]["diary.csv"]["rows_rejected"] == 26
    assert manifest["rows_rejected_total"] == 26 and manifest["rejected_rows_listed"] == 10
    assert manifest["rejected_rows_note"].startswith("rejected_rows.csv lists the first rejected rows of each file")
    assert manifest["rejected_rows_by_reason"] == {
        "diary.csv": {schemas.DUPLICATE_ROW: 22, "headache_hours out of range": 3, schemas.WRONG_FIELD_COUNT: 1}
    }
    everything = load(max_listed=FOLDER_LIMITS.max_rejected_listed)
    uncapped = export_files(analyse(everything), everything, EXPORTED_AT)
    for name in ("patient_cycles.csv", "cohort_cycles.csv"):
        assert files[name] == uncapped[name]
    # The suppressed export (counts only, no rejected_rows.csv) cannot tell the difference at all.
    suppressed = suppressed_export_files(analyse(dataset), dataset, 2, EXPORTED_AT)
    assert suppressed == suppressed_export_files(analyse(everything), everything, 2, EXPORTED_AT)
    counts = list(csv.DictReader(io.StringIO(suppressed["rejected_counts.csv"].decode())))
    assert {r["reason"]: r["rows"] for r in counts}[schemas.DUPLICATE_ROW] == "22"


def test_a_clinic_sees_exact_counts_of_its_patients_rejected_rows() -> None:
    dataset = load(max_listed=10)
    north, south = access.scope_dataset(dataset, ["North"]), access.scope_dataset(dataset, ["South"])
    assert {f.file: f.rows_rejected for f in north.files}["diary.csv"] == 12  # P1's 12 duplicates
    assert {f.file: f.rows_rejected for f in south.files}["diary.csv"] == 14  # P2: 10 + 3 + 1
    assert len(north.rejected) == 10 and len(south.rejected) == 0  # the listing held P1's rows only
    assert quality.file_reconciliation(south)["reconciles"].all()
    hidden = access.pseudonymise_dataset(dataset, b"k" * 32)
    assert [f.rows_rejected for f in hidden.files] == [f.rows_rejected for f in dataset.files]
    assert not {"P1", "P2"} & set(hidden.rejected_unlisted["patient_id"])


def test_a_hundred_thousand_rejected_rows_are_listed_and_the_rest_counted(
    capsys: pytest.CaptureFixture, tmp_path
) -> None:
    # The default cap with the duplicate-row path: 120,000 repeats of one diary day.
    data = tmp_path / "data"
    data.mkdir()
    (data / "sessions.csv").write_bytes(SESSIONS)
    (data / "diary.csv").write_bytes(HEADER + b"P1,2024-01-02,3,true\n" * 120_001)
    assert main(["export", "--data", str(data), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "  diary.csv: 120001 rows read, 1 accepted, 120000 rejected" in err.splitlines()
    assert "  diary.csv: rejected_rows.csv lists its first 100,000 rejected rows; manifest.json counts them all" in err
    assert "120000 rows rejected" in err
    with open(tmp_path / "out" / "rejected_rows.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 100_000 and rows[-1]["line"] == "100002"
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["rows_rejected_total"] == 120_000 and manifest["rejected_rows_listed"] == 100_000
    assert manifest["rejected_rows_by_reason"] == {"diary.csv": {schemas.DUPLICATE_ROW: 120_000}}


def test_the_data_page_and_sidebar_give_the_exact_counts_and_say_the_listing_stops(tmp_path, monkeypatch) -> None:
    from page_helpers import open_app_page

    from ui import state

    monkeypatch.setattr(
        state,
        "FOLDER_LIMITS",
        Limits(
            FOLDER_LIMITS.max_rows, FOLDER_LIMITS.max_values, FOLDER_LIMITS.max_decoded_bytes, max_rejected_listed=10
        ),
    )
    folder = tmp_path / "clinic"
    folder.mkdir()
    for name, data in {"sessions.csv": SESSIONS, "patients.csv": PATIENTS, "diary.csv": diary()}.items():
        (folder / name).write_bytes(data)
    at = open_app_page(monkeypatch, "pages/data.py", folder, timeout=120)
    assert "26 rows were rejected and are not used (diary.csv: 26)" in " ".join(w.value for w in at.sidebar.warning)
    assert "; the rejection report lists the first 10 and counts the rest by reason." in at.success[0].value
    assert "**26 rows were rejected**" in " ".join(m.value for m in at.markdown)
    captions = " ".join(c.value for c in at.caption)
    assert "The first 10 of the 26 rejected rows" in captions and "diary.csv lists its first 10" in captions
    listed = next(
        d.value
        for d in at.dataframe
        if list(d.value.columns) == ["file", "line", "patient_id", "reason", "column", "value"]
    )
    assert len(listed) == 10
