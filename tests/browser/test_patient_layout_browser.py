"""The Patient page laid out on a phone (390 px) and on a laptop (1280 px), in Debian's chromium.

The checks themselves are in ``layout_checks`` (shared with the Clinic, Outcomes, Data and Audit pages' test).
The server cannot know the screen's width, so the page sends some charts in two layouts and a static
media query shows the one that fits (``ui/render.py`` PAGE_STYLE). This test measures what the browser
drew: the bounding boxes of every text of every visible Plotly chart (titles, tick labels, legend
entries, annotations, bar and marker texts), and asserts that no two texts of one chart overlap, that
none is cut off at the chart's edge, that nothing on the page is wider than the screen, that no card
label is cut short with an ellipsis, and that the chart toolbar is hidden on the phone. It saves a
full-page screenshot of each case to ``test-artifacts/screenshots/`` for a person to look at.
Patients: P00005 (the README's), P00142 (13 sessions: the most cycles) and P00022 (a late re-injection). The
charts sit in four tabs, of which only the open one is built: each tab is opened in turn and checked.
"""

from __future__ import annotations

import pytest
from layout_checks import LAPTOP, PHONE, assert_laid_out, open_page, open_tab, screenshot

from pages.patient import SECTIONS

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width", [PHONE, LAPTOP])
@pytest.mark.parametrize("patient", ["P00005", "P00142", "P00022"])
def test_patient_page_texts_do_not_overlap_or_overflow(chromium: object, app_url: str, patient: str, width: int):
    page = open_page(chromium, f"{app_url}/patient?patient={patient}", width)
    try:
        assert page.inner_text('[data-testid="stMain"] h1') == "Patient"
        screenshot(page, f"patient_{patient}_{width}px")
        shown = {}
        for section in SECTIONS:
            if section != SECTIONS[0]:
                open_tab(page, section, width)
                screenshot(page, f"patient_{patient}_{width}px_{section.split(',')[0].replace(' ', '_').lower()}")
            shown[section] = [c["chart"] for c in assert_laid_out(page, width)]
        # One layout of each chart is shown, two per tab but the one injection-site map.
        assert [len(titles) for titles in shown.values()] == [2, 2, 2, 1], shown
    finally:
        page.context.close()
