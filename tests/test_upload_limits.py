"""Bounded memory for every upload: limits checked before a file is read (analytics.ingest.load.Limits).

A few hundred KB of Parquet can hold tens of millions of rows (dictionary and run-length encoding),
so a Parquet file is judged by its metadata before any of it is read, and refused with a one-line
message (exit status 2) when it holds more rows or values than allowed, unpacks to too much, or
expands absurdly; a CSV file is judged by its lines. Uploads (``UPLOAD_LIMITS``) are held tighter
than the clinic's own folder (``FOLDER_LIMITS``). Hostile files are built here, at test time.
"""

from __future__ import annotations

import io
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analytics.ingest.archive import files_from_upload
from analytics.ingest.load import FOLDER_LIMITS, UPLOAD_LIMITS, DatasetRefused, Limits, load_dataset

PROJECT_DIR = Path(__file__).resolve().parent.parent
SESSIONS = b"patient_id,session_date\nP1,2024-01-01\n"
DIARY_HEADER = b"patient_id,date,headache_hours\n"


def parquet(table: pa.Table, **options: object) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, **options)
    return buffer.getvalue()


def identical_rows(rows: int) -> bytes:
    """``rows`` identical diary rows in one row group: dictionary-encoded, a few hundred KB at most."""
    index = pa.array(np.zeros(rows, dtype=np.int32))
    return parquet(
        pa.table(
            {
                "patient_id": pa.DictionaryArray.from_arrays(index, pa.array(["P1"])),
                "date": pa.DictionaryArray.from_arrays(index, pa.array(["2024-01-02"])),
                "headache_hours": pa.DictionaryArray.from_arrays(index, pa.array([3.0])),
            }
        ),
        row_group_size=rows,
    )


@pytest.fixture
def nothing_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading Parquet data (rather than its metadata) fails the test."""

    def read(*args: object, **kwargs: object) -> None:
        raise AssertionError("the Parquet data were read")

    monkeypatch.setattr(pd, "read_parquet", read)
    monkeypatch.setattr(pq, "read_table", read)
    for method in ("read", "read_row_group", "read_row_groups", "iter_batches"):
        monkeypatch.setattr(pq.ParquetFile, method, read)


def refusal(files: dict[str, bytes], limits: Limits) -> str:
    with pytest.raises(DatasetRefused) as caught:
        load_dataset(files, limits)
    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert "\n" not in message and len(message) < 400, message
    return message


# --- Parquet: judged by its metadata -----------------------------------------------------------


def test_twenty_million_rows_in_190_kb_of_parquet_are_refused_before_reading(nothing_is_read: None) -> None:
    bomb = identical_rows(20_000_000)
    assert len(bomb) < 400_000  # what was uploaded: 20 million rows in a file of a few hundred KB
    files = {"sessions.csv": SESSIONS, "diary.parquet": bomb}
    message = refusal(files, UPLOAD_LIMITS)
    assert message.startswith(
        "diary.parquet: refused: 20,000,000 rows, more than 8,000,000, the most an uploaded "
        "file may hold; larger datasets are read from the clinic data folder"
    ), message
    # A folder may hold 20 million rows, but not in 190 KB: refused by the expansion.
    message = refusal(files, FOLDER_LIMITS)
    assert message.startswith("diary.parquet: refused: 60,000,000 values from ")
    assert "-fold expansion, more than 100-fold" in message and "decompression bomb" in message


def test_an_absurd_expansion_under_the_row_limit_is_refused(nothing_is_read: None) -> None:
    message = refusal({"sessions.csv": SESSIONS, "diary.parquet": identical_rows(2_000_000)}, UPLOAD_LIMITS)
    assert "6,000,000 values from" in message and "decompression bomb" in message


def test_one_long_value_repeated_by_its_dictionary_is_refused_before_it_is_decoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 1,000 rows pointing at one 1 MB dictionary entry: 50 KB on disk, 1 GB of text once decoded.
    index = pa.array(np.zeros(1_000, dtype=np.int32))
    bomb = parquet(
        pa.table(
            {
                "patient_id": pa.array(["P1"] * 1_000),
                "date": pa.DictionaryArray.from_arrays(index, pa.array(["x" * 2**20])),
                "headache_hours": pa.array([3.0] * 1_000),
            }
        )
    )
    assert len(bomb) < 2**20
    monkeypatch.setattr(pd, "read_parquet", lambda *a, **k: pytest.fail("the Parquet data were decoded"))
    message = refusal({"sessions.csv": SESSIONS, "diary.parquet": bomb}, UPLOAD_LIMITS)
    assert message.startswith("diary.parquet: refused: its text decodes to more than 500 MB, the most an uploaded")


def test_column_data_unpacking_past_the_limit_are_refused(nothing_is_read: None) -> None:
    rows = 50_000
    data = parquet(
        pa.table(
            {
                "patient_id": [f"P{i}" for i in range(rows)],
                "date": ["2024-01-02"] * rows,
                "headache_hours": np.arange(rows, dtype=float),
            }
        ),
        compression="zstd",
    )
    limits = Limits(max_rows=rows, max_values=10**9, max_decoded_bytes=100_000)
    message = refusal({"sessions.csv": SESSIONS, "diary.parquet": data}, limits)
    assert message.startswith("diary.parquet: refused: its columns unpack to ") and "more than 100,000 bytes" in message


def test_list_elements_count_as_values(nothing_is_read: None) -> None:
    data = parquet(
        pa.table(
            {
                "patient_id": ["P1"],
                "date": ["2024-01-02"],
                "headache_hours": [3.0],
                "acute_medication": pa.array([[True] * 3_000], pa.list_(pa.bool_())),
            }
        )
    )
    limits = Limits(max_rows=10, max_values=1_000, max_decoded_bytes=10**9)
    message = refusal({"sessions.csv": SESSIONS, "diary.parquet": data}, limits)
    assert message.startswith("diary.parquet: refused: 3,003 values, more than 1,000, the most a data file may hold")


def test_a_parquet_file_of_too_many_columns_is_refused_before_reading(nothing_is_read: None) -> None:
    data = parquet(pa.table({f"c{i}": [1] for i in range(1_001)} | {"patient_id": ["P1"]}))
    message = refusal({"sessions.csv": SESSIONS, "diary.parquet": data}, UPLOAD_LIMITS)
    assert "the header has 1,002 columns, more than 1,000" in message


def test_real_data_as_parquet_pass_the_upload_limits_and_load_as_the_csv_does() -> None:
    sample = PROJECT_DIR / "sample_data"
    as_csv = {name: (sample / name).read_bytes() for name in ("sessions.csv", "diary.csv", "patients.csv")}
    diary = pd.read_csv(io.BytesIO(as_csv["diary.csv"]), dtype=str, keep_default_na=False)
    for compression in ("snappy", "zstd"):
        as_parquet = dict(as_csv)
        del as_parquet["diary.csv"]
        as_parquet["diary.parquet"] = parquet(
            pa.Table.from_pandas(diary, preserve_index=False), compression=compression
        )
        from_csv, from_parquet = load_dataset(as_csv, UPLOAD_LIMITS), load_dataset(as_parquet, UPLOAD_LIMITS)
        pd.testing.assert_frame_equal(from_parquet.tables["diary"], from_csv.tables["diary"])


# --- CSV: judged by its lines ------------------------------------------------------------------


@pytest.mark.parametrize("quoted", [False, True], ids=["fast-reader", "careful-reader"])
def test_a_csv_file_of_more_rows_than_allowed_is_refused(quoted: bool) -> None:
    row = b'"P1",2024-01-02,3\n' if quoted else b"P1,2024-01-02,3\n"
    limits = Limits(max_rows=100, max_values=10**6, max_decoded_bytes=10**9)
    at_limit = {"sessions.csv": SESSIONS, "diary.csv": DIARY_HEADER + row * 100}
    assert load_dataset(at_limit, limits).files[1].rows_read == 100
    message = refusal({"sessions.csv": SESSIONS, "diary.csv": DIARY_HEADER + row * 101}, limits)
    expected = "101 rows, more than 100" if not quoted else "more than 100 rows"
    assert message == f"diary.csv: refused: {expected}, the most a data file may hold", message


@pytest.mark.parametrize("quoted", [False, True], ids=["fast-reader", "careful-reader"])
def test_a_csv_file_of_more_values_than_allowed_is_refused(quoted: bool) -> None:
    row = (b'"P1"' if quoted else b"P1") + b",2024-01-02,3" + b"," * 97 + b"\n"  # 100 columns
    header = DIARY_HEADER.rstrip(b"\n") + b"".join(b",x%d" % i for i in range(97)) + b"\n"
    limits = Limits(max_rows=1_000, max_values=1_000, max_decoded_bytes=10**9)
    assert load_dataset({"sessions.csv": SESSIONS, "diary.csv": header + row * 10}, limits).files[1].rows_read == 10
    message = refusal({"sessions.csv": SESSIONS, "diary.csv": header + row * 11}, limits)
    expected = (
        "11 rows × 100 columns = 1,100 values, more than 1,000"
        if not quoted
        else "more than 1,000 values (100 columns × more than 10 rows)"
    )
    assert message == f"diary.csv: refused: {expected}, the most a data file may hold", message


def test_ragged_rows_count_towards_the_row_limit() -> None:
    limits = Limits(max_rows=100, max_values=10**6, max_decoded_bytes=10**9)
    message = refusal({"sessions.csv": SESSIONS, "diary.csv": DIARY_HEADER + b"x\n" * 101}, limits)
    assert message == "diary.csv: refused: more than 100 rows, the most a data file may hold"


def test_the_careful_reader_keeps_rows_as_arrow_columns_and_reads_what_the_fast_reader_reads() -> None:
    # Quotes send a file to the record-by-record reader, which turns every 65,536 rows into Arrow
    # columns (a Python string per cell costs ten times the text); the result is the fast reader's.
    rows = [b"P%d,2024-01-%02d,%s" % (i % 97, 1 + i % 28, [b"3", b" 25 ", b"x", b"4.5"][i % 4]) for i in range(140_000)]
    plain = DIARY_HEADER + b"\n".join(rows) + b"\n"
    quoted = DIARY_HEADER + b"\n".join(b'"' + row.replace(b",", b'","') + b'"' for row in rows) + b"\n"
    fast, careful = (load_dataset({"sessions.csv": SESSIONS, "diary.csv": data}) for data in (plain, quoted))
    assert [f.rows_read for f in careful.files] == [1, 140_000]
    assert [f.sha256 for f in careful.files] != [f.sha256 for f in fast.files]
    assert [(f.rows_accepted, f.rows_rejected) for f in careful.files] == [
        (f.rows_accepted, f.rows_rejected) for f in fast.files
    ]
    pd.testing.assert_frame_equal(careful.tables["diary"], fast.tables["diary"])
    pd.testing.assert_frame_equal(careful.rejected, fast.rejected)


def test_a_zip_cannot_deliver_a_bigger_file_than_an_upload() -> None:
    diary = DIARY_HEADER + b"P1,2024-01-02,3\n" * 1_000
    limits = Limits(
        max_rows=10**6,
        max_values=10**7,
        max_decoded_bytes=10**9,
        max_file_bytes=len(diary) - 1,
        holder="an uploaded file",
    )
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as members:
        members.writestr("sessions.csv", SESSIONS)
        members.writestr("diary.csv", diary)
    files = files_from_upload({"clinic.zip": archive.getvalue()})
    message = refusal(files, limits)
    assert (
        message == f"diary.csv: refused: {len(diary):,} bytes, more than {len(diary) - 1:,} bytes, the most an "
        "uploaded file may hold"
    )
    assert FOLDER_LIMITS.max_file_bytes is None  # a folder's files are not limited by size, only by rows


# --- which limits apply where ------------------------------------------------------------------


def test_uploads_are_held_tighter_than_folders_and_admit_what_the_upload_size_admits() -> None:
    config = tomllib.loads((PROJECT_DIR / ".streamlit" / "config.toml").read_text())
    upload_bytes = config["server"]["maxUploadSize"] * 10**6
    assert UPLOAD_LIMITS.max_file_bytes == config["server"]["maxUploadSize"] * 2**20  # as Streamlit counts
    assert UPLOAD_LIMITS.max_rows >= upload_bytes / 25  # a full-size CSV upload of rows of 25 bytes or more
    assert UPLOAD_LIMITS.max_values >= UPLOAD_LIMITS.max_rows * 8  # with the 8 columns of the widest file
    assert FOLDER_LIMITS.max_rows >= 25_000_000  # a 100,000-patient registry's diary
    for name in ("max_rows", "max_values", "max_decoded_bytes"):
        assert getattr(UPLOAD_LIMITS, name) < getattr(FOLDER_LIMITS, name), name


def test_the_dashboard_holds_uploads_to_the_upload_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    from ui import state

    monkeypatch.setattr(state, "UPLOAD_LIMITS", Limits(max_rows=10, max_values=1_000, max_decoded_bytes=10**6))
    files = {"sessions.csv": SESSIONS, "diary.csv": DIARY_HEADER + b"P1,2024-01-02,3\n" * 11}
    dataset, refused = state._load(state._Source("upload", ("upload", "test_upload_limits", 1), lambda: files))
    assert dataset is None and refused is not None
    assert refused.startswith("diary.csv: refused: 11 rows, more than 10, the most a data file may hold")
    dataset, refused = state._load(state._Source("folder", ("folder", "test_upload_limits", 1), lambda: files))
    assert refused is None and dataset.files[1].rows_read == 11


def test_the_dashboard_reads_one_upload_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time

    from ui import state

    reading, most = [0], [0]
    lock = threading.Lock()

    def slow_load(files: object, limits: Limits) -> None:
        with lock:
            reading[0] += 1
            most[0] = max(most[0], reading[0])
        time.sleep(0.2)
        with lock:
            reading[0] -= 1
        raise DatasetRefused("diary.csv: refused", 2)

    monkeypatch.setattr(state, "load_dataset", slow_load)
    threads = [
        threading.Thread(target=state._load, args=(state._Source("upload", ("upload", "test_one_at_a_time", i), dict),))
        for i in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1


def test_the_readme_states_the_limits_the_code_applies() -> None:
    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    assert f"| rows | {UPLOAD_LIMITS.max_rows // 10**6} million | {FOLDER_LIMITS.max_rows // 10**6} million" in readme
    assert f"| {UPLOAD_LIMITS.max_values // 10**6} million | {FOLDER_LIMITS.max_values // 10**6} million |" in readme
    unpacked = UPLOAD_LIMITS.max_decoded_bytes // 2**20, FOLDER_LIMITS.max_decoded_bytes // 2**30
    assert f"| {unpacked[0]} MB | {unpacked[1]} GB |" in readme
    assert f"| {UPLOAD_LIMITS.max_ratio:g}-fold | {FOLDER_LIMITS.max_ratio:g}-fold |" in readme
    assert f"first {UPLOAD_LIMITS.max_rejected_listed:,} rejected rows of each file" in readme
    assert FOLDER_LIMITS.max_rejected_listed == UPLOAD_LIMITS.max_rejected_listed
