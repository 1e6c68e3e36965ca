"""The synthetic cohort reproduces PREEMPT's cumulative 50% responder rates through the real analytics.

PREEMPT pooled per-cycle analysis: 49.3% of patients were 50% responders after cycle 1, 60.6% by
cycle 2 and 70.9% by cycle 3 (cumulative). The generator (analytics/synth.py) is calibrated so that
the SPEC §3 "cumulative responder rate, completers", computed by load_dataset + analyse from the
files it writes, lands on those figures. Tolerance: ±8 percentage points; with 1,000 patients the
cycle-3 denominator is ~570, a binomial standard error of ~2 points, so the band is ~4 SE wide and
leaves room for the calibration error (a 10,000-patient run gives 49.0 / 61.0 / 71.3%). The tighter
calibration checks, per-cycle rates included, are in tests/test_synth_calibration.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.definitions.config import AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.ingest.load import load_dataset
from analytics.synth import generate_cohort, write_cohort

PREEMPT_CUMULATIVE_RESPONDER_50 = {1: 49.3, 2: 60.6, 3: 70.9}
TOLERANCE_POINTS = 8.0


@pytest.fixture(scope="module", name="analysis_and_dataset")
def analysis_fixture(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    folder: Path = tmp_path_factory.mktemp("synth_preempt")
    write_cohort(generate_cohort(1000, seed=20261124), folder)
    dataset = load_dataset(folder)
    return analyse(dataset, AnalysisConfig()), dataset


def test_synthetic_cohort_loads_with_zero_rejected_rows(analysis_and_dataset: tuple) -> None:
    _, dataset = analysis_and_dataset
    assert len(dataset.rejected) == 0, dataset.rejected.head()


@pytest.mark.parametrize("cycle", sorted(PREEMPT_CUMULATIVE_RESPONDER_50))
def test_cumulative_completers_rate_matches_preempt(analysis_and_dataset: tuple, cycle: int) -> None:
    analysis, _ = analysis_and_dataset
    row = analysis.cohort_cycles.set_index("cycle").loc[cycle]
    assert row["cum_responder_50_completers_denom"] >= 400
    rate_percent = 100 * float(row["cum_responder_50_completers_rate"])
    assert rate_percent == pytest.approx(PREEMPT_CUMULATIVE_RESPONDER_50[cycle], abs=TOLERANCE_POINTS)


def test_baseline_mean_headache_days_is_about_twenty(analysis_and_dataset: tuple) -> None:
    # PREEMPT pooled baseline: 19.9 headache days per 28 days.
    analysis, _ = analysis_and_dataset
    baseline = analysis.cohort_cycles.set_index("cycle").loc[0]
    assert float(baseline["mean_mhd"]) == pytest.approx(20.0, abs=1.5)
