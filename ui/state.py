"""The app's shared state: which data, which parameters, and the cached results for them.

``dashboard.py`` calls ``sidebar()`` once per run, before the page runs; it draws the data-source
and parameter controls and stores an ``AppContext`` in the session. Pages call ``context()`` to get
it. Loading and analysis are cached with ``st.cache_data`` keyed on the files' SHA-256 and the
parameters, so switching pages or patients never recomputes a definition.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import streamlit as st

from analytics.config import SAMPLE_DATA_DIR, AnalysisConfig
from analytics.load import Dataset, DatasetRefused, load_dataset
from analytics.pipeline import Analysis, analyse

DATA_DIR_VARIABLE = "OUTCOMES_DATA_DIR"
SAMPLE_LABEL = "Bundled sample data (synthetic)"
FOLDER_LABEL = "Clinic data folder"
UPLOAD_LABEL = "Upload files"


@dataclass
class AppContext:
    """What every page needs: the source, the parameters and the results (or why there are none)."""

    source_label: str
    config: AnalysisConfig
    dataset: Dataset | None = None
    analysis: Analysis | None = None
    refused: str | None = None


def _files_key(files: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode())
        digest.update(hashlib.sha256(files[name]).digest())
    return digest.hexdigest()


@st.cache_data(max_entries=4, show_spinner="Reading and validating the data files…")
def _load(files_key: str, _files: Mapping[str, bytes]) -> Dataset:
    return load_dataset(_files)


@st.cache_data(max_entries=16, show_spinner="Computing cycles and cohort statistics…")
def _analyse(files_key: str, parameters_key: str, _dataset: Dataset, _config: AnalysisConfig) -> Analysis:
    return analyse(_dataset, _config)


def folder_files(folder: Path) -> dict[str, bytes]:
    """The data files of a folder (CSV and Parquet, by name) as bytes."""
    return {
        p.name: p.read_bytes()
        for p in sorted(Path(folder).iterdir())
        if p.is_file() and p.suffix.lower() in (".csv", ".parquet")
    }


def configured_data_dir() -> Path | None:
    """The clinic data folder from the environment or ``.streamlit/secrets.toml``, if any."""
    value = os.environ.get(DATA_DIR_VARIABLE)
    if not value:
        try:
            value = st.secrets.get(DATA_DIR_VARIABLE)
        except (FileNotFoundError, st.errors.StreamlitSecretNotFoundError):
            value = None
    return Path(value) if value else None


def compute(files: Mapping[str, bytes], config: AnalysisConfig) -> tuple[Dataset, Analysis]:
    """Load and analyse through the caches."""
    key = _files_key(files)
    dataset = _load(key, files)
    parameters_key = json.dumps(config.parameters(), sort_keys=True)
    return dataset, _analyse(key, parameters_key, dataset, config)


def _parameter_controls() -> AnalysisConfig:
    default = AnalysisConfig()
    with st.sidebar.expander("Analysis parameters (SPEC §3)", expanded=False):
        hours = st.number_input("Headache day: at least … hours", 0.0, 24.0, float(default.headache_min_hours), 0.5, key="p_hours")
        baseline = st.number_input("Baseline window (days)", 7, 180, default.baseline_days, 1, key="p_baseline")
        cycle = st.number_input("Cycle length (days)", 28, 365, default.cycle_days, 1, key="p_cycle")
        completeness = st.slider("Minimum diary completeness", 0.0, 1.0, float(default.min_completeness), 0.05, key="p_completeness")
        window = st.number_input("Minimum window length (days)", 1, 365, default.min_window_days, 1, key="p_window")
        use_as_of = st.checkbox("Set a data cut-off (as_of)", key="p_use_as_of")
        as_of = st.date_input("Data cut-off", value=date.today(), key="p_as_of") if use_as_of else None
    return AnalysisConfig(
        headache_min_hours=float(hours),
        baseline_days=int(baseline),
        cycle_days=int(cycle),
        min_completeness=float(completeness),
        min_window_days=int(window),
        as_of=as_of,
    )


def _source_files() -> tuple[str, Mapping[str, bytes] | None, str | None]:
    """The chosen data source's label and files (None with a message when there are none yet)."""
    folder = configured_data_dir()
    options = [SAMPLE_LABEL] + ([FOLDER_LABEL] if folder else []) + [UPLOAD_LABEL]
    choice = st.sidebar.radio("Data source", options, index=1 if folder else 0, key="data_source")
    if choice == SAMPLE_LABEL:
        return choice, folder_files(SAMPLE_DATA_DIR), None
    if choice == FOLDER_LABEL and folder is not None:
        if not folder.is_dir():
            return choice, None, f"The data folder {folder} (from {DATA_DIR_VARIABLE}) does not exist."
        return f"{FOLDER_LABEL}: {folder.name}", folder_files(folder), None
    uploads = st.sidebar.file_uploader(
        "sessions.csv, diary.csv and optional files (CSV or Parquet)",
        type=["csv", "parquet"], accept_multiple_files=True, key="uploads",
    )
    if not uploads:
        return choice, None, "Upload at least sessions.csv and diary.csv to analyse your own data."
    return f"Uploaded: {', '.join(u.name for u in uploads)}", {u.name: u.getvalue() for u in uploads}, None


def sidebar() -> AppContext:
    """Draw the shared sidebar, compute (cached) and store the context for the pages."""
    st.sidebar.markdown("### Data")
    label, files, message = _source_files()
    config = _parameter_controls()
    ctx = AppContext(source_label=label, config=config, refused=message)
    if files is not None:
        try:
            ctx.dataset, ctx.analysis = compute(files, config)
        except DatasetRefused as exc:
            ctx.refused = f"The dataset was refused: {exc}"
    changed = config.differences_from_default()
    if changed:
        st.sidebar.warning(
            "Parameters differ from the SPEC defaults: "
            + "; ".join(f"{name} = {value} (default {default})" for name, (default, value) in changed.items())
        )
    if ctx.analysis is not None:
        st.sidebar.caption(f"{label} · data as of {ctx.analysis.as_of:%Y-%m-%d}")
    st.session_state["app_context"] = ctx
    return ctx


def context() -> AppContext:
    """The context stored by ``sidebar()``; stops the page with a message when there is no data."""
    ctx: AppContext | None = st.session_state.get("app_context")
    if ctx is None or ctx.analysis is None or ctx.dataset is None:
        st.info(ctx.refused if ctx and ctx.refused else "No data loaded yet.")
        st.stop()
    return ctx
