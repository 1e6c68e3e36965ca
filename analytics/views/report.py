"""The printable patient summary: one self-contained HTML page that opens without a network.

``build_patient_report`` lays out what the Patient page shows for one patient (header numbers
with their n, status, suitability, stopping rules, the per-cycle table and the charts) with the
definitions and parameter values used and the data as-of date. plotly.js is embedded once from
plotly's own offline bundle, so the file works on a ward PC with no internet; the print CSS sets
A4 pages and keeps every chart on one page. The charts are the same figure objects the page
draws, resized to the printable width. Everything is escaped: patient data never becomes markup.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from analytics import __version__
from analytics.definitions.clinical import header_measures, status_badges, suitability_statements
from analytics.definitions.config import AnalysisConfig

PRINT_WIDTH_PX = 680  # A4 portrait minus 12 mm margins at 96 dpi, with a little room to spare
TONE_COLOURS = {"good": "#009e73", "bad": "#c0392b", "warn": "#b26b00", "info": "#1f5f8b", "neutral": "#6b6b6b"}

CSS = """
@page { size: A4 portrait; margin: 12mm; }
* { box-sizing: border-box; }
body { font-family: "Source Sans Pro", Arial, Helvetica, sans-serif; color: #1b2430; font-size: 10.5pt;
       max-width: 186mm; margin: 0 auto; padding: 4mm 0; line-height: 1.35; }
h1 { font-size: 17pt; margin: 0 0 2mm 0; }
h2 { font-size: 12.5pt; margin: 6mm 0 2mm 0; border-bottom: 1px solid #c3ccd6; padding-bottom: 1mm;
     break-after: avoid; page-break-after: avoid; }
.meta { color: #4a5563; font-size: 9.5pt; }
table { border-collapse: collapse; width: 100%; font-size: 9pt; margin: 1mm 0 2mm 0; }
th, td { border: 1px solid #d5dbe3; padding: 1.2mm 1.6mm; text-align: left; vertical-align: top; }
th { background: #f1f4f8; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badges { margin: 2mm 0; }
.badge { display: inline-block; border: 1.5px solid; border-radius: 9px; padding: 0.3mm 2.4mm; margin: 0 1.5mm 1.5mm 0;
         font-size: 9.5pt; font-weight: 600; }
ul.criteria { list-style: none; padding-left: 0; margin: 1mm 0; }
ul.criteria li { margin: 0.8mm 0; }
.mark { display: inline-block; width: 5mm; font-weight: 700; }
.figure { break-inside: avoid; page-break-inside: avoid; margin: 3mm 0 5mm 0; }
.caption { font-size: 9pt; color: #4a5563; margin-top: 1mm; }
.definitions td:first-child { width: 28%; font-weight: 600; }
.definitions td:last-child { width: 26%; font-size: 8.5pt; }
.note { font-size: 9pt; color: #4a5563; }
@media print { .no-print { display: none; } body { padding: 0; } }
"""


@dataclass(frozen=True)
class ReportFigure:
    """One chart of the summary with its heading and caption (n, method)."""

    heading: str
    figure: go.Figure
    caption: str = ""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


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


def _table(frame: pd.DataFrame, numeric: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in frame.columns)
    rows = []
    for record in frame.itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, record, strict=True):
            text = "" if value is None or (not isinstance(value, str) and pd.isna(value)) else value
            text = _num(text) if column in numeric and text != "" else text
            cells.append(f'<td class="num">{_e(text)}</td>' if column in numeric else f"<td>{_e(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


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
    title = f"Patient summary {patient_id}"
    parts = [f"<h1>{_e(title)}</h1>"]
    meta = [f"Data as of <b>{as_of:%d %b %Y}</b> ({as_of:%Y-%m-%d})", f"source: {_e(source)}"]
    if generated_at is not None:
        meta.append(f"generated {generated_at:%Y-%m-%d %H:%M}")
    parts.append(f'<p class="meta">{" · ".join(meta)}</p>')
    if patient_facts:
        parts.append('<p class="meta">' + " · ".join(f"{_e(k)}: {_e(v)}" for k, v in patient_facts.items()) + "</p>")
    if changed_parameters:
        changed = "; ".join(f"{k} = {v} (default {d})" for k, (d, v) in changed_parameters.items())
        parts.append(f'<p class="note"><b>Parameters differ from the defaults:</b> {_e(changed)}</p>')

    parts.append("<h2>Headache, migraine and acute-medication days</h2>")
    measures = header_measures(cycles)
    if measures:
        rows = pd.DataFrame(
            {
                "measure": [m["measure"] for m in measures],
                "baseline": [m["baseline"] for m in measures],
                "baseline n": [
                    str(m["baseline_n"]) + ("" if m["baseline_evaluable"] else ", not evaluable") for m in measures
                ],
                f"latest: {measures[0]['latest_label']}": [m["latest"] for m in measures],
                "latest n": [
                    str(m["latest_n"]) + ("" if m["latest_evaluable"] else ", not evaluable") for m in measures
                ],
                "change": [m["change"] for m in measures],
            }
        )
        parts.append(_table(rows, numeric=("baseline", f"latest: {measures[0]['latest_label']}", "change")))
    else:
        parts.append("<p>No injection sessions up to the data cut-off.</p>")

    if status is not None:
        badges = "".join(
            f'<span class="badge" style="color:{TONE_COLOURS[tone]};border-color:{TONE_COLOURS[tone]}">'
            f"{_e(text)}</span>"
            for text, tone in status_badges(status, config)
        )
        parts.append(f'<h2>Status</h2><div class="badges">{badges}</div>')
        parts.append('<h2>Suitability at baseline</h2><ul class="criteria">')
        for text, met in suitability_statements(status, config):
            mark = {
                "met": ("✓", "good"),
                "not met": ("✗", "bad"),
                "unknown": ("?", "neutral"),
                "caution": ("!", "warn"),
            }[met]
            parts.append(
                f'<li><span class="mark" style="color:{TONE_COLOURS[mark[1]]}">{mark[0]}</span>{_e(text)}</li>'
            )
        parts.append("</ul>")
        parts.append('<h2>Stopping rules</h2><ul class="criteria">')
        for column in ("nice_reason", "ehf_reason", "episodic_reason", "ehf_episodic_reason"):
            parts.append(f"<li>{_e(status[column])}</li>")
        parts.append("</ul>")

    if figures:
        parts.append("<h2>Charts</h2>")
    if len(cycles):
        parts.append("<h2>Per cycle</h2>")
        parts.append(
            _table(
                readable_cycle_table(cycles),
                numeric=("headache days / 28 d", "migraine days / 28 d", "acute-med. days / 28 d"),
            )
        )

    for i, item in enumerate(figures):
        caption = f'<div class="caption">{_e(item.caption)}</div>' if item.caption else ""
        chart = _figure_html(item.figure, f"figure-{i}")
        parts.append(f'<div class="figure" aria-label="{_e(item.heading)}">{chart}{caption}</div>')

    parts.append(
        '<h2>Definitions used</h2><table class="definitions"><thead><tr><th>definition</th><th>meaning</th>'
        "<th>parameters (values used)</th></tr></thead><tbody>"
    )
    for d in definitions:
        parts.append(f"<tr><td>{_e(d['name'])}</td><td>{_e(d['definition'])}</td><td>{_e(d['parameters'])}</td></tr>")
    parts.append("</tbody></table>")
    parts.append("<h2>Analysis parameters</h2>")
    parts.append(_table(pd.DataFrame({"parameter": list(parameters), "value": [str(v) for v in parameters.values()]})))
    parts.append(
        f'<p class="note">Botox outcomes analytics {_e(__version__)}. Rates are per 28 days over the days '
        "recorded in the diary; a day not recorded is missing, never headache-free. Windows with fewer "
        "recorded days than the minimum completeness are not evaluable and are not compared with the baseline.</p>"
    )

    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{CSS}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script>'
        "</head><body>" + "\n".join(parts) + "</body></html>\n"
    )
