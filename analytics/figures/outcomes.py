"""Figures of the researcher's Outcomes page: ``build_*_figure(table) -> go.Figure``.

Each builder draws a table from ``analytics.views.outcomes`` as it is (no definition is computed here):
per-cycle change with t-interval error bars, responder rates and cumulative / conditional rates
with Wilson intervals, the within-cycle weekly course, time to first 50% response (cumulative
incidence of response and of stopping with their bands and a number-at-risk row) and a subgroup
forest plot. Every point carries its n in the axis labels or the hover text; an empty cohort gives
an empty chart that says so, never zeros.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analytics.figures.theme import (
    BASELINE,
    GRID,
    LEGEND_BELOW,
    MISSING,
    PRIMARY,
    SEQUENCE,
    TEXT,
    THRESHOLD_COLOURS,
    phone_title,
    styled,
)
from analytics.views.outcomes import TimeToResponse, WithinCycleProfile

CUMULATIVE_COLOURS = {"completers": PRIMARY, "itt": "#56b4e9", "new_responder": "#e69f00"}
CUMULATIVE_SHORT = {
    "completers": "Completers",
    "itt": "Intention-to-treat",
    "new_responder": "New responders (conditional)",
}
# Darker shades of the bar colours for the numerator/denominator text under the axis (readable on white).
CUMULATIVE_TEXT = {"completers": PRIMARY, "itt": "#2a7ab0", "new_responder": "#a86f00"}


def _legend_on_top(fig: go.Figure) -> go.Figure:
    """Room for a horizontal legend between the title and the plot (the template puts both at the top)."""
    fig.update_layout(margin=dict(t=100), legend=dict(y=1.02, yanchor="bottom"))
    return fig


def _empty(fig: go.Figure, message: str) -> go.Figure:
    fig.add_annotation(
        text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font=dict(color=BASELINE, size=15)
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _cycle_ticks(cycles: pd.Series, n: pd.Series, what: str = "n", compact: bool = False) -> dict[str, list]:
    """Tick labels 'Ck' with the n underneath; ``compact`` (a phone) has the bare numbers, smaller, and the axis
    title says what they are."""
    if compact:
        text = [f"{c}<br><span style='font-size:9px'>{int(k)}</span>" for c, k in zip(cycles, n, strict=True)]
    else:
        text = [f"C{c}<br><span style='font-size:11px'>{what}={int(k)}</span>" for c, k in zip(cycles, n, strict=True)]
    return {"tickvals": cycles.tolist(), "ticktext": text}


def _laid_out(fig: go.Figure, compact: bool) -> go.Figure:
    """The finishing layout: on a phone (``compact``) the title wrapped onto short lines and the legend under the
    plot, where it wraps to the screen's width; else the legend between the title and the plot."""
    if compact:
        phone_title(fig).update_layout(legend=LEGEND_BELOW)
        return fig
    return _legend_on_top(fig)


def _errors(low: pd.Series, mid: pd.Series, high: pd.Series) -> dict[str, object]:
    return dict(
        type="data",
        symmetric=False,
        array=(high - mid).to_numpy(dtype="float64"),
        arrayminus=(mid - low).to_numpy(dtype="float64"),
        thickness=1.5,
        width=4,
    )


def build_change_figure(
    change: pd.DataFrame, measure_label: str, height: int = 380, compact: bool = False
) -> go.Figure:
    """Mean change from baseline per cycle with 95% t-interval error bars; n under each cycle.

    ``change`` is one measure's rows of ``outcomes.change_by_cycle``; ``compact`` lays it out for a phone.
    """
    title = f"Change in {measure_label} / 28 d from baseline"
    shown = change.loc[change["n"] > 0]
    if shown.empty:
        return styled(
            _empty(go.Figure(), f"No patient has an evaluable change in {measure_label} in this cohort"), title, height
        )
    # One construction and one layout (each update runs Plotly's validators again): the first tab of Outcomes.
    trace = go.Scatter(
        x=shown["cycle"],
        y=shown["mean_change"],
        mode="markers+lines",
        name="mean change",
        marker=dict(size=9, color=PRIMARY),
        line=dict(color=PRIMARY, width=1.5),
        error_y=_errors(shown["ci_low"], shown["mean_change"], shown["ci_high"]),
        customdata=np.column_stack(
            [
                shown["n"],
                shown["ci_low"],
                shown["ci_high"],
                shown["median_change"],
                shown["mean_baseline"],
                shown["mean_cycle"],
            ]
        ),
        hovertemplate=(
            "Cycle %{x}: mean change %{y:.1f} days (95% t-CI %{customdata[1]:.1f} to "
            "%{customdata[2]:.1f})<br>median %{customdata[3]:.1f}; baseline %{customdata[4]:.1f} → "
            "%{customdata[5]:.1f}<br>n = %{customdata[0]} patients<extra></extra>"
        ),
    )
    zero = dict(type="line", xref="x domain", x0=0, x1=1, yref="y", y0=0, y1=0)  # what add_hline(y=0) draws
    fig = styled(
        go.Figure(data=[trace]),
        title,
        height,
        shapes=[zero | {"line": dict(color=BASELINE, width=1, dash="dot")}],
        xaxis=dict(
            title="Cycle (below: n evaluable)"
            if compact
            else "Treatment cycle (n = patients with an evaluable change)",
            **_cycle_ticks(shown["cycle"], shown["n"], compact=compact),
        ),
        yaxis=dict(title=f"Change in {measure_label} / 28 d" if not compact else "Change / 28 d"),
        showlegend=False,
    )
    return phone_title(fig) if compact else fig


def build_responder_figure(rates: pd.DataFrame, height: int = 400, compact: bool = False) -> go.Figure:
    """Responder rates per cycle at each threshold with 95% Wilson error bars (``responder_rates``); ``compact``
    lays it out for a phone."""
    fig = go.Figure()
    title = "Responders per cycle (reduction in monthly headache days from baseline)"
    shown = rates.loc[rates["evaluable"] > 0]
    if shown.empty:
        return styled(_empty(fig, "No patient has an evaluable cycle in this cohort"), title, height)
    thresholds = sorted(shown["threshold"].unique())
    offsets = np.linspace(-0.15, 0.15, len(thresholds)) if len(thresholds) > 1 else [0.0]
    for offset, threshold in zip(offsets, thresholds, strict=True):
        rows = shown.loc[shown["threshold"] == threshold]
        fig.add_trace(
            go.Scatter(
                x=rows["cycle"] + offset,
                y=rows["rate"],
                mode="markers+lines",
                name=f"≥{threshold}% responders",
                marker=dict(size=8, color=THRESHOLD_COLOURS.get(threshold, PRIMARY)),
                line=dict(color=THRESHOLD_COLOURS.get(threshold, PRIMARY), width=1.5),
                error_y=_errors(rows["ci_low"], rows["rate"], rows["ci_high"]),
                customdata=np.column_stack(
                    [rows["cycle"], rows["responders"], rows["evaluable"], rows["ci_low"], rows["ci_high"]]
                ),
                hovertemplate=(
                    f"≥{threshold}%" + " responders, cycle %{customdata[0]}: %{y:.0%} "
                    "(%{customdata[1]}/%{customdata[2]}; 95% Wilson CI %{customdata[3]:.0%}–"
                    "%{customdata[4]:.0%})<extra></extra>"
                ),
            )
        )
    per_cycle = shown.groupby("cycle")["evaluable"].max().reset_index()
    fig.update_xaxes(
        title="Cycle (below: n evaluable)" if compact else "Treatment cycle (n = evaluable patients)",
        **_cycle_ticks(per_cycle["cycle"], per_cycle["evaluable"], compact=compact),
    )
    fig.update_yaxes(title="Share of evaluable patients", tickformat=".0%", range=[0, 1.05])
    return _laid_out(styled(fig, title, height), compact)


def _ratio_ticks(cycles: list[int], rows: pd.DataFrame, measures: list[str], compact: bool = False) -> list[str]:
    """Tick labels 'Ck' with each measure's responders/denominator underneath, in the measure's colour;
    ``compact`` (a phone): the bare cycle number and each denominator, smaller."""
    labels = []
    for cycle in cycles:
        lines = [f"{cycle}" if compact else f"C{cycle}"]
        for measure in measures:
            row = rows.loc[(rows["measure"] == measure) & (rows["cycle"] == cycle)]
            if len(row):
                numerator, denominator = int(row["numerator"].iloc[0]), int(row["denominator"].iloc[0])
                text, size = (f"{denominator}", 9) if compact else (f"{numerator}/{denominator}", 11)
                lines.append(f"<span style='font-size:{size}px;color:{CUMULATIVE_TEXT[measure]}'>{text}</span>")
        labels.append("<br>".join(lines))
    return labels


def build_cumulative_figure(cumulative: pd.DataFrame, height: int = 640, compact: bool = False) -> go.Figure:
    """Cumulative 50% response (completers and ITT side by side) above the conditional new-responder
    rate per cycle (``cumulative_response``): bars with 95% Wilson error bars; under each cycle the
    responders / denominator of each bar, in its colour (``compact``, a phone: the denominators)."""
    title = "Cumulative 50% response (top) and new responders among prior non-responders (bottom)"
    if cumulative.empty or (cumulative["denominator"] == 0).all():
        return styled(_empty(go.Figure(), "No eligible patient in this cohort"), title, height)
    # One panel above the other, each the chart's full width: side by side, eleven cycles' labels overprint.
    fig = make_subplots(rows=2, cols=1, row_heights=[0.55, 0.45], vertical_spacing=0.3 if compact else 0.25)
    cycles = sorted(int(c) for c in cumulative["cycle"].unique())
    panels = {1: ["completers", "itt"], 2: ["new_responder"]}
    for place, measures in panels.items():
        # A cycle without any denominator has no rate: it is left off the panel rather than shown as 0/0.
        panel = cumulative.loc[cumulative["measure"].isin(measures) & (cumulative["denominator"] > 0)]
        ticks = sorted(int(c) for c in panel["cycle"].unique()) if place == 2 else cycles
        for measure in measures:
            rows = panel.loc[panel["measure"] == measure]
            if rows.empty:
                continue
            label = rows["label"].iloc[0]
            fig.add_trace(
                go.Bar(
                    x=rows["cycle"],
                    y=rows["rate"].where(rows["denominator"] > 0),
                    name=CUMULATIVE_SHORT.get(measure, label),
                    marker=dict(color=CUMULATIVE_COLOURS.get(measure, PRIMARY)),
                    error_y=_errors(rows["ci_low"], rows["rate"], rows["ci_high"]) | {"color": TEXT},
                    customdata=np.column_stack(
                        [
                            rows["numerator"],
                            rows["denominator"],
                            rows["ci_low"],
                            rows["ci_high"],
                            rows["denominator_counts"],
                        ]
                    ),
                    hovertemplate=(
                        f"{label}" + ", cycle %{x}: %{y:.0%} (%{customdata[0]}/%{customdata[1]}; 95% Wilson "
                        "CI %{customdata[2]:.0%}–%{customdata[3]:.0%})<br>denominator: %{customdata[4]}"
                        "<extra></extra>"
                    ),
                ),
                row=place,
                col=1,
            )
        labels = _ratio_ticks(ticks, panel, measures, compact)
        fig.update_xaxes(tickvals=ticks, ticktext=labels, tickangle=0, row=place, col=1)
    fig.update_layout(barmode="group", bargap=0.2, bargroupgap=0.04)
    if compact:
        fig.update_xaxes(title="Cycle (below: denominators)", row=1, col=1)
        fig.update_xaxes(title="Cycle (below: prior non-responders)", row=2, col=1)
    else:
        fig.update_xaxes(title="Cycle (under it: responders / denominator)", row=1, col=1)
        fig.update_xaxes(title="Cycle (new responders / prior non-responders)", row=2, col=1)
    fig.update_yaxes(title="Share of the denominator", tickformat=".0%", range=[0, 1.05], row=1, col=1)
    fig.update_yaxes(title="New responders", tickformat=".0%", range=[0, 1.05], row=2, col=1)
    return _laid_out(styled(fig, title, height), compact)


def build_weekly_profile_figure(profile: WithinCycleProfile, height: int = 460, compact: bool = False) -> go.Figure:
    """Weekly headache days by week since injection, cycles overlaid (markers: weekly means with 95%
    t-intervals; lines: the centred 7-day moving average), with the baseline level as a dashed line;
    ``compact`` lays it out for a phone (shorter notes, a tick every four weeks)."""
    fig = go.Figure()
    title = "Within-cycle course: headache days per week since injection"
    weekly, daily = profile.weekly, profile.daily
    if weekly.empty:
        return styled(_empty(fig, "No eligible patient has a recorded treatment week in this cohort"), title, height)
    span = int(daily["day_in_cycle"].max()) if len(daily) else 84
    fig.add_vrect(
        x0=0.5,
        x1=14.5,
        fillcolor=GRID,
        opacity=0.35,
        line_width=0,
        layer="below",
        annotation_text="onset" if compact else "weeks 1–2: onset",
        annotation_position="bottom left",
        annotation_font=dict(size=11, color=BASELINE),
    )
    if span >= 63:
        fig.add_vrect(
            x0=56.5,
            x1=span + 0.5,
            fillcolor=GRID,
            opacity=0.35,
            line_width=0,
            layer="below",
            annotation_text="wearing-off?" if compact else "last 4 weeks: wearing-off?",
            annotation_position="bottom left",
            annotation_font=dict(size=11, color=BASELINE),
        )
    if np.isfinite(profile.baseline_mean):
        fig.add_hline(
            y=profile.baseline_mean,
            line=dict(color=BASELINE, dash="dash", width=1.5),
            annotation_text=f"baseline {profile.baseline_mean:.1f}"
            + ("" if compact else f" / week (n = {profile.baseline_n})"),
            annotation_position="top right",
            annotation_font=dict(size=11, color=BASELINE),
        )
    groups = list(dict.fromkeys(weekly["cycle_group"]))
    for i, group in enumerate(groups):
        colour = SEQUENCE[i % len(SEQUENCE)]
        days = daily.loc[daily["cycle_group"] == group]
        fig.add_trace(
            go.Scatter(
                x=days["day_in_cycle"],
                y=days["moving_average"],
                mode="lines",
                name=f"{group}",
                legendgroup=group,
                line=dict(color=colour, width=2),
                customdata=np.column_stack([days["window_recorded"]]),
                hovertemplate=(
                    f"{group}" + ", day %{x}: %{y:.2f} headache days / week (7-day average over "
                    "%{customdata[0]} patient-days)<extra></extra>"
                ),
            )
        )
        weeks = weekly.loc[weekly["cycle_group"] == group]
        fig.add_trace(
            go.Scatter(
                x=weeks["week"] * 7 - 3,
                y=weeks["mean_headache_days"],
                mode="markers",
                name=f"{group} weekly mean",
                legendgroup=group,
                showlegend=False,
                marker=dict(color=colour, size=7, line=dict(color="white", width=1)),
                error_y=_errors(weeks["ci_low"], weeks["mean_headache_days"], weeks["ci_high"])
                | {"thickness": 1, "color": colour},
                customdata=np.column_stack([weeks["week"], weeks["n"], weeks["ci_low"], weeks["ci_high"]]),
                hovertemplate=(
                    f"{group}" + ", week %{customdata[0]}: mean %{y:.2f} headache days (95% t-CI "
                    "%{customdata[2]:.2f}–%{customdata[3]:.2f}); n = %{customdata[1]} patient-cycles"
                    "<extra></extra>"
                ),
            )
        )
    ticks = list(range(0, span + 1, 28 if compact else 14))
    fig.update_xaxes(
        title="Days since injection"
        + ("" if compact else " (markers: weekly means at mid-week; lines: 7-day moving average)"),
        tickvals=ticks,
        range=[0, span + 1],
        ticktext=[f"{d}<br><span style='font-size:11px'>wk {d // 7}</span>" for d in ticks],
    )
    top = np.nanmax([weekly["ci_high"].max(), daily["moving_average"].max(), profile.baseline_mean])
    fig.update_yaxes(title="Headache days per week", range=[0, float(top) * 1.12 if np.isfinite(top) else 7])
    return _laid_out(styled(fig, title, height), compact)


STOPPED_COLOUR = "#d55e00"


def _incidence_traces(
    fig: go.Figure, curve: pd.DataFrame, columns: tuple[str, str, str, str], name: str, colour: str, fill: str
) -> None:
    """One cumulative incidence of ``TimeToResponse.cumulative`` as a step line over its 95% band;
    ``columns``: the estimate, its CI limits and the day's count of that event."""
    value, low, high, count = columns
    fig.add_trace(
        go.Scatter(
            x=curve["time"],
            y=curve[high],
            mode="lines",
            line=dict(width=0, shape="hv"),
            hoverinfo="skip",
            showlegend=False,
            legendgroup=value,
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=curve["time"],
            y=curve[low],
            mode="lines",
            line=dict(width=0, shape="hv"),
            fill="tonexty",
            fillcolor=fill,
            name=f"95% CI ({name})",
            legendgroup=value,
            showlegend=False,
            hoverinfo="skip",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=curve["time"],
            y=curve[value],
            mode="lines",
            name=name,
            legendgroup=value,
            line=dict(color=colour, shape="hv", width=2.5),
            customdata=np.column_stack([curve["at_risk"], curve[count], curve[low], curve[high]]),
            hovertemplate=(
                f"Day %{{x}}: %{{y:.1%}} {name} (95% CI %{{customdata[2]:.1%}}–%{{customdata[3]:.1%}})<br>"
                "at risk %{customdata[0]}, on this day %{customdata[1]}<extra></extra>"
            ),
        ),
        row=1,
        col=1,
    )


def build_time_to_response_figure(
    ttr: TimeToResponse, step_days: int = 84, height: int = 480, compact: bool = False
) -> go.Figure:
    """Cumulative incidence of a first 50% response and of stopping without one, by days since the first
    injection (Aalen–Johansen, stopping a competing event), each with its 95% band; the number at risk
    every ``step_days`` under the axis (``compact``, a phone: every other one, smaller)."""
    title = "Time to first 50% response: cumulative incidence, stopping as a competing event"
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.85, 0.15], vertical_spacing=0.1)
    if ttr.curve.n == 0:
        return styled(_empty(go.Figure(), "No eligible patient in this cohort"), title, height)
    curve = ttr.cumulative()
    _incidence_traces(
        fig,
        curve,
        ("responded", "ci_low", "ci_high", "responses"),
        "responded",
        THRESHOLD_COLOURS[50],
        "rgba(0,158,115,0.18)",
    )
    _incidence_traces(
        fig,
        curve,
        ("stopped", "stopped_ci_low", "stopped_ci_high", "stops"),
        "stopped without a response",
        STOPPED_COLOUR,
        "rgba(213,94,0,0.15)",
    )
    censored = curve.loc[curve["censored"] > 0]
    fig.add_trace(
        go.Scatter(
            x=censored["time"],
            y=censored["responded"],
            mode="markers",
            name="censored (still treated)",
            marker=dict(symbol="line-ns-open", size=9, color=BASELINE),
            customdata=censored["censored"],
            hovertemplate="Day %{x}: %{customdata} censored<extra></extra>",
        ),
        row=1,
        col=1,
    )
    risk = ttr.at_risk(step_days)
    if compact:  # a phone's width holds about six numbers
        risk = risk.iloc[:: max(1, -(-len(risk) // 6))]
    fig.add_trace(
        go.Scatter(
            x=risk["day"],
            y=np.zeros(len(risk)),
            mode="text",
            text=risk["at_risk"].astype(str),
            textfont=dict(size=10 if compact else 12, color=TEXT),
            showlegend=False,
            hovertemplate="Day %{x}: %{text} at risk<extra></extra>",
        ),
        row=2,
        col=1,
    )
    fig.update_yaxes(
        title="Share of eligible" if compact else "Share of eligible patients",
        tickformat=".0%",
        range=[0, 1.02],
        row=1,
        col=1,
    )
    fig.update_yaxes(visible=False, row=2, col=1, range=[-1, 1])
    fig.update_xaxes(showticklabels=True, tickvals=risk["day"], row=1, col=1)
    fig.update_xaxes(
        title="Days since first injection",
        tickvals=risk["day"],
        showgrid=False,
        showline=False,
        ticks="",
        showticklabels=False,
        row=2,
        col=1,
    )
    fig.add_annotation(
        text="at risk",
        x=0,
        xref="paper",
        xanchor="right",
        y=0,
        yref="y2",
        showarrow=False,
        font=dict(size=10 if compact else 12, color=BASELINE),
        xshift=-8,
    )
    return _laid_out(styled(fig, title, height), compact)


def build_forest_figure(forest: pd.DataFrame, height: int | None = None, compact: bool = False) -> go.Figure:
    """50% response at one cycle by subgroup (``subgroup_response``): rate with 95% Wilson CI per
    level, responders/evaluable beside it, the overall rate as a dashed line; ``compact`` lays it out for a
    phone (the levels' labels and the counts smaller, the counts inside the chart's right edge)."""
    fig = go.Figure()
    cycle = int(forest["cycle"].iloc[0]) if len(forest) else 0
    title = f"50% response at cycle {cycle} by subgroup"
    rows = forest.loc[forest["evaluable"] > 0].reset_index(drop=True)
    if rows.empty:
        return styled(
            _empty(fig, f"No patient has an evaluable change at cycle {cycle} in this cohort"), title, height or 300
        )
    labels = [
        f"<b>{s}</b>" if s == "Overall" else f"{s}: {lv}" for s, lv in zip(rows["subgroup"], rows["level"], strict=True)
    ]
    y = list(range(len(rows)))[::-1]
    overall = rows.loc[rows["subgroup"] == "Overall", "rate"]
    if len(overall):
        fig.add_vline(x=float(overall.iloc[0]), line=dict(color=BASELINE, dash="dash", width=1))
    colours = [
        TEXT if s == "Overall" else (MISSING if lv == "not recorded" else PRIMARY)
        for s, lv in zip(rows["subgroup"], rows["level"], strict=True)
    ]
    fig.add_trace(
        go.Scatter(
            x=rows["rate"],
            y=y,
            mode="markers",
            marker=dict(symbol="square", size=np.clip(5 + np.sqrt(rows["evaluable"]), 6, 16), color=colours),
            error_x=_errors(rows["ci_low"], rows["rate"], rows["ci_high"]) | {"color": BASELINE},
            customdata=np.column_stack(
                [labels, rows["responders"], rows["evaluable"], rows["ci_low"], rows["ci_high"]]
            ),
            hovertemplate=(
                "%{customdata[0]}: %{x:.0%} (%{customdata[1]}/%{customdata[2]}; 95% Wilson CI "
                "%{customdata[3]:.0%}–%{customdata[4]:.0%})<extra></extra>"
            ),
            showlegend=False,
        )
    )
    fig.add_trace(
        go.Scatter(
            x=np.full(len(rows), 1.04),
            y=y,
            mode="text",
            textposition="middle right",
            text=[f"{r}/{n}" for r, n in zip(rows["responders"], rows["evaluable"], strict=True)],
            textfont=dict(size=10 if compact else 12, color=TEXT),
            hoverinfo="skip",
            showlegend=False,
        )
    )
    fig.update_yaxes(
        tickvals=y,
        ticktext=labels,
        showgrid=False,
        range=[-0.7, len(rows) - 0.3],
        tickfont=dict(size=10) if compact else None,
    )
    fig.update_xaxes(
        title="Share responding (95% CI)"
        if compact
        else "Share of evaluable patients with ≥50% reduction (95% Wilson CI); right: responders / n",
        tickformat=".0%",
        range=[-0.02, 1.45 if compact else 1.2],
        tickvals=[0, 0.5, 1.0] if compact else [0, 0.25, 0.5, 0.75, 1.0],
    )
    fig = styled(fig, title, height or max(320, 26 * len(rows) + 120))
    return phone_title(fig) if compact else fig
