"""The Outcomes page in Streamlit's AppTest on the bundled sample data.

The page's numbers and charts are checked against ``analytics.views.outcomes`` computed directly for the
same cohort: the n shown at the top, that the cohort builder (widgets or a link's query parameters)
changes n and the figures, the statistics panel's mixed model on demand, and an empty cohort.
"""

from __future__ import annotations

import base64
import json
from functools import partial

import numpy as np
import pytest
from page_helpers import chart_keys, open_app_page, open_page_tab
from streamlit.testing.v1 import AppTest

from analytics.definitions.config import SAMPLE_DATA_DIR, AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.ingest.load import load_dataset
from analytics.views import outcomes
from analytics.views.cohort_filter import CohortFilter, attribute_options, patient_attributes, restrict

PAGE = "pages/outcomes.py"

pytestmark = pytest.mark.skipif(not (SAMPLE_DATA_DIR / "sessions.csv").exists(), reason="no bundled sample data")


@pytest.fixture(scope="module")
def sample():
    dataset = load_dataset(SAMPLE_DATA_DIR)
    analysis = analyse(dataset, AnalysisConfig())
    return dataset, analysis, patient_attributes(analysis, dataset)


def open_page(monkeypatch: pytest.MonkeyPatch, query: dict[str, list[str]] | None = None) -> AppTest:
    return open_app_page(monkeypatch, PAGE, query=query)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _array(value: object) -> np.ndarray:
    """A Plotly JSON array (plain list, or typed and base64-encoded) as numpy."""
    if isinstance(value, dict) and "bdata" in value:
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value, dtype="float64")


def chart_y(at: AppTest, key: str) -> np.ndarray:
    chart = next(c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}"))
    return _array(json.loads(chart.proto.spec)["data"][0]["y"])


def expected_numbers(sample, cohort_filter: CohortFilter, cycle: int = 2) -> dict[str, str]:
    _, analysis, attributes = sample
    selected = cohort_filter.select(attributes)
    cohort = restrict(analysis, selected)
    at_cycle = cohort.cohort_cycles.set_index("cycle").loc[cycle, "n_evaluable"]
    return {
        "Patients in the cohort": f"{len(selected):,}",
        "Eligible patients": f"{int(attributes.loc[attributes['patient_id'].isin(selected), 'eligible'].sum()):,}",
        f"Evaluable at cycle {cycle}": f"{int(at_cycle):,}",
        "Filter criteria": str(len(cohort_filter.describe())),
    }


open_tab = partial(open_page_tab, key="outcomes_tab")


# Each chart with its phone layout (``ui.render.chart_of``).
TAB_CHARTS = {
    label: {f"{chart}{phone}" for chart in charts for phone in ("", "_phone")}
    for label, charts in {
        "Change from baseline": [f"change_{measure}" for measure in outcomes.MEASURES],
        "Responders": ["responders", "cumulative"],
        "Within-cycle course": ["weekly_profile"],
        "Time to response": ["time_to_response"],
        "Subgroups & Table 1": ["forest"],
        "Statistics": [],
        "Export": [],
    }.items()
}


def test_page_shows_the_cohort_its_charts_and_tables(monkeypatch, sample) -> None:
    at = open_page(monkeypatch)
    assert metrics(at) == expected_numbers(sample, CohortFilter())
    _, analysis, _ = sample
    change = outcomes.change_by_cycle(analysis)
    np.testing.assert_allclose(
        chart_y(at, "change_mhd"),
        change.loc[change["measure"] == "mhd", "mean_change"][: len(chart_y(at, "change_mhd"))],
    )
    assert any("Outcomes cohort" in m.value for m in at.sidebar.markdown)
    # Only the open tab is drawn: the first shows the three change charts (each with a phone layout) and no other.
    assert chart_keys(at) == TAB_CHARTS["Change from baseline"]
    assert not any(b.key == "export_zip" for b in at.get("download_button"))
    for label, charts in TAB_CHARTS.items():
        open_tab(at, label)
        assert chart_keys(at) == charts, label
        assert metrics(at) == expected_numbers(sample, CohortFilter())  # the cohort's numbers stay above the tabs
        # Every table has its CSV download; the export tab adds the ZIP, four files and the filter.
        assert len(at.get("download_button")) == len(at.dataframe) + (6 if label == "Export" else 0), label
    weekly = outcomes.weekly_profile(analysis)
    open_tab(at, "Within-cycle course")
    shown = next(d.value for d in at.dataframe if "moving_average" in d.value.columns)
    np.testing.assert_array_equal(shown["recorded"].astype("int64"), weekly.daily["recorded"])


def test_the_open_tab_is_in_the_link(monkeypatch) -> None:
    """A link with ?outcomes_tab= opens that tab (the Export tab, with its download of the cohort)."""
    at = open_page(monkeypatch, {"outcomes_tab": "Export"})
    assert {b.key for b in at.get("download_button")} >= {"export_zip", "export_filter"}
    assert chart_keys(at) == set()


def test_the_cohort_builder_changes_n_and_the_figures(monkeypatch, sample) -> None:
    at = open_page(monkeypatch)
    before = chart_y(at, "change_mhd")
    at.multiselect(key="clinic").set_value(["North"]).run()
    assert not at.exception, at.exception
    chosen = CohortFilter(clinic=["North"])
    assert metrics(at) == expected_numbers(sample, chosen)
    after = chart_y(at, "change_mhd")
    _, analysis, attributes = sample
    change = outcomes.change_by_cycle(restrict(analysis, chosen.select(attributes)))
    np.testing.assert_allclose(after, change.loc[change["measure"] == "mhd", "mean_change"][: len(after)])
    assert not np.allclose(before[:3], after[:3])
    at.number_input(key="min_cycles").set_value(3).run()
    assert metrics(at) == expected_numbers(sample, CohortFilter(clinic=["North"], min_cycles=3))
    at.button(key="reset_filter").click().run()
    assert metrics(at)["Patients in the cohort"] == expected_numbers(sample, CohortFilter())["Patients in the cohort"]


def test_a_link_reproduces_the_cohort(monkeypatch, sample) -> None:
    _, _, attributes = sample
    options = attribute_options(attributes)
    bounds = {name: tuple(options[name]) for name in ("prior_preventives", "baseline_mhd", "first_injection")}
    chosen = CohortFilter(
        sex=["F", "M"],
        age_band=["40-49", "50-59"],
        prior_preventives_min=3,
        baseline_mhd_max=24.5,
        medication_overuse=True,
        min_cycles=2,
    )
    at = open_page(monkeypatch, {**chosen.to_query_params(bounds), "cycle": ["3"], "outcomes_tab": "Export"})
    shown = CohortFilter.from_json(next(c.value for c in at.code if c.language == "json"))
    assert shown == chosen
    assert metrics(at) == expected_numbers(sample, chosen, cycle=3)
    assert 0 < int(metrics(at)["Patients in the cohort"]) < len(attributes)


def test_the_mixed_model_is_fitted_on_demand(monkeypatch, sample) -> None:
    at = open_page(monkeypatch, {"clinic": ["South"], "outcomes_tab": "Statistics"})
    assert not any("term" in d.value.columns for d in at.dataframe)
    at.button(key="fit_mixed_model").click().run()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "term" in d.value.columns)
    _, analysis, attributes = sample
    expected = outcomes.mixed_model(restrict(analysis, CohortFilter(clinic=["South"]).select(attributes)))
    np.testing.assert_allclose(table["estimate"], expected.coefficients["estimate"])
    assert any("missing at random" in m.value for m in at.markdown)


def test_an_empty_cohort_says_so(monkeypatch, sample) -> None:
    _, _, attributes = sample
    options = attribute_options(attributes)
    # The oldest age band together with the rarest sex: nobody in the sample.
    chosen = CohortFilter(age_band=[options["age_band"][-1]], sex=["X"], clinic=[options["clinic"][0]])
    assert not chosen.select(attributes)
    at = open_page(monkeypatch, chosen.to_query_params())
    assert metrics(at)["Patients in the cohort"] == "0"
    assert any("No treated patient matches" in w.value for w in at.warning)
    assert len(at.get("plotly_chart")) == 0
