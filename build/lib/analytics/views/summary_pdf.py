"""The clinic-visit summaries as real PDF files: a one-page clinical summary and a plain-words patient page.

``build_summary_pdf`` lays out one ``PatientRecord`` with reportlab (pure Python, no system
libraries) on A4 or US Letter. The doctor's page (``kind="doctor"``) holds the patient's treatment
state and next due date, baseline suitability, response and the NICE / EHF / episodic rules with
their numbers (SPEC §5 columns and ``clinical``'s statements), a table of every window with its n,
change from baseline, medication-overuse and late-re-injection marks, the latest questionnaires,
adverse events, diary completeness and, in small print, the definitions with the parameter values
used. It is always exactly one page: a long history first gets smaller type (down to the last of
``SCALES``), then shows only the last cycles (``SHOWN_CYCLES``) with a note of how many earlier ones
were left out, and a last safety net scales the page's content to the frame. ``appendix=True`` adds the charts of
``summary_charts`` on the following pages. The patient's page (``kind="patient"``) lays out the
words of ``patient_words`` the same way.

Every piece of text that comes from the data (ids, clinic names, reasons, event names) goes into
reportlab's paragraph markup through ``markupsafe`` escaping, so ``<b>x</b>`` prints as typed and is
never interpreted; the only markup is this module's own.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
from markupsafe import Markup, escape
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, LETTER
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    Image,
    KeepInFrame,
    KeepTogether,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from analytics import __version__
from analytics.definitions.clinical import signed, status_badges, suitability_statements, treatment_badge
from analytics.definitions.config import AnalysisConfig
from analytics.views import summary_charts
from analytics.views.patient_words import PlainPage, patient_page
from analytics.views.summary_record import (
    KINDS,
    PAGE_SIZE_NAMES,
    PatientRecord,
    SummaryContext,
    diary_completeness,
)

PAGE_SIZES = dict(zip(PAGE_SIZE_NAMES, (A4, LETTER), strict=True))
MARGIN = 12 * mm
SCALES = (1.0, 0.93, 0.86)
"""Type sizes tried, largest first; at the smallest the body is 7.1 pt, the table 6.0 pt, the small print 5.2 pt."""
SHOWN_CYCLES = (10, 8, 6, 4, 3)
"""How many of the latest cycles a long history is cut to, tried in this order."""
MAX_ADVERSE_EVENTS = 6
INK, GREY, RULE = colors.HexColor("#1b2430"), colors.HexColor("#4a5563"), colors.HexColor("#c3ccd6")
WARN, BAD, GOOD = colors.HexColor("#9a5a00"), colors.HexColor("#b0281a"), colors.HexColor("#00795a")
FONT = "DejaVuSans"


@cache
def _register_fonts() -> str:
    """DejaVu Sans (shipped with matplotlib) for ≥, →, − and ✓, which the PDF base fonts lack."""
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    faces = {
        FONT: "DejaVuSans.ttf",
        f"{FONT}-Bold": "DejaVuSans-Bold.ttf",
        f"{FONT}-Oblique": "DejaVuSans-Oblique.ttf",
        f"{FONT}-BoldOblique": "DejaVuSans-BoldOblique.ttf",
    }
    for name, file in faces.items():
        pdfmetrics.registerFont(TTFont(name, str(folder / file)))
    pdfmetrics.registerFontFamily(
        FONT, normal=FONT, bold=f"{FONT}-Bold", italic=f"{FONT}-Oblique", boldItalic=f"{FONT}-BoldOblique"
    )
    return FONT


def _style(name: str, size: float, leading: float = 1.22, colour: colors.Color = INK, **more: object) -> ParagraphStyle:
    settings: dict[str, object] = {"fontName": FONT, "fontSize": size, "leading": size * leading, "textColor": colour}
    return ParagraphStyle(name, **{**settings, **more})


@dataclass(frozen=True)
class Styles:
    title: ParagraphStyle
    meta: ParagraphStyle
    heading: ParagraphStyle
    body: ParagraphStyle
    bullet: ParagraphStyle
    cell: ParagraphStyle
    cell_right: ParagraphStyle
    fine: ParagraphStyle


def _doctor_styles(scale: float) -> Styles:
    body = 8.2 * scale
    return Styles(
        title=_style("title", 13.5 * scale, fontName=f"{FONT}-Bold", spaceAfter=1),
        meta=_style("meta", 7.2 * scale, colour=GREY),
        heading=_style("heading", 9.2 * scale, fontName=f"{FONT}-Bold", spaceBefore=5 * scale, spaceAfter=1.5),
        body=_style("body", body, spaceAfter=0.8),
        bullet=_style("bullet", body, leftIndent=8, bulletIndent=1, spaceAfter=0.6),
        cell=_style("cell", 7.0 * scale, leading=1.15),
        cell_right=_style("cell_right", 7.0 * scale, leading=1.15, alignment=2),
        fine=_style("fine", 6.0 * scale, leading=1.2, colour=GREY),
    )


def _patient_styles(scale: float) -> Styles:
    body = 11.5 * scale
    return Styles(
        title=_style("title", 19 * scale, fontName=f"{FONT}-Bold", spaceAfter=3),
        meta=_style("meta", 10 * scale, colour=GREY, spaceAfter=2),
        heading=_style("heading", 13.5 * scale, fontName=f"{FONT}-Bold", spaceBefore=8 * scale, spaceAfter=2),
        body=_style("body", body, leading=1.3, spaceAfter=2.5 * scale),
        bullet=_style("bullet", body, leading=1.3, leftIndent=14, bulletIndent=3, spaceAfter=1.5 * scale),
        cell=_style("cell", body),
        cell_right=_style("cell_right", body, alignment=2),
        fine=_style("fine", 9 * scale, leading=1.3, colour=GREY),
    )


class _Paragraph(Paragraph):
    """A paragraph that breaks its lines once per width: the page is measured, fitted and drawn at one width,
    and reportlab's line breaking in pure Python is most of the time a PDF takes."""

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        if self.__dict__.get("_wrapped_width") == availWidth:
            return self.width, self.height
        size = super().wrap(availWidth, availHeight)
        self._wrapped_width = availWidth if size[0] == availWidth else None
        return size


def _p(text: str | Markup, style: ParagraphStyle) -> Paragraph:
    """A paragraph of plain text (escaped) or of this module's own ``Markup`` (its values escaped by format)."""
    return _Paragraph(str(escape(text)), style)


def _bullet(text: str | Markup, style: ParagraphStyle) -> Paragraph:
    return _Paragraph(str(escape(text)), style, bulletText="•")


def _marked(text: str, colour: colors.Color) -> Markup:
    return Markup('<font color="{}"><b>{}</b></font>').format(colour.hexval().replace("0x", "#"), text)


def _one(value: Any) -> str:
    return "—" if value is None or pd.isna(value) else f"{float(value):.1f}"


def _pct(value: Any) -> str:
    return "" if value is None or pd.isna(value) else signed(float(value), 0, "%")


def _iso(value: Any) -> str:
    return "—" if value is None or pd.isna(value) else f"{pd.Timestamp(value):%Y-%m-%d}"


def _true(value: Any) -> bool:
    """A nullable boolean that is true (empty is not)."""
    return value is not None and not pd.isna(value) and bool(value)


def _yes_no(value: Any) -> str:
    return "unknown" if value is None or pd.isna(value) else ("yes" if bool(value) else "no")


# --- the doctor's page


def _header(record: PatientRecord, context: SummaryContext, s: Styles, title: str) -> list[Flowable]:
    meta = [f"Data as of {context.as_of:%d %b %Y} ({context.as_of:%Y-%m-%d})", f"source: {context.source}"]
    if context.generated_at is not None:
        meta.append(f"generated {context.generated_at:%Y-%m-%d %H:%M}")
    meta += [f"{k}: {v}" for k, v in record.facts.items()]
    out: list[Flowable] = [_p(f"{title} · patient {record.patient_id}", s.title), _p(" · ".join(meta), s.meta)]
    changed = context.config.differences_from_default()
    if changed:
        listed = "; ".join(f"{k} = {v} (default {d})" for k, (d, v) in changed.items())
        out.append(_p(Markup("<b>Parameters differ from the defaults:</b> {}").format(listed), s.meta))
    return out


def _facts_table(rows: Sequence[tuple[str, str | Markup]], s: Styles, width: float) -> Table:
    bold = ParagraphStyle("label", parent=s.body, fontName=f"{FONT}-Bold", spaceAfter=0)
    body = ParagraphStyle("value", parent=s.body, spaceAfter=0)
    table = Table(
        [[_p(label, bold), _p(value, body)] for label, value in rows],
        colWidths=[0.2 * width, 0.8 * width],
    )
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 3),
                ("TOPPADDING", (0, 0), (-1, -1), 0.6),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 0.6),
            ]
        )
    )
    return table


def _treatment_rows(status: pd.Series, config: AnalysisConfig) -> list[tuple[str, str | Markup]]:
    state = str(status["treatment_state"])
    badge, _ = treatment_badge(status, config)
    if state == "discontinued":
        due: str | Markup = "— (no next injection: treatment discontinued)"
    else:
        due = f"{_iso(status['next_due'])} (last session + {config.cycle_days} days)"
        if int(status["days_overdue"]) > 0:
            due = Markup("{} · {}").format(due, _marked(f"{int(status['days_overdue'])} days overdue", WARN))
    sessions = (
        f"{int(status['n_sessions'])}: first {_iso(status['first_session'])}, last {_iso(status['last_session'])} "
        f"({int(status['days_since_last_session'])} days before the cut-off)"
    )
    late = int(status["intervals_late"])
    intervals: str | Markup = (
        f"{int(status['intervals_on_time'])} on time ({config.on_time_min_days}–{config.on_time_max_days} d), "
        f"{int(status['intervals_early'])} early, "
    )
    late_text = f"{late} late (>{config.on_time_max_days} d)"
    intervals = Markup("{}{}").format(intervals, _marked(late_text, WARN) if late else late_text)
    if pd.notna(status["max_interval_days"]):
        intervals = Markup("{}; longest {} d").format(intervals, int(status["max_interval_days"]))
    suitability = "; ".join(
        f"{text} [{mark}]" if mark in ("caution", "unknown") else text
        for text, mark in suitability_statements(status, config)
    )
    return [
        ("Treatment state", Markup("<b>{}</b> · {}").format(state, badge)),
        ("Next injection due", due),
        ("Sessions", sessions),
        ("Re-injection intervals", intervals),
        ("Suitability at baseline", suitability),
    ]


def _rule_flowables(status: pd.Series, config: AnalysisConfig, s: Styles) -> list[Flowable]:
    badges = status_badges(status, config)[1:]  # the first is the treatment state, shown above
    tones = {"bad": BAD, "warn": WARN, "good": GOOD}
    shown = Markup(" · ").join(_marked(text, tones[tone]) if tone in tones else text for text, tone in badges)
    out: list[Flowable] = [_p(shown, s.body)]
    for column in ("nice_reason", "ehf_reason", "episodic_reason", "ehf_episodic_reason"):
        out.append(_bullet(str(status[column]), s.bullet))
    return out


@dataclass
class GridTable:
    """A table of plain-text cells (drawn as typed, never parsed as markup) and the cells to mark."""

    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    right: tuple[int, ...] = ()
    """Columns aligned right."""
    marks: list[tuple[int, int, colors.Color]] = field(default_factory=list)
    """(column, row, colour) of cells printed bold in that colour; row 1 is the first body row."""

    def add(self, cells: Sequence[str], marks: Sequence[tuple[int, colors.Color]] = ()) -> None:
        self.rows.append(list(cells))
        self.marks += [(column, len(self.rows), colour) for column, colour in marks]

    def flowable(self, widths: Sequence[float], width: float, size: float) -> Table:
        table = Table([self.header, *self.rows], colWidths=[f * width for f in widths], repeatRows=1)
        style = [
            ("FONT", (0, 0), (-1, -1), FONT, size, size * 1.18),
            ("FONT", (0, 0), (-1, 0), f"{FONT}-Bold", size, size * 1.18),
            ("TEXTCOLOR", (0, 0), (-1, -1), INK),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LINEBELOW", (0, 0), (-1, 0), 0.6, INK),
            ("LINEBELOW", (0, 1), (-1, -1), 0.25, RULE),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f1f4f8")),
            ("LEFTPADDING", (0, 0), (-1, -1), 2),
            ("RIGHTPADDING", (0, 0), (-1, -1), 2),
            ("TOPPADDING", (0, 0), (-1, -1), 1),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ]
        style += [("ALIGN", (c, 0), (c, -1), "RIGHT") for c in self.right]
        for column, row, colour in self.marks:
            style += [
                ("FONT", (column, row), (column, row), f"{FONT}-Bold", size, size * 1.18),
                ("TEXTCOLOR", (column, row), (column, row), colour),
            ]
        table.setStyle(TableStyle(style))
        return table


WINDOW_COLUMNS = (0.085, 0.19, 0.105, 0.05, 0.115, 0.115, 0.15, 0.08, 0.11)


def _with_change(rate: Any, change: Any) -> str:
    return f"{_one(rate)} ({_pct(change)})" if pd.notna(change) else _one(rate)


def _window_grid(windows: pd.DataFrame) -> GridTable:
    grid = GridTable(
        [
            "Window",
            "Dates",
            "Recorded (n)",
            "Eval.",
            "Headache d",
            "Migraine d",
            "Acute-med. d",
            "Response",
            "Interval",
        ],
        right=(4, 5, 6),
    )
    w: Any  # a row of window_table
    for w in windows.itertuples(index=False):
        marks: list[tuple[int, colors.Color]] = []
        amd = _with_change(w.amd, w.amd_pct_change)
        if _true(w.overuse):
            amd += " MO"
            marks.append((6, WARN))
        if w.cycle == 0:
            interval = ""
        elif w.cycle == 1:
            interval = "first"
        elif _true(w.late):
            interval = f"{int(w.interval_days)} d late"
            marks.append((8, WARN))
        else:
            interval = f"{int(w.interval_days)} d"
        if not w.evaluable:
            marks.append((3, GREY))
        grid.add(
            [
                w.label + ("\n(ongoing)" if w.status == "ongoing" else ""),
                f"{w.start_date:%Y-%m-%d} – {w.end_date:%Y-%m-%d}",
                f"{int(w.recorded_days)}/{int(w.window_days)} ({w.completeness:.0%})",
                "yes" if w.evaluable else "no",
                _with_change(w.mhd, w.mhd_pct_change),
                _with_change(w.mmd, w.mmd_pct_change),
                amd,
                w.response,
                interval,
            ],
            marks,
        )
    return grid


def _windows_flowables(
    windows: pd.DataFrame, context: SummaryContext, s: Styles, width: float, shown_cycles: int | None
) -> list[Flowable]:
    config = context.config
    out: list[Flowable] = [
        _p("Headache, migraine and acute-medication days per 28 recorded days (change from baseline)", s.heading)
    ]
    treated = windows[windows["cycle"] >= 1]
    omitted = 0
    if shown_cycles is not None and len(treated) > shown_cycles:
        omitted = len(treated) - shown_cycles
        windows = pd.concat([windows[windows["cycle"] == 0], treated.tail(shown_cycles)])
    out.append(_window_grid(windows).flowable(WINDOW_COLUMNS, width, s.cell.fontSize))
    legend = (
        f"n: diary days recorded / days in the window. Eval.: evaluable (≥{config.min_completeness:.0%} of days "
        f"recorded, ≥{config.min_window_days} days); change from baseline only when both are evaluable. "
        "Response: reduction of headache days. MO: medication overuse, acute medication on "
        f"≥{config.overuse_acute_days:g} days / 28 d in that window (evaluable windows). Interval: days since the "
        "previous session; "
        f"late: more than {config.on_time_max_days}."
    )
    if omitted:
        note = f"{omitted} earlier cycle{'s' if omitted > 1 else ''} omitted (cycles 1–{omitted}). "
        out.append(_p(Markup("<b>{}</b>{}").format(note, legend), s.fine))
    else:
        out.append(_p(legend, s.fine))
    return out


def _questionnaire_lines(record: PatientRecord) -> list[str]:
    q = record.questionnaires
    lines = []
    for instrument in ("HIT-6", "MIDAS"):
        rows = q[q["instrument"] == instrument] if not q.empty else q
        if rows.empty:
            lines.append(f"{instrument}: no score recorded")
            continue
        latest, first = rows.iloc[-1], rows.iloc[0]
        band = latest["band"] if pd.notna(latest["band"]) else "no band"
        line = f"{instrument}: latest {latest['score']:g}, {band}, on {_iso(latest['date'])}"
        if len(rows) > 1:
            line += f"; first {first['score']:g} on {_iso(first['date'])} ({len(rows)} scores)"
        lines.append(line)
    return lines


def _adverse_event_flowables(record: PatientRecord, s: Styles, width: float) -> list[Flowable]:
    events = record.adverse_events
    if events is None:
        return [_p("Adverse events: adverse_events.csv not provided.", s.body)]
    status = record.status
    n_sessions = int(status["n_sessions"]) if status is not None else 0
    if events.empty:
        return [_p(f"Adverse events: none recorded after {n_sessions} sessions.", s.body)]
    serious = int(events["serious"].eq(True).sum())
    sessions = int(events["session_date"].nunique())
    summary: str | Markup = (
        f"Adverse events: {len(events)} event{'s' if len(events) != 1 else ''} after {sessions} of {n_sessions} "
        "sessions"
    )
    summary = Markup("{}; {}").format(summary, _marked(f"{serious} serious", BAD) if serious else "none serious")
    out: list[Flowable] = [_p(summary, s.body)]
    shown = events.tail(MAX_ADVERSE_EVENTS)
    grid = GridTable(["Cycle", "Session", "Event", "Severity", "Onset", "Resolved", "Serious"])
    e: Any  # a row of the adverse events
    for e in shown.itertuples(index=False):
        onset = f"day {int(e.days_to_onset)}" if pd.notna(e.days_to_onset) else "not recorded"
        if pd.notna(e.duration_days):
            resolved = f"{_iso(e.resolved_date)} ({int(e.duration_days)} d)"
        else:
            resolved = _iso(e.resolved_date) if pd.notna(e.resolved_date) else "not resolved"
        grid.add(
            [
                "—" if pd.isna(e.cycle) else str(int(e.cycle)),
                _iso(e.session_date),
                str(e.event).replace("_", " "),
                "—" if pd.isna(e.severity) else str(e.severity),
                onset,
                resolved,
                _yes_no(e.serious),
            ],
            [(6, BAD)] if e.serious is True else [],
        )
    out.append(grid.flowable((0.07, 0.13, 0.22, 0.12, 0.12, 0.22, 0.12), width, s.cell.fontSize))
    if len(events) > len(shown):
        out.append(_p(f"{len(events) - len(shown)} earlier events omitted.", s.fine))
    return out


def _diary_line(record: PatientRecord) -> str:
    recorded, total, first, last = diary_completeness(record.days)
    if not total:
        return "Diary: no days recorded."
    windows = record.cycles
    evaluable = int(windows["evaluable"].fillna(False).astype(bool).sum()) if len(windows) else 0
    line = f"Diary: {recorded} of {total} days recorded from {_iso(first)} to {_iso(last)} ({recorded / total:.0%})"
    if len(windows):
        line += f"; {evaluable} of {len(windows)} windows evaluable"
    return line + "."


def _fine_print(context: SummaryContext) -> str:
    c = context.config
    values = {**c.parameters(), **context.params.parameters(), "as_of (used)": f"{context.as_of:%Y-%m-%d}"}
    listed = "; ".join(f"{k} = {v}" for k, v in values.items())
    return (
        f"Definitions (SPEC §3, §5). Baseline: the {c.baseline_days} days before the first session; cycle k: session k "
        f"to the day before the next, at most {c.cycle_days} days. A headache day has ≥{c.headache_min_hours:g} h of "
        "headache; rates are days per 28 recorded days (a day not recorded is missing, never headache-free). "
        f"Change = (cycle − baseline) / baseline; responders at {', '.join(map(str, c.responder_thresholds))}% "
        f"reduction. NICE TA260: stop when cycle {c.stopping_cycle} is less than {c.stopping_min_reduction:g}% "
        f"below baseline. EHF: stop without a ≥{c.stopping_min_reduction:g}% reduction in cycles 1–{c.ehf_cycles}. "
        f"Episodic: <{c.episodic_max_days:g} (NICE) or <{c.ehf_episodic_max_days:g} (EHF) headache days in "
        f"{c.episodic_periods} consecutive evaluable 28-day periods. Active up to {c.on_time_max_days} days after the "
        f"last session, overdue to {c.lapse_days}, lapsed after. HIT-6 bands ≤49 / 50–55 / 56–59 / ≥60; MIDAS "
        f"grades I–IV at 0–5 / 6–10 / 11–20 / ≥21. Parameters used: {listed}. Botox outcomes analytics "
        f"{__version__}."
    )


def _doctor_story(
    record: PatientRecord,
    windows: pd.DataFrame,
    context: SummaryContext,
    width: float,
    scale: float,
    shown_cycles: int | None,
) -> list[Flowable]:
    s = _doctor_styles(scale)
    story = _header(record, context, s, "Clinical summary")
    if record.status is None:
        story.append(_p("Treatment", s.heading))
        story.append(_p(f"No injection session up to the data cut-off ({context.as_of:%Y-%m-%d}).", s.body))
    else:
        story.append(_p("Treatment", s.heading))
        story.append(_facts_table(_treatment_rows(record.status, context.config), s, width))
        story.append(_p("Response and stopping rules", s.heading))
        story += _rule_flowables(record.status, context.config, s)
        story += _windows_flowables(windows, context, s, width, shown_cycles)
    story.append(_p("Questionnaires, adverse events and diary", s.heading))
    story += [_p(line, s.body) for line in _questionnaire_lines(record)]
    story += _adverse_event_flowables(record, s, width)
    story.append(_p(_diary_line(record), s.body))
    story.append(Spacer(1, 4 * scale))
    story.append(_p(_fine_print(context), s.fine))
    return story


# --- the patient's page


def _patient_story(page: PlainPage, width: float, scale: float) -> list[Flowable]:
    s = _patient_styles(scale)
    story: list[Flowable] = [_p(page.title, s.title), _p(page.intro, s.meta)]
    for section in page.sections:
        story.append(_p(section.heading, s.heading))
        story += [_p(text, s.body) for text in section.paragraphs]
        story += [_bullet(text, s.bullet) for text in section.bullets]
        story += [_p(text, s.body) for text in section.closing]
    story += [Spacer(1, 6 * scale), _p(page.footer, s.fine)]
    return story


# --- fitting on one page, the appendix, the document


def _height(story: Sequence[Flowable], width: float) -> float:
    canvas = Canvas(io.BytesIO())  # measuring only; never saved
    total = 0.0
    for flowable in story:
        _, height = flowable.wrapOn(canvas, width, 10_000)
        total += height + flowable.getSpaceBefore() + flowable.getSpaceAfter()
    return total


def _one_page(candidates: Sequence[Callable[[], list[Flowable]]], width: float, height: float) -> Flowable:
    """The first candidate story that fits the frame, inside a frame that shrinks it should it not fit."""
    story: list[Flowable] = []
    for make in candidates:
        story = make()
        if _height(story, width) <= height:
            break
    return KeepInFrame(width, height, story, mode="shrink")


def _chart_flowables(charts: Sequence[summary_charts.Chart], s: Styles, width: float) -> list[Flowable]:
    out: list[Flowable] = []
    for chart in charts:
        scale = min(1.0, width / (chart.width_in * 72))
        image = Image(io.BytesIO(chart.png), width=chart.width_in * 72 * scale, height=chart.height_in * 72 * scale)
        out.append(KeepTogether([_p(chart.heading, s.heading), image, _p(chart.caption, s.fine)]))
    return out


def _doctor_charts(
    record: PatientRecord, windows: pd.DataFrame, context: SummaryContext, width_in: float
) -> list[summary_charts.Chart]:
    charts = []
    if record.treated:
        charts.append(summary_charts.window_bars(windows, context.config, width_in))
    if len(record.days):
        charts.append(summary_charts.rolling_headache_days(record.days, record.cycles, context.config, width_in))
    scores = summary_charts.questionnaire_scores(record.questionnaires, width_in)
    if scores is not None:
        charts.append(scores)
    return charts


def build_summary_pdf(
    record: PatientRecord,
    context: SummaryContext,
    kind: str = "doctor",
    page_size: str = "a4",
    appendix: bool = False,
) -> bytes:
    """One patient's summary as PDF bytes: ``kind`` doctor or patient, ``page_size`` a4 or letter.

    The first page is the whole summary; with ``appendix`` the charts follow on the next pages.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if page_size not in PAGE_SIZES:
        raise ValueError(f"page_size must be one of {', '.join(PAGE_SIZES)}, not {page_size!r}")
    _register_fonts()
    size = PAGE_SIZES[page_size]
    width, height = size[0] - 2 * MARGIN, size[1] - 2 * MARGIN
    buffer = io.BytesIO()
    title = f"{'Clinical summary' if kind == 'doctor' else 'Patient page'} {record.patient_id}"
    doc = BaseDocTemplate(
        buffer,
        pagesize=size,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=title,
        author="Botox outcomes analytics",
        creator=f"Botox outcomes analytics {__version__}",
        invariant=1,
    )
    footer = (
        f"Patient {record.patient_id} · data as of {context.as_of:%Y-%m-%d} · Botox outcomes analytics {__version__}"
    )

    def draw_footer(canvas: Canvas, document: BaseDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 6.5)
        canvas.setFillColor(GREY)
        canvas.drawString(MARGIN, MARGIN / 2, footer)
        canvas.drawRightString(size[0] - MARGIN, MARGIN / 2, f"page {document.page}")
        canvas.restoreState()

    frame = Frame(MARGIN, MARGIN, width, height, leftPadding=0, rightPadding=0, topPadding=0, bottomPadding=0)
    doc.addPageTemplates([PageTemplate("page", [frame], onPage=draw_footer)])
    fit = height - 1  # a point of slack for rounding in the frame's own arithmetic

    if kind == "doctor":
        windows = record.windows
        n_cycles = int((windows["cycle"] >= 1).sum())
        # Every cycle in the largest type that fits; else the latest cycles only, again largest type first.
        shown_cycles = [None, *(shown for shown in SHOWN_CYCLES if shown < n_cycles)]
        candidates = [
            partial(_doctor_story, record, windows, context, width, scale, shown)
            for shown in shown_cycles
            for scale in SCALES
        ]
        story: list[Flowable] = [_one_page(candidates, width, fit)]
        if appendix:
            charts = _doctor_charts(record, windows, context, width / 72)
            story += [PageBreak(), *_chart_flowables(charts, _doctor_styles(1.0), width)]
    else:
        page = patient_page(record, context)
        story = [_one_page([partial(_patient_story, page, width, scale) for scale in SCALES], width, fit)]
        if appendix and record.treated:
            chart = summary_charts.plain_headache_days(record.windows, width / 72)
            story += [PageBreak(), *_chart_flowables([chart], _patient_styles(1.0), width)]
    doc.build(story)
    return buffer.getvalue()
