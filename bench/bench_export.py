"""Benchmark of the export command on a large synthetic cohort (issue #2).

Generates a cohort (default 10,000 patients, about 2.4 million diary rows) with the project's own
synthetic generator, runs ``python -m analytics export`` on it in a child process, and prints wall
time, peak memory (the child's maximum resident set size) and the ratio to pandas' own
``read_csv`` of ``diary.csv`` measured in the same run. Targets: ratio ≤ 10 (goal 5), peak < 2 GB.
Figures are printed, never asserted.

    .venv/bin/python bench/bench_export.py [--patients 10000] [--seed 7] [--keep DIR]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.synth import generate_cohort, write_cohort


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="write the cohort here and keep it")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_export_"))
    data_dir, out_dir = work / "data", work / "out"
    if not (data_dir / "diary.csv").exists():
        started = time.perf_counter()
        tables = generate_cohort(args.patients, args.seed, date(2023, 1, 2), date(2025, 11, 30))
        write_cohort(tables, data_dir)
        print(f"generated {args.patients} patients in {time.perf_counter() - started:.1f} s")
    diary_rows = sum(1 for _ in open(data_dir / "diary.csv")) - 1
    size_mb = sum(p.stat().st_size for p in data_dir.iterdir()) / 1e6
    print(f"dataset: {diary_rows:,} diary rows, {size_mb:.0f} MB of CSV in {data_dir}")

    # The best of three, so a cold page cache or a busy moment does not flatter the ratio.
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        pd.read_csv(data_dir / "diary.csv")
        timings.append(time.perf_counter() - started)
    read_csv_s = min(timings)

    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "analytics", "export", "--data", str(data_dir), "--out", str(out_dir)],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
    )
    export_s = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if result.returncode != 0:
        print(result.stderr)
        raise SystemExit(f"export failed with exit status {result.returncode}")
    print(result.stderr.strip().splitlines()[-1])
    print(f"pandas read_csv(diary.csv): {read_csv_s:.2f} s (best of 3)")
    print(f"export wall time:           {export_s:.2f} s (including interpreter start and imports)")
    print(f"ratio export / read_csv:    {export_s / read_csv_s:.1f} (target <= 10, goal 5)")
    print(f"peak memory of the export:  {peak_mb:.0f} MB (target < 2048 MB)")


if __name__ == "__main__":
    main()
