"""The analysis store: a dataset's checked tables and its analyses, computed once and kept on disk.

Entries are folders of Parquet files (one per table: columnar, typed, readable by any tool, and
written once), named by a SHA-256 key:

- a **dataset** entry is keyed by the SHA-256 of every file of the source folder (name and content),
  so it is found again after a server restart without parsing anything;
- an **analysis** entry is keyed by the dataset's files (as the loader reports them: a clinic-scoped
  dataset has its own) and every parameter, as the export's manifest records them.

An entry is written to a temporary folder and renamed into place, so a reader sees a whole entry or
none, and two servers computing the same entry at once both end with one. Nothing is ever updated:
new files or parameters make a new key. ``DEFAULT_ROOT`` (``$OUTCOMES_STORE_DIR``) is where the
dashboard keeps it; only the clinic's data folder is stored, never an upload.

A big folder's tables are kept as the partitioned pipeline's workers wrote them, a folder of Parquet parts
per table (``engine.write_parts``), never gathered into one process; read whole, such a table comes back in
line order, as the single-process loader gives it.

``build_folder`` fills the store for a data folder (the dataset, its analysis for the default parameters and
the Patient page's tables of every patient) with the partitioned pipeline in worker processes: ``python -m
analytics store`` runs it ahead of time, and the dashboard runs that command in a child process on its first
visit of a big folder, showing its progress, so that the server never holds the whole computation.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import multiprocessing
import os
import pickle
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset  # what pq.read_table reads with: imported at start, not on the first read
import pyarrow.parquet as pq

from analytics import __version__
from analytics.definitions.clinical import ClinicalParameters, ClinicalTables, clinical_tables
from analytics.definitions.config import AnalysisConfig
from analytics.definitions.pipeline import Analysis, PatientDays, analyse
from analytics.ingest.load import (
    DATA_SUFFIXES,
    FOLDER_LIMITS,
    Dataset,
    FileReport,
    LazyTables,
    Limits,
    load_dataset,
    unread_files,
)
from analytics.scale.engine import (
    DAYS,
    DAYS_INDEX,
    Say,
    auto_partitions,
    by_patient,
    part_file,
    part_files,
    run_whole,
)
from analytics.scale.runners import Runner, runner_for
from analytics.scale.split import cpu_count, files_sha256
from analytics.views import clinic, continuation, outcomes
from analytics.views.outcomes import TreatedDays

T = TypeVar("T")

FORMAT = 5
"""Bumped when what an entry holds changes; with the software version it is part of every key."""
ANALYSIS_TABLES = ("patient_days", "patient_cycles", "cohort_cycles", "patient_status", "adverse_events", "safety")
LAZY_TABLES = ("diary", "injections", "questionnaires")
"""Dataset tables read only when something asks for them (``load.LazyTables``): the diary is most of the rows, and
the injections and questionnaires are read by the patient-level tables, which the store keeps."""
DAYS_ROW_GROUP = 65_536
"""Rows per Parquet row group of the per-patient copy of patient_days: one patient's days are one or two groups."""


READY = "ready: the Patient page's tables are stored"
"""What ``build_folder`` says when the first Patient page can be drawn (the Patient page's tables and the Clinic
page's view are stored); it goes on with the Outcomes page's statistics."""


def default_root() -> Path:
    return Path(os.environ.get("OUTCOMES_STORE_DIR", ".outcomes-store"))


def _digest(parts: object) -> str:
    text = json.dumps([FORMAT, __version__, parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _files(folder: Path) -> list[tuple[str, Path]]:
    """Every file of a data folder and of its table folders, by relative path."""
    return [(p.relative_to(folder).as_posix(), p) for p in sorted(Path(folder).rglob("*")) if p.is_file()]


def source_key(folder: Path) -> str:
    """The SHA-256 of every file of a data folder and of its table folders (names and contents)."""
    return _digest(["dataset", [(name, files_sha256([path])) for name, path in _files(folder)]])


def folder_signature(folder: Path) -> str:
    """A digest of every file's path, size and modification time under ``folder``: changes when any file does."""
    entries = [(name, path.stat().st_size, path.stat().st_mtime_ns) for name, path in _files(folder)]
    return _digest(["signature", str(Path(folder).resolve()), entries])


def data_entries(folder: Path) -> list[str]:
    """The data files (CSV, Parquet) and table folders (of Parquet parts, with a trailing '/') of a folder: what
    the dashboard reports as not read when the loader did not use it, leaving out its README or notes."""
    names = []
    for path in Path(folder).iterdir():
        if path.is_file() and path.suffix.lower() in DATA_SUFFIXES:
            names.append(path.name)
        elif path.is_dir() and any(p.suffix.lower() == ".parquet" for p in path.iterdir()):
            names.append(path.name + "/")
    return names


def _quiet(message: str) -> None:
    del message


def analysis_key(dataset: Dataset, config: AnalysisConfig) -> str:
    files = [(f.file, f.sha256) for f in dataset.files]
    return _digest(["analysis", files, config.parameters(), str(config.as_of)])


class AnalysisStore:
    """Datasets and analyses on disk under ``root`` (see the module docstring)."""

    def __init__(self, root: Path | None = None, wait: Callable[[Callable[[], bool]], None] | None = None):
        self.root = Path(root) if root is not None else default_root()
        self.wait = wait
        """Called on a derived result's miss with a test of whether it is stored yet, before computing it: the
        dashboard waits there while the build's child process may be computing that very result."""

    def _entry(self, key: str) -> Path:
        return self.root / key

    def _has(self, key: str) -> bool:
        return (self._entry(key) / "meta.json").is_file()

    def folder_key(self, folder: Path) -> str:
        """``source_key(folder)``, remembered by ``folder_signature``: the files are hashed again only when a
        file's name, size or modification time changed (as make and git decide), not on every server start."""
        memo = self.root / "folders" / folder_signature(folder)
        if memo.is_file():
            return memo.read_text().strip()
        key = source_key(folder)
        memo.parent.mkdir(parents=True, exist_ok=True)
        staging = memo.with_name(f".{memo.name}.{os.getpid()}")
        staging.write_text(key)
        staging.replace(memo)
        return key

    # --- get or compute ------------------------------------------------------------------------

    def folder_dataset(
        self, folder: Path, runner: Runner | None = None, say: Say = _quiet, limits: Limits = FOLDER_LIMITS
    ) -> Dataset:
        """A data folder's dataset from the store, or read, checked and stored on a miss; the stored version.

        A folder too big for one partition is read by the partitioned pipeline (``analytics.scale``, in
        ``runner``'s processes), which gives the analysis for the default parameters and its patient-level
        tables too: all are stored.
        Raises ``DatasetRefused`` (or ``EngineFailed``) as the loader does.
        """
        key = self.folder_key(folder)
        if (stored := self.get_dataset(key)) is not None:
            return stored
        parts = None
        try:
            if (partitions := auto_partitions(folder)) > 1:
                self.root.mkdir(parents=True, exist_ok=True)
                parts = Path(tempfile.mkdtemp(prefix=".parts-", dir=self.root))  # the workers' parts, moved in
                analysis, dataset, tables = run_whole(
                    folder, AnalysisConfig(), partitions, runner, limits, say, parts, LAZY_TABLES, DAYS_ROW_GROUP
                )
                say("storing the analysis ...")
                self.put_analysis(dataset, analysis, parts)
                self.put_clinical(dataset, analysis.config, tables)
                del analysis, tables
            else:
                dataset = load_dataset(folder, limits)
            dataset.files_not_read = unread_files(data_entries(folder), [f.file for f in dataset.files])
            say("storing the dataset ...")
            self.put_dataset(key, dataset, parts)
            del dataset
        finally:
            if parts is not None:
                shutil.rmtree(parts, ignore_errors=True)
        # What is kept is the stored dataset, whose diary stays on disk until something needs it.
        stored = self.get_dataset(key)
        assert stored is not None, "the analysis store lost the entry it has just written"
        return stored

    def analysis(self, dataset: Dataset, config: AnalysisConfig) -> Analysis:
        """The stored analysis of ``dataset`` with ``config``, computed and stored on a miss; the stored version
        (its per-patient-day frame stays on disk, read by patient or by column until something needs it all)."""
        if (stored := self.get_analysis(dataset, config)) is None:
            self.put_analysis(dataset, analyse(dataset, config))
            stored = self.get_analysis(dataset, config)
        assert stored is not None, "the analysis store lost the entry it has just written"
        return stored

    def derived(
        self, kind: str, dataset: Dataset, analysis: Analysis, compute: Callable[[], T], detail: object = None
    ) -> T:
        """A result derived from a stored analysis (the Outcomes page's statistics of everyone, the Clinic page's
        view of every clinic...), computed once and kept under ``derived_key``; ``compute`` makes it on a miss."""
        key = derived_key(kind, dataset, analysis.config, detail)
        if self.wait is not None and not self._has(key):
            self.wait(lambda: self._has(key))
        if (stored := _get_pickle(self, key)) is not None:
            return cast(T, stored)
        value = compute()
        _put_pickle(self, key, value)
        return value

    def has_derived(self, kind: str, dataset: Dataset, config: AnalysisConfig, detail: object = None) -> bool:
        """Whether the result ``derived`` would read for these arguments is stored."""
        return self._has(derived_key(kind, dataset, config, detail))

    def treated_days(self, dataset: Dataset, analysis: Analysis) -> TreatedDays:
        """``outcomes.treated_days`` of a stored analysis (every treated diary day as integer arrays), kept in
        narrow integers (a fifth of the bytes) and widened to int64 when read; computed and stored on a miss."""
        narrow = self.derived("treated_days", dataset, analysis, lambda: _narrow(_treated_days(analysis)))
        return _widen(narrow)

    def everyone_outcomes(self, dataset: Dataset, analysis: Analysis, part: str) -> dict[str, object]:
        """One part (``outcomes.RESULT_PARTS``) of ``outcomes.cohort_results`` of every treated patient (the Outcomes
        page before any filter); only the within-cycle course reads the treated days."""

        def compute() -> dict[str, object]:
            days = self.treated_days(dataset, analysis) if part == "weekly" else None
            return outcomes.cohort_results(analysis, days, part)

        return self.derived("outcomes", dataset, analysis, compute, part)

    def all_outcomes(self, dataset: Dataset, analysis: Analysis, then_nice: bool = False) -> None:
        """Every part of ``everyone_outcomes`` into the store, in the order of the Outcomes page's tabs (the per-cycle
        statistics of its first tab first, so that a page waiting for them is not kept waiting for the others).

        ``then_nice`` (a process of its own): the parts after the first at a lower CPU priority, so that the
        dashboard's requests meanwhile (a patient switch while a big folder's first views are computed) come first.
        """
        for number, part in enumerate(outcomes.RESULT_PARTS):
            if number == 1 and then_nice:
                os.nice(NICER)
            self.everyone_outcomes(dataset, analysis, part)

    def continuation(self, dataset: Dataset, analysis: Analysis) -> pd.DataFrame:
        """``continuation.continuation_all_patients``: every patient's continuation evidence (the Patient page)."""
        return self.derived("continuation", dataset, analysis, lambda: continuation.continuation_all_patients(analysis))

    def clinic_options(self, dataset: Dataset, analysis: Analysis) -> clinic.FilterOptions:
        """The Clinic page's filter choices (``clinic.filter_options``)."""

        def compute() -> clinic.FilterOptions:
            register = clinic.session_register(dataset, analysis.as_of)
            return clinic.filter_options(dataset, register, analysis.as_of)

        return self.derived("clinic_options", dataset, analysis, compute)

    def clinic_view(self, dataset: Dataset, analysis: Analysis, flt: clinic.ClinicFilter) -> clinic.ClinicView:
        """``clinic.clinic_view`` for one filter of the Clinic page."""
        return self.derived(
            "clinic_view", dataset, analysis, lambda: clinic.clinic_view(dataset, analysis, flt), asdict(flt)
        )

    def clinical(
        self, dataset: Dataset, analysis: Analysis, params: ClinicalParameters | None = None
    ) -> ClinicalTables:
        """``clinical.clinical_tables`` of a stored analysis, computed and stored on a miss."""
        params = params or ClinicalParameters()
        if (stored := self.get_clinical(dataset, analysis, params)) is not None:
            return stored
        tables = clinical_tables(analysis, dataset, params)
        self.put_clinical(dataset, analysis.config, tables)
        return tables

    def _write(
        self,
        key: str,
        frames: Mapping[str, pd.DataFrame | None],
        meta: Mapping[str, object],
        parts: Mapping[str, Path] | None = None,
    ) -> None:
        """An entry of these frames (one Parquet file each) and of the tables written as parts by the partitioned
        pipeline's workers (``parts``: a table's name and its folder of parts, moved into the entry as they are)."""
        if self._entry(key).is_dir():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            for name, folder in (parts or {}).items():
                shutil.move(folder, staging / name)  # a rename: the parts are written in the store's folder
            for name, frame in frames.items():
                if frame is not None:
                    # Small row groups for the day tables, so that one patient's rows are read alone (StoredDays).
                    groups = DAYS_ROW_GROUP if name.startswith("patient_days") else None
                    frame.to_parquet(staging / f"{name}.parquet", index=False, row_group_size=groups)
            (staging / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
            try:
                staging.rename(self._entry(key))
            except OSError:  # another process stored the same entry first: theirs is the same
                pass
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _read(self, key: str, lazy: tuple[str, ...] = ()) -> tuple[dict[str, pd.DataFrame | None], dict] | None:
        """An entry's frames and meta, or None when it is not stored; the frames named in ``lazy`` are left out."""
        entry = self._entry(key)
        if not (entry / "meta.json").is_file():
            return None
        meta = json.loads((entry / "meta.json").read_text())
        return {name: _read_frame(_path(entry, name)) for name in meta["frames"] if name not in lazy}, meta

    # --- datasets ----------------------------------------------------------------------------

    def put_dataset(self, key: str, dataset: Dataset, parts: Path | None = None) -> None:
        """The dataset's tables; those of its tables that the partitioned pipeline wrote as parts into ``parts``
        (``run_whole``; the dataset has them empty) are moved in as they are."""
        folders = _parts_in(parts, [f"table_{stem}" for stem in dataset.tables])
        frames: dict[str, pd.DataFrame | None] = {
            f"table_{stem}": table for stem, table in dataset.tables.items() if f"table_{stem}" not in folders
        }
        frames["rejected"] = dataset.rejected
        frames["rejected_unlisted"] = dataset.rejected_unlisted
        rows = {name: len(frame) for name, frame in frames.items() if frame is not None}
        rows |= {name: _rows(folder) for name, folder in folders.items()}
        meta = {
            "frames": [*frames, *folders],
            "rows": rows,
            "files": [asdict(f) for f in dataset.files],
            "present_columns": {stem: sorted(columns) for stem, columns in dataset.present_columns.items()},
            "files_not_read": dataset.files_not_read,
        }
        self._write(key, frames, meta, folders)

    def has_dataset(self, key: str) -> bool:
        return self._has(key)

    def get_dataset(self, key: str) -> Dataset | None:
        """The stored dataset; its diary is read from disk when first asked for (``load.LazyTables``)."""
        lazy = tuple(f"table_{stem}" for stem in LAZY_TABLES)
        read = self._read(key, lazy)
        if read is None:
            return None
        frames, meta = read
        tables = {name.removeprefix("table_"): f for name, f in frames.items() if name.startswith("table_")}
        later = {
            name.removeprefix("table_"): (functools.partial(_table, _path(self._entry(key), name)), rows)
            for name, rows in meta["rows"].items()
            if name in lazy
        }
        return Dataset(
            tables=LazyTables({stem: table for stem, table in tables.items() if table is not None}, later),
            rejected=_frame(frames["rejected"]),
            files=[FileReport(**{**f, "columns_ignored": tuple(f["columns_ignored"])}) for f in meta["files"]],
            present_columns={stem: frozenset(columns) for stem, columns in meta["present_columns"].items()},
            rejected_unlisted=_frame(frames["rejected_unlisted"]),
            files_not_read=[(name, reason) for name, reason in meta["files_not_read"]],
        )

    # --- analyses ----------------------------------------------------------------------------

    def put_analysis(self, dataset: Dataset, analysis: Analysis, parts: Path | None = None) -> None:
        """The analysis's tables; patient_days also as a copy grouped by patient with an index of each patient's
        rows (``StoredDays``), unless it is grouped by patient already. With ``parts``, patient_days and its
        index are the partitions' parts there (``engine.write_parts``; the analysis has them empty)."""
        folders = _parts_in(parts, [DAYS, DAYS_INDEX])
        frames: dict[str, pd.DataFrame | None] = {name: getattr(analysis, name) for name in ANALYSIS_TABLES}
        grouped = True
        if folders:  # each part grouped by patient; the index gives each patient's part and rows in it
            del frames[DAYS]
        else:
            copy, frames[DAYS_INDEX] = by_patient(analysis.patient_days)
            grouped = copy is None
            frames["patient_days_by_patient"] = copy
        meta = {"frames": [*frames, *folders], "as_of": analysis.as_of.isoformat(), "days_grouped": grouped}
        self._write(analysis_key(dataset, analysis.config), frames, meta, folders)

    def put_clinical(self, dataset: Dataset, config: AnalysisConfig, tables: ClinicalTables) -> None:
        """The Patient page's tables of every patient (``clinical.clinical_tables``) for this analysis."""
        _put_clinical(self, dataset, config, tables)

    def get_clinical(self, dataset: Dataset, analysis: Analysis, params: ClinicalParameters) -> ClinicalTables | None:
        return _get_clinical(self, dataset, analysis, params)

    def get_analysis(self, dataset: Dataset, config: AnalysisConfig) -> Analysis | None:
        """The stored analysis; its patient_days are read from disk when asked for (``StoredAnalysis``)."""
        key = analysis_key(dataset, config)
        read = self._read(key, (DAYS, DAYS_INDEX, "patient_days_by_patient"))
        if read is None:
            return None
        frames, meta = read
        return StoredAnalysis(
            config=config,
            as_of=pd.Timestamp(meta["as_of"]),
            patient_days=None,
            patient_cycles=_frame(frames["patient_cycles"]),
            cohort_cycles=_frame(frames["cohort_cycles"]),
            patient_status=_frame(frames["patient_status"]),
            adverse_events=frames["adverse_events"],
            safety=frames["safety"],
            entry=self._entry(key),
            days_grouped=bool(meta["days_grouped"]),
        )


class StoredAnalysis(Analysis):
    """An ``Analysis`` read from the store whose patient_days (a row per diary day: millions for a network) stay
    on disk: ``day_columns`` reads only the columns asked for, ``days_by_patient`` only one patient's rows, and
    ``patient_days`` itself is read whole (once, then kept) only by what needs every column."""

    _entry: Path | None
    _days_grouped: bool
    _lock: threading.Lock
    _days: pd.DataFrame | None

    def __init__(self, *args: object, entry: Path | None = None, days_grouped: bool = True, **fields: object):
        object.__setattr__(self, "_entry", entry)
        object.__setattr__(self, "_days_grouped", days_grouped)
        object.__setattr__(self, "_lock", threading.Lock())
        super().__init__(*args, **fields)  # type: ignore[arg-type]

    @property
    def patient_days(self) -> pd.DataFrame:
        if self._days is None:
            with self._lock:
                if self._days is None:
                    object.__setattr__(self, "_days", _table(self._stored(DAYS)))
        return _frame(self._days)

    @patient_days.setter
    def patient_days(self, frame: pd.DataFrame | None) -> None:
        object.__setattr__(self, "_days", frame)

    def day_columns(self, columns: Sequence[str]) -> pd.DataFrame:
        if self._days is not None or self._entry is None:
            return super().day_columns(columns)
        return _frame(_read_frame(self._stored(DAYS), list(columns)))

    def days_in_parts(self) -> bool:
        """Whether patient_days is kept as the partitioned pipeline's parts (``engine.write_parts``)."""
        return self._entry is not None and self._stored(DAYS).is_dir()

    def days_by_patient(self) -> PatientDays:
        if self._entry is None:
            return super().days_by_patient()
        name = DAYS if self._days_grouped else "patient_days_by_patient"
        return StoredDays(self._stored(name), _table(self._stored(DAYS_INDEX)))

    def _stored(self, name: str) -> Path:
        assert self._entry is not None
        return _path(self._entry, name)


class StoredDays(PatientDays):
    """One patient's rows of a stored table grouped by patient, read from the row groups that hold them (a few ms).

    ``path`` is a Parquet file, or a folder of parts (``engine.write_parts``) when ``index`` has a ``part``
    column: each patient's rows are then in one part.
    """

    def __init__(self, path: Path, index: pd.DataFrame):
        self._path = path
        # Arrays and an index looked up by patient, not a dict of every patient's span: a restarted server reads
        # this for 100,000 patients before its first page, and looks up one patient at a time.
        self._ids = pd.Index(index["patient_id"].to_numpy(dtype=object))
        self._parts = index["part"].to_numpy() if "part" in index.columns else None
        self._spans = index[["start", "stop"]].to_numpy(dtype="int64")
        self._group_starts: dict[Path, np.ndarray] = {}

    def _bounds(self, patient_id: str) -> tuple[int | None, int, int]:
        """The part (None for one file) and the rows [start, stop) of the patient's rows; (None, 0, 0) for none."""
        position = self._ids.get_indexer(pd.Index([patient_id]))[0]  # the ids are unique: a patient, one span
        if position < 0:
            return None, 0, 0
        part = None if self._parts is None else int(self._parts[position])
        return part, int(self._spans[position, 0]), int(self._spans[position, 1])

    def _file(self, part: int | None) -> Path:
        return self._path if part is None else part_file(self._path, part)

    def _starts(self, path: Path) -> np.ndarray:
        if path not in self._group_starts:
            metadata = pq.read_metadata(path)
            sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
            self._group_starts[path] = np.concatenate([[0], np.cumsum(sizes, dtype="int64")])
        return self._group_starts[path]

    def patient_ids(self) -> frozenset[str]:
        return frozenset(self._ids)

    def of(self, patient_id: str) -> pd.DataFrame:
        part, start, stop = self._bounds(patient_id)
        if stop <= start:
            path = self._path if self._path.is_file() else part_files(self._path)[0]
            return _from_arrow(pq.read_schema(path).empty_table())
        path = self._file(part)
        starts = self._starts(path)
        first = int(np.searchsorted(starts, start, side="right")) - 1
        last = int(np.searchsorted(starts, stop, side="left")) - 1
        table = pq.ParquetFile(path).read_row_groups(list(range(first, last + 1)))
        offset = int(starts[first])
        return _from_arrow(table.slice(start - offset, stop - start))


def build_folder(
    folder: Path, store: AnalysisStore | None = None, workers: int | None = None, say: Say = _quiet
) -> str:
    """Everything the dashboard's first Patient page needs of a data folder, into the store once: the dataset,
    its analysis for the default parameters and the patient-level tables; the dataset's key.

    The partitioned pipeline runs in ``workers`` processes (default: the CPUs); what is already stored is
    not computed again. ``say`` is told what is being done ("partitions checked: 3/35").
    """
    store = store or AnalysisStore()
    workers = min(workers or cpu_count(), max(1, auto_partitions(folder)))
    with runner_for("local", workers) as runner:
        dataset = store.folder_dataset(folder, runner, say)
    say("computing cycles for the default parameters ...")
    analysis = store.analysis(dataset, AnalysisConfig())
    say("computing the patient-level tables ...")
    if not store._has(clinical_key(dataset, analysis.config, ClinicalParameters())):
        store.clinical(dataset, analysis)  # not read back when the partitions have stored them
    store.continuation(dataset, analysis)
    # Ready once the Clinic page's view is stored too (seconds, against minutes of the whole build): a visit to the
    # Clinic page soon after the first Patient page would otherwise wait for it, and patient switches meanwhile
    # would share the CPUs with it. The Outcomes page's statistics go on in their process after that.
    other_pages(store, dataset, analysis, fork=workers > 1, say=say, ready=lambda: say(READY))
    say("done")
    return store.folder_key(folder)


def other_pages(
    store: AnalysisStore,
    dataset: Dataset,
    analysis: Analysis,
    fork: bool = False,
    say: Say = _quiet,
    ready: Callable[[], object] = lambda: None,
) -> None:
    """The first views of the pages after the Patient page, into the store while the dashboard shows that page:
    the Clinic page's choices and view of every clinic, the Outcomes page's statistics of everyone. What is already
    stored is not read back. With ``fork`` (two CPUs or more), the Outcomes page's statistics in a second process
    (a fork: it shares the analysis already read) beside the Clinic page's view, so that neither waits for the
    other; should that process fail, they are computed here. ``ready()`` is called once the Clinic page's view is
    stored, before the Outcomes page's statistics are waited for."""
    clinic_done, outcomes_done = other_pages_stored(store, dataset, analysis.config)
    beside = (
        _fork(lambda: store.all_outcomes(dataset, analysis, then_nice=True)) if fork and not outcomes_done else None
    )
    if not clinic_done:
        say("computing the Clinic page's view ...")
        store.clinic_options(dataset, analysis)
        store.clinic_view(dataset, analysis, clinic.ClinicFilter())
    ready()
    if not outcomes_done:
        say("computing the Outcomes page's statistics ...")
        if beside is not None:
            beside.join()
        if beside is None or beside.exitcode != 0:  # one CPU, or the other process failed: here
            store.all_outcomes(dataset, analysis)


def other_pages_stored(store: AnalysisStore, dataset: Dataset, config: AnalysisConfig) -> tuple[bool, bool]:
    """Whether the Clinic page's first view, and the Outcomes page's statistics of everyone, are stored."""
    clinic_done = store.has_derived("clinic_options", dataset, config) and store.has_derived(
        "clinic_view", dataset, config, asdict(clinic.ClinicFilter())
    )
    return clinic_done, all(store.has_derived("outcomes", dataset, config, part) for part in outcomes.RESULT_PARTS)


def other_pages_in_a_fork(
    store: AnalysisStore, dataset: Dataset, analysis: Analysis
) -> multiprocessing.process.BaseProcess | None:
    """``other_pages`` in a forked process (started: join it to reap it), or None where processes cannot be forked.
    The fork shares the dataset and analysis in memory, and computes on another CPU than the process that forked
    it (the dashboard, whose requests it does not slow)."""
    return _fork(lambda: other_pages(store, dataset, analysis))


NICER = 10
"""How much lower the priority of the Outcomes page's later statistics is in the build's forked process."""


def _fork(work: Callable[[], object]) -> multiprocessing.process.BaseProcess | None:
    """``work()`` in a forked process (started; join it), or None where processes cannot be forked."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return None
    process = multiprocessing.get_context("fork").Process(target=work, daemon=True)
    process.start()
    return process


def derived_key(kind: str, dataset: Dataset, config: AnalysisConfig, detail: object = None) -> str:
    """The key of a result derived from an analysis: its kind, the analysis's key and what else it depends on."""
    return _digest([kind, analysis_key(dataset, config), detail])


def _treated_days(analysis: Analysis) -> TreatedDays:
    """``outcomes.treated_days``; of a stored analysis kept as parts, from their numbers only: each row's patient
    comes from the index of each patient's rows (not from reading millions of patient_id texts), and the rows are
    put in line order as the single process has them."""
    if not isinstance(analysis, StoredAnalysis) or not analysis.days_in_parts():
        return outcomes.treated_days(analysis)
    folder, index = analysis._stored(DAYS), _table(analysis._stored(DAYS_INDEX))
    labels = index["patient_id"].to_numpy(dtype=object)
    index = index.assign(number=np.arange(len(index))).sort_values(["part", "start"], kind="stable")
    numbers = np.repeat(index["number"].to_numpy(), (index["stop"] - index["start"]).to_numpy())
    columns = ["cycle", "day_in_cycle", "headache_day", "line"]
    table = pa.concat_tables([pq.read_table(f, columns=columns) for f in part_files(folder)])
    assert table.num_rows == len(numbers), "the index of each patient's rows does not cover its parts"
    cycle = table.column("cycle").to_numpy()  # float64 with NaN where missing (int64 when none is)
    treated = np.flatnonzero(cycle >= 1)  # only the treated days are put in line order: the others are dropped
    treated = treated[np.argsort(table.column("line").to_numpy()[treated], kind="stable")]
    day = np.nan_to_num(table.column("day_in_cycle").to_numpy()[treated].astype("float64"), nan=0.0)
    headache = table.column("headache_day").to_numpy()[treated]
    return outcomes.treated_days_from(numbers[treated], cycle[treated].astype("float64"), day, headache, labels)


def _narrow(days: TreatedDays) -> TreatedDays:
    """The arrays in the narrowest integers that hold them (patients int32, cycles and days int16, 0/1 int8)."""
    return dataclasses.replace(
        days,
        patient=days.patient.astype("int32"),
        cycle=days.cycle.astype("int16"),
        day=days.day.astype("int16"),
        headache=days.headache.astype("int8"),
    )


def _widen(days: TreatedDays) -> TreatedDays:
    wide = {name: getattr(days, name).astype("int64") for name in ("patient", "cycle", "day", "headache")}
    return dataclasses.replace(days, **wide)


def clinical_key(dataset: Dataset, config: AnalysisConfig, params: ClinicalParameters) -> str:
    return derived_key("clinical", dataset, config, asdict(params))


def _put_pickle(
    store: AnalysisStore,
    key: str,
    value: object,
    frames: Mapping[str, pd.DataFrame] | None = None,
    pickles: Mapping[str, object] | None = None,
) -> None:
    # A pickle, not Parquet: derived results hold object columns (texts and numbers, None) and nested records
    # that a Parquet round trip would retype. The store is the server's own folder, as trusted as its code.
    # ``pickles``: more values, each in a pickle of its own (<name>.pickle), read apart from the value.
    if (store.root / key).is_dir():
        return
    store.root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=store.root))
    try:
        for name, part in {**(pickles or {}), "value": value}.items():
            with open(staging / f"{name}.pickle", "wb") as handle:
                pickle.dump(part, handle, protocol=pickle.HIGHEST_PROTOCOL)
        for name, frame in (frames or {}).items():  # tables read by patient (StoredDays): small row groups
            frame.to_parquet(staging / f"{name}.parquet", index=False, row_group_size=DAYS_ROW_GROUP)
        (staging / "meta.json").write_text(json.dumps({"frames": []}))
        try:
            staging.rename(store.root / key)
        except OSError:  # another process stored the same entry first: theirs is the same
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _get_pickle(store: AnalysisStore, key: str) -> object | None:
    path = store.root / key / "value.pickle"
    if not path.is_file():
        return None
    with open(path, "rb") as handle:
        return pickle.load(handle)  # written by _put_pickle into the server's own store


class _OnDemand:
    """A table of a ``StoredClinicalTables``: read from disk when first asked for (unless given)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, tables: StoredClinicalTables | None, owner: type | None = None) -> Any:  # the table
        return self if tables is None else tables._on_demand(self.name)

    def __set__(self, tables: StoredClinicalTables, frame: pd.DataFrame | None) -> None:
        tables._given(self.name, frame)


class StoredClinicalTables(ClinicalTables):
    """``ClinicalTables`` read from the store whose per-cycle profile, questionnaire scores and adverse events
    (``ON_DEMAND_CLINICAL``) stay on disk until something asks for them: a restarted server's first Patient page
    reads the status of every patient, not the tables of the tabs it does not show. Each is read once, then kept."""

    _entry: Path | None
    _lock: threading.Lock
    _read: dict[str, pd.DataFrame]
    cycle_profile = _OnDemand()
    questionnaires = _OnDemand()
    adverse_events = _OnDemand()

    def __init__(self, *args: object, entry: Path | None = None, **fields: object):
        # entry None: a copy (dataclasses.replace), which is given every table
        object.__setattr__(self, "_entry", entry)
        object.__setattr__(self, "_lock", threading.Lock())
        object.__setattr__(self, "_read", {})
        super().__init__(*args, **fields)  # type: ignore[arg-type]

    def _on_demand(self, name: str) -> pd.DataFrame:
        if name not in self._read:
            with self._lock:
                if name not in self._read:
                    assert self._entry is not None, f"a copy of stored clinical tables was not given {name}"
                    with open(self._entry / f"{name}.pickle", "rb") as handle:
                        self._read[name] = pickle.load(handle)  # written by _put_clinical
        return self._read[name]

    def _given(self, name: str, frame: pd.DataFrame | None) -> None:
        if frame is not None:  # None: read from disk when asked for
            self._read[name] = frame


ON_DEMAND_CLINICAL = tuple(name for name, kind in vars(StoredClinicalTables).items() if isinstance(kind, _OnDemand))
"""The patient-level tables a stored ``ClinicalTables`` reads from disk when first asked for (``StoredClinicalTables``).
At 100,000 patients: 0.46 M, 1.1 M and 65 k rows, two fifths of the stored tables' bytes."""


def _put_clinical(store: AnalysisStore, dataset: Dataset, config: AnalysisConfig, tables: ClinicalTables) -> None:
    # The weekly profile of every patient (millions of rows) is what clinical_tables derives the onset and
    # wearing-off from; no page reads it, so it is not kept (a stored ClinicalTables has it empty).
    # The injections (a row per injection: millions) are kept grouped by patient and read by patient.
    injections = tables.injections
    grouped, index = by_patient(injections)
    frames = {"injections": injections if grouped is None else grouped, "injections_index": index}
    on_demand = {name: getattr(tables, name) for name in ON_DEMAND_CLINICAL}  # each in a pickle of its own
    kept = dataclasses.replace(
        tables,
        days=PatientDays(tables.status.iloc[:0]),  # days_by_patient() on reading
        weekly=tables.weekly.iloc[:0],
        injections=injections.iloc[:0],
        injection_rows=None,
        **{name: frame.iloc[:0] for name, frame in on_demand.items()},
    )
    _put_pickle(store, clinical_key(dataset, config, tables.params), kept, frames, on_demand)


def _get_clinical(
    store: AnalysisStore, dataset: Dataset, analysis: Analysis, params: ClinicalParameters
) -> ClinicalTables | None:
    key = clinical_key(dataset, analysis.config, params)
    tables = _get_pickle(store, key)
    if tables is None:
        return None
    assert isinstance(tables, ClinicalTables)
    entry = store.root / key
    rows = StoredDays(entry / "injections.parquet", _table(entry / "injections_index.parquet"))
    fields = {field.name: getattr(tables, field.name) for field in dataclasses.fields(tables)}
    fields.update(days=analysis.days_by_patient(), injection_rows=rows, **dict.fromkeys(ON_DEMAND_CLINICAL))
    return StoredClinicalTables(entry=entry, **fields)


def _path(entry: Path, name: str) -> Path:
    """Where an entry keeps a table: its Parquet file, or its folder of parts (``engine.write_parts``)."""
    folder = entry / name
    return folder if folder.is_dir() else entry / f"{name}.parquet"


def _parts_in(parts: Path | None, names: Sequence[str]) -> dict[str, Path]:
    """The tables of ``names`` that the partitioned pipeline wrote as parts into ``parts``, and their folders."""
    if parts is None:
        return {}
    return {name: parts / name for name in names if (parts / name).is_dir()}


def _rows(folder: Path) -> int:
    return sum(pq.read_metadata(path).num_rows for path in part_files(folder))


def _read_frame(path: Path, columns: list[str] | None = None) -> pd.DataFrame | None:
    """A stored table (None when the entry has none), with the project's text columns as Arrow-backed strings.

    A folder of parts is read as one table: the parts one after the other and, when the table has a ``line``
    column (a file's rows, or the per-patient-day frame), in line order, as the single-process loader gives it
    (lines are unique in a file, so the order is the same whatever the parts' own).
    """
    if path.is_dir():
        files = part_files(path)
        has_line = "line" in pq.read_schema(files[0]).names
        wanted = None if columns is None else [*columns, *(["line"] if has_line and "line" not in columns else [])]
        table = pa.concat_tables([pq.read_table(f, columns=wanted) for f in files], promote_options="permissive")
        if has_line:
            table = table.take(pc.sort_indices(table["line"]))
            if columns is not None and "line" not in columns:
                table = table.drop_columns(["line"])
        return _from_arrow(table)
    if not path.is_file():
        return None
    return _from_arrow(pq.read_table(path, columns=columns))


def _table(path: Path) -> pd.DataFrame:
    return _frame(_read_frame(path))


def _from_arrow(table: pa.Table) -> pd.DataFrame:
    # The project's text columns are Arrow-backed strings (schemas.TEXT_DTYPE): read them back as such.
    with pd.option_context("mode.string_storage", "pyarrow"):
        return table.to_pandas()


def _frame(frame: pd.DataFrame | None) -> pd.DataFrame:
    assert frame is not None, "a store entry lost a table it always holds"
    return frame
