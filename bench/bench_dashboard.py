"""The dashboard's server-side times and memory on the sample data and a 10,000-patient cohort, side by side.

For each dataset a fresh process (empty caches) runs the real app with Streamlit's AppTest:
imports = importing what dashboard.py imports (once per server start); cold = then the first Patient
page (load + analysis + patient-level tables + the page); warm = the same page
in a new session (caches built); switch = choosing another patient (median of ``--switches``); then
page changes to Clinic, Outcomes and Data (first visit: the page's own caches are built; again: the
second visit, caches built); peak = the peak RSS of that process. The export (``python -m analytics
export`` in a child process) is timed on the same data for the "app <= 1.5 x export" ratio. AppTest
runs the scripts without a browser, so these are server-side times; the browser adds drawing time.

``--before DIR`` also measures another checkout of the project (e.g. ``git worktree add --detach
/tmp/before main``) in the same run, so that "before" and "after" share the machine's load. The
10,000-patient cohort is generated once with ``python -m analytics.synth --patients 10000 --seed 1``
into bench/out/ (git-ignored) and reused.

    .venv/bin/python bench/bench_dashboard.py [--before DIR] [--switches 10] [--only sample|10k]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COHORT = ROOT / "bench" / "out" / "cohort10k_seed1"
TARGETS = {
    "cold": "≤ 3 s (sample)",
    "switch": "≤ 0.3 s",
    "clinic": "≤ 1 s",
    "outcomes": "≤ 1 s",
    "data": "≤ 1 s",
    "peak_mb": "≤ 2048 MB (10k)",
}


def worker(root: Path, data: Path, switches: int) -> dict[str, float]:
    """Run in a fresh process: time the pages of the app in ``root`` on ``data``; return the figures."""
    os.chdir(root)
    sys.path.insert(0, str(root))
    sys.path.insert(0, str(root / "tests"))
    os.environ["OUTCOMES_DATA_DIR"] = str(data)
    started = time.perf_counter()
    from page_helpers import switch_page  # AppTest.switch_page does not know function pages after a run
    from streamlit.testing.v1 import AppTest

    # What dashboard.py imports: a server does this once when it starts, before any page is asked for.
    for module in ("ui.state", "ui.auth", "pages.patient", "pages.clinic", "pages.outcomes", "pages.data"):
        importlib.import_module(module)
    imports = time.perf_counter() - started

    def session() -> AppTest:
        app = AppTest.from_file(str(root / "dashboard.py"), default_timeout=900)
        app.session_state["data_source"] = "Clinic data folder"
        return app

    def timed_run(app: AppTest) -> float:
        started = time.perf_counter()
        app.run()
        if app.exception:
            raise SystemExit(f"the page raised: {app.exception[0].message}")
        return time.perf_counter() - started

    out: dict[str, float] = {"imports": imports}
    first = session()
    first.switch_page("pages/patient.py")
    out["cold"] = timed_run(first)
    second = session()
    second.switch_page("pages/patient.py")
    out["warm"] = timed_run(second)
    options = list(second.selectbox(key="patient").options)
    step = max(1, len(options) // (switches + 1))
    times = []
    for patient_id in options[step::step][:switches]:
        second.selectbox(key="patient").set_value(patient_id)
        times.append(timed_run(second))
    out["switch"] = statistics.median(times)
    out["switch_max"] = max(times)
    for page in ("clinic", "outcomes", "data"):
        out[f"{page}_first"] = timed_run(switch_page(second, f"pages/{page}.py"))
        timed_run(switch_page(second, "pages/patient.py"))
        out[page] = timed_run(switch_page(second, f"pages/{page}.py"))
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def measure(root: Path, data: Path, switches: int) -> dict[str, float]:
    """``worker`` in a child process (fresh interpreter, empty caches)."""
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", str(root), str(data), "--switches", str(switches)],
        capture_output=True,
        text=True,
        cwd=root,
    )
    if result.returncode != 0:
        raise SystemExit(f"the benchmark of {root} on {data} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def export_seconds(root: Path, data: Path) -> float:
    out = ROOT / "bench" / "out" / "export_dashboard_bench"
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "analytics", "export", "--data", str(data), "--out", str(out)],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise SystemExit(f"export failed with exit status {result.returncode}:\n{result.stderr[-2000:]}")
    return time.perf_counter() - started


def cohort() -> Path:
    if not (COHORT / "diary.csv").exists():
        subprocess.run(
            [sys.executable, "-m", "analytics.synth", "--patients", "10000", "--seed", "1", "--out", str(COHORT)],
            cwd=ROOT,
            check=True,
        )
    return COHORT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, type=Path, metavar=("ROOT", "DATA"), help=argparse.SUPPRESS)
    parser.add_argument("--before", type=Path, help="another checkout of the project to measure alongside")
    parser.add_argument("--switches", type=int, default=10)
    parser.add_argument("--only", choices=("sample", "10k"), help="one dataset only")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.switches)))
        return

    trees = {"now": ROOT, **({"before": args.before.resolve()} if args.before else {})}
    datasets = {"sample": ROOT / "sample_data", "10k": None}
    if args.only:
        datasets = {args.only: datasets[args.only]}
    results: dict[tuple[str, str], dict[str, float]] = {}
    for name, data in datasets.items():
        data = data or cohort()
        for tree, root in trees.items():
            figures = measure(root, data, args.switches)
            figures["export"] = export_seconds(root, data)
            results[(name, tree)] = figures
            print(f"{name} / {tree}: " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()), flush=True)

    columns = list(results)
    rows = [
        ("imports at server start (s)", "imports"),
        ("first Patient page, cold (s)", "cold"),
        ("first Patient page, warm (s)", "warm"),
        (f"patient switch, median of {args.switches} (s)", "switch"),
        ("patient switch, slowest (s)", "switch_max"),
        ("page change to Clinic, first visit (s)", "clinic_first"),
        ("page change to Clinic, again (s)", "clinic"),
        ("page change to Outcomes, first visit (s)", "outcomes_first"),
        ("page change to Outcomes, again (s)", "outcomes"),
        ("page change to Data, first visit (s)", "data_first"),
        ("page change to Data, again (s)", "data"),
        ("peak RSS of the process (MB)", "peak_mb"),
        ("export, python -m analytics export (s)", "export"),
    ]
    header = f"{'':44}" + "".join(f"{d + ' ' + t:>16}" for d, t in columns) + "  target"
    print("\n" + header)
    for label, key in rows:
        print(f"{label:44}" + "".join(f"{results[c][key]:>16.2f}" for c in columns) + f"  {TARGETS.get(key, '')}")
    ratio = "".join(f"{results[c]['cold'] / results[c]['export']:>16.2f}" for c in columns)
    print(f"{'cold Patient page / export':44}" + ratio + "  ≤ 1.5")


if __name__ == "__main__":
    main()
