"""The charts of the PDF summaries' appendix, drawn with matplotlib as PNG images.

The PDF is built without a browser, so the Patient page's Plotly figures cannot be reused; these
are their printable counterparts for one patient: rates per window (baseline and cycles), the
rolling 28-day headache days with the sessions marked, and the questionnaire scores with their
bands. A window or day without enough diary days is drawn grey or left as a gap, never as zero.
Figures are made with matplotlib's object API (no pyplot, no global state), so a server's threads
can draw charts at the same time.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from analytics.definitions.clinical import HIT6_BANDS, MIDAS_GRADES
from analytics.definitions.config import AnalysisConfig

DPI = 150
COLOURS = {"mhd": "#1f5f8b", "mmd": "#7b3294", "amd": "#b26b00", "grey": "#b8bec6", "text": "#1b2430"}


@dataclass(frozen=True)
class Chart:
    """One PNG chart with its size in inches, heading and caption (n, method)."""

    png: bytes
    width_in: float
    height_in: float
    heading: str
    caption: str


def _figure(width_in: float, height_in: float) -> Figure:
    figure = Figure(figsize=(width_in, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _style(axes) -> None:
    axes.spines[["top", "right"]].set_visible(False)
    axes.tick_params(labelsize=8, colors=COLOURS["text"])
    axes.grid(axis="y", color="#e3e7ec", linewidth=0.6)
    axes.set_axisbelow(True)


def window_bars(windows: pd.DataFrame, config: AnalysisConfig, width_in: float = 7.0) -> Chart:
    """Headache, migraine and acute-medication days per 28 recorded days in each window (``window_table``)."""
    figure = _figure(width_in, 2.9)
    axes = figure.add_subplot()
    x = np.arange(len(windows))
    measures = (("mhd", "headache days"), ("mmd", "migraine days"), ("amd", "acute-medication days"))
    width = 0.27
    evaluable = windows["evaluable"].to_numpy(dtype=bool)
    for i, (column, label) in enumerate(measures):
        values = windows[column].astype("float64").to_numpy()
        colours = [COLOURS[column] if ok else COLOURS["grey"] for ok in evaluable]
        axes.bar(x + (i - 1) * width, np.nan_to_num(values), width, color=colours, label=label)
    base = windows.iloc[0]
    if int(base["cycle"]) == 0 and bool(base["evaluable"]) and pd.notna(base["mhd"]):
        for share, style in ((1.0, "-"), (1 - config.stopping_min_reduction / 100, "--"), (0.5, ":")):
            axes.axhline(float(base["mhd"]) * share, color=COLOURS["mhd"], linewidth=0.8, linestyle=style)
    labels = [
        f"{'Base' if int(c) == 0 else f'C{int(c)}'}\nn={int(r)}/{int(w)}"
        for c, r, w in zip(windows["cycle"], windows["recorded_days"], windows["window_days"], strict=True)
    ]
    axes.set_xticks(x, labels)
    axes.set_ylabel("days per 28 recorded days", fontsize=8)
    axes.legend(fontsize=7, frameon=False, ncols=3, loc="lower right", bbox_to_anchor=(1, 1))
    _style(axes)
    return Chart(
        _png(figure),
        width_in,
        2.9,
        "Rates per window",
        "Days per 28 recorded days in the baseline (Base) and each cycle (C); n = days recorded / days in the "
        f"window. Grey bars: window not evaluable (<{config.min_completeness:.0%} of days recorded or shorter "
        f"than {config.min_window_days} days). Blue lines: baseline headache days (solid), "
        f"{config.stopping_min_reduction:g}% fewer (dashed), 50% fewer (dotted).",
    )


def rolling_headache_days(
    days: pd.DataFrame, cycles: pd.DataFrame, config: AnalysisConfig, width_in: float = 7.0
) -> Chart:
    """Rolling 28-day headache days over the diary (``clinical.diary_days``), sessions as vertical lines."""
    figure = _figure(width_in, 2.6)
    axes = figure.add_subplot()
    axes.plot(days["date"], days["rolling_mhd"].astype("float64"), color=COLOURS["mhd"], linewidth=1.2)
    for session in cycles.loc[cycles["cycle"] >= 1, "start_date"]:
        axes.axvline(session, color=COLOURS["text"], linewidth=0.6, linestyle=":")
    for threshold, label in (
        (config.episodic_max_days, f"<{config.episodic_max_days:g} NICE episodic"),
        (config.ehf_episodic_max_days, f"<{config.ehf_episodic_max_days:g} EHF episodic"),
    ):
        axes.axhline(threshold, color=COLOURS["grey"], linewidth=0.8, linestyle="--")
        axes.annotate(label, (1, threshold), xycoords=("axes fraction", "data"), fontsize=6.5, ha="right", va="bottom")
    axes.set_ylim(0, 28)
    axes.set_ylabel("headache days / 28 d", fontsize=8)
    _style(axes)
    figure.autofmt_xdate()
    recorded = int(days["recorded"].sum()) if len(days) else 0
    return Chart(
        _png(figure),
        width_in,
        2.6,
        "Rolling 28-day headache days",
        f"Headache days (≥{config.headache_min_hours:g} h) per 28 recorded days over the 28 days up to each day; "
        f"a gap where fewer than {config.min_completeness:.0%} of those days are recorded. Dotted lines: "
        f"injection sessions. {recorded} of {len(days)} diary days recorded.",
    )


def questionnaire_scores(questionnaires: pd.DataFrame, width_in: float = 7.0) -> Chart | None:
    """HIT-6 and MIDAS scores by date with their band limits; None when the patient has neither."""
    shown = [(name, bands) for name, bands in (("HIT-6", HIT6_BANDS), ("MIDAS", MIDAS_GRADES))]
    rows = {name: questionnaires[questionnaires["instrument"] == name] for name, _ in shown}
    if all(r.empty for r in rows.values()):
        return None
    figure = _figure(width_in, 2.3)
    panels = figure.subplots(1, 2)
    counts = []
    for axes, (name, bands) in zip(panels, shown, strict=True):
        scores = rows[name]
        counts.append(f"{name} n={len(scores)}")
        axes.plot(scores["date"], scores["score"].astype("float64"), marker="o", markersize=3, color=COLOURS["mhd"])
        for _, high, _label in bands[:-1]:
            axes.axhline(high + 0.5, color=COLOURS["grey"], linewidth=0.7, linestyle="--")
        axes.set_title(name, fontsize=8.5)
        _style(axes)
        for label in axes.get_xticklabels():
            label.set_rotation(30)
            label.set_ha("right")
    return Chart(
        _png(figure),
        width_in,
        2.3,
        "Questionnaires",
        "Scores by date (" + ", ".join(counts) + "). Dashed lines: band limits, HIT-6 ≤49 / 50–55 / 56–59 / ≥60, "
        "MIDAS grades I 0–5, II 6–10, III 11–20, IV ≥21.",
    )


def plain_headache_days(windows: pd.DataFrame, width_in: float = 6.5) -> Chart:
    """The patient's chart: headache days in every 4 weeks before treatment and after each injection."""
    figure = _figure(width_in, 2.8)
    axes = figure.add_subplot()
    evaluable = windows["evaluable"].to_numpy(dtype=bool)
    values = windows["mhd"].astype("float64").where(windows["evaluable"]).to_numpy()
    labels = ["Before" if int(c) == 0 else f"After\ninjection {int(c)}" for c in windows["cycle"]]
    x = np.arange(len(windows))
    axes.bar(x, np.nan_to_num(values), 0.6, color=[COLOURS["mhd"] if ok else COLOURS["grey"] for ok in evaluable])
    for xi, value, ok in zip(x, values, evaluable, strict=True):
        axes.annotate(
            f"{round(value)}" if ok else "too few\ndiary days",
            (xi, 0 if not ok else value),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    axes.set_xticks(x, labels)
    axes.set_ylabel("headache days in 4 weeks", fontsize=8)
    _style(axes)
    return Chart(
        _png(figure),
        width_in,
        2.8,
        "Your headache days",
        "Headache days in every 4 weeks, from your diary. A grey space means too few diary days to count.",
    )
