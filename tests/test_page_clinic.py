"""The Clinic page in Streamlit's AppTest on the bundled sample data.

Each test checks what the page shows against ``analytics.views.clinic.clinic_view`` computed directly for
the same filter: the headline numbers, that the filters (widgets or URL query parameters) change them,
that worklist rows link to the right patient's page, that the worklists are SPEC §5's, and that the
safety section sets the dataset's adverse events beside the published figures.
"""

from __future__ import annotations

import json
from datetime import date
from functools import partial
from pathlib import Path

import pandas as pd
import pytest
from page_helpers import chart_keys, missing_cells, open_app_page, open_page_tab
from streamlit.testing.v1 import AppTest

from analytics.definitions.config import SAMPLE_DATA_DIR, AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.ingest.load import load_dataset
from analytics.output.cells import EMPTY_CELL
from analytics.views import clinic
from pages.clinic import SECTIONS

APP = Path(__file__).resolve().parent.parent / "dashboard.py"
PAGE = "pages/clinic.py"

pytestmark = pytest.mark.skipif(not (SAMPLE_DATA_DIR / "sessions.csv").exists(), reason="no bundled sample data")


@pytest.fixture(scope="module")
def sample():
    dataset = load_dataset(SAMPLE_DATA_DIR)
    analysis = analyse(dataset, AnalysisConfig())
    return dataset, analysis


def expected(sample, **kwargs: object) -> clinic.ClinicView:
    dataset, analysis = sample
    return clinic.clinic_view(dataset, analysis, clinic.ClinicFilter(**kwargs))


def open_page(monkeypatch: pytest.MonkeyPatch, **query: str) -> AppTest:
    return open_app_page(monkeypatch, PAGE, query=query, timeout=60)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def shown_numbers(view: clinic.ClinicView) -> dict[str, str]:
    activity = view.activity
    return {
        "Active patients": f"{activity.active:,}",
        "Treated": f"{activity.treated_in_period:,}",
        "Sessions in period": f"{activity.sessions_in_period:,}",
        "New in period": f"{activity.new_in_period:,}",
        "On time": f"{view.interval_summary.on_time.rate:.0%}",
    }


def table_with(at: AppTest, column: str):
    return next(d for d in at.dataframe if column in d.value.columns)


ROW_EXPANDERS = ("intervals_expander", "persistence_expander")
"""The expanders of tables with a row per session or per patient, made only while open (pages/clinic.py)."""


def open_row_tables(at: AppTest) -> AppTest:
    """The page again with those expanders open (AppTest cannot click one; its key holds whether it is open)."""
    for key in ROW_EXPANDERS:
        at.session_state[key] = True
    at.run()
    assert not at.exception, at.exception
    return at


open_tab = partial(open_page_tab, key="clinic_tab")


# Each tab's charts, each with a phone layout but the two funnels.
TAB_CHARTS = {
    "Activity and timing": {"sessions_per_month", "intervals"},
    "Retention and outcomes": {"retention", "persistence", "responders"},
    "Safety and diary": {"adverse_events", "safety_vs_published", "completeness"},
    "Worklists": set(),
    "Injectors and clinics": {"funnel_injectors", "funnel_clinics"},
}


def test_page_shows_the_analytics_numbers_charts_and_tables(monkeypatch, sample) -> None:
    at = open_page(monkeypatch)
    assert metrics(at) == shown_numbers(expected(sample))
    assert at.selectbox(key="site").options == ["All clinics", "East", "North", "South"]
    assert [tab.label for tab in at.tabs][: len(SECTIONS)] == list(SECTIONS)
    charts = {}
    for section in SECTIONS:  # only the open tab is drawn; the headline numbers stay above the tabs
        open_tab(at, section)
        assert metrics(at) == shown_numbers(expected(sample))
        charts[section] = chart_keys(at)
        assert len(at.get("download_button")) == len(at.dataframe), section  # every table has its CSV download
        # The tables of a row per session or per patient are made only when their expander is opened.
        closed = [tuple(d.value.columns) for d in at.dataframe]
        assert not any("interval_days" in c or "end_reason" in c for c in closed)
    phones = {f"{key}_phone" for keys in TAB_CHARTS.values() for key in keys if not key.startswith("funnel")}
    assert set().union(*charts.values()) == set().union(*TAB_CHARTS.values()) | phones
    for section, keys in TAB_CHARTS.items():
        assert {key.removesuffix("_phone") for key in charts[section]} == keys, section
    open_tab(at, "Activity and timing")
    before = len(at.dataframe)
    open_row_tables(at)
    assert len(at.dataframe) == before + 1  # every re-injection interval
    intervals = table_with(at, "interval_days").value
    assert len(intervals) == expected(sample).interval_summary.n_intervals
    open_row_tables(open_tab(at, "Retention and outcomes"))
    assert table_with(at, "end_reason") is not None  # retention, number at risk, time on treatment
    assert len(at.get("download_button")) == len(at.dataframe)


def test_the_open_tab_is_in_the_link(monkeypatch) -> None:
    """A link with ?clinic_tab= opens that tab: the worklists, and none of the other tabs' charts."""
    at = open_page(monkeypatch, clinic_tab="Worklists")
    assert chart_keys(at) == set()
    assert table_with(at, "days_since_last_session") is not None


def test_choosing_a_clinic_changes_the_numbers(monkeypatch, sample) -> None:
    at = open_page(monkeypatch)
    everyone = metrics(at)
    at.selectbox(key="site").select("North").run()
    assert not at.exception
    north = metrics(at)
    assert north == shown_numbers(expected(sample, clinic="North"))
    assert int(north["Sessions in period"].replace(",", "")) < int(everyone["Sessions in period"].replace(",", ""))
    at.selectbox(key="injector").select("INJ02").run()
    assert metrics(at) == shown_numbers(expected(sample, clinic="North", injector="INJ02"))


def test_the_url_opens_the_same_view(monkeypatch, sample) -> None:
    at = open_page(monkeypatch, site="South", period_from="2025-01-01", period_to="2025-06-30")
    assert at.selectbox(key="site").value == "South"
    assert at.date_input(key="period_from").value == date(2025, 1, 1)
    view = expected(sample, clinic="South", start=date(2025, 1, 1), end=date(2025, 6, 30))
    assert metrics(at) == shown_numbers(view)
    at.date_input(key="period_to").set_value(date(2025, 3, 31)).run()
    first_quarter = expected(sample, clinic="South", start=date(2025, 1, 1), end=date(2025, 3, 31))
    assert metrics(at) == shown_numbers(first_quarter)


def test_worklist_rows_link_to_the_patient_page(monkeypatch, sample) -> None:
    at = open_page(monkeypatch, site="North", clinic_tab="Worklists")
    view = expected(sample, clinic="North")
    for column, name in (
        ("days_since_last_session", "overdue"),
        ("rules", "stop_indicated"),
        ("elapsed_days", "diary"),
        ("days_since", "adverse_events"),
    ):
        shown = table_with(at, column)
        ids = view.worklists[name]["patient"].tolist()  # the worklist (and its CSV) holds plain patient ids
        assert ids and all(pid.startswith("P") and "/" not in pid for pid in ids)
        assert shown.value["patient"].tolist() == [f"/patient?patient={pid}" for pid in ids]
        config = json.loads(shown.proto.columns)["patient"]["type_config"]
        assert config["type"] == "link" and config["display_text"] == r"/patient\?patient=(.*)"
    overdue = table_with(at, "days_since_last_session").value
    assert (overdue["days_since_last_session"] > AnalysisConfig().on_time_max_days).all()
    assert set(overdue["clinic"]) <= {"North"}


def test_a_worklist_link_opens_that_patient_on_the_patient_page(monkeypatch, sample) -> None:
    at = open_page(monkeypatch, clinic_tab="Worklists")
    link = table_with(at, "days_since_last_session").value["patient"].iloc[0]
    assert link == "/patient?patient=" + expected(sample).worklists["overdue"]["patient"].iloc[0]
    path, query = link.split("?", 1)
    name, patient_id = query.split("=", 1)
    assert (path, name) == ("/patient", "patient")
    monkeypatch.delenv("OUTCOMES_DATA_DIR", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.switch_page("pages/patient.py")
    at.query_params[name] = patient_id
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="patient").value == patient_id


def test_worklists_are_the_spec_5_states(monkeypatch, sample) -> None:
    _, analysis = sample
    at = open_page(monkeypatch, clinic_tab="Worklists")
    view = expected(sample)
    status = analysis.patient_status
    labels = [tab.label for tab in at.tabs]
    for name, label in (
        ("overdue", "Overdue for re-injection"),
        ("lapsed", "Lapsed"),
        ("stop_indicated", "Stop indicated"),
    ):
        assert f"{label} ({len(view.worklists[name])})" in labels
    for state in ("overdue", "lapsed"):
        wanted = status.loc[status["treatment_state"] == state, "patient_id"]
        assert set(view.worklists[state]["patient"]) == set(wanted)
    on_treatment = status["treatment_state"].isin(["active", "overdue"]) & status["stop_indicated"].eq(True)
    assert set(view.worklists["stop_indicated"]["patient"]) == set(status.loc[on_treatment, "patient_id"])
    shown = table_with(at, "rules").value
    assert set(shown["rules"]) <= {
        "NICE 30%",
        "EHF",
        "episodic now",
        "NICE 30%; EHF",
        "NICE 30%; episodic now",
        "EHF; episodic now",
        "NICE 30%; EHF; episodic now",
    }
    assert len(shown) == len(view.worklists["stop_indicated"]) > 0


def test_the_safety_section_sets_adverse_events_beside_the_published_figures(monkeypatch, sample) -> None:
    _, analysis = sample
    at = open_page(monkeypatch, clinic_tab="Safety and diary")
    assert "Adverse events against the published figures" in [h.value for h in at.subheader]
    safety = clinic.safety_view(analysis)
    table = table_with(at, "pct_2_cycles_ci_low").value
    assert table["event"].tolist() == safety.table["event"].tolist()
    assert table["patients_2_cycles"].tolist() == safety.table["patients_2_cycles"].tolist()
    # A column with an empty cell is shown as text, its numbers as formatted (one decimal) and "—" where empty.
    published = safety.table["preempt_pct_2_cycles"]
    assert table["preempt_pct_2_cycles"].tolist() == [EMPTY_CELL if pd.isna(v) else f"{v:.1f}" for v in published]
    specs = " ".join(chart.proto.spec for chart in at.get("plotly_chart"))
    assert "Patients with an adverse event in the first two cycles" in specs and "PREEMPT, 24 weeks" in specs
    sources = table_with(at, "source").value
    assert sources["source"].str.contains("Dodick DW").any() and sources["source"].str.contains("COMPEL").any()


def test_no_safety_section_without_adverse_events(monkeypatch) -> None:
    conformance = Path(__file__).resolve().parent / "conformance" / "data"
    if not (conformance / "sessions.csv").exists() or (conformance / "adverse_events.csv").exists():
        pytest.skip("needs the conformance data, which has no adverse_events.csv")
    at = open_app_page(monkeypatch, PAGE, conformance, query={"clinic_tab": "Safety and diary"}, timeout=60)
    assert "Diary completeness" in [h.value for h in at.subheader]  # the tab is open
    assert "Adverse events against the published figures" not in [h.value for h in at.subheader]


def test_no_table_shows_none_for_a_missing_value(monkeypatch) -> None:
    """The data grid prints an empty cell as "None": every table on the page (worklists, retention,
    persistence, responders, safety) shows "—" instead, and no cell reads None, nan, NaT or <NA>."""
    at = open_row_tables(open_page(monkeypatch))
    tables = 0
    for section in SECTIONS:
        open_row_tables(open_tab(at, section))  # an expander not drawn in a run forgets that it was open
        tables += len(at.dataframe)
        assert missing_cells(at) == [], section
        if section == "Retention and outcomes":
            persistence = table_with(at, "end_reason").value
            assert (persistence["end_date"] == EMPTY_CELL).any()  # patients still on treatment have no end date
    assert tables > 10


def test_worklist_headers_are_short_enough_to_read(monkeypatch) -> None:
    """Long column names ("latest_evaluable_cycle") get short headers, which the table does not cut."""
    at = open_page(monkeypatch, clinic_tab="Worklists")
    stop = table_with(at, "rules")
    config = json.loads(stop.proto.columns)
    headers = [config.get(name, {}).get("label") or name for name in stop.value.columns]
    assert all(len(header) <= 16 for header in headers), headers
    assert config["latest_evaluable_cycle"]["help"].startswith("latest_evaluable_cycle")
