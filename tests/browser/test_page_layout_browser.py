"""The Clinic, Outcomes, Data and Audit pages laid out on a phone (390 px) and a laptop (1280 px), in chromium.

The same measurements as the Patient page's test (``layout_checks``): no two texts of a visible Plotly chart
overlap, none is cut off at the chart's edge, nothing is wider than the screen, no card label is cut short,
no chart toolbar on a phone. And the polish a screenshot showed once: no expander titled with a Python module
name ("Definitions of analytics.clinic"), no "−0.0" on a card. The app runs in local single-user mode, whose
user is an administrator, so the Audit page opens too (the Audit page at 1280 px only, for now). Screenshots
go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import re

import pytest
from layout_checks import CARD_TEXTS, EXPANDER_LABELS, LAPTOP, PHONE, assert_laid_out, open_page, open_tab, screenshot

from pages import clinic, outcomes

pytestmark = pytest.mark.browser

TITLES = {"clinic": "Clinic", "outcomes": "Outcomes", "data": "Data", "audit": "Audit trail"}
# The Audit page is for an administrator at a desk: it is checked on a laptop only.
CASES = [
    (name, width)
    for name in TITLES
    for width in (PHONE, LAPTOP)
    if width == LAPTOP or name in ("clinic", "outcomes", "data")
]
TABS = {"clinic": clinic.SECTIONS, "outcomes": tuple(outcomes.TABS)}
NEGATIVE_ZERO = re.compile(r"[-−]0(\.0+)?(?![.\d])")


@pytest.mark.parametrize(("page_name", "width"), CASES)
def test_page_texts_do_not_overlap_or_overflow(chromium: object, app_url: str, page_name: str, width: int):
    page = open_page(chromium, f"{app_url}/{page_name}", width)
    try:
        assert page.inner_text('[data-testid="stMain"] h1') == TITLES[page_name]
        screenshot(page, f"{page_name}_{width}px")
        assert_laid_out(page, width)
        expanders = page.evaluate(EXPANDER_LABELS)
        assert not [label for label in expanders if "analytics." in label], expanders
        cards = page.evaluate(CARD_TEXTS)
        assert not [card for card in cards if NEGATIVE_ZERO.search(card)], cards
        # Only the open tab is built: each of the others is opened in turn and measured too.
        for label in TABS.get(page_name, ())[1:]:
            open_tab(page, label, width)
            screenshot(page, f"{page_name}_{width}px_{label.split(' ')[0].lower()}")
            assert_laid_out(page, width)
    finally:
        page.context.close()
