"""The conformance case of SPEC §4: the export on the shared dataset, checked by the shared checker.

``tests/conformance/`` is a copy of ``../shared/conformance`` (data, expected tables, check.py) so
that a clone without ``../shared`` runs the case too. When ``../shared/conformance`` exists beside
the repository, the same check runs against it as well, so a changed shared case is noticed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
COPY = Path(__file__).resolve().parent / "conformance"
SHARED = PROJECT_DIR.parent / "shared" / "conformance"

CASES = [pytest.param(COPY, id="copy")]
if SHARED.is_dir():
    CASES.append(pytest.param(SHARED, id="shared"))


@pytest.mark.parametrize("case", CASES)
def test_export_matches_the_expected_tables(case: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    # Run as the case's README says: no --as-of, so the cut-off is derived from the data too.
    export = subprocess.run(
        [sys.executable, "-m", "analytics", "export", "--data", str(case / "data"), "--out", str(out)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert export.returncode == 0, export.stderr
    check = subprocess.run(
        [sys.executable, str(case / "check.py"), str(case / "expected"), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = check.stdout.strip().splitlines()
    assert lines, check.stderr
    assert lines[-1].startswith("0 mismatches in "), check.stdout
    assert check.returncode == 0
    # The case is not empty: the checker compared thousands of values.
    assert int(lines[-1].split()[-2]) > 1000
    # The derived cut-off (latest accepted session or diary date) is the expected one.
    expected_manifest = json.loads((case / "expected" / "manifest.json").read_text())
    if "as_of" in expected_manifest:
        assert json.loads((out / "manifest.json").read_text())["as_of"] == expected_manifest["as_of"]


def test_the_copy_is_complete() -> None:
    for name in (
        "data/sessions.csv",
        "data/diary.csv",
        "expected/patient_cycles.csv",
        "expected/cohort_cycles.csv",
        "expected/patient_status.csv",
        "expected/rejected_rows.csv",
        "expected/manifest.json",
        "check.py",
    ):
        assert (COPY / name).is_file(), name
