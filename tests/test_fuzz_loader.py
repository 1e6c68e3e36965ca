"""Fuzz tests of the loader and the de-identification tool: random and mutated files never crash them or lose a row.

Hypothesis feeds ``analytics.ingest.load.load_dataset`` random bytes, random mutations of a small valid
dataset (flipped bits, inserted quotes, delimiters, line ends, NULs and byte-order marks,
truncation, repeated lines, changed headers), the same dataset in other encodings and broken
Parquet. Whatever comes in, the loader either refuses the dataset with ``DatasetRefused`` (exit
status 2 or 3, a one-line message that starts with the file's name) or returns a ``Dataset`` in
which, for every file, each row read is accepted or rejected exactly once (rows read = accepted +
rejected, and their physical lines are distinct), and ``analyse`` runs on it. The de-identification
tool gets the same inputs: it refuses with a one-line message or writes every row it could read,
and what it writes loads row for row. A last test holds Arrow's fast CSV path to the careful
record-by-record reader: same cells, same physical line numbers, whenever it takes a file.
"""

from __future__ import annotations

import io
import string

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.definitions.pipeline import analyse
from analytics.ingest import load
from analytics.ingest.load import Dataset, DatasetRefused, load_dataset
from analytics.ingest.schemas import FILES
from analytics.privacy import deidentify as deid

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def fuzz(examples: int) -> settings:
    """Settings of one fuzz test; about 230 examples in all keep the file near 15 seconds."""
    return settings(FUZZ, max_examples=examples)


KEY = bytes(range(32))

# A small valid dataset touching every file of the contract, with room for non-ASCII text.
VALID: dict[str, bytes] = {
    "sessions.csv": (
        b"patient_id,session_date,total_units,n_injections,injector_id,protocol\n"
        b"P001,2024-03-01,155,31,INJ1,PREEMPT\nP002,2024-03-04,195,39,INJ2,PREEMPT+FTP\n"
        b"P001,2024-05-24,155,31,INJ1,PREEMPT\n"
    ),
    "diary.csv": b"patient_id,date,headache_hours,migraine,severity,acute_medication\n"
    + b"".join(
        b"P001,2024-02-%02d,%d,%s,%d,%s\n" % (d, d % 9, b"true" if d % 2 else b"no", d % 4, b"y" if d % 3 else b"f")
        for d in range(1, 29)
    )
    + b"".join(b"P002,2024-03-%02d,%d.5,1,2,0\n" % (d, d % 5) for d in range(1, 12)),
    "patients.csv": b"patient_id,sex,age_band,clinic,prior_preventives,medication_overuse\n"
    b"P001,F,40-49,North,3,true\nP002,M,90+,South,2,false\n",
    "injections.csv": b"patient_id,session_date,muscle,side,units,sites\nP001,2024-03-01,frontalis,left,10,2\n"
    b"P001,2024-03-01,frontalis,right,10,2\nP002,2024-03-04,temporalis,left,20,4\n",
    "adverse_events.csv": b"patient_id,session_date,event,severity,onset_date,resolved_date,serious\n"
    b"P001,2024-03-01,neck_pain,mild,2024-03-03,2024-03-10,false\n",
    "questionnaires.csv": b"patient_id,date,instrument,score\nP001,2024-02-28,HIT-6,64\nP001,2024-05-20,MIDAS,30\n",
}
INSERTS = [
    b'"',
    b",",
    b";",
    b"\t",
    b"\n",
    b"\r",
    b"\r\n",
    b"\x00",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b" ",
    b'""',
    b"\\",
    b"=",
    b"\xc3",
    b"\xe9",
    b"1e309",
    b"nan",
    b",,,,,,,,",
    b"\xe2\x80\xae",
    b"\xc2\xa0",
]
HEADER_NAMES = [b"", b" ", b"x", b"Name", b"dob", b"\xef\xbb\xbfpatient_id", b"date", b"patient_id", b"DATE"]
TEXT_CELLS = {"sessions.csv": ("injector_id", "INJ2"), "patients.csv": ("clinic", "South")}  # free-text cells
ENCODINGS = [
    "utf-8",
    "utf-8-sig",
    "utf-16",
    "utf-16-le",
    "utf-16-be",
    "utf-32",
    "latin-1",
    "cp1252",
    "cp437",
    "mac-roman",
    "shift_jis",
    "gb18030",
]


def check_loader(files: dict[str, bytes]) -> Dataset | None:
    """The loader's promise on any input: a one-line refusal, or every row accounted for and analysable."""
    try:
        dataset = load_dataset(files)
    except DatasetRefused as refusal:
        message = str(refusal)
        assert refusal.exit_code in (2, 3), message
        assert "\n" not in message and "\r" not in message, message
        assert message.split(":")[0] in set(files) | {spec.filename for spec in FILES.values()}, message
        return None
    for report in dataset.files:
        assert report.rows_read == report.rows_accepted + report.rows_rejected, report
        accepted = dataset.tables[report.file.rsplit(".", 1)[0]]["line"].tolist()
        rejected = dataset.rejected.loc[dataset.rejected["file"] == report.file, "line"].tolist()
        assert (len(accepted), len(rejected)) == (report.rows_accepted, report.rows_rejected), report
        assert len(set(accepted) | set(rejected)) == report.rows_read, report  # distinct physical lines
        assert min(accepted + rejected, default=2) >= 2, report  # the header is line 1
    analyse(dataset)
    return dataset


def check_deidentify(files: dict[str, bytes]) -> None:
    """De-identification refuses in one line, or writes every readable row and its output loads row for row."""
    try:
        result = deid.deidentify(files, KEY)
    except deid.DeidentifyError as error:
        assert "\n" not in str(error) and error.exit_code == 2, str(error)
        return
    for file in result.results:
        assert file.rows_in == file.rows_out + len(file.unreadable_lines), file
    output = load_dataset({name: data for name, data in result.files.items() if name.endswith(".csv")})
    assert {f.file: f.rows_read for f in output.files} == {r.file: r.rows_out for r in result.results}


@st.composite
def mutated_dataset(draw: st.DrawFn) -> dict[str, bytes]:
    """The valid dataset after one to four random edits, in one or several files."""
    files = dict(VALID)
    for _ in range(draw(st.integers(1, 4))):
        name = draw(st.sampled_from(sorted(files)))
        data = bytearray(files[name])
        edit = draw(
            st.sampled_from(["flip", "insert", "insert", "truncate", "delete", "repeat_line", "header", "delimiter"])
        )
        if edit == "flip" and data:
            data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
        elif edit == "insert":
            at = draw(st.integers(0, len(data)))
            data[at:at] = draw(st.sampled_from(INSERTS))
        elif edit == "truncate":
            del data[draw(st.integers(0, len(data))) :]
        elif edit == "delete" and data:
            at = draw(st.integers(0, len(data) - 1))
            del data[at : at + draw(st.integers(1, 40))]
        elif edit == "repeat_line":
            rows = bytes(data).split(b"\n")
            at = draw(st.integers(0, len(rows) - 1))
            rows[at:at] = [rows[at]] * draw(st.integers(1, 3))
            data = bytearray(b"\n".join(rows))
        elif edit == "header":
            header, _, rest = bytes(data).partition(b"\n")
            names = header.split(b",")
            at = draw(st.integers(0, len(names) - 1))
            change = draw(st.sampled_from(["drop", "repeat", "rename", "pad", "upper"]))
            if change == "drop":
                del names[at]
            elif change == "repeat":
                names.insert(at, names[at])
            elif change == "rename":
                names[at] = draw(st.sampled_from(HEADER_NAMES))
            elif change == "pad":
                names[at] = b" " + names[at] + b"\t"
            else:
                names[at] = names[at].upper()
            data = bytearray(b",".join(names) + b"\n" + rest)
        elif edit == "delimiter":
            data = bytearray(bytes(data).replace(b",", draw(st.sampled_from([b";", b"\t", b"|", b", "]))))
        files[name] = bytes(data)
    return files


@fuzz(100)
@given(mutated_dataset())
def test_fuzz_mutated_datasets_are_refused_in_one_line_or_fully_accounted_for(files: dict[str, bytes]) -> None:
    check_loader(files)


CSVISH = st.text(
    alphabet=st.sampled_from([*string.printable, "é", "\u00a0", "\ufeff", "\x00", "２", "\u2028"]), max_size=400
)


@fuzz(25)
@given(
    st.one_of(st.binary(max_size=600), CSVISH.map(lambda t: t.encode("utf-8"))),
    st.sampled_from(["sessions.csv", "diary.csv", "patients.csv", "questionnaires.csv"]),
)
def test_fuzz_random_bytes_in_place_of_a_file(noise: bytes, name: str) -> None:
    check_loader(VALID | {name: noise})


@fuzz(15)
@given(
    st.sampled_from(ENCODINGS),
    st.sampled_from(sorted(TEXT_CELLS)),
    st.sampled_from(["Müller", "O’Brien", "Łódź", "日本", "naïve café", "plain"]),
)
def test_fuzz_other_encodings(encoding: str, name: str, text: str) -> None:
    column, value = TEXT_CELLS[name]
    data = VALID[name].decode("utf-8").replace(value, text).encode(encoding, errors="replace")
    dataset = check_loader(VALID | {name: data})
    if encoding in ("utf-8", "utf-8-sig", "utf-16"):  # the encodings the loader reads (UTF-16 with its BOM)
        assert dataset is not None
        report = next(f for f in dataset.files if f.file == name)
        assert (report.rows_read, report.rows_rejected) == (VALID[name].count(b"\n") - 1, 0)
        assert text in set(dataset.tables[name.removesuffix(".csv")][column])  # the text arrives intact


def _parquet_diary() -> bytes:
    frame = pd.read_csv(io.BytesIO(VALID["diary.csv"]), dtype=str)
    frame["date"] = pd.to_datetime(frame["date"])
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


PARQUET_DIARY = _parquet_diary()


@fuzz(10)
@given(st.lists(st.tuples(st.integers(0, len(PARQUET_DIARY) - 1), st.integers(0, 255)), min_size=1, max_size=6))
def test_fuzz_broken_parquet(edits: list[tuple[int, int]]) -> None:
    data = bytearray(PARQUET_DIARY)
    for at, value in edits:
        data[at] = value
    files = {name: data for name, data in VALID.items() if name != "diary.csv"}
    check_loader(files | {"diary.parquet": bytes(data)})


@fuzz(30)
@given(mutated_dataset())
def test_fuzz_deidentify_refuses_in_one_line_or_keeps_every_row(files: dict[str, bytes]) -> None:
    check_deidentify(files)


CELLS = st.sampled_from(
    [
        "P1",
        "2024-01-01",
        "",
        " ",
        "\u00a0",
        "é",
        "x y",
        "\ufeff",
        "\x0b",
        "\x0c",
        "\x1c",
        "\u2028",
        "\x85",
        " 5 ",
        "\r",
        "\u3000",
        "NA",
        "-",
        "1.0",
    ]
)
LINE_ENDS = st.sampled_from(["\n", "\r\n", "\r", "\n\n", "\r\n\r\n", "\n \n", "\n\t\n", "\r\r\n"])


@fuzz(50)
@given(
    st.sampled_from(["", "\n", "\r\n"]),
    st.lists(st.tuples(st.lists(CELLS, min_size=3, max_size=3), LINE_ENDS), max_size=8),
    st.booleans(),
)
def test_fuzz_the_fast_csv_path_agrees_with_the_careful_reader(
    leading: str, rows: list[tuple[list[str], str]], final_newline: bool
) -> None:
    # Arrow reads most files (the fast path); it must never number a line or split a row differently
    # from Python's csv module, which handles everything else.
    text = "h1,h2,h3\n" + leading + "".join(",".join(cells) + end for cells, end in rows)
    text = text if final_newline else text.rstrip("\n")
    fast = load._read_csv_fast(text.encode("utf-8"), ",")
    if fast is None:
        return
    careful = load._read_csv_records("fuzz.csv", text, ",")
    assert fast[1].tolist() == careful[1].tolist()
    assert len(fast[2]) == len(careful[2]) == 0
    assert (
        load._stripped(fast[0]).astype(object).values.tolist()
        == load._stripped(careful[0]).astype(object).values.tolist()
    )


@pytest.mark.parametrize("name", sorted(VALID))
def test_the_fuzzers_starting_point_is_valid(name: str) -> None:
    # Mutations only mean something if the unmutated dataset loads with nothing rejected.
    dataset = load_dataset(VALID)
    report = next(f for f in dataset.files if f.file == name)
    assert report.rows_read == report.rows_accepted == VALID[name].count(b"\n") - 1 and report.rows_rejected == 0
