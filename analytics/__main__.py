"""Command line: ``python -m analytics export ...`` (SPEC §4).

Exit status: 0 success (rejected rows are reported, not fatal); 1 with ``--strict`` when any row was
rejected (nothing is written); 2 when a required file or column is missing or a file cannot be
parsed; 3 when a column looks like a direct identifier; 4 when the output cannot be written.
Progress and a summary go to stderr. ``export --min-cell K`` writes the suppressed, aggregate-only
export (``analytics.suppression``); ``python -m analytics deidentify ...`` is ``analytics.deidentify``.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from analytics import cohort_filter, deidentify
from analytics.config import AnalysisConfig
from analytics.export import PATIENT_LEVEL_FILES, write_atomically
from analytics.load import DatasetRefused, load_dataset
from analytics.pipeline import analyse
from analytics.suppression import DEFAULT_MIN_CELL


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from exc


def _parameter_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = AnalysisConfig()
    parser.add_argument(
        "--as-of", type=_iso_date, help="data cut-off YYYY-MM-DD (default: latest session or diary date)"
    )
    parser.add_argument("--headache-min-hours", type=float, default=defaults.headache_min_hours, metavar="H")
    parser.add_argument("--baseline-days", type=int, default=defaults.baseline_days, metavar="N")
    parser.add_argument("--cycle-days", type=int, default=defaults.cycle_days, metavar="N")
    parser.add_argument("--min-completeness", type=float, default=defaults.min_completeness, metavar="F")
    parser.add_argument("--min-window-days", type=int, default=defaults.min_window_days, metavar="N")


def config_from_args(args: argparse.Namespace) -> AnalysisConfig:
    return AnalysisConfig(
        headache_min_hours=args.headache_min_hours,
        baseline_days=args.baseline_days,
        cycle_days=args.cycle_days,
        min_completeness=args.min_completeness,
        min_window_days=args.min_window_days,
        as_of=args.as_of,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analytics", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write patient_cycles, cohort_cycles, rejected_rows and manifest")
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
    _parameter_arguments(export)
    cohort_filter.add_arguments(export)
    deidentify.add_arguments(
        commands.add_parser("deidentify", help="pseudonymise ids, shift dates and drop identifiers of a raw export")
    )
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


def run_export(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except ValueError as exc:
        _say(f"error: {exc}")
        return 2
    if problem := _min_cell_problem(args):
        _say(f"error: {problem}")
        return 2
    try:
        chosen = cohort_filter.from_args(args)
    except (OSError, ValueError) as exc:
        _say(f"error: cohort filter: {exc}")
        return 2
    _say(f"reading {args.data} ...")
    try:
        dataset = load_dataset(args.data)
    except DatasetRefused as exc:
        _say(f"refused: {exc}")
        return exc.exit_code
    for f in dataset.files:
        _say(f"  {f.file}: {f.rows_read} rows read, {f.rows_accepted} accepted, {f.rows_rejected} rejected")
    if args.strict and dataset.rejected_total():
        _say(f"--strict: {dataset.rejected_total()} rows rejected; nothing written. First rejections:")
        for row in dataset.rejected.head(20).itertuples():
            _say(f"  {row.file} line {row.line} ({row.patient_id}): {row.reason}")
        _say("Run without --strict to get rejected_rows.csv with every rejection.")
        return 1
    for name, listed in dataset.rejected_listed_per_file().items():
        _say(f"  {name}: rejected_rows.csv lists its first {listed:,} rejected rows; manifest.json counts them all")
    _say("computing cycles and cohort statistics ...")
    analysis = analyse(dataset, config)
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "export":
        return run_export(args)
    if args.command == "deidentify":
        return deidentify.run(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
