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
from page_helpers import missing_cells, switch_page
from streamlit.testing.v1 import AppTest

from analytics.privacy import audit
from analytics.privacy.links import escape_markdown

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
MISSING = object()  # a claim the provider does not send
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
    """An AppTest of the dashboard in OIDC mode, signed in as ``email`` (None: not signed in).

    The provider vouches for the address (``email_verified`` true) unless ``claims`` say otherwise.
    """

    def make(email: str | None, access_file: Path | None = None, **claims: object) -> AppTest:
        at = AppTest.from_file(DASHBOARD, default_timeout=60)
        at.secrets["auth"] = AUTH_SECTION
        at.secrets["OUTCOMES_ACCESS_FILE"] = str(access_file or setup["access"])
        signed_in = {"is_logged_in": True, "email": email, "email_verified": True, "name": "Someone", **claims}
        at.user = {k: v for k, v in signed_in.items() if v is not MISSING} if email else {"is_logged_in": False}
        return at

    return make


def events(log: Path) -> list[dict[str, object]]:
    """The log's events without their chain fields; the chain itself must verify."""
    if not log.exists():
        return []
    assert audit.verify(log).ok, audit.verify(log)
    found = [json.loads(line) for line in log.read_text().splitlines()]
    for event in found:
        assert len(event.pop("prev")) == len(event.pop("hash")) == 64
    return found


def visible_ids(at: AppTest) -> set[str]:
    """Every patient id in the dataset the pages of this session were given."""
    dataset = at.session_state["app_context"].dataset
    ids = set().union(*(set(t["patient_id"]) for t in dataset.tables.values()))
    return ids | set(dataset.rejected["patient_id"])


def no_page(at: AppTest, page: str) -> bool:
    """The page cannot be opened: this user's navigation has no such page, or only the hidden "No access"
    page at its address (which says so and is audited; ``ui.auth.navigation``). AppTest offers no public
    view of the registered pages, hence its ``_registered_pages``."""
    at_address = [p for p in at._registered_pages.values() if p.get("url_pathname") == page]
    if at_address:
        return all(p.get("page_name") == "No access" for p in at_address)
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


def test_a_broken_access_file_lets_nobody_in(
    app: Callable[..., AppTest], setup: dict[str, Path], audit_log: Path
) -> None:
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
    at.query_params["patient"] = "S1"  # a link to a South patient: it says so and opens no one else
    at.run()
    assert not at.exception
    assert at.title[0].value == "Patient"
    assert "is not in the data you can see" in at.warning[0].value
    del at.query_params["patient"]  # the "Open the patient list" button drops the refused id from the address
    at.run()
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


def test_manager_sees_the_clinic_page_without_patient_level_exports(
    app: Callable[..., AppTest], audit_log: Path
) -> None:
    at = app("boss.north@clinic.example")
    at.session_state["clinic_tab"] = "Worklists"
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


def test_the_audit_table_shows_no_none(audit_log: Path) -> None:
    """Events carry different fields (a refusal has no role, a login no file), so most cells of the audit
    table are empty: they read "—", never "None", "nan", "NaT" or "<NA>"."""
    log = audit.AuditLog(audit_log)
    log.record("refused", "stranger@x.org", None, reason="not in the access file")
    log.record("open_patient", "dr.north@clinic.example", "doctor", patient_id="N1", page="patient")
    log.record(
        "export",
        "boss.north@clinic.example",
        "manager",
        file="volumes.csv",
        kind="aggregate",
        rows=5,
        filter={"clinic": "North"},
        parameters={"cycle_days": 84},
        page="clinic",
    )
    at = AppTest.from_file(DASHBOARD, default_timeout=60)
    at.run()
    switch_page(at, "pages/audit.py")
    at.run()
    assert not at.exception
    shown = at.dataframe[0].value
    assert {"refused", "open_patient", "export", "login"} <= set(shown["event"])
    assert missing_cells(at) == []
    assert shown.loc[shown["event"].eq("refused"), "role"].tolist() == ["—"]
    assert shown.loc[shown["event"].eq("export"), "rows"].tolist() == ["5"]
    # The long texts (the export's filter and parameters) get a column as wide as they are, not cut.
    columns = json.loads(at.dataframe[0].proto.columns)
    for name in ("filter", "parameters"):
        assert columns[name]["width"] >= 7 * shown[name].str.len().max(), columns[name]


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

    st.session_state[context.USER_KEY] = context.User(
        "boss.north@clinic.example", "Boss", "manager", ("North",), min_cell=min_cell
    )
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
        "event": "export",
        "user": "boss.north@clinic.example",
        "role": "manager",
        "file": "volumes.csv",
        "kind": "aggregate",
        "rows": 1,
        "min_cell": None,
        "page": "clinic",
        "filter": {"clinic": "North"},
        "parameters": {},
    }


def test_enforced_suppression_suppresses_or_refuses(setup: dict[str, Path], audit_log: Path) -> None:
    at = AppTest.from_function(_download_script, args=(str(setup["data"]), 11), default_timeout=30)
    at.run()
    assert not at.exception
    # The cohort table can be suppressed (analytics.privacy.suppression), so it downloads; the other cannot.
    assert [b.key for b in at.get("download_button")] == ["cohort_csv"]
    assert any("min_cell 11" in c.value for c in at.caption)


# --- security review: look-alike addresses, email_verified, local mode on a network, refusals, rows ---------

LOOKALIKE_ACCESS_FILE = (
    ACCESS_FILE
    + """
[users."analyst@uni.example"]
role = "researcher"
clinics = "*"
"""
)


@pytest.mark.parametrize(
    ("given", "victim"),
    [
        ("boß.north@clinic.example", "boss.north@clinic.example"),
        ("boſs.north@clinic.example", "boss.north@clinic.example"),
        ("analyﬆ@uni.example", "analyst@uni.example"),
        ("аnalyst@uni.example", "analyst@uni.example"),  # Cyrillic а
    ],
)
def test_a_unicode_look_alike_does_not_log_in_as_its_victim(
    app: Callable[..., AppTest], setup: dict[str, Path], audit_log: Path, given: str, victim: str
) -> None:
    lookalikes = setup["root"] / "lookalikes.toml"
    lookalikes.write_text(LOOKALIKE_ACCESS_FILE, encoding="utf-8")
    at = app(given, access_file=lookalikes)
    at.run()
    assert not at.exception
    assert at.title[0].value == "No access"
    assert not at.dataframe and "app_context" not in at.session_state and "auth_user" not in at.session_state
    [event] = events(audit_log)
    assert (event["event"], event["user"]) == ("refused", given)  # what the provider sent, not the victim
    assert victim not in audit_log.read_text()


@pytest.mark.parametrize("claim", [MISSING, None, False, "false", "True", "yes", 1, "1"])
def test_an_unverified_address_is_refused(app: Callable[..., AppTest], audit_log: Path, claim: object) -> None:
    at = app("dr.north@clinic.example", email_verified=claim)
    at.run()
    assert not at.exception
    assert at.title[0].value == "No access"
    assert "verified" in at.error[0].value
    assert "app_context" not in at.session_state
    [event] = events(audit_log)
    assert event["event"] == "refused" and event["reason"].startswith("e-mail address not verified")


@pytest.mark.parametrize("claim", [True, "true"])
def test_a_verified_address_is_accepted(app: Callable[..., AppTest], audit_log: Path, claim: object) -> None:
    at = app("dr.north@clinic.example", email_verified=claim)
    at.run()
    assert not at.exception
    assert at.title[0].value == "Patient"


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("", False),
        (None, False),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("outcomes.clinic.example", False),
    ],
)
def test_loopback_addresses(address: object, loopback: bool) -> None:
    from ui import auth

    assert auth.is_loopback(address) is loopback


@pytest.fixture
def served_on() -> Callable[[str | None], None]:
    """Set ``server.address`` as the config file, environment or a flag would, restored afterwards."""
    from streamlit import config

    before = config.get_option("server.address")

    def serve(address: str | None) -> None:
        config.set_option("server.address", address, "test")

    yield serve
    config.set_option("server.address", before, "test")


@pytest.mark.parametrize("address", ["0.0.0.0", "", "192.168.1.20", "::"])
def test_local_mode_on_a_network_address_shows_no_data(
    served_on: Callable[[str | None], None], audit_log: Path, address: str
) -> None:
    served_on(address)
    at = AppTest.from_file(DASHBOARD, default_timeout=60)
    at.run()
    assert not at.exception
    assert at.title[0].value == "No access"
    assert "local single-user mode" in at.error[0].value and "127.0.0.1" in at.error[0].value
    assert not at.dataframe and not at.get("plotly_chart") and "app_context" not in at.session_state
    assert not at.button  # nobody to log out
    [event] = events(audit_log)
    assert (event["event"], event["user"]) == ("refused", "local")
    assert event["reason"] == f"local single-user mode served on {address or 'all interfaces'}"


def test_local_mode_on_loopback_still_works(served_on: Callable[[str | None], None], audit_log: Path) -> None:
    served_on("127.0.0.1")
    at = AppTest.from_file(DASHBOARD, default_timeout=60)
    at.run()
    assert not at.exception
    assert at.title[0].value == "Patient"


def _configured_address(env: dict[str, str], *flags: str) -> str | None:
    """``server.address`` as ``streamlit`` resolves it in the project folder (config.toml, env, flags)."""
    import os
    import subprocess
    import sys

    environment = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")} | env
    shown = subprocess.run(
        [sys.executable, "-m", "streamlit", "config", "show", *flags],
        cwd=PROJECT_DIR,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    section = shown[shown.index("[server]") :]
    for line in section.splitlines():
        if line.startswith("address = "):
            return line.split("=", 1)[1].strip().strip('"')
    return None


def test_the_config_file_serves_loopback_and_the_environment_or_a_flag_overrides_it() -> None:
    import tomllib

    config = tomllib.loads((PROJECT_DIR / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "127.0.0.1"
    assert config["client"]["disableDataExport"] is True  # no unaudited CSV download from a table's toolbar
    assert _configured_address({}) == "127.0.0.1"
    assert _configured_address({"STREAMLIT_SERVER_ADDRESS": "0.0.0.0"}) == "0.0.0.0"  # the Makefile's variable
    assert _configured_address({}, "--server.address", "10.1.2.3") == "10.1.2.3"


@pytest.mark.parametrize("requested", ["S1", "X1", "NOBODY", "N1'><script>"])
def test_opening_a_patient_of_another_clinic_or_none_is_refused_and_audited(
    app: Callable[..., AppTest], audit_log: Path, requested: str
) -> None:
    at = app("dr.north@clinic.example")
    at.query_params["patient"] = requested
    at.run()
    assert not at.exception
    # The same words whether the patient is another clinic's or nobody's, and no other patient opens instead.
    warning = next(w.value for w in at.warning if "is not in the data you can see" in w.value)
    assert warning == escape_markdown(f"Patient {requested} is not in the data you can see")
    assert "patient" not in [s.key for s in at.selectbox]
    at.run()  # a rerun is not a second attempt
    refused = [e for e in events(audit_log) if e["event"] == "refused"]
    assert [(e["user"], e["role"], e["patient_id"], e["page"], e["reason"]) for e in refused] == [
        (
            "dr.north@clinic.example",
            "doctor",
            requested,
            "patient",
            "patient not among the user's patients (another clinic's, or unknown)",
        )
    ]
    assert [e for e in events(audit_log) if e["event"] == "open_patient"] == []
    assert at.button(key="patient_link_refused")  # the way out: the patient list, without the link
    del at.query_params["patient"]  # what the button does to the address (AppTest keeps its own query)
    at.run()
    assert at.selectbox(key="patient").value in NORTH


def test_an_admin_opening_an_unknown_patient_is_audited(app: Callable[..., AppTest], audit_log: Path) -> None:
    at = app("admin@clinic.example")
    at.query_params["patient"] = "NOBODY"
    at.run()
    assert not at.exception
    assert [(e["event"], e.get("patient_id")) for e in events(audit_log)][1:] == [("refused", "NOBODY")]


def _open_url_path(at: AppTest, url_path: str) -> AppTest:
    """Open ``/<url_path>`` as a typed link does: the page registered under that path (AppTest internals)."""
    page_hash = next(h for h, info in at._registered_pages.items() if info.get("url_pathname") == url_path)
    at._page_hash = page_hash
    return at


@pytest.mark.parametrize(
    ("email", "page"),
    [
        ("dr.north@clinic.example", "clinic"),
        ("dr.north@clinic.example", "audit"),
        ("boss.north@clinic.example", "patient"),
    ],
)
def test_a_link_to_a_page_the_role_may_not_open_is_refused_and_audited(
    app: Callable[..., AppTest], audit_log: Path, email: str, page: str
) -> None:
    at = app(email)
    at.run()
    assert no_page(at, page)  # the page's own file is not registered, so it can never run
    _open_url_path(at, page).run()
    assert not at.exception
    assert at.title[0].value == "No access"
    assert "You do not have access to this page." in at.error[0].value
    assert not at.get("plotly_chart") and not at.get("download_button")
    at.run()
    refused = [e for e in events(audit_log) if e["event"] == "refused"]
    assert [(e["user"], e["page"]) for e in refused] == [(email, page)]
    assert refused[0]["reason"].startswith("page not permitted")


def test_charts_have_no_image_download(app: Callable[..., AppTest], audit_log: Path) -> None:
    at = app("dr.north@clinic.example")
    at.run()
    assert not at.exception
    charts = at.get("plotly_chart")
    assert charts
    for chart in charts:
        config = json.loads(chart.proto.config)
        assert "toImage" in config["modeBarButtonsToRemove"]
        assert "toImageButtonOptions" not in config


def test_downloads_record_their_data_rows(
    app: Callable[..., AppTest], audit_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Data page's files and the printable summary: ``rows`` counted in what was downloaded."""
    import io
    import zipfile

    from ui import auth

    produced: dict[str, Callable[[], bytes | str]] = {}
    original = auth.audited

    def keep(data: Callable[[], bytes | str], file_name: str, *args: object) -> Callable[[], bytes | str]:
        produced[file_name] = original(data, file_name, *args)
        return produced[file_name]

    monkeypatch.setattr(auth, "audited", keep)
    at = app("admin@clinic.example")
    at.query_params["patient"] = "N1"
    at.run()
    switch_page(at, "pages/data.py")
    at.run()
    assert not at.exception

    def csv_rows(content: bytes) -> int:
        return len(pd.read_csv(io.BytesIO(content), keep_default_na=False))

    expected = {}
    summary = next(name for name in produced if name.startswith("patient_N1_") and name.endswith(".html"))
    produced[summary]()
    expected[summary] = 1
    for name in ("patient_cycles.csv", "cohort_cycles.csv", "rejected_rows.csv"):
        expected[name] = csv_rows(produced[name]())
        assert expected[name] > 0
    produced["manifest.json"]()
    expected["manifest.json"] = 0
    archive = next(name for name in produced if name.startswith("outcomes_export_") and name.endswith(".zip"))
    with zipfile.ZipFile(io.BytesIO(produced[archive]())) as z:
        expected[archive] = sum(csv_rows(z.read(n)) for n in z.namelist() if n.endswith(".csv"))
    exports = {e["file"]: e["rows"] for e in events(audit_log) if e["event"] == "export"}
    assert exports == expected


def test_the_audit_page_says_whether_the_chain_verifies(app: Callable[..., AppTest], audit_log: Path) -> None:
    app("dr.north@clinic.example").run()
    at = app("admin@clinic.example")
    at.run()
    switch_page(at, "pages/audit.py")
    at.run()
    assert not at.exception
    lines = audit_log.read_bytes().splitlines(keepends=True)
    assert f"Hash chain verified: {len(lines)} lines" in at.success[0].value and not at.error
    audit_log.write_bytes(b"".join([lines[0].replace(b"dr.north", b"dr.south"), *lines[1:]]))  # line 1 edited
    at.run()
    assert not at.exception
    assert not at.success
    assert "does not verify at line 1" in at.error[0].value


def test_a_researcher_held_to_small_cell_suppression_sees_suppressed_values_only(
    app: Callable[..., AppTest], setup: dict[str, Path], audit_log: Path
) -> None:
    """On screen as in the download: the Outcomes page shows such a role the suppressed cohort table and no view
    built on single patients (the review's researcher with min_cell = 11 saw a cohort of n = 1)."""
    access_file = setup["root"] / "access_min_cell.toml"
    access_file.write_text("[min_cell]\nresearcher = 11\n" + ACCESS_FILE)
    at = app("researcher@uni.example", access_file=access_file)
    switch_page(at, "pages/outcomes.py")
    at.run()
    assert not at.exception
    assert any("small cells suppressed (K = 11)" in i.value for i in at.info)
    shown = at.dataframe[0].value
    assert "n_treated" in shown.columns
    counts = shown[["n_treated", "n_evaluable"]].astype(str)
    # The tiny test cohort has fewer than 11 patients: no count of 1..10 is on the screen.
    assert not counts.isin([str(n) for n in range(1, 11)]).any().any(), counts
    assert len(at.tabs) == 0  # no charts, subgroups, Table 1, curves or models
    assert not any("Patients in the cohort" in m.label for m in at.metric)


def test_the_data_page_shows_a_role_held_to_suppression_counts_only(
    app: Callable[..., AppTest], setup: dict[str, Path], audit_log: Path
) -> None:
    """The Data page likewise: suppressed counts per file and reason, no rejected row listed (its patient ids and
    values), no completeness histogram of a handful of patients."""
    access_file = setup["root"] / "access_min_cell_data.toml"
    access_file.write_text("[min_cell]\nresearcher = 11\n" + ACCESS_FILE)
    at = app("researcher@uni.example", access_file=access_file)
    switch_page(at, "pages/data.py")
    at.run()
    assert not at.exception
    assert any("small cells suppressed (K = 11)" in i.value for i in at.info)
    tables = [d.value for d in at.dataframe]
    assert not any("patient_id" in t.columns for t in tables)  # no rejected row is listed
    files = next(t for t in tables if "rows_read" in t.columns)
    assert set(files["rows_rejected"]) <= {"<11", "suppressed", "0"}  # 1 rejected row per file in this data
