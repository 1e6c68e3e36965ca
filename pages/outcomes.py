"""Outcomes page: the researcher's view — build a cohort, read per-cycle statistics, export them.

The page only orchestrates. The cohort builder's widgets are bound to the URL under the names of
``analytics.views.cohort_filter.QUERY_PARAMETERS`` (plus ``cycle`` and ``cycles_to`` for the view), so a
link reproduces the cohort; they make a ``CohortFilter``, which narrows the cached analysis
(``cohort_filter.restrict``). Every statistic comes from ``analytics.views.outcomes`` through caches
keyed on the data's SHA-256, the parameters and the filter (``COHORT_HASH_FUNCS``), is drawn by
``analytics.figures.outcomes`` and shown with ``ui.render`` (charts in a full and a phone layout, tables with a
CSV download). The statistics sit in tabs (``TABS``), of which only the open one is drawn, and each tab asks
only for its own part of the cohort's statistics (``outcomes.RESULT_PARTS``); the open tab is in the link too.
The export tab downloads the same bytes as ``python -m analytics export`` with the same filter. ``render()``
draws the page; importing the module draws nothing.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from analytics.definitions.config import PROJECT_DIR, SAMPLE_DATA_DIR
from analytics.definitions.pipeline import Analysis
from analytics.figures import outcomes as figures
from analytics.output.export import csv_bytes
from analytics.privacy import access
from analytics.privacy.suppression import suppress_cohort_cycles
from analytics.statistics.stats import T_METHOD, WILSON_METHOD
from analytics.views import outcomes
from analytics.views.cohort_filter import (
    FILTER_FILE_NAME,
    RANGES,
    CohortFilter,
    attribute_options,
    export_command,
    filtered_export,
    patient_attributes,
    restrict,
)
from pages import run_dashboard_instead
from ui import auth, state
from ui import render as ui_render
from ui.context import HASH_FUNCS, AppContext, analysis_key, context

ANY = "any"
# Bound widgets write their option's label into the URL, so the labels are the URL's values (true/false).
OVERUSE_OPTIONS = (ANY, "true", "false")
AUTO = "auto"
MIXED_MODEL_REQUESTS = "mixed_model_requested"
MIN_SHOWN = 10  # "auto" shows cycles while at least this many patients are treated
DECIMALS = {
    "mean_baseline": 1,
    "mean_cycle": 1,
    "mean_change": 2,
    "ci_low": 2,
    "ci_high": 2,
    "sd_change": 2,
    "median_change": 2,
    "mean_headache_days": 2,
    "sd": 2,
    "moving_average": 2,
    "estimate": 2,
}


# --- cached computations -----------------------------------------------------------------------

# A context is identified by its files and parameters (ui.context.HASH_FUNCS), a cohort filter by its JSON.
COHORT_HASH_FUNCS = {**HASH_FUNCS, CohortFilter: CohortFilter.to_json}


@st.cache_data(max_entries=4, show_spinner=False, hash_funcs=HASH_FUNCS)
def _attributes(ctx: AppContext) -> pd.DataFrame:
    return patient_attributes(ctx.analysis, ctx.dataset)


# Read-only arrays of every treated diary day: one shared object (st.cache_data would copy them on
# every rerun), from which the within-cycle course of any cohort is counted.
@st.cache_resource(max_entries=2, show_spinner=False, hash_funcs=HASH_FUNCS)
def _treated_days(ctx: AppContext) -> outcomes.TreatedDays:
    if ctx.data_dir is None:  # an upload
        return outcomes.treated_days(ctx.analysis)
    return state.stored_result(ctx, lambda store: store.treated_days(ctx.dataset, ctx.analysis))


# The cohort's analysis without its diary days (read through _treated_days instead), so a filter
# change does not copy millions of diary rows.
@st.cache_resource(max_entries=4, show_spinner=False, hash_funcs=COHORT_HASH_FUNCS)
def _cohort(ctx: AppContext, cohort_filter: CohortFilter) -> Analysis:
    if cohort_filter.is_empty():
        return ctx.analysis
    return restrict(ctx.analysis, frozenset(cohort_filter.select(_attributes(ctx))), with_days=False)


@st.cache_data(max_entries=48, show_spinner="Computing the cohort's statistics…", hash_funcs=COHORT_HASH_FUNCS)
def _cohort_results(ctx: AppContext, cohort_filter: CohortFilter, part: str) -> dict[str, object]:
    """One part of the cohort's statistics (``outcomes.RESULT_PARTS``): the page asks only for its open tab's."""
    if cohort_filter.is_empty() and ctx.data_dir is not None:  # everyone: computed once into the analysis store
        return state.stored_result(ctx, lambda store: store.everyone_outcomes(ctx.dataset, ctx.analysis, part))
    days = _treated_days(ctx) if part == "weekly" else None  # the whole dataset's: the cohort has no diary days
    return outcomes.cohort_results(_cohort(ctx, cohort_filter), days, part)


@st.cache_data(max_entries=32, show_spinner=False, hash_funcs=COHORT_HASH_FUNCS)
def _cycle_results(
    ctx: AppContext, cohort_filter: CohortFilter, cycle: int
) -> tuple[pd.DataFrame, outcomes.BaselineTable]:
    attributes = _attributes(ctx)
    selected = attributes.loc[attributes["patient_id"].isin(cohort_filter.select(attributes))].reset_index(drop=True)
    cohort = _cohort(ctx, cohort_filter)
    return outcomes.subgroup_response(cohort, selected, cycle), outcomes.baseline_table(cohort, selected, cycle)


@st.cache_data(
    max_entries=16, show_spinner="Fitting the mixed model (statsmodels MixedLM)…", hash_funcs=COHORT_HASH_FUNCS
)
def _mixed_model(ctx: AppContext, cohort_filter: CohortFilter) -> outcomes.MixedModelResult | None:
    return outcomes.mixed_model(_cohort(ctx, cohort_filter))


# --- the cohort builder ------------------------------------------------------------------------


def _bounds(options: dict[str, list]) -> dict[str, tuple]:
    return {name: tuple(options[name]) for name in RANGES if len(options[name]) == 2}


def _widget_values(cohort_filter: CohortFilter, options: dict[str, list]) -> dict[str, object]:
    """The builder's widget values that show ``cohort_filter`` (open range ends at the data's bounds)."""
    bounds = _bounds(options)
    values: dict[str, object] = {
        name: [v for v in getattr(cohort_filter, name) if v in options[name]] for name in ("sex", "age_band", "clinic")
    }
    for name, (low_field, high_field, _kind) in RANGES.items():
        if name in bounds:
            low, high = bounds[name]
            chosen_low, chosen_high = getattr(cohort_filter, low_field), getattr(cohort_filter, high_field)
            chosen_low = low if chosen_low is None else min(max(chosen_low, low), high)
            chosen_high = high if chosen_high is None else max(min(chosen_high, high), chosen_low)
            values[name] = (chosen_low, chosen_high)
    overuse = cohort_filter.medication_overuse
    values["medication_overuse"] = ANY if overuse is None else ("true" if overuse else "false")
    values["min_cycles"] = max(1, cohort_filter.min_cycles)
    return values


def _set_widgets(cohort_filter: CohortFilter, options: dict[str, list]) -> None:
    for key, value in _widget_values(cohort_filter, options).items():
        st.session_state[key] = value


def _load_filter_file(options: dict[str, list]) -> None:
    upload = st.session_state.get("filter_file")
    if upload is None:
        return
    try:
        loaded = CohortFilter.from_json(upload.getvalue())
        _set_widgets(loaded, options)
        absent = [
            f"{name} {value}"
            for name in ("sex", "age_band", "clinic")
            for value in getattr(loaded, name)
            if value not in options[name]
        ]
        note = f" Not in these data, so left out: {', '.join(absent)}." if absent else ""
        loaded = f"Loaded the cohort filter from {ui_render.plain(upload.name)}.{note}"
        st.session_state["filter_file_message"] = ("success", loaded)
    except (ValueError, json.JSONDecodeError) as exc:
        st.session_state["filter_file_message"] = ("error", f"{upload.name} is not a cohort filter: {exc}")


def _default(key: str, value: object) -> dict[str, object]:
    """``value=`` for a widget only on its first run: afterwards session state (or the URL) holds it."""
    return {} if key in st.session_state else {"value": value}


def _clamp_range(key: str, low: object, high: object) -> None:
    """Keep a range widget's state inside the data's bounds (they move when the data or parameters do)."""
    if key in st.session_state and isinstance(st.session_state[key], (tuple, list)) and len(st.session_state[key]) == 2:
        a, b = st.session_state[key]
        a, b = min(max(a, low), high), min(max(b, low), high)
        st.session_state[key] = (a, max(a, b))


def cohort_builder(options: dict[str, list]) -> CohortFilter:
    """The filter widgets (bound to the URL) and the CohortFilter they describe."""
    bounds = _bounds(options)
    first, second, third = st.columns(3)
    sex = first.multiselect("Sex", options["sex"], key="sex", bind="query-params", placeholder="all")
    age_band = second.multiselect(
        "Age band", options["age_band"], key="age_band", bind="query-params", placeholder="all"
    )
    clinic = third.multiselect("Clinic", options["clinic"], key="clinic", bind="query-params", placeholder="all")
    first, second, third = st.columns(3)
    ranges: dict[str, tuple] = {}
    if "prior_preventives" in bounds and bounds["prior_preventives"][0] < bounds["prior_preventives"][1]:
        low, high = bounds["prior_preventives"]
        _clamp_range("prior_preventives", low, high)
        ranges["prior_preventives"] = first.slider(
            "Prior preventives (failed)",
            low,
            high,
            step=1,
            key="prior_preventives",
            bind="query-params",
            **_default("prior_preventives", (low, high)),
        )
    else:
        first.caption("Prior preventives: not recorded for this cohort.")
    if "baseline_mhd" in bounds and bounds["baseline_mhd"][0] < bounds["baseline_mhd"][1]:
        low, high = bounds["baseline_mhd"]
        _clamp_range("baseline_mhd", low, high)
        ranges["baseline_mhd"] = second.slider(
            "Baseline headache days / 28 d",
            low,
            high,
            step=0.5,
            key="baseline_mhd",
            bind="query-params",
            **_default("baseline_mhd", (low, high)),
        )
    if "first_injection" in bounds:
        low, high = bounds["first_injection"]
        _clamp_range("first_injection", low, high)
        period = third.date_input(
            "First injection between",
            min_value=low,
            max_value=high,
            format="YYYY-MM-DD",
            key="first_injection",
            bind="query-params",
            **_default("first_injection", (low, high)),
        )
        # While a range is being picked the widget holds one date only; the filter waits for both.
        ranges["first_injection"] = (
            tuple(period) if isinstance(period, (tuple, list)) and len(period) == 2 else (low, high)
        )
    first, second, third = st.columns(3)
    overuse = first.radio(
        "Medication overuse at baseline",
        OVERUSE_OPTIONS,
        key="medication_overuse",
        bind="query-params",
        horizontal=True,
    )
    most_cycles = max(1, options["n_cycles"][1] if options["n_cycles"] else 1)
    min_cycles = second.number_input(
        "At least … cycles started",
        min_value=1,
        max_value=most_cycles,
        step=1,
        key="min_cycles",
        bind="query-params",
        **_default("min_cycles", 1),
    )
    fields: dict[str, object] = {
        "sex": sex,
        "age_band": age_band,
        "clinic": clinic,
        "medication_overuse": None if overuse == ANY else overuse == "true",
        "min_cycles": 0 if int(min_cycles) <= 1 else int(min_cycles),
    }
    for name, (low, high) in ranges.items():
        low_field, high_field, _kind = RANGES[name]
        data_low, data_high = bounds[name]
        fields[low_field] = None if low <= data_low else low
        fields[high_field] = None if high >= data_high else high
    with third:
        reset, upload = st.columns(2)
        reset.button(
            "Reset filter",
            key="reset_filter",
            on_click=_set_widgets,
            args=(CohortFilter(), options),
            help="Select every treated patient again.",
            icon=":material/restart_alt:",
        )
        with upload.popover("Load a filter", icon=":material/upload_file:"):
            st.file_uploader(
                "A cohort_filter.json from this page, or an export's manifest.json",
                type=["json"],
                key="filter_file",
                on_change=_load_filter_file,
                args=(options,),
            )
    message = st.session_state.pop("filter_file_message", None)
    if message:
        (st.success if message[0] == "success" else st.error)(message[1])
    return CohortFilter(**fields)  # type: ignore[arg-type]


def view_controls(k_max: int, cohort_cycles: pd.DataFrame) -> tuple[int, int]:
    """The cycle chosen for subgroups and Table 1, and the last cycle the per-cycle charts show."""
    cycles = list(range(1, max(k_max, 1) + 1))
    left, right, _ = st.columns([1, 1.3, 1.7])
    chosen = left.selectbox(
        "Cycle for subgroups and Table 1", cycles, index=min(1, len(cycles) - 1), key="cycle", bind="query-params"
    )
    treated = cohort_cycles.loc[(cohort_cycles["cycle"] >= 1) & (cohort_cycles["n_treated"] >= MIN_SHOWN), "cycle"]
    auto = int(treated.max()) if len(treated) else max(k_max, 1)
    shown = right.selectbox(
        f"Per-cycle charts show cycles 1 to … (auto: {auto})",
        [AUTO, *cycles],
        key="cycles_to",
        bind="query-params",
        help=f"auto: the cycles with at least {MIN_SHOWN} treated patients in the cohort.",
    )
    return int(chosen), auto if shown == AUTO else int(shown)


def _request_mixed_model(key: tuple) -> None:
    # A callback, so the request survives the rerun in which the click arrives.
    st.session_state[MIXED_MODEL_REQUESTS] = {*st.session_state.get(MIXED_MODEL_REQUESTS, set()), key}


# --- rendering helpers -------------------------------------------------------------------------


def _table(
    frame: pd.DataFrame, key: str, caption: str | None = None, percent: tuple[str, ...] = (), height: int | None = None
) -> None:
    config: dict[str, object] = {}
    for name in frame.columns:
        if name in percent:
            config[name] = st.column_config.NumberColumn(name, format="percent")
        elif name == "p_value":
            config[name] = st.column_config.NumberColumn(name, format="%.3g")
        elif name == "caveats":
            config[name] = st.column_config.TextColumn(name, width="large")
        elif name in ("variable", "level") and not pd.api.types.is_numeric_dtype(frame[name]):
            config[name] = st.column_config.TextColumn(name, width="medium")
        elif name in DECIMALS and pd.api.types.is_float_dtype(frame[name]):
            config[name] = st.column_config.NumberColumn(name, format=f"%.{DECIMALS[name]}f")
        elif pd.api.types.is_datetime64_any_dtype(frame[name]):
            config[name] = st.column_config.DateColumn(name, format="YYYY-MM-DD")
    extra = {"height": height} if height else {}
    ui_render.table(frame, key=key, filename=f"outcomes_{key}.csv", caption=caption, column_config=config, **extra)


def _table_behind(frame: pd.DataFrame, key: str, caption: str | None = None, percent: tuple[str, ...] = ()) -> None:
    with st.expander("Table behind the chart (CSV download)"):
        _table(frame, key, caption, percent)


def _shown(frame: pd.DataFrame, last_cycle: int) -> pd.DataFrame:
    return frame.loc[frame["cycle"] <= last_cycle].reset_index(drop=True)


def _archive(files: dict[str, bytes]) -> bytes:
    """A ZIP of the export files, byte-stable for the same contents (fixed member dates)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16  # readable files when unpacked (the default is no permissions)
            archive.writestr(info, data)
    return buffer.getvalue()


def _data_argument(ctx: AppContext) -> str:
    """The --data folder of the equivalent command line (a placeholder for uploads)."""
    if ctx.source_label == state.SAMPLE_LABEL:
        return str(SAMPLE_DATA_DIR.relative_to(PROJECT_DIR))
    folder = state.configured_data_dir()
    if ctx.source_label.startswith(state.FOLDER_LABEL) and folder is not None:
        return str(folder)
    return "DATA_DIR"


# --- the page ----------------------------------------------------------------------------------


def _suppressed_view(cohort_cycles: pd.DataFrame, min_cell: int) -> None:
    """What a role held to small-cell suppression sees: the cohort's per-cycle table exactly as its suppressed
    download (``analytics.privacy.suppression``, as ``export --min-cell``), and no view built on single
    patients (charts, subgroups, Table 1, curves, models), whose small numbers would undo the suppression."""
    st.info(
        f"Your access is to aggregate tables with small cells suppressed (K = {min_cell}): counts from 1 to "
        f"{min_cell - 1} show as <{min_cell}, counts that would reveal one by subtraction as 'suppressed', and the "
        "rates, means and intervals that rest on them are left empty. The charts, subgroups, Table 1, "
        "time-to-response curves and models are not shown, since their small numbers would undo the suppression.",
        icon=":material/shield:",
    )
    shown = suppress_cohort_cycles(cohort_cycles, min_cell)
    st.dataframe(shown, hide_index=True, key="cohort_cycles_suppressed_table")
    st.caption(
        f"cohort_cycles.csv of this cohort with small-cell suppression (K = {min_cell}); the download holds "
        "exactly these values."
    )
    auth.download_button(  # aggregate and suppressed: checked against the role and audited (ui/auth.py)
        "Download CSV",
        csv_bytes(shown),
        file_name="cohort_cycles_suppressed.csv",
        kind="aggregate",
        rows=len(shown),
        suppressed=True,
        mime="text/csv",
        key="cohort_cycles_suppressed_csv",
        on_click="ignore",
    )


@dataclass(frozen=True)
class _Page:
    """What the tabs draw from: the context, the cohort and its per-cycle statistics, the chosen cycles."""

    ctx: AppContext
    cohort_filter: CohortFilter
    results: dict[str, object]
    chosen_cycle: int
    last_cycle: int
    attributes: pd.DataFrame
    n_selected: int


def _change_tab(page: _Page) -> None:
    """The change from baseline per cycle, a chart per measure."""
    results, last_cycle = page.results, page.last_cycle
    change = _shown(results["change"], last_cycle)
    # One measure under the other, each full width: side by side, a cycle's "C3 / n=207" labels overprint.
    for measure, label in outcomes.MEASURES.items():
        rows = change.loc[change["measure"] == measure].drop(columns=["measure", "measure_label"])
        with st.container():
            ui_render.chart_of(
                figures.build_change_figure,
                rows,
                label,
                key=f"change_{measure}",
                caption=f"Mean of (cycle − baseline) {label} per 28 recorded days among patients with an "
                "evaluable change (SPEC §3: both windows evaluable, baseline headache days > 0); "
                f"error bars: {T_METHOD}; n under each cycle.",
            )
            _table_behind(rows, f"change_{measure}")


def _responders_tab(page: _Page) -> None:
    """Responder rates per cycle and the cumulative response."""
    results, last_cycle = page.results, page.last_cycle
    rates = _shown(results["responders"], last_cycle)
    ui_render.chart_of(
        figures.build_responder_figure,
        rates,
        key="responders",
        caption=f"Share of evaluable patients (n under each cycle) whose monthly headache days fell by at "
        f"least 30, 50 or 75% from baseline; error bars: {WILSON_METHOD}.",
    )
    _table_behind(rates, "responders", percent=("rate", "ci_low", "ci_high"))
    cumulative = _shown(results["cumulative"], last_cycle)
    ui_render.chart_of(
        figures.build_cumulative_figure,
        cumulative,
        key="cumulative",
        caption=(
            "Under each cycle: responders / denominator of each bar. Completers: among eligible patients with "
            "at least k sessions, the share with a 50% response in any cycle 1..k. Intention-to-treat: among "
            "eligible patients who had time to complete k cycles by the data cut-off (stopped = non-responder). "
            "New responders: among patients with an evaluable change at cycle k and no 50% response before, the "
            "share responding at k "
            f"(SPEC §3). Error bars: {WILSON_METHOD}."
        ),
    )
    _table_behind(cumulative, "cumulative", percent=("rate", "ci_low", "ci_high"))


def _course_tab(page: _Page) -> None:
    """Onset and wearing-off within a cycle (its own part of the statistics)."""
    results = _cohort_results(page.ctx, page.cohort_filter, "weekly")
    profile: outcomes.WithinCycleProfile = results["weekly"]
    ui_render.chart_of(
        figures.build_weekly_profile_figure,
        profile,
        key="weekly_profile",
        caption=f"Onset and wearing-off. Markers: {profile.method}. Lines: {profile.moving_average_method}. "
        f"Dashed: the same patients' baseline (mean baseline headache days per 28 days / 4, "
        f"n = {profile.baseline_n}). Cycles 5 and later are pooled.",
    )
    with st.expander("Tables behind the chart (CSV download)"):
        _table(profile.weekly, "weekly_profile", caption="Weekly means; n = patient-cycles with an evaluable week.")
        _table(
            profile.daily,
            "daily_profile",
            caption="Per day since injection: recorded patient-days, headache days and the centred 7-day "
            "moving average (headache days per week).",
        )


def _time_to_response_tab(page: _Page) -> None:
    """Time to a first 50% response (its own part of the statistics)."""
    results = _cohort_results(page.ctx, page.cohort_filter, "time_to_response")
    analysis = page.ctx.analysis
    ttr: outcomes.TimeToResponse = results["time_to_response"]
    step = analysis.config.cycle_days
    ui_render.chart_of(figures.build_time_to_response_figure, ttr, step, key="time_to_response")
    median = ttr.curve.median()
    median_text = f"{median:.0f} days" if np.isfinite(median) else "not reached (fewer than half responded)"
    shares = ("responded", "ci_low", "ci_high", "stopped", "stopped_ci_low", "stopped_ci_high")
    st.caption(
        f"{ttr.definition} {ttr.curve.describe()}; {ttr.no_evaluable_cycle} eligible patient(s) had no "
        "evaluable cycle (they count, and can only stop or be censored). Time by which half of the "
        f"eligible patients had a first 50% response: {median_text}. Number at risk every {step} days "
        "(one cycle)."
    )
    _table(
        ttr.at_risk(step),
        "time_to_response_at_risk",
        percent=shares,
        caption="Number at risk and the shares responded and stopped, with 95% CIs, at each cycle length.",
    )
    with st.expander("Cumulative incidence table (CSV download)"):
        _table(ttr.cumulative(), "time_to_response_curve", percent=(*shares, "neither"))


def _subgroups_tab(page: _Page) -> None:
    """Responders by subgroup at the chosen cycle, and Table 1."""
    ctx, cohort_filter, chosen_cycle = page.ctx, page.cohort_filter, page.chosen_cycle
    forest, table_one = _cycle_results(ctx, cohort_filter, chosen_cycle)
    ui_render.chart_of(
        figures.build_forest_figure,
        forest,
        key="forest",
        caption=f"Share of patients with a 50% response at cycle {chosen_cycle} among those evaluable at that "
        f"cycle, by subgroup (responders / n at the right); squares scale with n; grey: attribute "
        f"not recorded; dashed line: the whole cohort. Error bars: {WILSON_METHOD}. Subgroups are "
        "descriptive: no test of interaction, and small subgroups have wide intervals.",
    )
    _table_behind(forest, "forest", percent=("rate", "ci_low", "ci_high"))
    st.subheader(f"Table 1: baseline characteristics by response at cycle {chosen_cycle}")
    formatted = table_one.formatted()
    _table(
        formatted,
        "table1",
        height=min(38 * len(formatted) + 40, 1400),
        caption="Categorical: n (% of the column's patients with the value recorded); continuous: mean (SD) and "
        "median [IQR]; 'missing' counts patients without the value. Response classes use the SPEC "
        "responder flags at the chosen cycle; 'not evaluable' reached the cycle without a change from "
        "baseline; 'did not reach' had fewer sessions.",
    )
    with st.expander("Table 1 in long form (numbers, CSV download)"):
        _table(table_one.long, "table1_long")


def _statistics_tab(page: _Page) -> None:
    """The Wilcoxon tests per cycle and the mixed model on demand."""
    ctx, cohort_filter, results, last_cycle = page.ctx, page.cohort_filter, page.results, page.last_cycle
    st.subheader("Change from baseline per cycle: Wilcoxon signed-rank test")
    wilcoxon = _shown(results["wilcoxon"], last_cycle)
    left, right = st.columns([3, 1])
    with left:
        _table(
            wilcoxon.drop(columns=["name", "estimate_label", "method", "ci_method"]).rename(
                columns={"estimate": "median_change"}
            ),
            "wilcoxon",
            caption="median_change: median change in headache days per 28 days (cycle − baseline); ci_low / "
            "ci_high: its 95% CI; statistic: Wilcoxon's W; caveats: those of the row only (the others are "
            "beside).",
        )
    with right:
        st.markdown(
            f"**Method:** {outcomes.WILCOXON_METHOD}.  \n**Estimate:** median change with a "
            f"{outcomes.MEDIAN_CI_METHOD}.  \n**n:** patients with an evaluable change at the cycle (in "
            "the table)."
        )
        st.markdown("**Caveats**\n" + "\n".join(f"- {c}" for c in outcomes.WILCOXON_CAVEATS))
    st.subheader("Headache days per 28 days over cycles: linear mixed model")
    request = (analysis_key(ctx), cohort_filter.to_json())  # this data, parameters and cohort
    left, right = st.columns([3, 1])
    with right:
        st.markdown(f"**Method:** {outcomes.MIXED_MODEL_METHOD}.")
        st.button(
            "Fit the mixed model",
            key="fit_mixed_model",
            type="primary",
            on_click=_request_mixed_model,
            args=(request,),
            help="Takes about a second for a few hundred patients, longer for thousands; the result is kept.",
        )
    if request in st.session_state.get(MIXED_MODEL_REQUESTS, set()):
        model = _mixed_model(ctx, cohort_filter)
        if model is None:
            left.info(
                "Not enough data to fit the model (it needs at least two patients and a treated cycle with "
                f"{outcomes.MIN_PATIENTS_PER_MODEL_CYCLE} or more evaluable patients)."
            )
        else:
            with left:
                _table(
                    model.coefficients,
                    "mixed_model",
                    caption="Each row: model-based mean change in headache days per 28 days at the cycle versus "
                    "baseline (cycle 0), with its Wald 95% CI and p-value; n_patients with an evaluable "
                    "window at that cycle.",
                )
            with right:
                st.markdown(
                    f"**n:** {model.n_patients:,} patients, {model.n_observations:,} evaluable windows (cycles "
                    f"{model.cycles[0]}–{model.cycles[-1]}).  \n"
                    f"**Baseline mean:** {model.baseline_mean:.1f} days.  \n"
                    f"**Between-patient variance:** {model.patient_variance:.2f}; residual "
                    f"{model.residual_variance:.2f} (ICC {model.icc:.2f}).  \n"
                    f"**Converged:** {'yes' if model.converged else 'no'}."
                )
                st.markdown("**Caveats**\n" + "\n".join(f"- {c}" for c in model.caveats))
    else:
        left.info("Press **Fit the mixed model** to fit it for this cohort (it is then kept for this filter).")


def _export_tab(page: _Page) -> None:
    """The filtered export: the ZIP, its files, the filter and the equivalent command."""
    ctx, cohort_filter, attributes, n_selected = page.ctx, page.cohort_filter, page.attributes, page.n_selected
    analysis, dataset = ctx.analysis, ctx.dataset
    st.markdown(
        f"**Filtered export** of {n_selected:,} patients: `patient_cycles.csv` and `cohort_cycles.csv` "
        "of the cohort, `rejected_rows.csv` of the whole dataset, `manifest.json` with the parameters, the "
        f"file hashes and the filter, and `{FILTER_FILE_NAME}`. Written by the same code as "
        "`python -m analytics export`, so the command below gives the same files (but for exported_at)."
    )

    def export_bundle() -> dict[str, bytes]:
        files = filtered_export(analysis, dataset, cohort_filter, attributes=attributes)
        files[FILTER_FILE_NAME] = cohort_filter.to_json().encode()
        return files

    # Checked against the user's role (the ZIP holds patient-level rows) and audited: ui/auth.py.
    auth.download_button(
        "Download the export (ZIP)",
        lambda: _archive(export_bundle()),
        kind="patient_level",
        file_name="outcomes_export.zip",
        mime="application/zip",
        key="export_zip",
        type="primary",
        on_click="ignore",
        icon=":material/download:",
    )
    columns = st.columns(5)
    names = ["patient_cycles.csv", "cohort_cycles.csv", "rejected_rows.csv", "manifest.json"]
    for column, name in zip(columns, names, strict=False):
        auth.download_button(
            name,
            lambda name=name: export_bundle()[name],
            kind=access.EXPORT_FILE_KINDS[name],
            container=column,
            file_name=name,
            key=f"export_{name}",
            on_click="ignore",
            mime="application/json" if name.endswith(".json") else "text/csv",
        )
    columns[4].download_button(
        FILTER_FILE_NAME,
        cohort_filter.to_json(),
        file_name=FILTER_FILE_NAME,
        mime="application/json",
        key="export_filter",
        on_click="ignore",
    )
    data_argument = _data_argument(ctx)
    st.markdown(
        "**The same export from the command line**"
        + (f" (with `{FILTER_FILE_NAME}` downloaded above):" if not cohort_filter.is_empty() else ":")
    )
    st.code(
        export_command(
            cohort_filter,
            analysis.config,
            data=data_argument,
            out="outcomes_export",
            filter_file=FILTER_FILE_NAME if not cohort_filter.is_empty() else None,
        ),
        language="bash",
        wrap_lines=True,  # a phone's width: wrapped rather than scrolled sideways
    )
    if not cohort_filter.is_empty():
        st.markdown("or with the filter as flags:")
        st.code(
            export_command(cohort_filter, analysis.config, data=data_argument, out="outcomes_export"),
            language="bash",
            wrap_lines=True,
        )
    if data_argument == "DATA_DIR":
        st.caption("DATA_DIR: the folder holding the uploaded files.")
    st.markdown(f"**{FILTER_FILE_NAME}**")
    st.code(cohort_filter.to_json(), language="json", wrap_lines=True)
    st.caption(f"Data as of {analysis.as_of:%Y-%m-%d}; manifest.json records the time of the download as exported_at.")


TABS: dict[str, Callable[[_Page], None]] = {
    "Change from baseline": _change_tab,
    "Responders": _responders_tab,
    "Within-cycle course": _course_tab,
    "Time to response": _time_to_response_tab,
    "Subgroups & Table 1": _subgroups_tab,
    "Statistics": _statistics_tab,
    "Export": _export_tab,
}
"""The page's tabs and what draws each: only the open one is drawn (its figures, tables and statistics built).
The open tab is kept in the page's link (``?outcomes_tab=``)."""


def render() -> None:
    """The Outcomes page: the cohort builder, the cohort's statistics in tabs, and its export."""
    ctx = context()
    analysis = ctx.analysis

    st.title("Outcomes")
    st.caption(
        "The researcher's view: build a cohort, read per-cycle response statistics with their n and method, "
        "and export the cohort's tables exactly as the command line would."
    )
    summary = st.container()

    attributes = _attributes(ctx)
    options = attribute_options(attributes)
    with st.expander("Cohort builder", expanded=True, icon=":material/filter_alt:"):
        cohort_filter = cohort_builder(options)
        st.caption(
            "Empty selections and full ranges mean *any*. A patient whose attribute is not recorded never "
            "matches a criterion on it. The filter is kept in the page's link."
        )
    selected = cohort_filter.select(attributes)
    selected_attributes = attributes.loc[attributes["patient_id"].isin(selected)].reset_index(drop=True)
    results = _cohort_results(ctx, cohort_filter, "statistics")
    cohort_cycles = results["cohort_cycles"]
    k_max = int(analysis.patient_cycles["cycle"].max()) if len(analysis.patient_cycles) else 0
    chosen_cycle, last_cycle = view_controls(k_max, cohort_cycles)

    min_cell = auth.enforced_min_cell()
    if min_cell is not None:  # the access file holds this role to aggregate tables with small cells suppressed
        with summary:
            _suppressed_view(cohort_cycles, min_cell)
        return

    n_selected, n_treated = len(selected), len(attributes)
    n_eligible = int(selected_attributes["eligible"].sum())
    at_cycle = cohort_cycles.loc[cohort_cycles["cycle"] == chosen_cycle, "n_evaluable"]
    n_at_cycle = int(at_cycle.iloc[0]) if len(at_cycle) else 0
    with summary:
        first, second, third, fourth = st.columns(4)
        first.metric(
            "Patients in the cohort",
            f"{n_selected:,}",
            border=True,
            help=f"Treated patients (at least one session) matching the filter, of {n_treated:,} treated.",
        )
        first.caption(f"of {n_treated:,} treated patients in the data")
        second.metric(
            "Eligible patients",
            f"{n_eligible:,}",
            border=True,
            help="Eligible for response statistics: an evaluable baseline with headache days > 0 (SPEC §3).",
        )
        second.caption("evaluable baseline with headache days > 0")
        third.metric(
            f"Evaluable at cycle {chosen_cycle}",
            f"{n_at_cycle:,}",
            border=True,
            help="Patients with a change from baseline at the chosen cycle (n_evaluable).",
        )
        criteria = cohort_filter.describe()
        fourth.metric("Filter criteria", len(criteria), border=True, help="\n".join(criteria) or "none: everyone")
        third.caption("with a change from baseline at that cycle")
        fourth.caption("; ".join(criteria) if criteria else "none: all treated patients")
    st.sidebar.markdown(f"**Outcomes cohort:** n = {n_selected:,} of {n_treated:,} treated patients")

    if n_selected == 0:
        st.warning("No treated patient matches this filter. Widen a criterion or press **Reset filter**.")
        st.stop()

    page = _Page(ctx, cohort_filter, results, chosen_cycle, last_cycle, attributes, n_selected)
    tabs = st.tabs(list(TABS), key="outcomes_tab", on_change="rerun", bind="query-params")
    for draw, tab in zip(TABS.values(), tabs, strict=True):
        if tab.open:
            with tab:
                draw(page)


if __name__ == "__main__":  # Streamlit ran this file on its own (legacy pages/ mode): see pages/__init__.py
    run_dashboard_instead()
