"""Shared fixtures for the analytics tests: hand-written datasets on disk, loaded and analysed.

Tests write each input file as the exact CSV text they give (``write_dataset``), so they control
blank lines, quoting and therefore the physical line numbers that the rejection report must give.
Helpers are fixtures (not imports from this module) so that they work under any pytest import mode.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent
if str(PROJECT_DIR) not in sys.path:  # the tests import the package from the repo, not an install
    sys.path.insert(0, str(PROJECT_DIR))

from analytics.definitions.config import AnalysisConfig  # noqa: E402
from analytics.definitions.pipeline import Analysis, analyse  # noqa: E402
from analytics.ingest.load import Dataset, load_dataset  # noqa: E402

_MADE: list[Path] = []  # the temporary folders this process made (pytest-xdist's workers inherit the controller's)


def pytest_configure(config: pytest.Config) -> None:
    """Tests (and the app servers they start) write audit events to a temporary log, not the repo's ..."""
    import os
    import tempfile

    if "OUTCOMES_AUDIT_LOG" not in os.environ:
        _MADE.append(Path(tempfile.mkdtemp(prefix="audit_")))
        os.environ["OUTCOMES_AUDIT_LOG"] = str(_MADE[-1] / "audit.jsonl")
    # ... and keep their analysis store in a temporary folder, not the repo's.
    if "OUTCOMES_STORE_DIR" not in os.environ:
        _MADE.append(Path(tempfile.mkdtemp(prefix="store_")))
        os.environ["OUTCOMES_STORE_DIR"] = str(_MADE[-1])


def pytest_unconfigure(config: pytest.Config) -> None:
    """The temporary audit log and store go when the run that made them ends (after its workers)."""
    import shutil

    for folder in _MADE:
        shutil.rmtree(folder, ignore_errors=True)


INPUT_STEMS = ("sessions", "diary", "patients", "injections", "adverse_events", "questionnaires")

SESSIONS_HEADER = "patient_id,session_date,total_units,n_injections,injector_id,protocol"
DIARY_HEADER = "patient_id,date,headache_hours,migraine,severity,acute_medication"


def write_dataset(
    tmp_path: Path,
    sessions: str | None = None,
    diary: str | None = None,
    patients: str | None = None,
    injections: str | None = None,
    adverse_events: str | None = None,
    questionnaires: str | None = None,
    extra: dict[str, str | bytes] | None = None,
) -> Path:
    """Write each given file byte for byte (UTF-8, no newline translation); None means absent.

    ``extra`` maps further file names (e.g. ``diary.parquet``) to text or bytes. Returns the
    folder, a fresh sub-folder of ``tmp_path`` so that one test can write several datasets.
    """
    folder = tmp_path / f"data{len(list(tmp_path.glob('data*')))}"
    folder.mkdir()
    given = dict(
        sessions=sessions,
        diary=diary,
        patients=patients,
        injections=injections,
        adverse_events=adverse_events,
        questionnaires=questionnaires,
    )
    for stem, text in given.items():
        if text is not None:
            (folder / f"{stem}.csv").write_bytes(text.encode("utf-8"))
    for name, content in (extra or {}).items():
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return folder


def rejection_rows(dataset: Dataset) -> list[tuple[str, int, str, str]]:
    """The rejection report as sorted (file, line, patient_id, reason) tuples."""
    frame = dataset.rejected
    return sorted(
        (str(f), int(line), str(pid), str(reason))
        for f, line, pid, reason in zip(frame["file"], frame["line"], frame["patient_id"], frame["reason"], strict=True)
    )


def csv_text(header: str, rows: Iterable[str]) -> str:
    """A CSV file from a header and row lines, newline-terminated."""
    return "\n".join([header, *rows]) + "\n"


def day(d0: date | str, offset: int = 0) -> str:
    """The ISO date ``offset`` days after ``d0``."""
    start = date.fromisoformat(d0) if isinstance(d0, str) else d0
    return (start + timedelta(days=offset)).isoformat()


def diary_rows(
    patient_id: str,
    first: str,
    n_days: int,
    headache: Callable[[int], float] | float = 0.0,
    migraine: Callable[[int], str] | str = "",
    acute: Callable[[int], str] | str = "",
    skip: Callable[[int], bool] | None = None,
) -> list[str]:
    """Diary lines for consecutive days from ``first``; callables get the day index 0..n_days-1."""

    def value(v: object, i: int) -> object:
        return v(i) if callable(v) else v

    return [
        f"{patient_id},{day(first, i)},{value(headache, i)},{value(migraine, i)},,{value(acute, i)}"
        for i in range(n_days)
        if not (skip and skip(i))
    ]


@pytest.fixture(name="write_dataset")
def write_dataset_fixture() -> Callable[..., Path]:
    return write_dataset


@pytest.fixture(name="load_files")
def load_files_fixture(tmp_path: Path) -> Callable[..., Dataset]:
    """Write the given files (as ``write_dataset``) into the test's tmp_path and load them."""

    def load(**files: object) -> Dataset:
        return load_dataset(write_dataset(tmp_path, **files))  # type: ignore[arg-type]

    return load


@pytest.fixture(name="analyse_files")
def analyse_files_fixture(load_files: Callable[..., Dataset]) -> Callable[..., Analysis]:
    """Write, load and analyse; keyword ``config`` is the AnalysisConfig (default: SPEC defaults)."""

    def run(config: AnalysisConfig | None = None, **files: object) -> Analysis:
        return analyse(load_files(**files), config or AnalysisConfig())

    return run


@pytest.fixture(name="rejections")
def rejections_fixture() -> Callable[[Dataset], list[tuple[str, int, str, str]]]:
    return rejection_rows


@pytest.fixture(name="helpers")
def helpers_fixture() -> SimpleNamespace:
    """Small text builders: csv_text, day, diary_rows and the two core headers."""
    return SimpleNamespace(
        csv_text=csv_text,
        day=day,
        diary_rows=diary_rows,
        SESSIONS_HEADER=SESSIONS_HEADER,
        DIARY_HEADER=DIARY_HEADER,
    )
