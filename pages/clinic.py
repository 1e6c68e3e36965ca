"""Clinic page: the clinic manager's view — volumes, re-injection timing, retention, outcomes, safety, worklists.

The page only orchestrates: the filters (clinic, injector, period) are widgets bound to the URL, so a
link opens the same view; ``analytics.views.clinic.clinic_view`` computes everything for the filter in one
cached call; ``analytics.figures.clinic`` draws it and ``ui.render`` shows charts and tables (CSV download).
Under the headline numbers the sections are tabs (``SECTIONS``), of which only the open one is drawn; the open
tab is in the link too. Definitions live in ``analytics.views.clinic`` and are printed from there.
Worklists hold patient ids; the tables show them as links to the Patient page to users who may open
it. ``render()`` draws the page; importing the module draws nothing.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import pandas as pd
import streamlit as st

from analytics.definitions.config import AnalysisConfig
from analytics.figures import clinic as figures
from analytics.privacy import access
from analytics.statistics.stats import WILSON_METHOD
from analytics.views import clinic
from pages import run_dashboard_instead
from ui import render as ui_render
from ui import state
from ui.context import HASH_FUNCS, AppContext, context, current_user

ALL = "(all)"
PATIENT_ADDRESS = "/patient?patient="
"""A patient's page is this address followed by the patient id (the page's selectbox is bound to ?patient=)."""


def _rows_expander(label: str, key: str) -> st.delta_generator.DeltaGenerator | None:
    """An expander of tables with a row per patient or per session, or None while it is closed: such a table is
    made (formatted, linked, converted) only when someone opens it, which reruns the page, not on every visit
    (at 100,000 patients a second of each Clinic page). Its key holds whether it is open."""
    box = st.expander(label, key=f"{key}_expander", on_change="rerun")
    return box if box.open else None


def _filter_key(flt: clinic.ClinicFilter) -> str:
    return json.dumps(dataclasses.asdict(flt), default=str, sort_keys=True)


# Shared, read-only (st.cache_data would unpickle a copy of the view's tables on every rerun); for the clinic's
# data folder the choices and the view of every clinic are computed once into the analysis store.
@st.cache_resource(max_entries=8, show_spinner=False, hash_funcs=HASH_FUNCS)
def _options(ctx: AppContext) -> clinic.FilterOptions:
    if ctx.data_dir is not None:
        return state.stored_result(ctx, lambda store: store.clinic_options(ctx.dataset, ctx.analysis))
    register = clinic.session_register(ctx.dataset, ctx.analysis.as_of)
    return clinic.filter_options(ctx.dataset, register, ctx.analysis.as_of)


@st.cache_resource(
    max_entries=32,
    show_spinner="Computing the clinic view…",
    hash_funcs={**HASH_FUNCS, clinic.ClinicFilter: _filter_key},
)
def _view(ctx: AppContext, flt: clinic.ClinicFilter) -> clinic.ClinicView:
    if ctx.data_dir is not None and flt == clinic.ClinicFilter():
        return state.stored_result(ctx, lambda store: store.clinic_view(ctx.dataset, ctx.analysis, flt))
    return clinic.clinic_view(ctx.dataset, ctx.analysis, flt)


def _may_open_patients() -> bool:
    user = current_user()
    return user is None or access.can_view(user.role, "patient")


# Shorter headers for the worklists' long column names, which the table otherwise cuts ("latest_evaluable_c…");
# the column's name stays in its help (and in the CSV).
LABELS = {
    "days_since_last_session": ("days since last", "days_since_last_session: days from the last session to as_of"),
    "latest_evaluable_cycle": ("latest cycle", "latest_evaluable_cycle: the latest cycle with enough diary days"),
    "latest_mhd_pct_change": ("MHD % change", "latest_mhd_pct_change: that cycle's % change in monthly headache days"),
    "treatment_state": ("state", "treatment_state (SPEC §5)"),
    "nice_state": ("NICE", "nice_state: the NICE 30% stopping rule's state"),
    "ehf_state": ("EHF", "ehf_state: the EHF stopping rule's state"),
    "recorded_days": ("recorded", "recorded_days: diary days recorded in the cycle so far"),
    "elapsed_days": ("elapsed", "elapsed_days: days of the cycle so far"),
}
DECIMALS = {"latest_mhd_pct_change": 1}


def _columns(frame: pd.DataFrame, percent: tuple[str, ...] = (), decimals: dict[str, int] | None = None) -> dict:
    """Column formats: ISO dates, percentages and rounded numbers, short headers for long names (``LABELS``);
    patient ids as text for roles without the page."""
    config: dict[str, object] = {}
    places = {name: n for name, n in (DECIMALS | (decimals or {})).items() if name in frame.columns}
    for name in frame.columns:
        label, help_text = LABELS.get(name, (name, None))
        if name == "patient" and not _may_open_patients():
            config[name] = st.column_config.TextColumn(name, help="Patient pages are not part of your role")
        elif pd.api.types.is_datetime64_any_dtype(frame[name]):
            config[name] = st.column_config.DateColumn(label, format="YYYY-MM-DD", help=help_text)
        elif name in percent:
            config[name] = st.column_config.NumberColumn(label, format="percent", help=help_text)
        elif name in places:
            config[name] = st.column_config.NumberColumn(label, format=f"%.{places[name]}f", help=help_text)
        elif name in LABELS:
            config[name] = st.column_config.Column(label, help=help_text)
    return config


def _table(
    frame: pd.DataFrame,
    key: str,
    caption: str | None = None,
    percent: tuple[str, ...] = (),
    decimals: dict[str, int] | None = None,
) -> None:
    # Patient ids link to the Patient page, for roles that may open it.
    links = {"patient": PATIENT_ADDRESS} if "patient" in frame.columns and _may_open_patients() else None
    ui_render.table(
        frame,
        key=key,
        filename=f"clinic_{key}.csv",
        caption=caption,
        links=links,
        column_config=_columns(frame, percent, decimals),
    )


def _filters(options: clinic.FilterOptions) -> clinic.ClinicFilter:
    """The filter widgets, bound to the URL (?site=…&injector=…&period_from=…&period_to=…)."""
    left, middle, right_from, right_to = st.columns(4)
    if options.has_clinics:
        site = left.selectbox(
            "Clinic",
            [ALL, *options.clinics],
            key="site",
            bind="query-params",
            format_func=lambda v: "All clinics" if v == ALL else v,
        )
    else:
        site = ALL
        left.caption("No clinic column in patients.csv: the page covers every patient.")
    chosen_clinic = None if site == ALL else site
    injector = middle.selectbox(
        "Injector",
        [ALL, *options.injectors.get(chosen_clinic, [])],
        key="injector",
        bind="query-params",
        format_func=lambda v: "All injectors" if v == ALL else v,
    )
    start = right_from.date_input(
        "Period from",
        value=options.first_date,
        min_value=options.first_date,
        max_value=options.last_date,
        key="period_from",
        bind="query-params",
        format="YYYY-MM-DD",
    )
    end = right_to.date_input(
        "Period to",
        value=options.last_date,
        min_value=options.first_date,
        max_value=options.last_date,
        key="period_to",
        bind="query-params",
        format="YYYY-MM-DD",
    )
    start = start if isinstance(start, date) else options.first_date
    end = end if isinstance(end, date) else options.last_date
    if start > end:
        st.warning("The period starts after it ends; the two dates were swapped.")
        start, end = end, start
    return clinic.ClinicFilter(
        clinic=chosen_clinic,
        injector=None if injector == ALL else injector,
        start=None if start == options.first_date else start,
        end=None if end == options.last_date else end,
    )


def _headline(view: clinic.ClinicView, config: AnalysisConfig) -> None:
    activity, timing = view.activity, view.interval_summary
    columns = st.columns(5)
    columns[0].metric(
        "Active patients",
        f"{activity.active:,}",
        border=True,
        help=f"of {activity.ever_treated:,} patients ever treated in this clinic/injector selection, as of "
        f"{view.as_of:%Y-%m-%d}. " + clinic.definition("active", config),
    )
    # Card labels stay short enough for a fifth of a laptop screen with the help icon; the help says the rest.
    columns[1].metric(
        "Treated",
        f"{activity.treated_in_period:,}",
        border=True,
        help="Treated in the period: distinct patients with a session in the period (by the selected injector, "
        "if any).",
    )
    columns[2].metric("Sessions in period", f"{activity.sessions_in_period:,}", border=True)
    columns[3].metric(
        "New in period",
        f"{activity.new_in_period:,}",
        border=True,
        help="Patients whose first session was in the period: the cohort of the outcome figures.",
    )
    on_time = timing.on_time
    columns[4].metric(
        "On time",
        "—" if on_time.denominator == 0 else f"{on_time.rate:.0%}",
        border=True,
        help=f"On-time re-injection intervals: {on_time.label()} of intervals at "
        f"{config.on_time_min_days}–{config.on_time_max_days} days; {WILSON_METHOD}.",
    )
    st.caption(
        f"Active: {activity.active:,} of {activity.ever_treated:,} ever treated · on time: {on_time.label()} "
        f"({WILSON_METHOD})"
    )


def _activity(view: clinic.ClinicView) -> None:
    st.subheader("Activity")
    ui_render.chart_of(
        figures.build_sessions_per_month_figure,
        view.monthly,
        key="sessions_per_month",
        caption="Sessions dated in the period, stacked by the injector who gave them; pale bars are months "
        "only partly inside the period or the data.",
    )
    with st.expander("Table: sessions and patients per month"):
        _table(view.monthly_totals, "sessions_per_month")


def _timing(view: clinic.ClinicView) -> None:
    st.subheader("Re-injection timing")
    summary = view.interval_summary
    chart, numbers = st.columns([3, 2])
    with chart:
        ui_render.chart_of(
            figures.build_interval_figure,
            view.interval_distribution,
            summary,
            key="intervals",
            caption="Each interval is counted at the re-injection that ends it (its date and injector).",
        )
    with numbers:
        if summary.n_intervals == 0:
            st.info("No re-injections in this selection, so there are no intervals to describe.")
        else:
            low, high = summary.on_time_days
            gap = summary.patients_with_long_gap
            st.markdown(
                f"- **Median interval** {summary.median_days:.0f} days (IQR {summary.q1_days:.0f}–"
                f"{summary.q3_days:.0f}; n = {summary.n_intervals:,} intervals)\n"
                f"- **On time ({low}–{high} days):** {summary.on_time.label()}\n"
                f"- Early (< {low} days): {summary.early:,} · late (> {high} days): {summary.late:,}\n"
                f"- **Patients with at least one gap over 13 weeks:** {gap.label()}. REPOSE found "
                f"{clinic.REPOSE_GAP_SHARE:.0%} over two years of treatment.\n"
            )
            st.caption(f"Intervals: {WILSON_METHOD}.")
    if (box := _rows_expander("Table: every re-injection interval", "intervals")) is not None:
        with box:
            intervals = view.intervals.rename(columns={"patient_id": "patient"})
            _table(
                intervals[
                    [
                        "patient",
                        "clinic",
                        "previous_session_date",
                        "session_date",
                        "interval_days",
                        "category",
                        "injector",
                    ]
                ],
                "intervals",
            )


def _retention(view: clinic.ClinicView, config: AnalysisConfig) -> None:
    st.subheader("Retention and persistence on treatment")
    st.caption(f"Patients whose first session was in the period: n = {view.activity.new_in_period:,}.")
    left, right = st.columns(2)
    with left:
        ui_render.chart_of(
            figures.build_retention_figure,
            view.retention,
            key="retention",
            caption="Bars: patients who reached each cycle, with the % of those who started. Recent "
            "starters have not had the time to reach later cycles; the table gives the share among "
            f"those who had the time, with a {WILSON_METHOD}.",
        )
    with right:
        curve = view.persistence_curve
        median = curve.median()
        median_text = f"median {median / 7:.0f} weeks" if median == median else "median not reached"
        ui_render.chart_of(
            figures.build_kaplan_meier_figure,
            curve,
            view.persistence_at_risk,
            f"Persistence on treatment (n = {curve.n:,}, {curve.n_events:,} ended)",
            key="persistence",
            caption=f"{curve.describe()}; {median_text}. Treatment ends at a recorded discontinuation, or for a "
            f"lapsed patient (no session for over {config.lapse_days} days) at the last session + "
            f"{config.on_time_max_days} days; active and overdue patients are censored at "
            f"{view.as_of:%Y-%m-%d}. The row under the axis is the number still at risk.",
        )
    label = "Tables: retention by cycle, number at risk, time on treatment per patient"
    if (box := _rows_expander(label, "persistence")) is None:
        return
    with box:
        _table(
            view.retention,
            "retention",
            percent=("reached_share", "reached_had_time_rate", "ci_low", "ci_high"),
            caption=f"reached_share: of those who started; reached_had_time_rate: of those whose first session + "
            f"(k − 1) × {config.on_time_max_days} days is before the cut-off, with a {WILSON_METHOD} "
            "(ci_low, ci_high).",
        )
        at_risk = view.persistence_at_risk.assign(weeks=view.persistence_at_risk["time"] / 7)
        _table(
            at_risk[["time", "weeks", "at_risk", "survival", "ci_low", "ci_high"]],
            "persistence_at_risk",
            caption=f"time in days; {curve.ci_method}",
            percent=("survival", "ci_low", "ci_high"),
        )
        per_patient = view.persistence.rename(columns={"patient_id": "patient"})
        _table(per_patient[["patient", "first_session", "end_date", "end_reason", "duration_days"]], "persistence")


def _outcomes(view: clinic.ClinicView) -> None:
    st.subheader("Outcomes: 50% responders per cycle")
    ui_render.chart_of(
        figures.build_responder_rate_figure,
        view.responder_rates,
        key="responders",
        caption="Patients whose first session was in the period; responder_50_n / n_evaluable per cycle "
        f"(SPEC §3), error bars: {WILSON_METHOD}.",
    )
    columns = [
        "cycle",
        "n_treated",
        "n_evaluable",
        "responder_50_n",
        "responder_50_rate",
        "responder_50_ci_low",
        "responder_50_ci_high",
    ]
    rows = view.responder_rates.loc[view.responder_rates["cycle"] >= 1, columns]
    with st.expander("Table: 50% responder rate per cycle"):
        _table(
            rows,
            "responders",
            caption=WILSON_METHOD,
            percent=("responder_50_rate", "responder_50_ci_low", "responder_50_ci_high"),
        )


def _safety(view: clinic.ClinicView, safety: clinic.SafetyView | None) -> None:
    st.subheader("Adverse events")
    if view.adverse_events is None:
        st.info("No adverse_events.csv in this dataset: adverse event rates are not available (they are not zero).")
        return
    total = view.adverse_events.iloc[-1]
    ui_render.chart_of(
        figures.build_adverse_event_figure,
        view.adverse_events,
        key="adverse_events",
        caption=f"All events: {total['per_100_sessions']:.1f} per 100 sessions ({total['events']:,} events / "
        f"{total['sessions']:,} sessions; 95% CI {total['ci_low']:.1f}–{total['ci_high']:.1f}). "
        f"Error bars: {clinic.POISSON_METHOD}. Events are attributed to the session they followed.",
    )
    with st.expander("Table: adverse events per 100 sessions by type"):
        _table(
            view.adverse_events,
            "adverse_event_rates",
            caption=clinic.POISSON_METHOD,
            decimals={"per_100_sessions": 2, "ci_low": 2, "ci_high": 2},
        )
    if safety is not None and safety.table["events"].sum() > 0:
        _safety_literature(safety)


def _safety_literature(safety: clinic.SafetyView) -> None:
    st.subheader("Adverse events against the published figures")
    table = safety.table
    st.caption(
        f"All treated patients of the dataset (n = {int(table['patients'].iloc[0]):,}), not the filter above. "
        f"{safety.method}s; PREEMPT counted every event in the first 24 weeks, COMPEL treatment-related events "
        "over 108 weeks."
    )
    ui_render.chart_of(
        figures.build_safety_figure,
        safety,
        key="safety_vs_published",
        caption="Dots: this dataset's share of patients with ≥2 sessions who had the event after session 1 "
        f"or 2 (SPEC §5.4 pct_2_cycles), error bars: {safety.method}. Diamonds: PREEMPT pooled "
        "24-week figures (hollow: recalled, not checked against the paper).",
    )
    shown = table[
        [
            "event",
            "patients",
            "patients_with_event",
            "patients_with_event_pct",
            "patients_with_event_ci_low",
            "patients_with_event_ci_high",
            "compel_pct_treatment_related",
            "patients_2_cycles",
            "patients_with_event_2_cycles",
            "pct_2_cycles",
            "pct_2_cycles_ci_low",
            "pct_2_cycles_ci_high",
            "preempt_pct_2_cycles",
            "serious_events",
        ]
    ]
    _table(
        shown,
        "safety_vs_published",
        caption=f"Percentages of patients; ci_low/ci_high: {safety.method}.",
        decimals={c: 1 for c in shown.columns if shown[c].dtype.kind == "f"},
    )
    with st.expander("Sources of the published figures"):
        _table(safety.published, "safety_sources")


def _diary(view: clinic.ClinicView, min_completeness: float) -> None:
    st.subheader("Diary completeness")
    current = view.current_cycles
    poor = int(current["poor_completeness"].sum())
    ui_render.chart_of(
        figures.build_completeness_figure,
        view.completeness_distribution,
        min_completeness,
        key="completeness",
        caption=f"Active patients' current cycle: recorded days / days elapsed. {poor} of {len(current)} are below "
        f"{min_completeness:.0%} after at least {clinic.MIN_ELAPSED_DAYS} days (worklist below).",
    )


def _worklists(view: clinic.ClinicView, config: AnalysisConfig) -> None:
    st.subheader("Worklists")
    st.caption(
        f"As of the data cut-off {view.as_of:%Y-%m-%d}; they follow the clinic and injector filters, not the "
        "period. Patient links open the patient page."
    )
    lists = view.worklists
    counts = {name: ("—" if frame is None else f"{len(frame)}") for name, frame in lists.items()}
    tabs = st.tabs(
        [
            f"Overdue for re-injection ({counts['overdue']})",
            f"Lapsed ({counts['lapsed']})",
            f"Stop indicated ({counts['stop_indicated']})",
            f"Poor diary completeness ({counts['diary']})",
            f"Adverse events, last {clinic.RECENT_AE_DAYS} days ({counts['adverse_events']})",
        ]
    )
    with tabs[0]:
        _table(lists["overdue"], "worklist_overdue", caption=clinic.definition("overdue", config))
    with tabs[1]:
        _table(lists["lapsed"], "worklist_lapsed", caption=clinic.definition("lapsed", config))
    with tabs[2]:
        _table(
            lists["stop_indicated"],
            "worklist_stop_indicated",
            caption=f"{clinic.definition('stop_indicated', config)} The decision belongs at the next visit; the "
            "Patient page gives the numbers.",
        )
    with tabs[3]:
        _table(lists["diary"], "worklist_diary", percent=("completeness",), caption=clinic.definition("diary", config))
    with tabs[4]:
        recent = lists["adverse_events"]
        if recent is None:
            st.info("No adverse_events.csv in this dataset.")
        else:
            _table(
                recent,
                "worklist_adverse_events",
                caption=f"Onset (else the session date) in the {clinic.RECENT_AE_DAYS} days up to "
                f"{view.as_of:%Y-%m-%d}; the injector is the one who gave that session.",
            )


def _funnels(view: clinic.ClinicView) -> None:
    st.subheader("Comparing injectors and clinics")
    st.caption(
        f"Funnel plots (Spiegelhalter 2005), not league tables: a unit outside the 95% limits deserves a look, outside "
        f"99.8% a closer one; inside, its difference from the overall rate is compatible with chance. Rate: 50% "
        f"responders among the unit's patients evaluable at cycle {clinic.FUNNEL_CYCLE}, patients whose first session "
        "was in the period, each attributed to the injector of their first session. Injectors are compared within the "
        "chosen clinic, clinics with each other; the chosen one is highlighted."
    )
    funnels = ((view.injector_funnel, "funnel_injectors"), (view.clinic_funnel, "funnel_clinics"))
    for column, (funnel, key) in zip(st.columns(2), funnels, strict=True):
        with column:
            ui_render.chart(ui_render.figure(figures.build_funnel_figure, funnel), key=key)
    st.caption(
        f"Limits: {view.injector_funnel.method}. Hover a point for its rate, numerator/denominator and 95% "
        "Wilson interval."
    )
    for funnel, key in funnels:
        units = funnel.units[
            [
                "unit",
                "patients",
                "evaluable_n",
                "responders_n",
                "rate",
                "ci_low",
                "ci_high",
                "position",
                "lower_95",
                "upper_95",
                "lower_998",
                "upper_998",
            ]
        ]
        _table(
            units.rename(columns={"unit": funnel.unit_label}),
            key,
            caption=f"{funnel.unit_label.capitalize()}s sorted by name, not by rate. ci_low/ci_high: "
            f"{WILSON_METHOD}; lower/upper: the control limits at the unit's n.",
            percent=("rate", "ci_low", "ci_high", "lower_95", "upper_95", "lower_998", "upper_998"),
        )


SECTIONS = ("Activity and timing", "Retention and outcomes", "Safety and diary", "Worklists", "Injectors and clinics")
"""The page's tabs under its headline numbers. Only the open one is drawn (its charts and tables made): a visit
draws one section, not five. The open tab is kept in the page's link (``?clinic_tab=``)."""


def render() -> None:
    """The Clinic page: filters, the headline numbers, then the sections of the clinic view in tabs."""
    ctx = context()
    analysis = ctx.analysis
    config = analysis.config

    st.title("Clinic")
    flt = _filters(_options(ctx))
    view = _view(ctx, flt)
    st.caption(
        f"{ctx.source_label} · data as of {view.as_of:%Y-%m-%d} · clinic: {flt.clinic or 'all'} · injector: "
        f"{flt.injector or 'all'} · period {view.period_start:%Y-%m-%d} to {view.period_end:%Y-%m-%d}. "
        "The address bar holds this view: copy it to share it."
    )
    with st.expander("What each filter applies to"):
        st.markdown(clinic.FILTER_NOTES)

    _headline(view, config)
    draw = [
        lambda: (_activity(view), _timing(view)),
        lambda: (_retention(view, config), _outcomes(view)),
        lambda: (_safety(view, clinic.safety_view(analysis)), _diary(view, config.min_completeness)),
        lambda: _worklists(view, config),
        lambda: _funnels(view),
    ]
    tabs = st.tabs(SECTIONS, key="clinic_tab", on_change="rerun", bind="query-params")
    for section, tab in zip(draw, tabs, strict=True):
        if tab.open:
            with tab:
                section()
    with st.expander("Definitions used on this page"):
        definitions = pd.DataFrame(
            {
                "term": [d.name for d in clinic.DEFINITIONS],
                "definition": [clinic.definition(d.key, config) for d in clinic.DEFINITIONS],
            }
        )
        _table(definitions, "definitions")


if __name__ == "__main__":  # Streamlit ran this file on its own (legacy pages/ mode): see pages/__init__.py
    run_dashboard_instead()
