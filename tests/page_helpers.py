"""Opening the dashboard on one page under Streamlit's AppTest, shared by the page tests.

A plain module with a name of its own (imported as ``page_helpers``), not conftest: two conftest
modules exist under tests/, and importing from either is fragile under pytest-xdist.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

DASHBOARD = Path(__file__).resolve().parent.parent / "dashboard.py"
DATA_DIR_VARIABLE = "OUTCOMES_DATA_DIR"


def switch_page(at: AppTest, page: str) -> AppTest:
    """``at.switch_page`` to the dashboard's page ``page`` (a file of pages/, e.g. "pages/clinic.py") for the next run.

    Raises ``ValueError`` when the last run did not offer that page (one the user's role may not open),
    as ``AppTest.switch_page`` does. The dashboard's pages are functions (``st.Page(clinic.render,
    url_path="clinic")``), and Streamlit 1.67's ``AppTest.switch_page`` matches a file against the script
    paths of the pages ``st.navigation`` registered, which function pages do not have: after the first
    run it would refuse every page. A page's url_path is its file's name, so the registered url_paths are
    checked here and the switch is made as before the first run (by the file's name). AppTest offers no
    public view of the registered pages, hence its ``_registered_pages``.
    """
    url_path = Path(page).stem
    registered = at._registered_pages
    if registered and all(info.get("url_pathname") != url_path for info in registered.values()):
        known = sorted(str(info.get("url_pathname")) for info in registered.values())
        raise ValueError(f"Could not find a navigation page for {page!r}. Known pages: {known}.")
    at._registered_pages = {}
    try:
        return at.switch_page(page)
    finally:
        at._registered_pages = registered


def open_app_page(
    monkeypatch: pytest.MonkeyPatch,
    page: str,
    folder: Path | None = None,
    query: Mapping[str, object] | None = None,
    timeout: float = 90,
) -> AppTest:
    """The app run once on ``page`` (e.g. "pages/clinic.py"), on ``folder`` or else the bundled sample data.

    ``query`` holds URL query parameters (a value or a list of values). The run must raise nothing.
    """
    if folder is None:
        monkeypatch.delenv(DATA_DIR_VARIABLE, raising=False)  # the bundled sample data is the default source
    else:
        monkeypatch.setenv(DATA_DIR_VARIABLE, str(folder))
    at = AppTest.from_file(str(DASHBOARD), default_timeout=timeout)
    switch_page(at, page)
    for name, value in (query or {}).items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, at.exception
    return at


def open_page_tab(at: AppTest, label: str, key: str) -> AppTest:
    """The page again with its tab ``label`` open, of the tabs whose key is ``key`` (AppTest cannot click a tab; the
    key holds the open one). The pages' tabs are lazy: the rerun draws that tab only."""
    at.session_state[key] = label
    at.run()
    assert not at.exception, at.exception
    return at


def chart_keys(at: AppTest) -> set[str]:
    """The keys of the Plotly charts the last run drew."""
    return {c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")}


MISSING_WORDS = ("None", "nan", "NaN", "NaT", "<NA>")


def missing_cells(at: AppTest) -> list[tuple[int, str, int]]:
    """(table, column, count) for every cell of a shown table that is empty or reads like Python's missing
    value ("None", "nan", "NaT", "<NA>"): the data grid prints an empty cell as "None"."""
    found = []
    for index, element in enumerate(at.dataframe):
        frame = element.value
        for column in frame.columns:
            values = frame[column]
            bad = values.isna() | values.astype(str).str.strip().isin(MISSING_WORDS)
            if bad.any():
                found.append((index, str(column), int(bad.sum())))
    return found
