"""Figure objects of the Outcomes page: each draws its table's numbers, n and intervals, and an empty
cohort gives a chart that says so instead of zeros. Built from the hand-worked cohort of test_outcomes."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.definitions.config import AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.figures import outcomes as figures
from analytics.figures.theme import MISSING
from analytics.ingest.load import load_dataset
from analytics.views import outcomes
from analytics.views.cohort_filter import patient_attributes, restrict

TESTS = Path(__file__).resolve().parent


def tiny_cohort_module():
    spec = importlib.util.spec_from_file_location("outcomes_tiny_cohort_figures", TESTS / "test_outcomes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    dataset = load_dataset(tiny_cohort_module().write_tiny(tmp_path_factory.mktemp("tiny")))
    analysis = analyse(dataset, AnalysisConfig())
    return analysis, patient_attributes(analysis, dataset)


def annotations(fig) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def test_change_figure_draws_means_with_t_interval_bars_and_n(tiny) -> None:
    analysis, _ = tiny
    change = outcomes.change_by_cycle(analysis)
    rows = change.loc[change["measure"] == "mhd"]
    fig = figures.build_change_figure(rows, "headache days")
    trace = fig.data[0]
    np.testing.assert_allclose(trace.y, rows["mean_change"])
    np.testing.assert_allclose(np.asarray(trace.y) + np.asarray(trace.error_y.array), rows["ci_high"])
    np.testing.assert_allclose(np.asarray(trace.y) - np.asarray(trace.error_y.arrayminus), rows["ci_low"])
    assert "n=4" in fig.layout.xaxis.ticktext[0] and "n=3" in fig.layout.xaxis.ticktext[1]


def test_change_figure_of_a_missing_measure_is_empty_not_zero(tiny) -> None:
    analysis, _ = tiny
    rows = outcomes.change_by_cycle(analysis).loc[lambda f: f["measure"] == "mhd"].assign(n=0, mean_change=np.nan)
    fig = figures.build_change_figure(rows, "migraine days")
    assert len(fig.data) == 0
    assert any("No patient" in text for text in annotations(fig))


def test_responder_figure_has_one_series_per_threshold(tiny) -> None:
    analysis, _ = tiny
    rates = outcomes.responder_rates(analysis)
    fig = figures.build_responder_figure(rates)
    assert [t.name for t in fig.data] == ["≥30% responders", "≥50% responders", "≥75% responders"]
    fifty = rates.loc[rates["threshold"] == 50]
    np.testing.assert_allclose(fig.data[1].y, fifty["rate"])
    np.testing.assert_allclose(np.asarray(fig.data[1].y) + np.asarray(fig.data[1].error_y.array), fifty["ci_high"])
    assert "n=4" in fig.layout.xaxis.ticktext[0]


def test_cumulative_figure_labels_every_bar_with_numerator_and_denominator(tiny) -> None:
    analysis, _ = tiny
    cumulative = outcomes.cumulative_response(analysis)
    fig = figures.build_cumulative_figure(cumulative)
    assert [t.name for t in fig.data] == ["Completers", "Intention-to-treat", "New responders (conditional)"]
    left, right = fig.layout.xaxis.ticktext, fig.layout.xaxis2.ticktext
    assert ">1/4<" in left[0] and ">2/3<" in left[1] and ">2/4<" in left[1]  # completers, then ITT
    assert ">1/2<" in right[1]
    np.testing.assert_allclose(fig.data[0].y, [1 / 4, 2 / 3])


def test_weekly_profile_figure_overlays_cycles_with_the_baseline(tiny) -> None:
    analysis, _ = tiny
    profile = outcomes.weekly_profile(analysis)
    fig = figures.build_weekly_profile_figure(profile)
    lines = [t for t in fig.data if t.mode == "lines"]
    assert [t.name for t in lines] == ["Cycle 1", "Cycle 2"]
    markers = [t for t in fig.data if t.mode == "markers"]
    cycle_1 = profile.weekly.loc[profile.weekly["cycle_group"] == "Cycle 1"]
    np.testing.assert_allclose(markers[0].y, cycle_1["mean_headache_days"])
    np.testing.assert_allclose(markers[0].x, cycle_1["week"] * 7 - 3)  # mid-week
    baseline = [s for s in fig.layout.shapes if s.type == "line" and s.y0 == s.y1]
    assert baseline and baseline[0].y0 == pytest.approx(5.0)
    assert fig.layout.yaxis.range[1] > 7  # the weekly means (7) are inside the axis


def test_time_to_response_figure_has_both_incidences_bands_and_number_at_risk(tmp_path) -> None:
    # The tiny cohort with D lapsed (lapse_days 120 < 167 days since its only session): a stopping curve too.
    folder = tiny_cohort_module().write_tiny(tmp_path / "tiny")
    lapsed = analyse(load_dataset(folder), AnalysisConfig(lapse_days=120))
    ttr = outcomes.time_to_response(lapsed)
    fig = figures.build_time_to_response_figure(ttr, 84)
    responded = next(t for t in fig.data if t.name == "responded")
    stopped = next(t for t in fig.data if t.name == "stopped without a response")
    np.testing.assert_allclose(responded.x, [0, 84, 168])
    np.testing.assert_allclose(responded.y, [0, 1 / 4, 1 / 2])  # hand-worked in test_outcomes
    np.testing.assert_allclose(stopped.y, [0, 1 / 4, 1 / 4])
    at_risk = next(t for t in fig.data if t.mode == "text")
    assert list(at_risk.text) == ["4", "4", "2"]
    bands = [t for t in fig.data if t.fill == "tonexty"]
    assert [b.name for b in bands] == ["95% CI (responded)", "95% CI (stopped without a response)"]
    np.testing.assert_allclose(bands[0].y, ttr.curve.table["ci_low"])
    assert "competing" in fig.layout.title.text


def test_forest_figure_rows_carry_n_and_grey_for_not_recorded(tiny) -> None:
    analysis, attributes = tiny
    forest = outcomes.subgroup_response(analysis, attributes, cycle=1)
    fig = figures.build_forest_figure(forest)
    points, counts = fig.data
    assert list(counts.text) == [f"{r}/{n}" for r, n in zip(forest["responders"], forest["evaluable"], strict=True)]
    assert "<b>Overall</b>" in fig.layout.yaxis.ticktext[0]
    levels = forest["level"].tolist()
    assert points.marker.color[levels.index("not recorded")] == MISSING
    assert fig.layout.height >= 26 * len(forest)
    np.testing.assert_allclose(points.x, forest["rate"])


def test_an_empty_cohort_gives_empty_charts_that_say_so(tiny) -> None:
    analysis, attributes = tiny
    empty = restrict(analysis, set())
    built = [
        figures.build_responder_figure(outcomes.responder_rates(empty)),
        figures.build_cumulative_figure(outcomes.cumulative_response(empty)),
        figures.build_weekly_profile_figure(outcomes.weekly_profile(empty)),
        figures.build_time_to_response_figure(outcomes.time_to_response(empty)),
        figures.build_forest_figure(outcomes.subgroup_response(empty, attributes.iloc[:0], cycle=1)),
    ]
    for fig in built:
        assert len(fig.data) == 0
        assert any(text.startswith("No ") for text in annotations(fig))
    assert pd.isna(outcomes.weekly_profile(empty).baseline_mean)


def test_phone_layouts_keep_each_n_in_fewer_words(tmp_path, tiny) -> None:
    """The compact (phone) layouts: the n stays under each cycle as a bare number, the legend goes under the plot,
    the cumulative chart's ticks keep each bar's denominator, the number at risk is thinned to fit."""
    analysis, attributes = tiny
    phone = figures.build_responder_figure(outcomes.responder_rates(analysis), compact=True)
    assert ">4<" in phone.layout.xaxis.ticktext[0] and "n=" not in phone.layout.xaxis.ticktext[0]
    assert phone.layout.legend.yref == "container" and phone.layout.legend.y == 0
    cumulative = outcomes.cumulative_response(analysis)
    full = figures.build_cumulative_figure(cumulative)
    compact = figures.build_cumulative_figure(cumulative, compact=True)
    assert [t.name for t in compact.data] == [t.name for t in full.data]
    ticks = compact.layout.xaxis.ticktext
    assert ">4<" in ticks[0] and ">3<" in ticks[1] and ">4<" in ticks[1]  # completers 1/4; 2/3 and ITT 2/4
    assert not any(re.search(r">\d+/\d+<", tick) for tick in ticks)
    folder = tiny_cohort_module().write_tiny(tmp_path / "tiny")
    ttr = outcomes.time_to_response(analyse(load_dataset(folder), AnalysisConfig(lapse_days=120)))
    weekly = figures.build_time_to_response_figure(ttr, 7)
    thinned = figures.build_time_to_response_figure(ttr, 7, compact=True)
    every, shown = next(t for t in weekly.data if t.mode == "text"), next(t for t in thinned.data if t.mode == "text")
    assert len(every.text) > 6 >= len(shown.text) and shown.text[0] == every.text[0]
    forest = figures.build_forest_figure(outcomes.subgroup_response(analysis, attributes, cycle=1), compact=True)
    assert list(forest.data[1].text) == list(
        figures.build_forest_figure(outcomes.subgroup_response(analysis, attributes, cycle=1)).data[1].text
    )
