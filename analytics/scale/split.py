"""Splitting the input files into partitions of patients, each row with its physical line number.

A partition is a folder of shards per file stem (Arrow IPC files, uncompressed: each is written and
read once); a shard holds the file's cells as the single-process loader reads them (stripped text,
columns ``c0, c1, …`` in header order) and the row's ``line``. A row goes to partition
``hash(patient_id text) mod partitions`` (pandas' stable SipHash), so every row of a patient, in
every file, lands in the same partition.

Three kinds of split task, all giving the cells ``load.read_table`` gives:

- ``CsvBlock``: a run of whole lines of a CSV file that ``load``'s fast reader would read
  (no quotes, every line with the header's fields): parsed by Arrow, in parallel, block by block;
  a block that is not that simple makes the whole file a ``WholeFile``;
- ``WholeFile``: any other file (quotes, ragged rows, UTF-16, a single Parquet file), read whole by
  ``load.read_table`` exactly as the single-process loader reads it; rows of the wrong length stay
  with the client;
- ``ParquetPart``: one part of a partitioned Parquet table (a folder of parts), read by
  ``load.read_table``, its rows numbered on from the parts before it.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq

from analytics.ingest import load
from analytics.ingest.load import FOLDER_LIMITS, DatasetRefused, Limits, RawTable
from analytics.ingest.schemas import FILES

BLOCK_BYTES = 64 * 2**20
"""Bytes of CSV per split task (whole lines; a line longer than this is read in one piece)."""
LINE = "line"


def partition_of(ids: pa.Array | pa.ChunkedArray, partitions: int) -> np.ndarray:
    """The partition of each patient_id text: a stable hash (the same in every process and on every machine).

    Each distinct id is hashed once (pandas' SipHash of the text); rows look their id's partition up.
    """
    if partitions == 1:
        return np.zeros(len(ids), dtype=np.int64)
    encoded = pc.dictionary_encode(ids)
    chunks = encoded.chunks if isinstance(encoded, pa.ChunkedArray) else [encoded]
    out = []
    for chunk in chunks:
        distinct = chunk.dictionary.to_numpy(zero_copy_only=False).astype(object)
        of_distinct = (pd.util.hash_array(distinct, categorize=False) % np.uint64(partitions)).astype(np.int64)
        out.append(of_distinct[chunk.indices.to_numpy(zero_copy_only=False)])
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def column_names(count: int) -> list[str]:
    """The shards' column names: the header's names may be anything, ``line`` included."""
    return [f"c{i}" for i in range(count)]


@dataclass(frozen=True)
class TableInput:
    """One table of the source: a file, or a folder of Parquet parts."""

    stem: str
    name: str
    """As the reports give it: ``diary.csv``, ``diary.parquet`` or ``diary/``."""
    paths: tuple[Path, ...]


def table_inputs(folder: Path) -> dict[str, TableInput]:
    """The tables ``load.load_dataset`` reads from ``folder``, chosen as it chooses them, without reading them."""
    if not folder.is_dir():
        raise DatasetRefused(f"{folder}: not a folder of data files", 2)
    named = {p.name: p for p in sorted(folder.iterdir()) if p.is_file()}
    files = load.chosen_files(named)
    folders = load.table_folders(folder, files)
    out: dict[str, TableInput] = {}
    for stem in FILES:
        if stem in files:
            out[stem] = TableInput(stem, files[stem], (named[files[stem]],))
        elif stem in folders:
            out[stem] = TableInput(stem, folders[stem][0], tuple(folders[stem][1]))
    return out


@dataclass(frozen=True)
class CsvBlock:
    stem: str
    name: str
    path: Path
    start: int
    end: int
    lines_before: int
    """Newlines of the file before ``start`` (after a UTF-8 byte-order mark)."""
    header: tuple[str, ...]
    delimiter: str


@dataclass(frozen=True)
class WholeFile:
    stem: str
    name: str
    path: Path


@dataclass(frozen=True)
class ParquetPart:
    stem: str
    name: str
    part_name: str
    path: Path
    offset: int
    """Rows of the parts before this one."""


SplitTask = CsvBlock | WholeFile | ParquetPart


@dataclass
class SplitResult:
    rows: int
    """Rows written to the partitions (rows of the wrong length not included)."""
    columns: tuple[str, ...] = ()
    """The file's column names, as the loader names them."""
    malformed: pd.DataFrame | None = None
    """Rows of the wrong length (``WholeFile`` only), kept by the client."""
    simple: bool = True
    """False: a ``CsvBlock`` the fast reader would not read; the file is read as a ``WholeFile``."""


def shard_folder(root: Path, stem: str, partition: int) -> Path:
    return root / "shards" / stem / f"{partition:05d}"


def write_shards(root: Path, stem: str, task: int, cells: pa.Table, lines: np.ndarray, partitions: int) -> None:
    """Rows to the partitions of their patients: one shard per (task, partition) that has rows."""
    names = column_names(cells.num_columns)
    table = pa.table([*cells.columns, pa.array(lines, pa.int64())], names=[*names, LINE])
    if "patient_id" in cells.column_names:
        part = partition_of(cells.column("patient_id"), partitions)
    else:
        part = np.zeros(table.num_rows, dtype=np.int64)
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(partitions + 1))
    ordered = table.take(pa.array(order)) if partitions > 1 else table
    for p in range(partitions):
        if bounds[p + 1] > bounds[p]:
            folder = shard_folder(root, stem, p)
            folder.mkdir(parents=True, exist_ok=True)
            shard = ordered.slice(bounds[p], bounds[p + 1] - bounds[p])
            feather.write_feather(shard, folder / f"{task:06d}.arrow", compression="uncompressed")


def _cells_table(cells: pd.DataFrame) -> pa.Table:
    columns = [pa.array(cells[c].array, type=pa.string(), from_pandas=True) for c in cells.columns]
    return pa.table(columns, names=[str(c) for c in cells.columns])


def run_split(task: SplitTask, index: int, root: Path, partitions: int, limits: Limits = FOLDER_LIMITS) -> SplitResult:
    """One split task: read its rows as the loader reads them and write them to their partitions."""
    if isinstance(task, CsvBlock):
        return _split_block(task, index, root, partitions)
    if isinstance(task, ParquetPart):
        data = load.file_bytes(task.part_name, task.path)
        raw = load.read_table(task.part_name, data, limits)
        write_shards(root, task.stem, index, _cells_table(raw.cells), raw.lines + task.offset, partitions)
        return SplitResult(len(raw.cells), tuple(raw.cells.columns))
    data = load.file_bytes(task.name, task.path)
    raw = load.read_table(task.name, data, limits)
    load.check_header(FILES[task.stem], raw)
    write_shards(root, task.stem, index, _cells_table(raw.cells), raw.lines, partitions)
    return SplitResult(len(raw.cells), tuple(raw.cells.columns), raw.malformed)


def _split_block(task: CsvBlock, index: int, root: Path, partitions: int) -> SplitResult:
    """``load._read_csv_fast`` on a run of whole lines: the same checks, the same cells and line numbers."""
    with open(task.path, "rb") as handle:
        handle.seek(task.start)
        block = handle.read(task.end - task.start)
    not_simple = SplitResult(0, simple=False)
    if b'"' in block or b"\x00" in block:
        return not_simple
    raw = np.frombuffer(block, dtype=np.uint8)
    newlines = np.flatnonzero(raw == 10)
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [raw.size]))
    if ends[-1] == starts[-1]:
        starts, ends = starts[:-1], ends[:-1]
    if starts.size == 0:
        return SplitResult(0, task.header)
    lengths = ends - starts
    ends_cr = (lengths > 0) & (raw[np.maximum(ends - 1, 0)] == 13)
    if b"\r" in block and block.count(b"\r") != int(ends_cr.sum()):
        return not_simple
    empty = (lengths - ends_cr) == 0
    first = raw[np.minimum(starts, raw.size - 1)]
    if np.any(~empty & np.isin(first, (32, 9))):
        return not_simple
    content = np.flatnonzero(~empty)
    if content.size == 0:
        return SplitResult(0, task.header)
    delims = np.flatnonzero(raw == ord(task.delimiter))
    per_line = np.searchsorted(delims, ends[content]) - np.searchsorted(delims, starts[content])
    if np.any(per_line != len(task.header) - 1):
        return not_simple
    try:
        arrow = pacsv.read_csv(
            io.BytesIO(block),
            read_options=pacsv.ReadOptions(column_names=list(task.header), use_threads=False),
            parse_options=pacsv.ParseOptions(delimiter=task.delimiter, newlines_in_values=False),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in task.header}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, ValueError):
        return not_simple
    if arrow.num_rows != content.size:
        return not_simple
    names = [load._header_name(h) for h in task.header]
    cells = pa.table([pc.utf8_trim_whitespace(c) for c in arrow.columns], names=names)
    write_shards(root, task.stem, index, cells, task.lines_before + content + 1, partitions)
    return SplitResult(arrow.num_rows, tuple(names))


@dataclass(frozen=True)
class CsvPlan:
    tasks: list[SplitTask]
    sha256: str
    bytes: int
    columns: tuple[str, ...] = ()
    """The header's names as the loader names them (empty for a ``WholeFile``)."""


def plan_csv(table: TableInput, block_bytes: int | None = None) -> CsvPlan:
    """Blocks of whole lines of a CSV file, or one ``WholeFile`` when the fast reader would not read it.

    One pass over the file: its SHA-256, and the newlines before each block (for line numbers; a
    UTF-8 byte-order mark holds none, so they count as the loader counts them).
    """
    block_bytes = block_bytes or BLOCK_BYTES
    path = table.paths[0]
    digest = hashlib.sha256()
    size = path.stat().st_size
    tasks: list[SplitTask] = []
    with open(path, "rb") as handle:
        found = _header(handle.read(65_536))
        handle.seek(0)
        pending, pending_start, lines_before = bytearray(), 0, 0
        while True:
            piece = handle.read(block_bytes)
            digest.update(piece)
            if found is None:
                if not piece:
                    break
                continue
            header, delimiter, header_end = found
            pending += piece
            if pending_start < header_end:  # the header (and blank lines before it) are not data
                skipped = min(header_end - pending_start, len(pending))
                lines_before += pending.count(b"\n", 0, skipped)
                del pending[:skipped]
                pending_start += skipped
            # Only the new piece can hold a newline: what was left of the pending bytes has none.
            cut = len(pending) if not piece else pending.rfind(b"\n", max(0, len(pending) - len(piece))) + 1
            if cut > 0:
                tasks.append(
                    CsvBlock(
                        table.stem,
                        table.name,
                        path,
                        pending_start,
                        pending_start + cut,
                        lines_before,
                        header,
                        delimiter,
                    )
                )
                lines_before += pending.count(b"\n", 0, cut)
                del pending[:cut]
                pending_start += cut
            if not piece:
                break
    if found is None:
        return CsvPlan([WholeFile(table.stem, table.name, path)], digest.hexdigest(), size)
    return CsvPlan(tasks, digest.hexdigest(), size, tuple(load._header_name(h) for h in found[0]))


def _header(head: bytes) -> tuple[tuple[str, ...], str, int] | None:
    """The header of a CSV file the fast reader could read: names, delimiter, byte offset after it; else None."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    begin = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    position = begin
    while True:
        newline = head.find(b"\n", position)
        if newline < 0:
            return None  # no complete header line in the first 64 KB: the careful reader decides
        line = head[position:newline]
        if line in (b"", b"\r"):
            position = newline + 1
            continue
        break
    if line[:1] in (b" ", b"\t") or b'"' in line:
        return None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None
    delimiter = load._delimiter(text)
    header = text.rstrip("\r").split(delimiter)
    names = [load._header_name(h) for h in header]
    if len(header) > load.MAX_COLUMNS or "" in names or len(set(names)) != len(names):
        return None
    return tuple(header), delimiter, newline + 1


def files_sha256(paths: tuple[Path, ...] | list[Path]) -> str:
    """The SHA-256 of the files' bytes one after the other, read in blocks (a file may be gigabytes)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(BLOCK_BYTES), b""):
                digest.update(chunk)
    return digest.hexdigest()


def parquet_parts(table: TableInput, limits: Limits = FOLDER_LIMITS) -> tuple[list[SplitTask], str]:
    """One task per part of a partitioned Parquet table, with the rows before it; and the parts' SHA-256."""
    tasks: list[SplitTask] = []
    offset = 0
    first: list[str] | None = None
    for path in table.paths:
        part_name = f"{table.name}{path.name}"
        try:
            meta = pq.read_metadata(path)
            columns = [load._header_name(c) for c in meta.schema.to_arrow_schema().names]
        except Exception:  # a broken part: read it as the loader would, which refuses it exactly
            load.read_table(part_name, load.file_bytes(part_name, path), limits)
            raise
        load.check_same_columns(table.name, first, part_name, columns)
        first = first if first is not None else columns
        tasks.append(ParquetPart(table.stem, table.name, part_name, path, offset))
        offset += meta.num_rows
    return tasks, files_sha256(table.paths)


def clear(root: Path, stem: str) -> None:
    shutil.rmtree(root / "shards" / stem, ignore_errors=True)


def shard_tables(root: Path, stem: str, name: str, partition: int, columns: tuple[str, ...]) -> RawTable:
    """A partition's rows of one file as a ``RawTable`` (cells as Arrow strings, in line order)."""
    folder = shard_folder(root, stem, partition)
    shards = sorted(folder.glob("*.arrow")) if folder.is_dir() else []
    names = column_names(len(columns))
    if shards:
        table = pa.concat_tables([feather.read_table(s, memory_map=False) for s in shards])
    else:
        table = pa.table([pa.array([], pa.string()) for _ in names] + [pa.array([], pa.int64())], names=[*names, LINE])
    cells = pd.DataFrame(
        {
            column: pd.Series(pd.arrays.ArrowExtensionArray(table.column(name)))
            for column, name in zip(columns, names, strict=True)
        }
    )
    return RawTable(name, cells, table.column(LINE).to_numpy(), load._empty_malformed())


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


Progress = Callable[[str], None]
