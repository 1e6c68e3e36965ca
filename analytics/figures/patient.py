"""Figures of the doctor's one-patient view: pure ``build_*_figure(...) -> go.Figure`` builders.

Each builder takes one patient's rows of the tables in ``analytics.definitions.clinical`` and
``pipeline.Analysis`` and draws them; none computes a clinical definition. Missing stays visibly
missing: unrecorded diary days are grey (headache-free is green), windows with too few diary days
are gaps with a grey band, and cycles that are not evaluable are hatched and labelled, never drawn
as zero. Medication overuse (MO) and late re-injections are drawn where ``clinical.cycle_flags`` has marked
them, so a figure shows exactly the cycles and sessions that definition flags. Shapes are passed to the
layout in one call because adding them one by one is slow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol, cast

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analytics.definitions.clinical import (
    BANDED_INSTRUMENTS,
    CALENDAR_CATEGORIES,
    MIDLINE_MUSCLES,
    PREEMPT_PER_SIDE,
    signed,
)
from analytics.figures import theme

MINUS = "−"
CALENDAR_COLOURS = (theme.MISSING, theme.HEADACHE_FREE, "#fbeeb8", theme.HEADACHE, "#e07b39", theme.SEVERE)
ACUTE_MEDICATION = "#56b4e9"
BAND_COLOURS = ("#009e73", "#f0e442", "#e69f00", "#d55e00")
AE_SEVERITY_COLOURS = {"mild": "#f0b357", "moderate": "#e07b39", "severe": "#b2182b"}
FTP_COLOUR = "#e69f00"
LATE_COLOUR = "#cc79a7"  # late re-injection: apart from the injection blue and the calendar's yellows and browns
OVERUSE_COLOUR = theme.TEXT
BARGAP = 0.25  # the per-cycle bars' gap between groups
VISIBLE_CYCLES = 3  # the weekly profile shows the latest cycles; earlier ones are one legend click away
LEGEND_BELOW = theme.LEGEND_BELOW
PHONE_CYCLES = 4  # the compact per-cycle bars show the baseline and the latest cycles


def _pct(value: float) -> str:
    return signed(value, 0, "%")


def _empty(message: str, title: str, height: int = 220) -> go.Figure:
    """A figure that says why there is nothing to draw (never an empty axis that reads as zero)."""
    note = dict(text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font=dict(size=15))
    layout = dict(annotations=[note], xaxis=dict(visible=False), yaxis=dict(visible=False), title=title, height=height)
    return theme.figure([], layout)


def _finish(
    traces: list[dict[str, Any]], layout: dict[str, Any], title: str, height: int, subtitle: str = ""
) -> go.Figure:
    """The figure of these traces and layout, made once (``theme.figure``): shared template, the title pinned to the
    top (a smaller second line if any), the legend at the bottom; a ``margin`` in ``layout`` overrides.

    The legend sits below the axes, where it can wrap into as many rows as a narrow (phone) screen needs:
    Plotly grows the bottom margin for it, so it never covers the title or the plot. Titles are kept short
    enough for a phone (Plotly does not wrap them); details go in the subtitle or the caption.
    """
    text = f"{title}<br><span style='font-size:13px;color:{theme.BASELINE}'>{subtitle}</span>" if subtitle else title
    title_layout = dict(text=text, yref="container", y=1, yanchor="top", pad=dict(t=16 if subtitle else 12))
    margin = {"t": 56 + (20 if subtitle else 0), **layout.get("margin", {})}
    return theme.figure(
        traces,
        {
            **layout,
            "title": title_layout,
            "height": height + (20 if subtitle else 0),
            "margin": margin,
            "legend": LEGEND_BELOW,
        },
    )


def _legend_square(name: str, colour: str, symbol: str = "square", line: str | None = None) -> dict[str, Any]:
    """A legend-only entry (no data) for a colour or marker used by a heatmap or shapes."""
    return dict(
        type="scatter",
        x=[None],
        y=[None],
        mode="markers",
        name=name,
        hoverinfo="skip",
        marker=dict(symbol=symbol, size=14, color=colour, line=dict(width=2 if line else 0, color=line or colour)),
    )


def _hline(
    y: float, colour: str, width: float, dash: str | None = None, x0: float = 0, x1: float = 1, xref: str = "paper"
) -> dict:
    """A horizontal reference line at ``y`` (baseline, threshold) across the plot, or from x0 to x1."""
    line = dict(color=colour, width=width) | (dict(dash=dash) if dash else {})
    return dict(type="line", xref=xref, yref="y", x0=x0, x1=x1, y0=y, y1=y, line=line)


def _injection_lines(cycles: pd.DataFrame, yref: str = "paper", xref: str = "x") -> tuple[list[dict], list[dict]]:
    """Vertical lines and 'C1', 'C2' … labels at each injection date."""
    sessions = cycles[cycles["cycle"] >= 1]
    shapes = [
        dict(
            type="line",
            xref=xref,
            yref=yref if yref != "paper" else "paper",
            x0=d,
            x1=d,
            y0=0,
            y1=1,
            line=dict(color=theme.INJECTION, width=1.5, dash="dot"),
            layer="below",
        )
        for d in sessions["start_date"]
    ]
    labels = [
        dict(
            x=d,
            y=1,
            xref=xref,
            yref="paper",
            text=f"C{int(k)}",
            showarrow=False,
            yanchor="bottom",
            font=dict(size=12, color=theme.INJECTION),
        )
        for d, k in zip(sessions["start_date"], sessions["cycle"], strict=True)
    ]
    return shapes, labels


def _late_sessions(cycles: pd.DataFrame | None) -> pd.DataFrame:
    """The sessions ``clinical.cycle_flags`` marks as late re-injections (none without those columns)."""
    if cycles is None or "late_reinjection" not in cycles:
        return pd.DataFrame(columns=["cycle", "start_date", "interval_days", "days_late"])
    # The four columns first: sorting the whole (wide) cycles frame copies every column.
    late = cycles.loc[
        cycles["late_reinjection"].eq(True).fillna(False).astype(bool),
        ["cycle", "start_date", "interval_days", "days_late"],
    ]
    return late.sort_values("cycle")


def _late_text(late: pd.DataFrame) -> list[str]:
    """'Cycle 3 started 127 days after the previous session (29 past 98)' for each late session."""
    return [
        f"Cycle {int(k)} started {int(gap)} days after the previous session ({int(over)} past {int(gap - over)})"
        for k, gap, over in zip(late["cycle"], late["interval_days"], late["days_late"], strict=True)
    ]


def _late_label(late: pd.DataFrame) -> str:
    limit = int(late["interval_days"].iloc[0] - late["days_late"].iloc[0])
    return f"late re-injection (>{limit} days after the previous one)"


def _overuse_label(overuse_acute_days: float | None) -> str:
    threshold = f": acute medication on ≥{overuse_acute_days:g} days / 28 d" if overuse_acute_days is not None else ""
    return f"MO: medication overuse{threshold}"


# --- 1. diary calendar


@dataclass(frozen=True)
class _Calendar:
    """What the full and the compact diary calendar share (``_calendar``): the page draws both of one patient."""

    days: pd.DataFrame
    z: np.ndarray  # category per (month row, day column)
    text: np.ndarray  # hover text per (month row, day column)
    row: np.ndarray  # each diary day's month row and day column
    col: np.ndarray
    migraine: np.ndarray  # each diary day's marks
    acute: np.ndarray
    injected: np.ndarray
    tick_text: list[str]
    late: pd.DataFrame  # the late re-injections (``_late_sessions``), with their row, column and hover text
    late_row: np.ndarray
    late_col: np.ndarray
    late_text: list[str]


def _calendar(days: pd.DataFrame, cycles: pd.DataFrame | None) -> _Calendar:
    dates = days["date"]
    month_index = (dates.dt.year * 12 + dates.dt.month - 1).to_numpy()
    first = int(month_index.min())
    row = month_index - first
    col = dates.dt.day.to_numpy() - 1
    n_rows = int(row.max()) + 1
    z = np.full((n_rows, 31), np.nan)
    z[row, col] = days["category"].to_numpy()

    labels = np.array(CALENDAR_CATEGORIES, dtype=object)
    hours = days["headache_hours"]
    detail = np.where(
        days["recorded"],
        "headache "
        + hours.map(lambda h: f"{h:g}").astype(str)
        + " h"
        + np.where(days["migraine"].fillna(False).astype(bool), ", migraine", "")
        + days["severity"]
        .map({0: ", severity none", 1: ", mild", 2: ", moderate", 3: ", severe"})
        .fillna("")
        .astype(str)
        + np.where(days["acute_medication"].fillna(False).astype(bool), ", acute medication", ""),
        "not recorded",
    )
    cycle_text = np.where(
        days["cycle"].isna(),
        "outside the treatment windows",
        np.where(
            days["cycle"].fillna(0) == 0,
            "baseline day " + days["day_in_cycle"].astype("string").fillna(""),
            "cycle "
            + days["cycle"].astype("string").fillna("")
            + ", day "
            + days["day_in_cycle"].astype("string").fillna(""),
        ),
    )
    injected = days["injection_cycle"].notna()
    hover = (
        dates.dt.strftime("%a %d %b %Y").to_numpy()
        + "<br>"
        + labels[days["category"].to_numpy()]
        + "<br>"
        + detail
        + "<br>"
        + cycle_text
        + np.where(
            injected,
            "<br><b>injection (cycle " + days["injection_cycle"].astype("string").fillna("") + " starts)</b>",
            "",
        )
    )
    text = np.full((n_rows, 31), "", dtype=object)
    text[row, col] = hover

    month_labels = pd.period_range(
        pd.Period(year=first // 12, month=first % 12 + 1, freq="M"), periods=n_rows, freq="M"
    )
    late = _late_sessions(cycles)
    late_dates = pd.to_datetime(late["start_date"])
    return _Calendar(
        days=days,
        z=z,
        text=text,
        row=row,
        col=col,
        migraine=days["migraine"].fillna(False).astype(bool).to_numpy(),
        acute=days["acute_medication"].fillna(False).astype(bool).to_numpy(),
        injected=injected.to_numpy(),
        tick_text=[p.strftime("%b %Y") for p in month_labels],
        late=late,
        late_row=(late_dates.dt.year * 12 + late_dates.dt.month - 1).to_numpy() - first,
        late_col=late_dates.dt.day.to_numpy(),
        late_text=_late_text(late) if len(late) else [],
    )


def build_diary_calendar_figure(
    days: pd.DataFrame, headache_min_hours: float, cycles: pd.DataFrame | None = None, compact: bool = False
) -> go.Figure:
    """Diary calendar: one row per month, one column per day of the month, coloured by category.

    ``days`` is one patient's daily grid (``clinical.diary_days``). Unrecorded days are grey,
    headache-free days green; dates that do not exist (30 February) and days outside follow-up
    are left blank. Migraine days carry a white dot, acute medication a blue corner mark and
    injection days a blue frame. With ``cycles`` (the patient's rows of ``clinical.cycle_flags``), a
    late re-injection gets an outer frame and a note at the end of its month's row. ``compact`` lays it
    out for a phone: every fifth day numbered, marks sized to cells of about 9 px, the late note in the hover.
    """
    if days.empty:
        return _empty_calendar()
    return _calendar_figure(_calendar(days, cycles), headache_min_hours, compact)


def _empty_calendar() -> go.Figure:
    return _empty("No diary days in this patient's follow-up", "Diary calendar (one row per month)")


def build_diary_calendar_figures(
    days: pd.DataFrame, headache_min_hours: float, cycles: pd.DataFrame | None = None
) -> tuple[go.Figure, go.Figure]:
    """``build_diary_calendar_figure`` in its full and its compact layout, from one pass over the days."""
    if days.empty:
        return _empty_calendar(), _empty_calendar()
    calendar = _calendar(days, cycles)
    return _calendar_figure(calendar, headache_min_hours, False), _calendar_figure(calendar, headache_min_hours, True)


def _calendar_figure(calendar: _Calendar, headache_min_hours: float, compact: bool) -> go.Figure:
    days, row, col = calendar.days, calendar.row, calendar.col
    n_rows = len(calendar.tick_text)
    n_cat = len(CALENDAR_COLOURS)
    colorscale = []
    for i, colour in enumerate(CALENDAR_COLOURS):
        colorscale += [[i / n_cat, colour], [(i + 1) / n_cat, colour]]
    traces: list[dict[str, Any]] = [
        dict(
            type="heatmap",
            z=calendar.z,
            x=np.arange(1, 32),
            y=np.arange(n_rows),
            colorscale=colorscale,
            zmin=-0.5,
            zmax=n_cat - 0.5,
            showscale=False,
            xgap=2,
            ygap=2,
            hovertext=calendar.text,
            hovertemplate="%{hovertext}<extra></extra>",
            name="diary",
        )
    ]
    migraine, acute, inj = calendar.migraine, calendar.acute, calendar.injected
    traces.append(
        dict(
            type="scatter",
            x=col[migraine] + 1,
            y=row[migraine],
            mode="markers",
            name="migraine day",
            hoverinfo="skip",
            marker=dict(symbol="circle", size=4 if compact else 7, color="white", line=dict(width=1, color=theme.TEXT)),
        )
    )
    traces.append(
        dict(
            type="scatter",
            x=col[acute] + 1.3,
            y=row[acute] - 0.28,
            mode="markers",
            name="acute medication",
            hoverinfo="skip",
            marker=dict(
                symbol="triangle-down",
                size=4 if compact else 6,
                color=ACUTE_MEDICATION,
                line=dict(width=0.5, color=theme.TEXT),
            ),
        )
    )
    traces.append(
        dict(
            type="scatter",
            x=col[inj] + 1,
            y=row[inj],
            mode="markers",
            name="injection day",
            hoverinfo="skip",
            marker=dict(
                symbol="square-open",
                size=12 if compact else 24,
                color=theme.INJECTION,
                line=dict(width=2 if compact else 3, color=theme.INJECTION),
            ),
        )
    )
    late = calendar.late
    late_notes: list[dict] = []
    if len(late):
        traces.append(
            dict(
                type="scatter",
                x=calendar.late_col,
                y=calendar.late_row,
                mode="markers",
                name=_late_label(late),
                hovertext=calendar.late_text,
                hovertemplate="%{hovertext}<extra></extra>",
                marker=dict(
                    symbol="square-open",
                    size=16 if compact else 30,
                    color=LATE_COLOUR,
                    line=dict(width=2 if compact else 3, color=LATE_COLOUR),
                ),
            )
        )
        late_notes = (
            []
            if compact
            else [
                dict(
                    x=31.6,
                    y=r,
                    xref="x",
                    yref="y",
                    xanchor="left",
                    showarrow=False,
                    text=f"late: {int(gap)} d",
                    font=dict(size=11, color=LATE_COLOUR),
                )
                for r, gap in zip(calendar.late_row, late["interval_days"], strict=True)
            ]
        )
    legend_names = (
        "not recorded",
        "headache-free",
        f"headache < {headache_min_hours:g} h",
        "headache day, mild/unrated",
        "headache day, moderate",
        "headache day, severe",
    )
    for name, colour in zip(legend_names, CALENDAR_COLOURS, strict=True):
        traces.append(_legend_square(name, colour))
    xaxis = dict(
        title=None,
        tickvals=[1, 5, 10, 15, 20, 25, 30] if compact else list(range(1, 32)),
        range=[0.5, 31.5],
        showgrid=False,
        side="top",
        ticks="",
        tickfont=dict(size=12),
    )
    yaxis = dict(
        tickvals=list(range(n_rows)), ticktext=calendar.tick_text, autorange="reversed", showgrid=False, title=None
    )
    recorded = int(days["recorded"].sum())
    subtitle = f"{recorded} of {len(days)} days recorded ({recorded / len(days):.0%})"
    if compact:
        # About 9 px a day on a phone: short rows, and room below for the legend's many wrapped lines.
        layout = dict(
            xaxis={**xaxis, "tickfont": dict(size=11)},
            yaxis={**yaxis, "tickfont": dict(size=11)},
            margin=dict(t=90, l=10, r=10),
            plot_bgcolor="white",
        )
        return _finish(traces, layout, "Diary calendar (a row a month)", 290 + 15 * n_rows, subtitle=subtitle)
    subtitle += f", {days['date'].min():%d %b %Y} to {days['date'].max():%d %b %Y}"
    layout = dict(xaxis=xaxis, yaxis=yaxis, margin=dict(t=90, r=90 if late_notes else None), plot_bgcolor="white")
    if late_notes:
        layout["annotations"] = late_notes
    return _finish(
        traces, layout, "Diary calendar (one row per month, one column per day)", 200 + 26 * n_rows, subtitle=subtitle
    )


# --- 2. rolling 28-day headache days


def _missing_spans(dates: pd.Series, missing: pd.Series) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Runs of consecutive days where ``missing`` is true, as (first, last) dates."""
    run_id = (missing != missing.shift()).cumsum()
    runs = pd.DataFrame({"date": dates, "run": run_id})[missing.to_numpy()]
    spans = runs.groupby("run")["date"].agg(["min", "max"])
    return list(zip(spans["min"], spans["max"], strict=True))


def _timeline_flags(cycles: pd.DataFrame, overuse_acute_days: float | None) -> list[dict[str, Any]]:
    """The timeline's MO bars (one segment per flagged window, near the top) and late re-injection markers."""
    traces: list[dict[str, Any]] = []
    if "overuse" in cycles:
        overuse = cycles["overuse"].eq(True).fillna(False).astype(bool)
        flagged = cycles.loc[overuse, ["cycle", "start_date", "end_date", "amd"]].sort_values("cycle")
        if len(flagged):
            # One trace of segments separated by gaps (None), each from a window's start to its end.
            x = [v for a, b in zip(flagged["start_date"], flagged["end_date"], strict=True) for v in (a, b, None)]
            names = np.where(flagged["cycle"] == 0, "Baseline", "Cycle " + flagged["cycle"].astype(str))
            hover = [
                f"{name}: acute medication on {amd:.1f} days / 28 d (medication overuse)"
                for name, amd in zip(names, flagged["amd"], strict=True)
            ]
            traces.append(
                dict(
                    type="scatter",
                    x=x,
                    y=[27.2, 27.2, None] * len(flagged),
                    mode="lines",
                    name=_overuse_label(overuse_acute_days),
                    line=dict(color=OVERUSE_COLOUR, width=6),
                    hovertext=[h for h in hover for _ in range(3)],
                    hovertemplate="%{hovertext}<extra></extra>",
                )
            )
    late = _late_sessions(cycles)
    if len(late):
        traces.append(
            dict(
                type="scatter",
                x=late["start_date"],
                y=[25.8] * len(late),
                mode="markers+text",
                text=["late"] * len(late),
                textposition="middle right",
                textfont=dict(size=11, color=LATE_COLOUR),
                name=_late_label(late),
                marker=dict(symbol="triangle-down", size=12, color=LATE_COLOUR),
                hovertext=_late_text(late),
                hovertemplate="%{hovertext}<extra></extra>",
            )
        )
    return traces


def build_rolling_headache_figure(
    days: pd.DataFrame,
    cycles: pd.DataFrame,
    min_completeness: float,
    period_days: int = 28,
    overuse_acute_days: float | None = None,
) -> go.Figure:
    """Rolling headache days per 28 days over time, with injection dates and the baseline level.

    ``days`` is one patient's daily grid; days whose window has too few recorded days are gaps
    shaded grey, never zero. ``cycles`` is the patient's rows of ``patient_cycles``; when they carry
    ``clinical.cycle_flags``, cycles with medication overuse get an "MO" bar along the top and late
    re-injections a marker at their injection line.
    """
    title = f"Headache days per {period_days} days over time"
    if days.empty:
        return _empty("No diary days in this patient's follow-up", title)
    rate = days["rolling_mhd"]
    custom = np.column_stack([days["rolling_headache_days"], days["rolling_recorded"]])
    traces: list[dict[str, Any]] = [
        dict(
            type="scatter",
            x=days["date"],
            y=rate,
            mode="lines",
            name=f"headache days / {period_days} d",
            connectgaps=False,
            line=dict(color=theme.PRIMARY, width=2.5),
            customdata=custom,
            hovertemplate=(
                f"%{{x|%d %b %Y}}<br>%{{y:.1f}} headache days / {period_days} d"
                f"<br>%{{customdata[0]}} headache days in %{{customdata[1]}} of {period_days} days recorded"
                "<extra></extra>"
            ),
        )
    ]
    shapes, annotations = _injection_lines(cycles)
    for start, end in _missing_spans(days["date"], rate.isna()):
        shapes.append(
            dict(
                type="rect",
                xref="x",
                yref="paper",
                x0=start - pd.Timedelta(hours=12),
                x1=end + pd.Timedelta(hours=12),
                y0=0,
                y1=1,
                fillcolor=theme.MISSING,
                opacity=0.25,
                line=dict(width=0),
                layer="below",
            )
        )
    traces.append(_legend_square(f"too few diary days (<{min_completeness:.0%} of {period_days})", theme.MISSING))
    base = cycles[cycles["cycle"] == 0]
    if len(base):
        b = base.iloc[0]
        shapes.append(
            dict(
                type="rect",
                xref="x",
                yref="paper",
                x0=b["start_date"],
                x1=b["end_date"] + pd.Timedelta(days=1),
                y0=0,
                y1=1,
                fillcolor=theme.INJECTION,
                opacity=0.07,
                line=dict(width=0),
                layer="below",
            )
        )
        annotations.append(
            dict(
                x=b["start_date"],
                y=0.02,
                xref="x",
                yref="paper",
                text="baseline window",
                showarrow=False,
                xanchor="left",
                yanchor="bottom",
                font=dict(size=11, color=theme.BASELINE),
            )
        )
        if pd.notna(b["mhd"]):
            evaluable = "" if b["evaluable"] else ", not evaluable"
            label = f"baseline {b['mhd']:.1f} ({int(b['recorded_days'])}/{int(b['window_days'])} d{evaluable})"
            shapes.append(_hline(b["mhd"], theme.BASELINE, 1.5, dash="dash"))
            annotations.append(
                dict(
                    x=0,
                    y=b["mhd"],
                    xref="paper",
                    yref="y",
                    text=label,
                    showarrow=False,
                    xanchor="left",
                    yanchor="bottom",
                    font=dict(size=12, color=theme.BASELINE),
                )
            )
    shapes.append(_hline(15, theme.NON_RESPONDER, 1, dash="dot"))
    annotations.append(
        dict(
            x=1,
            y=15,
            xref="paper",
            yref="y",
            text="15: chronic threshold",
            showarrow=False,
            xanchor="right",
            yanchor="bottom",
            font=dict(size=11, color=theme.NON_RESPONDER),
        )
    )
    traces.append(_legend_square("injection (C = cycle)", theme.INJECTION, symbol="line-ns-open", line=theme.INJECTION))
    traces += _timeline_flags(cycles, overuse_acute_days)
    layout = dict(
        shapes=shapes,
        annotations=annotations,
        yaxis=dict(title=f"headache days / {period_days} days", range=[0, 28.5]),
        xaxis=dict(title=None),
    )
    return _finish(traces, layout, title, 400)


# --- 3. per-cycle bars


def build_cycle_bars_figure(
    cycles: pd.DataFrame,
    thresholds: tuple[int, ...] = (30, 50, 75),
    overuse_acute_days: float | None = None,
    compact: bool = False,
) -> go.Figure:
    """Headache, migraine and acute-medication days per 28 days for the baseline and each cycle.

    Reduction lines at 30/50/75% below the baseline's headache days; cycles that are not evaluable
    are hatched and labelled (a window with no diary day has no bar and says so); each cycle's
    completeness is written under it. When ``cycles`` carry ``clinical.cycle_flags``, windows with
    medication overuse get an "MO" mark over their acute-medication bar (with a legend entry).
    ``compact`` lays it out for a phone: the baseline and the latest cycles only (``PHONE_CYCLES``), short
    names under the bars and no values written on them (the hover has them).
    """
    title = "Per cycle against the baseline" if compact else "Per cycle: days per 28 days against the baseline"
    if cycles.empty:
        return _empty("No injection sessions", title)
    c = cycles.sort_values("cycle").reset_index(drop=True)
    dropped = 0
    if compact and (c["cycle"] >= 1).sum() > PHONE_CYCLES:
        dropped = int((c["cycle"] >= 1).sum()) - PHONE_CYCLES
        c = pd.concat([c[c["cycle"] == 0], c[c["cycle"] >= 1].iloc[-PHONE_CYCLES:]], ignore_index=True)
    names = np.where(c["cycle"] == 0, "Baseline", "Cycle " + c["cycle"].astype(str))
    names = np.where(c["status"] == "ongoing", names + " (ongoing)", names)
    brief = compact or len(c) > 9  # "C10" under a narrow group
    short = np.where(
        c["cycle"] == 0, "Base" if brief else "Baseline", ("C" if brief else "Cycle ") + c["cycle"].astype(str)
    )
    short = np.where(c["status"] == "ongoing", short + "*", short)
    ticks = [
        f"<b>{name}</b><br>{comp:.0%}" if compact else f"<b>{name}</b><br>{int(rec)}/{int(win)} d<br>{comp:.0%}"
        for name, rec, win, comp in zip(short, c["recorded_days"], c["window_days"], c["completeness"], strict=True)
    ]
    x = list(range(len(c)))
    evaluable = c["evaluable"].astype(bool).to_numpy()
    pattern = np.where(evaluable, "", "/")
    opacity = np.where(evaluable, 1.0, 0.45)
    custom = np.column_stack(
        [
            names,
            c["start_date"].dt.strftime("%d %b %Y"),
            c["end_date"].dt.strftime("%d %b %Y"),
            c["recorded_days"].astype("float64"),
            c["window_days"],
            np.where(evaluable, "evaluable", "NOT evaluable"),
        ]
    )
    traces: list[dict[str, Any]] = []
    for column, count, label, colour in (
        ("mhd", "headache_days", "headache days", theme.PRIMARY),
        ("mmd", "migraine_days", "migraine days", theme.MIGRAINE),
        ("amd", "acute_med_days", "acute-medication days", ACUTE_MEDICATION),
    ):
        values = c[column].astype("float64")
        if values.isna().all():
            continue
        fig_custom = np.column_stack([custom, c[count].astype("float64")])
        traces.append(
            dict(
                type="bar",
                x=x,
                y=values,
                name=f"{label} / 28 d",
                marker=dict(color=colour, opacity=opacity, pattern=dict(shape=pattern)),
                customdata=fig_custom,
                textposition="outside",
                # Values are written on the headache-day bars only; the others are in the hover.
                text=values.map(lambda v: f"{v:.1f}" if pd.notna(v) else "")
                if column == "mhd" and not compact
                else None,
                hovertemplate=(
                    f"%{{customdata[0]}} (%{{customdata[1]}} – %{{customdata[2]}})<br>{label}: %{{y:.1f}} / 28 d"
                    " (%{customdata[6]:.0f} in %{customdata[3]:.0f} recorded days)"
                    "<br>%{customdata[3]:.0f} of %{customdata[4]} days recorded: %{customdata[5]}<extra></extra>"
                ),
            )
        )
    if not traces:
        return _empty("No diary days in any window", title)
    traces.append(_legend_square("not evaluable (hatched: too few diary days)", "#cccccc", line=theme.TEXT))
    if "overuse" in c:
        flagged = c["overuse"].eq(True).fillna(False).astype(bool).to_numpy()
        if flagged.any():
            amd = c["amd"].astype("float64").to_numpy()
            # The acute-medication bar is the last of the group's n bars, each (1 − bargap) / n wide.
            n_bars = sum(t["type"] == "bar" for t in traces)
            offset = (n_bars - 1) / 2 * (1 - BARGAP) / n_bars
            traces.append(
                dict(
                    type="scatter",
                    x=np.flatnonzero(flagged) + offset,
                    y=amd[flagged],
                    mode="markers+text",
                    text=["MO"] * int(flagged.sum()),
                    textposition="top center",
                    textfont=dict(size=11 if compact else 12, color=OVERUSE_COLOUR),
                    name=_overuse_label(overuse_acute_days),
                    marker=dict(
                        symbol="diamond", size=9, color=ACUTE_MEDICATION, line=dict(width=1.5, color=OVERUSE_COLOUR)
                    ),
                    customdata=names[flagged],
                    hovertemplate="%{customdata}: acute medication on %{y:.1f} days / 28 d: medication overuse"
                    "<extra></extra>",
                )
            )
    shapes: list[dict] = []
    annotations: list[dict] = []
    base = c[c["cycle"] == 0]
    baseline_mhd = float(base["mhd"].iloc[0]) if len(base) and pd.notna(base["mhd"].iloc[0]) else np.nan
    if len(c) > 1 and np.isfinite(baseline_mhd) and baseline_mhd > 0 and bool(base["evaluable"].iloc[0]):
        for t in thresholds:
            level = baseline_mhd * (1 - t / 100)
            colour = theme.THRESHOLD_COLOURS.get(t, theme.BASELINE)
            shapes.append(_hline(level, colour, 1.5, dash="dash", x0=0.5, x1=len(c) - 0.5, xref="x"))
            annotations.append(
                dict(
                    x=len(c) - 0.5,
                    y=level,
                    xref="x",
                    yref="y",
                    xanchor="left",
                    showarrow=False,
                    text=f"{MINUS}{t}%" if compact else f"{MINUS}{t}%: {level:.1f}",
                    font=dict(size=11 if compact else 12, color=colour),
                )
            )
        shapes.append(_hline(baseline_mhd, theme.BASELINE, 1.5, x0=-0.5, x1=len(c) - 0.5, xref="x"))
        annotations.append(
            dict(
                x=len(c) - 0.5,
                y=baseline_mhd,
                xref="x",
                yref="y",
                xanchor="left",
                showarrow=False,
                text=f"{baseline_mhd:.1f}" if compact else f"baseline: {baseline_mhd:.1f}",
                font=dict(size=11 if compact else 12, color=theme.BASELINE),
            )
        )
    top = (
        float(np.nanmax(c[["mhd", "mmd", "amd"]].astype("float64").to_numpy()))
        if c[["mhd", "mmd", "amd"]].notna().any().any()
        else 28
    )
    for i, row in c.iterrows():
        if row["cycle"] == 0:
            note = "" if row["evaluable"] else "not<br>evaluable"
        elif pd.isna(row["mhd"]):
            note = "no diary<br>days"
        elif not row["evaluable"]:
            note = "not<br>evaluable"
        elif pd.notna(row["mhd_pct_change"]):
            note = f"<b>{_pct(row['mhd_pct_change'])}</b>"
        else:
            note = "not<br>compared"  # the baseline is not evaluable
        if note:
            annotations.append(
                dict(
                    x=i,
                    y=top * 1.12 + 1,
                    xref="x",
                    yref="y",
                    text=note,
                    showarrow=False,
                    font=dict(size=11 if compact else 13, color=theme.TEXT if row["evaluable"] else theme.BASELINE),
                )
            )
    layout = dict(
        shapes=shapes,
        annotations=annotations,
        barmode="group",
        bargap=BARGAP,
        xaxis=dict(tickvals=x, ticktext=ticks, title=None, tickangle=0, tickfont=dict(size=11 if compact else 12)),
        yaxis=dict(title="days / 28 days", range=[0, max(28.0, top * 1.12 + 3)]),
        margin=dict(l=50, r=45) if compact else dict(r=110),
    )
    ongoing = " (* ongoing)" if (c["status"] == "ongoing").any() else ""
    if compact:
        earlier = {0: "", 1: "; cycle 1 in the per-cycle table"}.get(
            dropped, f"; cycles 1–{dropped} in the per-cycle table"
        )
        return _finish(traces, layout, title + ongoing, 520, subtitle=f"days per 28 days{earlier}")
    return _finish(traces, layout, title + ongoing, 480)


# --- 4. weekly profile within cycles


# Distinct colours for the cycles, latest first (the weekly profile shows the latest few).
CYCLE_COLOURS = ("#1f5f8b", "#cc79a7", "#8c6d31", "#56b4e9", "#1b2430", "#009e73", "#d55e00", "#7f7f7f")


def _cycle_colours(cycles: list[int]) -> dict[int, str]:
    """The latest cycle in the primary blue, earlier ones in other distinct colours."""
    latest_first = sorted(cycles, reverse=True)
    return {k: CYCLE_COLOURS[i % len(CYCLE_COLOURS)] for i, k in enumerate(latest_first)}


def build_weekly_profile_figure(
    weekly: pd.DataFrame,
    days: pd.DataFrame,
    profile: pd.DataFrame,
    reference_weeks: tuple[int, int] = (3, 8),
    late_days: int = 28,
    compact: bool = False,
) -> go.Figure:
    """Headache days per week since the injection, one line per cycle, with onset and wearing-off.

    ``weekly`` is the patient's ``clinical.weekly_profile`` rows (weeks that are not evaluable are
    gaps), ``days`` the daily grid (thin lines: the 7-day moving average), ``profile`` the
    patient's ``cycle_profile`` rows (onset week, wearing-off, baseline weekly rate). ``compact`` (a phone)
    leaves the earlier cycles out of the legend too, which would otherwise outgrow the chart.
    """
    title = "Headache days per week, by cycle"
    if weekly.empty:
        return _empty("No treatment cycle yet", title)
    cycles = sorted(weekly["cycle"].unique())
    colours = _cycle_colours(cycles)
    max_week = int(weekly["week"].max())
    first_week, last_week = reference_weeks
    shapes = [
        dict(
            type="rect",
            xref="x",
            yref="paper",
            x0=first_week - 0.5,
            x1=last_week + 0.5,
            y0=0,
            y1=1,
            fillcolor="#e3e8ef",
            opacity=0.5,
            line=dict(width=0),
            layer="below",
        ),
        dict(
            type="rect",
            xref="x",
            yref="paper",
            x0=last_week + 0.5,
            x1=max(max_week, last_week + late_days // 7) + 0.5,
            y0=0,
            y1=1,
            fillcolor=theme.HEADACHE,
            opacity=0.15,
            line=dict(width=0),
            layer="below",
        ),
    ]
    annotations = [
        dict(
            x=(first_week + last_week) / 2,
            y=1,
            xref="x",
            yref="paper",
            text=f"weeks {first_week}–{last_week}<br>effect level",
            showarrow=False,
            yanchor="bottom",
            font=dict(size=12, color=theme.BASELINE),
        ),
        dict(
            x=last_week + 0.5 + late_days / 14,
            y=1,
            xref="x",
            yref="paper",
            text=f"last {late_days // 7} weeks<br>wearing-off?",
            showarrow=False,
            yanchor="bottom",
            font=dict(size=12, color=theme.BASELINE),
        ),
    ]
    # Traces are collected as dicts and validated once: a profile of many cycles has dozens.
    traces: list[dict[str, Any]] = []
    prof = profile.set_index("cycle") if len(profile) else pd.DataFrame()
    baseline = prof["baseline_per_7"].dropna() if "baseline_per_7" in prof else pd.Series(dtype="float64")
    if len(baseline):
        level, threshold = float(baseline.iloc[0]), float(prof["onset_threshold_per_7"].dropna().iloc[0])
        shapes.append(_hline(level, theme.BASELINE, 1.5, dash="dash"))
        shapes.append(_hline(threshold, theme.RESPONDER, 1.2, dash="dot"))
        annotations += [
            dict(
                x=1,
                y=level,
                xref="paper",
                yref="y",
                text=f"baseline {level:.1f} / week",
                showarrow=False,
                xanchor="right",
                yanchor="bottom",
                font=dict(size=12, color=theme.BASELINE),
            ),
            dict(
                x=1,
                y=threshold,
                xref="paper",
                yref="y",
                text=f"onset threshold {threshold:.1f} ({MINUS}30%)",
                showarrow=False,
                xanchor="right",
                yanchor="top",
                font=dict(size=12, color=theme.RESPONDER),
            ),
        ]
    shown = set(cycles[-VISIBLE_CYCLES:])
    # The moving average from day 7 of each cycle, taken out of the wide daily grid once rather than per cycle.
    moving = days.loc[days["day_in_cycle"] >= 7, ["cycle", "day_in_cycle", "ma7_headache_days_per_7"]]
    for k in cycles:
        if compact and k not in shown:
            continue
        visible = True if k in shown else "legendonly"
        w = weekly[weekly["cycle"] == k]
        info = prof.loc[k] if k in prof.index else None
        onset = info["onset_week"] if info is not None and pd.notna(info.get("onset_week", pd.NA)) else None
        wearing = info.get("wearing_off", pd.NA) if info is not None else pd.NA
        name = f"Cycle {k}"
        if onset is not None:
            name += f": onset week {int(onset)}"
        if pd.notna(wearing) and bool(wearing):
            name += ", wearing-off"
        colour = colours[k]
        d = moving[moving["cycle"] == k]
        traces.append(
            dict(
                type="scatter",
                x=(d["day_in_cycle"] / 7).to_numpy("float64"),  # plain floats: a nullable column validates slowly
                y=d["ma7_headache_days_per_7"],
                mode="lines",
                legendgroup=str(k),
                showlegend=False,
                line=dict(color=colour, width=1),
                opacity=0.45,
                connectgaps=False,
                name=f"Cycle {k}, 7-day moving average",
                visible=visible,
                hovertemplate=(
                    f"Cycle {k}, day %{{customdata}}<br>7-day moving average %{{y:.1f}} headache days<extra></extra>"
                ),
                customdata=d["day_in_cycle"],
            )
        )
        traces.append(
            dict(
                type="scatter",
                x=w["week"],
                y=w["headache_days_per_7"],
                mode="lines+markers",
                legendgroup=str(k),
                name=name,
                line=dict(color=colour, width=2.5),
                marker=dict(size=7),
                connectgaps=False,
                visible=visible,
                customdata=np.column_stack([w["headache_days"], w["recorded_days"], w["days"]]),
                hovertemplate=(
                    f"Cycle {k}, week %{{x}}<br>%{{y:.1f}} headache days / 7 d"
                    "<br>(%{customdata[0]} headache days in %{customdata[1]} of %{customdata[2]} days recorded)"
                    "<extra></extra>"
                ),
            )
        )
        if onset is not None:
            at = w[w["week"] == onset]
            traces.append(
                dict(
                    type="scatter",
                    x=at["week"],
                    y=at["headache_days_per_7"],
                    mode="markers",
                    legendgroup=str(k),
                    showlegend=False,
                    marker=dict(symbol="star", size=16, color=theme.RESPONDER, line=dict(width=1, color="white")),
                    visible=visible,
                    hovertemplate=f"Cycle {k}: onset of effect in week {int(onset)}<extra></extra>",
                )
            )
    traces.append(_legend_square("onset week (≥30% below baseline for 2 weeks)", theme.RESPONDER, symbol="star"))
    hidden = len(cycles) - len(shown)
    subtitle = f"latest {len(shown)} cycles" + ("" if compact else "; add others in the legend") if hidden > 0 else ""
    layout = dict(
        shapes=shapes,
        annotations=annotations,
        xaxis=dict(
            title="week since the injection", tickvals=list(range(1, max_week + 1)), range=[0.5, max_week + 0.5]
        ),
        yaxis=dict(title="headache days per week (of 7)", range=[0, 7.4]),
        margin=dict(t=96 + (20 if subtitle else 0)),
    )
    return _finish(traces, layout, title, 520, subtitle=subtitle)


# --- 5. adverse events


def build_adverse_events_figure(
    events: pd.DataFrame, cycles: pd.DataFrame, as_of: pd.Timestamp, available: bool = True
) -> go.Figure:
    """Adverse events by cycle: a bar from onset to resolution in days since the injection.

    Colour is severity; unresolved events are hatched and run to the cycle's end (or as_of); a
    missing onset date is drawn from the injection day and says so; serious events are marked.
    """
    n_sessions = int((cycles["cycle"] >= 1).sum())
    title = "Adverse events by cycle"
    if not available:
        return _empty("No adverse-event file (adverse_events.csv) in this dataset", title, 180)
    if events.empty:
        return _empty(
            f"No adverse events recorded after {n_sessions} session{'s' if n_sessions != 1 else ''}", title, 180
        )
    e = events.sort_values(["session_date", "onset_date"], kind="stable").reset_index(drop=True)
    onset = e["days_to_onset"].astype("float64").fillna(0)
    # pandas-stubs types clip bounds as float or array only; pandas clips datetimes at a Timestamp.
    stop_date = e["cycle_end"].fillna(as_of).clip(upper=as_of)  # type: ignore[call-overload]
    open_end = (stop_date - e["session_date"]).dt.days + 1
    end = np.where(
        e["resolved"], onset + e["duration_days"].astype("float64").fillna(1), np.maximum(open_end, onset + 1)
    )
    length = end - onset
    cycle_label = np.where(e["cycle"].isna(), "after as_of", "C" + e["cycle"].astype("string").fillna(""))
    labels = [f"{c} · {ev.replace('_', ' ')}" for c, ev in zip(cycle_label, e["event"], strict=True)]
    severity = e["severity"].fillna("not given").astype(str)
    hover = (
        "Cycle "
        + e["cycle"].astype("string").fillna("—")
        + " (session "
        + e["session_date"].dt.strftime("%d %b %Y")
        + ")<br>"
        + e["event"].str.replace("_", " ")
        + ", "
        + severity
        + np.where(e["serious"].fillna(False).astype(bool), ", SERIOUS", "")
        + "<br>onset: "
        + np.where(
            e["onset_date"].notna(),
            e["onset_date"].dt.strftime("%d %b %Y") + " (day " + e["days_to_onset"].astype("string").fillna("") + ")",
            "not recorded",
        )
        + "<br>"
        + np.where(
            e["resolved"],
            "resolved "
            + e["resolved_date"].dt.strftime("%d %b %Y")
            + " after "
            + e["duration_days"].astype("string").fillna("?")
            + " days",
            "not resolved (as of data)",
        )
    )
    traces: list[dict[str, Any]] = []
    for level, colour in [*AE_SEVERITY_COLOURS.items(), ("not given", theme.MISSING)]:
        rows = (severity == level).to_numpy()
        if not rows.any():
            continue
        traces.append(
            dict(
                type="bar",
                y=np.arange(len(e))[rows],
                x=length[rows],
                base=onset[rows],
                orientation="h",
                name=level,
                marker=dict(color=colour, pattern=dict(shape=np.where(e["resolved"].to_numpy()[rows], "", "/"))),
                hovertext=np.asarray(hover)[rows],
                hovertemplate="%{hovertext}<extra></extra>",
            )
        )
    serious = e["serious"].fillna(False).astype(bool).to_numpy()
    if serious.any():
        traces.append(
            dict(
                type="scatter",
                x=end[serious],
                y=np.arange(len(e))[serious],
                mode="markers+text",
                text=["serious"] * int(serious.sum()),
                textposition="middle right",
                name="serious",
                marker=dict(symbol="x", size=11, color=theme.TEXT),
                hoverinfo="skip",
            )
        )
    if (~e["resolved"]).any():
        traces.append(_legend_square("not resolved (hatched)", "#dddddd", line=theme.TEXT))
    no_onset = e["onset_date"].isna().to_numpy()
    if no_onset.any():
        traces.append(
            dict(
                type="scatter",
                x=np.zeros(int(no_onset.sum())),
                y=np.arange(len(e))[no_onset],
                mode="markers",
                name="onset date not recorded",
                marker=dict(symbol="line-ns-open", size=16, color=theme.TEXT),
                hoverinfo="skip",
            )
        )
    layout = dict(
        yaxis=dict(tickvals=list(range(len(e))), ticktext=labels, autorange="reversed", title=None),
        xaxis=dict(title="days since the injection", range=[0, max(84.0, float(np.max(end)) + 6)]),
        barmode="overlay",
    )
    n = len(e)
    return _finish(
        traces, layout, title, 200 + 32 * n, subtitle=f"{n} event{'s' if n != 1 else ''} after {n_sessions} sessions"
    )


# --- 6. HIT-6 and MIDAS


def build_questionnaires_figure(
    questionnaires: pd.DataFrame, cycles: pd.DataFrame, available: bool = True, compact: bool = False
) -> go.Figure:
    """HIT-6 and MIDAS scores over time, side by side, on their bands, with the injection dates.

    ``compact`` (a phone) puts the two panels one above the other. A band too thin to hold its name
    (MIDAS grades I–III under a high score) is left unnamed; the caption lists every band.
    """
    title = "HIT-6 and MIDAS" if compact else "Questionnaires: HIT-6 and MIDAS with their bands"
    if not available:
        return _empty("No questionnaire file (questionnaires.csv) in this dataset", title, 180)
    instruments = list(BANDED_INSTRUMENTS)
    subtitles = {"HIT-6": "HIT-6 (headache impact, 36–78)", "MIDAS": "MIDAS (disability, 0–270)"}
    # Two panels laid out by hand (make_subplots is slow for a per-patient switch): side by side, or stacked.
    domains = {1: [0.0, 0.4], 2: [0.6, 1.0]} if compact else {1: [0.0, 0.45], 2: [0.55, 1.0]}
    panel_height = 250 if compact else 330  # pixels of each panel's plot area, about
    min_band = 16 / panel_height  # a band's share of the axis that holds an 11 px label
    layout: dict[str, dict[str, Any]] = {}
    traces: list[dict] = []
    shapes: list[dict] = []
    annotations: list[dict] = []
    sessions = cycles.loc[cycles["cycle"] >= 1, "start_date"]
    for col, instrument in enumerate(instruments, start=1):
        axis = "" if col == 1 else str(col)
        q = questionnaires[questionnaires["instrument"] == instrument].sort_values("date")
        bands = BANDED_INSTRUMENTS[instrument]
        top = 78.0 if instrument == "HIT-6" else max(30.0, float(q["score"].max()) * 1.1 if len(q) else 30.0)
        bottom = 36.0 if instrument == "HIT-6" else 0.0
        if compact:
            layout[f"xaxis{axis}"] = dict(anchor=f"y{axis}", type="date", nticks=5)
            layout[f"yaxis{axis}"] = dict(
                anchor=f"x{axis}", domain=domains[3 - col], range=[bottom, top], title=f"{instrument} score"
            )
        else:
            layout[f"xaxis{axis}"] = dict(domain=domains[col], anchor=f"y{axis}", type="date")
            layout[f"yaxis{axis}"] = dict(anchor=f"x{axis}", range=[bottom, top], title=f"{instrument} score")
        annotations.append(
            dict(
                x=0.5 if compact else sum(domains[col]) / 2,
                y=domains[3 - col][1] if compact else 1,
                xref="paper",
                yref="paper",
                text=subtitles[instrument],
                showarrow=False,
                xanchor="center",
                yanchor="bottom",
                font=dict(size=15),
            )
        )
        for (low, high, label), colour in zip(bands, BAND_COLOURS, strict=True):
            y0, y1 = max(bottom, low - 0.5), min(top, high + 0.5)
            if y0 >= top:
                continue
            shapes.append(
                dict(
                    type="rect",
                    xref=f"x{axis} domain",
                    yref=f"y{axis}",
                    x0=0,
                    x1=1,
                    y0=y0,
                    y1=y1,
                    fillcolor=colour,
                    opacity=0.2,
                    line=dict(width=0),
                    layer="below",
                )
            )
            if (y1 - y0) / (top - bottom) < min_band:
                continue
            annotations.append(
                dict(
                    x=0.01,
                    y=(y0 + y1) / 2,
                    xref=f"x{axis} domain",
                    yref=f"y{axis}",
                    text=label,
                    showarrow=False,
                    xanchor="left",
                    font=dict(size=11, color=theme.BASELINE),
                )
            )
        for d in sessions:
            shapes.append(
                dict(
                    type="line",
                    xref=f"x{axis}",
                    yref=f"y{axis} domain",
                    x0=d,
                    x1=d,
                    y0=0,
                    y1=1,
                    line=dict(color=theme.INJECTION, width=1, dash="dot"),
                )
            )
        if q.empty:
            annotations.append(
                dict(
                    x=0.5,
                    y=0.5,
                    xref=f"x{axis} domain",
                    yref=f"y{axis} domain",
                    showarrow=False,
                    text=f"No {instrument} scores recorded",
                    font=dict(size=14),
                )
            )
        else:
            traces.append(
                dict(
                    type="scatter",
                    xaxis=f"x{axis}",
                    yaxis=f"y{axis}",
                    x=q["date"],
                    y=q["score"],
                    mode="lines+markers",
                    name=instrument,
                    line=dict(color=theme.PRIMARY, width=2.5),
                    marker=dict(size=8),
                    customdata=q["band"].fillna(""),
                    showlegend=False,
                    hovertemplate=f"%{{x|%d %b %Y}}<br>{instrument} %{{y:g}}: %{{customdata}}<extra></extra>",
                )
            )
        if len(sessions) or len(q):
            dates = pd.concat([sessions, q["date"]])
            pad = pd.Timedelta(days=14)
            layout[f"xaxis{axis}"]["range"] = [dates.min() - pad, dates.max() + pad]
    figure_layout: dict[str, Any] = {**layout, "shapes": shapes, "annotations": annotations}
    if compact:
        figure_layout["margin"] = dict(t=110)
        return _finish(traces, figure_layout, title, 640, subtitle="dotted lines: injections")
    figure_layout["margin"] = dict(t=80)
    return _finish(traces, figure_layout, title + " (dotted lines: injections)", 420)


# --- 7. injection-site map


# Diagram coordinates (data units, equal aspect): the front view is centred on x = 0.5 and the
# back view on x = BACK + 0.5. In the front view the patient's right is on the viewer's left. Head
# points are drawn at HEAD_SCALE about the head's centre so the forehead sites do not crowd.
BACK = 2.0
HEAD_CENTRE_Y = 0.78
HEAD_SCALE = 1.25
HEAD_MUSCLES = frozenset({"procerus", "corrugator", "frontalis", "temporalis", "occipitalis"})


def _head(x: float, y: float, centre_x: float = 0.5) -> tuple[float, float]:
    """A point of the unscaled head drawing, scaled about the head's centre."""
    return centre_x + (x - centre_x) * HEAD_SCALE, HEAD_CENTRE_Y + (y - HEAD_CENTRE_Y) * HEAD_SCALE


_BASE_POSITIONS: dict[tuple[str, str], list[tuple[float, float]]] = {
    ("procerus", "midline"): [(0.5, 0.83)],
    ("corrugator", "right"): [(0.455, 0.87)],
    ("frontalis", "right"): [(0.445, 0.975), (0.39, 0.99), (0.415, 1.03), (0.36, 1.02)],
    ("temporalis", "right"): [
        (0.325, 0.955),
        (0.30, 0.905),
        (0.34, 0.905),
        (0.31, 0.855),
        (0.36, 0.95),
        (0.345, 0.855),
        (0.35, 0.995),
        (0.285, 0.87),
    ],
    ("occipitalis", "left"): [
        (BACK + 0.44, 0.66),
        (BACK + 0.38, 0.69),
        (BACK + 0.32, 0.73),
        (BACK + 0.41, 0.74),
        (BACK + 0.34, 0.63),
        (BACK + 0.29, 0.80),
    ],
    ("cervical_paraspinal", "left"): [
        (BACK + 0.455, 0.385),
        (BACK + 0.455, 0.32),
        (BACK + 0.43, 0.355),
        (BACK + 0.45, 0.255),
    ],
    ("trapezius", "left"): [
        (BACK + 0.34, 0.245),
        (BACK + 0.24, 0.215),
        (BACK + 0.14, 0.18),
        (BACK + 0.04, 0.13),
        (BACK + 0.29, 0.19),
        (BACK + 0.19, 0.155),
        (BACK + 0.09, 0.11),
    ],
}


def _site_positions() -> dict[tuple[str, str], list[tuple[float, float]]]:
    positions = {}
    for (muscle, side), points in _BASE_POSITIONS.items():
        centre = 0.5 if muscle in ("procerus", "corrugator", "frontalis", "temporalis") else BACK + 0.5
        if muscle in HEAD_MUSCLES:
            points = [_head(x, y, centre) for x, y in points]
        positions[(muscle, side)] = points
        if side != "midline":
            other = "left" if side == "right" else "right"
            positions[(muscle, other)] = [(2 * centre - x, y) for x, y in points]
    return positions


SITE_POSITIONS = _site_positions()

# Where each muscle's label sits (outside the drawing), per side.
LABEL_POSITIONS: dict[tuple[str, str], tuple[float, float, str]] = {
    ("frontalis", "right"): (-0.02, 1.1, "right"),
    ("temporalis", "right"): (-0.02, 0.92, "right"),
    ("corrugator", "right"): (-0.02, 0.74, "right"),
    ("procerus", "midline"): (0.5, 1.24, "center"),
    ("frontalis", "left"): (1.02, 1.1, "left"),
    ("temporalis", "left"): (1.02, 0.92, "left"),
    ("corrugator", "left"): (1.02, 0.74, "left"),
    ("occipitalis", "left"): (BACK - 0.02, 0.72, "right"),  # clear of the front view's temporalis L label
    ("cervical_paraspinal", "left"): (BACK - 0.02, 0.45, "right"),
    ("trapezius", "left"): (BACK - 0.02, 0.22, "right"),
    ("occipitalis", "right"): (BACK + 1.02, 0.72, "left"),
    ("cervical_paraspinal", "right"): (BACK + 1.02, 0.45, "left"),
    ("trapezius", "right"): (BACK + 1.02, 0.22, "left"),
}


def _ellipse(cx: float, cy: float, rx: float, ry: float, **style: object) -> dict:
    return dict(type="circle", x0=cx - rx, x1=cx + rx, y0=cy - ry, y1=cy + ry, **style)


def _outline(offset: float, back: bool) -> list[dict]:
    """Head, neck and shoulders as Plotly shapes; face features on the front, the nape on the back."""
    line = dict(color="#6b7785", width=2)
    fill = "#f6efe9"
    cx = offset + 0.5
    k = HEAD_SCALE

    def pt(x: float, y: float) -> str:
        hx, hy = _head(cx + x, y, cx)
        return f"{hx:.4f},{hy:.4f}"

    shapes = [
        dict(
            type="path",
            path=(
                f"M {offset + 0.0},0.0 C {offset + 0.02},0.17 {offset + 0.2},0.25 {cx - 0.09},0.29 "
                f"L {cx - 0.09},0.52 L {cx + 0.09},0.52 L {cx + 0.09},0.29 "
                f"C {offset + 0.8},0.25 {offset + 0.98},0.17 {offset + 1.0},0.0 Z"
            ),
            line=line,
            fillcolor=fill,
            layer="below",
        ),
        _ellipse(cx - 0.235 * k, HEAD_CENTRE_Y, 0.025 * k, 0.07 * k, line=line, fillcolor=fill, layer="below"),
        _ellipse(cx + 0.235 * k, HEAD_CENTRE_Y, 0.025 * k, 0.07 * k, line=line, fillcolor=fill, layer="below"),
        _ellipse(cx, HEAD_CENTRE_Y, 0.23 * k, 0.29 * k, line=line, fillcolor=fill, layer="below"),
    ]
    if back:
        shapes += [
            dict(
                type="path",
                path=f"M {pt(-0.2, 0.62)} Q {pt(0, 0.55)} {pt(0.2, 0.62)}",
                line=dict(color="#9aa5b1", width=1.5, dash="dot"),
            ),
            dict(type="line", x0=cx, x1=cx, y0=0.40, y1=0.05, line=dict(color="#9aa5b1", width=1.5, dash="dot")),
        ]
    else:
        feature = dict(color="#8a96a3", width=1.5)
        shapes += [
            _ellipse(*_head(cx - 0.07, 0.80, cx), 0.03 * k, 0.01 * k, line=feature),
            _ellipse(*_head(cx + 0.07, 0.80, cx), 0.03 * k, 0.01 * k, line=feature),
            dict(type="path", path=f"M {pt(-0.11, 0.84)} Q {pt(-0.07, 0.86)} {pt(-0.03, 0.845)}", line=feature),
            dict(type="path", path=f"M {pt(0.03, 0.845)} Q {pt(0.07, 0.86)} {pt(0.11, 0.84)}", line=feature),
            dict(type="path", path=f"M {pt(0, 0.82)} L {pt(-0.02, 0.71)} L {pt(0.02, 0.71)}", line=feature),
            dict(type="path", path=f"M {pt(-0.05, 0.63)} Q {pt(0, 0.61)} {pt(0.05, 0.63)}", line=feature),
        ]
    return shapes


class _InjectionSiteRow(Protocol):
    """One row of ``clinical.injection_sites`` as ``itertuples`` yields it (the columns drawn here)."""

    muscle: str
    side: object  # a str, or NaN when not recorded
    units: float
    sites_given: int
    standard_units: float
    standard_sites: int
    extra_units: float
    extra_sites: int


def build_injection_site_map_figure(
    sites: pd.DataFrame, session: pd.Series | None = None, compact: bool = False
) -> go.Figure:
    """Front and back head-and-neck diagram with the PREEMPT sites of one session.

    ``sites`` is one session's rows of ``clinical.injection_sites``. Each muscle and side is
    labelled with its units and sites; PREEMPT fixed sites are blue dots, follow-the-pain extras
    orange diamonds, fixed sites that were not injected open grey circles. ``session`` (a row of
    the patient's cycles or sessions) supplies the date and totals for the title. ``compact`` (a phone)
    draws the sites without the muscle labels, which a phone's width cannot hold apart; the hover and the
    table of units per muscle under the map have them.
    """
    title = "Injection sites"
    if session is not None:
        title += f" on {pd.Timestamp(session['session_date']):%d %b %Y}"
        if pd.notna(session.get("cycle", pd.NA)) and not compact:
            title += f" (cycle {int(session['cycle'])})"
    shapes = _outline(0.0, back=False) + _outline(BACK, back=True)
    sides = (
        ("<br>patient's right on the left", "<br>patient's left on the left")
        if compact
        else (
            " (patient's right on the left)",
            " (patient's left on the left)",
        )
    )
    annotations = [
        dict(x=0.5, y=-0.06, yanchor="top", text=f"<b>Front</b>{sides[0]}", showarrow=False, font=dict(size=13)),
        dict(x=BACK + 0.5, y=-0.06, yanchor="top", text=f"<b>Back</b>{sides[1]}", showarrow=False, font=dict(size=13)),
    ]
    if sites.empty:
        annotations.append(
            dict(
                x=(BACK + 1) / 2,
                y=1.2,
                showarrow=False,
                font=dict(size=14),
                text="No per-muscle injection record for this session",
            )
        )
    standard_x, standard_y, standard_hover = [], [], []
    extra_x, extra_y, extra_hover = [], [], []
    missed_x, missed_y, missed_hover = [], [], []
    other = []
    # pandas-stubs types every itertuples field as any scalar; these columns are fixed by injection_sites.
    for row in cast("Iterable[_InjectionSiteRow]", sites.itertuples(index=False)):
        side = (
            row.side if isinstance(row.side, str) else ("midline" if row.muscle in MIDLINE_MUSCLES else "unspecified")
        )
        positions = SITE_POSITIONS.get((row.muscle, side))
        name = f"{row.muscle.replace('_', ' ')} {side}"
        detail = (
            f"{name}: {row.units:g} U in {row.sites_given} site{'s' if row.sites_given != 1 else ''}"
            f"<br>PREEMPT fixed: {row.standard_units:g} U in {row.standard_sites} sites"
        )
        if row.extra_units > 0:
            detail += f"<br>follow-the-pain extra: +{row.extra_units:g} U ({row.extra_sites} sites)"
        if positions is None:
            other.append(f"{name}: {row.units:g} U ({row.sites_given} sites)")
            continue
        fixed = min(row.sites_given, row.standard_sites)
        points = [positions[i % len(positions)] for i in range(max(row.sites_given, row.standard_sites))]
        # Sites beyond the drawn positions wrap round with a small offset so none hide another.
        points = [
            (x + 0.012 * (i // len(positions)), y - 0.012 * (i // len(positions))) for i, (x, y) in enumerate(points)
        ]
        for i, (x, y) in enumerate(points):
            if i < fixed:
                standard_x.append(x)
                standard_y.append(y)
                standard_hover.append(detail)
            elif i < row.sites_given:
                extra_x.append(x)
                extra_y.append(y)
                extra_hover.append(detail)
            else:
                missed_x.append(x)
                missed_y.append(y)
                missed_hover.append(detail)
        if compact:
            continue
        label_x, label_y, align = LABEL_POSITIONS[(row.muscle, side)]
        extra = (
            f" <span style='color:{FTP_COLOUR}'><b>+{row.extra_units:g} FTP</b></span>" if row.extra_units > 0 else ""
        )
        muscle_label = row.muscle.replace("_", " ").capitalize()
        annotations.append(
            dict(
                x=label_x,
                y=label_y,
                xanchor=align,
                showarrow=False,
                align=align,
                font=dict(size=11),
                text=f"<b>{muscle_label}</b> {'' if side == 'midline' else side[0].upper()}"
                f"<br>{row.units:g} U · {row.sites_given} site{'s' if row.sites_given != 1 else ''}{extra}",
            )
        )
        centre_x = float(np.mean([p[0] for p in points])) if points else label_x
        centre_y = float(np.mean([p[1] for p in points])) if points else label_y
        if align != "center":
            shapes.append(
                dict(type="line", x0=label_x, y0=label_y, x1=centre_x, y1=centre_y, line=dict(color="#c3ccd6", width=1))
            )
    traces: list[dict[str, Any]] = [
        dict(
            type="scatter",
            x=standard_x,
            y=standard_y,
            mode="markers",
            name="PREEMPT fixed site (5 U)",
            marker=dict(size=11, color=theme.INJECTION, line=dict(width=1, color="white")),
            hovertext=standard_hover,
            hovertemplate="%{hovertext}<extra></extra>",
        ),
        dict(
            type="scatter",
            x=extra_x,
            y=extra_y,
            mode="markers",
            name="follow-the-pain extra site",
            marker=dict(size=13, symbol="diamond", color=FTP_COLOUR, line=dict(width=1, color=theme.TEXT)),
            hovertext=extra_hover,
            hovertemplate="%{hovertext}<extra></extra>",
        ),
    ]
    if missed_x:
        traces.append(
            dict(
                type="scatter",
                x=missed_x,
                y=missed_y,
                mode="markers",
                name="PREEMPT site not injected",
                marker=dict(size=12, symbol="circle-open", color=theme.BASELINE, line=dict(width=2)),
                hovertext=missed_hover,
                hovertemplate="%{hovertext}<extra></extra>",
            )
        )
    if other:
        annotations.append(
            dict(
                x=(BACK + 1) / 2,
                y=-0.28 if compact else -0.16,
                showarrow=False,
                font=dict(size=11 if compact else 12),
                text="Not drawn: " + "; ".join(other),
            )
        )
    totals = ""
    if len(sites):
        total_units, total_sites = float(sites["units"].sum()), int(sites["sites_given"].sum())
        extra_units = float(sites["extra_units"].sum())
        totals = f"{total_units:g} U in {total_sites} sites"
        if extra_units > 0:
            totals += f", {extra_units:g} U follow-the-pain"
    if compact:
        layout = dict(
            shapes=shapes,
            annotations=annotations,
            xaxis=dict(visible=False, range=[-0.1, BACK + 1.1], constrain="domain"),
            yaxis=dict(visible=False, range=[-0.32, 1.18], scaleanchor="x", scaleratio=1, constrain="domain"),
            plot_bgcolor="white",
            margin=dict(l=5, r=5, b=10),
        )
        return _finish(traces, layout, title, 360, subtitle=totals)
    layout = dict(
        shapes=shapes,
        annotations=annotations,
        xaxis=dict(visible=False, range=[-0.6, BACK + 1.6], constrain="domain"),
        yaxis=dict(visible=False, range=[-0.22, 1.3], scaleanchor="x", scaleratio=1, constrain="domain"),
        plot_bgcolor="white",
        margin=dict(l=10, r=10, b=10),
    )
    return _finish(traces, layout, f"{title}: {totals}" if totals else title, 480)


def muscle_table(sites: pd.DataFrame) -> pd.DataFrame:
    """The session's injections as a readable table (units and sites given against PREEMPT)."""
    order = {m: i for i, m in enumerate([*PREEMPT_PER_SIDE, "other"])}
    table = sites.assign(order=sites["muscle"].map(order)).sort_values(["order", "side"], kind="stable")
    return pd.DataFrame(
        {
            "muscle": table["muscle"].str.replace("_", " "),
            "side": table["side"],
            "units": table["units"],
            "sites": table["sites_given"],
            "PREEMPT units": table["standard_units"],
            "follow-the-pain extra units": table["extra_units"],
        }
    )
