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
    at.switch_page(page)
    for name, value in (query or {}).items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, at.exception
    return at
