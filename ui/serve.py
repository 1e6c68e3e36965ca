"""The dashboard's server with its code imported before the first page: ``python -m ui.serve [options]``.

``streamlit run dashboard.py`` imports the dashboard's code (pandas, pyarrow, Plotly, pandera, SciPy, the
analysis and the pages) when the first page is asked for, inside that page's run: after every restart the
first user waited for it (3.7 s of the sample's first Patient page on a 2-core machine). Here the server's
process imports it first (``preload``), then runs Streamlit's own command line as ``streamlit run
dashboard.py`` with the given options (``--server.port 8501`` ...): the same server, the same settings
(``.streamlit/config.toml``, ``STREAMLIT_*`` variables), whose pages find their modules already imported.
``make run`` starts it this way; a plain ``streamlit run dashboard.py`` works as well, with the slower first page.
"""

from __future__ import annotations

import importlib
import logging
import runpy
import sys
import time
from collections.abc import Sequence
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "dashboard.py"
PRELOADED = ("ui.state", "ui.auth", "pages.patient", "pages.clinic", "pages.outcomes", "pages.data", "pages.audit")
"""What dashboard.py imports (its pages import the analysis, the figures and the libraries they use)."""


def preload() -> float:
    """Import the dashboard's modules (each module's own warm-up included); the seconds it took."""
    started = time.perf_counter()
    # Streamlit warns that a cached function made before its runtime exists is checked against an in-memory
    # store: only the check is; the cache itself is the runtime's, looked up at each call.
    import streamlit  # noqa: F401  (its loggers set their levels when made: made first, then quietened)

    cache_log = logging.getLogger("streamlit.runtime.caching.cache_data_api")
    level = cache_log.level
    cache_log.setLevel(logging.ERROR)
    try:
        for module in PRELOADED:
            importlib.import_module(module)
    finally:
        cache_log.setLevel(level)
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> None:
    """``streamlit run dashboard.py [argv]`` after ``preload()``."""
    print("Loading the dashboard's code ...", flush=True)
    print(f"Loaded in {preload():.1f} s; starting the server.", flush=True)
    # ``python -m streamlit run dashboard.py ...``: Streamlit's public command line, in this process.
    sys.argv = ["streamlit", "run", str(APP), *(sys.argv[1:] if argv is None else argv)]
    runpy.run_module("streamlit", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
