"""Patient page (the doctor): is it working for this patient, since when, and should we continue?

Thin orchestration: the patient-level tables are computed once per dataset and parameters for all
patients (``analytics.definitions.clinical.clinical_tables`` through ``ui.state.clinical``, cached; its status is
SPEC §5's ``analysis.patient_status``, the values the Clinic page's worklists use); a patient switch
only filters them, builds this patient's daily grid and weekly profile from their own diary days
(``ui.state.patient_calendar``, cached per patient) and this patient's figures. The chosen patient
lives in the URL (``?patient=…``) through the selectbox's query-parameter binding, so a link opens
the same patient. ``render()`` draws the page; importing the module draws nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache, partial
from typing import TypeVar

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from analytics.definitions import clinical
from analytics.definitions.clinical import patient_calendar as calendar_of_patient
from analytics.figures import patient as figures
from analytics.privacy.links import patient_from_link
from analytics.views import continuation, report
from analytics.views.summary_pdf import build_summary_pdf
from analytics.views.summary_record import PatientRecords, SummaryContext
from pages import run_dashboard_instead
from ui import auth, state
from ui import render as ui_render
from ui.context import HASH_FUNCS, AppContext, context

BADGE_COLOURS = {"good": "green", "bad": "red", "warn": "orange", "info": "blue", "neutral": "gray"}
# Material icons ship with Streamlit, so they show on PCs without an emoji font.
MARKS = {
    "met": ":green[:material/check_circle:]",
    "not met": ":red[:material/cancel:]",
    "unknown": ":gray[:material/help:]",
    "caution": ":orange[:material/warning:]",
}
STOPPING_MARKS = {
    "stop": ":red[:material/block:]",
    "continue": ":green[:material/check_circle:]",
    "pending": ":blue[:material/schedule:]",
    "not reached": ":gray[:material/remove:]",
}
# Off treatment (lapsed or discontinued) a rule's verdict is history: no traffic-light colour.
OFF_TREATMENT_MARKS = {"stop": ":gray[:material/block:]", "continue": ":gray[:material/check_circle:]"}


def _yes(value: object) -> bool:
    return bool(pd.notna(value) and value)


def _one(frame: pd.DataFrame, patient_id: str) -> pd.DataFrame:
    return frame[frame["patient_id"] == patient_id]


SECTIONS = ("Diary", "Cycles", "Side effects, questionnaires", "Injection sites")
"""The Patient page's tabs. Only the open one's charts are built: a patient switch builds the diary's three."""

T = TypeVar("T")


def _memo(function: Callable[..., T], *args: object) -> Callable[[], T]:
    """``function(*args)``, computed on the first call only (a chart that needs it asks for it)."""
    return cache(partial(function, *args))


@dataclass(frozen=True)
class Chart:
    """One chart of the Patient page: its tab, heading and caption, and how to build it (and its phone layout).

    The builders run only when called: the page calls those of the open tab, the printable summary all of them."""

    section: str
    key: str
    heading: str
    caption: str | Callable[[], str]  # a callable when it counts the patient's rows
    build: Callable[[], go.Figure]
    phone: Callable[[], go.Figure] | None = None

    def text(self) -> str:
        return self.caption() if callable(self.caption) else self.caption


def patient_charts(
    ctx: AppContext,
    tables: clinical.ClinicalTables,
    patient_id: str,
    cycles: pd.DataFrame,
    days: Callable[[], pd.DataFrame],
    injections: Callable[[], pd.DataFrame],
    session_date: pd.Timestamp | None = None,
) -> list[Chart]:
    """The patient's charts in page order, with the injection sites of ``session_date`` (default: the latest
    session; none without a session). ``days`` and ``injections`` give the patient's daily grid and injection
    rows when a chart needs them."""
    analysis, config, params = ctx.analysis, ctx.config, tables.params
    weekly = _memo(lambda: clinical.weekly_profile(days(), config))
    calendar = _memo(lambda: figures.build_diary_calendar_figures(days(), config.headache_min_hours, cycles=cycles))
    # The tables themselves are asked for only when a chart needs them: a stored analysis reads each from disk then.
    profile = _memo(lambda: _one(tables.cycle_profile, patient_id))
    questionnaires = _memo(lambda: _one(tables.questionnaires, patient_id))
    adverse_events = _memo(lambda: _one(tables.adverse_events, patient_id))
    charts = [
        Chart(
            "Diary",
            "calendar",
            "Diary calendar",
            "Grey: day not recorded (missing, never counted as headache-free). "
            f"A headache day has ≥{config.headache_min_hours:g} h "
            f"of headache. Blue frame: injection day; a late re-injection (more than {config.on_time_max_days} days "
            "after the previous one) is marked with its gap.",
            lambda: calendar()[0],
            lambda: calendar()[1],
        ),
        Chart(
            "Diary",
            "rolling",
            "Headache days per 28 days over time",
            f"Each point counts headache days in the 28 days ending that day, per 28 recorded days; shown only when at "
            f"least {config.min_completeness:.0%} of the 28 days were recorded (grey bands otherwise). MO: a window "
            f"with acute medication on ≥{config.overuse_acute_days:g} days per 28 (medication overuse); late: a late "
            "re-injection.",
            lambda: figures.build_rolling_headache_figure(
                days(),
                cycles,
                config.min_completeness,
                params.period_days,
                overuse_acute_days=config.overuse_acute_days,
            ),
        ),
        Chart(
            "Cycles",
            "cycles",
            "Per cycle against the baseline",
            "Change in headache days from the baseline above each cycle; under each: days recorded / days in the "
            f"window and completeness. A window is evaluable with ≥{config.min_completeness:.0%} of "
            f"its days recorded and ≥{config.min_window_days} days; hatched bars are not evaluable and are not "
            "compared.",
            lambda: figures.build_cycle_bars_figure(
                cycles, config.responder_thresholds, overuse_acute_days=config.overuse_acute_days
            ),
            lambda: figures.build_cycle_bars_figure(
                cycles, config.responder_thresholds, overuse_acute_days=config.overuse_acute_days, compact=True
            ),
        ),
        Chart(
            "Cycles",
            "weekly",
            "Within-cycle weekly profile",
            "Points: headache days in each week since the injection (weeks with fewer than "
            f"{math.ceil(7 * (config.min_completeness - config.tolerance))} of 7 days recorded are gaps); thin lines: "
            f"7-day moving average. Wearing-off: the last {params.wearing_off_late_days} days of a complete cycle are "
            f"≥{params.wearing_off_min_rise:g} headache days / 28 d and ≥{params.wearing_off_min_relative:.0%} above "
            "weeks 3–8.",
            lambda: figures.build_weekly_profile_figure(
                weekly(), days(), profile(), params.wearing_off_reference_weeks, params.wearing_off_late_days
            ),
            lambda: figures.build_weekly_profile_figure(
                weekly(),
                days(),
                profile(),
                params.wearing_off_reference_weeks,
                params.wearing_off_late_days,
                compact=True,
            ),
        ),
        Chart(
            "Side effects, questionnaires",
            "adverse_events",
            "Adverse events by cycle",
            "Bars run from onset to resolution, in days since the injection; hatched: not resolved by the data "
            "cut-off.",
            lambda: figures.build_adverse_events_figure(
                adverse_events(), cycles, analysis.as_of, "adverse_events" in tables.available
            ),
        ),
        Chart(
            "Side effects, questionnaires",
            "questionnaires",
            "HIT-6 and MIDAS",
            lambda: (
                f"n = {int((questionnaires()['instrument'] == 'HIT-6').sum())} HIT-6 and "
                f"{int((questionnaires()['instrument'] == 'MIDAS').sum())} MIDAS scores. Bands: HIT-6 ≤49 little or "
                "no impact, 50–55 some, 56–59 substantial, ≥60 severe; MIDAS grade I 0–5, II 6–10, III 11–20, IV ≥21."
            ),
            lambda: figures.build_questionnaires_figure(questionnaires(), cycles, "questionnaires" in tables.available),
            lambda: figures.build_questionnaires_figure(
                questionnaires(), cycles, "questionnaires" in tables.available, compact=True
            ),
        ),
    ]
    sessions = cycles[cycles["cycle"] >= 1]
    if sessions.empty:
        return charts
    chosen = sessions["start_date"].max() if session_date is None else session_date
    session = sessions[sessions["start_date"] == chosen].iloc[0].rename({"start_date": "session_date"})

    sites = _memo(_of_session, injections, chosen)
    if "injections" not in tables.available:
        caption = "No injections.csv in this dataset: the sites of each session are not recorded."
    else:
        caption = (
            "PREEMPT: 155 U as 31 fixed sites of 5 U; follow-the-pain (FTP) extras up to 195 U / 39 sites are the "
            "units above the fixed dose of a muscle and side."
        )
    charts.append(
        Chart(
            "Injection sites",
            "injection_map",
            "Injection sites",
            caption,
            lambda: figures.build_injection_site_map_figure(sites(), session),
            lambda: figures.build_injection_site_map_figure(sites(), session, compact=True),
        )
    )
    return charts


def _of_session(injections: Callable[[], pd.DataFrame], session_date: pd.Timestamp) -> pd.DataFrame:
    """The injection rows of one session."""
    rows = injections()
    return rows[rows["session_date"] == session_date]


def _session_choice(ctx: AppContext, cycles: pd.DataFrame, patient_id: str) -> pd.Timestamp | None:
    """The session whose injection sites are shown (a selectbox, the latest first), or None without a session."""
    sessions = cycles[cycles["cycle"] >= 1]
    if sessions.empty:
        st.info("No injection session to show.")
        return None
    by_date = _one(ctx.dataset.tables["sessions"], patient_id).set_index(["patient_id", "session_date"])
    labels = {}
    for row in sessions.itertuples(index=False):
        units = by_date["total_units"].get((patient_id, row.start_date))
        units_text = f" · {units:g} U" if units is not None and pd.notna(units) else ""
        labels[row.start_date.strftime("%Y-%m-%d")] = f"{row.start_date:%d %b %Y} · cycle {row.cycle}{units_text}"
    chosen = st.selectbox(
        "Session",
        list(labels)[::-1],
        key="injection_session",
        format_func=labels.__getitem__,
        help="The latest session is shown first.",
    )
    return pd.Timestamp(chosen)


# Listing 10,000 patients walks every id of three tables; once per data and parameters, not on every rerun.
@st.cache_resource(max_entries=4, show_spinner=False, hash_funcs=HASH_FUNCS)
def _patient_choices(ctx: AppContext) -> tuple[tuple[str, ...], int]:
    """Every patient with sessions, diary days or a patients.csv row, sorted; and the position of the first one
    whose response can be judged (evaluable baseline), which the page opens without a patient in the link."""
    patient_ids, first_judged = clinical.listed_patients(state.clinical(ctx), ctx.analysis, ctx.dataset)
    return tuple(patient_ids), first_judged


# Every patient's continuation evidence in one vectorised pass, once per data and parameters: a switch reads a row.
@st.cache_resource(max_entries=4, show_spinner=False, hash_funcs=HASH_FUNCS)
def _continuation_table(ctx: AppContext) -> pd.DataFrame:
    if ctx.data_dir is None:  # an upload
        return continuation.continuation_all_patients(ctx.analysis)
    return state.stored_result(ctx, lambda store: store.continuation(ctx.dataset, ctx.analysis))


def render() -> None:
    """The Patient page: the chosen patient's status, charts, cycles and printable summary."""
    ctx = context()
    analysis, dataset, config = ctx.analysis, ctx.dataset, ctx.config
    tables = state.clinical(ctx)  # cached once per data and parameters
    params = tables.params

    patient_ids, first_judged = _patient_choices(ctx)
    requested = state.query_value("patient")
    link = patient_from_link(requested, patient_ids)
    if link.message is not None and requested is not None:
        # Another clinic's patient, or no patient at all: the same words and one audit reason for both, and
        # no other patient is opened in its place.
        auth.refused_patient(requested)
        st.title("Patient")
        st.warning(link.markdown() or "", icon=":material/block:")
        st.caption("This attempt is recorded. Open the patient list to choose a patient.")
        if st.button("Open the patient list", key="patient_link_refused", icon=":material/list:"):
            st.query_params.pop("patient", None)  # the address loses the refused id; the list opens
            st.rerun()
        st.stop()
    if not patient_ids:
        st.info("This dataset has no patients.")
        st.stop()

    st.title("Patient")
    top = st.columns([2, 4, 2], vertical_alignment="bottom")
    patient_id = top[0].selectbox(
        "Patient (type to search)",
        patient_ids,
        index=first_judged,
        key="patient",
        bind="query-params",
        help="The patient is kept in the page address (?patient=…), so a copied link opens the same patient.",
    )
    auth.opened_patient(patient_id)  # the audit trail: who opened which patient, when
    status_rows = _one(tables.status, patient_id)
    status = status_rows.iloc[0] if len(status_rows) else None
    # Medication overuse per window and late re-injections (clinical.cycle_flags) ride along with the cycles.
    cycles = clinical.cycle_flags(_one(analysis.patient_cycles, patient_id).sort_values("cycle"), config)
    facts_row = _one(dataset.tables["patients"], patient_id)
    facts: dict[str, str] = {}
    if len(facts_row):
        info = facts_row.iloc[0]
        for label, column in (("sex", "sex"), ("age band", "age_band"), ("clinic", "clinic")):
            if pd.notna(info[column]):
                facts[label] = str(info[column])
        if pd.notna(info["discontinued_on"]):
            reason = f": {info['discontinuation_reason']}" if pd.notna(info["discontinuation_reason"]) else ""
            facts["discontinued"] = f"{info['discontinued_on']:%d %b %Y}{reason}"
    n_sessions = int((cycles["cycle"] >= 1).sum())
    if n_sessions:
        facts["sessions"] = f"{n_sessions} (first {cycles.loc[cycles['cycle'] == 1, 'start_date'].iloc[0]:%d %b %Y})"
    top[1].markdown(  # values from patients.csv are shown as typed, never as Markdown
        " · ".join(f"**{k}**: {ui_render.plain(v)}" for k, v in facts.items()) or "No patient details in patients.csv"
    )

    def summary_bytes(patient_id: str, cycles: pd.DataFrame, status: pd.Series | None, facts: dict[str, str]) -> bytes:
        # Run on click, outside the script run: every chart of every tab, built here (the page builds only the
        # open tab's), from the patient's own rows (no Streamlit cache).
        days = _memo(calendar_of_patient, analysis, patient_id, params, tables.days)
        charts = patient_charts(ctx, tables, patient_id, cycles, days, _memo(tables.injections_of, patient_id))
        return report.build_patient_report(
            patient_id,
            cycles,
            status,
            [report.ReportFigure(c.heading, c.build(), c.text()) for c in charts],
            clinical.definitions_with_values(config, params),
            {**config.parameters(), "as_of (used)": f"{analysis.as_of:%Y-%m-%d}"},
            analysis.as_of,
            ctx.source_label,
            config,
            facts,
            config.differences_from_default(),
            datetime.now(),
        ).encode("utf-8")

    auth.download_button(  # checked against the user's role and audited: ui/auth.py
        "Printable summary",
        kind="patient_level",
        rows=1,  # one patient
        container=top[2],
        data=partial(summary_bytes, patient_id, cycles, status, facts),
        file_name=f"patient_{patient_id}_{analysis.as_of:%Y-%m-%d}.html",
        mime="text/html",
        key="patient_report",
        on_click="ignore",
        type="primary",
        icon=":material/print:",
        width="stretch",
        help="Downloads one self-contained HTML page (A4) with the charts, the definitions used and the data as-of "
        "date; it opens without internet.",
    )

    def summary_pdf(patient_id: str, kind: str) -> bytes:
        records = PatientRecords(analysis, dataset, tables)
        summary = SummaryContext(config, params, analysis.as_of, ctx.source_label, datetime.now())
        return build_summary_pdf(records.record(patient_id), summary, kind=kind, page_size="a4")

    for kind, label, icon, note in (
        (
            "doctor",
            "Clinic visit PDF",
            ":material/picture_as_pdf:",
            "One A4 page for the visit: treatment state and next due date, each cycle against the baseline with n, "
            "stopping rules with their numbers, medication overuse, questionnaires, side effects.",
        ),
        (
            "patient",
            "Patient's page (PDF)",
            ":material/description:",
            "One page in plain words for the patient: headache days before treatment and now, what to expect, "
            "when the next injection is due, what to record in the diary.",
        ),
    ):
        auth.download_button(  # checked against the user's role and audited: ui/auth.py
            label,
            kind="patient_level",
            rows=1,
            container=top[2],
            data=partial(summary_pdf, patient_id, kind),
            file_name=f"{patient_id}_{kind}.pdf",
            mime="application/pdf",
            key=f"patient_pdf_{kind}",
            on_click="ignore",
            icon=icon,
            width="stretch",
            help=note,
        )

    # --- header: numbers with their n, then status badges
    measures = clinical.header_measures(cycles)
    if measures:
        columns = st.columns(len(measures) + 1)
        for column, m in zip(columns, measures, strict=False):
            latest = m["latest"]
            column.metric(
                m["measure"],
                "—" if pd.isna(latest) else f"{latest:.1f}",
                m["change_shown"],  # rounded as shown, never "−0.0"
                delta_color="inverse",
                border=True,
                delta_description=None if pd.isna(m["change"]) else "vs baseline",
                help="Days per 28 days over the recorded diary days of the window (SPEC §3); the change needs both "
                "windows evaluable.",
            )
            baseline = "—" if pd.isna(m["baseline"]) else f"{m['baseline']:.1f}"
            column.caption(
                f"**{m['latest_label'].capitalize()}**: n = {m['latest_n']}"
                f"{'' if m['latest_evaluable'] else ', :orange[not evaluable]'}"
                f"  \n**Baseline {baseline}**: n = {m['baseline_n']}"
                f"{'' if m['baseline_evaluable'] else ', not evaluable'}"
            )
        if status is not None and pd.notna(status["latest_mhd_pct_change"]):
            columns[-1].metric(
                "Headache-day change",
                f"{status['latest_mhd_pct_change']:+.0f}%".replace("-", "−"),
                border=True,
                help="Change of headache days per 28 days from the baseline at the latest evaluable cycle "
                "(SPEC §3 mhd_pct_change).",
            )
            columns[-1].caption(
                f"**Cycle {int(status['latest_evaluable_cycle'])}** (latest evaluable): "
                f"{status['baseline_mhd']:.1f} → {status['latest_mhd']:.1f} headache days / 28 d"
            )
        else:
            columns[-1].metric("Headache-day change", "not evaluable", border=True)
            columns[-1].caption("Needs an evaluable baseline with headache days and an evaluable cycle.")
    else:
        st.info(f"No injection session up to the data cut-off ({analysis.as_of:%d %b %Y}); the diary is shown below.")

    if status is not None:
        with st.container(horizontal=True):
            for text, tone in clinical.status_badges(status, config):
                st.badge(text, color=BADGE_COLOURS[tone])  # a badge shows its label as plain text

        left, right = st.columns(2)
        with left:
            st.subheader("Suitability at baseline")
            st.markdown(
                "\n".join(f"- {MARKS[met]} {text}" for text, met in clinical.suitability_statements(status, config))
            )
        with right:
            st.subheader("Stopping rules")

            def conversion_mark(column: str) -> str:
                return ":blue[:material/trending_down:]" if _yes(status[column]) else ":gray[:material/remove:]"

            def rule_mark(state: str) -> str:
                off = status["treatment_state"] in ("lapsed", "discontinued")
                marks = {**STOPPING_MARKS, **OFF_TREATMENT_MARKS} if off else STOPPING_MARKS
                return marks.get(state, MARKS["unknown"])

            st.markdown(
                f"- {rule_mark(status['nice_state'])} {status['nice_reason']}\n"
                f"- {rule_mark(status['ehf_state'])} {status['ehf_reason']}\n"
                f"- {conversion_mark('episodic_now')} {status['episodic_reason']}\n"
                f"- {conversion_mark('ehf_episodic_now')} {status['ehf_episodic_reason']}"
            )

    # --- should we continue? The clinic's own comparable patients, beside the published figures
    evidence = continuation.continuation_evidence(analysis, patient_id, table=_continuation_table(ctx))
    if evidence.applies:
        with st.container(border=True, key="continue_panel"):  # the key names it for the README's screenshot
            st.subheader("Should we continue? What happened to comparable patients here")
            st.markdown("\n".join(f"- {ui_render.plain(line)}" for line in evidence.lines()))
            st.caption(
                "Comparable: eligible patients in the data you can see with no 50% response through the same "
                "cycle who had the next session; 95% Wilson intervals. The Data page's dictionary defines it."
            )

    # --- the charts, a tab each group: only the open tab's charts are built (a switch builds three, not twelve)
    days = _memo(state.patient_calendar, ctx, patient_id)  # this patient's daily grid only, cached per patient
    injections = _memo(tables.injections_of, patient_id)  # read from disk for a stored analysis: once a run
    tabs = st.tabs(SECTIONS, key="patient_section", on_change="rerun")
    for section, tab in zip(SECTIONS, tabs, strict=True):
        if not tab.open:
            continue
        with tab:
            chosen = _session_choice(ctx, cycles, patient_id) if section == "Injection sites" else None
            for chart in patient_charts(ctx, tables, patient_id, cycles, days, injections, chosen):
                if chart.section == section:
                    ui_render.chart(
                        chart.build(),
                        key=f"patient_{chart.key}",
                        caption=chart.text(),
                        phone=chart.phone() if chart.phone else None,
                    )
            if section == "Cycles":
                with st.expander("Per-cycle numbers (the data behind the charts)"):
                    ui_render.table(
                        report.readable_cycle_table(cycles),
                        key="patient_cycles",
                        filename=f"{patient_id}_cycles.csv",
                        caption="Rates per 28 recorded days; change is against the baseline and empty unless both are "
                        "evaluable.",
                    )
            if chosen is not None:
                sites = _of_session(injections, chosen)
                if len(sites):
                    with st.expander("Units per muscle and side (table)"):
                        ui_render.table(
                            figures.muscle_table(sites),
                            key="patient_injections",
                            filename=f"{patient_id}_{chosen:%Y-%m-%d}_injections.csv",
                        )

    st.caption(f"Data as of {analysis.as_of:%d %b %Y} · {ui_render.plain(ctx.source_label)}")


if __name__ == "__main__":  # Streamlit ran this file on its own (legacy pages/ mode): see pages/__init__.py
    run_dashboard_instead()
