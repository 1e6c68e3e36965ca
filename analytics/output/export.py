"""The export contract (SPEC §4): the four export files as bytes, and their atomic writing.

``write_atomically`` writes an export into a folder whole or not at all (the manifest last, one
export at a time); ``verify_export`` checks a folder against the file list of its manifest.

``export_files`` renders patient_cycles.csv, cohort_cycles.csv, rejected_rows.csv and
manifest.json; the command line and the dashboard's download buttons both call it, so the same data
and parameters give the same bytes. Every CSV goes through ``csv_bytes``: booleans as true/false,
dates as YYYY-MM-DD, missing values as empty cells, and text cells that a spreadsheet would run as a
formula (starting with =, +, -, @, tab or carriage return) prefixed with a single quote. A text cell
that is a plain number such as -4.5 or +1e3 is left alone: a spreadsheet can only read it as that
number, and a rejected value is shown back to the user as it was typed.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import cast

import numpy as np
import pandas as pd

from analytics import __version__
from analytics.definitions.cohort import COHORT_CYCLE_COLUMNS
from analytics.definitions.cycles import PATIENT_CYCLE_COLUMNS
from analytics.definitions.pipeline import Analysis
from analytics.definitions.status import PATIENT_STATUS_COLUMNS
from analytics.ingest.load import Dataset
from analytics.privacy.suppression import describe, suppress_cohort_cycles, suppress_rejections

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
RESULT_FILES = ("patient_cycles.csv", "cohort_cycles.csv", "patient_status.csv", "safety.csv")
EXPORT_FILES = (*RESULT_FILES, "rejected_rows.csv", "manifest.json")
SUPPRESSED_EXPORT_FILES = ("cohort_cycles.csv", "rejected_counts.csv", "manifest.json")
PATIENT_LEVEL_FILES = ("patient_cycles.csv", "patient_status.csv", "rejected_rows.csv")
MANIFEST = "manifest.json"


def known_export_files() -> tuple[str, ...]:
    """Every file name an export of any kind writes: one of these in an export folder that the
    export being written does not include is a previous export's, and goes (``write_atomically``)."""
    return tuple(dict.fromkeys((*EXPORT_FILES, *SUPPRESSED_EXPORT_FILES)))


def _text_cell(value: object) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text) else text


def _csv_column(column: pd.Series) -> pd.Series:
    """One column as the strings written to CSV."""
    if pd.api.types.is_bool_dtype(column) or str(column.dtype) == "boolean":
        return column.map({True: "true", False: "false"}).astype(object).where(column.notna(), "")
    if pd.api.types.is_datetime64_any_dtype(column):
        return column.dt.strftime("%Y-%m-%d").where(column.notna(), "")
    if pd.api.types.is_integer_dtype(column):
        return column.astype(object).where(column.notna(), "").map(str)
    if pd.api.types.is_float_dtype(column):
        values = column.astype("float64")
        return values.map(repr).where(values.notna(), "")
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    texts = np.asarray([_text_cell(u) for u in uniques] + [""], dtype=object)  # code -1 (missing) -> ""
    return pd.Series(texts[codes], index=column.index)


_NEEDS_QUOTES = re.compile(r'[,"\n\r]')


def _csv_field(text: str) -> str:
    """RFC 4180 quoting. The csv module (and so ``DataFrame.to_csv``) with a "\\n" line end leaves a bare
    carriage return unquoted, which a spreadsheet reads as a new row, whose first cell could then be
    a formula; so quoting is done here, for a comma, a quote, a line feed or a carriage return."""
    return '"' + text.replace('"', '""') + '"' if _NEEDS_QUOTES.search(text) else text


def _csv_fields(cells: pd.Series, lone: bool) -> np.ndarray:
    # Each distinct value is quoted once: a diary column holds few distinct values.
    codes, uniques = pd.factorize(cells, use_na_sentinel=False)
    fields = np.asarray([_csv_field(str(u)) for u in uniques], dtype=object)[codes]
    # A row of one empty field would be a blank line, which readers skip: write it as "".
    return np.where(fields == "", '""', fields) if lone else fields


CSV_CHUNK_ROWS = 200_000
"""Rows formatted at a time: a cell is formatted on its own, so chunks change nothing but the memory held
(a registry's patient_cycles.csv has millions of rows, each a Python string per column while it is made)."""


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The one CSV writer of the project (UTF-8, header row, "\\n" line ends, formula-safe text cells)."""
    lone = frame.shape[1] == 1
    header = ",".join(_csv_field(_text_cell(c)) for c in frame.columns)
    parts = [(header + "\n").encode("utf-8")]
    for start in range(0, len(frame), CSV_CHUNK_ROWS):
        chunk = frame.iloc[start : start + CSV_CHUNK_ROWS]
        lines = np.full(len(chunk), "", dtype=object)
        for position in range(chunk.shape[1]):
            fields = _csv_fields(_csv_column(chunk.iloc[:, position]), lone)
            lines = fields if position == 0 else lines + "," + fields
        parts.append(("\n".join(lines) + "\n").encode("utf-8"))
    return b"".join(parts)


def manifest(
    analysis: Analysis, dataset: Dataset, exported_at: datetime, extra: Mapping[str, object] | None = None
) -> dict[str, object]:
    """as_of, every parameter, per input file its SHA-256 and row counts, version and time."""
    parameters = analysis.config.parameters()
    parameters["as_of"] = analysis.as_of.date().isoformat()
    return {
        "as_of": analysis.as_of.date().isoformat(),
        "as_of_source": "given" if analysis.config.as_of else "latest accepted session or diary date",
        "parameters": parameters,
        "files": {
            f.file: {
                "sha256": f.sha256,
                "rows_read": f.rows_read,
                "rows_accepted": f.rows_accepted,
                "rows_rejected": f.rows_rejected,
                "columns_ignored": list(f.columns_ignored),
            }
            for f in dataset.files
        },
        "rows_rejected_total": dataset.rejected_total(),
        **_listing_note(dataset),
        "software": {"name": "botox-outcomes-analytics", "version": __version__},
        "exported_at": exported_at.astimezone(UTC).isoformat(timespec="seconds"),
        "definitions": "SPEC.md §3 and §5; the project's data dictionary (README) documents the rest",
        **(dict(extra) if extra else {}),
    }


def _listing_note(dataset: Dataset) -> dict[str, object]:
    """When rejected_rows.csv does not list every rejected row: how many it lists, and the exact counts."""
    listed = dataset.rejected_listed_per_file()
    if not listed:
        return {}
    counts = dataset.rejection_counts()
    return {
        "rejected_rows_listed": len(dataset.rejected),
        "rejected_rows_note": (
            "rejected_rows.csv lists the first rejected rows of each file (by line), at most "
            f"{max(listed.values()):,} per file; rows_rejected counts every rejected row. For "
            + ", ".join(listed)
            + " the exact counts by reason are in rejected_rows_by_reason."
        ),
        "rejected_rows_by_reason": {
            name: {r: int(n) for r, n in zip(group["reason"], group["rows"], strict=True)}
            for name, group in counts[counts["file"].isin(list(listed))].groupby("file", sort=True)
        },
    }


def export_files(
    analysis: Analysis,
    dataset: Dataset,
    exported_at: datetime | None = None,
    extra_manifest: Mapping[str, object] | None = None,
) -> dict[str, bytes]:
    """The export files of SPEC §4, by file name (``safety.csv`` only when the dataset has adverse events)."""
    exported_at = exported_at or datetime.now(UTC)
    patient_table = analysis.patient_cycles[PATIENT_CYCLE_COLUMNS]
    cohort_table = analysis.cohort_cycles[
        [c for c in analysis.cohort_cycles.columns if c in COHORT_CYCLE_COLUMNS or c.startswith("new_responder_50_ci")]
    ]
    safety = {} if analysis.safety is None else {"safety.csv": csv_bytes(analysis.safety)}
    return with_contents(
        {
            "patient_cycles.csv": csv_bytes(patient_table),
            "cohort_cycles.csv": csv_bytes(cohort_table),
            "patient_status.csv": csv_bytes(analysis.patient_status[PATIENT_STATUS_COLUMNS]),
            **safety,
            "rejected_rows.csv": csv_bytes(dataset.rejected),
            "manifest.json": (
                json.dumps(manifest(analysis, dataset, exported_at, extra_manifest), indent=2) + "\n"
            ).encode(),
        }
    )


def suppressed_export_files(
    analysis: Analysis,
    dataset: Dataset,
    min_cell: int,
    exported_at: datetime | None = None,
    extra_manifest: Mapping[str, object] | None = None,
) -> dict[str, bytes]:
    """The export to share outside the clinic (``--min-cell K``): aggregate tables only, small cells suppressed.

    No patient_cycles.csv and no rejected_rows.csv, which name patients. cohort_cycles.csv goes
    through ``suppression.suppress_cohort_cycles``; rejected_counts.csv gives rejected rows per file
    and reason; the manifest's per-file row counts are suppressed with them (and its total over
    files left out, which would undo that), and it records ``min_cell`` and the rule.
    """
    exported_at = exported_at or datetime.now(UTC)
    cohort = suppress_cohort_cycles(analysis.cohort_cycles, min_cell)
    reasons, counts = suppress_rejections(dataset.file_summary(), dataset.rejection_counts(), min_cell)
    record = manifest(analysis, dataset, exported_at, extra_manifest)
    record.pop("rows_rejected_total")
    for key in ("rejected_rows_listed", "rejected_rows_note", "rejected_rows_by_reason"):  # no rejected_rows.csv here
        record.pop(key, None)
    shown = counts.set_index("file")
    columns = ("rows_read", "rows_accepted", "rows_rejected")
    record["files"] = {
        name: {**entry, **{c: _count_or_marker(cast(str, shown.at[name, c])) for c in columns}}
        for name, entry in record["files"].items()  # type: ignore[attr-defined]
    }
    record["min_cell"] = min_cell
    record["suppression"] = describe(min_cell)
    return with_contents(
        {
            "cohort_cycles.csv": csv_bytes(cohort),
            "rejected_counts.csv": csv_bytes(reasons),
            "manifest.json": (json.dumps(record, indent=2) + "\n").encode(),
        }
    )


def _count_or_marker(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def with_contents(files: Mapping[str, bytes]) -> dict[str, bytes]:
    """The files with ``manifest.json`` (if any) last, listing every other file with its SHA-256 and
    size under ``export_files``, so that a reader can check the folder (``verify_export``)."""
    tables = {name: data for name, data in files.items() if name != MANIFEST}
    if MANIFEST not in files:
        return tables
    record = json.loads(files[MANIFEST])
    record["export_files"] = {
        name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)} for name, data in tables.items()
    }
    return {**tables, MANIFEST: (json.dumps(record, indent=2) + "\n").encode()}


def verify_export(folder: Path) -> list[str]:
    """What is wrong with an export folder; an empty list when it holds one whole export.

    Whole: ``manifest.json`` is there and lists the export's files (``export_files``), each is in
    the folder with that SHA-256, and no file another kind of export writes is beside them. A folder
    without a manifest is an export that was interrupted (or is being written).
    """
    folder = Path(folder)
    try:
        record = json.loads((folder / MANIFEST).read_bytes())
    except FileNotFoundError:
        return [f"no {MANIFEST}: the export is incomplete (interrupted, or still being written)"]
    except (OSError, ValueError) as exc:
        return [f"{MANIFEST} cannot be read: {exc}"]
    listed = record.get("export_files") if isinstance(record, dict) else None
    if not isinstance(listed, dict):
        return [f"{MANIFEST} does not list the export's files (written by an older version?)"]
    problems = []
    for name, entry in listed.items():
        if not isinstance(name, str) or Path(name).name != name or name.startswith(".") or name == MANIFEST:
            problems.append(f"{MANIFEST} lists a file that is no export file: {name!r}")
            continue
        try:
            digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        except OSError:
            problems.append(f"{name} is missing")
            continue
        if not isinstance(entry, dict) or digest != entry.get("sha256"):
            problems.append(f"{name} is not the file the manifest lists (SHA-256 differs)")
    problems += [
        f"{name} is not part of this export"
        for name in known_export_files()
        if name != MANIFEST and name not in listed and (folder / name).exists()
    ]
    return problems


class ExportBusy(OSError):
    """Another export is writing into the same folder."""


def write_atomically(files: Mapping[str, bytes], out_dir: Path) -> None:
    """Write an export into ``out_dir`` whole or not at all, the manifest last.

    Every file goes to a staging folder beside ``out_dir`` (``.OUT.staging-XXXXXXXX``) first. A new
    ``out_dir`` appears whole with one rename. In an existing one, the previous manifest goes first,
    then the files of a previous export that are not in this one (``known_export_files``: a
    ``rejected_counts.csv`` of an earlier ``--min-cell`` export, say), then each table is replaced
    by ``os.replace``, and the new manifest, which lists every file with its SHA-256 (``with_contents``),
    comes in last. So a folder with a manifest holds one whole export (``verify_export``), and one
    without is visibly incomplete: what a crash (or a kill) in the middle leaves. If a replacement
    fails with an error (a table held open by a spreadsheet on Windows, say), everything is put back
    as it was, the previous manifest last. Other files in ``out_dir`` are left alone.

    One export at a time per folder: a lock (``.OUT.lock`` beside it, ``fcntl.flock``) makes a second
    export into the same folder fail at once with ``ExportBusy`` (an ``OSError``). The staging folder
    is removed whatever happens, and staging folders left by a killed export are removed by the next.
    """
    files = with_contents(files)
    out_dir = Path(os.path.abspath(out_dir))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with _lock(out_dir):
        _remove_stale_staging(out_dir)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.staging-", dir=out_dir.parent))
        try:
            for name, data in files.items():
                with open(staging / name, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
            _fsync_folder(staging)
            if not out_dir.exists():
                os.rename(staging, out_dir)
                _fsync_folder(out_dir.parent)
                return
            _swap(files, staging, out_dir)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)


def _swap(files: Mapping[str, bytes], staging: Path, out_dir: Path) -> None:
    """Move the staged export into ``out_dir`` (see ``write_atomically``); on an error put all back."""
    previous = staging / ".previous"
    previous.mkdir()
    tables = [name for name in files if name != MANIFEST]
    others = [n for n in known_export_files() if n not in files and n != MANIFEST and (out_dir / n).exists()]
    moved_manifest = False
    removed: list[str] = []
    replaced: list[tuple[str, bool]] = []
    try:
        if (out_dir / MANIFEST).exists():  # from here until the new one is in, the folder is visibly incomplete
            os.replace(out_dir / MANIFEST, previous / MANIFEST)
            moved_manifest = True
            _fsync_folder(out_dir)
        for name in others:
            os.replace(out_dir / name, previous / name)
            removed.append(name)
        for name in tables:
            existed = (out_dir / name).exists()
            if existed:
                _keep_copy(out_dir / name, previous / name)
            os.replace(staging / name, out_dir / name)
            replaced.append((name, existed))
        _fsync_folder(out_dir)
        if MANIFEST in files:
            os.replace(staging / MANIFEST, out_dir / MANIFEST)
    except BaseException:
        # Put back what was changed, newest first; the previous manifest only beside all of its files.
        steps = [(previous / name if existed else None, out_dir / name) for name, existed in reversed(replaced)]
        steps += [(previous / name, out_dir / name) for name in removed]
        if all([_put_back(copy, path) for copy, path in steps]) and moved_manifest:
            _put_back(previous / MANIFEST, out_dir / MANIFEST)
        raise
    _fsync_folder(out_dir)


def _put_back(copy: Path | None, path: Path) -> bool:
    """Move ``copy`` back to ``path`` (None: remove ``path``); False when that fails."""
    try:
        if copy is None:
            path.unlink()
        else:
            os.replace(copy, path)
        return True
    except OSError:
        return False


def _keep_copy(path: Path, copy: Path) -> None:
    """A hard link to ``path`` (no data copied), or a copy where the file system has no links."""
    try:
        os.link(path, copy)
    except OSError:
        shutil.copy2(path, copy)


def _fsync_folder(folder: Path) -> None:
    """Make renames in ``folder`` durable (best effort: not every system can open a folder)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


_STAGING_SUFFIX = re.compile(r"(?:staging-)?[a-z0-9_]{8}")


def _remove_stale_staging(out_dir: Path) -> None:
    """Remove staging folders of ``out_dir`` left by an export that was killed (we hold the lock, so
    no export is using them). Only folders named as staging folders that hold nothing but export
    files are touched."""
    prefix = f".{out_dir.name}."
    for path in out_dir.parent.iterdir():
        if not (path.name.startswith(prefix) and _STAGING_SUFFIX.fullmatch(path.name[len(prefix) :])):
            continue
        if path.is_dir() and not path.is_symlink() and _holds_only_export_files(path):
            shutil.rmtree(path, ignore_errors=True)


def _holds_only_export_files(folder: Path) -> bool:
    known = set(known_export_files())
    for entry in folder.iterdir():
        if entry.name == ".previous" and entry.is_dir() and not entry.is_symlink():
            if not all(inner.name in known and inner.is_file() for inner in entry.iterdir()):
                return False
        elif entry.name not in known or not entry.is_file():
            return False
    return True


@contextlib.contextmanager
def _lock(out_dir: Path) -> Iterator[None]:
    """Hold ``.OUT.lock`` beside ``out_dir`` (``fcntl.flock``; released by the system if the process
    dies); raise ``ExportBusy`` at once when another export holds it. The file is removed on release."""
    path = out_dir.parent / f".{out_dir.name}.lock"
    fcntl: ModuleType | None
    try:
        import fcntl
    except ImportError:  # no flock (Windows): the lock file itself is the lock
        fcntl = None
    while True:
        flags = os.O_RDWR | os.O_CREAT | (os.O_EXCL if fcntl is None else 0)
        try:
            descriptor = os.open(path, flags, 0o600)
        except FileExistsError:
            raise _busy(out_dir, path) from None
        if fcntl is None:
            break
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(descriptor)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise _busy(out_dir, path) from None
            raise
        try:  # the holder before us may have removed the file after we opened it: lock the new one
            if os.path.samestat(os.fstat(descriptor), os.stat(path)):
                break
        except FileNotFoundError:
            pass
        os.close(descriptor)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        os.close(descriptor)


def _busy(out_dir: Path, lock: Path) -> ExportBusy:
    return ExportBusy(
        errno.EBUSY,
        f"another export is writing into {out_dir} (it holds {lock}); run again when it has finished",
    )
