"""The app shell under Streamlit's AppTest: pages, data sources, refusals, parameters, caching, errors.

AppTest cannot drive ``st.file_uploader``, so refused data reach the app the way a clinic's folder
does (``OUTCOMES_DATA_DIR``); the upload and ZIP functions are tested directly in test_archive.py.
Datasets are the bundled sample data (or, in a checkout without it, a small synthetic cohort) and
hand-written folders from the ``write_dataset`` fixture.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
import streamlit as st
from page_helpers import switch_page
from streamlit.testing.v1 import AppTest

from analytics.definitions.config import AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.ingest.load import load_dataset
from analytics.output import store as stored
from analytics.privacy.links import escape_markdown
from ui import auth, context, state

PROJECT_DIR = Path(__file__).resolve().parent.parent
DASHBOARD = str(PROJECT_DIR / "dashboard.py")
PAGES = ("patient", "clinic", "outcomes", "data")
SESSIONS = "patient_id,session_date\nP1,2024-03-01\nP1,2024-05-24\n"
DIARY_HEADER = "patient_id,date,headache_hours,migraine,severity,acute_medication\n"


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled sample data, or a small synthetic cohort where the checkout has none."""
    if (PROJECT_DIR / "sample_data" / "sessions.csv").is_file():
        return PROJECT_DIR / "sample_data"
    folder = tmp_path_factory.mktemp("sample")
    subprocess.run(
        [sys.executable, "-m", "analytics.synth", "--patients", "60", "--seed", "3", "--out", str(folder)],
        cwd=PROJECT_DIR,
        check=True,
        capture_output=True,
    )
    return folder


@pytest.fixture
def on_sample(sample_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the app at the sample data: its default source, or the folder variable when generated."""
    if sample_dir == PROJECT_DIR / "sample_data":
        monkeypatch.delenv(state.DATA_DIR_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(state.DATA_DIR_VARIABLE, str(sample_dir))
    return sample_dir


def app_on(page: str) -> AppTest:
    at = AppTest.from_file(DASHBOARD, default_timeout=120)
    switch_page(at, f"pages/{page}.py")
    return at


def texts(elements: object) -> list[str]:
    return [str(e.value) for e in elements]


def diary_text(days: int, first: str = "2024-02-01", headache: float = 5.0) -> str:
    dates = __import__("pandas").date_range(first, periods=days)
    return DIARY_HEADER + "".join(f"P1,{d:%Y-%m-%d},{headache},true,2,false\n" for d in dates)


@pytest.mark.parametrize("page", PAGES)
def test_smoke_each_page_loads_on_the_sample_data(on_sample: Path, page: str) -> None:
    at = app_on(page)
    at.run()
    assert not at.exception, at.exception
    assert not at.error, texts(at.error)
    assert texts(at.title)  # the page drew its title
    assert texts(at.radio(key="data_source"))  # and the shared sidebar ran in the same run
    assert len(at.sidebar.children) > 0


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (
            {"sessions.csv": SESSIONS, "diary.csv": "patient_id,date,headache_hours,Name\nP1,2024-03-02,5,Ann\n"},
            "diary.csv: column 'Name' looks like a direct identifier",
        ),
        (
            {"sessions.csv": SESSIONS, "diary.csv": "patient_id,date,migraine\nP1,2024-03-02,true\n"},
            "diary.csv: required column 'headache_hours' is missing",
        ),
        ({"sessions.csv": SESSIONS}, "diary.csv: required file is missing"),
        (
            {"sessions.csv": SESSIONS, "diary.parquet": b"PAR1 this is not parquet"},
            "diary.parquet: cannot be read as Parquet",
        ),
        (
            {"sessions.csv": SESSIONS, "diary.csv": "patient_id,date,headache_hours\nP1\x00,2024"},
            "diary.csv: cannot be parsed as CSV",
        ),
    ],
)
def test_a_refused_dataset_shows_the_reason_not_an_exception(
    write_dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str | bytes], expected: str
) -> None:
    folder = write_dataset(tmp_path, extra=files)
    monkeypatch.setenv(state.DATA_DIR_VARIABLE, str(folder))
    for page in ("patient", "data"):
        at = app_on(page)
        at.run()
        assert not at.exception, at.exception
        errors = texts(at.error)
        # The file and column names come from the data, so they are shown as typed (escaped Markdown).
        assert len(errors) == 1 and escape_markdown(expected) in errors[0], errors
        assert errors[0].startswith("**The data could not be used.**")
    assert "Data dictionary" in texts(at.subheader)  # the Data page still says what the files must hold


@pytest.mark.parametrize(("make_folder", "expected"), [("missing", "does not exist"), ("empty", "holds no CSV")])
def test_an_unusable_data_folder_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_folder: str, expected: str
) -> None:
    folder = tmp_path / "clinic_export"
    if make_folder == "empty":
        folder.mkdir()
    monkeypatch.setenv(state.DATA_DIR_VARIABLE, str(folder))
    at = app_on("clinic")
    at.run()
    assert not at.exception
    assert escape_markdown(expected) in texts(at.error)[0] and escape_markdown(folder) in texts(at.error)[0]


def test_choosing_upload_without_files_asks_for_them(on_sample: Path) -> None:
    at = app_on("outcomes")
    at.run()
    at.radio(key="data_source").set_value(state.UPLOAD_LABEL).run()
    assert not at.exception and not at.error
    assert any("Upload at least sessions.csv and diary.csv" in t for t in texts(at.info))


def test_a_parameter_change_changes_the_numbers_shown(on_sample: Path) -> None:
    table = analyse(load_dataset(on_sample), AnalysisConfig()).patient_cycles
    total = int(table["completeness"].notna().sum())
    below = {t: int((table["completeness"] < t).sum()) for t in (0.7, 0.9)}
    assert below[0.7] != below[0.9]  # the sample data must make the check meaningful
    at = app_on("data")
    at.run()
    assert any(f"{below[0.7]:,} of {total:,} windows" in c and "fewer than 70%" in c for c in texts(at.caption))
    assert not at.warning

    at.slider(key="min_completeness").set_value(0.9).run()
    assert not at.exception
    assert any(f"{below[0.9]:,} of {total:,} windows" in c and "fewer than 90%" in c for c in texts(at.caption))
    assert any("min_completeness = 0.9 (default 0.7)" in w for w in texts(at.warning))

    at.button(key="reset_parameters").click().run()
    assert at.slider(key="min_completeness").value == pytest.approx(0.7)
    assert not at.warning


def test_a_parameter_in_the_url_is_applied(on_sample: Path) -> None:
    at = app_on("data")
    at.query_params["min_completeness"] = "0.8"
    at.query_params["baseline_days"] = "42"
    at.run()
    assert not at.exception
    assert at.slider(key="min_completeness").value == pytest.approx(0.8)
    assert at.number_input(key="baseline_days").value == 42
    warning = " ".join(texts(at.warning))
    assert "baseline_days = 42 (default 28)" in warning and "min_completeness = 0.8 (default 0.7)" in warning


def test_parameters_and_source_survive_a_page_switch(on_sample: Path) -> None:
    at = app_on("data")
    at.run()
    at.number_input(key="headache_min_hours").set_value(6.0).run()
    switch_page(at, "pages/outcomes.py").run()
    assert at.number_input(key="headache_min_hours").value == 6.0
    assert any("headache_min_hours = 6.0 (default 4.0)" in w for w in texts(at.warning))
    assert at.session_state[context.CONTEXT_KEY].config.headache_min_hours == 6.0


class _Counter:
    def __init__(self, function: object) -> None:
        self.function, self.calls = function, 0

    def __call__(self, *args: object, **kwargs: object) -> object:
        self.calls += 1
        return self.function(*args, **kwargs)


def test_reruns_and_page_switches_do_not_load_or_compute_again(
    write_dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_dataset(tmp_path, sessions=SESSIONS, diary=diary_text(120))
    monkeypatch.setenv(state.DATA_DIR_VARIABLE, str(folder))
    loads, analyses = _Counter(stored.load_dataset), _Counter(stored.analyse)
    monkeypatch.setattr(stored, "load_dataset", loads)  # a data folder is read and analysed through the store
    monkeypatch.setattr(stored, "analyse", analyses)
    st.cache_data.clear()
    st.cache_resource.clear()  # the dataset and analysis are shared resources (ui.state)

    at = app_on("data")
    at.run()
    at.run()
    switch_page(at, "pages/clinic.py").run()
    assert (loads.calls, analyses.calls) == (1, 1)

    at.slider(key="min_completeness").set_value(0.5).run()  # new parameters: analyse, do not load
    assert (loads.calls, analyses.calls) == (1, 2)
    at.slider(key="min_completeness").set_value(0.7).run()  # back to the first parameters: both cached
    assert (loads.calls, analyses.calls) == (1, 2)

    (folder / "diary.csv").write_text(diary_text(121))  # the folder changed: read it again
    at.run()
    assert (loads.calls, analyses.calls) == (2, 3)
    assert not at.exception


def test_pages_never_write_into_the_shared_dataset_analysis_or_patient_tables(
    on_sample: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """They are held once with st.cache_resource and shared by every rerun and session: a page that changed one
    in place would change what every other user sees. Each is compared with a copy taken when it was made."""
    import copy

    import pandas as pd

    made: list[tuple[object, object]] = []

    def kept(function):
        def wrapper(*args, **kwargs):
            result = function(*args, **kwargs)
            made.append((result, copy.deepcopy(result)))
            return result

        return wrapper

    monkeypatch.setenv("OUTCOMES_STORE_DIR", str(tmp_path / "store"))  # an empty store: everything is computed here
    monkeypatch.setattr(stored, "load_dataset", kept(stored.load_dataset))
    monkeypatch.setattr(stored, "analyse", kept(stored.analyse))
    monkeypatch.setattr(stored, "clinical_tables", kept(stored.clinical_tables))
    st.cache_data.clear()
    st.cache_resource.clear()
    at = app_on("patient")
    at.run()
    for patient_id in list(at.selectbox(key="patient").options)[1:4]:
        at.selectbox(key="patient").set_value(patient_id).run()
    for page in ("clinic", "outcomes", "data", "patient"):
        switch_page(at, f"pages/{page}.py").run()
    assert not at.exception
    assert len(made) == 3
    for shared, original in made:
        frames = [(name, getattr(shared, name), getattr(original, name)) for name in vars(shared)]
        frames += [(name, shared.tables[name], original.tables[name]) for name in getattr(shared, "tables", {})]
        checked = 0
        for name, now, before in frames:
            if isinstance(now, pd.DataFrame):
                pd.testing.assert_frame_equal(now, before, obj=f"{type(shared).__name__}.{name}")
                checked += 1
        assert checked >= 3


def test_an_unexpected_error_shows_a_reference_and_logs_the_details(
    on_sample: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from analytics.views import quality

    def broken(*args: object) -> None:
        raise RuntimeError("a bug in the data page")

    monkeypatch.setattr(quality, "file_reconciliation", broken)
    monkeypatch.delenv("PYTEST_CURRENT_TEST")  # behave as in production
    at = app_on("data")
    with caplog.at_level(logging.ERROR, logger="outcomes.dashboard"):
        at.run()
    assert not at.exception
    message = texts(at.error)[0]
    reference = re.search(r"reference \*\*([0-9a-f]{8})\*\*", message).group(1)
    assert "a bug in the data page" not in message  # details stay on the server
    record = next(r for r in caplog.records if reference in r.getMessage())
    assert record.exc_info and "a bug in the data page" in str(record.exc_info[1])


def test_under_pytest_an_unexpected_error_is_raised_after_the_message(
    on_sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from analytics.views import quality

    monkeypatch.setattr(quality, "file_reconciliation", lambda dataset: 1 / 0)
    at = app_on("data")
    at.run()
    assert at.exception  # a test can never pass over a broken page
    assert "Something went wrong while drawing this page" in texts(at.error)[0]


def test_config_toml_is_production_and_shares_the_plotly_colours() -> None:
    import tomllib

    from analytics.figures import theme

    config = tomllib.loads((PROJECT_DIR / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"
    assert config["browser"]["gatherUsageStats"] is False
    assert config["server"]["maxUploadSize"] == 200
    assert config["theme"]["primaryColor"].lower() == theme.PRIMARY.lower()
    assert config["theme"]["textColor"].lower() == theme.TEXT.lower()
    assert config["theme"]["backgroundColor"].lower() == "#ffffff"
    assert [c.lower() for c in config["theme"]["chartCategoricalColors"]] == [c.lower() for c in theme.SEQUENCE]
    assert config["runner"]["magicEnabled"] is False  # a bare expression is never written (as Markdown) to a page


def test_figures_are_shared_by_content_never_by_shape_or_builder_name() -> None:
    """ui.render.figure keeps one figure per builder and arguments' content: equal data give the one shared
    figure; a frame of the same shape with one value changed, or past Streamlit's own 100,000-row sampling, or
    a builder of the same name in another module, gives its own."""
    import pandas as pd

    from analytics.figures import outcomes as outcome_figures
    from analytics.figures import patient as patient_figures
    from ui import render as ui_render

    calls: list[int] = []

    def build(frame: pd.DataFrame, compact: bool = False) -> dict:
        calls.append(len(frame))
        return {"total": int(frame["x"].sum()), "compact": compact}

    st.cache_resource.clear()
    frame = pd.DataFrame({"x": range(150_000)})
    first = ui_render.figure(build, frame)
    assert ui_render.figure(build, frame.copy()) is first and len(calls) == 1  # same content: not drawn again
    changed = frame.copy()
    changed.loc[149_999, "x"] = 0  # one value of 150,000: Streamlit's sampling would very likely miss it
    assert ui_render.figure(build, changed)["total"] == first["total"] - 149_999
    assert ui_render.figure(build, frame, compact=True)["compact"] is True and len(calls) == 3
    assert ui_render._function_name(outcome_figures.build_weekly_profile_figure) != ui_render._function_name(
        patient_figures.build_weekly_profile_figure
    )
    retyped = frame.astype("float64")  # same values, another type: another key
    assert ui_render._content(retyped) != ui_render._content(frame)


def test_a_shared_table_is_not_changed_by_the_page_that_shows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables are formatted once (ui.render._shared_shown) and shared; what st.dataframe is given must not be
    the shared config, and a table without links does not get the links of another page's."""
    import pandas as pd

    from ui import render as ui_render

    monkeypatch.setattr(auth, "table_download", lambda *args, **kwargs: None)
    monkeypatch.setattr(st, "dataframe", lambda *args, **kwargs: None)
    st.cache_resource.clear()
    frame = pd.DataFrame({"patient": ["P1", "P2"], "value": [1.0, None]})
    ui_render.table(frame, key="t", filename="t.csv", links={"patient": "/patient?patient="})
    shown, config = ui_render._shared_shown(frame, {}, {}, ())
    assert shown.column("patient").to_pylist() == ["P1", "P2"] and "patient" not in config
    assert shown.column("value").to_pylist()[1] == "—"
    linked, linked_config = ui_render._shared_shown(frame, {}, {"patient": "/patient?patient="}, ())
    assert linked.column("patient").to_pylist() == ["/patient?patient=P1", "/patient?patient=P2"]
    assert linked_config["patient"]["type_config"]["type"] == "link"


# --- the shell's structure -------------------------------------------------------------------------


def _imported_modules(path: Path) -> set[str]:
    """The modules a file imports (``from a import b`` counts as a and a.b), at any depth in the file."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_ui_modules_form_layers_without_cycles() -> None:
    graph = {
        f"ui.{path.stem}": {name for name in _imported_modules(path) if name.startswith("ui.")}
        for path in (PROJECT_DIR / "ui").glob("*.py")
        if path.stem != "__init__"
    }
    # The shared context is the bottom layer; state (data) and auth (users) both read it, never each other.
    assert graph["ui.context"] == set()
    assert "ui.auth" not in graph["ui.state"] and "ui.state" not in graph["ui.auth"]

    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})) for nxt in graph.get(start, ())
        )

    assert not [module for module in graph if reaches(module, module)], graph


def test_no_private_streamlit_api_in_the_app() -> None:
    files = [PROJECT_DIR / "dashboard.py", *(PROJECT_DIR / "ui").glob("*.py"), *(PROJECT_DIR / "pages").glob("*.py")]
    for path in files:
        private = sorted(
            name
            for name in _imported_modules(path)
            if name.startswith("streamlit.") and not name.startswith("streamlit.testing")
        )
        assert not private, f"{path.name} imports {private}"
        assert "PagesManager" not in path.read_text() and "._url_path" not in path.read_text(), path.name


def _import_the_pages() -> None:
    import importlib

    import streamlit as st

    for name in ("patient", "clinic", "outcomes", "data", "audit"):
        module = importlib.import_module(f"pages.{name}")
        assert callable(module.render)
    st.session_state["imported"] = True


def test_importing_a_page_shows_nothing() -> None:
    at = AppTest.from_function(_import_the_pages, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["imported"] and not at.main.children and not at.sidebar.children


@pytest.mark.parametrize("page", (*PAGES, "audit"))
def test_a_page_file_run_on_its_own_shows_no_data(on_sample: Path, page: str) -> None:
    """Run as the app's main script, a page file hands over once, then only says how to start the app."""
    at = AppTest.from_file(str(PROJECT_DIR / "pages" / f"{page}.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert texts(at.info) == [
        "This file is a page of the Botox outcomes dashboard: start it with `streamlit run dashboard.py`."
    ]
    assert not at.title and not at.dataframe and not at.get("plotly_chart") and not at.metric
    assert not at.sidebar.children


def _linked_table() -> None:
    import pandas as pd

    from ui import render

    frame = pd.DataFrame({"patient": ["P00001", "P00002"], "cycles": [3, 1]})
    render.table(frame, key="linked", filename="linked.csv", links={"patient": "/patient?patient="})


def test_a_table_shows_link_columns_as_links_and_downloads_the_values(monkeypatch: pytest.MonkeyPatch) -> None:
    downloads: list[bytes] = []
    monkeypatch.setattr(auth, "table_download", lambda frame, filename, key, csv: downloads.append(csv(frame)))
    at = AppTest.from_function(_linked_table, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    shown = at.dataframe[0]
    assert shown.value["patient"].tolist() == ["/patient?patient=P00001", "/patient?patient=P00002"]
    link = json.loads(shown.proto.columns)["patient"]["type_config"]
    assert link["type"] == "link" and link["display_text"] == r"/patient\?patient=(.*)"  # shows the id
    assert downloads[0].decode().splitlines() == ["patient,cycles", "P00001,3", "P00002,1"]


def test_a_restarted_server_reads_the_analysis_store(
    on_sample: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The data folder's dataset and analysis are computed once; a new process finds them on disk (issue #12)."""
    from analytics.definitions.pipeline import analyse
    from analytics.ingest.load import load_dataset

    monkeypatch.setenv("OUTCOMES_STORE_DIR", str(tmp_path / "store"))
    calls: list[str] = []

    def counted(name, function):
        def wrapper(*args, **kwargs):
            calls.append(name)
            return function(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(stored, "load_dataset", counted("load", load_dataset))
    monkeypatch.setattr(stored, "analyse", counted("analyse", analyse))
    monkeypatch.setattr(stored, "clinical_tables", counted("clinical", stored.clinical_tables))
    read_on_demand: list[str] = []
    on_demand = stored.StoredClinicalTables._on_demand
    monkeypatch.setattr(
        stored.StoredClinicalTables,
        "_on_demand",
        lambda tables, name: read_on_demand.append(name) or on_demand(tables, name),
    )
    for start in ("first start", "restart"):  # a restart: empty caches, the store on disk
        st.cache_data.clear()
        st.cache_resource.clear()
        at = app_on("patient")
        at.run()
        assert not at.exception, at.exception
        assert texts(at.title)
        assert calls == ["load", "analyse", "clinical"], f"{start}: {calls}"
        # The Diary tab needs none of the tables of the other tabs: a restart leaves them on disk.
        assert read_on_demand == [], f"{start}: {read_on_demand}"
        for finishing in list(state._FINISHING.values()):  # the other pages' first views, after the first page
            if finishing is not None:
                finishing.join(60)
    entries = [p.name for p in (tmp_path / "store").iterdir() if p.name != "folders"]  # folders: the memo of keys
    # The dataset, its analysis, the patient-level tables, the continuation evidence; computed in the background
    # once the first page was drawn: the clinic choices and view, the treated days, the outcomes' three parts.
    assert len(entries) == 10


def test_the_other_pages_first_views_are_computed_while_the_first_page_is_read(
    on_sample: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """After the first page of a data folder, a forked process computes the Clinic page's view and the Outcomes
    page's statistics into the store (once per folder and store); the pages then read them and compute nothing.
    Where everything is stored already (a restart), nothing is started."""
    monkeypatch.setenv("OUTCOMES_STORE_DIR", str(tmp_path / "store"))
    calls = _counting_store_computations(monkeypatch)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = app_on("patient")
    at.run()
    assert not at.exception, at.exception
    started = [worker for (_, root), worker in state._FINISHING.items() if root == tmp_path / "store"]
    assert len(started) == 1 and started[0] is not None
    started[0].join(60)  # the thread that waits for the forked process
    assert not started[0].is_alive()
    assert sorted(calls) == ["analyse", "clinical_tables", "load_dataset"]  # the rest was computed by the fork
    # The first page's four entries; the clinic choices and view, the treated days and the outcomes' three parts.
    assert len([p for p in (tmp_path / "store").iterdir() if p.name != "folders"]) == 4 + 6
    for page in ("clinic", "outcomes"):
        switch_page(at, f"pages/{page}.py").run()
        assert not at.exception, at.exception
    at.run()  # a second run starts nothing
    assert sorted(calls) == ["analyse", "clinical_tables", "load_dataset"]
    assert len([root for _, root in state._FINISHING if root == tmp_path / "store"]) == 1
    # A restarted server (empty caches and registry): the store holds everything, so nothing is started.
    monkeypatch.setattr(state, "_FINISHING", {})
    st.cache_data.clear()
    st.cache_resource.clear()
    app_on("patient").run()
    assert list(state._FINISHING.values()) == [None]


def _counting_store_computations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from analytics.views import clinic, outcomes

    calls: list[str] = []
    counted = [(stored, "load_dataset"), (stored, "analyse"), (stored, "clinical_tables")]
    for module, name in [*counted, (clinic, "clinic_view"), (outcomes, "cohort_results")]:
        function = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _f=function, _n=name, **k: calls.append(_n) or _f(*a, **k))
    return calls


def _big_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app on a copy of the conformance data with an empty store, as if the folder were big."""
    folder = tmp_path / "data"
    folder.mkdir()
    for p in (PROJECT_DIR / "tests" / "conformance" / "data").iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    monkeypatch.setenv(state.DATA_DIR_VARIABLE, str(folder))
    monkeypatch.setenv("OUTCOMES_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.setattr(state, "auto_partitions", lambda f: 2)  # more than one partition: built by a child


def test_a_big_folder_is_built_by_a_child_process_with_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder of more than one partition is built by ``python -m analytics store`` in a child process (every
    CPU, its memory returned when it ends): the server computes nothing itself and reads the store (issue #12)."""
    _big_folder(tmp_path, monkeypatch)
    calls = _counting_store_computations(monkeypatch)
    st.cache_resource.clear()
    at = app_on("patient")
    at.run()
    assert not at.exception, at.exception
    assert texts(at.title) and calls == []  # the child computed everything
    # The child went on with the other pages' first views; Clinic and Outcomes wait for them, if need be.
    for page in ("clinic", "outcomes"):
        switch_page(at, f"pages/{page}.py").run()
        assert not at.exception, at.exception
    assert calls == []
    for finishing in list(state._FINISHING.values()):
        if finishing is not None:
            finishing.join(60)
    entries = [p.name for p in (tmp_path / "store").iterdir() if p.name != "folders"]
    # dataset, analysis, patient-level tables, continuation; clinic choices and view; days; the outcomes' three parts
    assert len(entries) == 10


def test_progress_of_a_build_follows_its_steps() -> None:
    step = state._STEPS[0]
    fraction, step = state._progress("splitting diary.csv into 35 partition(s): 18 task(s) ...", step)
    assert fraction == 0.0
    fraction, step = state._progress("  diary.csv split tasks done: 9/18", step)
    assert fraction == pytest.approx(0.35 * 9 / 18)
    fraction, step = state._progress("checking 35 partition(s) ...", step)
    assert fraction == pytest.approx(0.35)
    fraction, step = state._progress("  partitions checked: 7/35", step)
    assert fraction == pytest.approx(0.35 + 0.2 * 7 / 35)
    assert state._progress("computing the patient-level tables ...", step)[0] == pytest.approx(0.82)


def test_a_refusal_in_the_child_is_shown_with_the_columns_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "sessions.csv").write_text("patient_id,when\nP1,2024-03-01\n")
    (folder / "diary.csv").write_text(diary_text(30))
    monkeypatch.setenv(state.DATA_DIR_VARIABLE, str(folder))
    monkeypatch.setenv("OUTCOMES_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.setattr(state, "auto_partitions", lambda f: 2)
    calls = _counting_store_computations(monkeypatch)
    st.cache_resource.clear()
    at = app_on("data")
    at.run()
    assert not at.exception, at.exception
    refusal = " ".join(texts(at.error)).replace("\\", "")  # shown as plain text: Markdown escaped
    assert "session_date" in refusal and "The file needs these columns" in refusal
    assert calls == []  # refused by the child; the server did not read the folder again


def test_a_failed_child_build_is_done_in_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing is lost when the child cannot build (killed, out of memory): the server computes, and logs why."""
    _big_folder(tmp_path, monkeypatch)
    monkeypatch.setattr(
        state, "STORE_COMMAND", [sys.executable, "-c", "import sys; print('killed', file=sys.stderr); sys.exit(9)"]
    )
    calls = _counting_store_computations(monkeypatch)
    st.cache_resource.clear()
    with caplog.at_level(logging.ERROR, logger="outcomes.dashboard"):
        at = app_on("patient")
        at.run()
    assert not at.exception, at.exception
    assert texts(at.title) and calls == ["load_dataset", "analyse", "clinical_tables"]
    assert "exit 9" in caplog.text and "killed" in caplog.text


def test_a_page_does_not_wait_forever_for_a_result_computed_in_the_background(
    on_sample: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A background computation that hangs holds a page only ``WAIT_LIMIT_S``: then the page computes the result."""
    import threading

    store = tmp_path / "store"
    monkeypatch.setenv("OUTCOMES_STORE_DIR", str(store))
    monkeypatch.setattr(state, "WAIT_LIMIT_S", 0.3)
    monkeypatch.setattr(state, "finish_in_background", lambda ctx: None)
    release = threading.Event()
    hung = threading.Thread(target=release.wait, daemon=True)
    hung.start()
    monkeypatch.setattr(state, "_FINISHING", {(on_sample.resolve(), store): hung})
    calls = _counting_store_computations(monkeypatch)
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        at = app_on("clinic")
        at.run()
        assert not at.exception, at.exception
        assert "clinic_view" in calls and texts(at.title) == ["Clinic"]
    finally:
        release.set()


def test_the_server_imports_what_the_dashboard_imports_before_the_first_page(monkeypatch: pytest.MonkeyPatch):
    """make run starts ``python -m ui.serve``: it imports every module dashboard.py imports (their own imports
    included), then hands its options to Streamlit's own ``streamlit run dashboard.py``, unchanged."""
    from ui import serve

    imported = set()
    for node in ast.walk(ast.parse(Path(DASHBOARD).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)  # from pages import audit, HANDED_OVER: the modules pages and pages.audit
            folder = PROJECT_DIR.joinpath(*node.module.split("."))
            imported |= {f"{node.module}.{a.name}" for a in node.names if (folder / f"{a.name}.py").is_file()}
        elif isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
    ours = {name for name in imported if name.split(".")[0] in ("pages", "ui")}
    assert ours and "pages.patient" in ours and "ui.state" in ours
    script = (
        "import sys; from ui import serve; serve.preload(); "
        f"missing = sorted(m for m in {sorted(ours)!r} if m not in sys.modules); print(missing)"
    )
    shown = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_DIR, capture_output=True, text=True, check=True)
    assert shown.stdout.strip().splitlines()[-1] == "[]", shown.stdout
    assert "No runtime found" not in shown.stderr  # the import-time cache check says nothing a user could misread

    calls: list[tuple[str, str, list[str]]] = []
    monkeypatch.setattr(serve, "preload", lambda: 0.0)
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setattr(
        serve.runpy, "run_module", lambda name, run_name, alter_sys: calls.append((name, run_name, list(sys.argv)))
    )
    serve.main(["--server.port", "8765", "--server.address", "127.0.0.1"])
    command = ["streamlit", "run", DASHBOARD, "--server.port", "8765", "--server.address", "127.0.0.1"]
    assert calls == [("streamlit", "__main__", command)]  # python -m streamlit run dashboard.py ...
    assert "-m ui.serve" in (PROJECT_DIR / "Makefile").read_text()
