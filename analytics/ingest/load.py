"""Loading and validating a dataset (SPEC §2): files in, typed accepted rows and a rejection report out.

A dataset is a folder (or, from the dashboard, a mapping of file names to bytes) of CSV or
Parquet files. Whole-dataset problems raise ``DatasetRefused`` with the exit status of SPEC §2.1;
row problems become rows of a tidy rejection table with the file, the physical line number, the
patient_id, the reason, the column and the offending value. Nothing is dropped silently: for every
file, rows read = rows accepted + rows rejected, and ``Dataset.files`` records those counts; every
other file of the source is listed in ``Dataset.files_not_read`` with the reason it was not read.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import io
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.errors
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from analytics.errors import AnalyticsRefusal
from analytics.ingest import schemas
from analytics.ingest.schemas import FILES, FileSpec

REJECTED_COLUMNS = ["file", "line", "patient_id", "reason", "column", "value"]
# Rejected rows beyond a file's listing: how many per file, reason and patient_id.
UNLISTED_COLUMNS = ["file", "reason", "patient_id", "rows"]
MAX_FIELD_CHARS = 10_000_000  # a cell this long is rejected by its column's rule, not a parse failure
# Each column costs fixed pandas work: a header that is one long line of delimiters must be refused
# quickly, not take minutes. Contract files have at most 8 columns; exports with extra columns fit.
MAX_COLUMNS = 1_000
MAX_VALUE_SHOWN = 200  # rejected values are cut to this length in the report
DEIDENTIFY_HINT = (
    "De-identify before loading: run `python -m analytics deidentify --in RAW_DIR --out DATA_DIR --key-file KEY` "
    "or drop the column and replace patient_id by a pseudonym."
)
_MB = 2**20
# A small file may expand a lot (a column of empty values) and cannot hurt anyone.
_RATIO_FLOOR = 1_000_000


@dataclass(frozen=True)
class Limits:
    """The most one input file may hold; beyond any of these the dataset is refused (exit 2).

    They are checked before the data are read: a Parquet file by its metadata (a few hundred KB of
    Parquet can hold tens of millions of rows), a CSV file by counting its lines. Memory follows rows
    and values, not bytes on disk. The rejection report lists at most ``max_rejected_listed``
    rejected rows per file; the counts stay exact beyond it (``Dataset.rejected_unlisted``).
    """

    max_rows: int
    """Data rows in one file."""
    max_values: int
    """Rows × columns of one file (Parquet: every value of every column, list elements included)."""
    max_decoded_bytes: int
    """Parquet: the column data once decompressed, and the text of dictionary-encoded columns once decoded."""
    max_ratio: float = 100
    """Parquet: decompressed bytes, or values, per byte of the file (real data files: under 10)."""
    max_file_bytes: int | None = None
    """The file itself (None: no limit), so that a ZIP cannot deliver a bigger file than an upload."""
    max_rejected_listed: int = 100_000
    """Rejected rows listed per file in the rejection report (the first, by line)."""
    holder: str = "a data file"
    """Who the limits are for, in the refusal message ("the most … may hold")."""
    hint: str = ""
    """What to do instead, appended to the refusal message."""


# Folders are the clinic's own files: room for a 100,000-patient registry (about 25 million diary rows).
FOLDER_LIMITS = Limits(max_rows=50_000_000, max_values=500_000_000, max_decoded_bytes=16 * 2**30)
# Uploads come from any browser and are capped at 200 MB a file (.streamlit/config.toml maxUploadSize;
# a ZIP may unpack to 500 MB in all, analytics.ingest.archive, but no file in it beyond 200 MB either): a
# 200 MB diary.csv of rows of 25 bytes or more (real ones have 30-40) holds at most 8 million rows of
# at most 8 contract columns.
UPLOAD_LIMITS = Limits(
    max_rows=8_000_000,
    max_values=64_000_000,
    max_decoded_bytes=500 * _MB,
    max_file_bytes=200 * _MB,
    holder="an uploaded file",
    hint="; larger datasets are read from the clinic data folder (OUTCOMES_DATA_DIR)",
)


class DatasetRefused(AnalyticsRefusal):
    """The whole dataset is refused (SPEC §2.1); ``exit_code`` is 2 or 3, ``str()`` is one line.

    A refusal for a missing required file or column carries ``needed_columns``: that file's required
    columns as ``schemas.required_columns`` gives them (column, valid values, meaning), so that the
    person fixing the file sees first what it must hold; other refusals carry an empty list.
    """

    def __init__(
        self,
        message: str,
        exit_code: int,
        file: str | None = None,
        column: str | None = None,
        needed_columns: list[dict[str, str]] | None = None,
    ):
        super().__init__(message)
        self.exit_code = exit_code
        self.file = file
        self.column = column
        self.needed_columns = needed_columns or []

    def __reduce__(self) -> tuple[object, ...]:
        # A refusal raised in a worker process or on a Dask worker reaches the client whole.
        return (DatasetRefused, (str(self), self.exit_code, self.file, self.column, self.needed_columns))


@dataclass(frozen=True)
class FileReport:
    """What happened to one input file."""

    file: str
    sha256: str
    rows_read: int
    rows_accepted: int
    rows_rejected: int
    columns_ignored: tuple[str, ...] = ()


def _empty_unlisted() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "file": pd.Series(dtype=object),
            "reason": pd.Series(dtype=object),
            "patient_id": pd.Series(dtype=schemas.TEXT_DTYPE),
            "rows": pd.Series(dtype="int64"),
        }
    )


class LazyTables(MutableMapping[str, pd.DataFrame]):
    """A dataset's tables where some are read only when first asked for (then kept).

    The analysis store gives a dashboard its dataset this way: the diary of a 100,000-patient network is
    millions of rows that a page showing stored results never needs, so it stays on disk until something
    (a clinic-scoped view, a recomputation) asks for it. ``row_count`` answers without reading.
    """

    def __init__(self, tables: Mapping[str, pd.DataFrame], later: Mapping[str, tuple[Callable[[], pd.DataFrame], int]]):
        self._tables = dict(tables)
        self._later = dict(later)
        self._lock = threading.Lock()

    def __getitem__(self, stem: str) -> pd.DataFrame:
        if stem not in self._tables and stem in self._later:
            with self._lock:  # sessions of a server share one dataset: read it once
                if stem not in self._tables:
                    self._tables[stem] = self._later[stem][0]()
        return self._tables[stem]

    def __setitem__(self, stem: str, table: pd.DataFrame) -> None:
        self._tables[stem] = table
        self._later.pop(stem, None)

    def __delitem__(self, stem: str) -> None:
        self._tables.pop(stem, None)
        self._later.pop(stem, None)

    def __iter__(self) -> Iterator[str]:
        return iter([*self._tables, *(s for s in self._later if s not in self._tables)])

    def __len__(self) -> int:
        return len(set(self._tables) | set(self._later))

    def row_count(self, stem: str) -> int:
        if stem not in self._tables and stem in self._later:
            return self._later[stem][1]
        return len(self._tables[stem])


@dataclass
class Dataset:
    """Typed accepted rows per file stem, the rejection report and a report per file read.

    ``rejected`` lists each rejected row, up to ``Limits.max_rejected_listed`` per file (the first by
    line); rows beyond that are counted in ``rejected_unlisted`` (``UNLISTED_COLUMNS``), so every
    count (``FileReport.rows_rejected``, ``rejected_total``, ``rejection_counts``) stays exact.
    """

    tables: MutableMapping[str, pd.DataFrame]
    """Per file stem; a ``LazyTables`` when read from the analysis store."""
    rejected: pd.DataFrame
    files: list[FileReport]
    present_columns: dict[str, frozenset[str]] = field(default_factory=dict)
    rejected_unlisted: pd.DataFrame = field(default_factory=_empty_unlisted)
    files_not_read: list[tuple[str, str]] = field(default_factory=list)
    """Every other file of the source as (name, reason with a suggestion), from ``unread_files``."""

    def has_column(self, stem: str, column: str) -> bool:
        return column in self.present_columns.get(stem, frozenset())

    def row_count(self, stem: str) -> int:
        """The accepted rows of a table (without reading a table the store has not read yet)."""
        if isinstance(self.tables, LazyTables):
            return self.tables.row_count(stem)
        return len(self.tables[stem])

    def rejected_total(self) -> int:
        """All rejected rows, listed or not."""
        return len(self.rejected) + int(self.rejected_unlisted["rows"].sum())

    def rejected_listed_per_file(self) -> dict[str, int]:
        """For each file whose listing was cut short: how many of its rejected rows are listed."""
        capped = set(self.rejected_unlisted["file"])
        listed = self.rejected["file"].value_counts()
        return {f.file: int(listed.get(f.file, 0)) for f in self.files if f.file in capped}

    def rejection_counts(self) -> pd.DataFrame:
        """Rejected rows counted by file and reason (columns file, reason, rows), listed or not."""
        listed = self.rejected.groupby(["file", "reason"], sort=False).size()
        if not self.rejected_unlisted.empty:
            unlisted = self.rejected_unlisted.groupby(["file", "reason"], sort=False)["rows"].sum()
            listed = listed.add(unlisted, fill_value=0).astype("int64")
        return listed.rename("rows").reset_index().astype({"file": object, "reason": object, "rows": "int64"})

    def file_summary(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "file": f.file,
                    "rows_read": f.rows_read,
                    "rows_accepted": f.rows_accepted,
                    "rows_rejected": f.rows_rejected,
                    "sha256": f.sha256,
                    "columns_ignored": ", ".join(f.columns_ignored),
                }
                for f in self.files
            ]
        )


# --- reading raw files -----------------------------------------------------------------------


@dataclass
class RawTable:
    """A file's cells as stripped strings ("" = missing) with each row's physical line number."""

    name: str
    cells: pd.DataFrame
    lines: np.ndarray
    malformed: pd.DataFrame  # rows that could not be split into the header's fields


def read_source(source: Path | str | Mapping[str, bytes]) -> dict[str, tuple[str, bytes]]:
    """The input files by stem: stem -> (file name, bytes). CSV is preferred over Parquet.

    File names match without regard to case (``Sessions.CSV`` is sessions.csv); other files in a
    folder are neither read nor used. A file that cannot be read refuses the dataset (exit 2).
    """
    if isinstance(source, Mapping):
        named: dict[str, Path | bytes] = {Path(name).name: data for name, data in source.items()}
    else:
        folder = Path(source)
        if not folder.is_dir():
            raise DatasetRefused(f"{folder}: not a folder of data files", 2)
        named = {p.name: p for p in sorted(folder.iterdir()) if p.is_file()}
    found: dict[str, tuple[str, bytes]] = {}
    for stem, name in chosen_files(named).items():
        content = named[name]
        found[stem] = (name, file_bytes(name, content) if isinstance(content, Path) else content)
    return found


def chosen_files(names: Iterable[str]) -> dict[str, str]:
    """stem -> the file read for it among ``names``: names match without regard to case, CSV before Parquet."""
    by_lower = {name.lower(): name for name in sorted(names, reverse=True)}
    found: dict[str, str] = {}
    for stem in FILES:
        for suffix in (".csv", ".parquet"):
            name = by_lower.get(f"{stem}{suffix}")
            if name is not None and stem not in found:
                found[stem] = name
    return found


DATA_SUFFIXES = (".csv", ".parquet")
# Files an operating system or an editor adds to a folder on its own; hidden files (".name") likewise.
SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini"})
SUGGESTION_CUTOFF = 0.75  # difflib ratio: "session" → sessions, but not "medications" → injections


def source_names(source: Path | str | Mapping[str, bytes]) -> list[str]:
    """Every entry of a source, as ``read_source`` sees it: file names, and folders with a trailing '/'."""
    if isinstance(source, Mapping):
        return sorted({Path(name).name for name in source})
    folder = Path(source)
    if not folder.is_dir():
        return []
    return sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())


def _contract_stem(name: str) -> str | None:
    """The contract file a name most likely meant (``adverse-events`` → adverse_events), or None."""
    wanted = name.lower().replace("-", "_").replace(" ", "_")
    # A contract name inside the name ("headache_diary", "sessions_2024", "injection_log") is what was meant.
    inside = [stem for stem in FILES if stem in wanted or stem.rstrip("s") in wanted]
    if inside:
        return max(inside, key=len)
    close = difflib.get_close_matches(wanted, list(FILES), n=1, cutoff=SUGGESTION_CUTOFF)
    return close[0] if close else None


def unread_files(names: Iterable[str], read: Iterable[str]) -> list[tuple[str, str]]:
    """Each name of ``names`` that is not among the file names ``read``, with the reason and a suggestion.

    Hidden files (``.name``) and the files operating systems add (Thumbs.db, desktop.ini) are left
    out. The reasons: a CSV and a Parquet of the same stem ("the CSV is read, the Parquet ignored"),
    two names that differ only in case, a CSV or Parquet outside the data format (with the closest
    contract name: "did you mean adverse_events.csv?"), any other kind of file, and a folder.
    """
    read_names = list(read)
    read_by_stem = {Path(n).stem.lower(): n for n in read_names}
    known = ", ".join(spec.filename for spec in FILES.values())
    out: list[tuple[str, str]] = []
    for name in sorted(set(names) - set(read_names)):
        if name.startswith(".") or name.lower() in SYSTEM_FILES:
            continue
        if name.endswith("/"):
            out.append((name, "a folder: only the files directly in the dataset folder are read"))
            continue
        stem, suffix = Path(name).stem, Path(name).suffix.lower()
        if suffix not in DATA_SUFFIXES:
            guess = _contract_stem(name.split(".")[0])
            hint = f"; to use it, save it as {guess}.csv" if guess else ""
            out.append((name, f"not a CSV or Parquet file{hint}"))
            continue
        other = read_by_stem.get(stem.lower()) if stem.lower() in FILES else None
        if other is not None and Path(other).suffix.lower() != suffix:
            out.append((name, f"the CSV ({other}) is read, the Parquet ignored"))
        elif other is not None:
            out.append((name, f"{other} is read: two files whose names differ only in case"))
        elif (guess := _contract_stem(stem)) is not None:
            out.append((name, f"not a file of the data format; did you mean {guess}{suffix}?"))
        else:
            out.append((name, f"not a file of the data format (its files are {known})"))
    return out


def read_table(name: str, data: bytes, limits: Limits = FOLDER_LIMITS) -> RawTable:
    """Cells of one CSV or Parquet file, refusing (exit 2) what cannot be parsed or exceeds ``limits``."""
    if limits.max_file_bytes is not None and len(data) > limits.max_file_bytes:
        raise _too_big(name, limits, f"{_mb(len(data))}, more than {_mb(limits.max_file_bytes)}")
    if name.endswith(".parquet"):
        return _read_parquet(name, data, limits)
    return _read_csv(name, data, limits)


def _too_big(name: str, limits: Limits, what: str) -> DatasetRefused:
    return DatasetRefused(f"{name}: refused: {what}, the most {limits.holder} may hold{limits.hint}", 2, name)


def _check_size(name: str, rows: int, columns: int, limits: Limits) -> None:
    """Refuse a file of more rows, or rows × columns, than ``limits`` allow."""
    if rows > limits.max_rows:
        raise _too_big(name, limits, f"{rows:,} rows, more than {limits.max_rows:,}")
    if rows * columns > limits.max_values:
        values = f"{rows:,} rows × {columns:,} columns = {rows * columns:,} values"
        raise _too_big(name, limits, f"{values}, more than {limits.max_values:,}")


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / _MB:,.0f} MB" if n_bytes >= 10 * _MB else f"{n_bytes:,} bytes"


_TEXT_TYPES = (pa.string(), pa.large_string(), pa.binary(), pa.large_binary())


def _check_parquet(name: str, data: bytes, limits: Limits) -> None:
    """Refuse a Parquet file that would expand beyond ``limits``, judged by its metadata before reading.

    Rows, values (rows × columns, list elements one by one) and the decompressed column data come
    from the footer. Dictionary encoding can still turn one long value into millions of copies, so
    the text of dictionary-encoded columns is measured from the dictionaries and their indices,
    batch by batch, without decoding it.
    """
    file = pq.ParquetFile(io.BytesIO(data))
    meta, schema, arrow = file.metadata, file.schema, file.schema_arrow
    if len(arrow.names) > MAX_COLUMNS:
        _checked_header(name, [str(c) for c in arrow.names])  # refuses, as for a CSV header
    rows = meta.num_rows
    nested = [i for i in range(meta.num_columns) if schema.column(i).max_repetition_level > 0]
    _check_size(name, rows, meta.num_columns - len(nested), limits)
    values = rows * (meta.num_columns - len(nested))
    decoded = 0
    dictionary_columns: set[str] = set()
    text_columns = {f.name for f in arrow if getattr(f.type, "value_type", f.type) in _TEXT_TYPES}
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        decoded += group.total_byte_size
        values += sum(group.column(i).num_values for i in nested)
        for i in range(meta.num_columns):
            chunk = group.column(i)
            if chunk.has_dictionary_page and chunk.path_in_schema in text_columns and i not in nested:
                dictionary_columns.add(chunk.path_in_schema)
    if values > limits.max_values:
        raise _too_big(name, limits, f"{values:,} values, more than {limits.max_values:,}")
    if decoded > limits.max_decoded_bytes:
        raise _too_big(name, limits, f"its columns unpack to {_mb(decoded)}, more than {_mb(limits.max_decoded_bytes)}")
    expanded = max(decoded, values)
    if expanded > _RATIO_FLOOR and expanded > limits.max_ratio * len(data):
        what = f"{values:,} values" if values >= decoded else f"{_mb(decoded)} of column data"
        raise DatasetRefused(
            f"{name}: refused: {what} from {len(data):,} bytes is a {expanded / len(data):,.0f}-fold expansion, more "
            f"than {limits.max_ratio:g}-fold, which real data files are not (a possible decompression bomb)",
            2,
            name,
        )
    if not dictionary_columns:
        return
    text = 0
    reader = pq.ParquetFile(io.BytesIO(data), read_dictionary=sorted(dictionary_columns))
    for batch in reader.iter_batches(batch_size=65_536, columns=sorted(dictionary_columns), use_pandas_metadata=False):
        for column in batch.columns:
            if isinstance(column, pa.DictionaryArray):
                text += pc.sum(pc.take(pc.binary_length(column.dictionary), column.indices)).as_py() or 0
            else:
                text += pc.sum(pc.binary_length(column)).as_py() or 0
        if text > limits.max_decoded_bytes:
            raise _too_big(name, limits, f"its text decodes to more than {_mb(limits.max_decoded_bytes)}")


def _read_parquet(name: str, data: bytes, limits: Limits) -> RawTable:
    try:
        _check_parquet(name, data, limits)
        frame = pd.read_parquet(io.BytesIO(data))
    except DatasetRefused:
        raise
    except Exception as exc:  # pyarrow raises many types for a broken file
        raise DatasetRefused(f"{name}: cannot be read as Parquet ({type(exc).__name__})", 2, name) from exc
    _check_size(name, len(frame), len(frame.columns), limits)  # in case the metadata understated the rows
    header = _checked_header(name, [str(c) for c in frame.columns])
    cells = pd.DataFrame({h: _parquet_column_as_text(frame[c]) for h, c in zip(header, frame.columns, strict=True)})
    # Parquet rows are numbered as if a header were line 1.
    lines = np.arange(2, len(cells) + 2)
    return RawTable(name, _stripped(cells), lines, _empty_malformed())


def _parquet_column_as_text(column: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(column):
        text = column.dt.strftime("%Y-%m-%d")
    elif pd.api.types.is_bool_dtype(column):
        text = column.map({True: "true", False: "false"})
    elif column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) == "string":
        text = column  # str(v) is v: no call per cell
    else:
        text = _text_by_distinct(column)
    # As Arrow strings: what _stripped makes of them anyway, without a Python pass over the cells.
    text = text.where(column.notna(), "").astype(object)
    return pd.Series(pd.arrays.ArrowExtensionArray(pa.array(text.to_numpy(), pa.string())), index=column.index)


def _as_text(value: object) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _text_by_distinct(column: pd.Series) -> pd.Series:
    """``_as_text`` of every cell, called once per distinct value where equal values have equal text.

    That holds for integers, for floats told apart by their bits (0.0 and -0.0 are equal but are
    written differently) and for Parquet's dates, texts and bytes; anything else (lists, decimals:
    Decimal("1.0") == Decimal("1.00")) is converted cell by cell.
    """
    values = column.to_numpy() if isinstance(column.dtype, np.dtype) else None
    if values is None or values.dtype.kind not in "iufO":
        return column.map(_as_text)
    floats = values.dtype.kind == "f"
    try:
        codes, uniques = pd.factorize(values.view(f"i{values.itemsize}") if floats else values)
    except TypeError:  # unhashable values (lists)
        return column.map(_as_text)
    if floats:
        uniques = uniques.view(values.dtype)
    elif values.dtype.kind == "O" and not all(type(u) in (str, bytes, date) for u in uniques):
        return column.map(_as_text)
    texts = pd.Series(uniques).map(_as_text).to_numpy(dtype=object)
    return pd.Series(np.where(codes >= 0, texts[np.maximum(codes, 0)], ""), index=column.index, dtype=object)


def _decode(name: str, data: bytes) -> str:
    """UTF-8 (with or without BOM); UTF-16 with a BOM is unambiguous, so it is accepted too."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise DatasetRefused(f"{name}: cannot be parsed as CSV: broken UTF-16 text", 2, name) from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        hint = " (it looks like Latin-1/Windows-1252)" if _looks_latin1(data) else ""
        raise DatasetRefused(
            f"{name}: cannot be parsed as CSV: not UTF-8 text at byte {exc.start}{hint}; save it as UTF-8", 2, name
        ) from exc


def _looks_latin1(data: bytes) -> bool:
    sample = data[:65536]
    return b"\x00" not in sample and sum(b >= 0x80 for b in sample) < len(sample) * 0.1


def _read_csv(name: str, data: bytes, limits: Limits = FOLDER_LIMITS) -> RawTable:
    text = _decode(name, data)
    if not text or text.isspace():  # not text.strip(), which copies the whole text
        raise DatasetRefused(f"{name}: cannot be parsed as CSV: the file is empty (no header row)", 2, name)
    if "\x00" in text:
        raise DatasetRefused(f"{name}: cannot be parsed as CSV: it contains binary data (NUL bytes)", 2, name)
    delimiter = _delimiter(text)
    body = text.encode("utf-8") if data.startswith((b"\xff\xfe", b"\xfe\xff")) else data
    body = body[3:] if body.startswith(b"\xef\xbb\xbf") else body
    fast = None
    if b'"' not in body:
        text = ""  # the fast reader reads the bytes: free the decoded copy, and decode again if it declines
        fast = _read_csv_fast(body, delimiter, name, limits)
    table = fast if fast is not None else _read_csv_records(name, text or _decode(name, data), delimiter, limits)
    return RawTable(name, _stripped(table[0]), table[1], table[2])


def _delimiter(text: str) -> str:
    """Comma, or semicolon/tab when the header line has no comma but one of those."""
    header = next((line for line in text[:65536].splitlines() if line.strip()), "")
    if "," not in header:
        for candidate in (";", "\t"):
            if candidate in header:
                return candidate
    return ","


def _read_csv_fast(
    body: bytes, delimiter: str, name: str = "", limits: Limits = FOLDER_LIMITS
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame] | None:
    """Arrow's multi-threaded CSV reader for files without quotes whose lines all have the header's fields.

    Physical line numbers come from the newline positions: the reader skips empty lines, so data
    row i is the i-th non-empty line after the header. Returns None when the file is not that simple
    (whitespace-only lines, ragged rows, repeated header names), for the record-by-record reader.
    """
    raw = np.frombuffer(body, dtype=np.uint8)
    newlines = np.flatnonzero(raw == 10)
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [raw.size]))
    if ends[-1] == starts[-1]:  # nothing after the final newline
        starts, ends = starts[:-1], ends[:-1]
    lengths = ends - starts
    ends_cr = (lengths > 0) & (raw[np.maximum(ends - 1, 0)] == 13)
    if b"\r" in body and body.count(b"\r") != int(ends_cr.sum()):
        return None  # a lone carriage return ends a line for the csv module: one way of numbering lines
    empty = (lengths - ends_cr) == 0
    first = raw[np.minimum(starts, raw.size - 1)]
    if np.any(~empty & np.isin(first, (32, 9))):
        return None  # a line may be whitespace only: leave it to the careful reader
    content = np.flatnonzero(~empty)
    if content.size == 0:
        return None
    delims = np.flatnonzero(raw == ord(delimiter))
    per_line = np.searchsorted(delims, ends[content]) - np.searchsorted(delims, starts[content])
    if np.any(per_line != per_line[0]):
        return None
    header_line = content[0]
    header = body[starts[header_line] : ends[header_line]].decode("utf-8").rstrip("\r").split(delimiter)
    names = [_header_name(h) for h in header]
    if len(header) > MAX_COLUMNS or "" in names or len(set(names)) != len(names):
        return None  # the careful reader names empty columns and refuses repeated ones or too many
    _check_size(name, content.size - 1, len(header), limits)
    try:
        arrow = pacsv.read_csv(
            io.BytesIO(body[starts[header_line] :]),
            read_options=pacsv.ReadOptions(use_threads=True),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, ValueError):
        return None
    data_lines = content[1:]
    if arrow.num_rows != data_lines.size:
        return None
    cells = arrow.to_pandas(types_mapper=lambda t: pd.ArrowDtype(pa.string()) if t == pa.string() else None)
    return cells, data_lines + 1, _empty_malformed()


def _read_csv_records(
    name: str, text: str, delimiter: str, limits: Limits = FOLDER_LIMITS
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Python's csv reader, record by record: handles quotes, quoted newlines and ragged rows."""
    csv.field_size_limit(MAX_FIELD_CHARS)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    rows: list[list[str]] = []  # the latest rows; every _CHUNK_ROWS they become Arrow columns in ``chunks``
    chunks: list[list[pa.Array]] = []
    lines: list[int] = []
    # Rows of the wrong length, column by column (a file may hold millions): line, patient_id, fields.
    malformed: tuple[list[int], list[str], list[int]] = ([], [], [])
    previous_end = 0
    try:
        for record in reader:
            line = previous_end + 1
            previous_end = reader.line_num
            if not record or (all(not cell.strip() for cell in record) and len(record) == 1):
                continue
            if header is None:
                header = _checked_header(name, record)
                most = min(limits.max_rows, limits.max_values // len(header))
                continue
            if len(lines) + len(malformed[0]) >= most:  # one more row than allowed: refuse before keeping it
                too_many = f"more than {limits.max_values:,} values ({len(header):,} columns × more than {most:,} rows)"
                raise _too_big(name, limits, f"more than {most:,} rows" if most == limits.max_rows else too_many)
            if len(record) != len(header):
                malformed[0].append(line)
                malformed[1].append(record[0].strip() if record else "")
                malformed[2].append(len(record))
                continue
            rows.append(record)
            lines.append(line)
            if len(rows) == _CHUNK_ROWS:  # a Python string per cell costs ten times the text: keep few
                chunks.append(_arrow_columns(rows))
                rows = []
    except csv.Error as exc:
        raise DatasetRefused(f"{name}: cannot be parsed as CSV near line {reader.line_num}: {exc}", 2, name) from exc
    if header is None:
        raise DatasetRefused(f"{name}: cannot be parsed as CSV: no header row", 2, name)
    if rows:
        chunks.append(_arrow_columns(rows))
    if not chunks:
        return (
            pd.DataFrame(columns=header, dtype=object),
            np.asarray(lines, dtype=np.int64),
            _malformed_table(*malformed, len(header)),
        )
    cells = pd.DataFrame(
        {
            i: pd.arrays.ArrowExtensionArray(pa.chunked_array([chunk[i] for chunk in chunks], pa.string()))
            for i in range(len(header))
        }
    )
    cells.columns = header
    return cells, np.asarray(lines, dtype=np.int64), _malformed_table(*malformed, len(header))


def _arrow_columns(rows: list[list[str]]) -> list[pa.Array]:
    """Rows of text cells as one Arrow string array per column."""
    return [pa.array(column, pa.string()) for column in zip(*rows, strict=True)]


def _malformed_table(lines: list[int], ids: list[str], fields: list[int], header_fields: int) -> pd.DataFrame:
    """Rows of the wrong length as rejections; the value ("3 fields, header has 6") is categorical."""
    if not lines:
        return _empty_malformed()
    counts, codes = np.unique(np.asarray(fields, dtype=np.int64), return_inverse=True)
    return pd.DataFrame(
        {
            "line": np.asarray(lines, dtype=np.int64),
            "patient_id": np.asarray(ids, dtype=object),
            "reason": schemas.WRONG_FIELD_COUNT,
            "column": "",
            # pandas-stubs: from_codes takes only Sequence[int] codes and Index categories (any array-like works)
            "value": pd.Categorical.from_codes(codes, [f"{n} fields, header has {header_fields}" for n in counts]),  # type: ignore[arg-type]
        }
    )


_CHUNK_ROWS = 65_536


def _header_name(column: object) -> str:
    """A column's name as the loader uses it: surrounding whitespace and a stray byte-order mark removed."""
    return str(column).strip().lstrip("\ufeff")


def _checked_header(name: str, header: list[str]) -> list[str]:
    """The header with empty names made unique; refuses (exit 2) too many columns or a name given twice.

    Names are compared as the loader uses them, so ``date`` and `` date `` are the same column: one
    would otherwise silently replace the other's values.
    """
    if len(header) > MAX_COLUMNS:
        raise DatasetRefused(
            f"{name}: cannot be parsed: the header has {len(header):,} columns, more than {MAX_COLUMNS:,} "
            "(check the delimiter, or delete the empty columns right of the data)",
            2,
            name,
        )
    # Unnamed columns (e.g. trailing delimiters from a spreadsheet) are outside the contract: name them apart.
    named = [h if _header_name(h) else f"unnamed_{i + 1}" for i, h in enumerate(header)]
    counts = Counter(_header_name(h) for h in named)
    repeated = sorted(h for h, n in counts.items() if n > 1)
    if repeated:
        column = repeated[0]
        raise DatasetRefused(f"{name}: column '{_shown(column)}' appears more than once in the header", 2, name, column)
    return named


def _stripped(cells: pd.DataFrame) -> pd.DataFrame:
    """Whitespace around values and header names is ignored (SPEC §2); cells become Arrow strings."""
    stripped = {}
    for column in cells.columns:
        values = pa.array(
            cells[column].fillna("").astype(str) if cells[column].dtype == object else cells[column],
            type=pa.string(),
            from_pandas=True,
        )
        stripped[_header_name(column)] = pd.Series(
            pd.arrays.ArrowExtensionArray(pc.utf8_trim_whitespace(values)), index=cells.index
        )
    return pd.DataFrame(stripped, index=cells.index)


def _empty_malformed() -> pd.DataFrame:
    return pd.DataFrame(columns=REJECTED_COLUMNS[1:])


# --- validating -----------------------------------------------------------------------------


def _shown(text: str, limit: int = 60) -> str:
    """A name cut short for a one-line message (a header cell can be megabytes long)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_header(spec: FileSpec, table: RawTable) -> None:
    """Refuse a file with a direct identifier column (exit 3) or a missing required column (exit 2)."""
    for column in table.cells.columns:
        if schemas.direct_identifier(column):
            raise DatasetRefused(
                f"{table.name}: column '{_shown(column)}' looks like a direct identifier; refusing the dataset. "
                + DEIDENTIFY_HINT,
                3,
                table.name,
                column,
            )
    for column in spec.required_columns:
        if column not in table.cells.columns:
            raise DatasetRefused(
                f"{table.name}: required column '{column}' is missing",
                2,
                table.name,
                column,
                needed_columns=schemas.required_columns(spec.stem),
            )


def _value_failures(spec: FileSpec, cells: pd.DataFrame, typed: pd.DataFrame) -> pd.DataFrame:
    """Rows failing a rule on their own values: row, reason, column (pandera, lazy)."""
    present = [c.name for c in spec.columns if c.name in cells.columns]
    schema = schemas.pandera_schema(spec, typed[present])
    try:
        schema.validate(cells[present], lazy=True)
    except pandera.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        cases = cases[cases["index"].notna()]
        return pd.DataFrame(
            {
                "row": cases["index"].astype("int64").to_numpy(),
                "reason": cases["check"].astype(str).to_numpy(),
                "column": cases["column"].fillna("").astype(str).to_numpy(),
            }
        )
    return pd.DataFrame(
        {"row": pd.Series(dtype="int64"), "reason": pd.Series(dtype=str), "column": pd.Series(dtype=str)}
    )


def _first_failure(spec: FileSpec, failures: pd.DataFrame) -> pd.DataFrame:
    """One reason per row: the first in SPEC §2.1's order."""
    order = {reason: i for i, reason in enumerate(schemas.rule_order(spec))}
    ranked = failures.assign(rank=failures["reason"].map(order).fillna(len(order)))
    ranked = ranked.sort_values(["row", "rank"], kind="stable")
    return ranked.drop_duplicates("row").drop(columns="rank")


def _typed(spec: FileSpec, cells: pd.DataFrame) -> pd.DataFrame:
    typed = {}
    for col in spec.columns:
        if col.name in cells.columns:
            typed[col.name] = col.parse(cells[col.name])
        else:
            typed[col.name] = col.parse(pd.Series([""] * len(cells), index=cells.index, dtype=object))
    return pd.DataFrame(typed, index=cells.index)


def _duplicate_failures(spec: FileSpec, typed: pd.DataFrame) -> pd.DataFrame:
    """Repeated keys among rows that passed every other rule (SPEC §2.1's duplicate rules)."""
    if spec.duplicates == "none" or typed.empty:
        return pd.DataFrame({"row": [], "reason": [], "column": []})
    key = list(spec.key)
    if spec.duplicates == "first":
        repeat = typed.duplicated(key, keep="first")
        return pd.DataFrame({"row": typed.index[repeat], "reason": spec.duplicate_reason, "column": ",".join(key)})
    values = [c.name for c in spec.columns]
    if spec.duplicates == "identical":
        repeat = typed.duplicated(values, keep="first")
        return pd.DataFrame({"row": typed.index[repeat], "reason": schemas.DUPLICATE_ROW, "column": ""})
    # diary: identical repeats keep the first; differing values reject every row of that day.
    in_group = typed.duplicated(key, keep=False)
    groups = typed[in_group]
    if groups.empty:
        return pd.DataFrame({"row": [], "reason": [], "column": []})
    # A day conflicts when its rows differ after parsing (a missing value is a value): count each day's
    # distinct rows. Hashing the typed columns keeps this lean; no Python object per cell is made.
    distinct = ~groups.duplicated(values, keep="first")
    day = groups.groupby(key, sort=False, dropna=False).ngroup().to_numpy()
    group_conflicts = (np.bincount(day, weights=distinct.to_numpy()) > 1)[day]
    conflict_rows = groups.index[group_conflicts]
    identical = groups[~group_conflicts]
    repeat_rows = identical.index[identical.duplicated(key, keep="first")]
    return pd.concat(
        [
            pd.DataFrame({"row": conflict_rows, "reason": schemas.CONFLICT, "column": ",".join(key)}),
            pd.DataFrame({"row": repeat_rows, "reason": schemas.DUPLICATE_ROW, "column": ",".join(key)}),
        ]
    )


def _validate_file(
    spec: FileSpec,
    table: RawTable,
    listed_patients: pd.Index | None,
    sessions: pd.DataFrame | None,
    max_listed: int = FOLDER_LIMITS.max_rejected_listed,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Typed accepted rows (with ``line``), the rejected rows listed, and the rest counted.

    The first ``max_listed`` rejected rows (by line) are listed with their patient_id and value;
    any further ones are only counted, by reason and patient_id (``UNLISTED_COLUMNS``), so a file
    of millions of rejected rows does not become millions of Python strings.
    """
    cells = table.cells
    parsed = _typed(spec, cells)
    failures = _value_failures(spec, cells, parsed)
    # Rows still in the running; filtering only when something fails keeps the clean path copy-free.
    typed = parsed.drop(index=pd.Index(failures["row"].unique())) if len(failures) else parsed
    relation = []
    if listed_patients is not None and spec.stem != "patients":
        unknown = ~typed["patient_id"].isin(listed_patients)
        if unknown.any():
            relation.append(
                pd.DataFrame({"row": typed.index[unknown], "reason": schemas.UNKNOWN_PATIENT, "column": "patient_id"})
            )
            typed = typed[~unknown]
    if spec.session_linked and sessions is not None:
        known = pd.MultiIndex.from_frame(sessions[["patient_id", "session_date"]])
        linked = pd.MultiIndex.from_frame(typed[["patient_id", "session_date"]]).isin(known)
        if not linked.all():
            relation.append(
                pd.DataFrame({"row": typed.index[~linked], "reason": schemas.UNKNOWN_SESSION, "column": "session_date"})
            )
            typed = typed[linked]
    duplicates = _duplicate_failures(spec, typed)
    if len(duplicates):
        typed = typed.drop(index=pd.Index(duplicates["row"].astype("int64")))
    rejected = pd.concat([_first_failure(spec, failures), *relation, duplicates], ignore_index=True)
    rows = rejected["row"].astype("int64").to_numpy()
    lines = table.lines[rows]
    malformed = table.malformed
    malformed_lines = malformed["line"].to_numpy(dtype=np.int64)
    # The listing holds the rejected rows up to the ``max_listed``-th line (lines are unique in a file).
    every_line = np.concatenate([lines, malformed_lines])
    if every_line.size <= max_listed:
        last_listed = np.iinfo(np.int64).max
    else:
        last_listed = np.partition(every_line, max_listed - 1)[max_listed - 1] if max_listed > 0 else 0
    listed, listed_malformed = lines <= last_listed, malformed_lines <= last_listed
    rows, columns = rows[listed], rejected["column"].to_numpy()[listed]
    rejected_report = pd.DataFrame(
        {
            "file": table.name,
            "line": lines[listed],
            "patient_id": cells["patient_id"].iloc[rows].to_numpy(dtype=object) if "patient_id" in cells else "",
            "reason": rejected["reason"].to_numpy()[listed],
            "column": columns,
            "value": _values_shown(cells, rows, columns),
        }
    )
    malformed = malformed[listed_malformed].assign(file=table.name).astype({"value": object})[REJECTED_COLUMNS]
    unlisted = _unlisted_counts(
        table,
        rejected["reason"].to_numpy()[~listed],
        rejected["row"].to_numpy()[~listed],
        table.malformed[~listed_malformed],
    )
    accepted = typed.assign(line=table.lines[typed.index.to_numpy()]).reset_index(drop=True)
    return accepted, pd.concat([rejected_report, malformed], ignore_index=True), unlisted


def _arrow_text(column: pd.Series) -> pa.Array | pa.ChunkedArray:
    """A column of text cells as Arrow strings (without a copy when it is Arrow-backed already)."""
    return pa.array(column.array, type=pa.string(), from_pandas=True)


def _values_shown(cells: pd.DataFrame, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Each rejected row's value in its failing column, cut to ``MAX_VALUE_SHOWN`` characters ("" for none).

    One vectorised take per column, instead of a Python call per rejected row.
    """
    values = np.full(len(rows), "", dtype=object)
    for column in pd.unique(columns):
        if column not in cells.columns:
            continue
        at = columns == column
        text = _arrow_text(cells[column]).take(pa.array(rows[at]))
        values[at] = pc.utf8_slice_codeunits(text, 0, MAX_VALUE_SHOWN).to_numpy(zero_copy_only=False)
    return values


def _unlisted_counts(table: RawTable, reasons: np.ndarray, rows: np.ndarray, malformed: pd.DataFrame) -> pd.DataFrame:
    """Rejected rows beyond the listing, counted by reason and patient_id (for exact counts per clinic)."""
    if not len(reasons) and malformed.empty:
        return _empty_unlisted()
    ids = _arrow_text(table.cells["patient_id"]).take(pa.array(rows.astype(np.int64)))
    codes, names = pd.factorize(reasons)
    counted = (
        pa.table({"reason": codes, "patient_id": ids})
        .group_by(["reason", "patient_id"], use_threads=False)
        .aggregate([([], "count_all")])
        .to_pandas(types_mapper={pa.string(): pd.ArrowDtype(pa.string())}.get)
    )
    parts = [
        pd.DataFrame(
            {
                "reason": np.asarray(names, dtype=object)[counted["reason"].to_numpy()],
                "patient_id": counted["patient_id"].astype(schemas.TEXT_DTYPE),
                "rows": counted["count_all"].astype("int64"),
            }
        ),
    ]
    if not malformed.empty:
        by_id = malformed.groupby("patient_id", sort=False).size()
        parts.append(
            pd.DataFrame(
                {
                    "reason": schemas.WRONG_FIELD_COUNT,
                    "patient_id": pd.Series(by_id.index, dtype=schemas.TEXT_DTYPE),
                    "rows": by_id.to_numpy(dtype="int64"),
                }
            )
        )
    counts = pd.concat(parts, ignore_index=True).assign(file=table.name)[UNLISTED_COLUMNS]
    return counts.sort_values(["reason", "patient_id"], kind="stable", ignore_index=True)


def table_folders(source: Path | str | Mapping[str, bytes], found: Iterable[str]) -> dict[str, tuple[str, list[Path]]]:
    """Partitioned Parquet tables: a folder named after a contract file (``diary/``) of ``*.parquet`` parts.

    Only for stems without a file of their own (``found``); the parts are read in name order as one
    table (``read_parts``). Returns stem -> (name with a trailing '/', part paths).
    """
    if isinstance(source, Mapping):
        return {}
    folder = Path(source)
    if not folder.is_dir():
        return {}
    folders = {p.name.lower(): p for p in sorted(folder.iterdir(), reverse=True) if p.is_dir()}
    out: dict[str, tuple[str, list[Path]]] = {}
    for stem in FILES:
        sub = folders.get(stem)
        if stem in found or sub is None:
            continue
        parts = sorted(p for p in sub.iterdir() if p.is_file() and p.suffix.lower() == ".parquet")
        if parts:
            out[stem] = (f"{sub.name}/", parts)
    return out


def file_bytes(name: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DatasetRefused(f"{name}: cannot be read ({exc.strerror or exc})", 2, name) from exc


def read_parts(name: str, parts: list[Path], limits: Limits = FOLDER_LIMITS) -> tuple[RawTable, str]:
    """A partitioned Parquet table: its parts read one by one (``read_table``, ``limits`` per part) as one table.

    Rows are numbered across the parts in name order, as if they were one file (row number + 1);
    every part must have the first part's columns. Returns the table and the SHA-256 of the parts'
    bytes one after the other.
    """
    digest = hashlib.sha256()
    tables: list[RawTable] = []
    offset = 0
    for path in parts:
        part_name = f"{name}{path.name}"
        data = file_bytes(part_name, path)
        digest.update(data)
        table = read_table(part_name, data, limits)
        check_same_columns(name, tables[0].cells.columns if tables else None, part_name, table.cells.columns)
        tables.append(RawTable(name, table.cells, table.lines + offset, table.malformed))
        offset += len(table.cells)
    cells = pd.concat([t.cells for t in tables], ignore_index=True)
    return RawTable(name, cells, np.concatenate([t.lines for t in tables]), _empty_malformed()), digest.hexdigest()


def check_same_columns(name: str, first: Iterable[str] | None, part_name: str, columns: Iterable[str]) -> None:
    """Refuse (exit 2) a part of a partitioned table whose columns are not those of the first part."""
    if first is not None and list(first) != list(columns):
        raise DatasetRefused(f"{part_name}: its columns differ from those of the first part of {name}", 2, part_name)


def check_required_files(stems: Iterable[str]) -> None:
    """Refuse (exit 2) a dataset without one of the required files."""
    present = set(stems)
    for stem, spec in FILES.items():
        if spec.required and stem not in present:
            raise DatasetRefused(
                f"{spec.filename}: required file is missing",
                2,
                spec.filename,
                needed_columns=schemas.required_columns(stem),
            )


@dataclass
class Validated:
    """One file's validation: accepted rows, rejected rows listed and counted, contract columns present."""

    accepted: pd.DataFrame
    rejected: pd.DataFrame
    unlisted: pd.DataFrame
    present: frozenset[str]
    ignored: tuple[str, ...]


def empty_table(stem: str) -> pd.DataFrame:
    """The accepted rows of a file the dataset does not have: no rows, the contract's typed columns and line."""
    spec = FILES[stem]
    return _typed(spec, pd.DataFrame(columns=[c.name for c in spec.columns])).assign(line=pd.Series(dtype="int64"))


def validate_tables(raw: Mapping[str, RawTable], max_listed: int) -> dict[str, Validated]:
    """SPEC §2.1's row rules over every file read, sessions first (linked files need its accepted rows).

    Every rule is local to one patient, so this runs as well on the rows of a partition of patients
    (``analytics.scale``) as on a whole dataset.
    """
    listed = None
    if "patients" in raw and "patient_id" in raw["patients"].cells:
        ids = raw["patients"].cells["patient_id"]
        listed = pd.Index(ids[ids.str.fullmatch(schemas.PATIENT_ID_PATTERN.strip("^$"))].unique())
    out: dict[str, Validated] = {}
    for stem, spec in FILES.items():
        if stem not in raw:
            continue
        table = raw[stem]
        sessions = out["sessions"].accepted if "sessions" in out else None
        accepted, rejected_rows, unlisted_rows = _validate_file(spec, table, listed, sessions, max_listed)
        contract = {c.name for c in spec.columns}
        out[stem] = Validated(
            accepted,
            rejected_rows,
            unlisted_rows,
            frozenset(c for c in table.cells.columns if c in contract),
            tuple(c for c in table.cells.columns if c not in contract),
        )
    return out


def rejection_report(rejected: list[pd.DataFrame]) -> pd.DataFrame:
    """The listed rejected rows of every file, in file name and line order."""
    report = pd.concat(rejected, ignore_index=True) if rejected else pd.DataFrame(columns=REJECTED_COLUMNS)
    report = report.astype({"line": "int64"}).sort_values(["file", "line"], kind="stable").reset_index(drop=True)
    return report[REJECTED_COLUMNS]


def unlisted_report(unlisted: list[pd.DataFrame]) -> pd.DataFrame:
    kept = [u for u in unlisted if len(u)]
    return pd.concat(kept, ignore_index=True) if kept else _empty_unlisted()


def load_dataset(source: Path | str | Mapping[str, bytes], limits: Limits = FOLDER_LIMITS) -> Dataset:
    """Read, check and type a dataset; raises ``DatasetRefused`` for whole-dataset problems.

    ``limits`` bound what one file may hold: ``FOLDER_LIMITS`` (the default) for the clinic's own
    folder, ``UPLOAD_LIMITS`` for files uploaded through the dashboard. A folder may hold a table as
    a folder of Parquet parts (``table_folders``).
    """
    files = read_source(source)
    folders = table_folders(source, files)
    raw: dict[str, RawTable] = {}
    names: dict[str, str] = {}
    digests: dict[str, str] = {}
    for stem in FILES:
        if stem in files:
            name, data = files[stem]
            raw[stem] = read_table(name, data, limits)
            digests[stem] = hashlib.sha256(data).hexdigest()
        elif stem in folders:
            name, parts = folders[stem]
            raw[stem], digests[stem] = read_parts(name, parts, limits)
        else:
            continue
        names[stem] = name
        check_header(FILES[stem], raw[stem])
    check_required_files(raw)
    validated = validate_tables(raw, limits.max_rejected_listed)
    tables = {stem: validated[stem].accepted if stem in validated else empty_table(stem) for stem in FILES}
    reports = [
        FileReport(
            file=names[stem],
            sha256=digests[stem],
            rows_read=len(raw[stem].cells) + len(raw[stem].malformed),
            rows_accepted=len(v.accepted),
            rows_rejected=len(v.rejected) + int(v.unlisted["rows"].sum()),
            columns_ignored=v.ignored,
        )
        for stem, v in validated.items()
    ]
    return Dataset(
        tables=tables,
        rejected=rejection_report([v.rejected for v in validated.values()]),
        files=reports,
        present_columns={stem: validated[stem].present if stem in validated else frozenset() for stem in FILES},
        rejected_unlisted=unlisted_report([v.unlisted for v in validated.values()]),
        files_not_read=unread_files(source_names(source), names.values()),
    )
