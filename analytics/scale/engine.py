"""The partitioned pipeline: split, check and analyse partitions of patients, then combine them exactly.

``run_partitioned`` gives the ``Analysis`` and ``Dataset`` that ``load_dataset`` + ``analyse`` give
for the export (the same export bytes; ``tests/test_scale.py`` compares them), holding at any time
one partition per worker plus the per-patient tables. The combined ``Dataset`` carries the
accepted ``patients`` rows (for cohort filters) and the rejection report; its other tables, and the
combined ``Analysis.patient_days``, are empty. ``run_whole`` gives them too, for the dashboard's store,
gathered in line order or, with ``parts``, written by each worker as its partition's Parquet part
(``write_parts``), which the store keeps as they are.
"""

from __future__ import annotations

import dataclasses
import functools
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.definitions.clinical import ClinicalTables, clinical_tables
from analytics.definitions.cohort import cohort_cycles
from analytics.definitions.config import AnalysisConfig
from analytics.definitions.cycles import data_cutoff
from analytics.definitions.pipeline import Analysis, PatientDays, analyse_at
from analytics.definitions.registry import Definition
from analytics.definitions.status import safety
from analytics.ingest import load, schemas
from analytics.ingest.load import FOLDER_LIMITS, REJECTED_COLUMNS, UNLISTED_COLUMNS, Dataset, FileReport, Limits
from analytics.ingest.schemas import FILES
from analytics.scale import split
from analytics.scale.runners import Runner, SerialRunner

DEFINITIONS = (
    Definition(
        "Partitioned Parquet table (a folder of parts)",
        "A table may be given as a folder named after its file (diary/) holding Parquet parts; the parts are read "
        "in name order as one table. Rows are numbered across the parts as if they were one file: line = the "
        "row's number counted over the parts before it and its own part, + 1. Every part must have the first "
        "part's columns (else the dataset is refused, exit 2); the size limits apply to each part; the table's "
        "SHA-256 is that of the parts' bytes one after the other. A diary.csv or diary.parquet beside the folder "
        "is read instead.",
        columns=("line",),
    ),
    Definition(
        "Partitioned export (--partitions, --engine local|dask)",
        "The same export as one process, byte for byte: rows are split by a stable hash of the patient_id text "
        "(every rule of SPEC §2–§5 but as_of and the cohort tables is local to one patient); as_of is the latest "
        "accepted session or diary date over all partitions; the per-patient tables are concatenated in "
        "patient_id order and the cohort and safety tables computed from them; rejected_rows.csv lists each "
        "file's first rejected rows by line, as without partitions.",
        parameters=("as_of",),
    ),
)

ROWS_PER_PARTITION = 1_000_000
"""Input rows (of the largest table) per partition when the count is chosen automatically."""
CSV_BYTES_PER_ROW = 35


@dataclass(frozen=True)
class Whole:
    """What ``run_whole`` asks of the partitioned pipeline beyond the export: each partition's per-patient-day
    frame and patient-level tables; with ``parts`` (a folder), each worker writes its partition's per-patient-day
    frame and accepted rows of ``part_tables`` there as Parquet parts (``write_parts``), not gathered."""

    parts: Path | None = None
    part_tables: tuple[str, ...] = ()
    row_group: int | None = None
    """Rows per row group of the per-patient-day parts (read one patient at a time)."""


@dataclass(frozen=True)
class Layout:
    """What every task needs to know of the split: where the shards are, and each file's name and columns."""

    root: Path
    partitions: int
    names: dict[str, str]
    columns: dict[str, tuple[str, ...]]
    max_listed: int
    whole: Whole | None = None
    """For ``run_whole``: keep each partition's per-patient-day frame (``days/``, or its parts) and compute its
    patient-level tables."""

    @property
    def keep_days(self) -> bool:
        return self.whole is not None

    @property
    def parts(self) -> Path | None:
        """Where the workers write their Parquet parts (``write_parts``); None: nothing is written as parts."""
        return self.whole.parts if self.whole is not None else None

    @property
    def part_tables(self) -> tuple[str, ...]:
        return self.whole.part_tables if self.whole is not None and self.parts is not None else ()


@dataclass
class PartitionCheck:
    """A partition's SPEC §2.1 validation, without its accepted rows (those stay in ``accepted/``)."""

    rejected: dict[str, pd.DataFrame]
    unlisted: dict[str, pd.DataFrame]
    rows_read: dict[str, int]
    rows_accepted: dict[str, int]
    present: dict[str, frozenset[str]]
    ignored: dict[str, tuple[str, ...]]
    latest: pd.Timestamp | None
    """The latest accepted session or diary date (None: none)."""


@dataclass
class PartitionResult:
    patient_cycles: pd.DataFrame
    patient_status: pd.DataFrame
    adverse_events: pd.DataFrame | None
    days: int
    """Rows of the partition's per-patient-day frame."""
    clinical: ClinicalTables | None = None
    """With ``keep_days``: the partition's ``clinical.clinical_tables`` (without its days and weekly profile)."""


def _accepted_folder(layout: Layout, partition: int) -> Path:
    return layout.root / "accepted" / f"{partition:05d}"


PART_GLOB = "part-*.parquet"
DAYS = "patient_days"
DAYS_INDEX = "patient_days_index"


def part_file(folder: Path, partition: int) -> Path:
    """A partition's part of a table written as parts (``folder/part-00003.parquet``); parts read in name order."""
    return folder / f"part-{partition:05d}.parquet"


def part_files(folder: Path) -> list[Path]:
    """The parts of a table written as parts, in name (partition) order."""
    return sorted(folder.glob(PART_GLOB))


def _write_part(folder: Path, partition: int, frame: pd.DataFrame, row_group: int | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f".part-{partition:05d}.staging"
    frame.to_parquet(staging, index=False, row_group_size=row_group)
    staging.replace(part_file(folder, partition))  # whole or absent, also when a retried task writes it again


def by_patient(frame: pd.DataFrame) -> tuple[pd.DataFrame | None, pd.DataFrame]:
    """``frame`` grouped by patient (each patient's rows in their order; None when it is grouped already) and the
    index of each patient's rows in it (patient_id, start, stop), to read one patient's rows alone."""
    codes, patient_ids = pd.factorize(frame["patient_id"])
    grouped = bool(np.all(np.diff(codes) >= 0))
    order = np.arange(len(codes)) if grouped else np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(patient_ids) + 1))
    index = pd.DataFrame(
        {"patient_id": pd.Series(patient_ids, dtype="string"), "start": bounds[:-1], "stop": bounds[1:]}
    )
    return None if grouped else frame.iloc[order].reset_index(drop=True), index


def write_parts(layout: Layout, partition: int, days: pd.DataFrame, tables: Mapping[str, pd.DataFrame]) -> None:
    """A partition's share of the whole tables, written by its worker into ``Whole.parts``: its per-patient-day
    rows grouped by patient (``patient_days/``) with the index of each patient's rows (``patient_days_index/``:
    patient_id, part, start, stop), and its accepted rows of each of ``layout.part_tables`` (``table_diary/``...).

    Every table with a ``line`` column is put back in line order when read whole (the store's ``_read_frame``):
    the rows of a partition are in line order within it, and lines are unique in a file."""
    assert layout.whole is not None and layout.parts is not None
    folder = layout.parts
    grouped, index = by_patient(days)
    _write_part(folder / DAYS, partition, days if grouped is None else grouped, layout.whole.row_group)
    _write_part(folder / DAYS_INDEX, partition, index.assign(part=partition))
    for stem in layout.part_tables:
        _write_part(folder / f"table_{stem}", partition, tables[stem])


def days_file(root: Path, partition: int) -> Path:
    return root / "days" / f"{partition:05d}.pickle"


def _done(path: Path) -> object | None:
    """A task's result kept on disk: a task run again (a cluster retries a lost worker's tasks) returns it."""
    if not path.is_file():
        return None
    with open(path, "rb") as handle:
        return pickle.load(handle)  # the pipeline's own scratch file, written by _keep


def _keep(path: Path, result: object) -> None:
    staging = path.with_name(path.name + ".staging")
    with open(staging, "wb") as handle:
        pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)
    staging.replace(path)


def check_partition(layout: Layout, partition: int) -> PartitionCheck:
    """SPEC §2.1's row rules on one partition (``load.validate_tables``); its accepted rows go to ``accepted/``.

    The partition's shards are removed once its result is kept (so the work folder holds little
    more than the input at any time); a second run of the task returns the kept result.
    """
    result_file = _accepted_folder(layout, partition) / "check.pickle"
    if isinstance(done := _done(result_file), PartitionCheck):
        return done
    raw = {
        stem: split.shard_tables(layout.root, stem, layout.names[stem], partition, layout.columns[stem])
        for stem in layout.names
    }
    validated = load.validate_tables(raw, layout.max_listed)
    folder = _accepted_folder(layout, partition)
    folder.mkdir(parents=True, exist_ok=True)
    for stem, checked in validated.items():
        # Pickle: the typed frame back as it was (dtypes included), far faster than Parquet for a scratch file.
        checked.accepted.to_pickle(folder / f"{stem}.pickle")
    dates = [
        validated[stem].accepted[column].max()
        for stem, column in (("sessions", "session_date"), ("diary", "date"))
        if stem in validated
    ]
    latest = max((d for d in dates if pd.notna(d)), default=None)
    result = PartitionCheck(
        rejected={stem: v.rejected for stem, v in validated.items()},
        unlisted={stem: v.unlisted for stem, v in validated.items()},
        rows_read={stem: len(raw[stem].cells) for stem in raw},
        rows_accepted={stem: len(v.accepted) for stem, v in validated.items()},
        present={stem: v.present for stem, v in validated.items()},
        ignored={stem: v.ignored for stem, v in validated.items()},
        latest=latest,
    )
    _keep(result_file, result)
    for stem in layout.names:  # read once: the disk they hold is free for the next partitions
        shutil.rmtree(split.shard_folder(layout.root, stem, partition), ignore_errors=True)
    return result


def accepted_tables(layout: Layout, partition: int) -> dict[str, pd.DataFrame]:
    folder = _accepted_folder(layout, partition)
    return {
        stem: pd.read_pickle(folder / f"{stem}.pickle") if stem in layout.names else load.empty_table(stem)
        for stem in FILES
    }


def analyse_partition(
    layout: Layout,
    config: AnalysisConfig,
    as_of: pd.Timestamp,
    files: list[FileReport],
    present: dict[str, frozenset[str]],
    partition: int,
) -> PartitionResult:
    """``pipeline.analyse_at`` on one partition's accepted rows, for the ``as_of`` of the whole dataset.

    Its accepted rows are removed once its result is kept (but for what is gathered afterwards).
    """
    result_file = _accepted_folder(layout, partition) / "analysis.pickle"
    if isinstance(done := _done(result_file), PartitionResult):
        return done
    empty = pd.DataFrame(columns=REJECTED_COLUMNS)
    dataset = Dataset(accepted_tables(layout, partition), empty, files, present)
    analysis = analyse_at(dataset, config, as_of)
    if layout.parts is not None:
        write_parts(layout, partition, analysis.patient_days, dataset.tables)
    elif layout.keep_days:
        target = days_file(layout.root, partition)
        target.parent.mkdir(parents=True, exist_ok=True)
        analysis.patient_days.to_pickle(target)
    result = PartitionResult(
        analysis.patient_cycles, analysis.patient_status, analysis.adverse_events, len(analysis.patient_days)
    )
    if layout.keep_days:  # every rule of the patient-level tables is local to one patient, as the analysis's
        tables = clinical_tables(analysis, dataset)
        empty_days = PatientDays(tables.status.iloc[:0])
        result.clinical = dataclasses.replace(tables, days=empty_days, weekly=tables.weekly.iloc[:0])
    _keep(result_file, result)
    if not layout.keep_days:  # only the patients table is gathered afterwards
        for stem in layout.names:
            if stem != "patients":
                (_accepted_folder(layout, partition) / f"{stem}.pickle").unlink(missing_ok=True)
    return result


def auto_partitions(folder: Path) -> int:
    """Enough partitions that each holds about ``ROWS_PER_PARTITION`` rows of the largest table."""
    largest = 0
    for table in split.table_inputs(folder).values():
        if table.name.endswith("/") or table.name.lower().endswith(".parquet"):
            import pyarrow.parquet as pq

            try:
                rows = sum(pq.read_metadata(p).num_rows for p in table.paths)
            except Exception:  # a broken file: the loader refuses it, in one partition as in many
                rows = 0
        else:
            rows = sum(p.stat().st_size for p in table.paths) // CSV_BYTES_PER_ROW
        largest = max(largest, rows)
    return max(1, -(-largest // ROWS_PER_PARTITION))


@contextmanager
def work_folder(parent: Path | None) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="outcomes-partitions-", dir=parent))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


Say = Callable[[str], None]


def _quiet(message: str) -> None:
    del message


def _ticker(say: Say, what: str) -> Callable[[int, int], None]:
    """Progress for a round of tasks: about every tenth of them, and the last."""

    def done(finished: int, total: int) -> None:
        if total > 1 and (finished == total or finished % max(1, total // 10) == 0):
            say(f"  {what} {finished}/{total}")

    return done


@dataclass
class _Split:
    names: dict[str, str]
    columns: dict[str, tuple[str, ...]]
    digests: dict[str, str]
    rows: dict[str, int]
    malformed: dict[str, pd.DataFrame]


def _split_all(folder: Path, root: Path, partitions: int, runner: Runner, limits: Limits, say: Say) -> _Split:
    """Every input file to the partitions, file by file in the loader's order; refusals as the loader's."""
    out = _Split({}, {}, {}, {}, {})
    task = functools.partial(_split_task, root=root, partitions=partitions, limits=limits)
    for stem, table in split.table_inputs(folder).items():
        spec = FILES[stem]
        if table.name.endswith("/"):
            tasks, digest = split.parquet_parts(table, limits)
            columns = _parquet_columns(table)
            _check_header_or_refuse_exactly(spec, table, columns, limits)
        elif table.name.lower().endswith(".csv"):
            plan = split.plan_csv(table)
            tasks, digest, columns = plan.tasks, plan.sha256, plan.columns
            if plan.columns:
                _check_header_or_refuse_exactly(spec, table, columns, limits)
        else:
            tasks, digest, columns = (
                [split.WholeFile(stem, table.name, table.paths[0])],
                split.files_sha256(table.paths),
                (),
            )
        say(f"splitting {table.name} into {partitions} partition(s): {len(tasks)} task(s) ...")
        results = runner.map(task, list(enumerate(tasks)), _ticker(say, f"{table.name} split tasks done:"))
        if any(not r.simple for r in results):  # a block the fast reader would not read: the file is read whole
            split.clear(root, stem)
            tasks = [split.WholeFile(stem, table.name, table.paths[0])]
            results = [split.run_split(tasks[0], 0, root, partitions, limits)]
        if tasks and isinstance(tasks[0], split.CsvBlock):
            load._check_size(table.name, sum(r.rows for r in results), len(columns), limits)
        if tasks and not isinstance(tasks[0], split.CsvBlock):
            columns = results[0].columns
        malformed = results[0].malformed if tasks and isinstance(tasks[0], split.WholeFile) else None
        out.names[stem] = table.name
        out.columns[stem] = tuple(columns)
        out.digests[stem] = digest
        out.rows[stem] = sum(r.rows for r in results)
        if malformed is not None and len(malformed):
            out.malformed[stem] = malformed
    load.check_required_files(out.names)
    return out


def _split_task(item: tuple[int, split.SplitTask], root: Path, partitions: int, limits: Limits) -> split.SplitResult:
    index, task = item
    return split.run_split(task, index, root, partitions, limits)


def _parquet_columns(table: split.TableInput) -> tuple[str, ...]:
    import pyarrow.parquet as pq

    return tuple(load._header_name(c) for c in pq.read_schema(table.paths[0]).names)


def _check_header_or_refuse_exactly(
    spec: schemas.FileSpec, table: split.TableInput, columns: tuple[str, ...], limits: Limits
) -> None:
    """``load.check_header`` before any row is written (no identifiers reach the work folder).

    When it refuses, the file is read as the loader reads it first, so that a refusal the loader
    gives earlier (a file too big, one it cannot parse) is the one given.
    """
    probe = load.RawTable(table.name, pd.DataFrame(columns=list(columns)), np.empty(0, np.int64), pd.DataFrame())
    try:
        load.check_header(spec, probe)
    except load.DatasetRefused:
        if table.name.endswith("/"):
            raw, _ = load.read_parts(table.name, list(table.paths), limits)
        else:
            raw = load.read_table(table.name, load.file_bytes(table.name, table.paths[0]), limits)
        load.check_header(spec, raw)
        raise


def _capped(
    name: str, listings: list[pd.DataFrame], unlisted: list[pd.DataFrame], max_listed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One file's rejection listing (its first ``max_listed`` rejected rows by line) and the rest counted."""
    listing = pd.concat(listings, ignore_index=True) if listings else pd.DataFrame(columns=REJECTED_COLUMNS)
    listing = listing.astype({"line": "int64"}).sort_values("line", kind="stable")
    kept, over = listing.iloc[:max_listed], listing.iloc[max_listed:]
    counted = [u[["reason", "patient_id", "rows"]] for u in unlisted if len(u)]
    if len(over):
        overflow = over.groupby(["reason", "patient_id"], sort=False).size().rename("rows").reset_index()
        counted.append(overflow)
    if not counted:
        return kept, load._empty_unlisted()
    both = pd.concat([c.astype({"reason": object, "patient_id": object}) for c in counted], ignore_index=True)
    summed = both.groupby(["reason", "patient_id"], sort=False)["rows"].sum().reset_index()
    table = pd.DataFrame(
        {
            "file": name,
            "reason": summed["reason"].astype(object),
            "patient_id": summed["patient_id"].astype(schemas.TEXT_DTYPE),
            "rows": summed["rows"].astype("int64"),
        }
    )[UNLISTED_COLUMNS]
    return kept, table.sort_values(["reason", "patient_id"], kind="stable", ignore_index=True)


def run_partitioned(
    folder: Path,
    config: AnalysisConfig | None = None,
    partitions: int | None = None,
    runner: Runner | None = None,
    work_dir: Path | None = None,
    limits: Limits = FOLDER_LIMITS,
    say: Say = _quiet,
) -> tuple[Analysis, Dataset]:
    """``analyse(load_dataset(folder), config)`` on partitions of patients.

    ``runner`` runs the tasks (in this process by default); ``work_dir`` is where the partitions are
    written (it must be shared with the workers of a cluster). The results hold what the export needs
    (see the module's docstring); ``run_whole`` gives everything, for the dashboard's store.
    """
    analysis, dataset, _ = _run(folder, config, partitions, runner, work_dir, limits, say, whole=None)
    return analysis, dataset


def run_whole(
    folder: Path,
    config: AnalysisConfig | None = None,
    partitions: int | None = None,
    runner: Runner | None = None,
    limits: Limits = FOLDER_LIMITS,
    say: Say = _quiet,
    parts: Path | None = None,
    part_tables: tuple[str, ...] = (),
    row_group: int | None = None,
) -> tuple[Analysis, Dataset, ClinicalTables]:
    """``run_partitioned`` that also gathers every accepted table and the per-patient-day frame, in the
    single-process path's order, and the patient-level tables (``clinical.clinical_tables``, computed on each
    partition: each patient's rows as the single-process tables have them, the patients in patient_id order;
    without the weekly profile of every patient, which the store does not keep).

    With ``parts`` (a folder), the per-patient-day frame and the tables named in ``part_tables`` are not
    gathered: each worker writes its partition's share there (``write_parts``), and the result has them empty.
    """
    whole = Whole(parts, part_tables, row_group)
    analysis, dataset, tables = _run(folder, config, partitions, runner, None, limits, say, whole=whole)
    assert tables is not None
    return analysis, dataset, tables


def _run(
    folder: Path,
    config: AnalysisConfig | None,
    partitions: int | None,
    runner: Runner | None,
    work_dir: Path | None,
    limits: Limits,
    say: Say,
    *,
    whole: Whole | None,
) -> tuple[Analysis, Dataset, ClinicalTables | None]:
    config = config or AnalysisConfig()
    runner = runner or SerialRunner()
    folder = Path(folder)
    if partitions is None:
        partitions = auto_partitions(folder)
    with work_folder(work_dir) as root:
        parts = _split_all(folder, root, partitions, runner, limits, say)
        layout = Layout(root, partitions, parts.names, parts.columns, limits.max_rejected_listed, whole)
        say(f"checking {partitions} partition(s) ...")
        check_one = functools.partial(check_partition, layout)
        checks = runner.map(check_one, list(range(partitions)), _ticker(say, "partitions checked:"))
        latest = [c.latest for c in checks if c.latest is not None]
        as_of = data_cutoff(
            pd.DataFrame({"session_date": pd.Series(latest, dtype="datetime64[ns]")}),
            pd.DataFrame({"date": pd.Series([], dtype="datetime64[ns]")}),
            config,
        )
        dataset = _combined_dataset(folder, layout, parts, checks)
        say(f"analysing {partitions} partition(s) for as_of {as_of.date()} ...")
        present = dataset.present_columns
        analyse_one = functools.partial(analyse_partition, layout, config, as_of, dataset.files, present)
        results = runner.map(analyse_one, list(range(partitions)), _ticker(say, "partitions analysed:"))
        stems = [s for s in layout.names if s not in layout.part_tables] if whole is not None else ["patients"]
        for stem in stems:
            dataset.tables[stem] = _accepted(layout, stem)
        days = None
        if layout.keep_days and layout.parts is None:
            frames = [pd.read_pickle(days_file(root, p)) for p in range(partitions)]
            days = pd.concat(frames, ignore_index=True).sort_values("line", kind="stable")
            days = days.reset_index(drop=True)
    clinical = [r.clinical for r in results if r.clinical is not None]
    tables = _combined_clinical(clinical) if whole is not None else None
    return _combined_analysis(config, as_of, results, days), dataset, tables


def _combined_clinical(parts: list[ClinicalTables]) -> ClinicalTables:
    """The partitions' patient-level tables as one: the patients in patient_id order (each patient's rows in
    their partition's order, which is the single-process order of that patient's rows)."""
    frames = {
        name: pd.concat([getattr(p, name) for p in parts], ignore_index=True).sort_values(
            "patient_id", kind="stable", ignore_index=True
        )
        for name in ("status", "cycle_profile", "adverse_events", "questionnaires", "injections")
    }
    return dataclasses.replace(parts[0], **frames)


def _accepted(layout: Layout, stem: str) -> pd.DataFrame:
    """A file's accepted rows over every partition, in line order (as the loader gives them)."""
    if stem not in layout.names:
        return load.empty_table(stem)
    parts = [pd.read_pickle(_accepted_folder(layout, p) / f"{stem}.pickle") for p in range(layout.partitions)]
    return pd.concat(parts, ignore_index=True).sort_values("line", kind="stable", ignore_index=True)


def _combined_dataset(folder: Path, layout: Layout, parts: _Split, checks: list[PartitionCheck]) -> Dataset:
    rejected: list[pd.DataFrame] = []
    unlisted: list[pd.DataFrame] = []
    reports: list[FileReport] = []
    for stem, name in parts.names.items():
        listings = [c.rejected[stem] for c in checks]
        if stem in parts.malformed:
            malformed = parts.malformed[stem]
            listings.append(malformed.assign(file=name).astype({"value": object})[REJECTED_COLUMNS])
        listed, counted = _capped(name, listings, [c.unlisted[stem] for c in checks], layout.max_listed)
        rejected.append(listed)
        unlisted.append(counted)
        n_malformed = len(parts.malformed.get(stem, ()))
        reports.append(
            FileReport(
                file=name,
                sha256=parts.digests[stem],
                rows_read=parts.rows[stem] + n_malformed,
                rows_accepted=sum(c.rows_accepted[stem] for c in checks),
                rows_rejected=len(listed) + int(counted["rows"].sum()),
                columns_ignored=checks[0].ignored[stem],
            )
        )
    tables = {stem: load.empty_table(stem) for stem in FILES}
    return Dataset(
        tables=tables,
        rejected=load.rejection_report(rejected),
        files=reports,
        present_columns={stem: checks[0].present.get(stem, frozenset()) for stem in FILES},
        rejected_unlisted=load.unlisted_report(unlisted),
        files_not_read=load.unread_files(load.source_names(folder), parts.names.values()),
    )


def _combined_analysis(
    config: AnalysisConfig, as_of: pd.Timestamp, results: list[PartitionResult], days: pd.DataFrame | None
) -> Analysis:
    table = pd.concat([r.patient_cycles for r in results], ignore_index=True)
    table = table.sort_values("patient_id", kind="stable", ignore_index=True)
    status = pd.concat([r.patient_status for r in results], ignore_index=True)
    status = status.sort_values("patient_id", kind="stable", ignore_index=True)
    event_parts = [r.adverse_events for r in results if r.adverse_events is not None]
    events = None
    if event_parts:
        events = pd.concat(event_parts, ignore_index=True)
        events = events.sort_values(["patient_id", "session_date"], kind="stable", ignore_index=True)
    if days is None:
        days = pd.DataFrame()
    return Analysis(
        config, as_of, days, table, cohort_cycles(table, as_of, config), status, events, safety(table, events)
    )
