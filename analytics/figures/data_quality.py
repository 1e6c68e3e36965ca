"""Figures of the Data page: pure ``build_*_figure(...) -> go.Figure`` builders over ``analytics.views.quality`` tables.

The completeness histogram draws the bins ``analytics.views.quality.completeness_bins`` counted; it shades
the part of the axis below ``min_completeness``, where a window is not evaluable, so the threshold in
use is visible next to the data it cuts.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from analytics.figures.theme import LEGEND_BELOW, PRIMARY, TEXT, phone_title, styled
from analytics.views.quality import BASELINE_WINDOW, TREATMENT_WINDOW

WINDOW_COLOURS = {BASELINE_WINDOW: "#56b4e9", TREATMENT_WINDOW: PRIMARY}
NOT_EVALUABLE_SHADE = "rgba(204, 121, 167, 0.12)"


def build_completeness_figure(
    bins: pd.DataFrame, min_completeness: float, height: int = 380, compact: bool = False
) -> go.Figure:
    """Stacked bars of patient-cycle windows by diary completeness (%), baseline and treatment cycles.

    ``compact`` (a phone): the title wrapped, the legend below the plot, fewer ticks and shorter axis titles.
    """
    total = int(bins["windows"].sum())
    fig = styled(go.Figure(), f"Diary completeness per patient-cycle window (n = {total:,} windows)", height)
    for window in (BASELINE_WINDOW, TREATMENT_WINDOW):
        rows = bins[bins["window"] == window]
        low, high = 100 * rows["bin_low"], 100 * rows["bin_high"]
        fig.add_bar(
            x=(low + high) / 2,
            y=rows["windows"],
            width=(high - low) * 0.92,
            name=f"{window} (n = {int(rows['windows'].sum()):,})",
            marker_color=WINDOW_COLOURS[window],
            customdata=pd.concat([low, high], axis=1).to_numpy(),
            hovertemplate=f"{window}<br>" + "%{customdata[0]:.0f}–%{customdata[1]:.0f}% of days recorded: "
            "%{y} windows<extra></extra>",
        )
    threshold = 100 * min_completeness
    if threshold > 0:
        # What add_vrect and add_vline draw, as layout shapes (the two calls look up every axis: about 6 ms a figure).
        below = dict(xref="x", yref="y domain", y0=0, y1=1)
        fig.update_layout(
            shapes=[
                dict(type="rect", x0=0, x1=threshold, fillcolor=NOT_EVALUABLE_SHADE, line=dict(width=0), layer="below")
                | below,
                dict(type="line", x0=threshold, x1=threshold, line=dict(color=TEXT, dash="dash", width=1.5)) | below,
            ]
        )
        fig.add_annotation(
            x=threshold,
            y=1,
            yref="paper",
            xanchor="right",
            yanchor="top",
            showarrow=False,
            text=f"not evaluable<br>below {threshold:.0f}% " if compact else f"not evaluable below {threshold:.0f}% ",
            font=dict(size=12 if compact else 13, color=TEXT),
        )
    fig.update_layout(barmode="stack", bargap=0)
    if compact:
        fig.update_layout(legend=LEGEND_BELOW, height=height + 60)
        phone_title(fig)
    x_title = "Days with a diary entry (%)" if compact else "Days with a diary entry in the window (%)"
    fig.update_xaxes(title_text=x_title, range=[0, 100], dtick=20 if compact else 10, ticksuffix="%")
    fig.update_yaxes(title_text="Windows (n)" if compact else "Patient-cycle windows (n)", rangemode="tozero")
    return fig
