"""End to end: OIDC login in headless chromium against a local identity provider (issue #6).

The test starts ``oidc-provider-mock`` on 127.0.0.1 in a thread and ``streamlit run dashboard.py``
with a temporary secrets file (``--secrets.files``; nothing is written into the repository) whose
``[auth]`` section points at that provider, then logs in through the real flow, as a person does:
the app's "Log in" button, the provider's authorization form (where the subject, here the e-mail
address, is typed), the redirect back with the cookie Streamlit sets. A doctor of North and a
manager of North then see what their roles allow and are refused the rest; a stranger is refused.
The provider vouches for the users it knows (``VERIFIED``: ``email_verified`` true); a subject typed
into its form that it does not know gets only an ``email`` claim, and one subject (``IMPOSTOR``)
claims the doctor's address unverified. Both are refused, as is a verified look-alike address.
The dataset has North patients N1 and N2 and South patient S1. The browser is the session's
Debian chromium from ``conftest.py`` (two Playwright instances cannot share a process).
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

PROJECT_DIR = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT_DIR / "test-artifacts"
TIMEOUT_MS = 30_000
ACCESS_FILE = """
[users."dr.north@clinic.example"]
role = "doctor"
clinics = ["North"]
name = "Dr North"

[users."boss.north@clinic.example"]
role = "manager"
clinics = ["North"]
name = "Manager North"
"""
VERIFIED = (
    "dr.north@clinic.example",
    "boss.north@clinic.example",
    "someone@elsewhere.example",
    "boß.north@clinic.example",
)
IMPOSTOR = "impostor"  # a subject whose provider account claims dr.north's address, unverified


def _write_data(folder: Path) -> None:
    folder.mkdir()
    (folder / "patients.csv").write_text("patient_id,sex,clinic\nN1,F,North\nN2,M,North\nS1,F,South\n")
    (folder / "sessions.csv").write_text(
        "patient_id,session_date\n" + "".join(f"{p},2024-02-01\n{p},2024-04-25\n" for p in ("N1", "N2", "S1"))
    )
    diary = ["patient_id,date,headache_hours,migraine,severity,acute_medication"]
    for pid in ("N1", "N2", "S1"):
        diary += [f"{pid},{date(2024, 1, 4) + timedelta(days=i)},{6 if i % 2 else 0},,," for i in range(150)]
    (folder / "diary.csv").write_text("\n".join(diary) + "\n")


@pytest.fixture(scope="module")
def oidc_provider() -> Iterator[str]:
    """The mock identity provider on a free loopback port, stopped after the module."""
    provider = pytest.importorskip("oidc_provider_mock", reason="oidc-provider-mock is not installed")
    pytest.importorskip("authlib", reason="Authlib (needed by st.login) is not installed")
    import werkzeug.serving

    users = [provider.User(sub=email, claims={"email": email, "email_verified": True}) for email in VERIFIED]
    users.append(provider.User(sub=IMPOSTOR, claims={"email": "dr.north@clinic.example"}))
    server = werkzeug.serving.make_server("127.0.0.1", 0, provider.app(user_claims=users), threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


@pytest.fixture(scope="module")
def app(
    oidc_provider: str, tmp_path_factory: pytest.TempPathFactory, streamlit_servers: object
) -> Iterator[dict[str, object]]:
    """``streamlit run dashboard.py`` in OIDC mode with the test's secrets, access file, data and audit log."""
    if streamlit_servers.chromium_path() is None:
        pytest.skip("chromium is not installed (/usr/bin/chromium); `make test` installs it with apt as root")
    pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    root = tmp_path_factory.mktemp("oidc_app")
    _write_data(root / "data")
    (root / "access.toml").write_text(ACCESS_FILE)
    port = streamlit_servers.free_port()
    url = f"http://127.0.0.1:{port}"
    secrets_file = root / "secrets.toml"
    secrets_file.write_text(
        "[auth]\n"
        f'redirect_uri = "{url}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        'client_id = "outcomes-dashboard"\n'
        'client_secret = "not-a-real-secret"\n'
        f'server_metadata_url = "{oidc_provider}/.well-known/openid-configuration"\n'
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_CURRENT_TEST",)}
    env.update(
        OUTCOMES_DATA_DIR=str(root / "data"),
        OUTCOMES_ACCESS_FILE=str(root / "access.toml"),
        OUTCOMES_AUDIT_LOG=str(root / "audit.jsonl"),
    )
    with streamlit_servers.running(
        port, env, "streamlit-oidc-server.log", ["--secrets.files", str(secrets_file)]
    ) as served:
        assert served == url
        yield {"url": url, "audit": root / "audit.jsonl"}


@pytest.fixture(scope="module")
def browser(app: dict[str, object], chromium: object) -> Iterator[object]:
    """The session's chromium (tests/browser/conftest.py; one Playwright per process), with patient waits."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)  # a busy machine: waiting is fine, the checks are on content
    try:
        yield chromium
    finally:
        expect.set_options(timeout=5_000)  # Playwright's default, for the other browser tests


def log_in(browser: object, url: str, email: str) -> object:
    """A fresh browser profile that logs in through the provider's form as ``email``."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.get_by_role("button", name="Log in").click()
    page.get_by_placeholder("sub").fill(email)  # the provider's authorization form
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{url}/**")
    expect(page.get_by_role("heading", level=1)).to_be_visible()  # the app's page, or its refusal
    return page


def wait_idle(page: object) -> None:
    """Until the script run has finished (the status widget is gone) for a moment."""
    quiet = 0
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while quiet < 3 and time.monotonic() < deadline:
        running = page.locator('[data-testid="stStatusWidget"]').count() > 0  # type: ignore[attr-defined]
        quiet = 0 if running else quiet + 1
        page.wait_for_timeout(250)  # type: ignore[attr-defined]


def nav_links(page: object) -> list[str]:
    """The page titles in the sidebar navigation (the last line of each link: an icon may come first)."""
    links = page.get_by_test_id("stSidebarNavLink").all_inner_texts()  # type: ignore[attr-defined]
    return [text.strip().splitlines()[-1] for text in links]


def audit_events(app: dict[str, object]) -> list[dict[str, object]]:
    path = Path(str(app["audit"]))
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_doctor_logs_in_and_sees_north_patients_only(app: dict[str, object], browser: object) -> None:
    from playwright.sync_api import expect

    url = str(app["url"])
    page = log_in(browser, url, "dr.north@clinic.example")
    expect(page.get_by_role("heading", name="Patient", exact=True, level=1)).to_be_visible()
    wait_idle(page)
    assert nav_links(page) == ["Patient", "Data"]
    expect(page.get_by_test_id("stSidebar")).to_contain_text("Dr North")
    # The patient picker offers North's patients only.
    page.get_by_test_id("stSelectbox").first.click()
    options = page.get_by_role("option").all_inner_texts()
    assert sorted(o.strip() for o in options) == ["N1", "N2"]
    page.keyboard.press("Escape")
    page.screenshot(path=str(ARTIFACTS / "screenshots" / "oidc_doctor.png"), full_page=True)
    # A link to the clinic page is refused: the page is not in this user's navigation.
    page.goto(f"{url}/clinic")
    wait_idle(page)
    expect(page.get_by_role("heading", name="Clinic", exact=True, level=1)).to_have_count(0)
    assert "S1" not in page.get_by_test_id("stMain").inner_text()
    page.context.close()
    events = [(e["event"], e["user"]) for e in audit_events(app)]
    assert ("login", "dr.north@clinic.example") in events
    assert ("open_patient", "dr.north@clinic.example") in events
    assert ("refused", "dr.north@clinic.example", "clinic") in [
        (e["event"], e["user"], e.get("page")) for e in audit_events(app)
    ]


def test_manager_logs_in_and_is_refused_patient_level_data(app: dict[str, object], browser: object) -> None:
    from playwright.sync_api import expect

    url = str(app["url"])
    page = log_in(browser, url, "boss.north@clinic.example")
    expect(page.get_by_role("heading", name="Clinic", exact=True, level=1)).to_be_visible()
    wait_idle(page)
    assert nav_links(page) == ["Clinic", "Outcomes", "Data"]
    page.get_by_test_id("stSidebarNavLink").filter(has_text="Data").click()
    expect(page.get_by_role("heading", name="Data", exact=True, level=1)).to_be_visible()
    wait_idle(page)
    main = page.get_by_test_id("stMain")
    expect(main).to_contain_text("patient_cycles.csv: not available")
    page.screenshot(path=str(ARTIFACTS / "screenshots" / "oidc_manager_data.png"), full_page=True)
    # An aggregate file downloads, and the download is in the audit trail.
    with page.expect_download() as download:
        page.get_by_test_id("stDownloadButton").filter(has_text="cohort_cycles.csv").click()
    assert download.value.suggested_filename == "cohort_cycles.csv"
    assert Path(download.value.path()).read_text().startswith("cycle,")
    page.goto(f"{url}/patient")
    wait_idle(page)
    expect(page.get_by_role("heading", name="Patient", exact=True, level=1)).to_have_count(0)
    page.context.close()
    exports = [e for e in audit_events(app) if e["event"] == "export"]
    assert [(e["user"], e["file"], e["kind"]) for e in exports] == [
        ("boss.north@clinic.example", "cohort_cycles.csv", "aggregate")
    ]


def test_a_stranger_is_refused(app: dict[str, object], browser: object) -> None:
    from playwright.sync_api import expect

    page = log_in(browser, str(app["url"]), "someone@elsewhere.example")
    expect(page.get_by_role("heading", name="No access", level=1)).to_be_visible()
    expect(page.get_by_test_id("stMain")).to_contain_text("someone@elsewhere.example")
    assert nav_links(page) == []
    page.context.close()
    assert ("refused", "someone@elsewhere.example") in [(e["event"], e["user"]) for e in audit_events(app)]


def test_an_unverified_address_is_refused(app: dict[str, object], browser: object) -> None:
    from playwright.sync_api import expect

    page = log_in(browser, str(app["url"]), IMPOSTOR)
    expect(page.get_by_role("heading", name="No access", level=1)).to_be_visible()
    expect(page.get_by_test_id("stMain")).to_contain_text("verified")
    assert nav_links(page) == []
    page.context.close()
    refused = [e for e in audit_events(app) if e["event"] == "refused" and "not verified" in e["reason"]]
    assert [e["user"] for e in refused] == ["dr.north@clinic.example"]
    assert refused[0]["role"] is None


def test_a_verified_look_alike_address_is_refused(app: dict[str, object], browser: object) -> None:
    from playwright.sync_api import expect

    page = log_in(browser, str(app["url"]), "boß.north@clinic.example")
    expect(page.get_by_role("heading", name="No access", level=1)).to_be_visible()
    assert nav_links(page) == []
    page.context.close()
    mine = [e for e in audit_events(app) if e["user"] == "boß.north@clinic.example"]
    assert [e["event"] for e in mine] == ["refused"]
    assert "look-alike" in mine[0]["reason"]
