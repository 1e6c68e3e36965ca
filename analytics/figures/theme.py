"""The shared Plotly template and the colours that carry clinical meaning.

The template matches ``.streamlit/config.toml`` (same primary colour, font and background) so
charts and app chrome read as one. Colours are chosen to stay distinguishable for the common
colour-vision deficiencies (Okabe–Ito based); missing data is always grey.

The template is also Plotly's default: a new figure then starts from it, which Plotly attaches without
validating it again, whereas setting a template on a figure validates and copies the whole template
(about a millisecond a figure, several times per page).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

PRIMARY = "#1f5f8b"
TEXT = "#1b2430"
GRID = "#e3e8ef"
FONT = "Source Sans Pro, Arial, sans-serif"

# Meaningful colours (Okabe–Ito palette where possible).
HEADACHE_FREE = "#d9f0d3"
HEADACHE = "#f0b357"
MIGRAINE = "#d55e00"
SEVERE = "#8c2d04"
MISSING = "#bdbdbd"
INJECTION = "#0072b2"
BASELINE = "#6b6b6b"
RESPONDER = "#009e73"
PARTIAL = "#e69f00"
NON_RESPONDER = "#cc79a7"
THRESHOLD_COLOURS = {30: "#e69f00", 50: "#009e73", 75: "#0072b2"}
SEQUENCE = ["#1f5f8b", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#f0e442", "#000000"]

TEMPLATE_NAME = "outcomes"

pio.templates[TEMPLATE_NAME] = go.layout.Template(
    layout=go.Layout(
        font=dict(family=FONT, size=14, color=TEXT),
        title=dict(font=dict(size=18), x=0, xanchor="left"),
        colorway=SEQUENCE,
        paper_bgcolor="white",
        plot_bgcolor="white",
        xaxis=dict(gridcolor=GRID, linecolor="#9aa5b1", ticks="outside", zeroline=False, automargin=True),
        yaxis=dict(gridcolor=GRID, linecolor="#9aa5b1", ticks="outside", zeroline=False, automargin=True),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
        margin=dict(l=60, r=20, t=60, b=50),
        hoverlabel=dict(font_size=13),
    )
)
pio.templates.default = TEMPLATE_NAME
TEMPLATE = pio.templates[TEMPLATE_NAME]


def figure(data: Sequence[Mapping[str, Any]], layout: Mapping[str, Any]) -> go.Figure:
    """A figure made in one go from its traces and layout (plain dicts), with the shared template.

    Plotly validates every property once here; adding traces or updating the layout one call at a time runs its
    validators and change machinery again on each call, which made up most of a patient switch.
    """
    fig = go.Figure(data=list(data), layout=dict(layout))
    if fig.layout.template != TEMPLATE:
        fig.update_layout(template=TEMPLATE)
    return fig


def styled(fig: go.Figure, title: str | dict | None = None, height: int | None = None, **layout: object) -> go.Figure:
    """Apply the shared template (and optionally a title, a height and other layout properties) to a figure.

    One ``update_layout`` call: each call runs Plotly's validators and relayout machinery again. The template
    is set only when the figure does not already have it (a figure made while another default was in force).
    """
    if fig.layout.template != TEMPLATE:
        layout["template"] = TEMPLATE
    if title is not None:
        layout["title"] = title
    if height is not None:
        layout["height"] = height
    fig.update_layout(layout)
    return fig


PHONE_TITLE_CHARS = 34  # a title line on a phone (Plotly does not wrap titles): about 330 px at 15 px
LEGEND_BELOW = dict(orientation="h", yref="container", y=0, yanchor="bottom", x=0, xanchor="left")
"""A horizontal legend at the foot of the figure: it wraps to the chart's width and Plotly grows the bottom margin."""


def phone_title(fig: go.Figure, extra_top: int = 0) -> go.Figure:
    """The title wrapped onto short lines for a phone, with room above the plot for them (and ``extra_top`` pixels
    more, for a legend left between the title and the plot)."""
    lines = textwrap.wrap(str(fig.layout.title.text or ""), PHONE_TITLE_CHARS, break_on_hyphens=False)
    fig.update_layout(
        title=dict(text="<br>".join(lines), font=dict(size=15), yref="container", y=1, yanchor="top", pad=dict(t=22)),
        margin=dict(t=36 + 19 * len(lines) + extra_top),
    )
    return fig


def _load_plotly_parts() -> None:
    """Plotly imports each trace type's and layout part's classes, narwhals its pandas support and plotly.io its
    JSON writer the first time a figure needs them (about 0.1 s on the Patient page's first figures after a
    restart): a small figure that needs them all, made and written once when the figures are imported."""
    values = pd.Series([0.0])
    font = dict(size=12)
    fig = figure(
        [
            dict(type="heatmap", z=[[0]]),
            dict(type="scatter", x=values, y=values, line=dict(width=1), textfont=font, marker=dict(line=dict())),
            dict(type="bar", x=values, y=values, textfont=font, marker=dict(pattern=dict())),
        ],
        dict(
            title=dict(text="", pad=dict(t=1)),
            shapes=[dict(type="line", line=dict(width=1))],
            annotations=[dict(text="", font=font)],
            xaxis=dict(tickfont=font, title=dict(text="")),
            yaxis=dict(tickfont=font, title=dict(text="")),
        ),
    )
    pio.to_json(fig, validate=False)


_load_plotly_parts()
