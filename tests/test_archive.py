"""Uploads: the ZIP archive guard (analytics.ingest.archive) and the upload path into the loader.

Archives are built in memory with ``zipfile`` for each case; the hostile ones (path traversal,
nested archive, too many members, too large, a decompression bomb, encryption) must be refused
with a one-line message that says what is wrong, before any member is handed to the loader.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path

import pytest

from analytics.ingest.archive import ArchiveRefused, build_zip, extract_data_files, files_from_upload
from analytics.ingest.load import DatasetRefused, load_dataset

CONFORMANCE = Path(__file__).resolve().parent / "conformance" / "data"
SESSIONS = b"patient_id,session_date\nP1,2024-01-01\n"
DIARY = b"patient_id,date,headache_hours\nP1,2024-01-02,5\n"


def make_zip(members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # duplicate names are written on purpose in one test
            for name, data in members.items() if isinstance(members, dict) else members:
                # A fixed time keeps the bytes (and parametrize ids) the same in every pytest worker.
                archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data, compression)
    return buffer.getvalue()


def refusal(data: bytes, **limits: object) -> str:
    with pytest.raises(ArchiveRefused) as caught:
        extract_data_files(data, "clinic.zip", **limits)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("clinic.zip")
    return message


def test_top_level_members_come_back_by_name_and_unchanged() -> None:
    files = extract_data_files(make_zip({"sessions.csv": SESSIONS, "diary.csv": DIARY}))
    assert files == {"sessions.csv": SESSIONS, "diary.csv": DIARY}


def test_members_of_one_folder_come_back_by_base_name_and_system_files_are_ignored() -> None:
    data = make_zip(
        {
            "export/": b"",
            "export/sessions.csv": SESSIONS,
            "export/diary.parquet": b"PAR1",
            "export/README.txt": b"notes",
            "__MACOSX/export/._sessions.csv": b"\x00\x05",
            "export/.DS_Store": b"\x00",
        }
    )
    assert extract_data_files(data) == {"sessions.csv": SESSIONS, "diary.parquet": b"PAR1"}


@pytest.mark.parametrize(
    "name",
    [
        "../sessions.csv",
        "export/../../diary.csv",
        "/etc/sessions.csv",
        "C:/data/sessions.csv",
        "export\\..\\sessions.csv",
    ],
)
def test_member_names_that_escape_the_folder_are_refused(name: str) -> None:
    assert "points outside the archive" in refusal(make_zip({name: SESSIONS, "diary.csv": DIARY}))


@pytest.mark.parametrize("name", ["inner.zip", "export/data.tar.gz", "diary.csv.gz"])
def test_an_archive_inside_the_archive_is_refused(name: str) -> None:
    assert "contains another archive" in refusal(make_zip({"sessions.csv": SESSIONS, name: b"PK.."}))


def test_more_than_twenty_members_are_refused() -> None:
    members = {f"extra_{i}.csv": b"a\n1\n" for i in range(19)} | {"sessions.csv": SESSIONS, "diary.csv": DIARY}
    assert "holds 21 files, more than 20" in refusal(make_zip(members))
    assert len(extract_data_files(make_zip(dict(list(members.items())[1:])))) == 20  # 20 is allowed


def test_an_archive_unpacking_past_the_size_limit_is_refused() -> None:
    data = make_zip({"sessions.csv": SESSIONS, "diary.csv": DIARY * 100}, compression=zipfile.ZIP_STORED)
    total = len(SESSIONS) + 100 * len(DIARY)
    assert "unpacks to more than" in refusal(data, max_bytes=total - 1)
    assert extract_data_files(data, max_bytes=total)["diary.csv"] == DIARY * 100


def test_a_decompression_bomb_is_refused_by_its_compression_ratio() -> None:
    # 8 MB of one repeated line deflates about 1000-fold; real CSV data compresses 5-20-fold.
    bomb = make_zip({"sessions.csv": SESSIONS, "diary.csv": b"P1,2024-01-02,5\n" * 500_000})
    assert "decompression bomb" in refusal(bomb)


def test_an_encrypted_member_is_refused() -> None:
    data = bytearray(make_zip({"sessions.csv": SESSIONS, "diary.csv": DIARY}))
    # Set bit 0 (encrypted) of the general-purpose flags in every local and central header.
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (start := data.find(signature, start)) >= 0:
            data[start + flag_offset] |= 0x01
            start += 4
    assert "is encrypted" in refusal(bytes(data))


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ({"a/sessions.csv": SESSIONS, "b/diary.csv": DIARY}, "in one folder"),
        ({"sessions.csv": SESSIONS, "export/diary.csv": DIARY}, "in one folder"),
        ({"export/2024/sessions.csv": SESSIONS, "export/2024/diary.csv": DIARY}, "in one folder"),
        ({"README.txt": b"no data here"}, "holds no .csv or .parquet files"),
    ],
)
def test_data_files_must_sit_at_the_top_or_in_one_folder(members: dict[str, bytes], expected: str) -> None:
    assert expected in refusal(make_zip(members))


def test_the_same_file_twice_is_refused() -> None:
    data = make_zip([("sessions.csv", SESSIONS), ("sessions.csv", SESSIONS), ("diary.csv", DIARY)])
    assert "'sessions.csv' appears more than once" in refusal(data)


@pytest.mark.parametrize(
    "data", [b"", b"not a zip at all", make_zip({"sessions.csv": SESSIONS})[:40]], ids=["empty", "text", "truncated"]
)
def test_a_broken_zip_is_refused_as_a_dataset_with_exit_status_2(data: bytes) -> None:
    message = refusal(data)
    assert "cannot be opened as a ZIP archive" in message
    with pytest.raises(DatasetRefused) as caught:
        files_from_upload({"clinic.zip": data})
    assert caught.value.exit_code == 2


def test_an_upload_of_data_files_passes_them_through_by_base_name() -> None:
    assert files_from_upload({"sessions.csv": SESSIONS, "dir/diary.csv": DIARY}) == {
        "sessions.csv": SESSIONS,
        "diary.csv": DIARY,
    }


def test_an_upload_of_one_zip_is_unpacked() -> None:
    assert files_from_upload({"Export.ZIP": make_zip({"sessions.csv": SESSIONS, "diary.csv": DIARY})}) == {
        "sessions.csv": SESSIONS,
        "diary.csv": DIARY,
    }


@pytest.mark.parametrize(
    ("uploads", "expected"),
    [
        ({"a.zip": make_zip({"sessions.csv": SESSIONS}), "diary.csv": DIARY}, "not a.zip, diary.csv"),
        ({"a.zip": make_zip({"sessions.csv": SESSIONS}), "b.zip": make_zip({"diary.csv": DIARY})}, "ONE ZIP"),
        ({"sessions.csv": SESSIONS, "notes.txt": b"x"}, "notes.txt: not a CSV, Parquet or ZIP file"),
    ],
    ids=["zip-and-csv", "two-zips", "text-file"],
)
def test_mixed_or_unknown_uploads_are_refused(uploads: dict[str, bytes], expected: str) -> None:
    with pytest.raises(ArchiveRefused, match=expected.replace(".", r"\.")):
        files_from_upload(uploads)


def test_build_zip_is_deterministic_and_round_trips() -> None:
    files = {"patient_cycles.csv": b"a,b\n1,2\n", "manifest.json": b"{}\n"}
    first, second = build_zip(files), build_zip(dict(files))
    assert first == second
    assert extract_data_files(first) == {"patient_cycles.csv": b"a,b\n1,2\n"}  # the JSON is not a data file
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert archive.namelist() == list(files)
        assert {name: archive.read(name) for name in files} == files


@pytest.mark.skipif(not CONFORMANCE.is_dir(), reason="tests/conformance/data is missing")
def test_a_zipped_dataset_loads_exactly_like_its_folder() -> None:
    folder = {p.name: p.read_bytes() for p in sorted(CONFORMANCE.iterdir()) if p.suffix == ".csv"}
    zipped = {f"conformance/{name}": data for name, data in folder.items()}
    from_zip = load_dataset(files_from_upload({"conformance.zip": make_zip(zipped)}))
    from_folder = load_dataset(CONFORMANCE)
    assert from_zip.files == from_folder.files  # names, SHA-256 and row counts
    assert from_zip.rejected.equals(from_folder.rejected)
