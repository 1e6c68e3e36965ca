"""The Patient page laid out on a phone (390 px) and on a laptop (1280 px), in Debian's chromium.

The server cannot know the screen's width, so the page sends some charts in two layouts and a static
media query shows the one that fits (``ui/render.py`` PAGE_STYLE). This test measures what the browser
drew: the bounding boxes of every text of every visible Plotly chart (titles, tick labels, legend
entries, annotations, bar and marker texts), and asserts that no two texts of one chart overlap, that
none is cut off at the chart's edge, that nothing on the page is wider than the screen, that no card
label is cut short with an ellipsis, and that the chart toolbar is hidden on the phone. It saves a
full-page screenshot of each case to ``test-artifacts/screenshots/`` for a person to look at.
Patients: P00005 (the README's), P00142 (13 sessions: the most cycles) and P00022 (a late re-injection).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_pages_browser import SCREENSHOTS, TIMEOUT_MS, assert_no_error_shown, wait_until_rendered

pytestmark = pytest.mark.browser

PHONE, LAPTOP = 390, 1280
OVERLAP_PX = 2  # texts may touch; they may not share more than a sliver this wide and high
CLIP_PX = 2
# Every text Plotly drew, per visible chart, with its box; hover labels are not drawn while nothing is hovered.
CHART_TEXTS = """() => [...document.querySelectorAll('.js-plotly-plot')]
    .filter(chart => chart.offsetParent !== null)
    .map(chart => {
        const box = chart.getBoundingClientRect();
        const texts = [...chart.querySelectorAll('.main-svg text')]
            .filter(t => t.textContent.trim() && !t.closest('.hoverlayer'))
            .filter(t => getComputedStyle(t).display !== 'none' && getComputedStyle(t).visibility !== 'hidden')
            .map(t => ({text: t.textContent.trim(), ...t.getBoundingClientRect().toJSON()}))
            .filter(t => t.width > 0 && t.height > 0);
        const title = chart.querySelector('.gtitle');
        return {chart: title ? title.textContent : '(untitled)', left: box.left, right: box.right,
                top: box.top, bottom: box.bottom, texts};
    })"""
# Page-level width: the document and Streamlit's scrolling main area, and any visible text sticking out.
PAGE_WIDTH = """() => {
    const main = document.querySelector('[data-testid="stMain"]');
    const wide = [...main.querySelectorAll('p, span, h1, h2, h3, label, li, button')]
        .filter(e => e.offsetParent !== null && e.textContent.trim())
        .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
        .map(e => e.textContent.trim().slice(0, 60));
    return {viewport: window.innerWidth, document: document.documentElement.scrollWidth,
            main: main.scrollWidth, mainClient: main.clientWidth, wide};
}"""
# A card label cut short: its text is wider than the box that shows it (CSS ellipsis).
CUT_LABELS = """() => [...document.querySelectorAll('[data-testid="stMetricLabel"]')]
    .flatMap(label => [...label.querySelectorAll('*')].filter(e => e.scrollWidth > e.clientWidth + 1
        && getComputedStyle(e).textOverflow === 'ellipsis').map(() => label.textContent.trim()))"""
VISIBLE_MODEBARS = """() => [...document.querySelectorAll('.js-plotly-plot .modebar-container')]
    .filter(m => m.closest('.js-plotly-plot').offsetParent !== null && getComputedStyle(m).display !== 'none').length"""


def overlapping(texts: list[dict]) -> list[tuple[str, str]]:
    """Pairs of texts whose boxes share more than OVERLAP_PX in both directions."""
    pairs = []
    for i, a in enumerate(texts):
        for b in texts[i + 1 :]:
            across = min(a["right"], b["right"]) - max(a["left"], b["left"])
            down = min(a["bottom"], b["bottom"]) - max(a["top"], b["top"])
            if across > OVERLAP_PX and down > OVERLAP_PX:
                pairs.append((a["text"], b["text"]))
    return pairs


def clipped(chart: dict) -> list[str]:
    """Texts that run past the chart's own box (Plotly cuts them off there)."""
    return [
        t["text"]
        for t in chart["texts"]
        if t["left"] < chart["left"] - CLIP_PX
        or t["right"] > chart["right"] + CLIP_PX
        or t["top"] < chart["top"] - CLIP_PX
        or t["bottom"] > chart["bottom"] + CLIP_PX
    ]


def open_patient(chromium: object, app_url: str, patient: str, width: int) -> object:
    """The Patient page at this width, rendered, grown to its full height (charts re-lay out at the new size)."""
    context = chromium.new_context(viewport={"width": width, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    page.goto(f"{app_url}/patient?patient={patient}", timeout=TIMEOUT_MS)
    wait_until_rendered(page)
    height = page.evaluate(
        "() => Math.max(document.querySelector('[data-testid=\"stMain\"]').scrollHeight, document.body.scrollHeight)"
    )
    page.set_viewport_size({"width": width, "height": min(int(height) + 80, 16_000)})
    wait_until_rendered(page)
    return page


@pytest.mark.parametrize("width", [PHONE, LAPTOP])
@pytest.mark.parametrize("patient", ["P00005", "P00142", "P00022"])
def test_patient_page_texts_do_not_overlap_or_overflow(chromium: object, app_url: str, patient: str, width: int):
    page = open_patient(chromium, app_url, patient, width)
    try:
        assert_no_error_shown(page)
        assert page.inner_text('[data-testid="stMain"] h1') == "Patient"
        path = SCREENSHOTS / f"patient_{patient}_{width}px.png"
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)

        charts = page.evaluate(CHART_TEXTS)
        assert len(charts) == 7, [c["chart"] for c in charts]  # one layout of each chart is shown
        problems = {}
        for chart in charts:
            assert chart["right"] - chart["left"] <= width, chart["chart"]
            overlaps, cut = overlapping(chart["texts"]), clipped(chart)
            if overlaps or cut:
                problems[chart["chart"]] = {"overlapping": overlaps, "cut off": cut}
        assert not problems, "\n" + json.dumps(problems, indent=1, ensure_ascii=False)

        size = page.evaluate(PAGE_WIDTH)
        assert size["document"] <= size["viewport"], size
        assert size["main"] <= size["mainClient"], size
        assert not size["wide"], size["wide"]
        assert not page.evaluate(CUT_LABELS)
        if width == PHONE:
            assert page.evaluate(VISIBLE_MODEBARS) == 0  # a tap would open it over the chart's title
    finally:
        page.context.close()
