"""Registry scale (issue #13): the partitioned export against a DuckDB query of the core table, side by side.

Generates a synthetic cohort (default 100,000 patients, about 24 million diary rows, as CSV) unless
``--data`` names one, then runs in child processes, one after the other, on the same files:

- ``duckdb``: a DuckDB query of the core table: every patient's cycle windows (from the sessions) and
  the headache days recorded in each (diary rows with headache_hours >= 4), written to Parquet;
- ``export``: ``python -m analytics export`` with the default engine (partitions chosen from the
  data, worker processes = CPUs);
- optionally ``--dask``: the same export on a 2-worker local Dask cluster, and ``--single``: the
  single-process path (``--partitions 1``), which is what main did before partitions.

For each: wall time and peak memory: the sum of the proportional set size (PSS: resident memory,
shared pages divided among the processes sharing them) of the process and all its children, sampled
every 0.2 s, and the largest single process. Figures are printed, never asserted.
Targets: export peak < 2 GB and wall <= 1.5 x the DuckDB query.

    .venv/bin/python bench/bench_scale.py [--patients 100000] [--data DIR] [--dask] [--single]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DUCKDB_QUERY = """
import sys, duckdb
data, out = sys.argv[1], sys.argv[2]
def table(stem):
    import pathlib
    folder = pathlib.Path(data) / stem
    if folder.is_dir():
        return f"read_parquet('{folder}/*.parquet')"
    return f"read_csv('{data}/{stem}.csv', header=true, auto_detect=true)"
con = duckdb.connect()
con.execute("SET threads TO 2")
con.execute(f'''
COPY (
  WITH s AS (
    SELECT patient_id, CAST(session_date AS DATE) AS start_date,
           row_number() OVER (PARTITION BY patient_id ORDER BY session_date) AS cycle,
           lead(CAST(session_date AS DATE)) OVER (PARTITION BY patient_id ORDER BY session_date) AS next_date
    FROM {table("sessions")}
  ),
  w AS (
    SELECT patient_id, cycle, start_date,
           least(coalesce(next_date - 1, start_date + 83), start_date + 83) AS end_date
    FROM s
    UNION ALL
    SELECT patient_id, 0, start_date - 28, start_date - 1 FROM s WHERE cycle = 1
  )
  SELECT w.patient_id, w.cycle, w.start_date, w.end_date,
         count(d.date) AS recorded_days,
         count(*) FILTER (WHERE d.headache_hours >= 4) AS headache_days,
         28.0 * count(*) FILTER (WHERE d.headache_hours >= 4) / nullif(count(d.date), 0) AS mhd
  FROM w LEFT JOIN {table("diary")} d
    ON d.patient_id = w.patient_id AND CAST(d.date AS DATE) BETWEEN w.start_date AND w.end_date
  GROUP BY ALL
  ORDER BY 1, 2
) TO '{out}/core.parquet' (FORMAT parquet)
''')
rows = con.execute(f"SELECT count(*) FROM '{out}/core.parquet'").fetchone()[0]
print(f"core table: {rows:,} patient-cycle rows", file=sys.stderr)
"""


@dataclass
class Run:
    name: str
    wall_s: float
    peak_total_mb: float
    peak_process_mb: float
    processes: int
    last_line: str
    peak_by_role: dict[str, float]
    """The largest peak of a process in each role: client (the command), worker, other (helpers)."""


def role(process: psutil.Process) -> str:
    line = " ".join(process.cmdline())
    if "analytics export" in line or "duckdb" in line:
        return "client"
    if "spawn_main" in line:  # a Dask worker, or a local worker process forked by the forkserver
        return "worker"
    return "other"


def measured(name: str, command: list[str]) -> Run:
    """Run ``command``; its wall time and the peak resident memory of it and its children."""
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_total = peak_one = 0.0
    seen: set[int] = set()
    by_role: dict[str, float] = {}
    roles: dict[int, str] = {}
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_total, peak_one
        parent = psutil.Process(child.pid)
        while not done.is_set():
            try:
                tree = [parent, *parent.children(recursive=True)]
                sizes = []
                for process in tree:
                    try:
                        # PSS: shared pages (the forked workers share their parent's) counted once in the sum.
                        size = process.memory_full_info().pss
                        sizes.append(size)
                        seen.add(process.pid)
                        kind = roles.setdefault(process.pid, role(process))
                        by_role[kind] = max(by_role.get(kind, 0.0), size / 2**20)
                    except psutil.Error:
                        pass
                peak_total = max(peak_total, sum(sizes) / 2**20)
                peak_one = max(peak_one, max(sizes, default=0) / 2**20)
            except psutil.Error:
                pass
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = child.communicate()
    done.set()
    sampler.join()
    wall = time.perf_counter() - started
    if child.returncode != 0:
        print(stderr)
        raise SystemExit(f"{name} failed with exit status {child.returncode}")
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    return Run(name, wall, peak_total, peak_one, len(seen), last, by_role)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data", type=Path, help="an existing dataset folder (CSV files or Parquet part folders)")
    parser.add_argument("--keep", type=Path, help="generate the cohort here (default: bench/out/cohort<N>)")
    parser.add_argument("--dask", action="store_true", help="also the export on a 2-worker local Dask cluster")
    parser.add_argument("--single", action="store_true", help="also the single-process export (--partitions 1)")
    parser.add_argument("--only-export", action="store_true", help="skip the DuckDB query")
    parser.add_argument("--only-dask", action="store_true", help="only the export on the Dask cluster (1M run)")
    args = parser.parse_args()

    data = args.data or (args.keep or ROOT / "bench" / "out" / f"cohort{args.patients // 1000}k") / "data"
    if not args.data and not (data / "diary.csv").exists():
        from analytics.synth import generate_cohort, write_cohort

        started = time.perf_counter()
        write_cohort(generate_cohort(args.patients, args.seed, date(2023, 1, 2), date(2025, 11, 30)), data)
        print(f"generated {args.patients:,} patients in {time.perf_counter() - started:.0f} s -> {data}")
    size = sum(p.stat().st_size for p in data.rglob("*") if p.is_file()) / 1e6
    print(f"dataset: {data} ({size:,.0f} MB)")

    work = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    runs: list[Run] = []
    python = sys.executable
    if not args.only_export:
        runs.append(measured("DuckDB query of the core table", [python, "-c", DUCKDB_QUERY, str(data), str(work)]))
    export = [python, "-m", "analytics", "export", "--data", str(data)]
    if not args.only_dask:
        runs.append(measured("export, default engine", [*export, "--out", str(work / "default")]))
    if args.dask or args.only_dask:
        runs.append(
            measured("export, --engine dask (2 workers)", [*export, "--out", str(work / "dask"), "--engine", "dask"])
        )
    if args.single:
        runs.append(measured("export, single process", [*export, "--out", str(work / "single"), "--partitions", "1"]))

    print()
    print(f"{'run':38} {'wall s':>8} {'peak MB (all)':>14} {'peak MB (1 proc)':>17} {'procs':>6}")
    for run in runs:
        print(
            f"{run.name:38} {run.wall_s:8.1f} {run.peak_total_mb:14,.0f} {run.peak_process_mb:17,.0f} {run.processes:6}"
        )
    if not args.only_export and not args.only_dask:
        duck, default = runs[0], runs[1]
        print(f"\nexport / DuckDB wall: {default.wall_s / duck.wall_s:.2f} (target <= 1.5)")
        print(f"export peak memory: {default.peak_total_mb:,.0f} MB (target < 2,048 MB)")
    for run in runs:
        roles = ", ".join(f"{kind} {mb:,.0f} MB" for kind, mb in sorted(run.peak_by_role.items()))
        print(f"  {run.name}: largest process per role: {roles}")
        print(f"  {run.name}: {run.last_line}")
    for name in ("default", "dask", "single"):
        if (work / name).is_dir() and name != "default" and (work / "default").is_dir():
            same = all(
                (work / name / f).read_bytes() == (work / "default" / f).read_bytes()
                for f in ("patient_cycles.csv", "cohort_cycles.csv", "patient_status.csv", "rejected_rows.csv")
            )
            print(f"  {name} export byte-identical to the default engine's: {same}")


if __name__ == "__main__":
    main()
