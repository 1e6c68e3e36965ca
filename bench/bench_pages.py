"""Time to first render of the patient page and of a patient switch (issue #3), cold and cached.

Runs the real app with Streamlit's AppTest on the bundled sample data (or ``--data DIR``):
cold = a fresh process, empty caches (load + analysis + patient-level tables + the page);
cached = the same page again in a new session; switch = choosing another patient (cached).
AppTest runs the scripts in-process without a browser, so these are server-side times; the
browser adds drawing time for the Plotly charts. Targets: first render < 3 s, switch < 0.5 s.

    .venv/bin/python bench/bench_pages.py [--data DIR] [--switches 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="data folder (default: the bundled sample data)")
    parser.add_argument("--switches", type=int, default=10)
    args = parser.parse_args()
    if args.data:
        os.environ["OUTCOMES_DATA_DIR"] = str(args.data.resolve())
    from streamlit.testing.v1 import AppTest

    def session() -> AppTest:
        app = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=300)
        if args.data:
            app.session_state["data_source"] = "Clinic data folder"
        return app

    started = time.perf_counter()
    at = session()
    at.switch_page("pages/patient.py")
    at.run()
    cold = time.perf_counter() - started
    if at.exception:
        raise SystemExit(f"the page raised: {at.exception[0].message}")

    started = time.perf_counter()
    second = session()
    second.switch_page("pages/patient.py")
    second.run()
    cached = time.perf_counter() - started

    picker = second.selectbox(key="patient")
    options = list(picker.options)[: args.switches + 1]
    switches = []
    for patient_id in options[1:]:
        started = time.perf_counter()
        second.selectbox(key="patient").set_value(patient_id).run()
        switches.append(time.perf_counter() - started)
    print(f"patient page, first render (cold caches): {cold:.2f} s   (target < 3 s)")
    print(f"patient page, first render (cached):      {cached:.2f} s")
    print(
        f"patient switch (cached), {len(switches)} switches: median {statistics.median(switches):.2f} s, "
        f"max {max(switches):.2f} s   (target < 0.5 s)"
    )


if __name__ == "__main__":
    main()
