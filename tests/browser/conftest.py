"""Fixtures of the real-browser tests: one ``streamlit run`` server and one Debian chromium per session.

The server runs the dashboard exactly as ``make run`` does (production ``.streamlit/config.toml``) on
a free port of 127.0.0.1, on the bundled sample data (or, in a checkout without it, on a small
synthetic cohort generated for the session). Playwright drives the system chromium through
``executable_path``, so no browser is ever downloaded. Everything is skipped with the reason when
chromium or the Playwright package is missing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT_DIR / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_SECONDS = 90


def chromium_path() -> str | None:
    if Path("/usr/bin/chromium").is_file():
        return "/usr/bin/chromium"
    return shutil.which("chromium")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def running_streamlit(
    port: int, env: Mapping[str, str], log_name: str, extra_args: Sequence[str] = ()
) -> Iterator[str]:
    """``streamlit run dashboard.py`` on 127.0.0.1:``port``; yields its URL once healthy, then stops it.

    The server's output goes to ``test-artifacts/<log_name>``, whose tail is shown if it never gets healthy.
    """
    url = f"http://127.0.0.1:{port}"
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / log_name
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ui.serve",  # as make run starts it: streamlit run dashboard.py, the code imported first
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
                *extra_args,
            ],
            cwd=PROJECT_DIR,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not _healthy(url):
            if server.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                pytest.fail(f"streamlit did not become healthy on {url}:\n{tail}")
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)


@pytest.fixture(scope="session")
def streamlit_servers() -> SimpleNamespace:
    """What a test module needs to run its own app server: ``free_port()`` and ``running(...)``."""
    return SimpleNamespace(free_port=free_port, running=running_streamlit, chromium_path=chromium_path)


@pytest.fixture(scope="session")
def browser_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """None when the bundled sample data exist (the app's default); else a generated cohort."""
    if (PROJECT_DIR / "sample_data" / "sessions.csv").is_file():
        return None
    folder = tmp_path_factory.mktemp("browser_data")
    subprocess.run(
        [sys.executable, "-m", "analytics.synth", "--patients", "60", "--seed", "7", "--out", str(folder)],
        cwd=PROJECT_DIR,
        check=True,
        capture_output=True,
    )
    return folder


@pytest.fixture(scope="session")
def app_url(browser_data_dir: Path | None) -> Iterator[str]:
    """The URL of a fresh ``streamlit run dashboard.py`` server, terminated after the session."""
    if chromium_path() is None:
        pytest.skip("chromium is not installed (/usr/bin/chromium); `make test` installs it with apt as root")
    pytest.importorskip("playwright.sync_api", reason="the playwright Python package is not installed")
    # The server must behave as in production: no pytest marker (which makes page errors raise).
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_CURRENT_TEST", "OUTCOMES_DATA_DIR")}
    if browser_data_dir is not None:
        env["OUTCOMES_DATA_DIR"] = str(browser_data_dir)
    with running_streamlit(free_port(), env, "streamlit-server.log") as url:
        yield url


@pytest.fixture(scope="session")
def chromium(app_url: str) -> Iterator[object]:
    """Debian's chromium under Playwright (the app server is started first, so a skip skips both)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
