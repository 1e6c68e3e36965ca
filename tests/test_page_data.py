"""The Data page: row reconciliation, rejected rows, diary completeness and the exports.

The page's exports must be byte for byte what ``python -m analytics export`` writes for the same
data and parameters (the manifest apart from its ``exported_at`` time); the test captures the
bytes behind the page's download buttons and runs the command line on the same folder. The data
are the conformance dataset (tests/conformance) with a few hand-written bad rows appended, whose
rejection reasons and physical line numbers are known.
"""

from __future__ import annotations

import io
import json
import shlex
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from page_helpers import open_app_page
from streamlit.elements.widgets.button import ButtonMixin
from streamlit.testing.v1 import AppTest

from analytics.cli import main as cli
from analytics.definitions.config import AnalysisConfig
from analytics.figures.data_quality import build_completeness_figure
from analytics.ingest.load import Dataset, FileReport
from analytics.output.export import EXPORT_FILES
from analytics.views import quality

PROJECT_DIR = Path(__file__).resolve().parent.parent
CONFORMANCE = PROJECT_DIR / "tests" / "conformance" / "data"
# Appended to the conformance files (CRLF, like them); the line numbers follow their last line.
BAD_DIARY = ["R03011,2025/03/04,6,true,3,true", "R03011,2025-03-05,30,true,3,true", "ZZ999,2025-03-06,2,false,0,false"]
BAD_SESSIONS = ["R03011,2025-13-01,155,31,INJ1"]


def physical_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n")


@pytest.fixture
def data_with_rejections(tmp_path: Path) -> tuple[Path, list[tuple[str, int, str, str]], dict[str, int]]:
    """The conformance data plus bad rows; returns the folder, the expected rejections and rows read."""
    if not CONFORMANCE.is_dir():
        pytest.skip("tests/conformance/data is missing")
    folder = tmp_path / "clinic"
    shutil.copytree(CONFORMANCE, folder)
    expected, rows_read = [], {}
    for name, bad, reasons in (
        ("diary.csv", BAD_DIARY, ["invalid date", "headache_hours out of range", "unknown patient"]),
        ("sessions.csv", BAD_SESSIONS, ["invalid date"]),
    ):
        path = folder / name
        last = physical_lines(path)  # the header is line 1, so the last data line has this number
        with open(path, "ab") as handle:
            handle.write("".join(line + "\r\n" for line in bad).encode())
        for i, (line, reason) in enumerate(zip(bad, reasons, strict=True)):
            expected.append((name, last + 1 + i, line.split(",")[0], reason))
    for path in folder.iterdir():
        rows_read[path.name] = physical_lines(path) - 1
    return folder, sorted(expected), rows_read


def run_data_page(folder: Path, monkeypatch: pytest.MonkeyPatch, query: dict[str, str] | None = None) -> AppTest:
    return open_app_page(monkeypatch, "pages/data.py", folder, query, timeout=120)


def frame_with_columns(at: AppTest, columns: list[str]) -> pd.DataFrame:
    return next(d.value for d in at.dataframe if list(d.value.columns) == columns)


def test_files_rejected_rows_and_reconciliation_are_shown(data_with_rejections, monkeypatch) -> None:
    folder, expected, rows_read = data_with_rejections
    at = run_data_page(folder, monkeypatch)
    files = frame_with_columns(at, quality.RECONCILIATION_COLUMNS)
    assert dict(zip(files["file"], files["rows_read"], strict=True)) == rows_read
    assert files.set_index("file").loc["diary.csv", ["rows_accepted", "rows_rejected"]].tolist() == [
        rows_read["diary.csv"] - 3,
        3,
    ]
    assert files["reconciles"].all()
    total = sum(rows_read.values())
    assert f"{total:,} rows read = {total - 4:,} accepted + 4 rejected" in at.success[0].value

    rejected = frame_with_columns(at, ["file", "line", "patient_id", "reason", "column", "value"])
    shown = rejected[["file", "line", "patient_id", "reason"]].astype({"line": int}).itertuples(index=False)
    assert sorted(map(tuple, shown)) == expected
    by_reason = frame_with_columns(at, ["file", "reason", "rows"])
    assert by_reason.values.tolist() == [  # most frequent first, then by file and reason
        ["diary.csv", "headache_hours out of range", 1],
        ["diary.csv", "invalid date", 1],
        ["diary.csv", "unknown patient", 1],
        ["sessions.csv", "invalid date", 1],
    ]
    sidebar_warning = " ".join(w.value for w in at.sidebar.warning)
    assert "4 rows were rejected and are not used (diary.csv: 3, sessions.csv: 1)" in sidebar_warning


def capture_downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """File name -> data (bytes or the callable that makes them) of every download button drawn."""
    captured: dict[str, object] = {}
    original = ButtonMixin.download_button

    def download_button(self, label, data, file_name=None, *args, **kwargs):
        captured[file_name] = data
        return original(self, label, data, file_name, *args, **kwargs)

    monkeypatch.setattr(ButtonMixin, "download_button", download_button)
    return captured


def as_bytes(data: object) -> bytes:
    data = data() if callable(data) else data
    return data.encode() if isinstance(data, str) else bytes(data)


def without_time(manifest: bytes) -> dict[str, object]:
    content = json.loads(manifest)
    assert content.pop("exported_at")
    return content


@pytest.mark.parametrize(
    ("query", "flags"),
    [
        ({}, []),
        (
            {"min_completeness": "0.8", "headache_min_hours": "3"},
            ["--headache-min-hours", "3", "--min-completeness", "0.8"],
        ),
    ],
)
def test_the_page_exports_are_the_bytes_of_the_command_line(
    data_with_rejections, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, query: dict[str, str], flags: list[str]
) -> None:
    folder = data_with_rejections[0]
    captured = capture_downloads(monkeypatch)
    at = run_data_page(folder, monkeypatch, query)
    page = {name: as_bytes(captured[name]) for name in EXPORT_FILES if name in captured}

    # The command the page shows, run as it says (with our own output folder).
    shown = shlex.split(next(c.value for c in at.code if "analytics export" in c.value))
    assert shown == ["python", "-m", "analytics", "export", "--data", str(folder), "--out", "OUT_DIR", *flags]
    out = tmp_path / "cli_export"
    assert cli([*shown[3:6], "--out", str(out), *shown[8:]]) == 0
    command_line = {name: (out / name).read_bytes() for name in EXPORT_FILES if (out / name).exists()}
    assert set(page) == set(command_line)
    for name in ("patient_cycles.csv", "cohort_cycles.csv", "patient_status.csv", "rejected_rows.csv"):
        assert page[name] == command_line[name], name
    assert without_time(page["manifest.json"]) == without_time(command_line["manifest.json"])
    parameters = json.loads(page["manifest.json"])["parameters"]
    assert parameters["min_completeness"] == float(query.get("min_completeness", 0.7))

    as_of = json.loads(page["manifest.json"])["as_of"]
    with zipfile.ZipFile(io.BytesIO(as_bytes(captured[f"outcomes_export_{as_of}.zip"]))) as archive:
        assert archive.namelist() == list(command_line)
        zipped = {name: archive.read(name) for name in command_line}
    assert {k: v for k, v in zipped.items() if k != "manifest.json"} == {
        k: v for k, v in page.items() if k != "manifest.json"
    }
    assert without_time(zipped["manifest.json"]) == without_time(page["manifest.json"])
    assert "Data dictionary" in [s.value for s in at.subheader]


def test_the_suppression_switch_exports_aggregates_only_as_the_command_line_with_min_cell(
    data_with_rejections, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = data_with_rejections[0]
    captured = capture_downloads(monkeypatch)
    at = run_data_page(folder, monkeypatch, {})
    at.toggle(key="export_suppress").set_value(True).run()
    at.number_input(key="export_min_cell").set_value(5).run()
    assert not at.exception
    shown = shlex.split(next(c.value for c in at.code if "analytics export" in c.value))
    assert shown[-2:] == ["--min-cell", "5"]
    out = tmp_path / "cli_suppressed"
    assert cli([*shown[3:6], "--out", str(out), *shown[8:]]) == 0
    # The aggregate files are the command line's bytes; no patient-level file is offered (labels below).
    page = {name: as_bytes(captured[name]) for name in ("cohort_cycles.csv", "rejected_counts.csv", "manifest.json")}
    assert sorted(p.name for p in out.iterdir()) == ["cohort_cycles.csv", "manifest.json", "rejected_counts.csv"]
    for name in ("cohort_cycles.csv", "rejected_counts.csv"):
        assert page[name] == (out / name).read_bytes(), name
    assert without_time(page["manifest.json"]) == without_time((out / "manifest.json").read_bytes())
    assert json.loads(page["manifest.json"])["min_cell"] == 5
    labels = [b.label for b in at.get("download_button")]
    assert not any("patient_cycles" in label or "rejected_rows" in label for label in labels)


def test_completeness_bins_count_each_window_once_on_hand_computed_edges() -> None:
    table = pd.DataFrame(
        {
            "patient_id": ["A", "A", "A", "B", "B", "C", "C"],
            "cycle": [0, 1, 2, 0, 1, 0, 1],
            # 21/30 = 0.7 exactly belongs to [70%, 75%); 1.0 to the last, closed bin; NaN is not binned.
            "completeness": [0.0, 0.049, 21 / 30, 0.05, 1.0, 0.699, np.nan],
        }
    )
    bins = quality.completeness_bins(table)
    assert len(bins) == 40  # 20 bins x (baseline, treatment)
    counted = bins[bins["windows"] > 0]
    percent = (counted["bin_low"] * 100).round().astype(int)
    assert sorted(zip(percent, counted["window"], counted["windows"], strict=True)) == [
        (0, quality.BASELINE_WINDOW, 1),
        (0, quality.TREATMENT_WINDOW, 1),
        (5, quality.BASELINE_WINDOW, 1),
        (65, quality.BASELINE_WINDOW, 1),
        (70, quality.TREATMENT_WINDOW, 1),
        (95, quality.TREATMENT_WINDOW, 1),
    ]
    summary = quality.completeness_summary(table, AnalysisConfig())
    assert (summary.windows, summary.patients, summary.baseline_windows, summary.treatment_windows) == (6, 3, 3, 4)
    assert summary.below_threshold == 4  # 0.0, 0.049, 0.05, 0.699; 0.7 is evaluable
    assert summary.median == pytest.approx(np.median([0.0, 0.049, 21 / 30, 0.05, 1.0, 0.699]))


def test_reconciliation_flags_a_file_whose_counts_do_not_add_up() -> None:
    rejected = pd.DataFrame(
        {
            "file": ["diary.csv", "diary.csv", "lost.csv"],
            "line": [2, 3, 9],
            "patient_id": ["P1"] * 3,
            "reason": ["invalid date"] * 3,
            "column": [""] * 3,
            "value": [""] * 3,
        }
    )
    dataset = Dataset(
        tables={},
        rejected=rejected,
        files=[FileReport("sessions.csv", "x", 10, 10, 0), FileReport("diary.csv", "y", 10, 7, 2)],
    )
    table = quality.file_reconciliation(dataset).set_index("file")
    assert table.loc["sessions.csv", "reconciles"]
    assert not table.loc["diary.csv", "reconciles"]  # 10 read != 7 + 2
    assert table.loc["diary.csv", "rejected_rows_listed"] == 2
    assert quality.unreported_rejections(dataset) == 1
    assert quality.rejection_summary(dataset).iloc[0].tolist() == ["diary.csv", "invalid date", 2]


def test_completeness_figure_draws_the_bins_the_threshold_and_the_n() -> None:
    table = pd.DataFrame({"patient_id": ["A", "A", "B"], "cycle": [0, 1, 0], "completeness": [0.5, 0.9, 0.95]})
    fig = build_completeness_figure(quality.completeness_bins(table), min_completeness=0.8)
    assert isinstance(fig, go.Figure)
    assert [t.type for t in fig.data] == ["bar", "bar"]
    assert [t.name for t in fig.data] == ["baseline (cycle 0) (n = 2)", "treatment cycles (1, 2, …) (n = 1)"]
    assert sum(sum(t.y) for t in fig.data) == 3
    assert "n = 3 windows" in fig.layout.title.text
    assert fig.layout.xaxis.title.text == "Days with a diary entry in the window (%)"
    assert fig.layout.yaxis.title.text == "Patient-cycle windows (n)"
    assert fig.layout.barmode == "stack"
    assert any(shape.x0 == 80 and shape.x1 == 80 for shape in fig.layout.shapes)  # the threshold line
    assert fig.layout.annotations[0].text.strip() == "not evaluable below 80%"
    baseline = fig.data[0]
    assert list(np.asarray(baseline.y)[np.asarray(baseline.x) == 52.5]) == [1]  # 0.5 falls in [50%, 55%)


def test_completeness_figure_has_a_phone_layout_with_the_same_bars() -> None:
    """On a phone (390 px) the title is wrapped onto short lines, the legend sits below the plot and the
    axis titles are shorter; the bars, the n and the threshold are those of the full figure."""
    table = pd.DataFrame({"patient_id": ["A", "A", "B"], "cycle": [0, 1, 0], "completeness": [0.5, 0.9, 0.95]})
    bins = quality.completeness_bins(table)
    full = build_completeness_figure(bins, min_completeness=0.8)
    phone = build_completeness_figure(bins, min_completeness=0.8, compact=True)
    assert [(t.name, list(t.x), list(t.y)) for t in phone.data] == [(t.name, list(t.x), list(t.y)) for t in full.data]
    lines = phone.layout.title.text.split("<br>")
    assert len(lines) > 1 and all(len(line) <= 34 for line in lines)
    assert "n = 3 windows" in phone.layout.title.text.replace("<br>", " ")
    assert phone.layout.legend.orientation == "h" and phone.layout.legend.yanchor == "bottom"
    assert phone.layout.xaxis.dtick == 20
    assert phone.layout.annotations[0].text.replace("<br>", " ").strip() == "not evaluable below 80%"


def test_the_page_sends_the_phone_layout_and_a_wrapping_command(data_with_rejections, monkeypatch) -> None:
    folder, _, _ = data_with_rejections
    at = run_data_page(folder, monkeypatch)
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    titles = [spec["layout"]["title"]["text"] for spec in specs]
    assert len(titles) == 2 and titles[0] == titles[1].replace(
        "<br>", " "
    )  # the full layout and the phone one (ui.render.PAGE_STYLE shows the one that fits)
    assert all(code.proto.wrap_lines for code in at.get("code"))
