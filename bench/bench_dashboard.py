"""The dashboard's server-side times and memory on the sample data and a 10,000-patient cohort, side by side.

For each dataset a fresh process (empty caches) runs the real app with Streamlit's AppTest:
imports = importing what dashboard.py imports (once per server start); cold = then the first Patient
page with nothing built (load + analysis + patient-level tables + the page; an empty analysis store);
restart = the same in a second fresh process, which finds the analysis store the first one wrote (the median of
``--restarts`` such processes, the checkouts alternating);
warm = the same page
in a new session (caches built); switch = choosing another patient (median of ``--switches``); then
page changes to Clinic, Outcomes and Data (first visit: the page's own caches are built; again: the
second visit, caches built); filter = a cohort filter change on Outcomes (median of 3); peak = the
peak RSS of that process. The export (``python -m analytics
export`` in a child process) is timed on the same data for the "app <= 1.5 x export" ratio. AppTest
runs the scripts without a browser, so these are server-side times; the browser adds drawing time.

``--before DIR`` also measures another checkout of the project (e.g. ``git worktree add --detach
/tmp/before main``) in the same run, so that "before" and "after" share the machine's load. The
10,000-patient cohort is generated once with ``python -m analytics.synth --patients 10000 --seed 1``
into bench/out/ (git-ignored) and reused.

    .venv/bin/python bench/bench_dashboard.py [--before DIR] [--switches 10] [--restarts 3] [--only sample|10k|100k]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COHORT = ROOT / "bench" / "out" / "cohort10k_seed1"
TARGETS = {
    "cold": "≤ 3 s (sample)",
    "restart": "≤ 1 / 2 / 3 s",
    "filter": "≤ 0.5 / 1 / 3 s",
    "switch": "≤ 0.3 s",
    "clinic": "≤ 1 s",
    "outcomes": "≤ 1 s",
    "data": "≤ 1 s",
    "peak_mb": "≤ 2048 MB (10k)",
}


def worker(root: Path, data: Path, switches: int, first_only: bool = False) -> dict[str, float]:
    """Run in a fresh process: time the pages of the app in ``root`` on ``data``; return the figures (``first_only``:
    the first Patient page's)."""
    os.chdir(root)
    sys.path.insert(0, str(root))
    sys.path.insert(0, str(root / "tests"))
    os.environ["OUTCOMES_DATA_DIR"] = str(data)
    started = time.perf_counter()
    from page_helpers import switch_page  # AppTest.switch_page does not know function pages after a run
    from streamlit.testing.v1 import AppTest

    # What dashboard.py imports: the server (make run's ui/serve.py) does this once when it starts, before any page
    # is asked for. A checkout from before ui/serve.py existed: the same modules, imported here.
    if (root / "ui" / "serve.py").is_file():
        importlib.import_module("ui.serve").preload()
    else:
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
    if first_only:
        out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return out
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
        again = []  # a noisy shared machine: the median of three returns to the page
        for _ in range(3):
            timed_run(switch_page(second, "pages/patient.py"))
            again.append(timed_run(switch_page(second, f"pages/{page}.py")))
        out[page] = statistics.median(again)
    # A cohort filter change on Outcomes: the first sex, then both clinics' first two, then none (median).
    outcomes = switch_page(second, "pages/outcomes.py")
    timed_run(outcomes)
    sex, clinics = outcomes.multiselect(key="sex"), outcomes.multiselect(key="clinic")
    changes = [lambda: sex.set_value(sex.options[:1]), lambda: clinics.set_value(clinics.options[:2])]
    changes.append(lambda: sex.set_value([]))
    filter_times = []
    for change in changes:
        change()
        filter_times.append(timed_run(outcomes))
    out["filter"] = statistics.median(filter_times)
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # A big folder's first build runs in a child process (python -m analytics store): its own peak.
    out["peak_child_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return out


def measure(
    root: Path, data: Path, switches: int, store: Path | None = None, first_only: bool = False
) -> dict[str, float]:
    """``worker`` in a child process (fresh interpreter, empty caches), with the analysis store ``store``."""
    environment = {**os.environ, **({"OUTCOMES_STORE_DIR": str(store)} if store else {})}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(root), str(data)]
    result = subprocess.run(
        [*command, "--switches", str(switches), *(["--first-only"] if first_only else [])],
        capture_output=True,
        text=True,
        cwd=root,
        env=environment,
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
    parser.add_argument("--only", choices=("sample", "10k", "100k"), help="one dataset only (100k: only when asked)")
    parser.add_argument("--restarts", type=int, default=3, help="restarts measured per checkout (the median shown)")
    parser.add_argument("--first-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args.switches, args.first_only)))
        return

    trees = {"now": ROOT, **({"before": args.before.resolve()} if args.before else {})}
    datasets: dict[str, Path | None] = {"sample": ROOT / "sample_data", "10k": None}
    if args.only == "100k":
        datasets = {"100k": ROOT / "bench" / "out" / "cohort100k" / "data"}  # bench/bench_scale.py writes it
    elif args.only:
        datasets = {args.only: datasets[args.only]}
    results: dict[tuple[str, str], dict[str, float]] = {}
    for name, data in datasets.items():
        data = data or cohort()
        stores, restarts = {}, {}
        for tree, root in trees.items():
            stores[tree] = store = Path(tempfile.mkdtemp(prefix="bench_store_"))  # empty: nothing built yet
            figures = measure(root, data, args.switches, store)
            # A restarted server (a new process, empty caches) with the analysis store the first one built.
            restarted = measure(root, data, args.switches, store)
            restarts[tree] = [restarted["cold"]]
            figures["restart_peak_mb"] = restarted["peak_mb"]
            figures["export"] = export_seconds(root, data)
            results[(name, tree)] = figures
            print(f"{name} / {tree}: " + ", ".join(f"{k} {v:.2f}" for k, v in figures.items()), flush=True)
        for _ in range(args.restarts - 1):  # more restarts, the checkouts alternating: the median of them all
            for tree, root in trees.items():
                restarts[tree].append(measure(root, data, args.switches, stores[tree], first_only=True)["cold"])
        for tree in trees:
            shutil.rmtree(stores[tree], ignore_errors=True)
            results[(name, tree)] |= {
                "restart": statistics.median(restarts[tree]),
                "restart_min": min(restarts[tree]),
                "restart_max": max(restarts[tree]),
            }
            print(f"{name} / {tree}: restarts " + ", ".join(f"{t:.2f}" for t in restarts[tree]), flush=True)

    columns = list(results)
    rows = [
        ("imports at server start (s)", "imports"),
        ("first Patient page, nothing built (s)", "cold"),
        (f"first Patient page, store built: restart, median of {args.restarts} (s)", "restart"),
        ("  fastest restart (s)", "restart_min"),
        ("  slowest restart (s)", "restart_max"),
        ("first Patient page, warm (s)", "warm"),
        (f"patient switch, median of {args.switches} (s)", "switch"),
        ("patient switch, slowest (s)", "switch_max"),
        ("page change to Clinic, first visit (s)", "clinic_first"),
        ("page change to Clinic, again (median of 3) (s)", "clinic"),
        ("page change to Outcomes, first visit (s)", "outcomes_first"),
        ("page change to Outcomes, again (median of 3) (s)", "outcomes"),
        ("page change to Data, first visit (s)", "data_first"),
        ("page change to Data, again (median of 3) (s)", "data"),
        ("cohort filter change on Outcomes, median of 3 (s)", "filter"),
        ("peak RSS of the server process (MB)", "peak_mb"),
        ("peak RSS of its build child process (MB)", "peak_child_mb"),
        ("peak RSS of the restarted server (MB)", "restart_peak_mb"),
        ("export, python -m analytics export (s)", "export"),
    ]
    width = max(len(label) for label, _ in rows) + 2
    header = f"{'':{width}}" + "".join(f"{d + ' ' + t:>16}" for d, t in columns) + "  target"
    print("\n" + header)
    for label, key in rows:
        cells = "".join(f"{results[c].get(key, float('nan')):>16.2f}" for c in columns)
        print(f"{label:{width}}" + cells + f"  {TARGETS.get(key, '')}")
    ratio = "".join(f"{results[c]['cold'] / results[c]['export']:>16.2f}" for c in columns)
    print(f"{'cold Patient page / export':{width}}" + ratio + "  ≤ 1.5")


if __name__ == "__main__":
    main()
