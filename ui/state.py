"""Which data, which parameters, the cached results, and the URL.

``dashboard.py`` calls ``sidebar()`` once per run, before the page runs: it draws the data-source
and parameter controls, loads the data, cuts them down to what the user may see (``scoped``),
analyses them through the caches and stores the ``ui.context.AppContext`` the pages read;
``banner()`` then tells the user, above every page, when the data were refused or the parameters
differ from the SPEC defaults.

Caching: the dataset, its analysis and the patient-level tables are held once with ``st.cache_resource``
and shared, read-only, by every rerun and session (``st.cache_data`` would unpickle a copy of hundreds
of megabytes on every rerun); pages and ``analytics`` never write into them (they copy what they
change). Scoping to the user's clinics happens before the analysis, so a shared entry only ever
holds one scope's data, keyed by it.

A data source is identified cheaply first (a folder by its files' names, modification times and
sizes; an upload by the SHA-256 of each file, computed once per uploaded file), so an unchanged source
is never read or hashed again on a rerun; the analysis is keyed on the SHA-256 of every file the
loader read and on the parameters (``ui.context.HASH_FUNCS``). Refusals are cached too, so a refused
upload is not re-validated on every click.

URL convention: the page is the path (``/patient``, ``/clinic``, ...); everything else that makes a
view shareable is a query parameter named in lower_snake_case, one value as text (dates
``YYYY-MM-DD``, booleans ``true``/``false``), several values as a repeated parameter. The analysis
parameters are widgets bound to the URL (``bind="query-params"``) under their ``AnalysisConfig``
names, e.g. ``?min_completeness=0.8``; pages do the same with their own widgets, or use
``query_value`` / ``set_query`` for state that is not a widget.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import pandas as pd
import streamlit as st

from analytics.definitions.clinical import ClinicalTables, clinical_tables
from analytics.definitions.clinical import patient_calendar as calendar_of_patient
from analytics.definitions.config import SAMPLE_DATA_DIR, AnalysisConfig, DateControl, sidebar_controls
from analytics.definitions.pipeline import Analysis, analyse
from analytics.ingest.archive import files_from_upload
from analytics.ingest.load import (
    DATA_SUFFIXES,
    FOLDER_LIMITS,
    UPLOAD_LIMITS,
    Dataset,
    DatasetRefused,
    load_dataset,
)
from analytics.output.store import READY, AnalysisStore, other_pages, other_pages_in_a_fork, other_pages_stored
from analytics.privacy import access
from analytics.scale.engine import auto_partitions
from analytics.scale.runners import EngineFailed
from ui import render, turns
from ui.context import CONTEXT_KEY, HASH_FUNCS, AppContext, current_user

logger = logging.getLogger("outcomes.dashboard")

DATA_DIR_VARIABLE = "OUTCOMES_DATA_DIR"
SAMPLE_LABEL = "Bundled sample data (synthetic)"
FOLDER_LABEL = "Clinic data folder"
UPLOAD_LABEL = "Upload files"

T = TypeVar("T")
SourceKey = tuple[object, ...]
Loaded = tuple[Dataset | None, str | None]


class Upload(Protocol):
    """What the sidebar uses of an uploaded file (``st.file_uploader`` returns such objects)."""

    name: str
    file_id: str

    def getvalue(self) -> bytes: ...


# --- the URL -------------------------------------------------------------------------------------


def query_value(name: str, default: str | None = None) -> str | None:
    """A query parameter's value (the last one when repeated), or ``default`` when absent."""
    values = st.query_params.get_all(name)
    return values[-1] if values else default


def query_values(name: str) -> list[str]:
    """Every value of a repeated query parameter (a multi-select filter), possibly none."""
    return list(st.query_params.get_all(name))


def _query_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def set_query(**values: object) -> None:
    """Write query parameters; ``None``, ``""`` or an empty list removes one, a list repeats it.

    Only parameters whose text changes are written, so calling this on every run is cheap and does
    not add history entries. Parameters bound to a widget (``bind="query-params"``) belong to that
    widget and must be changed through ``st.session_state`` instead.
    """
    for name, value in values.items():
        if value is None or value == "" or (isinstance(value, (list, tuple, set)) and not value):
            if name in st.query_params:
                del st.query_params[name]
            continue
        if isinstance(value, (list, tuple, set)):
            text: str | list[str] = [_query_text(v) for v in value]
            if st.query_params.get_all(name) != text:
                st.query_params[name] = text
        else:
            text = _query_text(value)
            if st.query_params.get_all(name) != [text]:
                st.query_params[name] = text


# --- analysis parameters -------------------------------------------------------------------------


def _help(name: str) -> str:
    """A control's help text from the parameter's own documentation in ``AnalysisConfig``."""
    field = next(f for f in dataclasses.fields(AnalysisConfig) if f.name == name)
    default = "empty (automatic)" if field.default is None else field.default
    return f"{field.metadata['doc']} Basis: {field.metadata['basis']}. Default: {default}."


def _reset_parameters() -> None:
    default = AnalysisConfig()
    for name, _ in sidebar_controls():
        st.session_state[name] = getattr(default, name)


def _parameter_controls() -> AnalysisConfig:
    """The parameter widgets (bound to the URL), as ``AnalysisConfig``'s field metadata describes them, and the
    configuration they describe; each widget's key is its parameter's name."""
    default = AnalysisConfig()
    with st.sidebar.expander("Analysis parameters (SPEC §3)", expanded=False):
        values: dict[str, object] = {}
        for name, control in sidebar_controls():
            value = getattr(default, name)
            if isinstance(control, DateControl):
                values[name] = st.date_input(
                    control.label, value=value, key=name, help=_help(name), bind="query-params", format="YYYY-MM-DD"
                )
                continue
            cast = float if isinstance(value, float) else int
            widget = st.slider if control.slider else st.number_input
            chosen = widget(
                control.label,
                min_value=cast(control.low),
                max_value=cast(control.high),
                value=value,
                step=cast(control.step),
                key=name,
                help=_help(name),
                bind="query-params",
            )
            values[name] = cast(chosen if chosen is not None else value)
        st.caption("Responder thresholds: " + ", ".join(f"{t}%" for t in default.responder_thresholds) + " (fixed).")
        st.button("Reset to the SPEC defaults", key="reset_parameters", on_click=_reset_parameters)
    return AnalysisConfig(**values)


# --- data sources and the caches -----------------------------------------------------------------


def folder_files(folder: Path) -> dict[str, bytes]:
    """The data files of a folder (CSV and Parquet, by name) as bytes."""
    return {
        p.name: p.read_bytes()
        for p in sorted(Path(folder).iterdir())
        if p.is_file() and p.suffix.lower() in DATA_SUFFIXES
    }


def folder_signature(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Each data file's name, modification time (ns) and size (parts of table folders too): changes with any."""
    files = [p for p in sorted(Path(folder).iterdir()) if p.is_file() and p.suffix.lower() in DATA_SUFFIXES]
    parts = [p for p in sorted(Path(folder).glob("*/*.parquet")) if p.is_file()]
    return tuple((p.relative_to(folder).as_posix(), p.stat().st_mtime_ns, p.stat().st_size) for p in files + parts)


def configured_data_dir() -> Path | None:
    """The clinic data folder from the environment or ``.streamlit/secrets.toml``, if any."""
    value = os.environ.get(DATA_DIR_VARIABLE)
    if not value:
        try:
            value = st.secrets.get(DATA_DIR_VARIABLE)
        except (FileNotFoundError, st.errors.StreamlitSecretNotFoundError):
            value = None
    return Path(value).expanduser() if value else None


@dataclass(frozen=True)
class _Source:
    """The chosen data source: what identifies its content (``key``) and how to read it, or why not."""

    label: str
    key: SourceKey | None = None
    read: Callable[[], Mapping[str, bytes]] | None = None
    refused: str | None = None
    notice: str | None = None
    folder: Path | None = None


UPLOAD_READING = threading.BoundedSemaphore(1)


@st.cache_resource(
    max_entries=4,
    show_spinner="Reading files… (checking and validating every row)",
    hash_funcs={_Source: lambda source: source.key},
)
def _load(source: _Source) -> Loaded:
    """The dataset, or the refusal in words; keyed on the source's ``key``, so it is read on a miss only.

    An upload is held to ``UPLOAD_LIMITS`` (checked before its data are read, so a hostile file is
    refused in a moment instead of taking the server's memory); a folder to ``FOLDER_LIMITS``. The
    limits bound one upload; ``UPLOAD_READING`` lets one upload be read at a time, so that several
    users uploading at once cannot add up to more than that (the others wait under the spinner).
    """
    upload = source.key is not None and source.key[0] == "upload"
    try:
        if source.folder is not None and not upload:
            return _load_folder(source), None
        with UPLOAD_READING if upload else nullcontext():
            return load_dataset(source.read(), UPLOAD_LIMITS if upload else FOLDER_LIMITS), None
    except DatasetRefused as exc:
        return None, _with_needed_columns(exc)
    except EngineFailed as exc:
        return None, f"The data folder could not be read: {exc}"


def _load_folder(source: _Source) -> Dataset:
    """A data folder's dataset from the analysis store (built by ``_build`` when it is big), or read in this
    process and stored on a miss (``AnalysisStore.folder_dataset``)."""
    assert source.folder is not None
    if (refusal := _REFUSALS.get(source.key)) is not None:
        raise refusal
    return AnalysisStore().folder_dataset(source.folder, limits=FOLDER_LIMITS)


# --- building a big folder's store in a child process, with progress ------------------------------

STORE_COMMAND = [sys.executable, "-m", "analytics", "store"]
"""The command that builds a folder's store (``analytics.cli``), followed by --data FOLDER --store ROOT."""
_BUILT: set[SourceKey] = set()
"""Folder sources whose store is known to be built (or small enough to read in the server): not checked again."""
_REFUSALS: dict[SourceKey, DatasetRefused] = {}
_BUILDING: dict[SourceKey, threading.Lock] = {}
_BUILDING_LOCK = threading.Lock()
# Where each step of ``store.build_folder`` ends on the progress bar (the split of the files is most of the work).
_STEPS = (
    ("splitting", 0.0, 0.35),
    ("checking", 0.35, 0.55),
    ("analysing", 0.55, 0.7),
    ("storing", 0.7, 0.8),
    ("computing cycles", 0.8, 0.82),
    ("computing the patient-level tables", 0.82, 0.95),
    ("computing the Clinic page's view", 0.95, 1.0),
)
_COUNT = re.compile(r"(\d+)/(\d+)\s*$")


def _progress(message: str, step: tuple[str, float, float]) -> tuple[float, tuple[str, float, float]]:
    """Where the bar stands after the child said ``message`` (a step's name, or "i/n" of the current step)."""
    text = message.strip()
    step = next((s for s in _STEPS if text.startswith(s[0])), step)
    _, start, stop = step
    if (count := _COUNT.search(text)) and int(count.group(2)):
        return start + (stop - start) * int(count.group(1)) / int(count.group(2)), step
    return start, step


def _build(source: _Source) -> None:
    """A big data folder's store (dataset, default analysis, patient-level tables), built once by
    ``python -m analytics store`` in a child process that uses every CPU, with its progress on the page.

    The server process never holds the whole computation (the child's memory is returned when it ends),
    and a second session asking for the same folder meanwhile waits for the first one's build. A folder of
    one partition is read in the server instead (``_load_folder``): a child would only add its start-up. If
    the child fails, ``_load_folder`` computes in the server, so nothing is lost but time.
    """
    if source.folder is None or source.key is None or source.key in _BUILT:
        return
    with _BUILDING_LOCK:
        lock = _BUILDING.setdefault(source.key, threading.Lock())
    another = lock.locked()  # another session's child process builds it: other sessions' pages may run meanwhile
    with st.spinner("Another session is building this data folder's analysis…") if another else nullcontext():
        with turns.waiting() if another else nullcontext(), lock:
            if source.key in _BUILT:
                return
            store = AnalysisStore()
            if auto_partitions(source.folder) > 1 and not store.has_dataset(store.folder_key(source.folder)):
                _build_in_child(source, store)
            _BUILT.add(source.key)


def _build_in_child(source: _Source, store: AnalysisStore) -> None:
    assert source.folder is not None and source.key is not None
    bar = st.progress(0.0, text="Reading the data folder for the first time…")
    command = [*STORE_COMMAND, "--data", str(source.folder), "--store", str(store.root)]
    root = Path(__file__).resolve().parent.parent
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen(
        command, cwd=root, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stderr is not None and child.stdout is not None
    said: list[str] = []
    step = _STEPS[0]
    with turns.waiting():  # the child computes: other sessions' pages may run meanwhile
        for line in child.stderr:
            said = [*said[-19:], line.rstrip()]
            if line.startswith(READY):  # the child goes on with the Outcomes statistics; the Patient page can be drawn
                finishing = threading.Thread(target=_finish_child, args=(child, said), daemon=True)
                _FINISHING[(source.folder.resolve(), store.root)] = finishing
                finishing.start()
                bar.empty()
                return
            fraction, step = _progress(line, step)
            bar.progress(min(fraction, 1.0), text=f"Reading the data folder for the first time: {line.strip()}")
        bar.empty()
        _finish_child(child, said, source.key)


def _finish_child(child: subprocess.Popen[str], said: list[str], key: SourceKey | None = None) -> None:
    """Wait for the build's child process (reading what it says); record a refusal, log a failure."""
    assert child.stderr is not None and child.stdout is not None
    for line in child.stderr:
        said = [*said[-19:], line.rstrip()]
    result = child.stdout.read().strip().splitlines()
    status = child.wait()
    answer = json.loads(result[-1]) if result else {}
    if "refused" in answer and key is not None:
        _REFUSALS[key] = DatasetRefused(**answer["refused"])
    elif status != 0:
        logger.error("python -m analytics store failed (exit %s); computing here:\n%s", status, "\n".join(said))


_FINISHING: dict[tuple[Path, Path], threading.Thread | None] = {}
"""Per data folder and analysis store, what computes the other pages' first views after the first page: the thread
that follows the build's child, or ``finish_in_background``'s."""


WAIT_LIMIT_S = 300.0
"""The longest a page waits for a result being computed in the background before it computes the result itself."""


def stored_result(ctx: AppContext, read: Callable[[AnalysisStore], T]) -> T:
    """``read`` (a result the analysis store keeps for the context's data folder, computed on a miss), waiting
    on a miss while the build's child process may be computing that very result (instead of computing it twice)."""
    assert ctx.data_dir is not None and ctx.analysis is not None
    store = AnalysisStore()
    finishing = _FINISHING.get((ctx.data_dir.resolve(), store.root))

    def wait(stored: Callable[[], bool]) -> None:
        # Computed in the background for the whole folder and the default parameters only.
        if finishing is None or not finishing.is_alive() or not _whole_folder_default(ctx):
            return
        deadline = time.monotonic() + WAIT_LIMIT_S  # a background process that hangs does not hang the page
        with st.spinner("Finishing this page's statistics in the background…"), turns.waiting():
            while finishing.is_alive() and not stored() and time.monotonic() < deadline:
                finishing.join(0.05)

    store.wait = wait
    return read(store)


def finish_in_background(ctx: AppContext) -> None:
    """Once a page of the clinic's data folder is drawn, the other pages' first views (``store.other_pages``: the
    Clinic page's view, the Outcomes page's statistics) are computed into the store in a forked process (on the
    other CPU, sharing the data in memory; a thread where processes cannot be forked), once per folder and server,
    while the user reads that page; a page that needs one of them meanwhile waits for it (``stored_result``) rather
    than computing it twice. A big folder's build child does this itself, and what is stored is not computed again
    (a restart). Only for the whole folder with the default parameters, as the child.
    """
    if ctx.data_dir is None or ctx.dataset is None or not _whole_folder_default(ctx):
        return
    store = AnalysisStore()
    key = (ctx.data_dir.resolve(), store.root)
    with _BUILDING_LOCK:
        if key in _FINISHING:
            return
        worker: threading.Thread | None = None  # None: a restart, which finds them stored
        if not all(other_pages_stored(store, ctx.dataset, ctx.analysis.config)):
            if (process := other_pages_in_a_fork(store, ctx.dataset, ctx.analysis)) is not None:
                # One thread waits for the process and reaps it when it ends; pages wait on that thread (two
                # waiters of one process would race to reap it).
                worker = threading.Thread(target=process.join, daemon=True)
            else:  # no fork on this system: a thread
                worker = threading.Thread(target=_other_pages, args=(store, ctx.dataset, ctx.analysis), daemon=True)
            worker.start()
        _FINISHING[key] = worker


def _whole_folder_default(ctx: AppContext) -> bool:
    """Whether the context is the whole data folder (a user who sees every clinic) with the default parameters:
    what the build's child and ``finish_in_background`` compute the other pages' first views for."""
    user = current_user()
    return (
        ctx.analysis is not None
        and ctx.analysis.config == AnalysisConfig()
        and user is not None
        and user.scope.everything
    )


BACKGROUND_DELAY_S = 0.5
"""How long ``finish_in_background``'s thread waits before it starts: the page that started it finishes sending
first (the thread would share the one Python core with it)."""


def _other_pages(store: AnalysisStore, dataset: Dataset, analysis: Analysis) -> None:
    time.sleep(BACKGROUND_DELAY_S)
    try:
        other_pages(store, dataset, analysis)
    except Exception:  # the pages compute what is missing themselves: nothing is lost but time
        logger.exception("computing the other pages' first views in the background failed")


def _with_needed_columns(refusal: DatasetRefused) -> str:
    """The refusal, then the columns the refused file needs (first, before the full data dictionary)."""
    needed = "; ".join(f"{c['column']} ({c['meaning']})" for c in refusal.needed_columns)
    return f"{refusal} The file needs these columns: {needed}." if needed else str(refusal)


@st.cache_resource(max_entries=8, show_spinner=False, hash_funcs=HASH_FUNCS)
def _scoped(dataset: Dataset, scope: access.Scope) -> Dataset:
    return access.apply_scope(dataset, scope)


def scoped(dataset: Dataset, config: AnalysisConfig) -> tuple[Dataset, AnalysisConfig]:
    """The part of ``dataset`` the current user may see, and the configuration to analyse it with.

    Without an identified user nothing is visible (fail closed). See ``analytics.privacy.access`` for
    the rules; the configuration differs from ``config`` only by a pinned as_of for clinic-scoped users.
    """
    user = current_user()
    scope = user.scope if user is not None else access.Scope(clinics=())
    if scope.everything:
        return dataset, config
    return _scoped(dataset, scope), access.pinned_config(dataset, config, scope)


# A few parameter sets per dataset; each entry holds the per-patient-day frame, so keep the count modest.
@st.cache_resource(
    max_entries=4, show_spinner="Computing cycles… (windows, rates and cohort statistics)", hash_funcs=HASH_FUNCS
)
def _analyse(dataset: Dataset, config: AnalysisConfig, stored: bool) -> Analysis:
    """The analysis, from the store when ``stored`` (the clinic's data folder; never an upload)."""
    return AnalysisStore().analysis(dataset, config) if stored else analyse(dataset, config)


@st.cache_resource(
    max_entries=4, show_spinner="Patient status… (response, onset, wearing-off, stopping rules)", hash_funcs=HASH_FUNCS
)
def clinical(ctx: AppContext) -> ClinicalTables:
    """``analytics.definitions.clinical.clinical_tables`` for the context's data and parameters, once for all pages.

    From the analysis store for the clinic's data folder (never for an upload), computed and stored on a miss.
    """
    if ctx.data_dir is None:
        return clinical_tables(ctx.analysis, ctx.dataset)
    return AnalysisStore().clinical(ctx.dataset, ctx.analysis)


# One patient's daily grid is small (hundreds of rows), so a copy per rerun costs nothing; many patients fit.
@st.cache_data(max_entries=64, show_spinner=False, hash_funcs=HASH_FUNCS)
def patient_calendar(ctx: AppContext, patient_id: str) -> pd.DataFrame:
    """``analytics.definitions.clinical.patient_calendar``: the chosen patient's daily grid, built on demand."""
    tables = clinical(ctx)
    return calendar_of_patient(ctx.analysis, patient_id, tables.params, tables.days)


def _upload_key(uploads: Iterable[Upload]) -> SourceKey:
    """The uploaded files' names and SHA-256, hashed once per uploaded file (by its upload id)."""
    known: dict[str, str] = st.session_state.get("_upload_sha256", {})
    digests = {u.file_id: known.get(u.file_id) or hashlib.sha256(u.getvalue()).hexdigest() for u in uploads}
    st.session_state["_upload_sha256"] = digests
    return ("upload", tuple(sorted((u.name, digests[u.file_id]) for u in uploads)))


def _folder_source(label: str, folder: Path, origin: str) -> _Source:
    if not folder.is_dir():
        return _Source(label, refused=f"The data folder {folder} ({origin}) does not exist or is not a folder.")
    signature = folder_signature(folder)
    if not signature:
        return _Source(label, refused=f"The data folder {folder} ({origin}) holds no CSV or Parquet files.")
    return _Source(label, ("folder", str(folder.resolve()), signature), lambda: folder_files(folder), folder=folder)


def _choose_source() -> _Source:
    folder = configured_data_dir()
    options = [SAMPLE_LABEL] + ([FOLDER_LABEL] if folder else []) + [UPLOAD_LABEL]
    choice = st.sidebar.radio("Data source", options, index=1 if folder else 0, key="data_source")
    if choice == FOLDER_LABEL and folder is not None:
        return _folder_source(f"{FOLDER_LABEL}: {folder.name}", folder, f"set by {DATA_DIR_VARIABLE}")
    if choice == UPLOAD_LABEL:
        uploads = st.sidebar.file_uploader(
            "sessions.csv, diary.csv and the optional files (CSV or Parquet), or one ZIP holding them",
            type=["csv", "parquet", "zip"],
            accept_multiple_files=True,
            key="uploads",
            help="Files stay in this session's memory and are never written to disk.",
        )
        if not uploads:
            return _Source(choice, notice="Upload at least sessions.csv and diary.csv (or one ZIP holding them).")
        label = f"Uploaded: {', '.join(u.name for u in uploads)}"
        return _Source(label, _upload_key(uploads), lambda: files_from_upload({u.name: u.getvalue() for u in uploads}))
    return _folder_source(SAMPLE_LABEL, SAMPLE_DATA_DIR, "run `make sample-data` to create it")


@st.cache_resource(max_entries=8, show_spinner=False, hash_funcs=HASH_FUNCS)
def _patients_with_sessions(dataset: Dataset) -> int:
    return int(dataset.tables["sessions"]["patient_id"].nunique())


def _source_status(ctx: AppContext, data_page: st.Page) -> None:
    """Under the controls: what was loaded, as of when, and a pointer to any rejected rows."""
    if ctx.dataset is None or ctx.analysis is None:
        return
    st.sidebar.caption(
        f"**{render.plain(ctx.source_label)}**  \n"
        f"{_patients_with_sessions(ctx.dataset):,} patients with sessions  \n"
        f"{ctx.dataset.row_count('sessions'):,} sessions · {ctx.dataset.row_count('diary'):,} diary days  \n"
        f"data as of {ctx.analysis.as_of:%Y-%m-%d}"
    )
    rejected = sorted((f.file, f.rows_rejected) for f in ctx.dataset.files if f.rows_rejected)
    if rejected:
        per_file = dict(rejected)
        st.sidebar.warning(
            f"{sum(per_file.values()):,} rows were rejected and are not used ("
            + ", ".join(f"{name}: {count:,}" for name, count in per_file.items())
            + ")."
        )
        st.sidebar.page_link(data_page, label="See the rejected rows and why", icon=":material/table_view:")


def sidebar(data_page: st.Page) -> AppContext:
    """Draw the shared sidebar, load and compute (cached) and store the context for the pages.

    ``data_page`` is the Data page, which the sidebar links to when rows were rejected.
    """
    st.sidebar.markdown("### Data")
    source = _choose_source()
    config = _parameter_controls()
    ctx = AppContext(
        source_label=source.label, config=config, refused=source.refused, notice=source.notice, data_dir=source.folder
    )
    if source.key is not None and source.read is not None:
        _build(source)
        dataset, refusal = _load(source)
        if dataset is None:
            ctx.refused = refusal
        else:
            # From here on only the user's clinics (and pseudonyms for researchers).
            dataset, scoped_config = scoped(dataset, config)
            ctx.dataset = dataset
            ctx.analysis = _analyse(dataset, scoped_config, source.folder is not None)
    _source_status(ctx, data_page)
    st.session_state[CONTEXT_KEY] = ctx
    return ctx


def parameter_changes(config: AnalysisConfig) -> str:
    """The parameters that differ from the SPEC defaults, in words (empty when none do)."""
    return "; ".join(
        f"{name} = {value} (default {'automatic' if default is None else default})"
        for name, (default, value) in config.differences_from_default().items()
    )


def banner(ctx: AppContext) -> None:
    """Above every page: a refused dataset in plain words, and parameters that differ from defaults."""
    if ctx.refused:
        st.error(f"**The data could not be used.** {render.plain(ctx.refused)}", icon=":material/block:")
    changes = parameter_changes(ctx.config)
    if changes:
        st.warning(f"**Analysis parameters differ from the SPEC defaults:** {changes}.", icon=":material/tune:")


def report_unexpected_error() -> str:
    """Call inside ``except``: log the traceback server-side and show a short reference instead."""
    reference = uuid.uuid4().hex[:8]
    logger.exception("Unexpected error while drawing the page (reference %s)", reference)
    st.error(
        "Something went wrong while drawing this page. The details were logged with reference "
        f"**{reference}**; please quote it when you report the problem. Reloading the page or going "
        "back to the default data and parameters usually gets you going again.",
        icon=":material/report:",
    )
    return reference
