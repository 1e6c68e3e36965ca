"""Real-browser tests: each page of ``streamlit run dashboard.py`` in Debian's chromium.

For each page the test opens its URL, waits until the script has finished (the "Running…" status
widget is gone and stays gone) and every Plotly chart has drawn its SVG, checks that no exception
box and no "something went wrong" message is shown, and saves a full-page screenshot to
``test-artifacts/screenshots/<page>.png`` for a person to look at. Two more tests check the
shareable URL (an analysis parameter in the query string is applied and survives a page switch)
and the upload of a ZIP, which AppTest cannot drive: a refused one gives a message, a good one loads.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

PAGES = ("patient", "clinic", "outcomes", "data")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
TIMEOUT_MS = 60_000
UNEXPECTED_ERROR_TEXT = "Something went wrong while drawing this page"
# What the page looks like right now: still running, placeholders (skeletons) left, charts drawn.
PAGE_STATE = """() => {
    const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')];
    return {
        running: document.querySelector('[data-testid="stStatusWidget"]') !== null,
        skeletons: document.querySelectorAll('[data-testid="stSkeleton"]').length,
        charts: charts.length,
        drawn: charts.filter(chart => chart.querySelector('.js-plotly-plot .main-svg')).length,
    };
}"""
CONTENT_HEIGHT = """() => Math.max(...['[data-testid="stMain"]', '[data-testid="stAppViewContainer"]', 'body']
    .map(selector => document.querySelector(selector)).filter(Boolean).map(element => element.scrollHeight))"""
QUIET_LOOKS = 4
LOOK_INTERVAL_MS = 250


def wait_until_rendered(page: object) -> dict[str, object]:
    """Wait until the app has finished running and every chart has drawn, and it stays that way.

    Streamlit draws in several passes (a rerun can follow a run; charts and tables show skeletons
    until their code has loaded), so the page must look finished on several consecutive looks,
    with the same number of charts each time. Returns the final state (number of charts).
    """
    page.wait_for_selector('[data-testid="stApp"]', timeout=TIMEOUT_MS)
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=TIMEOUT_MS)
    previous, quiet = None, 0
    for _ in range(TIMEOUT_MS // LOOK_INTERVAL_MS):
        state = page.evaluate(PAGE_STATE)
        finished = not state["running"] and state["skeletons"] == 0 and state["drawn"] == state["charts"]
        quiet = quiet + 1 if finished and state == previous else 0
        if quiet >= QUIET_LOOKS:
            return state
        previous = state
        page.wait_for_timeout(LOOK_INTERVAL_MS)
    raise AssertionError(f"the page did not finish rendering: {previous}")


def full_page_screenshot(page: object, path: Path) -> None:
    """Streamlit scrolls inside its main container, so grow the window to the content first."""
    height = min(int(page.evaluate(CONTENT_HEIGHT)) + 80, 16_000)
    page.set_viewport_size({"width": 1400, "height": max(height, 900)})
    wait_until_rendered(page)  # charts re-lay out at the new size
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)


def assert_no_error_shown(page: object) -> None:
    exceptions = page.query_selector_all('[data-testid="stException"]')
    assert not exceptions, f"exception shown: {exceptions[0].inner_text()[:500]}"
    main_text = page.inner_text('[data-testid="stMain"]')
    assert UNEXPECTED_ERROR_TEXT not in main_text, main_text[:1000]


@pytest.fixture
def browser_page(chromium: object) -> object:
    context = chromium.new_context(viewport={"width": 1400, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    yield page
    context.close()


@pytest.mark.parametrize("page_name", PAGES)
def test_page_renders_in_chromium_without_error(browser_page: object, app_url: str, page_name: str) -> None:
    browser_page.goto(f"{app_url}/{page_name}")
    state = wait_until_rendered(browser_page)
    assert_no_error_shown(browser_page)
    if page_name == "data":
        assert state["charts"] >= 1  # the diary completeness chart
    # The shared sidebar ran (with a pages/ folder Streamlit may run a page file alone on a first visit).
    assert "Data source" in browser_page.inner_text('[data-testid="stSidebar"]')
    full_page_screenshot(browser_page, SCREENSHOTS / f"{page_name}.png")


def test_parameter_in_the_url_is_applied_and_survives_a_page_switch(browser_page: object, app_url: str) -> None:
    browser_page.goto(f"{app_url}/data?min_completeness=0.8")
    wait_until_rendered(browser_page)
    banner = browser_page.inner_text('[data-testid="stMain"]')
    assert "min_completeness = 0.8 (default 0.7)" in banner
    assert "not evaluable below 80%" in browser_page.inner_text('[data-testid="stPlotlyChart"]')

    browser_page.click('[data-testid="stSidebarNav"] a[href$="/clinic"]')
    browser_page.wait_for_url("**/clinic*", timeout=TIMEOUT_MS)
    wait_until_rendered(browser_page)
    assert_no_error_shown(browser_page)
    assert "min_completeness = 0.8 (default 0.7)" in browser_page.inner_text('[data-testid="stMain"]')
    assert "min_completeness=0.8" in browser_page.url


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_uploading_a_zip_refuses_identifiers_and_loads_good_data(browser_page: object, app_url: str) -> None:
    conformance = Path(__file__).resolve().parents[1] / "conformance" / "data"
    if not conformance.is_dir():
        pytest.skip("tests/conformance/data is missing")
    good = {f"export/{p.name}": p.read_bytes() for p in sorted(conformance.glob("*.csv"))}
    named = dict(good, **{"export/diary.csv": b"patient_id,date,headache_hours,Email\nR03000,2024-01-02,5,a@b.c\n"})

    browser_page.goto(f"{app_url}/data")
    wait_until_rendered(browser_page)
    browser_page.locator('[data-testid="stSidebar"] label').filter(has_text="Upload files").click()
    uploader = browser_page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    uploader.set_input_files({"name": "named.zip", "mimeType": "application/zip", "buffer": zip_of(named)})
    browser_page.wait_for_selector(
        '[data-testid="stAlert"]:has-text("looks like a direct identifier")', timeout=TIMEOUT_MS
    )
    wait_until_rendered(browser_page)
    assert_no_error_shown(browser_page)
    main_text = browser_page.inner_text('[data-testid="stMain"]')
    assert "diary.csv: column 'Email' looks like a direct identifier" in main_text

    browser_page.get_by_role("button", name="Remove named.zip").click()  # a second ZIP would be refused
    uploader.set_input_files({"name": "clinic.zip", "mimeType": "application/zip", "buffer": zip_of(good)})
    browser_page.wait_for_selector('[data-testid="stSidebar"] :text("Uploaded: clinic.zip")', timeout=TIMEOUT_MS)
    wait_until_rendered(browser_page)
    assert_no_error_shown(browser_page)
    sidebar = browser_page.inner_text('[data-testid="stSidebar"]')
    assert "30 patients with sessions" in sidebar
    assert "looks like a direct identifier" not in browser_page.inner_text('[data-testid="stMain"]')
