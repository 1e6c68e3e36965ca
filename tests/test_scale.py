"""The partitioned pipeline (analytics.scale) gives the single-process export, byte for byte.

Compared on the conformance case, on every folder case of the hostile corpus (with tiny CSV blocks
and a tiny rejection listing, so that block joins and the listing cap are exercised), on generated
cohorts with faults of every SPEC §2.1 kind, and on partitioned Parquet folders; with 1 and with many
partitions, in this process, in local worker processes and on a Dask ``LocalCluster`` of 2 workers.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analytics import cli
from analytics.definitions.config import AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.ingest.load import FOLDER_LIMITS, DatasetRefused, load_dataset
from analytics.output.export import export_files
from analytics.scale import split
from analytics.scale.engine import run_partitioned
from analytics.scale.runners import DaskRunner
from analytics.synth import generate_cohort, write_cohort, write_cohort_parquet

TESTS = Path(__file__).resolve().parent
CONFORMANCE = TESTS / "conformance" / "data"
HOSTILE = TESTS / "hostile"
AT = datetime(2026, 1, 1, tzinfo=UTC)


def _corpus() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hostile_make_corpus_scale", HOSTILE / "make_corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def outcome(run):  # type: ignore[no-untyped-def]
    """The export files of a run, or what its refusal says (exit status, message, file, column)."""
    try:
        analysis, dataset = run()
    except DatasetRefused as exc:
        return ("refused", exc.exit_code, str(exc), exc.file, exc.column, exc.needed_columns)
    return export_files(analysis, dataset, AT)


def single(folder: Path, config: AnalysisConfig | None = None, limits=FOLDER_LIMITS):  # type: ignore[no-untyped-def]
    def run():  # type: ignore[no-untyped-def]
        dataset = load_dataset(folder, limits)
        return analyse(dataset, config), dataset

    return outcome(run)


def partitioned(folder: Path, partitions: int, config=None, limits=FOLDER_LIMITS, runner=None):  # type: ignore[no-untyped-def]
    return outcome(lambda: run_partitioned(folder, config, partitions, runner, limits=limits))


def assert_same(expected, got) -> None:  # type: ignore[no-untyped-def]
    if isinstance(expected, dict) and isinstance(got, dict):
        assert list(got) == list(expected)
        different = [name for name in expected if expected[name] != got[name]]
        assert not different, f"files differ: {different}"
    else:
        assert got == expected


# --- the partition of a patient ------------------------------------------------------------------


def test_every_row_of_a_patient_goes_to_one_partition_the_same_everywhere() -> None:
    ids = pa.array(["P00001", "P00002", "P00001", "x", "", "P00002"])
    parts = split.partition_of(ids, 7)
    assert parts[0] == parts[2] and parts[1] == parts[5]
    assert ((parts >= 0) & (parts < 7)).all()
    # A stable hash, not Python's salted hash(): these values hold in every process and on every machine.
    assert split.partition_of(pa.array(["P00001", "P00002", "P00003"]), 16).tolist() == list(
        (pd.util.hash_array(np.array(["P00001", "P00002", "P00003"], dtype=object)) % np.uint64(16)).astype(int)
    )
    assert split.partition_of(ids, 1).tolist() == [0] * 6


# --- byte-identical on the conformance case -------------------------------------------------------


@pytest.mark.parametrize("partitions", [1, 3, 8])
def test_conformance_case_is_byte_identical(partitions: int) -> None:
    assert_same(single(CONFORMANCE), partitioned(CONFORMANCE, partitions))


def test_parameters_and_a_given_as_of_are_honoured_the_same() -> None:
    config = AnalysisConfig(as_of=date(2024, 6, 30), min_completeness=0.6, lapse_days=150)
    assert_same(single(CONFORMANCE, config), partitioned(CONFORMANCE, 4, config))


# --- byte-identical on the hostile corpus -----------------------------------------------------------


def test_hostile_corpus_gives_the_same_export_or_the_same_refusal(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    corpus = _corpus()
    expected = json.loads((HOSTILE / "expected.json").read_text())
    # Blocks of a few lines and a listing of 3 rows: every join of blocks and the cap are exercised.
    monkeypatch.setattr(split, "BLOCK_BYTES", 97)
    limits = dataclasses.replace(FOLDER_LIMITS, max_rejected_listed=3)
    compared = 0
    for name, case in expected.items():
        if case["source"] == "zip" or (case["generated"] and name in ("parquet_row_bomb", "enormous_field")):
            continue  # ZIPs are uploads; the two largest generated cases are checked by test_hostile_input
        if case["generated"]:
            folder = tmp_path / name
            folder.mkdir()
            for file_name, data in corpus.build(name).items():
                (folder / file_name).write_bytes(data)
        else:
            folder = HOSTILE / "corpus" / name
        reference = single(folder, limits=limits)
        for partitions in (1, 3):
            got = partitioned(folder, partitions, limits=limits)
            assert type(got) is type(reference), name
            assert_same(reference, got)
        compared += 1
    assert compared >= 40


# --- byte-identical on generated cohorts with faults -------------------------------------------------


def faulty_cohort(folder: Path, patients: int, seed: int) -> Path:
    """A synthetic cohort with rejections of every row-level kind of SPEC §2.1, and blank lines."""
    rng = np.random.default_rng(seed)
    tables = generate_cohort(patients, seed, date(2023, 1, 2), date(2025, 6, 30))
    diary = tables["diary"]
    picks = rng.choice(len(diary), size=40, replace=False)
    diary = diary.astype({"headache_hours": object})
    diary.loc[picks[:10], "headache_hours"] = 99  # out of range
    conflict = diary.loc[picks[10:20]].assign(headache_hours=(diary.loc[picks[10:20], "headache_hours"] + 1) % 24)
    repeat = diary.loc[picks[20:30]]
    unknown = diary.loc[picks[30:40]].assign(patient_id="Q99999")
    tables["diary"] = pd.concat([diary, conflict, repeat, unknown], ignore_index=True).sample(frac=1, random_state=seed)
    sessions = tables["sessions"]
    tables["sessions"] = pd.concat([sessions, sessions.iloc[:5]], ignore_index=True)  # repeated sessions
    write_cohort(tables, folder)
    text = (folder / "diary.csv").read_text().splitlines(keepends=True)
    for at in sorted(rng.choice(np.arange(2, len(text)), size=5, replace=False), reverse=True):
        text.insert(int(at), "\n")  # blank lines shift the physical line numbers
    (folder / "diary.csv").write_text("".join(text))
    return folder


@pytest.mark.parametrize("seed", [1, 2])
def test_generated_cohorts_with_faults_are_byte_identical(tmp_path: Path, seed: int, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    folder = faulty_cohort(tmp_path / "data", 200, seed)
    monkeypatch.setattr(split, "BLOCK_BYTES", 64 * 1024)
    limits = dataclasses.replace(FOLDER_LIMITS, max_rejected_listed=25)
    reference = single(folder, limits=limits)
    assert isinstance(reference, dict)
    assert reference["rejected_rows.csv"].count(b"\ndiary.csv,") == 25  # the listing is capped: the rest is counted
    assert json.loads(reference["manifest.json"])["files"]["diary.csv"]["rows_rejected"] > 25
    for partitions in (1, 6):
        assert_same(reference, partitioned(folder, partitions, limits=limits))


def test_a_quoted_csv_is_read_whole_and_still_split_exactly(tmp_path: Path) -> None:
    folder = faulty_cohort(tmp_path / "data", 120, 3)
    diary = (folder / "diary.csv").read_text().splitlines(keepends=True)
    diary[3] = '"' + diary[3].replace(",", '","', 1).rstrip("\n") + '"\n'.replace('""', '"')
    (folder / "diary.csv").write_text("".join(diary))
    assert_same(single(folder), partitioned(folder, 6))


# --- partitioned Parquet folders ------------------------------------------------------------------


def parquet_registry(folder: Path, parts: int, per_part: int, seed: int) -> Path:
    for part in range(parts):
        tables = generate_cohort(per_part, seed + part, date(2023, 1, 2), date(2025, 6, 30), 1 + part * per_part, 5)
        write_cohort_parquet(tables, folder, part)
    return folder


def test_partitioned_parquet_folder_is_read_as_one_table_by_both_paths(tmp_path: Path) -> None:
    folder = parquet_registry(tmp_path / "registry", 3, 40, 5)
    reference = single(folder)
    assert isinstance(reference, dict)
    manifest = json.loads(reference["manifest.json"])
    assert "diary/" in manifest["files"]
    rows = sum(pq.read_metadata(p).num_rows for p in (folder / "diary").iterdir())
    assert manifest["files"]["diary/"]["rows_read"] == rows
    for partitions in (1, 3):
        assert_same(reference, partitioned(folder, partitions))


def test_parquet_parts_are_numbered_on_and_must_share_columns(tmp_path: Path) -> None:
    folder = parquet_registry(tmp_path / "registry", 2, 20, 8)
    first_rows = pq.read_metadata(folder / "diary" / "part-00000.parquet").num_rows
    second = pq.read_table(folder / "diary" / "part-00001.parquet")
    hours = second.column("headache_hours").to_pylist()
    hours[4] = 30  # row 5 of the second part
    pq.write_table(
        second.set_column(2, "headache_hours", pa.array(hours, pa.int64())), folder / "diary" / "part-00001.parquet"
    )
    for dataset in (load_dataset(folder), run_partitioned(folder, partitions=3)[1]):
        rejected = dataset.rejected
        assert rejected[["file", "line"]].values.tolist() == [["diary/", first_rows + 5 + 1]]
    pq.write_table(second.drop(["severity"]), folder / "diary" / "part-00001.parquet")
    for run in (lambda: load_dataset(folder), lambda: run_partitioned(folder, partitions=2)):
        with pytest.raises(DatasetRefused, match=r"part-00001\.parquet: its columns differ"):
            run()


# --- the command line and its engines ---------------------------------------------------------------


def cli_export(tmp_path: Path, data: Path, name: str, *flags: str) -> dict[str, bytes]:
    out = tmp_path / name
    assert cli.main(["export", "--data", str(data), "--out", str(out), *flags]) == 0
    files = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    record = json.loads(files.pop("manifest.json"))
    record.pop("exported_at")
    files["manifest.json"] = json.dumps(record, sort_keys=True).encode()
    return files


def test_local_worker_processes_give_the_same_files(tmp_path: Path) -> None:
    data = faulty_cohort(tmp_path / "data", 150, 4)
    reference = cli_export(tmp_path, data, "single")
    assert_same(reference, cli_export(tmp_path, data, "pool", "--partitions", "4", "--workers", "2"))


def test_dask_engine_on_a_local_cluster_of_two_workers_gives_the_same_files(tmp_path: Path) -> None:
    data = faulty_cohort(tmp_path / "data", 150, 6)
    with DaskRunner(workers=2) as runner:
        assert len(runner.client.scheduler_info()["workers"]) == 2
        for folder in (CONFORMANCE, data):
            assert_same(single(folder), partitioned(folder, 4, runner=runner))
    # The command line: --engine dask starts its own local cluster when no scheduler is given.
    assert_same(
        cli_export(tmp_path, CONFORMANCE, "single"),
        cli_export(tmp_path, CONFORMANCE, "dask", "--engine", "dask", "--partitions", "3", "--workers", "2"),
    )


def test_a_refusal_from_a_worker_reaches_the_command_line_whole(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    data = faulty_cohort(tmp_path / "data", 50, 7)
    diary = (data / "diary.csv").read_text().replace("acute_medication", "acute_medication,email", 1)
    (data / "diary.csv").write_text(diary.replace("\n", ",x@example.org\n").replace(",x@example.org\n", "\n", 1))
    for flags in ([], ["--partitions", "3"], ["--partitions", "3", "--workers", "2"]):
        assert cli.main(["export", "--data", str(data), "--out", str(tmp_path / "out"), *flags]) == 3
        assert "looks like a direct identifier" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_engine_arguments_are_checked(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = str(tmp_path / "out")
    for flags, said in (
        (["--partitions", "0"], "--partitions must be at least 1"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler needs --engine dask"),
        (["--work-dir", str(tmp_path / "nope")], "not a folder"),
    ):
        assert cli.main(["export", "--data", str(CONFORMANCE), "--out", out, *flags]) == 2
        assert said in capsys.readouterr().err


def test_an_unreachable_scheduler_is_exit_5_with_a_message(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from analytics.scale import runners

    monkeypatch.setattr(runners, "CONNECT_TIMEOUT", "2s")
    flags = ["--engine", "dask", "--scheduler", "tcp://127.0.0.1:9", "--partitions", "2"]
    assert cli.main(["export", "--data", str(CONFORMANCE), "--out", str(tmp_path / "out"), *flags]) == 5
    assert "no Dask scheduler answers at tcp://127.0.0.1:9" in capsys.readouterr().err


def test_a_task_run_twice_returns_its_kept_result(tmp_path: Path) -> None:
    """A cluster reruns a lost worker's tasks: a partition whose shards are gone must not come back empty."""
    from analytics.scale import engine
    from analytics.scale.runners import SerialRunner

    parts = engine._split_all(CONFORMANCE, tmp_path, 2, SerialRunner(), FOLDER_LIMITS, engine._quiet)
    layout = engine.Layout(tmp_path, 2, parts.names, parts.columns, FOLDER_LIMITS.max_rejected_listed)
    first = engine.check_partition(layout, 1)
    assert not split.shard_folder(tmp_path, "diary", 1).exists()  # read once, then removed
    again = engine.check_partition(layout, 1)
    assert again.rows_accepted == first.rows_accepted and sum(first.rows_accepted.values()) > 0


def test_workers_start_without_the_parents_main_script(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Under Streamlit (and AppTest) __main__ is the dashboard's script: a worker must not run it again."""
    import types

    from analytics.scale.runners import runner_for

    script = tmp_path / "app.py"
    script.write_text("raise SystemExit('the main script ran in a worker')\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", main)
    with runner_for("local", 2) as runner:
        assert runner.map(abs, [-1, -2, 3]) == [1, 2, 3]
    assert sys.modules["__main__"] is main


@pytest.mark.parametrize("partitions", [1, 3])
def test_run_whole_gives_the_single_process_tables_and_patient_level_tables(partitions: int) -> None:
    """The dashboard's store is filled from ``run_whole``: every accepted table and the per-patient-day frame as
    the single process has them, and the patient-level tables computed on each partition, each patient's rows as
    ``clinical_tables`` of the whole dataset gives them (the patients in patient_id order)."""
    from analytics.definitions.clinical import clinical_tables
    from analytics.definitions.config import SAMPLE_DATA_DIR
    from analytics.scale.engine import run_whole

    dataset = load_dataset(SAMPLE_DATA_DIR)
    analysis = analyse(dataset)
    expected = clinical_tables(analysis, dataset)
    got_analysis, got_dataset, got = run_whole(SAMPLE_DATA_DIR, partitions=partitions)
    for stem, table in dataset.tables.items():
        pd.testing.assert_frame_equal(got_dataset.tables[stem], table, check_exact=True)
    for name in ("patient_days", "patient_cycles", "cohort_cycles", "patient_status"):
        pd.testing.assert_frame_equal(getattr(got_analysis, name), getattr(analysis, name), check_exact=True)
    assert (got.params, got.available) == (expected.params, expected.available)
    assert got.weekly.empty
    for name in ("status", "cycle_profile", "adverse_events", "questionnaires", "injections"):
        mine = getattr(expected, name).sort_values("patient_id", kind="stable", ignore_index=True)
        pd.testing.assert_frame_equal(getattr(got, name), mine, check_exact=True, obj=name)
