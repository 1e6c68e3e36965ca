"""Benchmark of two hostile uploads (security finding "bounded memory for every upload").

Builds two datasets and loads each through the dashboard's upload path (``files_from_upload`` then
``load_dataset`` with the upload limits, when the code has them) in a child process, and prints the
child's wall time, peak memory (its maximum resident set size, from ``os.wait4``) and outcome:

* ``parquet``: diary.parquet of 20 million identical rows in one row group, about 190 KB on disk
  (dictionary and run-length encoding make it tiny; even Parquet's "uncompressed" size is small).
* ``csv``: a 100 MB diary.csv of one diary row repeated (every row after the first is a duplicate).

``--before DIR`` also runs another checkout's code on the same files, side by side: the code from
before the limits, unpacked with ``git archive <commit> | tar -x -C DIR``:

    git archive 27b7877 | tar -x -C /tmp/before   # main before the upload limits
    .venv/bin/python bench/bench_hostile_upload.py --before /tmp/before --memory-cap-gb 12

``--export`` also analyses the loaded data and renders the export files (rejected_rows.csv, ...)
as the Data page's download does. ``--memory-cap-gb`` limits each child's address space (the
machine is shared: the unbounded code reached 8.8 GB). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

PROJECT_DIR = Path(__file__).resolve().parent.parent
SESSIONS = b"patient_id,session_date,total_units\nP001,2024-01-01,155\nP001,2024-03-25,155\n"
DIARY_HEADER = b"patient_id,date,headache_hours,migraine,severity,acute_medication\n"
DIARY_ROW = b"P001,2024-01-02,3,true,2,false\n"

# Runs in the child, with the checkout under test as its working directory.
CHILD = """
import sys
from pathlib import Path
sys.path.insert(0, ".")
try:  # the subpackage layout (analytics/ingest, ...) or the flat one before it
    from analytics.ingest import load
    from analytics.ingest.archive import files_from_upload
except ImportError:
    from analytics.ingest import load
    from analytics.ingest.archive import files_from_upload
folder = Path(sys.argv[1])
files = files_from_upload({p.name: p.read_bytes() for p in sorted(folder.iterdir())})
limits = {"limits": load.UPLOAD_LIMITS} if hasattr(load, "UPLOAD_LIMITS") else {}
try:
    dataset = load.load_dataset(files, **limits)
except load.DatasetRefused as exc:
    print(f"refused: {exc}")
    raise SystemExit(0)
summary = "; ".join(f"{f.file}: {f.rows_read:,} read, {f.rows_rejected:,} rejected" for f in dataset.files)
print(f"loaded: {summary}; {len(dataset.rejected):,} rejected rows listed")
if sys.argv[2] == "export":
    try:
        from analytics.definitions.pipeline import analyse
        from analytics.output.export import export_files
    except ImportError:
        from analytics.output.export import export_files
        from analytics.definitions.pipeline import analyse
    files = export_files(analyse(dataset), dataset)
    print(f"exported: rejected_rows.csv {len(files['rejected_rows.csv']) / 1e6:.0f} MB")
"""


def hostile_parquet(rows: int) -> bytes:
    """One row group of ``rows`` identical diary rows: dictionary-encoded, a few hundred KB at most."""
    index = pa.array(np.zeros(rows, dtype=np.int32))
    table = pa.table(
        {
            "patient_id": pa.DictionaryArray.from_arrays(index, pa.array(["P001"])),
            "date": pa.DictionaryArray.from_arrays(index, pa.array(["2024-01-02"])),
            "headache_hours": pa.DictionaryArray.from_arrays(index, pa.array([3.0])),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=rows)
    return buffer.getvalue()


def duplicate_csv(megabytes: int) -> bytes:
    return DIARY_HEADER + DIARY_ROW * (megabytes * 10**6 // len(DIARY_ROW))


def run(project: Path, folder: Path, mode: str, cap_gb: float | None) -> tuple[float, float, str]:
    """Wall time (s), peak RSS (MB) and the last line the child printed."""

    def limit() -> None:
        if cap_gb:
            cap = int(cap_gb * 2**30)
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(folder), mode],
            cwd=project,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=limit,
        )
        _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage, not all children's
        wall = time.perf_counter() - started
        out.seek(0)
        lines = out.read().strip().splitlines() or [""]
    code = child.returncode = os.waitstatus_to_exitcode(status)
    outcome = lines[-1] if code == 0 else f"FAILED (exit {code}): {lines[-1]}"
    return wall, usage.ru_maxrss / 1024, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="a checkout of the code before, run on the same files")
    parser.add_argument("--rows", type=int, default=20_000_000, help="rows of the hostile Parquet file")
    parser.add_argument("--csv-mb", type=int, default=100, help="size of the duplicate-row CSV in MB")
    parser.add_argument("--cases", default="parquet,csv", help="comma-separated: parquet, csv")
    parser.add_argument("--export", action="store_true", help="also analyse and render the export files")
    parser.add_argument("--memory-cap-gb", type=float, help="address-space limit for each child (RLIMIT_AS)")
    args = parser.parse_args()

    mode = "export" if args.export else "load"
    projects = {"after": PROJECT_DIR} | ({"before": args.before.resolve()} if args.before else {})
    results: list[tuple[str, str, float, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench_hostile_") as scratch:
        for case in args.cases.split(","):
            folder = Path(scratch) / case
            folder.mkdir()
            (folder / "sessions.csv").write_bytes(SESSIONS)
            if case == "parquet":
                data, name = hostile_parquet(args.rows), "diary.parquet"
            else:
                data, name = duplicate_csv(args.csv_mb), "diary.csv"
            (folder / name).write_bytes(data)
            label = f"{case} ({name}, {len(data) / 1e6:,.1f} MB, {mode})"
            for which in sorted(projects, reverse=True):  # before first, if given
                # One child at a time, so the machine's memory goes to one of them only.
                wall, peak, outcome = run(projects[which], folder, mode, args.memory_cap_gb)
                print(f"{label:>40} {which:>6}: {wall:7.1f} s, peak RSS {peak:8,.0f} MB | {outcome[:160]}", flush=True)
                results.append((label, which, wall, peak, outcome))
            (folder / name).unlink()
    if args.before:
        print(f"\n{'case':>40} | {'before':>22} | {'after':>22}")
        for label in dict.fromkeys(r[0] for r in results):
            cells = {which: f"{wall:6.1f} s {peak:8,.0f} MB" for lab, which, wall, peak, _ in results if lab == label}
            print(f"{label:>40} | {cells['before']:>22} | {cells['after']:>22}")


if __name__ == "__main__":
    main()
