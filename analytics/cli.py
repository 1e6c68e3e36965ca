"""Command line: ``python -m analytics export ...`` (SPEC §4), or the ``botox-outcomes`` console script.

Exit status: 0 success (rejected rows are reported, not fatal); 1 with ``--strict`` when any row was
rejected (nothing is written); 2 when a required file or column is missing or a file cannot be
parsed; 3 when a column looks like a direct identifier; 4 when the output cannot be written.
Progress and a summary go to stderr. ``export --min-cell K`` writes the suppressed, aggregate-only
export (``analytics.privacy.suppression``); ``python -m analytics deidentify ...`` is ``analytics.privacy.deidentify``;
``python -m analytics audit-verify [--log PATH]`` checks the audit log's hash chain (exit 0 OK, 1 broken);
``python -m analytics verify OUT_DIR`` checks an export folder (exit 0 whole, 1 not).
``python -m analytics summary --data DIR --out DIR --patient ID ... | --due-within DAYS`` writes one PDF per
patient for a clinic visit (``analytics.views.summary_pdf``): exit 2 when no patient is asked for or an id is
not in the data, 2 or 3 when the dataset is refused, 4 when a PDF cannot be written.
``export --engine local|dask [--partitions N] [--workers N] [--scheduler ADDRESS]`` runs the export on partitions of
patients (``analytics.scale``), in local processes or on a Dask cluster, with the same output; exit 5 when the
engine cannot run (a scheduler that cannot be reached, a worker lost).
``python -m analytics store --data DIR [--store DIR] [--workers N]`` builds the dashboard's analysis store for a
data folder ahead of time (``analytics.output.store.build_folder``): exit 2 or 3 when the dataset is refused, 4 when
the store cannot be written, 5 when the worker processes cannot run.
``analytics/__main__.py`` only calls ``main()``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
from datetime import date, datetime
from pathlib import Path

import pandas as pd

from analytics.definitions.clinical import clinical_tables
from analytics.definitions.config import AnalysisConfig, flag_name, flag_parameters
from analytics.definitions.pipeline import Analysis, analyse
from analytics.ingest.load import Dataset, DatasetRefused, load_dataset
from analytics.output.export import PATIENT_LEVEL_FILES, verify_export, write_atomically
from analytics.output.store import AnalysisStore, build_folder, default_root
from analytics.privacy import audit, deidentify
from analytics.privacy.suppression import DEFAULT_MIN_CELL
from analytics.scale.engine import ROWS_PER_PARTITION, auto_partitions, run_partitioned
from analytics.scale.runners import ENGINES, EngineFailed, runner_for
from analytics.scale.split import cpu_count
from analytics.views import cohort_filter
from analytics.views.summary_record import KINDS, PAGE_SIZE_NAMES, PatientRecords, SummaryContext, due_within


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from exc


_METAVARS = {float: "X", int: "N"}


def _parameter_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per parameter of ``AnalysisConfig`` (SPEC §3 and §5), from its field and documentation."""
    parser.add_argument(
        "--as-of", type=_iso_date, help="data cut-off YYYY-MM-DD (default: latest session or diary date)"
    )
    defaults = AnalysisConfig()
    docs = {f.name: f.metadata.get("doc", "") for f in dataclasses.fields(AnalysisConfig)}
    for name in flag_parameters():
        kind = type(getattr(defaults, name))
        parser.add_argument(
            flag_name(name),
            type=kind,
            default=getattr(defaults, name),
            metavar=_METAVARS.get(kind, "V"),
            help=docs[name].replace("%", "%%") + " (default %(default)s)",
        )


def _engine_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("engine (registry scale: the same output on partitions of patients)")
    group.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="local (default): this machine, in --workers processes when there is more than one partition; "
        "dask: the partitions as tasks on a dask.distributed cluster (--scheduler, or a local cluster)",
    )
    group.add_argument(
        "--partitions",
        type=int,
        metavar="N",
        help=f"partitions of patients (default: one per {ROWS_PER_PARTITION:,} rows of the largest file, so 1 "
        "for a clinic: everything at once in memory)",
    )
    group.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help=f"processes working on partitions at once (default: the CPUs, here {cpu_count()})",
    )
    group.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="with --engine dask: a running cluster's scheduler (tcp://host:8786); default: a local cluster",
    )
    group.add_argument(
        "--work-dir",
        type=Path,
        help="where the partitions are written while the export runs (default: the system's temporary folder); "
        "on a cluster, a folder every worker reads and writes at the same path",
    )


def _engine_problem(args: argparse.Namespace) -> str | None:
    if args.partitions is not None and args.partitions < 1:
        return f"--partitions must be at least 1 (got {args.partitions})"
    if args.workers is not None and args.workers < 1:
        return f"--workers must be at least 1 (got {args.workers})"
    if args.scheduler and args.engine != "dask":
        return "--scheduler needs --engine dask"
    if args.work_dir is not None and not args.work_dir.is_dir():
        return f"--work-dir {args.work_dir}: not a folder"
    return None


def config_from_args(args: argparse.Namespace) -> AnalysisConfig:
    values = {name: getattr(args, name) for name in flag_parameters() if hasattr(args, name)}
    return AnalysisConfig(**values, as_of=args.as_of)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analytics", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser(
        "export", help="write patient_cycles, cohort_cycles, patient_status, safety, rejected_rows and manifest"
    )
    export.add_argument("--data", required=True, type=Path, help="folder with sessions.csv, diary.csv, ...")
    export.add_argument("--out", required=True, type=Path, help="folder to write the export into")
    export.add_argument("--strict", action="store_true", help="write nothing and exit 1 when any row is rejected")
    export.add_argument(
        "--min-cell",
        type=int,
        nargs="?",
        const=DEFAULT_MIN_CELL,
        default=None,
        metavar="K",
        help=f"to share outside the clinic: aggregate tables only, counts 1..K-1 suppressed (K={DEFAULT_MIN_CELL} "
        "when given without a number)",
    )
    _engine_arguments(export)
    _parameter_arguments(export)
    cohort_filter.add_arguments(export)
    deidentify.add_arguments(
        commands.add_parser("deidentify", help="pseudonymise ids, shift dates and drop identifiers of a raw export")
    )
    check = commands.add_parser("verify", help="check that a folder holds one whole export (its manifest's files)")
    check.add_argument("folder", type=Path)
    summary = commands.add_parser(
        "summary",
        help="write one PDF per patient for a clinic visit: the doctor's one-page summary or the patient's page",
    )
    summary.add_argument("--data", required=True, type=Path, help="folder with sessions.csv, diary.csv, ...")
    summary.add_argument("--out", required=True, type=Path, help="folder to write <patient_id>_<kind>.pdf into")
    summary.add_argument(
        "--patient", action="extend", nargs="+", default=[], metavar="ID", help="the patients to write (pseudonyms)"
    )
    summary.add_argument(
        "--due-within",
        type=int,
        metavar="DAYS",
        help="also every patient whose next injection is due by as_of + DAYS (active or overdue, not lapsed)",
    )
    summary.add_argument("--kind", choices=KINDS, default="doctor", help="doctor (default) or patient")
    summary.add_argument("--page-size", choices=PAGE_SIZE_NAMES, default="a4", help="a4 (default) or letter")
    summary.add_argument("--appendix", action="store_true", help="add the charts on the following pages")
    _parameter_arguments(summary)
    store = commands.add_parser(
        "store",
        help="build the dashboard's analysis store for a data folder ahead of time (the dataset, its analysis for "
        "the default parameters and the Patient page's tables), so that its first page opens at once",
    )
    store.add_argument("--data", required=True, type=Path, help="folder with sessions.csv, diary.csv, ...")
    store.add_argument(
        "--store", type=Path, help="the analysis store (default: $OUTCOMES_STORE_DIR, else .outcomes-store)"
    )
    store.add_argument("--workers", type=int, metavar="N", help=f"processes (default: the CPUs, here {cpu_count()})")
    verify = commands.add_parser("audit-verify", help="check the audit log's hash chain and head file")
    verify.add_argument("--log", type=Path, help="the audit log (default: $OUTCOMES_AUDIT_LOG, else logs/audit.jsonl)")
    return parser


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _min_cell_problem(args: argparse.Namespace) -> str | None:
    """Why a suppressed export (--min-cell) cannot be written as asked, if it cannot."""
    if args.min_cell is None:
        return None
    if args.min_cell < 2:
        return f"--min-cell must be at least 2 (got {args.min_cell})"
    stale = [name for name in PATIENT_LEVEL_FILES if (args.out / name).exists()]
    if stale:
        return f"--min-cell: {args.out} holds patient-level files ({', '.join(stale)}); write to a new folder"
    return None


def _read_dataset(data: Path) -> Dataset | int:
    """The loaded dataset, or the exit status of its refusal (said on stderr)."""
    _say(f"reading {data} ...")
    try:
        return load_dataset(data)
    except DatasetRefused as exc:
        _say(f"refused: {exc}")
        return exc.exit_code


def _partitions(args: argparse.Namespace) -> int | None:
    """The partitions to run the export on; None for the single-process path (one partition, engine local)."""
    if args.engine == "local" and args.partitions in (None, 1) and not args.data.is_dir():
        return None  # the loader says what is wrong with it
    partitions = args.partitions or auto_partitions(args.data)
    return None if args.engine == "local" and partitions == 1 else partitions


def _run_partitioned(
    args: argparse.Namespace, config: AnalysisConfig, partitions: int
) -> tuple[Analysis, Dataset] | int:
    workers = args.workers or cpu_count()
    where = args.scheduler or ("a local Dask cluster" if args.engine == "dask" else "this machine")
    _say(f"reading {args.data} in {partitions} partition(s) of patients, {workers} worker(s) on {where} ...")
    try:
        with runner_for(args.engine, min(workers, partitions), args.scheduler) as runner:
            return run_partitioned(args.data, config, partitions, runner, args.work_dir, say=_say)
    except DatasetRefused as exc:
        _say(f"refused: {exc}")
        return exc.exit_code
    except EngineFailed as exc:
        _say(f"error: the {args.engine} engine could not run: {exc}")
        return 5


def _report_files(dataset: Dataset, strict: bool) -> int | None:
    """Each file's counts on stderr; with ``strict``, exit 1 when any row was rejected."""
    for f in dataset.files:
        _say(f"  {f.file}: {f.rows_read} rows read, {f.rows_accepted} accepted, {f.rows_rejected} rejected")
    if strict and dataset.rejected_total():
        _say(f"--strict: {dataset.rejected_total()} rows rejected; nothing written. First rejections:")
        for row in dataset.rejected.head(20).itertuples():
            _say(f"  {row.file} line {row.line} ({row.patient_id}): {row.reason}")
        _say("Run without --strict to get rejected_rows.csv with every rejection.")
        return 1
    for name, listed in dataset.rejected_listed_per_file().items():
        _say(f"  {name}: rejected_rows.csv lists its first {listed:,} rejected rows; manifest.json counts them all")
    return None


def run_export(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except ValueError as exc:
        _say(f"error: {exc}")
        return 2
    if problem := _min_cell_problem(args) or _engine_problem(args):
        _say(f"error: {problem}")
        return 2
    try:
        chosen = cohort_filter.from_args(args)
    except (OSError, ValueError) as exc:
        _say(f"error: cohort filter: {exc}")
        return 2
    partitions = _partitions(args)
    if partitions is None:
        dataset = _read_dataset(args.data)
        if isinstance(dataset, int):
            return dataset
        if (stop := _report_files(dataset, args.strict)) is not None:
            return stop
        _say("computing cycles and cohort statistics ...")
        analysis = analyse(dataset, config)
    else:
        done = _run_partitioned(args, config, partitions)
        if isinstance(done, int):
            return done
        analysis, dataset = done
        if (stop := _report_files(dataset, args.strict)) is not None:
            return stop
    if not chosen.is_empty():
        _say(
            f"cohort filter: {'; '.join(chosen.describe())}: {len(chosen.apply(analysis, dataset))} of "
            f"{analysis.patient_cycles['patient_id'].nunique()} treated patients"
        )
    files = cohort_filter.filtered_export(analysis, dataset, chosen, min_cell=args.min_cell)
    try:
        write_atomically(files, args.out)
    except OSError as exc:
        _say(f"error: cannot write to {args.out}: {exc.strerror or exc}")
        return 4
    table = analysis.patient_cycles
    _say(
        f"as_of {analysis.as_of.date()}: {table['patient_id'].nunique()} treated patients, "
        f"{int((table['cycle'] >= 1).sum())} cycles, {dataset.rejected_total()} rows rejected; "
        f"wrote {', '.join(files)} to {args.out}"
    )
    return 0


def _write_file_atomically(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all: a temporary file beside it, flushed to disk, then renamed over it."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def run_summary(args: argparse.Namespace) -> int:
    # reportlab and matplotlib load only for this command, not for every export.
    from analytics.views import summary_pdf

    if not args.patient and args.due_within is None:
        _say("error: say which patients: --patient ID ... and/or --due-within DAYS")
        return 2
    if args.due_within is not None and args.due_within < 0:
        _say(f"error: --due-within must not be negative (got {args.due_within})")
        return 2
    try:
        config = config_from_args(args)
    except ValueError as exc:
        _say(f"error: {exc}")
        return 2
    dataset = _read_dataset(args.data)
    if isinstance(dataset, int):
        return dataset
    analysis = analyse(dataset, config)
    tables = clinical_tables(analysis, dataset)
    records = PatientRecords(analysis, dataset, tables)
    unknown = records.unknown(args.patient)
    if unknown:
        _say(f"error: unknown patient id{'s' if len(unknown) > 1 else ''} (not in {args.data}): {', '.join(unknown)}")
        return 2
    chosen = list(dict.fromkeys(args.patient))
    if args.due_within is not None:
        due = due_within(tables.status, analysis.as_of, args.due_within)
        _say(f"{len(due)} patients due by {(analysis.as_of + pd.Timedelta(days=args.due_within)).date()}")
        chosen += [p for p in due if p not in chosen]
    if not chosen:
        _say("no patient to write; nothing written")
        return 0
    context = SummaryContext(config, tables.params, analysis.as_of, str(args.data), datetime.now())
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        for i, patient_id in enumerate(chosen, start=1):
            _say(f"{i}/{len(chosen)} {patient_id}")
            pdf = summary_pdf.build_summary_pdf(
                records.record(patient_id), context, args.kind, args.page_size, appendix=args.appendix
            )
            _write_file_atomically(args.out / f"{patient_id}_{args.kind}.pdf", pdf)
    except OSError as exc:
        _say(f"error: cannot write to {args.out}: {exc.strerror or exc}")
        return 4
    _say(f"as_of {analysis.as_of.date()}: wrote {len(chosen)} {args.kind} summaries to {args.out}")
    return 0


def run_store(args: argparse.Namespace) -> int:
    """``python -m analytics store``: progress on stderr; one JSON line on stdout, ``{"key": ...}`` or
    ``{"refused": {...}}`` (the refusal's message, exit code, file, column and needed columns)."""
    if args.workers is not None and args.workers < 1:
        _say(f"error: --workers must be at least 1 (got {args.workers})")
        return 2
    if not args.data.is_dir():
        _say(f"error: {args.data} is not a folder")
        return 2
    try:
        key = build_folder(args.data, AnalysisStore(args.store), args.workers, say=_say)
    except DatasetRefused as exc:
        _say(f"refused: {exc}")
        refusal = {"message": str(exc), "exit_code": exc.exit_code, "file": exc.file, "column": exc.column}
        print(json.dumps({"refused": {**refusal, "needed_columns": exc.needed_columns}}), flush=True)
        return exc.exit_code
    except EngineFailed as exc:
        _say(f"error: the worker processes could not run: {exc}")
        return 5
    except OSError as exc:
        _say(f"error: cannot write the store {args.store or default_root()}: {exc.strerror or exc}")
        return 4
    print(json.dumps({"key": key}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "export":
        return run_export(args)
    if args.command == "deidentify":
        return deidentify.run(args)
    if args.command == "verify":
        problems = verify_export(args.folder)
        for problem in problems:
            _say(f"  {problem}")
        _say(f"{args.folder}: {'a whole export' if not problems else 'not a whole export'}")
        return 1 if problems else 0
    if args.command == "summary":
        return run_summary(args)
    if args.command == "store":
        return run_store(args)
    if args.command == "audit-verify":
        log = args.log or Path(os.environ.get("OUTCOMES_AUDIT_LOG") or audit.DEFAULT_AUDIT_LOG)
        result = audit.verify(log)
        print(f"{result.message()} ({log})")
        return 0 if result.ok else 1
    return 2
