"""Many sessions at once on a warm server: how long each page takes, on the server and in a real browser.

Starts the dashboard as ``make run`` does (``python -m ui.serve``: ``streamlit run dashboard.py`` with the code
imported first; headless, production ``.streamlit/config.toml``, a free port of 127.0.0.1) on the sample data or a
generated cohort.

Server side (the issue's target): ``--sessions`` clients speak Streamlit's own WebSocket protocol (the
browser's BackMsg / ForwardMsg protobufs, no browser): after one session has opened every page (the
server's caches are built), they connect at once and each opens the Patient page of a patient no session
has opened before, then Clinic, Outcomes and Data, as a user clicks through the sidebar. A page's time runs
from the request to the server's "script finished": the server's whole work for it, queued behind the other
sessions' pages on the same two cores.

In the browser (``--browser``, context: the browser shares the two cores with the server) it drives
Debian's chromium (/usr/bin/chromium) with Playwright's async API: one browser, one context (a separate
user, with its own cookies and Streamlit session) per session, on a fresh server. First one session opens
every page once, which builds the server's caches (the "fresh server" row: the first visit of each page,
in page order); then ``--sessions`` sessions at once each open /patient?patient=<a different patient>,
/clinic, /outcomes and /data in turn. A page counts as shown when its title (h1) and its first chart have
been drawn; as finished when the script has also stopped running and every chart on it is drawn. The
browser and the server share the machine, so these times include the browser's own drawing of ten pages.

    .venv/bin/python bench/bench_sessions.py [--sessions 10] [--patients 100000] [--before DIR] [--browser]

``--patients N`` generates a cohort of N patients once with ``python -m analytics.synth --patients N --seed 1``
into bench/out/ (git-ignored; the 10,000-patient one is bench_dashboard.py's) and reuses it; without it the
bundled sample data are used. ``--before DIR`` also measures another checkout in the same run (after this
one, with its own server). Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync", "--no-first-run"]
PAGES = ("patient", "clinic", "outcomes", "data")
TARGET_SECONDS = 3.0
FINISHED_SUCCESSFULLY = 0  # ForwardMsg.ScriptFinishedStatus
# Shown: the page's title and its first chart drawn. Finished: no "Running…" status, every chart drawn.
SHOWN = """() => {
    const title = document.querySelector('[data-testid="stMain"] h1');
    const chart = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot .main-svg');
    return title !== null && chart !== null;
}"""
FINISHED = """() => {
    if (document.querySelector('[data-testid="stStatusWidget"]') !== null) return false;
    if (document.querySelectorAll('[data-testid="stSkeleton"]').length) return false;
    const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')];
    return charts.length > 0 && charts.every(chart => chart.querySelector('.js-plotly-plot .main-svg'));
}"""


def cohort(patients: int) -> Path:
    """The generated cohort of ``patients`` patients (seed 1), made once into bench/out/."""
    label = f"{patients // 1000}k" if patients % 1000 == 0 else str(patients)
    folder = OUT / f"cohort{label}_seed1"
    if not (folder / "diary.csv").exists():
        subprocess.run(
            [sys.executable, "-m", "analytics.synth", "--patients", str(patients), "--seed", "1", "--out", str(folder)],
            cwd=ROOT,
            check=True,
        )
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def server(root: Path, data: Path, log_name: str) -> Iterator[str]:
    """The dashboard server of the checkout ``root`` on ``data``; yields its URL once healthy."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"} | {"OUTCOMES_DATA_DIR": str(data)}
    OUT.mkdir(parents=True, exist_ok=True)
    log_path = OUT / log_name
    with open(log_path, "wb") as log:
        # As make run starts it (ui/serve.py: the code imported before the first page); a checkout from before
        # ui/serve.py existed as it was started then.
        launcher = (
            ["-m", "ui.serve"] if (root / "ui" / "serve.py").is_file() else ["-m", "streamlit", "run", "dashboard.py"]
        )
        command = [sys.executable, *launcher, "--server.headless", "true"]
        process = subprocess.Popen(
            [*command, "--server.port", str(port), "--server.address", "127.0.0.1"],
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while not healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"streamlit did not start on {url}:\n{log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def patient_ids(data: Path, count: int) -> list[str]:
    """``count`` different treated patients, spread over the sessions file."""
    with open(data / "sessions.csv", newline="") as handle:
        ids = sorted({row["patient_id"] for row in csv.DictReader(handle)})
    step = max(1, len(ids) // (count + 1))
    return [ids[(i + 1) * step % len(ids)] for i in range(count)]


async def open_page(context: object, url: str, timeout_s: float) -> tuple[float, float]:
    """Open ``url`` in a new tab of ``context``; seconds until it was shown and until it was finished."""
    page = await context.new_page()  # type: ignore[attr-defined]
    try:
        started = time.perf_counter()
        await page.goto(url, wait_until="commit", timeout=timeout_s * 1000)
        await page.wait_for_function(SHOWN, polling=50, timeout=timeout_s * 1000)
        shown = time.perf_counter() - started
        await page.wait_for_function(FINISHED, polling=50, timeout=timeout_s * 1000)
        finished = time.perf_counter() - started
        if await page.query_selector('[data-testid="stException"]') is not None:
            raise SystemExit(f"{url} showed an exception")
        return shown, finished
    finally:
        await page.close()


async def one_session(browser: object, url: str, patient: str, timeout_s: float) -> dict[str, tuple[float, float]]:
    """One user: a browser context of its own opening each page in turn."""
    context = await browser.new_context(viewport={"width": 1400, "height": 900})  # type: ignore[attr-defined]
    try:
        times = {}
        for name in PAGES:
            address = f"{url}/{name}" + (f"?patient={patient}" if name == "patient" else "")
            times[name] = await open_page(context, address, timeout_s)
        return times
    finally:
        await context.close()


async def measure(url: str, data: Path, sessions: int, timeout_s: float) -> dict[str, object]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            warm_up = await one_session(browser, url, patient_ids(data, 1)[0], timeout_s)
            started = time.perf_counter()
            results = await asyncio.gather(
                *(one_session(browser, url, patient, timeout_s) for patient in patient_ids(data, sessions))
            )
            wall = time.perf_counter() - started
        finally:
            await browser.close()
    return {"warm_up": warm_up, "sessions": results, "wall": wall}


async def server_page(socket: object, page: str, query: str = "") -> float:
    """Ask the server for ``page`` on an open session; seconds until its script finished (with what it drew)."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    request = BackMsg()
    request.rerun_script.query_string = query
    request.rerun_script.page_name = page
    started = time.perf_counter()
    await socket.send(request.SerializeToString())  # type: ignore[attr-defined]
    drawn = False
    while True:
        message = ForwardMsg()
        message.ParseFromString(await socket.recv())  # type: ignore[attr-defined]
        kind = message.WhichOneof("type")
        if kind == "delta" and message.delta.WhichOneof("type") == "new_element":
            drawn = True
            if message.delta.new_element.WhichOneof("type") == "exception":
                raise SystemExit(f"{page} showed an exception: {message.delta.new_element.exception.message}")
        if kind == "script_finished" and message.script_finished == FINISHED_SUCCESSFULLY and drawn:
            return time.perf_counter() - started


async def server_session(url: str, patient: str) -> dict[str, float]:
    """One user over Streamlit's WebSocket: the Patient page of ``patient``, then each other page in turn."""
    from websockets.asyncio.client import connect

    address = url.replace("http://", "ws://") + "/_stcore/stream"
    async with connect(address, subprotocols=["streamlit"], max_size=None) as socket:  # type: ignore[list-item]
        times = {"patient": await server_page(socket, "patient", f"patient={patient}")}
        for page in PAGES[1:]:
            times[page] = await server_page(socket, page)
        return times


async def measure_server(url: str, data: Path, sessions: int) -> dict[str, object]:
    ids = patient_ids(data, sessions + 1)
    warm_up = await server_session(url, ids[0])  # builds the server's caches: the rest measure a warm server
    started = time.perf_counter()
    results = await asyncio.gather(*(server_session(url, patient) for patient in ids[1:]))
    return {"warm_up": warm_up, "sessions": results, "wall": time.perf_counter() - started}


def report_server(name: str, figures: dict[str, object], sessions: int) -> None:
    warm_up: dict[str, float] = figures["warm_up"]  # type: ignore[assignment]
    results: list[dict[str, float]] = figures["sessions"]  # type: ignore[assignment]
    print(f"\n{name}: first visit of each page on a fresh server, one session, server side (s)")
    print("  " + ", ".join(f"{page} {warm_up[page]:.2f}" for page in PAGES))
    print(f"{name}: {sessions} sessions at once on the warm server, server side ({figures['wall']:.1f} s in all)")
    print(f"  {'page':10}{'median':>10}{'max':>10}  target")
    for page in PAGES:
        times = [r[page] for r in results]
        print(f"  {page:10}{statistics.median(times):>10.2f}{max(times):>10.2f}  ≤ {TARGET_SECONDS:g} s")


def report(name: str, figures: dict[str, object], sessions: int) -> None:
    warm_up: dict[str, tuple[float, float]] = figures["warm_up"]  # type: ignore[assignment]
    results: list[dict[str, tuple[float, float]]] = figures["sessions"]  # type: ignore[assignment]
    print(f"\n{name}: first visit of each page on a fresh server, one session (s): shown / finished")
    print("  " + ", ".join(f"{page} {warm_up[page][0]:.2f} / {warm_up[page][1]:.2f}" for page in PAGES))
    print(f"{name}: {sessions} sessions at once on the warm server, each opening every page ({figures['wall']:.1f} s)")
    print(f"  {'page':10}{'shown median':>14}{'shown max':>11}{'finished median':>17}{'finished max':>14}  target")
    for page in PAGES:
        shown = [r[page][0] for r in results]
        done = [r[page][1] for r in results]
        print(
            f"  {page:10}{statistics.median(shown):>14.2f}{max(shown):>11.2f}{statistics.median(done):>17.2f}"
            f"{max(done):>14.2f}  ≤ {TARGET_SECONDS:g} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10, help="sessions at once (default 10)")
    parser.add_argument("--patients", type=int, help="a generated cohort of this many patients (default: sample)")
    parser.add_argument("--before", type=Path, help="another checkout of the project to measure after this one")
    parser.add_argument("--timeout", type=float, default=600, help="seconds a page may take (default 600)")
    parser.add_argument("--browser", action="store_true", help="also in chromium (the browser shares the cores)")
    args = parser.parse_args()
    if args.browser and not Path(CHROMIUM).is_file():
        raise SystemExit(f"{CHROMIUM} is missing (Debian's chromium: apt-get install chromium)")
    data = cohort(args.patients) if args.patients else ROOT / "sample_data"
    trees = {"now": ROOT, **({"before": args.before.resolve()} if args.before else {})}
    for name, root in trees.items():
        with server(root, data, f"bench_sessions_{name}.log") as url:
            report_server(f"{data.name} / {name}", asyncio.run(measure_server(url, data, args.sessions)), args.sessions)
        if args.browser:  # a fresh server, so that the browser's sessions open pages the server has not drawn
            with server(root, data, f"bench_sessions_browser_{name}.log") as url:
                figures = asyncio.run(measure(url, data, args.sessions, args.timeout))
            report(f"{data.name} / {name} / browser", figures, args.sessions)


if __name__ == "__main__":
    main()
