"""The summary command: ``python -m analytics summary`` writes one PDF per patient, atomically, or refuses.

The dataset (hand-worked; as_of is its latest date, 2024-08-15):
    R1: sessions 2024-03-01 and 2024-05-24, diary 2024-02-02..2024-08-15: active, next due 2024-08-16 (as_of + 1).
    R2: sessions 2024-01-05 and 2024-04-26, diary to 2024-07-30, discontinued 2024-07-01 (reason with markup).
    R5: one session 2023-12-01, 258 days before as_of: lapsed (over 182), never due.
    R6: one session 2024-04-20, 117 days before as_of: overdue (over 98), next due 2024-07-13, before as_of.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pypdf
import pytest

from analytics import cli

PROJECT_DIR = Path(__file__).resolve().parent.parent
REASON = '<b>x</b> =HYPERLINK("http://evil.example","click")'


def _days(first: str, last: str) -> list[date]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def write_data(folder: Path, extra_diary_column: str | None = None) -> Path:
    folder.mkdir(parents=True)
    header = "patient_id,date,headache_hours,migraine,severity,acute_medication"
    rows = [f"R1,{d},{6 if i % 3 else 0},true,2,false" for i, d in enumerate(_days("2024-02-02", "2024-08-15"))]
    rows += [f"R2,{d},{5 if i % 2 == 0 else 0},false,1,false" for i, d in enumerate(_days("2023-12-08", "2024-07-30"))]
    if extra_diary_column:
        header += f",{extra_diary_column}"
        rows = [row + ",x" for row in rows]
    (folder / "diary.csv").write_text("\n".join([header, *rows]) + "\n")
    (folder / "sessions.csv").write_text(
        "patient_id,session_date\nR1,2024-03-01\nR1,2024-05-24\nR2,2024-01-05\nR2,2024-04-26\n"
        "R5,2023-12-01\nR6,2024-04-20\n"
    )
    (folder / "patients.csv").write_text(
        "patient_id,clinic,discontinued_on,discontinuation_reason\n"
        f'R1,North,,\nR2,South,2024-07-01,"{REASON.replace(chr(34), chr(34) * 2)}"\nR5,North,,\nR6,North,,\n'
    )
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_data(tmp_path_factory.mktemp("summary_cli") / "data")


def pages(path: Path) -> list[pypdf.PageObject]:
    return list(pypdf.PdfReader(io.BytesIO(path.read_bytes())).pages)


def text(path: Path) -> str:
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in pages(path)))


def summary(data: Path, out: Path, *flags: str) -> int:
    return cli.main(["summary", "--data", str(data), "--out", str(out), *flags])


def test_named_patients_get_one_pdf_each_with_progress(data: Path, tmp_path: Path):
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "analytics", "summary", "--data", str(data), "--out", str(out), "--patient", "R2", "R1"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "1/2 R2" in done.stderr and "2/2 R1" in done.stderr
    # Exactly the two files: no temporary file is left beside them.
    assert sorted(p.name for p in out.iterdir()) == ["R1_doctor.pdf", "R2_doctor.pdf"]
    assert [len(pages(out / name)) for name in ("R1_doctor.pdf", "R2_doctor.pdf")] == [1, 1]
    assert "Next injection due 2024-08-16 (last session + 84 days)" in text(out / "R1_doctor.pdf")
    # The reason is printed as typed: neither its markup nor its formula is interpreted.
    assert f"Discontinued on 01 Jul 2024: {REASON}" in text(out / "R2_doctor.pdf")


def test_patient_kind_on_letter_with_the_appendix(data: Path, tmp_path: Path):
    out = tmp_path / "out"
    assert summary(data, out, "--patient", "R1", "--kind", "patient", "--page-size", "letter", "--appendix") == 0
    assert [p.name for p in out.iterdir()] == ["R1_patient.pdf"]
    written = pages(out / "R1_patient.pdf")
    assert len(written) == 2 and len(written[1].images) == 1
    assert (float(written[0].mediabox.width), float(written[0].mediabox.height)) == (612, 792)
    assert "Your next injection is due on 16 August 2024." in text(out / "R1_patient.pdf")


def test_due_within_picks_patients_by_their_next_due_date(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    # R6 is overdue (due 2024-07-13) and so due now; R1 is due on as_of + 1; R2 is discontinued, R5 lapsed.
    assert summary(data, tmp_path / "now", "--due-within", "0") == 0
    assert [p.name for p in (tmp_path / "now").iterdir()] == ["R6_doctor.pdf"]
    capsys.readouterr()
    assert summary(data, tmp_path / "week", "--due-within", "7") == 0
    err = capsys.readouterr().err
    assert "2 patients due by 2024-08-22" in err and "1/2 R6" in err and "2/2 R1" in err
    assert sorted(p.name for p in (tmp_path / "week").iterdir()) == ["R1_doctor.pdf", "R6_doctor.pdf"]
    # Named patients and due patients together, each once.
    assert summary(data, tmp_path / "both", "--patient", "R2", "R1", "--due-within", "7") == 0
    assert sorted(p.name for p in (tmp_path / "both").iterdir()) == ["R1_doctor.pdf", "R2_doctor.pdf", "R6_doctor.pdf"]
    # A treated patient without a diary still gets a one-page summary that says so: baseline 2024-03-23..2024-04-19
    # and cycle 1 2024-04-20..2024-07-12 (84 days) are 112 days, none recorded.
    assert len(pages(tmp_path / "now" / "R6_doctor.pdf")) == 1
    r6 = text(tmp_path / "now" / "R6_doctor.pdf")
    assert "Diary: 0 of 112 days recorded from 2024-03-23 to 2024-07-12 (0%); 0 of 2 windows evaluable." in r6
    assert "Overdue: next session was due 13 Jul 2024; 19 days past the 98-day limit" in r6


def test_nobody_due_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "sessions.csv").write_text("patient_id,session_date\nR1,2024-03-01\n")
    (folder / "diary.csv").write_text("patient_id,date,headache_hours\nR1,2024-03-02,0\n")
    assert summary(folder, tmp_path / "out", "--due-within", "30") == 0  # due 2024-05-24, after as_of + 30
    assert "nothing written" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_analysis_parameters_are_accepted_as_flags(data: Path, tmp_path: Path):
    out = tmp_path / "out"
    assert summary(data, out, "--patient", "R1", "--cycle-days", "90", "--overuse-acute-days", "8") == 0
    written = text(out / "R1_doctor.pdf")
    assert "Next injection due 2024-08-22 (last session + 90 days)" in written
    assert "Parameters differ from the defaults:" in written and "cycle_days = 90 (default 84)" in written
    assert summary(data, tmp_path / "bad", "--patient", "R1", "--min-completeness", "2") == 2
    assert not (tmp_path / "bad").exists()


def test_refusals_exit_2(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    assert summary(data, tmp_path / "a") == 2
    assert "--patient ID ... and/or --due-within DAYS" in capsys.readouterr().err
    assert summary(data, tmp_path / "b", "--due-within", "-1") == 2
    assert summary(data, tmp_path / "c", "--patient", "R1", "NOPE", "../etc") == 2
    assert "unknown patient ids (not in" in (err := capsys.readouterr().err) and err.rstrip().endswith("NOPE, ../etc")
    missing = tmp_path / "missing"
    missing.mkdir()
    (missing / "diary.csv").write_text("patient_id,date,headache_hours\nR1,2024-03-02,0\n")
    assert summary(missing, tmp_path / "d", "--patient", "R1") == 2
    assert "refused" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        summary(data, tmp_path / "e", "--patient", "R1", "--kind", "nurse")
    assert exit_info.value.code == 2
    assert not any((tmp_path / name).exists() for name in "abcde")


def test_a_dataset_with_a_direct_identifier_exits_3(tmp_path: Path):
    data = write_data(tmp_path / "data", extra_diary_column="patient_name")
    assert summary(data, tmp_path / "out", "--patient", "R1") == 3
    assert not (tmp_path / "out").exists()


def test_unwritable_output_exits_4(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert summary(data, blocker / "out", "--patient", "R1") == 4
    assert "cannot write" in capsys.readouterr().err


def test_a_failed_write_leaves_no_partial_file(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import os

    out = tmp_path / "out"
    out.mkdir()
    (out / "R1_doctor.pdf").write_bytes(b"yesterday's summary")

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    assert summary(data, out, "--patient", "R1") == 4
    monkeypatch.undo()
    # The previous file is untouched and no temporary file is left.
    assert [p.name for p in out.iterdir()] == ["R1_doctor.pdf"]
    assert (out / "R1_doctor.pdf").read_bytes() == b"yesterday's summary"
