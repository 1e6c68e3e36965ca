"""What the layout tests measure in the browser, shared by the Patient, Clinic, Outcomes, Data and Audit tests.

A plain module (imported as ``layout_checks``), like ``test_pages_browser``'s helpers. It measures what the
browser drew: the bounding boxes of every text of every visible Plotly chart (titles, tick labels, legend
entries, annotations, bar and marker texts); whether two texts of one chart overlap or one is cut off at the
chart's edge; whether anything on the page is wider than the screen; whether a card label is cut short with
an ellipsis; and whether the chart toolbar shows on a phone.
"""

from __future__ import annotations

import json
from pathlib import Path

from test_pages_browser import SCREENSHOTS, TIMEOUT_MS, assert_no_error_shown, wait_until_rendered

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
# Page-level width: the document and Streamlit's scrolling main area, and any visible text sticking out (but for
# the tab names of a tab bar, which scrolls sideways on its own, as Streamlit draws it, without moving the page).
PAGE_WIDTH = """() => {
    const main = document.querySelector('[data-testid="stMain"]');
    const wide = [...main.querySelectorAll('p, span, h1, h2, h3, label, li, button')]
        .filter(e => e.offsetParent !== null && e.textContent.trim())
        .filter(e => !e.closest('[role="tablist"]'))
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
EXPANDER_LABELS = """() => [...document.querySelectorAll('[data-testid="stExpander"] summary')]
    .map(s => s.textContent.trim())"""
CARD_TEXTS = """() => [...document.querySelectorAll('[data-testid="stMetric"]')].map(m => m.innerText.trim())"""
MAIN_HEIGHT = """() => Math.max(document.querySelector('[data-testid="stMain"]').scrollHeight,
    document.body.scrollHeight)"""


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


def open_page(chromium: object, address: str, width: int) -> object:
    """The page at ``address`` at this width, rendered, grown to its full height (charts re-lay out at that size)."""
    context = chromium.new_context(viewport={"width": width, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    page.goto(address, timeout=TIMEOUT_MS)
    wait_until_rendered(page)
    height = page.evaluate(MAIN_HEIGHT)
    page.set_viewport_size({"width": width, "height": min(int(height) + 80, 16_000)})
    wait_until_rendered(page)
    return page


def open_tab(page: object, section: str, width: int) -> None:
    """Click a tab (of a page whose tabs are built only when open), wait for the rerun that builds its charts, and
    grow the window to the page's new height."""
    page.get_by_role("tab", name=section, exact=True).click()
    page.wait_for_function(
        """name => [...document.querySelectorAll('[role="tabpanel"]')].some(panel => panel.offsetParent !== null
            && panel.getAttribute('aria-labelledby') && document.getElementById(panel.getAttribute('aria-labelledby'))
                ?.textContent.trim() === name && panel.querySelector('[data-testid="stElementContainer"]'))""",
        arg=section,
        timeout=TIMEOUT_MS,
    )
    wait_until_rendered(page)
    height = page.evaluate(MAIN_HEIGHT)
    page.set_viewport_size({"width": width, "height": min(int(height) + 80, 16_000)})
    wait_until_rendered(page)


def screenshot(page: object, name: str) -> Path:
    path = SCREENSHOTS / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def chart_problems(page: object, width: int) -> tuple[list[dict], dict[str, dict[str, list]]]:
    """The visible charts, and per chart title its overlapping and cut-off texts (empty when all is well)."""
    charts = page.evaluate(CHART_TEXTS)
    problems = {}
    for chart in charts:
        assert chart["right"] - chart["left"] <= width, chart["chart"]
        overlaps, cut = overlapping(chart["texts"]), clipped(chart)
        if overlaps or cut:
            problems[chart["chart"]] = {"overlapping": overlaps, "cut off": cut}
    return charts, problems


def assert_laid_out(page: object, width: int) -> list[dict]:
    """Every check above on the page as shown; returns the visible charts."""
    assert_no_error_shown(page)
    charts, problems = chart_problems(page, width)
    assert not problems, "\n" + json.dumps(problems, indent=1, ensure_ascii=False)
    size = page.evaluate(PAGE_WIDTH)
    assert size["document"] <= size["viewport"], size
    assert size["main"] <= size["mainClient"], size
    assert not size["wide"], size["wide"]
    assert not page.evaluate(CUT_LABELS)
    if width == PHONE:
        assert page.evaluate(VISIBLE_MODEBARS) == 0  # a tap would open it over the chart's title
    return charts
