"""Formula-safe CSV: every CSV the project writes goes through ``analytics.output.export.csv_bytes``.

A text cell that a spreadsheet would run as a formula (first character =, +, -, @, tab or carriage
return) gets a leading single quote; numbers, and text that is a plain number, are left alone. The
end-to-end case is the one that matters most: a hostile patient_id in the input is quoted back to
the user in rejected_rows.csv, and must arrive there neutralised.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.cli import main
from analytics.output.export import FORMULA_START, csv_bytes

PROJECT_DIR = Path(__file__).resolve().parent.parent
HYPERLINK = '=HYPERLINK("http://x","y")'
PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _cells(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        (HYPERLINK, "'" + HYPERLINK),
        ("- nausea", "'- nausea"),
        # Plain numbers cannot be formulas: a rejected value is shown as it was typed.
        ("-4.5", "-4.5"),
        ("+1e3", "+1e3"),
        ("-.5", "-.5"),
        # Formula characters anywhere but first are harmless.
        ("a=1", "a=1"),
        ("PREEMPT+FTP", "PREEMPT+FTP"),
        ("", ""),
    ],
)
def test_text_cells_that_start_a_formula_get_a_quote(text: str, written: str) -> None:
    data = csv_bytes(pd.DataFrame({"value": pd.Series([text], dtype=object)}))
    assert _cells(data) == [["value"], [written]]


def test_numbers_booleans_dates_and_missing_are_written_untouched() -> None:
    frame = pd.DataFrame(
        {
            "mhd_change": [-4.5, np.nan, 0.1],
            "cycle": pd.array([-1, pd.NA, 3], dtype="Int64"),
            "responder_50": pd.array([True, pd.NA, False], dtype="boolean"),
            "start_date": pd.to_datetime(["2024-05-01", None, "2024-02-29"]),
            "note": ["-", "@", None],
        }
    )
    rows = _cells(csv_bytes(frame))
    assert rows == [
        ["mhd_change", "cycle", "responder_50", "start_date", "note"],
        ["-4.5", "-1", "true", "2024-05-01", "'-"],
        ["", "", "", "", "'@"],
        ["0.1", "3", "false", "2024-02-29", ""],
    ]


def test_a_carriage_return_inside_a_cell_cannot_start_a_new_row() -> None:
    # The csv module with a "\n" line end leaves a bare CR unquoted; a spreadsheet then starts a new
    # row there, and "=HYPERLINK(...)" would arrive as the first cell of that row, unquoted.
    frame = pd.DataFrame({"patient_id": ["x\r" + HYPERLINK, "y"], "n": [1, 2]})
    data = csv_bytes(frame)
    assert data == b'patient_id,n\n"x\r=HYPERLINK(""http://x"",""y"")",1\ny,2\n'
    assert _cells(data) == [["patient_id", "n"], ["x\r" + HYPERLINK, "1"], ["y", "2"]]


def test_a_one_column_table_keeps_its_empty_rows() -> None:
    # A row of one empty field would be a blank line, which CSV readers skip.
    data = csv_bytes(pd.DataFrame({"reason": ["", "x", None]}))
    assert data == b'reason\n""\nx\n""\n'
    assert _cells(data) == [["reason"], [""], ["x"], [""]]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12),
            st.floats(allow_nan=True, allow_infinity=False),
        ),
        max_size=8,
    )
)
def test_csv_bytes_round_trips_through_a_csv_reader(rows: list[tuple[str, float]]) -> None:
    # Property: any text and any float come back from a standard CSV reader as written, one row per
    # row, text neutralised by a leading quote exactly when it would start a formula.
    frame = pd.DataFrame(
        {
            "text": pd.Series([r[0] for r in rows], dtype=object),
            "value": pd.Series([r[1] for r in rows], dtype="float64"),
        }
    )
    parsed = _cells(csv_bytes(frame))
    assert len(parsed) == len(rows) + 1
    for (text, value), (text_cell, value_cell) in zip(rows, parsed[1:], strict=True):
        formula = text.startswith(FORMULA_START) and not PLAIN_NUMBER.fullmatch(text)
        assert text_cell == ("'" + text if formula else text)
        assert (value_cell == "") if np.isnan(value) else float(value_cell) == value


def test_a_header_that_starts_a_formula_is_quoted_too() -> None:
    rows = _cells(csv_bytes(pd.DataFrame({"=cmd": ["x"], "ok": ["y"]})))
    assert rows[0] == ["'=cmd", "ok"]


def test_hostile_patient_id_is_neutralised_in_rejected_rows(tmp_path: Path) -> None:
    # The diary names patients by hostile ids; the loader rejects them (invalid patient_id) and
    # quotes them back in rejected_rows.csv, where a spreadsheet must not run them.
    data = tmp_path / "data"
    data.mkdir()
    (data / "sessions.csv").write_text("patient_id,session_date,total_units\nA1,2024-03-01,155\n", encoding="utf-8")
    hostile = [HYPERLINK, "+1+cmd", "@SUM(1)", "-A1+A2"]
    with open(data / "diary.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")  # test input, written as a clinic's tool would
        writer.writerow(["patient_id", "date", "headache_hours", "migraine", "severity", "acute_medication"])
        writer.writerow(["A1", "2024-02-01", "=2+5", "", "", ""])  # line 2: bad hours, value quoted back
        writer.writerow(["A1", "2024-02-02", "-3", "", "", ""])  # line 3: a plain negative number
        for i, pid in enumerate(hostile):  # lines 4..7
            writer.writerow([pid, f"2024-02-{i + 3:02d}", "0", "", "", ""])
    out = tmp_path / "out"
    assert main(["export", "--data", str(data), "--out", str(out)]) == 0

    raw = (out / "rejected_rows.csv").read_bytes()
    assert b'\'=HYPERLINK(""http://x"",""y"")' in raw  # the exact bytes a spreadsheet opens
    rows = {int(r["line"]): r for r in csv.DictReader(io.StringIO(raw.decode("utf-8")))}
    assert [rows[line]["patient_id"] for line in (4, 5, 6, 7)] == ["'" + pid for pid in hostile]
    assert {rows[line]["reason"] for line in (4, 5, 6, 7)} == {"invalid patient_id"}
    assert rows[2]["value"] == "'=2+5"
    assert rows[3]["value"] == "-3"

    # No cell of any exported CSV can start a formula, except a plain number.
    for name in ("rejected_rows.csv", "patient_cycles.csv", "cohort_cycles.csv"):
        for row in _cells((out / name).read_bytes()):
            for cell in row:
                assert not cell.startswith(FORMULA_START) or PLAIN_NUMBER.fullmatch(cell), (name, cell)


def test_the_suppressed_export_is_formula_safe_too(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "sessions.csv").write_text("patient_id,session_date\nA1,2024-03-01\n", encoding="utf-8")
    (data / "diary.csv").write_text(
        "patient_id,date,headache_hours\nA1,2024-02-01,0\n=cmd,2024-02-02,0\n", encoding="utf-8"
    )
    out = tmp_path / "out"
    assert main(["export", "--data", str(data), "--out", str(out), "--min-cell", "11"]) == 0
    for name in ("cohort_cycles.csv", "rejected_counts.csv"):
        for row in _cells((out / name).read_bytes()):
            assert all(not c.startswith(FORMULA_START) or PLAIN_NUMBER.fullmatch(c) for c in row)
    assert b"=cmd" not in b"".join(p.read_bytes() for p in out.iterdir())


# Files allowed to write CSV without csv_bytes: the writer itself, and the synthetic-data generator,
# which writes made-up *input* files (as a clinic's system would) and never user-supplied text.
CSV_WRITERS_ALLOWED = {"analytics/output/export.py", "analytics/synth.py"}
CSV_WRITER = re.compile(r"\.to_csv\(|csv\.writer\(|csv\.DictWriter\(|write_csv\(")


def test_no_other_module_writes_csv_itself() -> None:
    sources = [
        *PROJECT_DIR.glob("analytics/**/*.py"),
        *PROJECT_DIR.glob("ui/**/*.py"),
        *PROJECT_DIR.glob("pages/**/*.py"),
        PROJECT_DIR / "dashboard.py",
    ]
    writers = {
        str(path.relative_to(PROJECT_DIR))
        for path in sources
        if path.is_file() and CSV_WRITER.search(path.read_text(encoding="utf-8"))
    }
    assert writers <= CSV_WRITERS_ALLOWED, f"route CSV writing through analytics.output.export.csv_bytes: {writers}"
