"""The README's screenshots, taken from the bundled sample data: ``make screenshots`` (or run this file).

Starts ``streamlit run dashboard.py`` headless on a free port of 127.0.0.1 (production settings, sample
data), drives Debian's chromium through Playwright (``executable_path``, no browser download) and writes
PNGs to ``docs/screenshots/``:

- ``patient_1280.png``: the Patient page of P00005 on a laptop, from the header to the end of the Diary tab
  (calendar and rolling headache days), the tab the page opens on;
- ``patient_390.png``: the same page's tabs on a phone (390 px), the Diary tab's charts in their phone layout;
- ``continue_panel.png``: the "Should we continue?" panel of the first patient it applies to;
- ``summary_pdf.png``: page 1 of P00005's clinic-visit PDF (``python -m analytics summary``), rendered by
  pdftoppm (Debian's poppler-utils).

Needs the test environment (Playwright) and chromium; exits with a message when something is missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]
OUT_DIR = PROJECT_DIR / "docs" / "screenshots"
PATIENT = "P00005"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
TIMEOUT_MS = 90_000
# The page is drawn when Streamlit has stopped running and every chart has its SVG (as tests/browser wait).
DRAWN = """() => !document.querySelector('[data-testid="stStatusWidget"]')
    && document.querySelectorAll('[data-testid="stSkeleton"]').length === 0
    && [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
        .every(chart => chart.querySelector('.js-plotly-plot .main-svg'))"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def _dashboard() -> Iterator[str]:
    """The dashboard on the sample data, as ``make run`` serves it; yields its URL, stops it afterwards."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "OUTCOMES_DATA_DIR"}
    command = [sys.executable, "-m", "ui.serve", "--server.port", str(port)]
    command += ["--server.address", "127.0.0.1", "--server.headless", "true"]
    server = subprocess.Popen(command, cwd=PROJECT_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"the dashboard did not start on {url}")
            time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=15)


def _settled(page: object) -> None:
    """Wait until the page is drawn and stays drawn for a second (Streamlit draws in several passes)."""
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=TIMEOUT_MS)
    quiet = 0
    while quiet < 4:
        quiet = quiet + 1 if page.evaluate(DRAWN) else 0
        page.wait_for_timeout(250)


def _open(browser: object, url: str, width: int, height: int) -> object:
    page = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=1).new_page()
    page.goto(url, timeout=TIMEOUT_MS)
    _settled(page)
    return page


def _below(page: object, selector: str) -> float:
    """The page offset (px) of the first element matching ``selector``."""
    return float(page.locator(selector).first.evaluate("e => e.getBoundingClientRect().top + window.scrollY"))


def _end(page: object, selector: str) -> float:
    """The page offset (px) of the bottom of the first element matching ``selector``."""
    return float(page.locator(selector).first.evaluate("e => e.getBoundingClientRect().bottom + window.scrollY"))


def _continue_patient() -> str:
    """The first sample patient for whom "Should we continue?" applies (vectorised, as the page computes it)."""
    sys.path.insert(0, str(PROJECT_DIR))
    from analytics.definitions.pipeline import analyse
    from analytics.ingest.load import load_dataset
    from analytics.views.continuation import continuation_all_patients

    table = continuation_all_patients(analyse(load_dataset(PROJECT_DIR / "sample_data")))
    return str(table.loc[table["applies"], "patient_id"].iloc[0])


def page_screenshots(url: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        # A laptop: the header, the status and the Diary tab: calendar and rolling chart (a tall window: all drawn).
        page = _open(browser, f"{url}/patient?patient={PATIENT}", 1280, 3200)
        top = _below(page, '[data-testid="stMain"] h1') - 24
        bottom = _end(page, '[data-testid="stTabs"]') + 16
        page.screenshot(path=OUT_DIR / "patient_1280.png", clip=dict(x=0, y=top, width=1280, height=bottom - top))
        page.context.close()
        # A phone: the tabs and the Diary tab's charts, in their phone layout.
        page = _open(browser, f"{url}/patient?patient={PATIENT}", 390, 7000)
        top = _below(page, '[data-testid="stTabs"]') - 8
        bottom = _end(page, '[data-testid="stTabs"]') + 16
        page.screenshot(path=OUT_DIR / "patient_390.png", clip=dict(x=0, y=top, width=390, height=bottom - top))
        page.context.close()
        # The "Should we continue?" panel, as an element.
        page = _open(browser, f"{url}/patient?patient={_continue_patient()}", 1280, 3200)
        page.locator(".st-key-continue_panel").screenshot(path=OUT_DIR / "continue_panel.png")
        page.context.close()
        browser.close()


def pdf_screenshot() -> None:
    """Page 1 of the clinic-visit PDF, as the command line writes it, at 110 dpi."""
    if shutil.which("pdftoppm") is None:
        sys.exit("pdftoppm is missing: apt-get install poppler-utils")
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "analytics",
                "summary",
                "--data",
                "sample_data",
                "--out",
                folder,
                "--patient",
                PATIENT,
            ],
            cwd=PROJECT_DIR,
            check=True,
            capture_output=True,
        )
        pdf = Path(folder) / f"{PATIENT}_doctor.pdf"
        subprocess.run(
            [
                "pdftoppm",
                "-png",
                "-r",
                "110",
                "-f",
                "1",
                "-l",
                "1",
                "-singlefile",
                str(pdf),
                str(OUT_DIR / "summary_pdf"),
            ],
            check=True,
        )


def _shrink(path: Path) -> None:
    """256 colours are plenty for a page of flat colours and text, at a third of the bytes (README images)."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def main() -> None:
    if not Path(CHROMIUM).is_file():
        sys.exit(f"chromium is missing ({CHROMIUM}): apt-get install chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        sys.exit("the playwright package is missing: make test installs the test environment")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    pdf_screenshot()
    with _dashboard() as url:
        page_screenshots(url)
    for path in sorted(OUT_DIR.glob("*.png")):
        _shrink(path)
        print(f"{path.relative_to(PROJECT_DIR)}: {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
