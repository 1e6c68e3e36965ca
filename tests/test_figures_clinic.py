"""Figure objects of the clinic page (analytics.figures.clinic): what each trace shows, from known tables.

The builders only draw; these tests check that what is drawn is the table given (counts, rates,
interval ends, numbers at risk), that n is in the title, that missing is grey or absent rather than
zero, and that an empty selection gives a message instead of an empty axis.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from analytics.figures import clinic as figures
from analytics.figures.theme import MISSING
from analytics.statistics.survival import at_risk_table, kaplan_meier
from analytics.views import clinic


def annotations_text(fig) -> list[str]:
    return [a.text for a in fig.layout.annotations]


def test_sessions_per_month_stacks_injectors_with_not_recorded_grey_and_last() -> None:
    sessions = pd.DataFrame(
        {
            "patient_id": ["a", "b", "c", "a", "d"],
            "session_date": pd.to_datetime(["2024-01-05", "2024-01-20", "2024-01-21", "2024-03-30", "2024-02-10"]),
            "injector": [clinic.NOT_RECORDED, "INJ2", "INJ1", "INJ1", "INJ1"],
        }
    )
    monthly = clinic.sessions_per_month(sessions, pd.Timestamp("2024-01-10"), pd.Timestamp("2024-03-31"))
    fig = figures.build_sessions_per_month_figure(monthly)
    assert "n = 5 sessions" in fig.layout.title.text
    assert [t.name for t in fig.data] == ["INJ1", "INJ2", clinic.NOT_RECORDED]
    assert fig.data[-1].marker.color == MISSING
    inj1 = fig.data[0]
    assert list(inj1.y) == [1, 1, 1]  # January, February, March
    # January starts before the period (2024-01-10): drawn pale; February and March are whole months.
    assert list(inj1.marker.opacity) == [0.45, 1.0, 1.0]
    assert sum(sum(t.y) for t in fig.data) == 5


def test_interval_figure_splits_bins_by_category() -> None:
    days = pd.array([70, 84, 98, 99, 400], dtype="Int64")
    intervals = pd.DataFrame({"patient_id": list("aabbc"), "interval_days": days})
    intervals["category"] = clinic.interval_category(intervals["interval_days"])
    distribution = clinic.interval_distribution(intervals)
    fig = figures.build_interval_figure(distribution, clinic.summarise_intervals(intervals))
    assert "n = 5 intervals, 3 patients" in fig.layout.title.text
    by_name = {t.name.split(" ")[0]: t for t in fig.data}
    assert list(by_name["early"].x) == ["70–76 days"]
    assert list(by_name["on"].x) == ["84–90 days", "98–104 days"]  # 98 is on time ...
    assert list(by_name["late"].x) == ["98–104 days", f"≥ {clinic.INTERVAL_OVERFLOW_DAYS} days"]  # ... 99 is late
    assert sum(sum(t.y) for t in fig.data) == 5
    assert list(fig.layout.xaxis.categoryarray) == ["70–76 days", "84–90 days", "98–104 days", "≥ 182 days"]


def test_retention_figure_labels_counts_and_shares() -> None:
    patients = pd.DataFrame({"n_sessions": [1, 2, 3, 3], "first_session": pd.to_datetime(["2024-01-01"] * 4)})
    table = clinic.retention(patients, pd.Timestamp("2024-05-01"))
    fig = figures.build_retention_figure(table)
    bars = fig.data[0]
    assert list(bars.y) == [4, 3, 2]
    assert list(bars.text) == ["4<br>100%", "3<br>75%", "2<br>50%"]
    # Cycle 3 needs 2 × 98 days: nobody had the time by 2024-05-01.
    assert bars.customdata[2][0] == "no one had the time yet"
    assert "n = 4 patients" in fig.layout.title.text
    empty = figures.build_retention_figure(clinic.retention(patients.iloc[:0], pd.Timestamp("2024-05-01")))
    assert "No patients started" in annotations_text(empty)[0]


def test_kaplan_meier_figure_draws_the_curve_band_and_number_at_risk() -> None:
    curve = kaplan_meier([10, 100, 100, 200, 300], [True, True, False, False, True])
    at_risk = at_risk_table(curve, [0, 84, 168, 252])
    fig = figures.build_kaplan_meier_figure(curve, at_risk, "Persistence")
    main = next(t for t in fig.data if t.name == "Kaplan–Meier")
    np.testing.assert_allclose(main.y, curve.table["survival"])
    np.testing.assert_allclose(main.x, curve.table["time"] / 7)
    band = [t for t in fig.data if t.fill == "tonexty"]
    assert len(band) == 1 and np.allclose(band[0].y, curve.table["ci_low"])
    numbers = {a.x: a.text for a in fig.layout.annotations if a.xref == "x"}
    assert numbers == {0.0: "5", 12.0: "4", 24.0: "2", 36.0: "1"}
    assert "At risk" in annotations_text(fig)
    assert list(fig.layout.xaxis.tickvals) == [0, 12, 24, 36]


def test_responder_rate_figure_has_wilson_error_bars_and_n() -> None:
    cohort = pd.DataFrame(
        {
            "cycle": [0, 1, 2, 3],
            "n_treated": pd.array([10, 10, 6, 2], dtype="Int64"),
            "n_evaluable": pd.array([9, 8, 5, 0], dtype="Int64"),
            "responder_50_n": pd.array([pd.NA, 4, 3, 0], dtype="Int64"),
            "responder_50_rate": pd.array([pd.NA, 0.5, 0.6, pd.NA], dtype="Float64"),
            "responder_50_ci_low": pd.array([pd.NA, 0.2152, 0.2307, pd.NA], dtype="Float64"),
            "responder_50_ci_high": pd.array([pd.NA, 0.7848, 0.8824, pd.NA], dtype="Float64"),
        }
    )
    fig = figures.build_responder_rate_figure(cohort)
    points, labels = fig.data
    assert list(points.x) == [1, 2]  # cycle 0 is the baseline; cycle 3 has no evaluable patient (not 0%)
    np.testing.assert_allclose(points.error_y.array, [0.7848 - 0.5, 0.8824 - 0.6])
    np.testing.assert_allclose(points.error_y.arrayminus, [0.5 - 0.2152, 0.6 - 0.2307])
    assert list(labels.text) == ["n=8", "n=5"]
    assert "n = 10 patients" in fig.layout.title.text


def test_adverse_event_figure_shows_types_not_the_total() -> None:
    sessions = pd.DataFrame({"patient_id": ["a", "b"], "session_date": pd.to_datetime(["2024-01-01", "2024-02-01"])})
    events = pd.DataFrame(
        {
            "patient_id": ["a"],
            "session_date": pd.to_datetime(["2024-01-01"]),
            "event": ["neck_pain"],
            "onset_date": pd.to_datetime(["2024-01-03"]),
            "serious": pd.array([False], dtype="boolean"),
        }
    )
    rates = clinic.adverse_event_rates(events, sessions, pd.Timestamp("2024-12-31"))
    fig = figures.build_adverse_event_figure(rates)
    bars = fig.data[0]
    assert "all events" not in list(bars.y) and "neck pain" in list(bars.y)
    neck = list(bars.y).index("neck pain")
    assert bars.x[neck] == pytest.approx(50.0)
    upper = rates.set_index("event").loc["neck_pain", "ci_high"]
    assert bars.x[neck] + bars.error_x.array[neck] == pytest.approx(upper)
    assert "n = 2 sessions" in fig.layout.title.text


def test_adverse_event_bars_go_from_the_most_frequent_down_with_other_last() -> None:
    sessions = pd.DataFrame({"patient_id": ["a"] * 10, "session_date": pd.date_range("2024-01-01", periods=10)})
    counts = {"headache": 5, "neck_pain": 2, "eyelid_ptosis": 2, "other": 9}
    events = pd.DataFrame(
        [
            {
                "patient_id": "a",
                "session_date": pd.Timestamp("2024-01-01"),
                "event": event,
                "onset_date": pd.Timestamp("2024-01-02"),
                "serious": False,
            }
            for event, n in counts.items()
            for _ in range(n)
        ]
    ).astype({"serious": "boolean"})
    rates = clinic.adverse_event_rates(events, sessions, pd.Timestamp("2024-12-31"))
    # 5 > 2 = 2 > 0 = … per 100 sessions; ties keep the vocabulary's order (neck pain before eyelid ptosis);
    # "other" is the catch-all and goes last although it is the most frequent.
    expected = [
        "headache",
        "neck_pain",
        "eyelid_ptosis",
        "injection_site_pain",
        "muscular_weakness",
        "musculoskeletal_stiffness",
        "facial_paresis",
        "dysphagia",
        "other",
    ]
    assert figures.adverse_event_order(rates) == expected
    fig = figures.build_adverse_event_figure(rates)
    top_down = [e.replace("_", " ") for e in expected]
    assert list(fig.layout.yaxis.categoryarray) == top_down[::-1]  # a horizontal chart lists from the bottom up
    assert list(fig.data[0].y) == top_down[::-1]
    assert list(fig.data[0].x) == pytest.approx([90, 0, 0, 0, 0, 0, 20, 20, 50])


def test_completeness_figure_marks_the_threshold() -> None:
    current = pd.DataFrame({"completeness": [0.2, 0.65, 0.7, 0.95, 1.0]})
    fig = figures.build_completeness_figure(clinic.completeness_distribution(current, 0.7), 0.7)
    below, above = fig.data
    assert below.name == "below 70%" and list(below.x) == ["20–<30%", "60–<70%"]
    assert list(above.x) == ["70–<80%", "90–100%"] and list(above.y) == [1, 2]
    assert "n = 5 active patients" in fig.layout.title.text


def test_funnel_figure_draws_limits_overall_rate_and_highlights_the_chosen_unit() -> None:
    cycles = pd.DataFrame(
        {
            "patient_id": [f"p{i}" for i in range(12)],
            "cycle": 2,
            "mhd_change": [-5.0] * 11 + [np.nan],
            "responder_50": pd.array([True] * 6 + [False] * 5 + [pd.NA], dtype="boolean"),
        }
    )
    roster = pd.DataFrame({"patient_id": [f"p{i}" for i in range(12)], "first_injector": ["A"] * 5 + ["B"] * 6 + ["C"]})
    funnel = clinic.responder_funnel(
        SimpleNamespace(patient_cycles=cycles), roster, "first_injector", "injector", highlight="B"
    )
    fig = figures.build_funnel_figure(funnel)
    limit_traces = [t for t in fig.data if "limits" in (t.name or "")]
    assert len(limit_traces) == 4
    np.testing.assert_allclose(limit_traces[1].y, funnel.curves["upper_998"])
    overall = next(t for t in fig.data if t.name.startswith("overall"))
    assert list(overall.y) == [6 / 11, 6 / 11] and "(6/11)" in overall.name
    points = {t.name: t for t in fig.data if t.mode == "markers+text"}
    assert list(points["injectors"].text) == ["A"] and list(points["selected injector"].text) == ["B"]
    assert "C" not in [u for t in points.values() for u in t.text]  # no evaluable patient: not drawn as 0%
    assert fig.layout.title.subtitle.text == "n = 11 evaluable patients, 2 injectors"
    none_evaluable = SimpleNamespace(patient_cycles=cycles.iloc[:0])
    empty = clinic.responder_funnel(none_evaluable, roster, "first_injector", "injector")
    assert "No patients evaluable" in annotations_text(figures.build_funnel_figure(empty))[0]


def test_funnel_names_only_the_units_outside_the_limits_when_there_are_many() -> None:
    # Six injectors of 20 patients: five with 10 responders, F with all 20 (far above the 99.8% limit).
    injectors = [u for u in "ABCDEF" for _ in range(20)]
    responders = [i % 20 < (20 if u == "F" else 10) for i, u in enumerate(injectors)]
    ids = [f"p{i}" for i in range(len(injectors))]
    cycles = pd.DataFrame(
        {"patient_id": ids, "cycle": 2, "mhd_change": -5.0, "responder_50": pd.array(responders, dtype="boolean")}
    )
    roster = pd.DataFrame({"patient_id": ids, "first_injector": injectors})
    funnel = clinic.responder_funnel(SimpleNamespace(patient_cycles=cycles), roster, "first_injector", "injector")
    points = next(t for t in figures.build_funnel_figure(funnel).data if t.name == "injectors")
    named = [unit for unit, template in zip(points.text, points.texttemplate, strict=True) if template]
    assert named == ["F"] and sorted(points.text) == list("ABCDEF")  # every unit is still in the hover
