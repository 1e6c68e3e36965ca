"""Figure-object tests for the Patient page's builders (analytics.figures.patient).

They check what a reader relies on: trace types and axis titles, unrecorded diary days kept apart
from headache-free days (a different category and colour), windows with too few diary days drawn
as gaps, and cycles that are not evaluable never drawn as a zero bar.

The dataset: first session D1 = 2024-03-01, then 2024-05-24 and 2024-08-16. The baseline is fully
recorded; cycle 1 has its first 42 of 84 days recorded (not evaluable), cycle 2 has no diary day at
all, cycle 3 is fully recorded.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from analytics.definitions import clinical
from analytics.definitions.pipeline import analyse
from analytics.figures import patient as figures
from analytics.figures import theme
from analytics.ingest.load import load_dataset

D1 = date(2024, 3, 1)


def at(offset: int) -> str:
    return (D1 + timedelta(days=offset)).isoformat()


def diary() -> str:
    special = {
        -28: "0,false,0,false",  # 2024-02-02 headache-free
        -27: "2,false,1,false",  # below the headache-day hours
        -26: "6,false,1,true",  # headache day, mild
        -25: "6,false,2,false",  # moderate
        -24: "8,true,3,true",  # severe migraine day
    }
    lines = []
    for o in range(-28, 0):
        if o == -23:
            continue  # 2024-02-07 not recorded
        lines.append(f"P1,{at(o)},{special.get(o, '5,false,2,false' if o % 2 else '0,false,0,false')}")
    lines += [f"P1,{at(o)},{5 if o % 3 == 0 else 0},false,2,false" for o in range(0, 42)]
    lines += [f"P1,{at(o)},{5 if o % 4 == 0 else 0},false,2,false" for o in range(168, 252)]
    return "patient_id,date,headache_hours,migraine,severity,acute_medication\n" + "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def case():
    files = {
        "sessions.csv": f"patient_id,session_date,total_units\nP1,{at(0)},155\nP1,{at(84)},160\nP1,{at(168)},155\n",
        "diary.csv": diary(),
    }
    dataset = load_dataset({k: v.encode() for k, v in files.items()})
    analysis = analyse(dataset)
    tables = clinical.clinical_tables(analysis, dataset)
    cycles = analysis.patient_cycles.sort_values("cycle")
    return analysis, tables, cycles


def calendar(analysis, tables) -> pd.DataFrame:
    """The daily grid the Patient page draws (one patient here, so the whole grid)."""
    return clinical.diary_days(analysis, tables.params)


def colour_of(heatmap: go.Heatmap, code: int) -> str:
    """The colour the discrete colorscale gives to category ``code``."""
    scale = heatmap.colorscale
    position = (code - heatmap.zmin) / (heatmap.zmax - heatmap.zmin)
    return next(c for (p0, c), (p1, _) in zip(scale[::2], scale[1::2], strict=True) if p0 <= position <= p1)


def test_calendar_keeps_unrecorded_days_apart_from_headache_free(case):
    analysis, tables, _ = case
    fig = figures.build_diary_calendar_figure(calendar(analysis, tables), analysis.config.headache_min_hours)
    heatmap = fig.data[0]
    assert isinstance(heatmap, go.Heatmap)
    z = np.asarray(heatmap.z, dtype=float)
    february = 0  # the first row is February 2024
    assert z[february, 1] == 1  # 2 Feb: headache-free
    assert z[february, 2] == 2  # 3 Feb: headache below 4 h
    assert z[february, 3] == 3 and z[february, 4] == 4 and z[february, 5] == 5  # mild, moderate, severe
    assert z[february, 6] == 0  # 7 Feb: not recorded
    assert np.isnan(z[february, 29]) and np.isnan(z[february, 0])  # 30 Feb does not exist; 1 Feb is before follow-up
    assert colour_of(heatmap, 0) == theme.MISSING
    assert colour_of(heatmap, 1) == theme.HEADACHE_FREE
    assert theme.MISSING != theme.HEADACHE_FREE
    by_name = {t.name: t for t in fig.data[1:]}
    migraine = by_name["migraine day"]
    assert list(zip(migraine.x, migraine.y, strict=True)) == [(6, february)]
    injections = by_name["injection day"]
    assert list(zip(injections.x, injections.y, strict=True)) == [(1, 1), (24, 3), (16, 6)]  # 1 Mar, 24 May, 16 Aug
    assert "not recorded" in by_name and "headache-free" in by_name
    assert list(fig.layout.yaxis.ticktext[:2]) == ["Feb 2024", "Mar 2024"]


def test_rolling_figure_draws_gaps_not_zeros(case):
    analysis, tables, cycles = case
    fig = figures.build_rolling_headache_figure(calendar(analysis, tables), cycles, analysis.config.min_completeness)
    line = fig.data[0]
    assert isinstance(line, go.Scatter) and line.connectgaps is False
    y = np.asarray(line.y, dtype=float)
    rolling = calendar(analysis, tables)["rolling_mhd"].to_numpy()
    assert np.array_equal(np.isnan(y), np.isnan(rolling))
    # Cycle 2 has no diary: its days are gaps, never 0.
    in_cycle_2 = (calendar(analysis, tables)["cycle"] == 2).fillna(False).to_numpy()
    assert np.isnan(y[in_cycle_2]).all()
    assert fig.layout.yaxis.title.text == "headache days / 28 days"
    baseline = cycles.iloc[0]["mhd"]
    dashed = [s for s in fig.layout.shapes if s.type == "line" and s.line.dash == "dash"]
    assert any(s.y0 == pytest.approx(baseline) for s in dashed)
    session_lines = [s for s in fig.layout.shapes if s.type == "line" and s.x0 == s.x1 and s.yref == "paper"]
    assert len(session_lines) == 3
    assert [a.text for a in fig.layout.annotations if a.text.startswith("C")][:3] == ["C1", "C2", "C3"]


def test_cycle_bars_never_draw_a_non_evaluable_cycle_as_zero(case):
    _, _, cycles = case
    fig = figures.build_cycle_bars_figure(cycles)
    bars = [t for t in fig.data if isinstance(t, go.Bar)]
    assert [t.name for t in bars] == ["headache days / 28 d", "migraine days / 28 d", "acute-medication days / 28 d"]
    headache = bars[0]
    y = np.asarray(headache.y, dtype=float)
    c1 = cycles[cycles["cycle"] == 1].iloc[0]
    assert not bool(c1["evaluable"]) and y[1] == pytest.approx(c1["mhd"]) and y[1] > 0
    assert headache.marker.pattern.shape[1] == "/" and headache.marker.pattern.shape[0] == ""
    assert np.isnan(y[2])  # cycle 2: no diary day -> no bar, and it says so
    texts = [a.text.replace("<br>", " ") for a in fig.layout.annotations]  # notes wrap onto two lines
    assert "no diary days" in texts and "not evaluable" in texts
    baseline = cycles.iloc[0]["mhd"]
    levels = sorted(s.y0 for s in fig.layout.shapes if s.line.dash == "dash")
    assert levels == pytest.approx(sorted(baseline * f for f in (0.7, 0.5, 0.25)))
    assert "42/84 d" in fig.layout.xaxis.ticktext[1] and "0/84 d" in fig.layout.xaxis.ticktext[2]
    assert fig.layout.yaxis.title.text == "days / 28 days"


def test_weekly_profile_figure(case):
    analysis, tables, _ = case
    fig = figures.build_weekly_profile_figure(tables.weekly, calendar(analysis, tables), tables.cycle_profile)
    assert fig.layout.xaxis.title.text == "week since the injection"
    assert fig.layout.yaxis.title.text == "headache days per week (of 7)"
    weekly = {t.name: t for t in fig.data if t.mode == "lines+markers"}
    cycle_2 = next(t for name, t in weekly.items() if name.startswith("Cycle 2"))
    assert np.isnan(np.asarray(cycle_2.y, dtype=float)).all()  # no diary: gaps, not zeros
    cycle_3 = next(t for name, t in weekly.items() if name.startswith("Cycle 3"))
    assert np.isfinite(np.asarray(cycle_3.y, dtype=float)).all()


def test_adverse_events_figure(case):
    analysis, _, cycles = case
    missing = figures.build_adverse_events_figure(pd.DataFrame(), cycles, analysis.as_of, available=False)
    assert "No adverse-event file" in missing.layout.annotations[0].text
    none = figures.build_adverse_events_figure(pd.DataFrame(), cycles, analysis.as_of, available=True)
    assert none.layout.annotations[0].text == "No adverse events recorded after 3 sessions"
    events = clinical.adverse_events_by_cycle(
        pd.DataFrame(
            {
                "patient_id": ["P1", "P1"],
                "session_date": pd.to_datetime([at(0), at(84)]),
                "event": ["neck_pain", "eyelid_ptosis"],
                "severity": ["mild", "severe"],
                "onset_date": pd.to_datetime([at(3), at(90)]),
                "resolved_date": pd.to_datetime([at(12), None]),
                "serious": pd.array([False, True], "boolean"),
            }
        ),
        cycles,
    )
    fig = figures.build_adverse_events_figure(events, cycles, analysis.as_of)
    bars = {t.name: t for t in fig.data if isinstance(t, go.Bar)}
    assert bars["mild"].orientation == "h" and list(bars["mild"].base) == [3] and list(bars["mild"].x) == [10]
    assert list(bars["severe"].marker.pattern.shape) == ["/"]  # not resolved
    assert list(fig.layout.yaxis.ticktext) == ["C1 · neck pain", "C2 · eyelid ptosis"]
    assert fig.layout.xaxis.title.text == "days since the injection"


def test_questionnaire_figure_with_bands(case):
    _, _, cycles = case
    scores = clinical.questionnaire_bands(
        pd.DataFrame(
            {
                "patient_id": "P1",
                "date": pd.to_datetime([at(0), at(84), at(0)]),
                "instrument": ["HIT-6", "HIT-6", "MIDAS"],
                "score": [64.0, 52.0, 30.0],
            }
        )
    )
    fig = figures.build_questionnaires_figure(scores, cycles)
    assert fig.layout.yaxis.title.text == "HIT-6 score" and fig.layout.yaxis2.title.text == "MIDAS score"
    assert [list(t.y) for t in fig.data] == [[64.0, 52.0], [30.0]]
    bands = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(bands) == 8
    hit6_edges = sorted((s.y0, s.y1) for s in bands if s.yref == "y")
    assert hit6_edges == [(36, 49.5), (49.5, 55.5), (55.5, 59.5), (59.5, 78)]
    missing = figures.build_questionnaires_figure(scores.iloc[0:0], cycles, available=False)
    assert "No questionnaire file" in missing.layout.annotations[0].text


def _session(rows: list[tuple[str, str, float, int]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["muscle", "side", "units", "sites"])
    frame = frame.assign(patient_id="P1", session_date=pd.Timestamp(at(0)))
    frame["sites"] = frame["sites"].astype("Int64")
    return clinical.injection_sites(frame)


PREEMPT_ROWS = [
    ("corrugator", "left", 5, 1),
    ("corrugator", "right", 5, 1),
    ("procerus", "midline", 5, 1),
    ("frontalis", "left", 10, 2),
    ("frontalis", "right", 10, 2),
    ("temporalis", "left", 20, 4),
    ("temporalis", "right", 20, 4),
    ("occipitalis", "left", 15, 3),
    ("occipitalis", "right", 15, 3),
    ("cervical_paraspinal", "left", 10, 2),
    ("cervical_paraspinal", "right", 10, 2),
    ("trapezius", "left", 15, 3),
    ("trapezius", "right", 15, 3),
]


def test_injection_site_map_standard_and_follow_the_pain(case):
    _, _, cycles = case
    session = cycles[cycles["cycle"] == 1].iloc[0].rename({"start_date": "session_date"})
    standard = figures.build_injection_site_map_figure(_session(PREEMPT_ROWS), session)
    by_name = {t.name: t for t in standard.data}
    assert len(by_name["PREEMPT fixed site (5 U)"].x) == 31
    assert len(by_name["follow-the-pain extra site"].x) == 0
    assert "155 U in 31 sites" in standard.layout.title.text
    assert sum(s.type == "circle" for s in standard.layout.shapes) >= 6  # two heads and four ears
    ftp_rows = [r if r[:2] != ("temporalis", "right") else ("temporalis", "right", 25, 5) for r in PREEMPT_ROWS]
    ftp = figures.build_injection_site_map_figure(_session([*ftp_rows, ("other", "left", 10, 2)]), session)
    by_name = {t.name: t for t in ftp.data}
    assert len(by_name["follow-the-pain extra site"].x) == 1
    # 31 fixed sites + 1 temporalis extra + 2 "other" = 34 sites; 155 + 5 + 10 = 170 U, of which 15 U extra.
    assert "170 U in 34 sites, 15 U follow-the-pain" in ftp.layout.title.text
    texts = " ".join(a.text for a in ftp.layout.annotations)
    assert "+5 FTP" in texts and "Not drawn: other left: 10 U (2 sites)" in texts
    # Patient's right on the viewer's left in the front view.
    right = by_name["follow-the-pain extra site"].x[0]
    assert right < 0.5


def test_every_builder_has_a_readable_empty_state_smoke():
    empty = pd.DataFrame(columns=["patient_id", "cycle", "week", "date"])
    for fig in (
        figures.build_diary_calendar_figure(empty, 4),
        figures.build_rolling_headache_figure(empty, empty, 0.7),
        figures.build_cycle_bars_figure(empty),
        figures.build_weekly_profile_figure(empty, empty, empty),
    ):
        assert fig.layout.annotations and fig.layout.annotations[0].text


# --- medication overuse (MO) and late re-injections -------------------------------------------------
#
# A second patient, P2, with D1 = 2024-03-01 and sessions at offsets 0, 84, 196 and 280: the third came
# 112 days after the second (14 past on_time_max_days = 98), the others after 84. Every diary day is
# recorded except in cycle 3, which has only its first 20 days (not evaluable). Acute medication: 12 of the
# 28 baseline days (12.0 per 28 d: overuse), 9 of every 28 days in cycle 1 (9.0: not), 10 of every 28 in
# cycle 2 (10.0: exactly the threshold, overuse), every recorded day of cycle 3 (28.0, but not evaluable:
# empty) and none in cycle 4 (0.0: not). So MO marks the baseline and cycle 2, and cycle 3 is the late one.


def flagged_diary() -> str:
    def acute(o: int) -> bool:
        if o < 0:
            return o < -16
        if o < 84:
            return o % 28 < 9
        if o < 196:
            return o % 28 < 10
        return o < 280

    days = [o for o in range(-28, 364) if not 216 <= o < 280]
    lines = [f"P2,{at(o)},{5 if o % 2 == 0 else 0},false,1,{'true' if acute(o) else 'false'}" for o in days]
    return "patient_id,date,headache_hours,migraine,severity,acute_medication\n" + "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def flagged():
    sessions = "patient_id,session_date\n" + "".join(f"P2,{at(o)}\n" for o in (0, 84, 196, 280))
    dataset = load_dataset({"sessions.csv": sessions.encode(), "diary.csv": flagged_diary().encode()})
    analysis = analyse(dataset)
    tables = clinical.clinical_tables(analysis, dataset)
    cycles = clinical.cycle_flags(analysis.patient_cycles, analysis.config).sort_values("cycle")
    return analysis, tables, cycles


def test_the_flagged_case_is_what_its_comment_says(flagged):
    _, _, cycles = flagged
    assert cycles["amd"].round(9).tolist() == [12.0, 9.0, 10.0, 28.0, 0.0]
    assert cycles["evaluable"].tolist() == [True, True, True, False, True]
    assert cycles["overuse"].tolist() == [True, False, True, pd.NA, False]
    assert cycles["late_reinjection"].tolist() == [pd.NA, pd.NA, False, True, False]
    assert cycles["interval_days"].tolist() == [pd.NA, pd.NA, 84, 112, 84]


def test_cycle_bars_mark_medication_overuse_exactly_on_the_flagged_windows(flagged):
    _, _, cycles = flagged
    fig = figures.build_cycle_bars_figure(cycles, overuse_acute_days=10)
    mo = [t for t in fig.data if t.name and t.name.startswith("MO")]
    assert len(mo) == 1 and mo[0].name == "MO: medication overuse: acute medication on ≥10 days / 28 d"
    # The baseline (x = 0) and cycle 2 (x = 2), over the right bar of three (offset 0.75 / 3 = 0.25).
    assert list(mo[0].x) == pytest.approx([0.25, 2.25])
    assert list(mo[0].y) == pytest.approx([12.0, 10.0])
    assert list(mo[0].text) == ["MO", "MO"]
    assert mo[0].showlegend is not False
    # Without the flags the figure has no MO mark (the plain patient_cycles rows).
    plain = figures.build_cycle_bars_figure(flagged[0].patient_cycles.sort_values("cycle"))
    assert not any(t.name and t.name.startswith("MO") for t in plain.data)


def test_calendar_annotates_the_late_reinjection(flagged):
    analysis, tables, cycles = flagged
    fig = figures.build_diary_calendar_figure(calendar(analysis, tables), analysis.config.headache_min_hours, cycles)
    late = [t for t in fig.data if t.name and t.name.startswith("late re-injection")]
    assert len(late) == 1
    assert late[0].name == "late re-injection (>98 days after the previous one)"
    # 2024-03-01 + 196 days = 2024-09-13: the row of September 2024 (row 7 from February), column 13.
    assert list(zip(late[0].x, late[0].y, strict=True)) == [(13, 7)]
    assert list(late[0].hovertext) == ["Cycle 3 started 112 days after the previous session (14 past 98)"]
    notes = [a for a in fig.layout.annotations if a.text.startswith("late")]
    assert [(a.text, a.y) for a in notes] == [("late: 112 d", 7)]
    injections = next(t for t in fig.data if t.name == "injection day")
    assert (13, 7) in list(zip(injections.x, injections.y, strict=True))  # the late session is an injection day
    unflagged = figures.build_diary_calendar_figure(calendar(analysis, tables), analysis.config.headache_min_hours)
    assert not any(t.name and t.name.startswith("late") for t in unflagged.data)


def test_both_calendar_layouts_from_one_pass_are_the_two_single_builds(flagged):
    analysis, tables, cycles = flagged
    days, hours = calendar(analysis, tables), analysis.config.headache_min_hours
    full, compact = figures.build_diary_calendar_figures(days, hours, cycles)
    assert full.to_json() == figures.build_diary_calendar_figure(days, hours, cycles).to_json()
    assert compact.to_json() == figures.build_diary_calendar_figure(days, hours, cycles, compact=True).to_json()
    assert full.to_json() != compact.to_json()
    empty_full, empty_compact = figures.build_diary_calendar_figures(days.iloc[:0], hours, cycles)
    assert (
        empty_full.to_json()
        == empty_compact.to_json()
        == figures.build_diary_calendar_figure(days.iloc[:0], hours).to_json()
    )


def test_timeline_marks_overuse_windows_and_the_late_reinjection(flagged, case):
    analysis, tables, cycles = flagged
    fig = figures.build_rolling_headache_figure(
        calendar(analysis, tables), cycles, analysis.config.min_completeness, overuse_acute_days=10
    )
    mo = next(t for t in fig.data if t.name and t.name.startswith("MO"))
    starts = cycles.set_index("cycle")["start_date"]
    ends = cycles.set_index("cycle")["end_date"]
    segments = [pd.Timestamp(x) if x is not None else None for x in mo.x]
    assert segments == [starts[0], ends[0], None, starts[2], ends[2], None]
    late = next(t for t in fig.data if t.name and t.name.startswith("late re-injection"))
    assert [pd.Timestamp(x) for x in late.x] == [pd.Timestamp(at(196))]
    assert list(late.text) == ["late"]
    # The first case has neither (intervals of 84 days, at most 2 acute-medication days per 28): no mark at all.
    first_analysis, first_tables, first_cycles = case
    none = figures.build_rolling_headache_figure(
        calendar(first_analysis, first_tables),
        clinical.cycle_flags(first_cycles, first_analysis.config),
        0.7,
        overuse_acute_days=10,
    )
    assert not any(t.name and t.name.startswith(("MO", "late")) for t in none.data)
