"""The Data page's reconciliation (analytics.views.quality): every row and every file accounted for.

Two tiny datasets written by hand: one with only the contract's files, one with two more files that
the loader does not read (``adverse-events.csv``, a misspelt name, and ``visits.csv``, no such file).
"""

from __future__ import annotations

from analytics.views import quality

SESSIONS = "patient_id,session_date,total_units\nP1,2024-03-01,155\nP1,2024-03-01,155\n"  # line 3: duplicate
DIARY = "patient_id,date,headache_hours,migraine,severity,acute_medication\nP1,2024-02-01,0,,,\n"


def test_a_dataset_with_every_file_read_reconciles_without_a_word_about_files(load_files) -> None:
    statement = quality.reconciliation_statement(load_files(sessions=SESSIONS, diary=DIARY))
    assert statement.tone == "success"
    assert statement.text == (
        "Every row is accounted for: 3 rows read = 2 accepted + 1 rejected, and the rejection report lists all 1 "
        "rejected rows."
    )


def test_files_that_were_not_read_are_said_with_their_reasons(load_files) -> None:
    dataset = load_files(
        sessions=SESSIONS,
        diary=DIARY,
        extra={"adverse-events.csv": "patient_id,session_date,event\n", "visits.csv": "patient_id\n"},
    )
    statement = quality.reconciliation_statement(dataset)
    assert statement.tone == "warning"  # the rows add up, but two files were left out
    assert statement.text.startswith("Every row is accounted for: 3 rows read = 2 accepted + 1 rejected")
    said = (
        " 2 files were not read: adverse-events.csv (not a file of the data format; did you mean "
        "adverse_events.csv?); visits.csv (not a file of the data format"
    )
    assert said in statement.text
    table = quality.files_not_read(dataset)
    assert table.columns.tolist() == ["file", "reason"]
    assert table["file"].tolist() == ["adverse-events.csv", "visits.csv"]


def test_one_file_not_read_is_singular_and_a_long_list_is_cut(load_files) -> None:
    one = load_files(sessions=SESSIONS, diary=DIARY, extra={"notes.txt": "x"})
    assert quality.reconciliation_statement(one).text.endswith(
        " 1 file was not read: notes.txt (not a CSV or Parquet file)."
    )
    many = load_files(sessions=SESSIONS, diary=DIARY, extra={f"extra{i}.txt": "x" for i in range(7)})
    text = quality.reconciliation_statement(many).text
    assert " 7 files were not read: extra0.txt (" in text and text.endswith("; and 2 more.")
    assert len(quality.files_not_read(many)) == 7  # the table lists all of them
