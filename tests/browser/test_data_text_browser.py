"""Data-derived text is shown as text in a real browser: Markdown in a value makes no browser fetch anything.

The attack of the security review: a ``discontinuation_reason`` (and a clinic name) such as
``![b](http://127.0.0.1:PORT/x.png)`` made every viewer's browser fetch that URL, and links and LaTeX
rendered too. Here a listener on loopback counts the requests while chromium opens the patient whose
row carries the payloads; no request may arrive, and the payload must be on the page as typed.
"""

from __future__ import annotations

import http.server
import os
import shutil
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.browser

PROJECT_DIR = Path(__file__).resolve().parents[2]
PATIENT = "P00005"


HITS: list[str] = []  # the paths the listener was asked for


class _Counter(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        HITS.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_markdown_in_the_data_fetches_nothing_and_shows_as_typed(tmp_path: Path, streamlit_servers, chromium) -> None:
    # ``chromium`` is the session's browser (one Playwright per process); this test starts its own app server.
    listener = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    port = listener.server_address[1]
    threading.Thread(target=listener.serve_forever, daemon=True).start()
    payload = f"![b](http://127.0.0.1:{port}/reason.png) [click](http://127.0.0.1:{port}/link) $x^2$ **bold**"
    clinic = f"North ![c](http://127.0.0.1:{port}/clinic.png)"
    data = tmp_path / "data"
    shutil.copytree(PROJECT_DIR / "sample_data", data, ignore=shutil.ignore_patterns("*.md"))
    patients = pd.read_csv(data / "patients.csv", dtype=str, keep_default_na=False)
    row = patients["patient_id"] == PATIENT
    patients.loc[row, "discontinued_on"] = "2025-11-01"
    patients.loc[row, "discontinuation_reason"] = payload
    patients.loc[row, "clinic"] = clinic
    patients.to_csv(data / "patients.csv", index=False)

    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env["OUTCOMES_DATA_DIR"] = str(data)
    try:
        with streamlit_servers.running(streamlit_servers.free_port(), env, "data-text-server.log") as url:
            page = chromium.new_page(viewport={"width": 1400, "height": 1000})
            try:
                page.goto(f"{url}/patient?patient={PATIENT}")
                page.get_by_text("**bold**", exact=False).first.wait_for(timeout=120_000)
                time.sleep(3)  # time for any image or stylesheet the page might request
                body = page.inner_text("body")
            finally:
                page.close()
    finally:
        listener.shutdown()
    assert HITS == [], f"the browser fetched {HITS}"
    assert f"![b](http://127.0.0.1:{port}/reason.png)" in body  # shown as typed
    assert "$x^2$" in body
