"""A filtered export from the Outcomes page equals ``python -m analytics export`` with the same filter.

The page's download calls ``cohort_filter.filtered_export`` with the filter its widgets make; the
command line takes the filter as flags or as the ``cohort_filter.json`` the page offers. Here both
are run on the same data and their files compared byte for byte, except the manifest's exported_at.
The last test reads the filter and the command line off the page itself (AppTest, a link with a
filter in its query parameters) and runs that command.
"""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.cli import main
from analytics.definitions.config import SAMPLE_DATA_DIR, AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.ingest.load import Dataset, load_dataset
from analytics.output.export import export_files
from analytics.synth import generate_cohort, write_cohort
from analytics.views.cohort_filter import (
    FILTER_FILE_NAME,
    CohortFilter,
    filter_manifest,
    filtered_export,
    patient_attributes,
    restrict,
)

APP = Path(__file__).resolve().parent.parent / "dashboard.py"
FILTER = CohortFilter(sex=["F"], clinic=["North", "South"], min_cycles=2, baseline_mhd_min=16, medication_overuse=True)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("export_filter_data")
    write_cohort(generate_cohort(120, seed=3), folder)
    return folder


@pytest.fixture(scope="module")
def dataset(data_dir) -> Dataset:
    return load_dataset(data_dir)


def read_folder(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def comparable(files: dict[str, bytes]) -> dict[str, object]:
    """The files with manifest.json parsed and its exported_at removed (the one field that must differ)."""
    out: dict[str, object] = dict(files)
    manifest = json.loads(files["manifest.json"])
    assert manifest.pop("exported_at")
    out["manifest.json"] = manifest
    return out


def page_export(
    dataset: Dataset, cohort_filter: CohortFilter, config: AnalysisConfig | None = None
) -> dict[str, bytes]:
    """What the Outcomes page's download holds for this filter (the call its button makes)."""
    analysis = analyse(dataset, config or AnalysisConfig())
    return filtered_export(analysis, dataset, cohort_filter, attributes=patient_attributes(analysis, dataset))


def cli_export(folder: Path, out: Path, *arguments: str) -> dict[str, bytes]:
    assert main(["export", "--data", str(folder), "--out", str(out), *arguments]) == 0
    return read_folder(out)


def test_flags_give_the_page_export(data_dir, dataset, tmp_path) -> None:
    page = page_export(dataset, FILTER)
    cli = cli_export(data_dir, tmp_path / "cli", *FILTER.cli_arguments())
    assert comparable(cli) == comparable(page)
    assert comparable(page)["manifest.json"]["cohort_filter"] == FILTER.to_dict()


def test_the_filter_file_gives_the_page_export_with_parameters(data_dir, dataset, tmp_path) -> None:
    config = AnalysisConfig(min_completeness=0.8, cycle_days=90)
    page = page_export(dataset, FILTER, config)
    (tmp_path / FILTER_FILE_NAME).write_text(FILTER.to_json())
    cli = cli_export(
        data_dir,
        tmp_path / "cli",
        "--min-completeness",
        "0.8",
        "--cycle-days",
        "90",
        "--filter-file",
        str(tmp_path / FILTER_FILE_NAME),
    )
    assert comparable(cli) == comparable(page)
    # ... and a manifest.json of that export, used as the filter file, reproduces it again.
    again = cli_export(
        data_dir,
        tmp_path / "again",
        "--min-completeness",
        "0.8",
        "--cycle-days",
        "90",
        "--filter-file",
        str(tmp_path / "cli" / "manifest.json"),
    )
    assert comparable(again) == comparable(page)


def test_the_page_export_is_export_files_on_the_filtered_analysis(dataset) -> None:
    analysis = analyse(dataset)
    selected = FILTER.apply(analysis, dataset)
    treated = analysis.patient_cycles["patient_id"].nunique()
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    direct = export_files(
        restrict(analysis, selected), dataset, moment, extra_manifest=filter_manifest(FILTER, len(selected), treated)
    )
    assert filtered_export(analysis, dataset, FILTER, moment) == direct
    patients = {line.split(",")[0] for line in direct["patient_cycles.csv"].decode().splitlines()[1:]}
    assert patients == selected and 0 < len(selected) < treated


@pytest.mark.skipif(not (SAMPLE_DATA_DIR / "sessions.csv").exists(), reason="no bundled sample data")
def test_the_command_shown_on_the_page_reproduces_its_download(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("OUTCOMES_DATA_DIR", raising=False)
    at = AppTest.from_file(str(APP), default_timeout=90)
    at.switch_page("pages/outcomes.py")
    at.query_params["clinic"] = ["East"]
    at.query_params["medication_overuse"] = "false"
    at.query_params["outcomes_tab"] = "Export"
    at.run()
    assert not at.exception, at.exception
    shown = {c.language: c.value for c in at.code}
    page_filter = CohortFilter.from_json(shown["json"])
    assert page_filter == CohortFilter(clinic=["East"], medication_overuse=False)
    commands = [c.value for c in at.code if c.language == "bash"]
    assert any("--filter-file cohort_filter.json" in c for c in commands)
    (tmp_path / FILTER_FILE_NAME).write_text(shown["json"])
    expected = comparable(page_export(load_dataset(SAMPLE_DATA_DIR), page_filter))
    for command in commands:
        words = shlex.split(command.replace(FILTER_FILE_NAME, str(tmp_path / FILTER_FILE_NAME)))
        assert words[:4] == ["python", "-m", "analytics", "export"]
        words[words.index("--data") + 1] = str(SAMPLE_DATA_DIR)
        words[words.index("--out") + 1] = str(tmp_path / f"out{commands.index(command)}")
        assert main(words[3:]) == 0
        cli = read_folder(Path(words[words.index("--out") + 1]))
        assert comparable(cli) == expected
