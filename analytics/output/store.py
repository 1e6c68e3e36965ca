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
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from analytics import __version__
from analytics.definitions.clinical import ClinicalParameters, ClinicalTables, rows_by_patient
from analytics.definitions.config import AnalysisConfig
from analytics.definitions.pipeline import Analysis
from analytics.ingest.load import Dataset, FileReport
from analytics.scale.split import files_sha256

FORMAT = 1
"""Bumped when what an entry holds changes; with the software version it is part of every key."""
ANALYSIS_TABLES = ("patient_days", "patient_cycles", "cohort_cycles", "patient_status", "adverse_events", "safety")


def default_root() -> Path:
    return Path(os.environ.get("OUTCOMES_STORE_DIR", ".outcomes-store"))


def _digest(parts: object) -> str:
    text = json.dumps([FORMAT, __version__, parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def source_key(folder: Path) -> str:
    """The SHA-256 of every file of a data folder and of its table folders (names and contents)."""
    entries = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        entries.append((path.relative_to(folder).as_posix(), files_sha256([path])))
    return _digest(["dataset", entries])


def analysis_key(dataset: Dataset, config: AnalysisConfig) -> str:
    files = [(f.file, f.sha256) for f in dataset.files]
    return _digest(["analysis", files, config.parameters(), str(config.as_of)])


class AnalysisStore:
    """Datasets and analyses on disk under ``root`` (see the module docstring)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else default_root()

    def _entry(self, key: str) -> Path:
        return self.root / key

    def _write(self, key: str, frames: Mapping[str, pd.DataFrame | None], meta: Mapping[str, object]) -> None:
        if self._entry(key).is_dir():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            for name, frame in frames.items():
                if frame is not None:
                    frame.to_parquet(staging / f"{name}.parquet", index=False)
            (staging / "meta.json").write_text(json.dumps(meta, indent=1, default=str))
            try:
                staging.rename(self._entry(key))
            except OSError:  # another process stored the same entry first: theirs is the same
                pass
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _read(self, key: str) -> tuple[dict[str, pd.DataFrame | None], dict] | None:
        entry = self._entry(key)
        if not (entry / "meta.json").is_file():
            return None
        meta = json.loads((entry / "meta.json").read_text())
        frames: dict[str, pd.DataFrame | None] = {}
        for name in meta["frames"]:
            path = entry / f"{name}.parquet"
            # The project's text columns are Arrow-backed strings (schemas.TEXT_DTYPE): read them back as such.
            with pd.option_context("mode.string_storage", "pyarrow"):
                frames[name] = pd.read_parquet(path) if path.is_file() else None
        return frames, meta

    # --- datasets ----------------------------------------------------------------------------

    def put_dataset(self, key: str, dataset: Dataset) -> None:
        frames: dict[str, pd.DataFrame | None] = {f"table_{stem}": table for stem, table in dataset.tables.items()}
        frames["rejected"] = dataset.rejected
        frames["rejected_unlisted"] = dataset.rejected_unlisted
        meta = {
            "frames": list(frames),
            "files": [asdict(f) for f in dataset.files],
            "present_columns": {stem: sorted(columns) for stem, columns in dataset.present_columns.items()},
            "files_not_read": dataset.files_not_read,
        }
        self._write(key, frames, meta)

    def get_dataset(self, key: str) -> Dataset | None:
        read = self._read(key)
        if read is None:
            return None
        frames, meta = read
        tables = {name.removeprefix("table_"): f for name, f in frames.items() if name.startswith("table_")}
        return Dataset(
            tables={stem: table for stem, table in tables.items() if table is not None},
            rejected=_frame(frames["rejected"]),
            files=[FileReport(**{**f, "columns_ignored": tuple(f["columns_ignored"])}) for f in meta["files"]],
            present_columns={stem: frozenset(columns) for stem, columns in meta["present_columns"].items()},
            rejected_unlisted=_frame(frames["rejected_unlisted"]),
            files_not_read=[(name, reason) for name, reason in meta["files_not_read"]],
        )

    # --- analyses ----------------------------------------------------------------------------

    def put_analysis(self, dataset: Dataset, analysis: Analysis) -> None:
        frames = {name: getattr(analysis, name) for name in ANALYSIS_TABLES}
        meta = {"frames": list(frames), "as_of": analysis.as_of.isoformat()}
        self._write(analysis_key(dataset, analysis.config), frames, meta)

    def put_clinical(self, dataset: Dataset, config: AnalysisConfig, tables: ClinicalTables) -> None:
        """The Patient page's tables of every patient (``clinical.clinical_tables``) for this analysis."""
        _put_clinical(self, dataset, config, tables)

    def get_clinical(self, dataset: Dataset, analysis: Analysis, params: ClinicalParameters) -> ClinicalTables | None:
        return _get_clinical(self, dataset, analysis, params)

    def get_analysis(self, dataset: Dataset, config: AnalysisConfig) -> Analysis | None:
        read = self._read(analysis_key(dataset, config))
        if read is None:
            return None
        frames, meta = read
        return Analysis(
            config=config,
            as_of=pd.Timestamp(meta["as_of"]),
            patient_days=_frame(frames["patient_days"]),
            patient_cycles=_frame(frames["patient_cycles"]),
            cohort_cycles=_frame(frames["cohort_cycles"]),
            patient_status=_frame(frames["patient_status"]),
            adverse_events=frames["adverse_events"],
            safety=frames["safety"],
        )


def clinical_key(dataset: Dataset, config: AnalysisConfig, params: ClinicalParameters) -> str:
    return _digest(["clinical", analysis_key(dataset, config), asdict(params)])


def _put_clinical(store: AnalysisStore, dataset: Dataset, config: AnalysisConfig, tables: ClinicalTables) -> None:
    # A pickle, not Parquet: these derived tables hold object columns (texts and numbers, None) that a
    # Parquet round trip would retype. The store is the server's own folder, as trusted as its code.
    key = clinical_key(dataset, config, tables.params)
    if (store.root / key).is_dir():
        return
    store.root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=store.root))
    try:
        kept = dataclasses.replace(tables, day_rows={})  # rebuilt from the analysis on reading
        with open(staging / "clinical.pickle", "wb") as handle:
            pickle.dump(kept, handle, protocol=pickle.HIGHEST_PROTOCOL)
        (staging / "meta.json").write_text(json.dumps({"frames": []}))
        try:
            staging.rename(store.root / key)
        except OSError:
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _get_clinical(
    store: AnalysisStore, dataset: Dataset, analysis: Analysis, params: ClinicalParameters
) -> ClinicalTables | None:
    path = store.root / clinical_key(dataset, analysis.config, params) / "clinical.pickle"
    if not path.is_file():
        return None
    with open(path, "rb") as handle:
        tables = pickle.load(handle)  # written by _put_clinical into the server's own store
    return dataclasses.replace(tables, day_rows=rows_by_patient(analysis.patient_days))


def _frame(frame: pd.DataFrame | None) -> pd.DataFrame:
    assert frame is not None, "a store entry lost a table it always holds"
    return frame
