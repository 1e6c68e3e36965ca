"""The hostile-input corpus (tests/hostile) through every way data gets in: loader, command line, dashboard.

Each case of ``tests/hostile/make_corpus.py`` states by hand what SPEC §2 demands: the dataset is
refused with a one-line message and exit status 2 or 3, or it loads and every file reconciles (rows
read = accepted + rejected) with the stated reasons and physical line numbers. Here each case goes
through ``analytics.ingest.load.load_dataset`` (ZIP cases first through ``analytics.ingest.archive``, as an upload
does), through ``python -m analytics export`` (all folder cases in one interpreter, so the suite
stays fast, plus two runs of the real entry point), and a few refused ones through the dashboard.
Neither may crash, print a traceback or lose a row. The upload size limit, which Streamlit's server
enforces before any of our code runs, is checked against the app's own setting.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from analytics.definitions.pipeline import analyse
from analytics.ingest import schemas
from analytics.ingest.archive import MAX_TOTAL_BYTES, files_from_upload
from analytics.ingest.load import Dataset, DatasetRefused, load_dataset

PROJECT_DIR = Path(__file__).resolve().parent.parent
HOSTILE = Path(__file__).resolve().parent / "hostile"
CORPUS = HOSTILE / "corpus"
EXPECTED: dict[str, dict] = json.loads((HOSTILE / "expected.json").read_text(encoding="utf-8"))
FOLDER_CASES = [name for name, case in EXPECTED.items() if case["source"] == "folder"]
REFUSED_IN_THE_APP = ("latin1", "duplicate_header", "binary_garbage")


def _corpus_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hostile_make_corpus", HOSTILE / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


make_corpus = _corpus_module()


def case_files(name: str) -> dict[str, bytes]:
    """The files of a case as uploaded: the committed corpus, or built now when too big to commit."""
    if EXPECTED[name]["generated"]:
        return make_corpus.build(name)
    return {p.name: p.read_bytes() for p in sorted((CORPUS / name).iterdir())}


def case_folder(name: str, scratch: Path) -> Path:
    """A folder holding the case: the corpus folder itself, or the generated files under ``scratch``."""
    if not EXPECTED[name]["generated"]:
        return CORPUS / name
    folder = scratch / name
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, data in make_corpus.build(name).items():
        (folder / file_name).write_bytes(data)
    return folder


def load_case(name: str) -> Dataset:
    files = case_files(name)
    if EXPECTED[name]["source"] == "zip":
        files = files_from_upload(files)
    return load_dataset(files)


def assert_one_line_naming_a_file(message: str, expected: dict) -> None:
    assert "\n" not in message and "\r" not in message, message
    assert len(message) < 400, message
    for text in expected["message_contains"]:
        assert text in message, (text, message)
    assert message.split(":")[0].endswith((".csv", ".parquet", ".zip")), message  # it starts with the file


def assert_every_row_accounted_for(dataset: Dataset) -> None:
    """No row lost or counted twice: each file's rows read are its accepted and rejected lines, once each."""
    for report in dataset.files:
        assert report.rows_read == report.rows_accepted + report.rows_rejected, report
        stem = report.file.rsplit(".", 1)[0]
        accepted = dataset.tables[stem]["line"].tolist()
        rejected = dataset.rejected.loc[dataset.rejected["file"] == report.file, "line"].tolist()
        assert (len(accepted), len(rejected)) == (report.rows_accepted, report.rows_rejected), report
        assert len(set(accepted + rejected)) == report.rows_read and min(accepted + rejected, default=2) >= 2
    assert set(dataset.rejected["file"]) <= {f.file for f in dataset.files}


# --- the corpus itself -------------------------------------------------------------------------


def test_the_committed_corpus_is_what_the_generator_writes(tmp_path: Path) -> None:
    written = make_corpus.write(tmp_path / "corpus", tmp_path / "expected.json")
    assert json.loads((tmp_path / "expected.json").read_text(encoding="utf-8")) == EXPECTED
    committed = sorted(p.relative_to(CORPUS) for p in CORPUS.rglob("*") if p.is_file())
    assert committed == sorted(
        p.relative_to(tmp_path / "corpus") for p in (tmp_path / "corpus").rglob("*") if p.is_file()
    )
    for relative in committed:
        new, old = tmp_path / "corpus" / relative, CORPUS / relative
        if new.read_bytes() != old.read_bytes():  # Arrow writes its version into Parquet: compare the contents
            assert relative.suffix == ".parquet", relative
            pd.testing.assert_frame_equal(pd.read_parquet(new), pd.read_parquet(old))
    assert written < 2 * 2**20  # the committed corpus stays small; big cases are generated
    assert len(EXPECTED) >= 50 and {c["outcome"] for c in EXPECTED.values()} == {"refused", "loaded"}


# --- the loader (and, for ZIP cases, the upload path) ------------------------------------------


@pytest.mark.parametrize("name", list(EXPECTED))
def test_the_loader_gives_the_expected_outcome(name: str) -> None:
    expected = EXPECTED[name]
    if expected["outcome"] == "refused":
        with pytest.raises(DatasetRefused) as caught:
            load_case(name)
        assert caught.value.exit_code == expected["exit_code"]
        assert_one_line_naming_a_file(str(caught.value), expected)
        return
    dataset = load_case(name)
    assert_every_row_accounted_for(dataset)
    assert sorted(f.file for f in dataset.files) == sorted(expected["files"])
    for report in dataset.files:
        want = expected["files"][report.file]
        assert (report.rows_read, report.rows_accepted, report.rows_rejected) == (
            want["read"],
            want["accepted"],
            want["rejected"],
        ), report.file
        rejected = dataset.rejected[dataset.rejected["file"] == report.file]
        assert sorted(set(rejected["reason"])) == want["reasons"], report.file
        if "rejected_lines" in want:
            assert sorted(rejected["line"]) == want["rejected_lines"], report.file
        assert list(report.columns_ignored) == want.get("columns_ignored", []), report.file
    analysis = analyse(dataset)
    assert set(analysis.patient_cycles["patient_id"]) <= set(dataset.tables["sessions"]["patient_id"])


def test_rejected_values_are_shown_cut_short_and_formula_ids_are_kept_as_typed() -> None:
    dataset = load_case("enormous_field")
    assert dataset.rejected["value"].str.len().max() <= 200  # a 2 MB value is not echoed back whole
    formula = load_case("formula_patient_ids").rejected
    ids = set(formula["patient_id"])
    # Whitespace around a value is ignored (SPEC §2), so the tab before "=1+1" is gone.
    assert ids == {pid.strip() for pid in make_corpus.FORMULA_IDS}
    assert set(formula["reason"]) == {schemas.INVALID_ID}


# --- the command line --------------------------------------------------------------------------

# Runs ``python -m analytics export`` once per job inside one interpreter: each run executes
# analytics/__main__.py as __main__ (runpy), with its own argv and stderr, exactly as the command does,
# minus a second of start-up per case. An exception escaping main() is printed as Python would.
CLI_DRIVER = """
import contextlib, io, json, runpy, sys, traceback
results = []
for data, out in json.loads(sys.argv[1]):
    sys.argv = ["python -m analytics", "export", "--data", data, "--out", out]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            runpy.run_module("analytics", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
    results.append({"code": code, "stderr": err.getvalue()})
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Every folder case exported by the command line: exit code, stderr and the output folder."""
    scratch = tmp_path_factory.mktemp("hostile_cli")
    jobs = {name: (str(case_folder(name, scratch / "data")), str(scratch / "out" / name)) for name in FOLDER_CASES}
    done = subprocess.run(
        [sys.executable, "-c", CLI_DRIVER, json.dumps(list(jobs.values()))],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    return {name: {**result, "out": Path(jobs[name][1])} for name, result in zip(jobs, results, strict=True)}


@pytest.mark.parametrize("name", FOLDER_CASES)
def test_the_command_line_gives_the_expected_outcome(cli_runs: dict[str, dict], name: str) -> None:
    expected, run = EXPECTED[name], cli_runs[name]
    stderr = run["stderr"]
    assert "Traceback" not in stderr and "Error:" not in stderr, stderr
    if expected["outcome"] == "refused":
        assert run["code"] == expected["exit_code"], stderr
        refusals = [line for line in stderr.splitlines() if line.startswith("refused: ")]
        assert len(refusals) == 1, stderr
        assert_one_line_naming_a_file(refusals[0].removeprefix("refused: "), expected)
        assert not run["out"].exists()  # nothing is written for a refused dataset
        return
    assert run["code"] == 0, stderr
    for file, want in expected["files"].items():
        summary = f"  {file}: {want['read']} rows read, {want['accepted']} accepted, {want['rejected']} rejected"
        assert summary in stderr.splitlines(), (summary, stderr)
    with open(run["out"] / "rejected_rows.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == sum(want["rejected"] for want in expected["files"].values())
    manifest = json.loads((run["out"] / "manifest.json").read_text(encoding="utf-8"))
    assert {f: (m["rows_read"], m["rows_accepted"], m["rows_rejected"]) for f, m in manifest["files"].items()} == {
        f: (want["read"], want["accepted"], want["rejected"]) for f, want in expected["files"].items()
    }


def test_formula_patient_ids_come_back_formula_safe_in_rejected_rows_csv(cli_runs: dict[str, dict]) -> None:
    text = (cli_runs["formula_patient_ids"]["out"] / "rejected_rows.csv").read_text(encoding="utf-8")
    ids = [row["patient_id"] for row in csv.DictReader(io.StringIO(text, newline=""))]
    # Each id is given back as typed (whitespace trimmed) behind a single quote, so no spreadsheet runs it.
    assert sorted(ids) == sorted(["'" + pid.strip() for pid in make_corpus.FORMULA_IDS] + ["'=1+1"])
    patient_cycles = (cli_runs["formula_patient_ids"]["out"] / "patient_cycles.csv").read_text(encoding="utf-8")
    assert "\n'-P005," in patient_cycles  # a valid id starting with '-' is quoted too (and still one patient)


@pytest.mark.parametrize(("name", "code"), [("latin1", 2), ("formula_patient_ids", 0)])
def test_smoke_the_real_entry_point(tmp_path: Path, name: str, code: int) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "analytics", "export", "--data", str(CORPUS / name), "--out", str(tmp_path / "out")],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == code and "Traceback" not in done.stderr, done.stderr


# --- the dashboard -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", REFUSED_IN_THE_APP)
def test_the_dashboard_shows_a_refused_case_as_a_message(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    from streamlit.testing.v1 import AppTest

    from ui import state

    monkeypatch.setenv(state.DATA_DIR_VARIABLE, str(CORPUS / name))
    at = AppTest.from_file(str(PROJECT_DIR / "dashboard.py"), default_timeout=120)
    at.switch_page("pages/data.py")
    at.run()
    assert not at.exception, at.exception
    errors = [str(e.value) for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("**The data could not be used.**"), errors
    message = errors[0].removeprefix("**The data could not be used.** ")
    assert_one_line_naming_a_file(message, EXPECTED[name])


def test_the_dashboard_loads_a_case_with_rejections_and_says_how_many(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    from ui import state

    monkeypatch.setenv(state.DATA_DIR_VARIABLE, str(CORPUS / "formula_patient_ids"))
    at = AppTest.from_file(str(PROJECT_DIR / "dashboard.py"), default_timeout=120)
    at.switch_page("pages/data.py")
    at.run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    warnings_shown = [str(w.value) for w in at.sidebar.warning]
    assert any(
        w.startswith("6 rows were rejected") and "sessions.csv: 5" in w and "diary.csv: 1" in w for w in warnings_shown
    ), warnings_shown


# --- files over the upload limit ---------------------------------------------------------------


def app_upload_limit_mb() -> int:
    return tomllib.loads((PROJECT_DIR / ".streamlit" / "config.toml").read_text())["server"]["maxUploadSize"]


def test_the_upload_limit_is_set_and_the_uploader_does_not_raise_it() -> None:
    limit = app_upload_limit_mb()
    assert 0 < limit <= 200  # Streamlit's default; a larger dataset is read from a folder instead
    assert MAX_TOTAL_BYTES >= limit * 2**20  # a ZIP may unpack to more than it weighs, within reason
    assert "max_upload_size" not in (PROJECT_DIR / "ui" / "state.py").read_text()


def test_streamlits_upload_endpoint_refuses_a_file_over_the_limit() -> None:
    # The server answers 413 before the file reaches the app. The endpoint is built as the server
    # builds it, with a 1 MB limit so the test does not have to send the app's 200 MB.
    from streamlit import config
    from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
    from streamlit.web.server.starlette.starlette_routes import create_upload_routes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's TestClient warns about its httpx backend
        from starlette.applications import Starlette
        from starlette.testclient import TestClient

    class ActiveSessions:
        def is_active_session(self, session_id: str) -> bool:
            return True

    changed = {"server.maxUploadSize": 1, "server.enableXsrfProtection": False}
    config.get_option("server.maxUploadSize")  # loads the options when this test runs first in its process
    before = {key: (config._config_options[key].value, config._config_options[key].where_defined) for key in changed}
    files = MemoryUploadedFileManager("/_stcore/upload_file")
    try:
        for key, value in changed.items():
            config._set_option(key, value, "test_hostile_input")
        client = TestClient(Starlette(routes=create_upload_routes(ActiveSessions(), files, None)))
        over = client.put("/_stcore/upload_file/s1/big", files={"file": ("diary.csv", b"1" * (2**20 + 1), "text/csv")})
        under = client.put("/_stcore/upload_file/s1/small", files={"file": ("diary.csv", b"1" * 2**19, "text/csv")})
    finally:
        for key, (value, where) in before.items():
            config._set_option(key, value, where)
    assert over.status_code == 413 and under.status_code == 204
    assert [f.file_id for f in files.get_files("s1", ["big", "small"])] == ["small"]
