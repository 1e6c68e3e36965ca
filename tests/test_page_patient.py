"""The Patient page in Streamlit's AppTest.

The numbers the page shows are checked against ``analytics.definitions.clinical`` computed directly for the
same patient and parameters: the page loads on the bundled sample data, a ``?patient=`` link opens
that patient, choosing another patient changes the numbers and the charts, and a parameter change
changes the numbers. Edge cases run on small datasets: a patient with a diary but no session, and
a dataset without the optional files.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pandas as pd
import pytest
from page_helpers import open_app_page, open_page_tab
from streamlit.testing.v1 import AppTest
from test_page_data import as_bytes, capture_downloads

from analytics.definitions import clinical
from analytics.definitions.config import SAMPLE_DATA_DIR, AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.ingest.load import load_dataset
from pages.patient import SECTIONS

PAGE = "pages/patient.py"
CONFORMANCE_DATA = Path(__file__).resolve().parent / "conformance" / "data"
HAS_SAMPLE = (SAMPLE_DATA_DIR / "sessions.csv").exists()


@pytest.fixture(scope="module")
def sample():
    if not HAS_SAMPLE:
        pytest.skip("no bundled sample data")
    dataset = load_dataset(SAMPLE_DATA_DIR)
    return dataset, analyse(dataset, AnalysisConfig())


def open_page(monkeypatch: pytest.MonkeyPatch, folder: Path | None = None, **query: str) -> AppTest:
    return open_app_page(monkeypatch, PAGE, folder, query)


def shown(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def expected(analysis, patient_id: str) -> dict[str, str]:
    cycles = analysis.patient_cycles[analysis.patient_cycles["patient_id"] == patient_id]
    measures = clinical.header_measures(cycles)
    return {m["measure"]: "—" if pd.isna(m["latest"]) else f"{m['latest']:.1f}" for m in measures}


def charts(at: AppTest) -> list[str]:
    return [chart.proto.spec for chart in at.get("plotly_chart")]


open_tab = partial(open_page_tab, key="patient_section")


def chart_keys_by_tab(at: AppTest) -> dict[str, list[str]]:
    return {section: [c.key for c in open_tab(at, section).get("plotly_chart")] for section in SECTIONS}


def first_judged(analysis) -> str:
    """The page's default: the first patient (by id) whose baseline is evaluable, so a response can be judged."""
    cycles = analysis.patient_cycles
    return sorted(cycles.loc[cycles["eligible"].astype(bool), "patient_id"].unique())[0]


def test_page_opens_the_first_judged_patient_with_numbers_and_seven_charts_in_four_tabs(monkeypatch, sample) -> None:
    _, analysis = sample
    at = open_page(monkeypatch)
    first = first_judged(analysis)
    # In the sample data the very first patient's baseline diary is too sparse to judge.
    assert first != sorted(analysis.patient_cycles["patient_id"].unique())[0]
    assert at.selectbox(key="patient").value == first
    numbers = shown(at)
    assert {k: numbers[k] for k in expected(analysis, first)} == expected(analysis, first)
    assert [t.label for t in at.tabs] == list(SECTIONS)
    # The Diary tab is open; only its charts are built and sent: the calendar (and its phone layout, which the
    # page's style shows instead on a narrow screen, ui/render.py PAGE_STYLE) and the rolling headache days.
    assert [c.key for c in at.get("plotly_chart")] == ["patient_calendar", "patient_calendar_phone", "patient_rolling"]
    assert any("NICE TA260" in m.value for m in at.markdown)
    assert at.get("download_button")  # the printable summary
    # Seven charts in all, one tab at a time; all but the rolling and adverse-event charts in both layouts.
    assert chart_keys_by_tab(at) == {
        "Diary": ["patient_calendar", "patient_calendar_phone", "patient_rolling"],
        "Cycles": ["patient_cycles", "patient_cycles_phone", "patient_weekly", "patient_weekly_phone"],
        "Side effects, questionnaires": [
            "patient_adverse_events",
            "patient_questionnaires",
            "patient_questionnaires_phone",
        ],
        "Injection sites": ["patient_injection_map", "patient_injection_map_phone"],
    }
    # The header (numbers, status, stopping rules) stays above the tabs, whichever is open.
    assert {k: shown(at)[k] for k in expected(analysis, first)} == expected(analysis, first)


def test_the_printable_summary_holds_every_tabs_charts(monkeypatch, sample) -> None:
    # The page builds only the open tab's charts; the summary, made when its button is pressed (outside the
    # script run), builds all seven itself, for the patient shown.
    _, analysis = sample
    captured = capture_downloads(monkeypatch)
    open_page(monkeypatch)
    first = first_judged(analysis)
    html = as_bytes(captured[f"patient_{first}_{analysis.as_of:%Y-%m-%d}.html"]).decode()
    for heading in (
        "Diary calendar",
        "Headache days per 28 days over time",
        "Per cycle against the baseline",
        "Within-cycle weekly profile",
        "Adverse events by cycle",
        "HIT-6 and MIDAS",
        "Injection sites",
    ):
        assert f'<div class="figure" aria-label="{heading}">' in html, heading
    assert html.count('<div class="figure"') == 7


def test_a_patient_link_opens_that_patient(monkeypatch, sample) -> None:
    _, analysis = sample
    patient = sorted(analysis.patient_cycles["patient_id"].unique())[10]
    at = open_page(monkeypatch, patient=patient)
    assert at.selectbox(key="patient").value == patient
    numbers = shown(at)
    assert {k: numbers[k] for k in expected(analysis, patient)} == expected(analysis, patient)


def test_choosing_another_patient_changes_numbers_and_charts(monkeypatch, sample) -> None:
    _, analysis = sample
    ids = sorted(analysis.patient_cycles["patient_id"].unique())
    at = open_page(monkeypatch)
    before_numbers, before_charts = shown(at), charts(at)
    # A patient whose numbers differ from the default one's.
    default = first_judged(analysis)
    other = next(p for p in ids if expected(analysis, p) != expected(analysis, default))
    at.selectbox(key="patient").select(other).run()
    assert not at.exception
    after = shown(at)
    assert {k: after[k] for k in expected(analysis, other)} == expected(analysis, other)
    assert after != before_numbers
    changed = [a != b for a, b in zip(before_charts, charts(at), strict=True)]
    # The open tab's calendar (full and phone layout) and rolling headache days are this patient's.
    assert len(changed) == 3 and all(changed), changed
    before_cycles = charts(open_tab(at, "Cycles"))
    at.selectbox(key="patient").select(default).run()
    assert at.session_state["patient_section"] == "Cycles"  # the open tab stays open across patients
    assert all(a != b for a, b in zip(before_cycles, charts(at), strict=True))  # per-cycle bars, weekly profile


def test_a_parameter_change_changes_the_numbers(monkeypatch, sample) -> None:
    dataset, analysis = sample
    patient = sorted(analysis.patient_cycles["patient_id"].unique())[0]
    at = open_page(monkeypatch, patient=patient)
    before = shown(at)
    at.number_input(key="headache_min_hours").set_value(8.0).run()
    assert not at.exception
    stricter = analyse(dataset, AnalysisConfig(headache_min_hours=8.0))
    after = shown(at)
    assert {k: after[k] for k in expected(stricter, patient)} == expected(stricter, patient)
    assert after["Headache days / 28 d"] != before["Headache days / 28 d"]


def test_an_unknown_patient_in_the_link_says_so_and_opens_no_one_else(monkeypatch, sample) -> None:
    # The clinic-visit issue: a link to a patient that does not exist (or that the user may not see) used to
    # open the first patient silently. Now it says so, in the same words either way, and opens nobody.
    _, analysis = sample
    at = open_page(monkeypatch, patient="NOT-A-PATIENT")
    assert [w.value for w in at.warning if "NOT" in w.value] == ["Patient NOT-A-PATIENT is not in the data you can see"]
    assert "patient" not in [s.key for s in at.selectbox]
    del at.query_params["patient"]  # the page's "Open the patient list" button drops the id from the address
    at.run()
    assert at.selectbox(key="patient").value == first_judged(analysis)


def test_a_patient_with_a_diary_but_no_session(monkeypatch, tmp_path) -> None:
    days = pd.date_range("2024-01-01", periods=40)
    diary = "patient_id,date,headache_hours,migraine,severity,acute_medication\n" + "".join(
        f"{p},{d:%Y-%m-%d},{5 if i % 2 else 0},false,1,false\n" for p in ("A1", "Z9") for i, d in enumerate(days)
    )
    (tmp_path / "diary.csv").write_text(diary)
    (tmp_path / "sessions.csv").write_text("patient_id,session_date\nA1,2024-01-29\n")
    at = open_page(monkeypatch, tmp_path, patient="Z9")
    assert at.selectbox(key="patient").value == "Z9"
    assert any("No injection session" in i.value for i in at.info)
    assert len(at.get("plotly_chart")) >= 1  # the diary calendar and the other charts' empty states


def test_a_dataset_without_the_optional_files(monkeypatch) -> None:
    if not (CONFORMANCE_DATA / "sessions.csv").exists():
        pytest.skip("no conformance data")
    at = open_tab(open_page(monkeypatch, CONFORMANCE_DATA), "Side effects, questionnaires")
    specs = " ".join(charts(at))
    assert "No adverse-event file (adverse_events.csv) in this dataset" in specs
    assert "No questionnaire file (questionnaires.csv) in this dataset" in specs
    assert any("No injections.csv in this dataset" in c.value for c in open_tab(at, "Injection sites").caption)


def badges(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if "-badge[" in m.value]


def test_badges_show_the_spec_5_status(monkeypatch, sample) -> None:
    dataset, analysis = sample
    status = analysis.patient_status.merge(dataset.tables["patients"], on="patient_id", how="left")
    # A patient discontinued (with a reason) whose NICE rule had said "continue": the page says discontinued, with
    # the reason as plain text, and the rule's verdict without the green of a recommendation.
    stopped = status[
        status["treatment_state"].eq("discontinued")
        & status["nice_state"].eq("continue")
        & status["discontinuation_reason"].notna()
    ].iloc[0]
    at = open_page(monkeypatch, patient=stopped["patient_id"])
    shown = badges(at)
    assert (
        f":gray-badge[Discontinued on {stopped['discontinued_on']:%d %b %Y}: "
        f"{stopped['discontinuation_reason']}]" in shown
    )
    assert ":gray-badge[NICE TA260: continue]" in shown and ":green-badge[NICE TA260: continue]" not in shown
    # An overdue patient with a stopping rule met: the state with next_due and days_overdue, and the rule(s).
    overdue = status[status["treatment_state"].eq("overdue") & status["stop_indicated"].eq(True)].iloc[0]
    at.selectbox(key="patient").select(overdue["patient_id"]).run()
    shown = badges(at)
    days = int(overdue["days_overdue"])
    assert (
        f":orange-badge[Overdue: next session was due {overdue['next_due']:%d %b %Y}; "
        f"{days} day{'' if days == 1 else 's'} past the 98-day limit]" in shown
    )
    rules = [
        name
        for held, name in (
            (overdue["nice_state"] == "stop", "NICE 30%"),
            (overdue["ehf_state"] == "stop", "EHF"),
            (bool(overdue["episodic_now"] is not pd.NA and overdue["episodic_now"]), "episodic now"),
        )
        if held
    ]
    assert f":red-badge[Stop indicated: {'; '.join(rules)}]" in shown
    assert f"-badge[NICE TA260: {overdue['nice_state']}]" in " ".join(shown)


def test_the_weekly_caption_states_the_completeness_rule_in_use(monkeypatch, sample) -> None:
    _, analysis = sample
    at = open_tab(open_page(monkeypatch, patient=first_judged(analysis)), "Cycles")
    assert any("weeks with fewer than 5 of 7 days recorded are gaps" in c.value for c in at.caption)
    at.slider(key="min_completeness").set_value(0.8).run()  # 0.8 × 7 = 5.6: six days needed
    assert not at.exception
    assert any("weeks with fewer than 6 of 7 days recorded are gaps" in c.value for c in at.caption)
