"""The Clinic page in Streamlit's AppTest on the bundled sample data.

Each test checks what the page shows against ``analytics.views.clinic.clinic_view`` computed directly for
the same filter: the headline numbers, that the filters (widgets or URL query parameters) change them,
and that worklist rows link to the right patient's page.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from page_helpers import open_app_page
from streamlit.testing.v1 import AppTest

from analytics.definitions.clinical import clinical_tables
from analytics.definitions.config import SAMPLE_DATA_DIR, AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.ingest.load import load_dataset
from analytics.views import clinic

APP = Path(__file__).resolve().parent.parent / "dashboard.py"
PAGE = "pages/clinic.py"

pytestmark = pytest.mark.skipif(not (SAMPLE_DATA_DIR / "sessions.csv").exists(), reason="no bundled sample data")


@pytest.fixture(scope="module")
def sample():
    dataset = load_dataset(SAMPLE_DATA_DIR)
    analysis = analyse(dataset, AnalysisConfig())
    return dataset, analysis, clinical_tables(analysis, dataset).status


def expected(sample, **kwargs: object) -> clinic.ClinicView:
    dataset, analysis, status = sample
    return clinic.clinic_view(dataset, analysis, clinic.ClinicFilter(**kwargs), status)


def open_page(monkeypatch: pytest.MonkeyPatch, **query: str) -> AppTest:
    return open_app_page(monkeypatch, PAGE, query=query, timeout=60)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def shown_numbers(view: clinic.ClinicView) -> dict[str, str]:
    activity = view.activity
    return {
        "Active patients": f"{activity.active:,}",
        "Treated in period": f"{activity.treated_in_period:,}",
        "Sessions in period": f"{activity.sessions_in_period:,}",
        "New in period": f"{activity.new_in_period:,}",
        "On-time intervals": f"{view.interval_summary.on_time.rate:.0%}",
    }


def table_with(at: AppTest, column: str):
    return next(d for d in at.dataframe if column in d.value.columns)


def test_page_shows_the_analytics_numbers_charts_and_tables(monkeypatch, sample) -> None:
    at = open_page(monkeypatch)
    assert metrics(at) == shown_numbers(expected(sample))
    assert len(at.get("plotly_chart")) == 9  # volumes, intervals, retention, KM, responders, AEs, diary, 2 funnels
    assert len(at.get("download_button")) == len(at.dataframe)  # every table has its CSV download
    assert at.selectbox(key="site").options == ["All clinics", "East", "North", "South"]


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
    at = open_page(monkeypatch, site="North")
    view = expected(sample, clinic="North")
    for column, name in (("days_since_last_session", "overdue"), ("rule_met", "stopping_rule"),
                         ("elapsed_days", "diary"), ("days_since", "adverse_events")):
        shown = table_with(at, column)
        ids = view.worklists[name]["patient"].tolist()  # the worklist (and its CSV) holds plain patient ids
        assert ids and all(pid.startswith("P") and "/" not in pid for pid in ids)
        assert shown.value["patient"].tolist() == [f"/patient?patient={pid}" for pid in ids]
        config = json.loads(shown.proto.columns)["patient"]["type_config"]
        assert config["type"] == "link" and config["display_text"] == r"/patient\?patient=(.*)"
    overdue = table_with(at, "days_since_last_session").value
    assert (overdue["days_since_last_session"] > clinic.OVERDUE_AFTER_DAYS).all()
    assert set(overdue["clinic"]) <= {"North"}


def test_a_worklist_link_opens_that_patient_on_the_patient_page(monkeypatch, sample) -> None:
    at = open_page(monkeypatch)
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
