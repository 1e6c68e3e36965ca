"""Access control in the running app (issue #6): AppTest with a mocked signed-in user per role.

OIDC mode is switched on by an ``[auth]`` section in the test's secrets (``at.secrets``) and the
signed-in user is ``at.user`` (what ``st.user`` returns); the access file, the data folder and the
audit log are the test's own files. The dataset has two North patients (N1, N2), one South (S1) and
one without a clinic (X1); S1 and N1 each have one rejected diary row.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from page_helpers import switch_page
from streamlit.testing.v1 import AppTest

PROJECT_DIR = Path(__file__).resolve().parent.parent
DASHBOARD = str(PROJECT_DIR / "dashboard.py")
AUTH_SECTION = {
    "redirect_uri": "http://127.0.0.1:9/oauth2callback",
    "cookie_secret": "a-test-secret-that-is-long-enough-0123456789",
    "client_id": "dashboard",
    "client_secret": "secret",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}
ACCESS_FILE = """
[users."dr.north@clinic.example"]
role = "doctor"
clinics = ["North"]
name = "Dr North"

[users."boss.north@clinic.example"]
role = "manager"
clinics = ["North"]

[users."researcher@uni.example"]
role = "researcher"
clinics = "*"

[users."admin@clinic.example"]
role = "admin"
clinics = "*"
"""
NORTH, OTHERS = {"N1", "N2"}, {"S1", "X1"}
DIARY_MARKER = 7.25  # a headache_hours value that must never reach the audit log


def _diary(pid: str, first: str, days: int) -> list[str]:
    start = pd.Timestamp(first)
    return [f"{pid},{(start + pd.Timedelta(days=i)).date()},{DIARY_MARKER if i % 2 else 0},,," for i in range(days)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("access_app")
    data = root / "data"
    data.mkdir()
    (data / "patients.csv").write_text("patient_id,sex,clinic\nN1,F,North\nN2,M,North\nS1,F,South\nX1,M,\n")
    sessions = ["patient_id,session_date,total_units"]
    for pid in ("N1", "N2", "S1", "X1"):
        sessions += [f"{pid},2024-02-01,155", f"{pid},2024-04-25,155"]
    diary = ["patient_id,date,headache_hours,migraine,severity,acute_medication"]
    for pid in ("N1", "N2", "S1", "X1"):
        diary += _diary(pid, "2024-01-04", 160)
    diary += ["S1,2024/07/01,5,,,", "N1,2024-07-01,25,,,"]  # one rejected row each
    (data / "sessions.csv").write_text("\n".join(sessions) + "\n")
    (data / "diary.csv").write_text("\n".join(diary) + "\n")
    access_file = root / "access.toml"
    access_file.write_text(ACCESS_FILE)
    return {"data": data, "access": access_file, "root": root}


@pytest.fixture
def audit_log(setup: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "audit.jsonl"
    monkeypatch.setenv("OUTCOMES_DATA_DIR", str(setup["data"]))
    monkeypatch.setenv("OUTCOMES_AUDIT_LOG", str(log))
    monkeypatch.delenv("OUTCOMES_ACCESS_FILE", raising=False)
    return log


@pytest.fixture
def app(setup: dict[str, Path], audit_log: Path) -> Callable[..., AppTest]:
    """An AppTest of the dashboard in OIDC mode, signed in as ``email`` (None: not signed in)."""
    def make(email: str | None, access_file: Path | None = None) -> AppTest:
        at = AppTest.from_file(DASHBOARD, default_timeout=60)
        at.secrets["auth"] = AUTH_SECTION
        at.secrets["OUTCOMES_ACCESS_FILE"] = str(access_file or setup["access"])
        at.user = {"is_logged_in": True, "email": email, "name": "Someone"} if email else {"is_logged_in": False}
        return at

    return make


def events(log: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def visible_ids(at: AppTest) -> set[str]:
    """Every patient id in the dataset the pages of this session were given."""
    dataset = at.session_state["app_context"].dataset
    ids = set().union(*(set(t["patient_id"]) for t in dataset.tables.values()))
    return ids | set(dataset.rejected["patient_id"])


def no_page(at: AppTest, page: str) -> bool:
    """The page is not registered in this user's navigation, so it cannot be opened at all."""
    try:
        switch_page(at, f"pages/{page}.py")
    except ValueError as exc:
        return "Could not find a navigation page" in str(exc)
    return False


def texts(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "warning", "error", "info") for e in at.get(kind))


def test_local_mode_shows_its_banner_and_everything(audit_log: Path) -> None:
    at = AppTest.from_file(DASHBOARD, default_timeout=60)
    at.run()
    assert not at.exception
    banner = "Local single-user mode: no login; everyone with access to this computer sees all data"
    assert banner in at.markdown[0].value
    assert visible_ids(at) >= NORTH | OTHERS
    switch_page(at, "pages/audit.py")
    at.run()
    assert not at.exception
    assert at.title[0].value == "Audit trail"
    first = events(audit_log)[0]
    assert (first["event"], first["user"], first["role"], first["mode"]) == ("login", "local", "admin", "local")


def test_not_signed_in_gets_the_login_screen_only(app: Callable[..., AppTest], audit_log: Path) -> None:
    at = app(None)
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Log in"]
    assert not at.dataframe and "app_context" not in at.session_state
    assert events(audit_log) == []


def test_unknown_user_is_refused_and_audited(app: Callable[..., AppTest], audit_log: Path) -> None:
    at = app("Stranger@Elsewhere.example")
    at.run()
    assert not at.exception
    assert at.title[0].value == "No access"
    assert "Stranger@Elsewhere.example" in at.error[0].value and "access file" in at.error[0].value
    assert not at.dataframe and "app_context" not in at.session_state
    at.run()  # a rerun is not a second refusal
    assert [(e["event"], e["user"], e["reason"]) for e in events(audit_log)] == [
        ("refused", "Stranger@Elsewhere.example", "not in the access file")
    ]


def test_a_broken_access_file_lets_nobody_in(app: Callable[..., AppTest], setup: dict[str, Path],
                                             audit_log: Path) -> None:
    broken = setup["root"] / "broken.toml"
    broken.write_text('[users."admin@clinic.example"]\nrole = "superuser"\nclinics = "*"\n')
    at = app("admin@clinic.example", access_file=broken)
    at.run()
    assert not at.exception
    assert at.title[0].value == "No access" and "cannot be read" in at.error[0].value
    assert "superuser" not in at.error[0].value  # the details go to the server log, not to the screen
    assert events(audit_log)[0]["event"] == "refused"


def test_doctor_sees_only_north_patients(app: Callable[..., AppTest], audit_log: Path) -> None:
    at = app("DR.NORTH@clinic.example")
    at.query_params["patient"] = "S1"  # a link to a South patient
    at.run()
    assert not at.exception
    assert at.title[0].value == "Patient"
    assert set(at.selectbox(key="patient").options) == NORTH
    assert at.selectbox(key="patient").value in NORTH
    assert visible_ids(at) == NORTH
    assert "Dr North" in at.sidebar.caption[0].value and "doctor" in at.sidebar.caption[0].value
    assert "Local single-user mode" not in texts(at)
    assert no_page(at, "clinic") and no_page(at, "outcomes") and no_page(at, "audit")

    first = at.selectbox(key="patient").value
    at.run()  # the same patient again: no second event
    other = (NORTH - {first}).pop()
    at.selectbox(key="patient").set_value(other).run()
    assert not at.exception
    opened = [(e["user"], e["patient_id"]) for e in events(audit_log) if e["event"] == "open_patient"]
    assert opened == [("dr.north@clinic.example", first), ("dr.north@clinic.example", other)]

    switch_page(at, "pages/data.py")
    at.run()
    assert not at.exception
    rejected = next(df.value for df in at.dataframe if "reason" in df.value.columns and "line" in df.value.columns)
    assert list(rejected["patient_id"]) == ["N1"]


def test_manager_sees_the_clinic_page_without_patient_level_exports(app: Callable[..., AppTest],
                                                                   audit_log: Path) -> None:
    at = app("boss.north@clinic.example")
    at.run()
    assert not at.exception
    assert at.title[0].value == "Clinic"  # the first page this role may open
    assert visible_ids(at) == NORTH
    assert no_page(at, "patient") and no_page(at, "audit")
    assert any(b.label == "Download CSV" for b in at.get("download_button"))  # aggregate tables download
    # Worklists show patient ids as text, not links to a page this role cannot open.
    configs = [json.loads(frame.proto.columns or "{}") for frame in at.dataframe]
    patient_columns = [c["patient"] for c in configs if "patient" in c]
    assert patient_columns and all(c.get("type_config", {}).get("type") != "link" for c in patient_columns)
    switch_page(at, "pages/data.py")
    at.run()
    assert not at.exception
    shown = texts(at)
    # N1's rejected row is listed on screen, but the table (patient_id column) does not download.
    assert "Download CSV: not available — your role (manager) may not export patient-level data" in shown
    assert "patient_cycles.csv: not available" in shown and "rejected_rows.csv: not available" in shown
    assert {b.label for b in at.get("download_button")} >= {"cohort_cycles.csv", "manifest.json"}
    switch_page(at, "pages/outcomes.py")
    at.run()
    assert not at.exception


def test_researcher_sees_pseudonyms_only(app: Callable[..., AppTest], audit_log: Path, setup: dict[str, Path]) -> None:
    at = app("researcher@uni.example")
    at.run()
    assert not at.exception
    assert at.title[0].value == "Outcomes"
    ids = visible_ids(at)
    assert len(ids) == 4 and not ids & (NORTH | OTHERS)
    assert all(i.startswith("P") and len(i) == 17 for i in ids)
    assert no_page(at, "patient") and no_page(at, "clinic") and no_page(at, "audit")
    assert "Patient ids are pseudonyms." in at.sidebar.caption[0].value
    assert (setup["root"] / "pseudonym.key").is_file()  # created beside the access file on first use


def test_admin_gets_the_audit_page(app: Callable[..., AppTest], audit_log: Path) -> None:
    app("dr.north@clinic.example").run()
    at = app("admin@clinic.example")
    at.run()
    assert not at.exception
    assert visible_ids(at) >= NORTH | OTHERS
    switch_page(at, "pages/audit.py")
    at.run()
    assert not at.exception
    log = at.dataframe[0].value
    assert set(log["user"]) == {"dr.north@clinic.example", "admin@clinic.example"}


def test_the_audit_log_holds_no_diary_values(app: Callable[..., AppTest], audit_log: Path) -> None:
    for email in ("dr.north@clinic.example", "boss.north@clinic.example", "nobody@x.org"):
        app(email).run()
    text = audit_log.read_text()
    assert str(DIARY_MARKER) not in text and "headache_hours" not in text
    for event in events(audit_log):
        assert set(event) <= {"ts", "event", "user", "role", "mode", "clinics", "reason", "patient_id", "page"}


def _download_script(data_dir: str, min_cell: int | None) -> None:
    """A page with two table downloads and a file download, for one manager of North."""
    import streamlit as st

    from analytics.definitions.pipeline import analyse
    from analytics.ingest.load import load_dataset
    from ui import auth, context, render

    st.session_state[context.USER_KEY] = context.User("boss.north@clinic.example", "Boss", "manager", ("North",),
                                                      min_cell=min_cell)
    st.session_state[auth.PAGE_KEY] = "clinic"
    st.query_params["clinic"] = "North"
    st.query_params["min_completeness"] = "0.8"  # an analysis parameter: recorded with the parameters
    cohort = analyse(load_dataset(data_dir)).cohort_cycles
    render.table(cohort, key="cohort", filename="cohort_cycles.csv")
    render.table(cohort[["cycle", "n_treated"]], key="volumes", filename="volumes.csv")
    st.session_state["produce"] = auth.audited(lambda: b"cycle,n_treated\n1,2\n", "volumes.csv", "aggregate", rows=1)


def test_a_download_is_audited_when_it_happens(setup: dict[str, Path], audit_log: Path) -> None:
    at = AppTest.from_function(_download_script, args=(str(setup["data"]), None), default_timeout=30)
    at.run()
    assert not at.exception
    assert {b.key for b in at.get("download_button")} == {"cohort_csv", "volumes_csv"}
    assert events(audit_log) == []  # drawing a button is not an export
    assert at.session_state["produce"]() == b"cycle,n_treated\n1,2\n"  # the download, after the run
    [event] = events(audit_log)
    assert {k: v for k, v in event.items() if k != "ts"} == {
        "event": "export", "user": "boss.north@clinic.example", "role": "manager", "file": "volumes.csv",
        "kind": "aggregate", "rows": 1, "min_cell": None, "page": "clinic", "filter": {"clinic": "North"},
        "parameters": {},
    }


def test_enforced_suppression_suppresses_or_refuses(setup: dict[str, Path], audit_log: Path) -> None:
    at = AppTest.from_function(_download_script, args=(str(setup["data"]), 11), default_timeout=30)
    at.run()
    assert not at.exception
    # The cohort table can be suppressed (analytics.privacy.suppression), so it downloads; the other cannot.
    assert [b.key for b in at.get("download_button")] == ["cohort_csv"]
    assert any("min_cell 11" in c.value for c in at.caption)
