"""Data page: what was read and rejected, how complete the diaries are, the exports and the data dictionary.

The page only orchestrates: ``analytics.views.quality`` reconciles the rows and bins completeness,
``analytics.figures.data_quality`` draws it, ``analytics.output.export.export_files`` writes the exports (the
same function as ``python -m analytics export``, so the bytes are the same for the same data and
parameters) and ``analytics.views.dictionary`` generates the dictionary from the schemas, the configuration
and the analytics modules' own definitions. When the data were refused the dictionary is still shown,
since it says what the files must look like.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from analytics.definitions.config import PROJECT_DIR, AnalysisConfig
from analytics.definitions.pipeline import Analysis
from analytics.figures.data_quality import build_completeness_figure
from analytics.ingest.archive import build_zip
from analytics.ingest.load import Dataset
from analytics.output.export import (
    EXPORT_FILES,
    SUPPRESSED_EXPORT_FILES,
    csv_bytes,
    export_files,
    suppressed_export_files,
)
from analytics.privacy import access
from analytics.privacy.suppression import DEFAULT_MIN_CELL, suppress_rejections
from analytics.views import quality
from analytics.views.cohort_filter import CohortFilter, export_command
from analytics.views.dictionary import (
    column_dictionary,
    data_dictionary,
    definition_dictionary,
    definition_sections,
    parameter_dictionary,
)
from pages import run_dashboard_instead
from ui import auth
from ui import render as ui_render
from ui.context import HASH_FUNCS, AppContext, current

COUNT = st.column_config.NumberColumn(format="localized")
MIME = {".csv": "text/csv", ".json": "application/json"}
EXPORT_NOTES = {
    "patient_cycles.csv": "one row per treated patient and cycle (0 = baseline)",
    "cohort_cycles.csv": "one row per cycle: n, mean change with t-interval, responder rates with Wilson intervals",
    "patient_status.csv": "one row per treated patient: treatment state, next due date, stopping rules (SPEC §5)",
    "safety.csv": "adverse events: patients with an event, in the first two cycles, per 100 sessions (SPEC §5)",
    "rejected_rows.csv": "every rejected row (the first 100,000 of a file at most): file, line, patient_id, reason",
    "manifest.json": "as_of, every parameter, each input file's SHA-256 and row counts, version, time",
    "rejected_counts.csv": "rejected rows counted per file and reason (small counts suppressed)",
}


def _files_section(dataset: Dataset) -> None:
    st.subheader("Files read")
    files = quality.file_reconciliation(dataset)
    ui_render.table(
        files,
        key="data_files",
        filename="files_read.csv",
        caption="Each row read is either accepted or rejected (listed below with its reason); "
        "sha256 identifies the exact file content, as in the export manifest.",
        column_config={
            **{name: COUNT for name in ("rows_read", "rows_accepted", "rows_rejected", "rejected_rows_listed")},
            "sha256": st.column_config.TextColumn("sha256", width="small"),
        },
    )
    # Every row read is accepted or rejected, and every file of the source was read or is listed with why not.
    verdict = quality.reconciliation_statement(dataset)
    icons = {"success": ":material/check_circle:", "warning": ":material/warning:", "error": ":material/error:"}
    getattr(st, verdict.tone)(ui_render.plain(verdict.text), icon=icons[verdict.tone])
    unread = quality.files_not_read(dataset)
    if len(unread):
        ui_render.table(
            unread,
            key="data_files_not_read",
            filename="files_not_read.csv",
            caption="Files in the upload or folder that were not read, with the reason and a suggestion.",
        )


def _rejections_section(dataset: Dataset) -> None:
    st.subheader("Rejected rows")
    rejected, total = dataset.rejected, dataset.rejected_total()
    if not total:
        st.success("No rows were rejected.", icon=":material/check_circle:")
        return
    st.markdown(
        f"**{total:,} rows were rejected** and are not used in any figure or export. The line is the "
        "physical line in the file (the header is line 1), so you can find and correct each row at its source."
    )
    ui_render.table(
        quality.rejection_summary(dataset),
        key="data_reasons",
        filename="rejections_by_reason.csv",
        caption="Rejected rows by file and reason.",
        column_config={"rows": COUNT},
    )
    capped = dataset.rejected_listed_per_file()
    caption = f"All {len(rejected):,} rejected rows with the column and value that failed."
    if capped:
        caption = (
            f"The first {len(rejected):,} of the {total:,} rejected rows with the column and value that failed: "
            + ", ".join(f"{name} lists its first {n:,}" for name, n in capped.items())
            + " (the counts above and in the export manifest include every row)."
        )
    ui_render.table(rejected, key="data_rejected", filename="rejected_rows.csv", height=320, caption=caption)


def _completeness_section(analysis: Analysis) -> None:
    st.subheader("Diary completeness")
    table = analysis.patient_cycles
    if table.empty:
        st.info("No treated patients, so no windows to describe.")
        return
    summary = quality.completeness_summary(table, analysis.config)
    bins = quality.completeness_bins(table)
    ui_render.chart(
        ui_render.figure(build_completeness_figure, bins, analysis.config.min_completeness),
        key="data_completeness",
        phone=ui_render.figure(build_completeness_figure, bins, analysis.config.min_completeness, compact=True),
        caption=(
            f"n = {summary.windows:,} patient-cycle windows of {summary.patients:,} patients "
            f"({summary.baseline_windows:,} baselines, {summary.treatment_windows:,} treatment cycles; an ongoing "
            f"cycle counts the days so far). {summary.below_threshold:,} of {summary.windows:,} windows "
            f"({summary.below_share:.0%}) have fewer than {summary.min_completeness:.0%} of their days recorded "
            "and are not evaluable"
            + (f"; median completeness {summary.median:.0%}." if summary.median is not None else ".")
            + " A day without a diary entry is missing, never headache-free."
        ),
    )


def _exports_section(dataset: Dataset, analysis: Analysis, data_dir: Path | None) -> None:
    st.subheader("Exports")
    enforced = auth.enforced_min_cell()
    left, right = st.columns([3, 2], vertical_alignment="bottom")
    suppress = left.toggle(
        "Small-cell suppression, for sharing outside the clinic",
        value=enforced is not None,
        disabled=enforced is not None,
        key="export_suppress",
        help="Aggregate tables only (no patient ids anywhere): counts from 1 to K−1 show as <K, and cells that "
        "would let someone recover a hidden count by subtraction are suppressed too. Same as --min-cell K.",
    )
    min_cell = int(
        right.number_input(
            "K (smallest count shown)",
            min_value=2,
            max_value=100,
            value=max(enforced or 0, DEFAULT_MIN_CELL),
            key="export_min_cell",
            disabled=not suppress,
        )
    )
    if enforced is not None:
        min_cell = max(min_cell, enforced)
        left.caption(f"Suppression with K ≥ {enforced} is required for your role by the access file.")
    names = (
        SUPPRESSED_EXPORT_FILES
        if suppress
        else [name for name in EXPORT_FILES if name != "safety.csv" or analysis.safety is not None]
    )
    st.markdown(
        ("The suppressed aggregate export" if suppress else "The same files")
        + " as the command line writes for these data and parameters "
        f"(data as of {analysis.as_of:%Y-%m-%d}); the files are written when you click. The command:"
    )
    folder = "DATA_DIR"
    if data_dir is not None:  # the bundled sample data as the project-relative path `make` users know
        folder = str(data_dir.relative_to(PROJECT_DIR) if data_dir.is_relative_to(PROJECT_DIR) else data_dir)
    command = export_command(CohortFilter(), analysis.config, data=folder)
    st.code(command + (f" --min-cell {min_cell}" if suppress else ""), language="bash", wrap_lines=True)

    def files() -> dict[str, bytes]:
        if suppress:
            return suppressed_export_files(analysis, dataset, min_cell)
        return export_files(analysis, dataset)

    columns = st.columns(len(names) + 1)
    for column, name in zip(columns, names, strict=False):
        auth.download_button(  # checked against the user's role and audited: ui/auth.py
            name,
            lambda name=name: files()[name],
            kind=access.EXPORT_FILE_KINDS[name],
            container=column,
            file_name=name,
            mime=MIME[name[name.rfind(".") :]],
            suppressed=suppress,
            key=f"export_{name}",
            help=EXPORT_NOTES[name],
            on_click="ignore",
            icon=":material/download:",
            width="stretch",
        )
    auth.download_button(
        f"All {len(names)} (ZIP)",
        lambda: build_zip(files()),
        kind="aggregate" if suppress else "patient_level",
        container=columns[-1],
        suppressed=suppress,
        file_name=f"outcomes_export_{analysis.as_of:%Y-%m-%d}{'_suppressed' if suppress else ''}.zip",
        mime="application/zip",
        key="export_zip",
        help="The files above in one ZIP archive.",
        on_click="ignore",
        icon=":material/folder_zip:",
        type="primary",
        width="stretch",
    )


@dataclass(frozen=True)
class _DictionaryParts:
    csv: bytes
    core: tuple[str, str]  # heading, Markdown
    groups: list[tuple[str, str]]  # expander label, Markdown
    parameters: tuple[str, str]
    columns: str  # heading
    files: list[tuple[str, bool, str]]  # expander label, expanded, Markdown


@st.cache_data(max_entries=8, show_spinner=False, hash_funcs=HASH_FUNCS)
def _dictionary_parts(config: AnalysisConfig, as_of: str | None) -> _DictionaryParts:
    """The dictionary's sections, as the page shows them, and its CSV for one set of parameters (built once: the
    Markdown of its entries took about 20 ms of every Data page)."""
    columns, parameters = column_dictionary(), parameter_dictionary(config, as_of)
    definitions = definition_dictionary(config, as_of)
    core = definitions["source"] == "SPEC §3"
    return _DictionaryParts(
        csv=csv_bytes(data_dictionary(config, as_of)),
        core=(f"##### Core definitions (SPEC §3, {int(core.sum())})", _definitions_markdown(definitions[core])),
        # readable titles, not module names
        groups=[
            (f"{title} ({len(group)})", _definitions_markdown(group))
            for title, group in definition_sections(definitions[~core])
        ],
        parameters=(f"##### Parameters ({len(parameters)})", _parameters_markdown(parameters)),
        columns=f"##### Input files and columns ({len(columns)} rules)",
        files=[_file_part(str(file), rules) for file, rules in columns.groupby("file", sort=False)],
    )


def _file_part(file: str, rules: pd.DataFrame) -> tuple[str, bool, str]:
    """One input file's expander label, whether it opens expanded (a required file), and its rules' Markdown."""
    required = bool(rules.iloc[0]["file_required"])
    label = f"{file}: {'required' if required else 'optional'}, one row per {rules.iloc[0]['one_row_per']}"
    return label, required, _columns_markdown(rules)


def _definitions_markdown(definitions: pd.DataFrame) -> str:
    lines = []
    for row in definitions.itertuples():
        details = " · ".join(
            part
            for part in (
                f"parameters: {ui_render.plain(row.parameters)}" if row.parameters else "",
                f"columns: {ui_render.plain(row.columns)}" if row.columns else "",
            )
            if part
        )
        lines.append(
            f"- **{ui_render.plain(row.term)}**: {ui_render.plain(row.definition)}"
            + (f"  \n  :gray[{details}]" if details else "")
        )
    return "\n".join(lines)


def _dictionary_section(ctx: AppContext) -> None:
    st.subheader("Data dictionary")
    as_of = ctx.analysis.as_of.date().isoformat() if ctx.analysis is not None else None
    parts = _dictionary_parts(ctx.config, as_of)
    st.markdown(
        "Generated from the code that runs: every definition with the parameter values in use filled in, the "
        "parameters, and the input contract (every column, its valid values and the reason a row is rejected)."
    )
    st.download_button(
        "Download the data dictionary (CSV)",
        parts.csv,
        file_name="data_dictionary.csv",
        mime="text/csv",
        key="dictionary_csv",
        on_click="ignore",
        icon=":material/download:",
    )
    for text in parts.core:
        st.markdown(text)
    for label, text in parts.groups:
        with st.expander(label):
            st.markdown(text)
    for text in parts.parameters:
        st.markdown(text)
    st.markdown(parts.columns)
    for label, expanded, text in parts.files:
        with st.expander(label, expanded=expanded):
            st.markdown(text)


def _parameters_markdown(parameters: pd.DataFrame) -> str:
    lines = []
    for row in parameters.itertuples():
        value = f"**{ui_render.plain(row.value)}**"
        if row.differs_from_default:
            value += f" :orange[(changed; default {ui_render.plain(row.default)})]"
        lines.append(
            f"- `{row.parameter}` = {value}: {ui_render.plain(row.meaning)}  \n"
            f"  :gray[basis: {ui_render.plain(row.basis)} · {ui_render.plain(row.source)}]"
        )
    return "\n".join(lines)


def _columns_markdown(rules: pd.DataFrame) -> str:
    lines = []
    for row in rules.itertuples():
        rejected = f" Rejected as: *{ui_render.plain(row.rejection_reason)}*." if row.rejection_reason else ""
        if row.column == "(row)":
            lines.append(f"- Row rule: {ui_render.plain(row.valid_values)}.{rejected}")
        else:
            required = " (required)" if row.required else ""
            lines.append(
                f"- `{row.column}`{required}: {ui_render.plain(row.meaning)}  \n"
                f"  :gray[valid: {ui_render.plain(row.valid_values)}.{rejected}]"
            )
    return "\n".join(lines)


def _suppressed_files_section(dataset: Dataset, min_cell: int) -> None:
    """The files and rejections as a role held to small-cell suppression may see them: rows read, accepted
    and rejected per file and rejected rows per reason, with the suppression of ``export --min-cell``
    (``analytics.privacy.suppression.suppress_rejections``), and no listing of rejected rows or histogram."""
    st.subheader("Files read")
    st.info(
        f"Your access is to aggregate tables with small cells suppressed (K = {min_cell}): counts from 1 to "
        f"{min_cell - 1} show as <{min_cell}, and counts that would reveal one by subtraction as 'suppressed'. "
        "Rejected rows are counted, not listed.",
        icon=":material/shield:",
    )
    reasons, counts = suppress_rejections(dataset.file_summary(), dataset.rejection_counts(), min_cell)
    st.dataframe(counts, hide_index=True, key="data_files_suppressed")
    st.subheader("Rejected rows by reason")
    st.dataframe(reasons, hide_index=True, key="data_reasons_suppressed")


def render() -> None:
    """The Data page: files, rejections, completeness and exports when data are loaded; the dictionary always."""
    ctx = current()
    st.title("Data")
    if ctx is not None and ctx.dataset is not None and ctx.analysis is not None:
        st.caption(f"{ctx.source_label} · data as of {ctx.analysis.as_of:%Y-%m-%d}")
        min_cell = auth.enforced_min_cell()
        if min_cell is None:
            _files_section(ctx.dataset)
            _rejections_section(ctx.dataset)
            _completeness_section(ctx.analysis)
        else:  # on screen as in this role's downloads: counts suppressed, no row-level listing
            _suppressed_files_section(ctx.dataset, min_cell)
        _exports_section(ctx.dataset, ctx.analysis, ctx.data_dir)
    elif ctx is not None and ctx.notice:
        st.info(ctx.notice)
    elif ctx is not None and ctx.refused:
        st.info(
            "The files were not loaded (see the message above). The data dictionary below says what they must contain."
        )
    if ctx is not None:
        _dictionary_section(ctx)


if __name__ == "__main__":  # Streamlit ran this file on its own (legacy pages/ mode): see pages/__init__.py
    run_dashboard_instead()
