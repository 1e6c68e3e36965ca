"""Benchmark of the Outcomes page's computations on a large synthetic cohort (issue #4).

Target: a filter change on a 10,000-patient cohort recomputes the page in under 2 s with cached
loading. The cohort is generated with the project's synthetic generator (or read from ``--data``),
loaded and analysed once (what ``ui.state`` caches), then for a few filter changes this times what
the page runs on a change of filter: the selection, ``restrict``, every ``analytics.views.outcomes``
table, the figures and their JSON for the browser. Also printed: the copy of the cached dataset
and analysis that ``st.cache_data`` unpickles on every rerun, and the mixed model (fitted on
demand, not on a filter change). Wall and CPU seconds are printed (best and median of
``--repeat``), never asserted; the CPU time shows what a busy machine adds to the wall time.

    .venv/bin/python bench/bench_outcomes.py [--patients 10000] [--seed 7] [--data DIR] [--repeat 3]
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.definitions.pipeline import analyse
from analytics.figures import outcomes as figures
from analytics.ingest.load import load_dataset
from analytics.synth import generate_cohort, write_cohort
from analytics.views import outcomes
from analytics.views.cohort_filter import CohortFilter, attribute_options, patient_attributes, restrict

FILTERS = {
    "everyone": CohortFilter(),
    "clinic North": CohortFilter(clinic=["North"]),
    "F, ≥2 cycles": CohortFilter(sex=["F"], min_cycles=2),
    "baseline 15–22, overuse": CohortFilter(baseline_mhd_min=15, baseline_mhd_max=22, medication_overuse=True),
    "first injection 2024, 40–59": CohortFilter(
        first_injection_from=date(2024, 1, 1), first_injection_to=date(2024, 12, 31), age_band=["40-49", "50-59"]
    ),
}


def timed(function: Callable[[], object], repeat: int) -> tuple[float, float, float, object]:
    """Best and median wall seconds, best CPU seconds, and the last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), statistics.median(walls), min(cpus), result


def page_computations(
    analysis, attributes, days: outcomes.TreatedDays, cohort_filter: CohortFilter, cycle: int = 2
) -> dict[str, object]:
    """What pages/outcomes.py computes after a filter change (its caches miss for the new filter)."""
    selected = cohort_filter.select(attributes)
    cohort = analysis if cohort_filter.is_empty() else restrict(analysis, selected, with_days=False)
    chosen = attributes.loc[attributes["patient_id"].isin(selected)]
    return {
        "n": len(selected),
        "change": outcomes.change_by_cycle(cohort),
        "responders": outcomes.responder_rates(cohort),
        "cumulative": outcomes.cumulative_response(cohort),
        "weekly": outcomes.weekly_profile(cohort, days=days),
        "time_to_response": outcomes.time_to_response(cohort),
        "wilcoxon": outcomes.results_frame(outcomes.wilcoxon_by_cycle(cohort)),
        "forest": outcomes.subgroup_response(cohort, chosen, cycle),
        "table1": outcomes.baseline_table(cohort, chosen, cycle).formatted(),
        "cohort": cohort,
    }


def page_figures(results: dict[str, object], cycle_days: int) -> int:
    """Build the page's figures and serialise them as Streamlit does; returns the JSON size."""
    change = results["change"]
    built = [
        figures.build_change_figure(change.loc[change["measure"] == m], label) for m, label in outcomes.MEASURES.items()
    ]
    built += [
        figures.build_responder_figure(results["responders"]),
        figures.build_cumulative_figure(results["cumulative"]),
        figures.build_weekly_profile_figure(results["weekly"]),
        figures.build_time_to_response_figure(results["time_to_response"], cycle_days),
        figures.build_forest_figure(results["forest"]),
    ]
    return sum(len(fig.to_json()) for fig in built)


def apptest(data_dir: Path, repeat: int) -> None:
    """The page itself: warm the caches once, then time reruns after changing the cohort builder."""
    import os

    from streamlit.testing.v1 import AppTest

    os.environ["OUTCOMES_DATA_DIR"] = str(data_dir)
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "dashboard.py"), default_timeout=600)
    at.switch_page("pages/outcomes.py")
    started = time.perf_counter()
    at.run()
    print(f"\npage, first run (loads and analyses, then fills the caches): {time.perf_counter() - started:.1f} s")
    changes = [("clinic", ["North"]), ("clinic", ["South"]), ("sex", ["F"]), ("clinic", [])]
    for key, value in changes[: max(repeat, 1) + 1]:
        wall, cpu = time.perf_counter(), time.process_time()
        at.multiselect(key=key).set_value(value).run()
        assert not at.exception, at.exception
        n = next(m.value for m in at.metric if m.label == "Patients in the cohort")
        print(
            f"page rerun after {key} = {value or 'all'}: {time.perf_counter() - wall:.2f} s wall, "
            f"{time.process_time() - cpu:.2f} s CPU (n = {n}; AppTest runs the entry point twice per rerun)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data", type=Path, help="an existing dataset folder (skips generation)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--apptest",
        action="store_true",
        help="also time the real page (Streamlit AppTest) rerunning after a filter change",
    )
    args = parser.parse_args()

    data_dir = args.data
    if data_dir is None:
        data_dir = Path(tempfile.mkdtemp(prefix="bench_outcomes_"))
        started = time.perf_counter()
        write_cohort(generate_cohort(args.patients, args.seed, date(2023, 1, 2), date(2025, 11, 30)), data_dir)
        print(f"generated {args.patients:,} patients in {time.perf_counter() - started:.1f} s -> {data_dir}")

    started = time.perf_counter()
    dataset = load_dataset(data_dir)
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    analysis = analyse(dataset)
    analysed = time.perf_counter() - started
    print(
        f"once per data and parameters (cached by the app): load {loaded:.1f} s, analyse {analysed:.1f} s; "
        f"{analysis.patient_cycles['patient_id'].nunique():,} treated patients, "
        f"{len(analysis.patient_days):,} diary days"
    )
    wall, _, cpu, attributes = timed(lambda: patient_attributes(analysis, dataset), 1)
    attribute_options(attributes)
    days_wall, _, days_cpu, days = timed(lambda: outcomes.treated_days(analysis), 1)
    print(
        f"cached per data and parameters by the page: patient attributes {wall:.2f} s, "
        f"treated diary days as arrays {days_wall:.2f} s (CPU {days_cpu:.2f} s)"
    )
    stored = pickle.dumps(dataset), pickle.dumps(analysis)
    wall, median, cpu, _ = timed(lambda: [pickle.loads(blob) for blob in stored], args.repeat)
    size = sum(map(len, stored)) / 1e6
    print(
        f"st.cache_data hands every rerun a copy of the cached dataset + analysis (unpickling {size:.0f} MB): "
        f"best {wall:.2f} s, median {median:.2f} s, CPU {cpu:.2f} s"
    )

    print(f"\nfilter change (best / median of {args.repeat}; wall s, CPU s in brackets):")
    print(f"{'filter':32} {'n':>6} {'statistics':>18} {'figures+JSON':>18} {'total':>8}")
    worst = 0.0
    for name, cohort_filter in FILTERS.items():
        wall, median, cpu, results = timed(
            lambda f=cohort_filter: page_computations(analysis, attributes, days, f), args.repeat
        )
        fig_wall, fig_median, fig_cpu, _ = timed(
            lambda r=results: page_figures(r, analysis.config.cycle_days), args.repeat
        )
        worst = max(worst, wall + fig_wall)
        print(
            f"{name:32} {results['n']:>6,} {wall:>6.2f} / {median:.2f} ({cpu:.2f}) {fig_wall:>6.2f} / "
            f"{fig_median:.2f} ({fig_cpu:.2f}) {wall + fig_wall:>8.2f}"
        )
    print(f"slowest filter change: {worst:.2f} s of computation and figures (target < 2 s, plus the cached-data copy)")

    if args.apptest:
        apptest(data_dir, args.repeat)
    for name in ("everyone", "clinic North"):
        cohort = page_computations(analysis, attributes, days, FILTERS[name])["cohort"]
        wall, _, cpu, model = timed(lambda c=cohort: outcomes.mixed_model(c), 1)
        print(
            f"mixed model, {name}: {wall:.1f} s (CPU {cpu:.1f} s), {model.n_observations:,} windows of "
            f"{model.n_patients:,} patients (on demand, cached per filter)"
        )


if __name__ == "__main__":
    main()
