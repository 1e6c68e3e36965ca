"""The printable patient summary (analytics.views.report): self-contained, complete and escaped.

It must open on a PC without internet, so no script, stylesheet or image may be fetched from a
URL; it must carry the definitions with their parameter values and the data as-of date; and
patient data must never become markup.
"""

from __future__ import annotations

import html
import re
from datetime import datetime

import pandas as pd
import pytest

from analytics.definitions import clinical
from analytics.definitions.config import AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.figures import patient as figures
from analytics.ingest.load import load_dataset
from analytics.views import dictionary, report


def _files() -> dict[str, bytes]:
    days = pd.date_range("2024-02-02", "2024-08-15")
    diary = "patient_id,date,headache_hours,migraine,severity,acute_medication\n" + "".join(
        f"R1,{d:%Y-%m-%d},{6 if i % 3 else 0},false,2,false\n" for i, d in enumerate(days)
    )
    sessions = "patient_id,session_date,total_units\nR1,2024-03-01,155\nR1,2024-05-24,155\n"
    return {"diary.csv": diary.encode(), "sessions.csv": sessions.encode()}


@pytest.fixture(scope="module")
def summary() -> str:
    dataset = load_dataset(_files())
    analysis = analyse(dataset)
    tables = clinical.clinical_tables(analysis, dataset)
    cycles = analysis.patient_cycles
    days = clinical.diary_days(analysis, tables.params)
    figs = [
        report.ReportFigure("Diary calendar", figures.build_diary_calendar_figure(days, 4), "Grey: not recorded."),
        report.ReportFigure("Per cycle", figures.build_cycle_bars_figure(cycles), "n under each bar."),
    ]
    return report.build_patient_report(
        "R1",
        cycles,
        tables.status.iloc[0],
        figs,
        clinical.definitions_with_values(analysis.config, tables.params),
        analysis.config.parameters(),
        analysis.as_of,
        "test data <b>folder</b>",
        analysis.config,
        patient_facts={"clinic": "<script>alert(1)</script>"},
        changed_parameters=AnalysisConfig(headache_min_hours=6).differences_from_default(),
        generated_at=datetime(2026, 1, 2, 3, 4),
    )


def test_summary_is_self_contained(summary: str):
    assert not re.search(r"<script[^>]*\bsrc\s*=", summary, re.I)
    # The document's own markup (inline script bodies aside: plotly.js mentions URLs in its code).
    markup = re.sub(r"(<script[^>]*>).*?(</script>)", r"\1\2", summary, flags=re.S | re.I)
    assert not re.search(r"<link\b|<img\b|<iframe\b", markup, re.I)
    assert not re.search(r"""\b(src|href)\s*=\s*["']?\s*(https?:)?//""", markup, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", markup, re.I)
    assert "@import" not in markup
    # plotly.js is inlined exactly once, and both charts are drawn with it.
    assert summary.count("* plotly.js v") == 1
    assert len(summary) > 1_000_000
    assert summary.count("Plotly.newPlot(") == 2


def test_summary_contains_as_of_definitions_and_parameters(summary: str):
    assert "Data as of <b>15 Aug 2024</b> (2024-08-15)" in summary
    for definition in clinical.DEFINITIONS:
        assert html.escape(str(definition["name"])) in summary
    assert "stopping_min_reduction = 30.0" in summary
    assert "Analysis parameters" in summary and "headache_min_hours" in summary
    assert "Parameters differ from the defaults" in summary and "headache_min_hours = 6 (default 4.0)" in summary
    assert "@page { size: A4 portrait" in summary
    assert "break-inside: avoid" in summary


def test_summary_states_the_spec_5_status(summary: str):
    # R1 (sessions 2024-03-01 and 2024-05-24, data to 2024-08-15): baseline 18 headache days in 28 (days 0..27,
    # headache unless the day index is a multiple of 3); cycle 2 (2024-05-24..2024-08-15, complete on the cut-off)
    # has 56 in 84 = 18.7 per 28 days, +4%: NICE says stop. 83 days since the last session: active, due 2024-08-16.
    assert html.escape("NICE TA260: <30% reduction after 2 cycles (18.0 → 18.7 headache days/28 d, +4%)") in summary
    assert "Active: next session due 16 Aug 2024" in summary
    assert "Stop indicated: NICE 30%" in summary
    # No migraine day in the diary: not chronic migraine at baseline, whatever the headache days (ICHD-3 ≥8).
    assert (
        "Baseline 18.0 headache days and 0.0 migraine days / 28 d (chronic migraine needs ≥15 headache days, ≥8 of "
        "them migraine days; 28 of 28 days recorded)"
    ) in summary
    assert "Suitable under NICE TA260 (chronic migraine and ≥3 failed preventives): no" in summary
    assert "does not apply, migraine was not chronic at baseline" in summary
    for definition in dictionary.STATUS_DEFINITIONS:
        assert html.escape(definition["term"]) in summary


def test_summary_carries_the_patient_numbers_with_their_n(summary: str):
    # Baseline 2024-02-02..2024-02-29: 28 recorded days, headache on 2 of every 3 days from the first.
    assert "Headache days / 28 d" in summary
    assert "28 of 28 days recorded" in summary
    assert "NICE TA260" in summary
    assert "Suitability at baseline" in summary


def test_patient_data_is_escaped(summary: str):
    assert "<script>alert(1)</script>" not in summary
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in summary
    assert "test data &lt;b&gt;folder&lt;/b&gt;" in summary


def test_readable_cycle_table():
    dataset = load_dataset(_files())
    cycles = analyse(dataset).patient_cycles
    table = report.readable_cycle_table(cycles)
    assert table["window"].tolist() == ["Baseline", "Cycle 1", "Cycle 2"]
    assert table["days recorded"].tolist()[0] == "28/28 d (100%)"
    # Cycle 1 = 2024-03-01..2024-05-23: 84 days, headache on day indices 29.. where i % 3 != 0.
    headache_days = sum(1 for i in range(28, 28 + 84) if i % 3)
    assert table["headache days / 28 d"].iloc[1] == pytest.approx(round(headache_days / 84 * 28, 1))
