"""The printable patient summary: one self-contained HTML page that opens without a network.

``build_patient_report`` lays out what the Patient page shows for one patient (header numbers
with their n, status, suitability, stopping rules, the per-cycle table and the charts) with the
definitions and parameter values used and the data as-of date. plotly.js is embedded once from
plotly's own offline bundle, so the file works on a ward PC with no internet; the print CSS sets
A4 pages and keeps every chart on one page. The charts are the same figure objects the page
draws, resized to the printable width. The page is the Jinja2 template
``templates/patient_report.html``, rendered with autoescape: this module prepares plain values
(tables as rows of formatted cells), the template escapes every one of them, so patient data never
becomes markup. Only plotly.js and plotly's markup of a figure object are inserted unescaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from plotly.offline import get_plotlyjs

from analytics import __version__
from analytics.definitions.clinical import header_measures, status_badges, suitability_statements
from analytics.definitions.config import AnalysisConfig

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
# Autoescape everything: patient data (ids, clinic names, reasons, the source label) never becomes markup.
TEMPLATES = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR), autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True
)

PRINT_WIDTH_PX = 680  # A4 portrait minus 12 mm margins at 96 dpi, with a little room to spare
TONE_COLOURS = {"good": "#009e73", "bad": "#c0392b", "warn": "#b26b00", "info": "#1f5f8b", "neutral": "#6b6b6b"}


@dataclass(frozen=True)
class ReportFigure:
    """One chart of the summary with its heading and caption (n, method)."""

    heading: str
    figure: go.Figure
    caption: str = ""


def _num(value: float | str | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "—"
    return f"{float(value):.{digits}f}"


def readable_cycle_table(cycles: pd.DataFrame) -> pd.DataFrame:
    """One patient's per-cycle rows in words: dates, n recorded, evaluable, rates, change, reduction class."""
    c = cycles.sort_values("cycle")
    window = np.where(c["cycle"] == 0, "Baseline", "Cycle " + c["cycle"].astype(str))
    window = np.where(c["status"] == "ongoing", window + " (ongoing)", window)
    reduction = np.select(
        [
            c["responder_75"].fillna(False).astype(bool),
            c["responder_50"].fillna(False).astype(bool),
            c["responder_30"].fillna(False).astype(bool),
            c["mhd_pct_change"].notna(),
        ],
        ["≥75%", "50–74%", "30–49%", "<30%"],
        "",
    )
    recorded = (
        c["recorded_days"].astype("Int64").astype(str)
        + "/"
        + c["window_days"].astype(str)
        + " d ("
        + c["completeness"].map(lambda v: f"{v:.0%}")
        + ")"
    )
    return pd.DataFrame(
        {
            "window": window,
            "dates": c["start_date"].dt.strftime("%Y-%m-%d") + " – " + c["end_date"].dt.strftime("%Y-%m-%d"),
            "days recorded": recorded,
            "evaluable": np.where(c["evaluable"], "yes", "no"),
            "headache days / 28 d": c["mhd"].round(1),
            "migraine days / 28 d": c["mmd"].round(1),
            "acute-med. days / 28 d": c["amd"].round(1),
            "change in headache days": c["mhd_pct_change"].map(
                lambda v: f"{v:+.0f}%".replace("-", "−") if pd.notna(v) else ""
            ),
            "reduction": reduction,
        }
    )


@dataclass(frozen=True)
class Cell:
    """One table cell as the template shows it: its text, right-aligned when numeric."""

    text: str
    numeric: bool = False


@dataclass(frozen=True)
class TableView:
    """A table for the template: column headings and rows of cells, numbers already formatted."""

    columns: list[str]
    rows: list[list[Cell]]


def _table(frame: pd.DataFrame, numeric: Sequence[str] = ()) -> TableView:
    rows = []
    for record in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, record, strict=True):
            text = "" if value is None or (not isinstance(value, str) and pd.isna(value)) else value
            text = _num(text) if column in numeric and text != "" else text
            cells.append(Cell(str(text), column in numeric))
        rows.append(cells)
    return TableView([str(c) for c in frame.columns], rows)


def _printable(figure: go.Figure) -> go.Figure:
    """A copy sized for the A4 width: legend entries in two columns, margins to fit them."""
    printable = go.Figure(figure)
    layout = printable.layout
    entries = sum(1 for trace in printable.data if trace.showlegend is not False and trace.name)
    rows = -(-entries // 2) if entries else 0
    height = layout.height or 450
    if layout.yaxis.scaleanchor == "x" and layout.xaxis.range and layout.yaxis.range:
        # An equal-aspect drawing: make the height follow the width so no blank band is printed.
        x0, x1 = layout.xaxis.range
        y0, y1 = layout.yaxis.range
        height = int(PRINT_WIDTH_PX * (y1 - y0) / (x1 - x0)) + (layout.margin.t or 0) + (layout.margin.b or 0)
    legend = dict(entrywidthmode="fraction", entrywidth=0.49, font=dict(size=11))
    if layout.legend.yref == "container":
        extra = max(0, 22 * rows - (layout.margin.b or 0) + 30)
        printable.update_layout(margin=dict(b=(layout.margin.b or 0) + extra), height=height + extra)
    elif rows > 1:
        extra = 22 * (rows - 1)
        printable.update_layout(margin=dict(t=(layout.margin.t or 0) + extra), height=height + extra)
    else:
        printable.update_layout(height=height)
    printable.update_layout(width=PRINT_WIDTH_PX, autosize=False, legend=legend)
    return printable


def _figure_html(figure: go.Figure, div_id: str) -> str:
    return pio.to_html(
        _printable(figure),
        include_plotlyjs=False,
        full_html=False,
        div_id=div_id,
        config={"displayModeBar": False, "responsive": False},
    )


def build_patient_report(
    patient_id: str,
    cycles: pd.DataFrame,
    status: pd.Series | None,
    figures: Sequence[ReportFigure],
    definitions: Sequence[Mapping[str, str]],
    parameters: Mapping[str, object],
    as_of: pd.Timestamp,
    source: str,
    config: AnalysisConfig,
    patient_facts: Mapping[str, str] | None = None,
    changed_parameters: Mapping[str, tuple[object, object]] | None = None,
    generated_at: datetime | None = None,
) -> str:
    """The summary as one HTML document (UTF-8 text), with plotly.js inlined once."""
    measures = header_measures(cycles)
    measure_table = None
    if measures:
        latest = f"latest: {measures[0]['latest_label']}"
        rows = pd.DataFrame(
            {
                "measure": [m["measure"] for m in measures],
                "baseline": [m["baseline"] for m in measures],
                "baseline n": [
                    str(m["baseline_n"]) + ("" if m["baseline_evaluable"] else ", not evaluable") for m in measures
                ],
                latest: [m["latest"] for m in measures],
                "latest n": [
                    str(m["latest_n"]) + ("" if m["latest_evaluable"] else ", not evaluable") for m in measures
                ],
                "change": [m["change"] for m in measures],
            }
        )
        measure_table = _table(rows, numeric=("baseline", latest, "change"))

    shown_status = None
    if status is not None:
        marks = {"met": ("✓", "good"), "not met": ("✗", "bad"), "unknown": ("?", "neutral"), "caution": ("!", "warn")}
        shown_status = {
            "badges": [{"text": text, "colour": TONE_COLOURS[tone]} for text, tone in status_badges(status, config)],
            "suitability": [
                {"text": text, "mark": marks[met][0], "colour": TONE_COLOURS[marks[met][1]]}
                for text, met in suitability_statements(status, config)
            ],
            "rules": [status[c] for c in ("nice_reason", "ehf_reason", "episodic_reason", "ehf_episodic_reason")],
        }

    changed = None
    if changed_parameters:
        changed = "; ".join(f"{k} = {v} (default {d})" for k, (d, v) in changed_parameters.items())

    cycle_table = None
    if len(cycles):
        cycle_table = _table(
            readable_cycle_table(cycles),
            numeric=("headache days / 28 d", "migraine days / 28 d", "acute-med. days / 28 d"),
        )

    parameter_table = _table(
        pd.DataFrame({"parameter": list(parameters), "value": [str(v) for v in parameters.values()]})
    )
    return TEMPLATES.get_template("patient_report.html").render(
        title=f"Patient summary {patient_id}",
        plotly_js=get_plotlyjs(),
        as_of=as_of,
        source=source,
        generated_at=generated_at,
        patient_facts=patient_facts or {},
        changed_parameters=changed,
        measures=measure_table,
        status=shown_status,
        figures=[
            {"heading": item.heading, "caption": item.caption, "chart": _figure_html(item.figure, f"figure-{i}")}
            for i, item in enumerate(figures)
        ],
        cycle_table=cycle_table,
        definitions=definitions,
        parameters=parameter_table,
        version=__version__,
    )
