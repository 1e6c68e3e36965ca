"""The app's shared context: what every page reads, set once per run before the page runs.

``dashboard.py`` first identifies the user (``ui.auth``, which stores a ``User`` here), then draws the
sidebar, which loads and analyses the chosen data (``ui.state``) and stores an ``AppContext`` here.
Pages read them with ``context()`` (which stops the page when there is nothing to show), ``current()``
(which does not) and ``current_user()``. ``ui.state`` and ``ui.auth`` both build on this module and
never import each other.

Cache keys: ``HASH_FUNCS`` tells ``st.cache_data`` and ``st.cache_resource`` what identifies the objects
handed to a cached function: a dataset by the SHA-256 of every file the loader read (a user's scope is
part of those digests, see ``analytics.privacy.access.apply_scope``), a configuration by its
parameters, a context by both. A cached function takes the objects it works on, never extra
arguments that only make up its key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from analytics.definitions.config import AnalysisConfig
from analytics.definitions.pipeline import Analysis
from analytics.ingest.load import Dataset
from analytics.privacy import access

CONTEXT_KEY = "app_context"
USER_KEY = "auth_user"


@dataclass(frozen=True)
class User:
    """The person using this session, with what the access file grants them."""

    email: str
    name: str
    role: str
    clinics: access.Clinics
    mode: str = "oidc"
    """``oidc`` (signed in) or ``local`` (single-user mode, no login)."""
    min_cell: int | None = None
    """Small-cell suppression enforced on this user's exports (from the access file)."""
    scope: access.Scope = field(default_factory=access.Scope, repr=False)

    @property
    def clinics_text(self) -> str:
        return "all clinics" if self.clinics == access.ALL_CLINICS else ", ".join(self.clinics)


@dataclass
class AppContext:
    """What every page needs: the source, the parameters and the results (or why there are none)."""

    source_label: str
    config: AnalysisConfig
    dataset: Dataset | None = None
    analysis: Analysis | None = None
    refused: str | None = None
    """Why the chosen data cannot be used (refused dataset or archive, missing folder), in plain words."""
    notice: str | None = None
    """What the user still has to do before there is anything to show (e.g. upload the files)."""
    data_dir: Path | None = None
    """The folder the data came from (sample data or the clinic folder); None for an upload."""


def current_user() -> User | None:
    """The user identified for this run by ``ui.auth.navigation`` (``None`` before that, or when refused)."""
    return st.session_state.get(USER_KEY)


def current() -> AppContext | None:
    """The context the sidebar stored for this run, whether or not there are results."""
    return st.session_state.get(CONTEXT_KEY)


def context() -> AppContext:
    """The context the sidebar stored for this run; stops the page with a message when there is no data."""
    ctx = current()
    if ctx is None or ctx.analysis is None or ctx.dataset is None:
        if ctx is not None and ctx.refused:
            st.info("Nothing to show until a dataset is loaded; the message above says what was wrong.")
        else:
            st.info(ctx.notice if ctx and ctx.notice else "No data loaded yet.")
        st.stop()
    return ctx


# --- cache keys ----------------------------------------------------------------------------------


def content_key(dataset: Dataset) -> tuple[tuple[str, str], ...]:
    """The SHA-256 of every file the loader read: what an analysis of the dataset really depends on."""
    return tuple((f.file, f.sha256) for f in dataset.files)


def parameters_key(config: AnalysisConfig) -> str:
    """The parameters as one text."""
    return json.dumps(config.parameters(), sort_keys=True)


def analysis_key(ctx: AppContext) -> tuple[object, ...]:
    """What the context's results depend on: its files and the parameters they were analysed with."""
    config = ctx.analysis.config if ctx.analysis is not None else ctx.config
    return (content_key(ctx.dataset) if ctx.dataset is not None else None, parameters_key(config))


HASH_FUNCS: dict[type, Callable[[object], object]] = {
    Dataset: content_key,
    AnalysisConfig: parameters_key,
    AppContext: analysis_key,
    access.Scope: lambda scope: scope.tag,
}
"""``hash_funcs`` for every cached function that takes a dataset, a configuration, a context or a scope."""
