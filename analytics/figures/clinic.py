"""Figures of the clinic page: pure ``build_*_figure(...) -> go.Figure`` builders over clinic tables.

Each builder draws a table that ``analytics.views.clinic`` (or ``analytics.statistics.survival``)
already computed; none computes a definition. Titles carry the n, hover labels the numerator and denominator, and the
colours come from the shared theme (missing or not recorded is grey). The Kaplan–Meier builder is
generic (any ``KaplanMeier`` result, with its number-at-risk row drawn under the axis), so other
pages can reuse it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analytics.figures.theme import (
    BASELINE,
    INJECTION,
    LEGEND_BELOW,
    MIGRAINE,
    MISSING,
    NON_RESPONDER,
    PARTIAL,
    PRIMARY,
    RESPONDER,
    SEQUENCE,
    TEXT,
    phone_title,
    styled,
)
from analytics.statistics.survival import KaplanMeier
from analytics.views.clinic import NOT_RECORDED, Funnel, IntervalSummary, SafetyView

CATEGORY_COLOURS = {"early": PARTIAL, "on time": RESPONDER, "late": NON_RESPONDER}


def _fit(fig: go.Figure, compact: bool, legend_below: bool = True, extra_top: int = 0) -> go.Figure:
    """The legend at the foot of the figure; on a phone (``compact``) the title wrapped onto short lines.

    ``extra_top`` is room kept between the title and the plot (for a legend left at the top).
    """
    if legend_below:
        fig.update_layout(legend=LEGEND_BELOW)
    return phone_title(fig, extra_top) if compact else fig


def _thinned(order: list[str], every: int, suffix: str = "") -> dict[str, list[str]]:
    """Category ticks on every ``every``-th category only (all categories keep their bars and hover)."""
    shown = order[:: max(every, 1)]
    return dict(tickvals=shown, ticktext=[label.removesuffix(suffix) for label in shown])


def _empty(fig: go.Figure, message: str) -> go.Figure:
    fig.add_annotation(
        text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font=dict(size=15, color=BASELINE)
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def build_sessions_per_month_figure(monthly: pd.DataFrame, height: int = 360, compact: bool = False) -> go.Figure:
    """Stacked bars of sessions per month by injector; months cut by the period or the data cut-off are paler."""
    total = int(monthly["sessions"].sum())
    title = f"Injection sessions per month (n = {total:,} sessions)"
    if monthly.empty:
        return _empty(styled(go.Figure(), title, height), "No sessions in this selection")
    injectors = sorted(monthly["injector"].unique(), key=lambda name: (name == NOT_RECORDED, name))
    by_injector = dict(tuple(monthly.groupby("injector", sort=False)))
    traces = []
    for i, injector in enumerate(injectors):
        rows = by_injector[injector]
        partial = rows["partial_month"].to_numpy(dtype=bool)
        traces.append(
            go.Bar(
                x=rows["month"],
                y=rows["sessions"],
                name=str(injector),
                marker=dict(
                    color=MISSING if injector == NOT_RECORDED else SEQUENCE[i % len(SEQUENCE)],
                    opacity=np.where(partial, 0.45, 1.0),
                ),
                customdata=np.column_stack([rows["patients"], np.where(partial, " (partial month)", "")]),
                hovertemplate="%{x|%b %Y}%{customdata[1]}<br>"
                + f"{injector}: "
                + "%{y} sessions, %{customdata[0]} patients<extra></extra>",
            )
        )
    # One construction and one layout (each update runs Plotly's validators again: this chart is on the Clinic
    # page's first tab). The legend stays even for a single injector, so the chart says whose sessions it counts.
    fig = styled(
        go.Figure(data=traces),
        title,
        height,
        barmode="stack",
        bargap=0.15,
        showlegend=True,
        xaxis=dict(title="Month", dtick="M6" if compact else "M3", tickformat="%b %Y"),
        yaxis=dict(title="Sessions", rangemode="tozero"),
    )
    _fit(fig, compact)
    fig.update_layout(legend=dict(title_text="Injector", traceorder="normal"))
    return fig


def build_interval_figure(
    distribution: pd.DataFrame, summary: IntervalSummary, height: int = 360, compact: bool = False
) -> go.Figure:
    """The distribution of re-injection intervals in 7-day bins, coloured early / on time / late."""
    title = f"Re-injection intervals (n = {summary.n_intervals:,} intervals, {summary.n_patients:,} patients)"
    fig = styled(go.Figure(), title, height)
    if distribution.empty:
        return _empty(fig, "No re-injections in this selection")
    order = distribution.drop_duplicates("bin_start").sort_values("bin_start")["bin_label"].tolist()
    low, high = summary.on_time_days
    names = {
        "early": f"early (< {low} days)",
        "on time": f"on time ({low}–{high} days)",
        "late": f"late (> {high} days)",
    }
    for category, colour in CATEGORY_COLOURS.items():
        rows = distribution[distribution["category"] == category]
        if rows.empty:
            continue
        fig.add_bar(
            x=rows["bin_label"],
            y=rows["intervals"],
            name=names[category],
            marker_color=colour,
            hovertemplate="%{x}: %{y} intervals " + category + "<extra></extra>",
        )
    fig.update_layout(barmode="stack", bargap=0.1)
    _fit(fig, compact)
    # Horizontal labels on every few bins (rotated ones overprint each other); each bar's hover names its bin.
    fig.update_xaxes(
        title="Days from one session to the next",
        categoryorder="array",
        categoryarray=order,
        tickangle=0,
        **_thinned(order, 4 if compact else 2, " days"),
    )
    fig.update_yaxes(title="Intervals", rangemode="tozero")
    return fig


def build_retention_figure(retention: pd.DataFrame, height: int = 430, compact: bool = False) -> go.Figure:
    """Bars of how many patients reached each cycle, labelled with the count and % of those who started.

    ``compact`` (a phone) lays the bars across, one row per cycle, where each label has a line of its own."""
    started = int(retention["started_n"].iloc[0]) if len(retention) else 0
    fig = styled(go.Figure(), f"Retention across cycles (n = {started:,} patients who started)", height)
    if retention.empty or started == 0:
        return _empty(fig, "No patients started treatment in this selection")
    reached = zip(retention["reached_n"], retention["reached_share"], strict=True)
    labels = [f"{n} ({share:.0%})" if compact else f"{n}<br>{share:.0%}" for n, share in reached]
    had_time = [
        f"{k}/{n} of those who had the time ({rate:.0%}; 95% Wilson {lo:.0%}–{hi:.0%})"
        if n
        else "no one had the time yet"
        for k, n, rate, lo, hi in zip(
            retention["reached_had_time_n"],
            retention["had_time_n"],
            retention["reached_had_time_rate"],
            retention["ci_low"],
            retention["ci_high"],
            strict=True,
        )
    ]
    cycle_axis, count_axis = ("y", "x") if compact else ("x", "y")
    fig.add_bar(
        **{cycle_axis: retention["cycle"], count_axis: retention["reached_n"]},
        orientation="h" if compact else "v",
        marker_color=PRIMARY,
        text=labels,
        textposition="outside",
        textfont=dict(size=12),
        constraintext="none",
        cliponaxis=False,
        customdata=np.array(had_time, dtype=object)[:, None],
        hovertemplate=f"Cycle %{{{cycle_axis}}}: %{{{count_axis}}} patients reached it<br>%{{customdata[0]}}"
        "<extra></extra>",
        showlegend=False,
    )
    _fit(fig, compact)
    if compact:
        fig.update_layout(height=max(height, 90 + 24 * len(retention)))
        fig.update_yaxes(title="Cycle reached", dtick=1, autorange="reversed")
        fig.update_xaxes(title="Patients", rangemode="tozero", range=[0, started * 1.45])
        return fig
    fig.update_xaxes(title="Cycle reached (number of sessions)", dtick=1)
    fig.update_yaxes(title="Patients", rangemode="tozero", range=[0, started * 1.22])
    return fig


def build_kaplan_meier_figure(
    curve: KaplanMeier,
    at_risk: pd.DataFrame,
    title: str,
    x_title: str = "Weeks since the first session",
    y_title: str = "Still on treatment",
    days_per_unit: float = 7.0,
    colour: str = INJECTION,
    height: int = 430,
    compact: bool = False,
) -> go.Figure:
    """A Kaplan–Meier step curve with its CI band and, under the axis, the number at risk at each tick.

    Times are in days in ``curve`` and ``at_risk`` and drawn in units of ``days_per_unit`` days.
    """
    fig = styled(go.Figure(), title, height)
    if curve.n == 0:
        return _empty(fig, "No patients in this selection")
    table = curve.table
    x = table["time"] / days_per_unit
    fig.add_scatter(
        x=x, y=table["ci_high"], mode="lines", line=dict(width=0, shape="hv"), hoverinfo="skip", showlegend=False
    )
    fig.add_scatter(
        x=x,
        y=table["ci_low"],
        mode="lines",
        line=dict(width=0, shape="hv"),
        fill="tonexty",
        fillcolor="rgba(0, 114, 178, 0.18)",
        name=f"{curve.level:.0%} CI",
        hoverinfo="skip",
    )
    fig.add_scatter(
        x=x,
        y=table["survival"],
        mode="lines",
        line=dict(color=colour, width=2.5, shape="hv"),
        name="Kaplan–Meier",
        customdata=np.column_stack([table["at_risk"], table["ci_low"], table["ci_high"], table["time"]]),
        hovertemplate="Day %{customdata[3]:.0f}: %{y:.0%} (95% CI %{customdata[1]:.0%}–%{customdata[2]:.0%}), "
        "%{customdata[0]} at risk<extra></extra>",
    )
    censored = table[table["censored"] > 0]
    fig.add_scatter(
        x=censored["time"] / days_per_unit,
        y=censored["survival"],
        mode="markers",
        marker=dict(symbol="line-ns-open", size=6, color=colour, opacity=0.5),
        name="censored",
        hoverinfo="skip",
    )
    ticks = at_risk["time"] / days_per_unit
    pad = ticks.max() * 0.02 + 0.5
    fig.update_xaxes(title=x_title, tickvals=ticks, ticktext=[f"{t:g}" for t in ticks], range=[-pad, ticks.max() + pad])
    fig.update_yaxes(title=y_title, range=[0, 1.02], tickformat=".0%")
    # The number-at-risk row sits under the axis title, one number per tick, as in published KM plots.
    # Pixel offsets keep the row clear of the tick labels and axis title whatever the figure's height.
    row = dict(y=0, yref="paper", yanchor="top", yshift=-72, showarrow=False, font=dict(size=12, color=TEXT))
    numbers = [dict(row, x=tick, xref="x", text=f"{n}") for tick, n in zip(ticks, at_risk["at_risk"], strict=True)]
    label = dict(row, x=0, xref="paper", text="At risk", xanchor="right", xshift=-8)
    fig.update_layout(annotations=[*numbers, label], margin=dict(b=105, l=80, t=90))
    # The legend stays above the plot (the number-at-risk row holds the foot); on a phone it may wrap.
    return _fit(fig, compact, legend_below=False, extra_top=50)


def build_responder_rate_figure(cohort: pd.DataFrame, height: int = 380, compact: bool = False) -> go.Figure:
    """50% responder rate per cycle with 95% Wilson error bars and the number evaluable under each point."""
    rows = cohort[(cohort["cycle"] >= 1) & (cohort["n_evaluable"].fillna(0) > 0)]
    patients = int(cohort.loc[cohort["cycle"] == 1, "n_treated"].fillna(0).sum()) if len(cohort) else 0
    fig = styled(go.Figure(), f"50% responder rate per cycle (n = {patients:,} patients treated)", height)
    if rows.empty:
        return _empty(fig, "No evaluable cycles in this selection")
    rate = rows["responder_50_rate"].astype("float64")
    low = rows["responder_50_ci_low"].astype("float64")
    high = rows["responder_50_ci_high"].astype("float64")
    fig.add_scatter(
        x=rows["cycle"],
        y=rate,
        mode="markers+lines",
        marker=dict(size=10, color=RESPONDER),
        line=dict(color=RESPONDER, width=1, dash="dot"),
        name="50% responders",
        error_y=dict(type="data", symmetric=False, array=high - rate, arrayminus=rate - low, color=RESPONDER),
        customdata=np.column_stack([rows["responder_50_n"], rows["n_evaluable"], low, high]),
        hovertemplate="Cycle %{x}: %{y:.0%} (%{customdata[0]}/%{customdata[1]}; "
        "95% Wilson %{customdata[2]:.0%}–%{customdata[3]:.0%})<extra></extra>",
    )
    fig.add_scatter(
        x=rows["cycle"],
        y=np.full(len(rows), -0.08),
        mode="text",
        # On a phone the row is the numbers alone, smaller (the axis title says what they are).
        text=[f"{n}" if compact else f"n={n}" for n in rows["n_evaluable"]],
        textfont=dict(size=9 if compact else 11, color=BASELINE),
        hoverinfo="skip",
        showlegend=False,
    )
    fig.update_xaxes(title="Cycle (below: n evaluable)" if compact else "Cycle", dtick=1)
    fig.update_yaxes(
        title="50% responders (of evaluable)", range=[-0.13, 1.02], tickformat=".0%", tickvals=[0, 0.25, 0.5, 0.75, 1]
    )
    return _fit(fig, compact)


def adverse_event_order(rates: pd.DataFrame) -> list[str]:
    """Event types from the most to the least frequent (per 100 sessions), ties in the vocabulary's order, and the
    catch-all ``other`` last whatever its rate; ``all events`` is left out."""
    rows = rates[rates["event"] != "all events"].reset_index(drop=True)
    ranked = rows.assign(
        is_other=rows["event"].eq("other"), vocabulary=rows.index, rate=-rows["per_100_sessions"].fillna(0)
    ).sort_values(["is_other", "rate", "vocabulary"], kind="stable")
    return ranked["event"].tolist()


def build_adverse_event_figure(rates: pd.DataFrame, height: int = 380, compact: bool = False) -> go.Figure:
    """Adverse events per 100 sessions by event type, with exact Poisson (Garwood) error bars; the most frequent
    type on top, ``other`` at the bottom (``adverse_event_order``)."""
    sessions = int(rates["sessions"].iloc[0]) if len(rates) else 0
    fig = styled(go.Figure(), f"Adverse events per 100 sessions (n = {sessions:,} sessions)", height)
    order = adverse_event_order(rates)
    # A horizontal bar chart draws its first category at the bottom: the bars go in reverse order.
    rows = rates.set_index("event").loc[order[::-1]].reset_index()
    if sessions == 0:
        return _empty(fig, "No sessions in this selection")
    value = rows["per_100_sessions"]
    fig.add_bar(
        y=rows["event"].str.replace("_", " "),
        x=value,
        orientation="h",
        marker_color=MIGRAINE,
        error_x=dict(
            type="data",
            symmetric=False,
            array=rows["ci_high"] - value,
            arrayminus=value - rows["ci_low"],
            color=TEXT,
            thickness=1.2,
        ),
        customdata=np.column_stack(
            [rows["events"], rows["sessions"], rows["ci_low"], rows["ci_high"], rows["serious"]]
        ),
        hovertemplate="%{y}: %{x:.1f} per 100 sessions (%{customdata[0]} events / %{customdata[1]} sessions; "
        "95% exact Poisson %{customdata[2]:.1f}–%{customdata[3]:.1f}); serious: %{customdata[4]}"
        "<extra></extra>",
        showlegend=False,
    )
    fig.update_xaxes(title="Events per 100 sessions", rangemode="tozero")
    labels = [event.replace("_", " ") for event in order[::-1]]
    fig.update_yaxes(categoryorder="array", categoryarray=labels)
    return _fit(fig, compact)


def build_safety_figure(view: SafetyView, height: int = 400, compact: bool = False) -> go.Figure:
    """Share of patients with each adverse event after their first two sessions (SPEC §5.4 pct_2_cycles) with
    95% Wilson error bars, beside PREEMPT's published 24-week figures (hollow markers: not checked against the
    paper). The row ``any`` is left out of the chart (no PREEMPT figure of that kind)."""
    rows = view.table[view.table["event"] != "any"].iloc[::-1]
    n = int(view.table["patients_2_cycles"].iloc[0]) if len(view.table) else 0
    title = f"Patients with an adverse event in the first two cycles (n = {n:,} patients with ≥2 sessions)"
    fig = styled(go.Figure(), title, height)
    if n == 0 or rows.empty:
        return _empty(fig, "No patient with two sessions, or no adverse event recorded")
    labels = rows["event"].str.replace("_", " ")
    pct, low, high = rows["pct_2_cycles"], rows["pct_2_cycles_ci_low"], rows["pct_2_cycles_ci_high"]
    fig.add_scatter(
        y=labels,
        x=pct,
        mode="markers",
        marker=dict(size=10, color=PRIMARY),
        name="this dataset",
        error_x=dict(type="data", symmetric=False, array=high - pct, arrayminus=pct - low, color=PRIMARY),
        customdata=np.column_stack([rows["patients_with_event_2_cycles"], rows["patients_2_cycles"], low, high]),
        hovertemplate="%{y}: %{x:.1f}% (%{customdata[0]}/%{customdata[1]}; 95% Wilson %{customdata[2]:.1f}–"
        "%{customdata[3]:.1f}%)<extra></extra>",
    )
    published = view.published[(view.published["study"] == "PREEMPT") & view.published["event"].isin(rows["event"])]
    for checked, name, symbol in (
        (True, "PREEMPT, 24 weeks", "diamond"),
        (False, "PREEMPT, 24 weeks (not checked)", "diamond-open"),
    ):
        points = published[published["checked"] == checked]
        if points.empty:
            continue
        fig.add_scatter(
            y=points["event"].str.replace("_", " "),
            x=points["published_pct"],
            mode="markers",
            name=name,
            marker=dict(size=12, symbol=symbol, color=MIGRAINE, line=dict(width=2, color=MIGRAINE)),
            customdata=points[["note"]].to_numpy(),
            hovertemplate="%{y}: PREEMPT %{x:.1f}%<br>%{customdata[0]}<extra></extra>",
        )
    fig.update_xaxes(title="% of patients with ≥2 sessions", rangemode="tozero")
    fig.update_yaxes(categoryorder="array", categoryarray=list(labels))
    return _fit(fig, compact)


def build_completeness_figure(
    distribution: pd.DataFrame, min_completeness: float, height: int = 340, compact: bool = False
) -> go.Figure:
    """Active patients by current-cycle diary completeness (10% bins), below the threshold highlighted."""
    n = int(distribution["patients"].sum())
    fig = styled(go.Figure(), f"Diary completeness in the current cycle (n = {n:,} active patients)", height)
    if n == 0:
        return _empty(fig, "No active patients in this selection")
    order = distribution.drop_duplicates("bin_low").sort_values("bin_low")["bin_label"].tolist()
    for below, name, colour in (
        (True, f"below {min_completeness:.0%}", PARTIAL),
        (False, f"at least {min_completeness:.0%}", RESPONDER),
    ):
        rows = distribution[distribution["below_threshold"] == below]
        if rows.empty:
            continue
        fig.add_bar(
            x=rows["bin_label"],
            y=rows["patients"],
            name=name,
            marker_color=colour,
            hovertemplate="%{x} of days recorded: %{y} patients<extra></extra>",
        )
    fig.update_layout(barmode="stack", bargap=0.1)
    fig.update_xaxes(
        title="Share of the current cycle's days recorded",
        categoryorder="array",
        categoryarray=order,
        **(_thinned(order, 2) if compact else {}),
    )
    fig.update_yaxes(title="Active patients", rangemode="tozero")
    return _fit(fig, compact)


FUNNEL_ALL_NAMED = 4  # a funnel of this many units or fewer names every one on the plot


def build_funnel_figure(funnel: Funnel, height: int = 430) -> go.Figure:
    """A funnel plot: each unit's 50% responder rate against its number of evaluable patients, with
    95% and 99.8% control limits around the overall rate. The chosen unit, if any, is highlighted."""
    overall = funnel.overall
    plotted = funnel.units[funnel.units["evaluable_n"] > 0]
    fig = styled(go.Figure(), None, height)
    fig.update_layout(
        title=dict(
            text=f"{funnel.unit_label.capitalize()}s: 50% response at cycle {funnel.cycle}",
            subtitle=dict(text=f"n = {overall.denominator:,} evaluable patients, {len(plotted)} {funnel.unit_label}s"),
        ),
        margin=dict(t=90),
    )
    if overall.denominator == 0:
        return _empty(fig, f"No patients evaluable at cycle {funnel.cycle} in this selection")
    curves = funnel.curves
    for suffix, name, dash in (("998", "99.8% limits", "dot"), ("95", "95% limits", "dash")):
        for side in ("lower", "upper"):
            fig.add_scatter(
                x=curves["n"],
                y=curves[f"{side}_{suffix}"],
                mode="lines",
                line=dict(color=BASELINE, width=1.3, dash=dash),
                name=name,
                legendgroup=suffix,
                showlegend=side == "upper",
                hoverinfo="skip",
            )
    fig.add_scatter(
        x=[0, curves["n"].max()],
        y=[overall.rate, overall.rate],
        mode="lines",
        line=dict(color=TEXT, width=1.5),
        hoverinfo="skip",
        name=f"overall {overall.rate:.0%} ({overall.numerator}/{overall.denominator})",
    )
    if funnel.highlight is None:
        chosen = np.zeros(len(plotted), dtype=bool)
    else:
        chosen = plotted["unit"].astype(object).eq(funnel.highlight).to_numpy(dtype=bool)
    # Units of similar size sit close together: alternate label sides along n so that names do not overprint.
    sides = np.array(["top center", "bottom center", "middle right", "middle left"])
    label_side = pd.Series(
        sides[np.arange(len(plotted)) % len(sides)], index=plotted.sort_values(["evaluable_n", "rate"]).index
    ).reindex(plotted.index)
    for is_chosen in (False, True):
        rows = plotted[chosen == is_chosen]
        if rows.empty:
            continue
        fig.add_scatter(
            x=rows["evaluable_n"],
            y=rows["rate"],
            mode="markers+text",
            text=rows["unit"],
            # Named on the plot: the chosen unit and those outside the 95% limits, the ones a reader looks for (or
            # all of a few units); the rest crowd together and are named in the hover (their names overprinted).
            texttemplate=np.where(
                is_chosen | (len(plotted) <= FUNNEL_ALL_NAMED) | (rows["position"] != "within 95% limits").to_numpy(),
                "%{text}",
                "",
            ).tolist(),
            textposition=label_side[rows.index].tolist(),
            marker=dict(
                size=14 if is_chosen else 10,
                color=MIGRAINE if is_chosen else PRIMARY,
                line=dict(color="white", width=1),
            ),
            name=f"selected {funnel.unit_label}" if is_chosen else funnel.unit_label + "s",
            customdata=np.column_stack([rows["responders_n"], rows["ci_low"], rows["ci_high"], rows["position"]]),
            hovertemplate="%{text}: %{y:.0%} (%{customdata[0]}/%{x}; 95% Wilson %{customdata[1]:.0%}–"
            "%{customdata[2]:.0%}), %{customdata[3]}<extra></extra>",
        )
    fig.update_xaxes(title=f"Patients evaluable at cycle {funnel.cycle}", range=[0, curves["n"].max()])
    fig.update_yaxes(title="50% responders", range=[0, 1.05], tickformat=".0%")
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.3, x=0), margin=dict(b=130))
    return fig
