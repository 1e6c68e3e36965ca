"""The export command of SPEC §4: outputs, formats, manifest, parameter flags, exit codes, atomic writes.

The command runs as users run it (``python -m analytics export`` in a subprocess from the repo
root); the write-failure tests call ``main`` in-process so they can make the file system fail.

The dataset (hand-worked; default as_of is its latest date, 2024-04-30):
    P1: sessions 2024-01-01 and 2024-03-25 (D1 + 84).
        baseline [2023-12-04, 2023-12-31], all 28 days recorded: days 0-13 6 h, days 14-19 3 h, rest 0 h;
        migraine on days 0-9, acute medication on days 0-4
        -> headache_days 14 (>= 4 h), mhd 14, migraine_days 10, acute_med_days 5.
        cycle 1 [2024-01-01, 2024-03-24] all 84 days recorded, 6 h on the first 21 -> mhd 7: -50%, a responder.
        cycle 2 [2024-03-25, ...] recorded to 2024-04-30 = as_of -> ongoing, 37 days.
    P2: session 2024-01-15; baseline [2023-12-18, 2024-01-14] with 10 recorded days -> not evaluable.
        One diary row (line 2 of diary.csv) has 30 hours and is rejected.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from analytics import __version__, cli
from analytics.output.export import verify_export, write_atomically

PROJECT_DIR = Path(__file__).resolve().parent.parent

PATIENT_CYCLE_COLUMNS = [
    "patient_id",
    "cycle",
    "start_date",
    "end_date",
    "window_days",
    "recorded_days",
    "completeness",
    "evaluable",
    "headache_days",
    "migraine_days",
    "acute_med_days",
    "mhd",
    "mmd",
    "amd",
    "status",
    "mhd_change",
    "mhd_pct_change",
    "responder_30",
    "responder_50",
    "responder_75",
    "cumulative_responder_50",
]
COHORT_CYCLE_COLUMNS = [
    "cycle",
    "n_treated",
    "n_evaluable",
    "mean_mhd",
    "mean_mhd_change",
    "mean_mhd_change_ci_low",
    "mean_mhd_change_ci_high",
    "median_mhd_change",
    "responder_50_n",
    "responder_50_rate",
    "responder_50_ci_low",
    "responder_50_ci_high",
    "cum_responder_50_completers_n",
    "cum_responder_50_completers_denom",
    "cum_responder_50_completers_rate",
    "cum_responder_50_completers_ci_low",
    "cum_responder_50_completers_ci_high",
    "cum_responder_50_itt_n",
    "cum_responder_50_itt_denom",
    "cum_responder_50_itt_rate",
    "cum_responder_50_itt_ci_low",
    "cum_responder_50_itt_ci_high",
    "new_responder_50_n",
    "prior_nonresponder_denom",
    "new_responder_50_rate",
]
BOOLEAN_COLUMNS = ["evaluable", "responder_30", "responder_50", "responder_75", "cumulative_responder_50"]
OUTPUTS = ["patient_cycles.csv", "cohort_cycles.csv", "patient_status.csv", "rejected_rows.csv", "manifest.json"]


def iso(d0: str, offset: int) -> str:
    return (date.fromisoformat(d0) + timedelta(days=offset)).isoformat()


def dataset_files(clean: bool = False) -> dict[str, str]:
    sessions = "patient_id,session_date,total_units\nP1,2024-01-01,155\nP1,2024-03-25,155\nP2,2024-01-15,195\n"
    diary = "patient_id,date,headache_hours,migraine,severity,acute_medication\n"
    if not clean:
        diary += "P2,2024-01-20,30,,,\n"
    for i in range(28):
        hours = 6 if i < 14 else 3 if i < 20 else 0
        diary += f"P1,{iso('2023-12-04', i)},{hours},{'yes' if i < 10 else 'no'},2,{'TRUE' if i < 5 else 'false'}\n"
    diary += "".join(f"P1,{iso('2024-01-01', i)},{6 if i < 21 else 0},no,,no\n" for i in range(84))
    diary += "".join(f"P1,{iso('2024-03-25', i)},0,no,,no\n" for i in range(37))
    diary += "".join(f"P2,{iso('2023-12-18', i)},5,,,\n" for i in range(10))
    return {"sessions.csv": sessions, "diary.csv": diary}


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def run_export(data: Path, out: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "analytics", "export", "--data", str(data), "--out", str(out), *flags],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under a folder (including hidden ones) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def default_export(tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess, datetime, datetime]:
    root = tmp_path_factory.mktemp("export")
    data = write(root / "data", dataset_files())
    before = datetime.now(UTC).replace(microsecond=0)
    result = run_export(data, root / "out")
    after = datetime.now(UTC)
    return data, root / "out", result, before, after


def test_exit_0_writes_the_four_outputs_with_the_specs_columns(default_export) -> None:
    _, out, result, _, _ = default_export
    assert result.returncode == 0, result.stderr
    assert set(OUTPUTS) <= {p.name for p in out.iterdir()}
    header, _ = read_csv(out / "patient_cycles.csv")
    assert header[: len(PATIENT_CYCLE_COLUMNS)] == PATIENT_CYCLE_COLUMNS
    header, rows = read_csv(out / "cohort_cycles.csv")
    assert header[: len(COHORT_CYCLE_COLUMNS)] == COHORT_CYCLE_COLUMNS
    assert [r["cycle"] for r in rows] == ["0", "1", "2"]
    header, rows = read_csv(out / "rejected_rows.csv")
    assert header[:4] == ["file", "line", "patient_id", "reason"]
    assert [(r["file"], r["line"], r["patient_id"], r["reason"]) for r in rows] == [
        ("diary.csv", "2", "P2", "headache_hours out of range")
    ]


def test_progress_and_summary_on_stderr(default_export) -> None:
    _, _, result, _, _ = default_export
    assert result.stdout == ""
    assert "sessions.csv: 3 rows read, 3 accepted, 0 rejected" in result.stderr
    assert "diary.csv: 160 rows read, 159 accepted, 1 rejected" in result.stderr
    assert "2 treated patients" in result.stderr and "3 cycles" in result.stderr


def test_values_booleans_dates_and_missing_cells(default_export) -> None:
    _, out, _, _, _ = default_export
    _, rows = read_csv(out / "patient_cycles.csv")
    by_key = {(r["patient_id"], r["cycle"]): r for r in rows}
    assert sorted(by_key) == [("P1", "0"), ("P1", "1"), ("P1", "2"), ("P2", "0"), ("P2", "1")]
    base = by_key[("P1", "0")]
    assert (base["start_date"], base["end_date"], base["window_days"], base["recorded_days"]) == (
        "2023-12-04",
        "2023-12-31",
        "28",
        "28",
    )
    assert (base["headache_days"], base["migraine_days"], base["acute_med_days"]) == ("14", "10", "5")
    assert (float(base["mhd"]), float(base["mmd"]), float(base["amd"])) == (14.0, 10.0, 5.0)
    assert (base["evaluable"], base["status"], base["mhd_change"], base["responder_50"]) == ("true", "baseline", "", "")
    c1 = by_key[("P1", "1")]
    assert (c1["end_date"], float(c1["mhd"]), float(c1["mhd_pct_change"])) == ("2024-03-24", 7.0, -50.0)
    assert (c1["responder_30"], c1["responder_50"], c1["responder_75"], c1["cumulative_responder_50"]) == (
        "true",
        "true",
        "false",
        "true",
    )
    c2 = by_key[("P1", "2")]
    assert (c2["status"], c2["end_date"], c2["window_days"], c2["evaluable"]) == ("ongoing", "2024-04-30", "37", "true")
    p2 = by_key[("P2", "0")]
    assert (p2["recorded_days"], p2["evaluable"]) == ("10", "false")
    # P2 has no migraine values: missing counts as false, so 0 migraine days but a count, not empty.
    assert p2["migraine_days"] == "0"

    for name in ("patient_cycles.csv", "cohort_cycles.csv", "rejected_rows.csv"):
        _, table = read_csv(out / name)
        for row in table:
            for column, value in row.items():
                assert value.strip().lower() not in {"nan", "<na>", "none", "nat", "null"}, (name, column, value)
                if column in BOOLEAN_COLUMNS:
                    assert value in {"true", "false", ""}, (name, column, value)
                if column.endswith("_date"):
                    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", value), (name, column, value)
    _, cohort = read_csv(out / "cohort_cycles.csv")
    # Cycle 0 describes the baseline: every column but these is an empty cell.
    assert {c for c, v in cohort[0].items() if v != ""} == {"cycle", "n_treated", "n_evaluable", "mean_mhd"}


def test_manifest_records_as_of_parameters_inputs_version_and_time(default_export) -> None:
    data, out, _, before, after = default_export
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["as_of"] == "2024-04-30"
    expected = {
        "headache_min_hours": 4.0,
        "baseline_days": 28,
        "cycle_days": 84,
        "min_completeness": 0.7,
        "min_window_days": 28,
        "responder_thresholds": [30, 50, 75],
        "as_of": "2024-04-30",
    }
    # Every SPEC §3 parameter is recorded with the value used (other recorded settings may follow).
    assert {k: manifest["parameters"].get(k) for k in expected} == expected
    files = manifest["files"]
    assert sorted(files) == ["diary.csv", "sessions.csv"]
    for name, (read, accepted, rejected) in {"sessions.csv": (3, 3, 0), "diary.csv": (160, 159, 1)}.items():
        entry = files[name]
        assert entry["sha256"] == hashlib.sha256((data / name).read_bytes()).hexdigest()
        assert (entry["rows_read"], entry["rows_accepted"], entry["rows_rejected"]) == (read, accepted, rejected)
    assert manifest["software"]["version"] == __version__
    exported = datetime.fromisoformat(manifest["exported_at"])
    assert exported.tzinfo is not None
    assert before <= exported <= after


def test_parameter_flags_change_the_results_and_are_recorded(default_export, tmp_path) -> None:
    data, default_out, _, _, _ = default_export
    out = tmp_path / "out"
    flags = [
        "--as-of",
        "2024-03-31",
        "--headache-min-hours",
        "3",
        "--baseline-days",
        "21",
        "--cycle-days",
        "70",
        "--min-completeness",
        "0.5",
        "--min-window-days",
        "14",
    ]
    result = run_export(data, out, *flags)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["as_of"] == "2024-03-31"
    expected = {
        "headache_min_hours": 3.0,
        "baseline_days": 21,
        "cycle_days": 70,
        "min_completeness": 0.5,
        "min_window_days": 14,
        "responder_thresholds": [30, 50, 75],
        "as_of": "2024-03-31",
    }
    # Every SPEC §3 parameter is recorded with the value used (other recorded settings may follow).
    assert {k: manifest["parameters"].get(k) for k in expected} == expected
    _, rows = read_csv(out / "patient_cycles.csv")
    p1 = {r["cycle"]: r for r in rows if r["patient_id"] == "P1"}
    # Baseline [2023-12-11, 2023-12-31] (21 days) = diary days 7..27: 7 at 6 h and 6 at 3 h count at >= 3 h:
    # 13 headache days, mhd = 13 / 21 * 28.
    assert (p1["0"]["start_date"], p1["0"]["window_days"], p1["0"]["headache_days"]) == ("2023-12-11", "21", "13")
    assert float(p1["0"]["mhd"]) == pytest.approx(13 / 21 * 28)
    # Cycle 1 = [2024-01-01, D1 + 69 = 2024-03-10]: 70 days, 21 headache days -> mhd 8.4.
    assert (p1["1"]["end_date"], p1["1"]["window_days"], p1["1"]["headache_days"]) == ("2024-03-10", "70", "21")
    assert float(p1["1"]["mhd_pct_change"]) == pytest.approx(100 * (8.4 - 13 / 21 * 28) / (13 / 21 * 28))
    # Cycle 2 = [2024-03-25, as_of 2024-03-31]: 7 days, ongoing, shorter than 14: not evaluable.
    assert (p1["2"]["status"], p1["2"]["window_days"], p1["2"]["evaluable"]) == ("ongoing", "7", "false")
    # P2's baseline [2023-12-25, 2024-01-14] holds 3 of the 10 recorded days (12-25..12-27): not evaluable.
    p2 = {r["cycle"]: r for r in rows if r["patient_id"] == "P2"}
    assert (p2["0"]["recorded_days"], p2["0"]["evaluable"]) == ("3", "false")
    assert (out / "patient_cycles.csv").read_bytes() != (default_out / "patient_cycles.csv").read_bytes()


def run_in_process(*argv: str) -> int:
    """``main`` as the process would exit: argparse's own errors exit with status 2."""
    try:
        return cli.main(list(argv))
    except SystemExit as exit_:
        return int(exit_.code)


@pytest.mark.parametrize(
    "flags",
    [["--min-completeness", "1.5"], ["--cycle-days", "0"], ["--as-of", "2024/03/31"], ["--headache-min-hours", "25"]],
)
def test_invalid_parameters_exit_2_and_write_nothing(tmp_path, flags) -> None:
    data = write(tmp_path / "data", dataset_files())
    out = tmp_path / "out"
    assert run_in_process("export", "--data", str(data), "--out", str(out), *flags) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_strict_exits_1_on_a_rejected_row_and_writes_nothing(tmp_path, capsys) -> None:
    data = write(tmp_path / "data", dataset_files())
    assert run_in_process("export", "--data", str(data), "--out", str(tmp_path / "out"), "--strict") == 1
    assert "diary.csv line 2 (P2): headache_hours out of range" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"], "no output folder, no staging folder"


def test_strict_on_a_clean_dataset_exits_0(tmp_path) -> None:
    data = write(tmp_path / "data", dataset_files(clean=True))
    assert run_in_process("export", "--data", str(data), "--out", str(tmp_path / "out"), "--strict") == 0
    _, rows = read_csv(tmp_path / "out" / "rejected_rows.csv")
    assert rows == []


REFUSALS = {
    # case: (changed input files (None = absent), exit status, words of the message, run as a process)
    "missing-file": ({"diary.csv": None}, 2, ["diary.csv"], False),
    "missing-column": (
        {"diary.csv": "patient_id,date,migraine\nP1,2024-01-01,yes\n"},
        2,
        ["diary.csv", "headache_hours"],
        True,
    ),
    "unparseable": ({"sessions.csv": 'patient_id,session_date\n"P1,2024-01-01\n'}, 2, ["sessions.csv"], False),
    "identifier": (
        {"patients.csv": "patient_id,Date of Birth\nP1,1970-01-01\nP2,1980-01-01\n"},
        3,
        ["patients.csv", "Date of Birth", "pseudonym"],
        True,
    ),
    "strict": ({}, 1, ["--strict", "diary.csv line 2 (P2): headache_hours out of range"], True),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_run_leaves_an_existing_export_untouched(tmp_path, capsys, case: str) -> None:
    changes, exit_code, words, as_process = REFUSALS[case]
    # A previous, successful export in OUT_DIR (plus a file of the user's own).
    out = tmp_path / "out"
    out.mkdir()
    for name in OUTPUTS:
        (out / name).write_text(f"previous {name}\n")
    (out / "notes.txt").write_text("mine\n")
    files = dataset_files()
    for name, text in changes.items():
        if text is None:
            files.pop(name)
        else:
            files[name] = text
    data = write(tmp_path / "data", files)
    before = snapshot(tmp_path)
    flags = ["--strict"] if case == "strict" else []
    if as_process:
        result = run_export(data, out, *flags)
        code, stderr = result.returncode, result.stderr
    else:
        code = run_in_process("export", "--data", str(data), "--out", str(out), *flags)
        stderr = capsys.readouterr().err
    assert code == exit_code, stderr
    message = stderr if case == "strict" else stderr.strip().splitlines()[-1]
    for word in words:
        assert word in message, (word, message)
    assert snapshot(tmp_path) == before, "the previous export changed or a partial/temporary file was left"


# --- write failures (in-process, so the file system can be made to fail) ---------------------


def previous_export(out: Path) -> dict[str, bytes]:
    out.mkdir(parents=True)
    for name in OUTPUTS:
        (out / name).write_text(f"previous {name}\n")
    return snapshot(out)


def test_failing_replace_midway_restores_the_previous_export(tmp_path, monkeypatch) -> None:
    data = write(tmp_path / "data", dataset_files())
    out = tmp_path / "out"
    before = previous_export(out)
    real_replace = os.replace
    calls = []

    def flaky_replace(src, dst, *args, **kwargs):
        calls.append((Path(src).name, Path(dst).parent == out))
        # The second table moved into OUT_DIR fails (a file held open by a spreadsheet, say).
        if sum(into_out for _, into_out in calls) == 2 and Path(dst).parent == out:
            raise PermissionError(13, "Permission denied")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", flaky_replace)
    assert cli.main(["export", "--data", str(data), "--out", str(out)]) == 4
    monkeypatch.undo()
    assert snapshot(out) == before, "a mix of new and previous tables was left in OUT_DIR"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out"], "a staging folder was left behind"


def test_failing_rename_of_a_new_out_dir_leaves_nothing(tmp_path, monkeypatch) -> None:
    data = write(tmp_path / "data", dataset_files())

    def failing_rename(src, dst, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "rename", failing_rename)
    assert cli.main(["export", "--data", str(data), "--out", str(tmp_path / "out")]) == 4
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_a_full_disk_while_writing_leaves_nothing(tmp_path, monkeypatch, capsys) -> None:
    data = write(tmp_path / "data", dataset_files())
    out = tmp_path / "out"
    before = previous_export(out)
    real_fsync = os.fsync
    written = []

    def failing_fsync(fd):
        written.append(fd)
        if len(written) == 2:  # the second file cannot be flushed to disk
            raise OSError(28, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    assert cli.main(["export", "--data", str(data), "--out", str(out)]) == 4
    monkeypatch.undo()
    assert "cannot write" in capsys.readouterr().err
    assert snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out"]


def test_in_process_export_matches_the_command_line(default_export, tmp_path) -> None:
    data, out, _, _, _ = default_export
    assert cli.main(["export", "--data", str(data), "--out", str(tmp_path / "again")]) == 0
    for name in ("patient_cycles.csv", "cohort_cycles.csv", "rejected_rows.csv"):
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes(), name


def test_failing_replace_into_a_folder_without_a_previous_export_leaves_only_the_users_files(
    tmp_path, monkeypatch
) -> None:
    data = write(tmp_path / "data", dataset_files())
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    real_replace = os.replace
    into_out = []

    def flaky_replace(src, dst, *args, **kwargs):
        if Path(dst).parent == out:
            into_out.append(dst)
            if len(into_out) == 3:
                raise OSError(5, "Input/output error")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", flaky_replace)
    assert cli.main(["export", "--data", str(data), "--out", str(out)]) == 4
    monkeypatch.undo()
    assert snapshot(out) == {"notes.txt": b"mine\n"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out"]


def test_a_successful_run_replaces_a_previous_export_and_keeps_other_files(default_export, tmp_path) -> None:
    data, fresh, _, _, _ = default_export
    out = tmp_path / "out"
    previous_export(out)
    (out / "notes.txt").write_text("mine\n")
    assert cli.main(["export", "--data", str(data), "--out", str(out)]) == 0
    assert {*OUTPUTS, "notes.txt"} <= {p.name for p in out.iterdir()}
    assert (out / "notes.txt").read_text() == "mine\n"
    for name in ("patient_cycles.csv", "cohort_cycles.csv", "rejected_rows.csv"):
        assert (out / name).read_bytes() == (fresh / name).read_bytes(), name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"], "no staging folder is left"


# --- a folder holds one whole export or is visibly incomplete -----------------------------------


def export_kind(out: Path) -> str:
    """Which export a folder's manifest lists: "full", "suppressed" or "none" (no manifest)."""
    if not (out / "manifest.json").exists():
        return "none"
    listed = json.loads((out / "manifest.json").read_text())["export_files"]
    return "suppressed" if "rejected_counts.csv" in listed else "full"


def test_the_manifest_lists_every_file_with_its_sha256(default_export) -> None:
    _, out, _, _, _ = default_export
    listed = json.loads((out / "manifest.json").read_text())["export_files"]
    assert sorted(listed) == sorted(OUTPUTS[:-1])
    for name, entry in listed.items():
        data = (out / name).read_bytes()
        assert entry == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert verify_export(out) == []
    assert cli.main(["verify", str(out)]) == 0


def test_verify_export_finds_a_changed_a_missing_and_a_foreign_file(default_export, tmp_path, capsys) -> None:
    _, fresh, _, _, _ = default_export
    out = tmp_path / "out"
    shutil.copytree(fresh, out)
    (out / "cohort_cycles.csv").write_text("edited\n")
    (out / "rejected_rows.csv").unlink()
    (out / "rejected_counts.csv").write_text("file,reason,rows\n")
    assert sorted(verify_export(out)) == [
        "cohort_cycles.csv is not the file the manifest lists (SHA-256 differs)",
        "rejected_counts.csv is not part of this export",
        "rejected_rows.csv is missing",
    ]
    (out / "manifest.json").unlink()
    assert verify_export(out) == ["no manifest.json: the export is incomplete (interrupted, or still being written)"]
    assert cli.main(["verify", str(out)]) == 1
    assert "not a whole export" in capsys.readouterr().err


@pytest.mark.parametrize("failing_call", [1, 2, 3, 4, 5, 6])
def test_a_failure_at_any_replacement_leaves_the_previous_whole_export(tmp_path, monkeypatch, failing_call) -> None:
    # The previous export is a --min-cell one; the new one is a full export, which also removes its
    # rejected_counts.csv (moves: the old manifest out, rejected_counts.csv out, three tables in, the new
    # manifest in). Whichever move fails, everything is put back: the previous export, whole.
    data = write(tmp_path / "data", dataset_files())
    out = tmp_path / "out"
    assert cli.main(["export", "--data", str(data), "--out", str(out), "--min-cell", "5"]) == 0
    (out / "notes.txt").write_text("mine\n")
    before = snapshot(out)
    real_replace = os.replace
    calls = []

    def flaky_replace(src, dst, *args, **kwargs):
        calls.append(dst)
        if len(calls) == failing_call:
            raise PermissionError(13, "Permission denied")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", flaky_replace)
    assert cli.main(["export", "--data", str(data), "--out", str(out)]) == 4
    monkeypatch.undo()
    assert len(calls) >= failing_call
    assert snapshot(out) == before
    assert verify_export(out) == [] and export_kind(out) == "suppressed"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out"]


def test_when_putting_back_fails_too_the_folder_has_no_manifest(tmp_path, monkeypatch) -> None:
    data = write(tmp_path / "data", dataset_files())
    out = tmp_path / "out"
    assert cli.main(["export", "--data", str(data), "--out", str(out)]) == 0
    real_replace = os.replace
    calls = []

    def failing_from_the_third(src, dst, *args, **kwargs):  # the disk fails for good
        calls.append(dst)
        if len(calls) >= 3:
            raise OSError(5, "Input/output error")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", failing_from_the_third)
    assert cli.main(["export", "--data", str(data), "--out", str(out)]) == 4
    monkeypatch.undo()
    assert export_kind(out) == "none"  # a mix of tables, but visibly incomplete
    assert verify_export(out)[0].startswith("no manifest.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out"]


CRASHING_EXPORT = """
import os, sys
from analytics.cli import main

real_replace, calls = os.replace, []

def replace(src, dst, *args, **kwargs):
    calls.append(dst)
    if len(calls) > int(sys.argv[1]):
        os._exit(9)  # killed: no clean-up, no putting back
    return real_replace(src, dst, *args, **kwargs)

os.replace = replace
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("moves_before_the_kill", [0, 1, 3, 4])
def test_a_kill_between_replacements_leaves_a_whole_export_or_none_and_the_next_run_cleans_up(
    tmp_path, moves_before_the_kill
) -> None:
    # Moves of a full export over a full one: the old manifest out (1), three tables in (2-4),
    # the new manifest in (5).
    data = write(tmp_path / "data", dataset_files())
    out = tmp_path / "out"
    assert cli.main(["export", "--data", str(data), "--out", str(out), "--as-of", "2024-04-15"]) == 0
    killed = subprocess.run(
        [
            sys.executable,
            "-c",
            CRASHING_EXPORT,
            str(moves_before_the_kill),
            "export",
            "--data",
            str(data),
            "--out",
            str(out),
        ],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == 9, killed.stderr
    if moves_before_the_kill == 0:
        assert verify_export(out) == []  # nothing moved yet: the previous export, whole
    else:
        assert export_kind(out) == "none"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.staging-")]  # left by the kill
    # The next export (a --min-cell one is refused while patient-level files are there) cleans up.
    assert cli.main(["export", "--data", str(data), "--out", str(out)]) == 0
    assert verify_export(out) == [] and export_kind(out) == "full"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "out"]


def test_stale_staging_folders_are_removed_but_not_other_folders(tmp_path) -> None:
    data = write(tmp_path / "data", dataset_files())
    stale = tmp_path / ".out.staging-ab12cd34"
    (stale / ".previous").mkdir(parents=True)
    (stale / "patient_cycles.csv").write_text("patient_id\nP1\n")
    (stale / ".previous" / "rejected_rows.csv").write_text("file,line,patient_id,reason\n")
    older = tmp_path / ".out.k3j4h5g6"  # a staging folder of an earlier version
    older.mkdir()
    (older / "manifest.json").write_text("{}\n")
    mine = tmp_path / ".out.notes123"  # named like one, but holds a file of the user's
    mine.mkdir()
    (mine / "notes.txt").write_text("mine\n")
    other = tmp_path / ".out.backup"
    other.mkdir()
    assert cli.main(["export", "--data", str(data), "--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.backup", ".out.notes123", "data", "out"]


def test_a_full_export_removes_the_files_of_a_previous_min_cell_export(tmp_path) -> None:
    data = write(tmp_path / "data", dataset_files())
    out = tmp_path / "out"
    assert cli.main(["export", "--data", str(data), "--out", str(out), "--min-cell"]) == 0
    (out / "notes.txt").write_text("mine\n")
    assert cli.main(["export", "--data", str(data), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([*OUTPUTS, "notes.txt"])
    assert verify_export(out) == []


def test_a_min_cell_export_written_over_a_full_one_leaves_no_patient_level_file(tmp_path) -> None:
    # The command refuses this (exit 2, test_suppression); the writer removes them all the same.
    from analytics.definitions.pipeline import analyse
    from analytics.ingest.load import load_dataset
    from analytics.views.cohort_filter import CohortFilter, filtered_export

    data = write(tmp_path / "data", dataset_files())
    out = tmp_path / "out"
    assert cli.main(["export", "--data", str(data), "--out", str(out)]) == 0
    dataset = load_dataset(data)
    write_atomically(filtered_export(analyse(dataset), dataset, CohortFilter(), min_cell=5), out)
    assert sorted(p.name for p in out.iterdir()) == ["cohort_cycles.csv", "manifest.json", "rejected_counts.csv"]
    assert verify_export(out) == []


HOLDING_EXPORT = """
import os, sys, time
from pathlib import Path
from analytics.cli import main

real_replace, ready, go = os.replace, Path(sys.argv[1]), Path(sys.argv[2])

def replace(src, dst, *args, **kwargs):  # stop before the first move until told to go on
    if not ready.exists():
        ready.touch()
        deadline = time.monotonic() + 60
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    return real_replace(src, dst, *args, **kwargs)

os.replace = replace
sys.exit(main(sys.argv[3:]))
"""


def test_a_second_export_into_the_same_folder_at_the_same_time_fails_with_exit_4(tmp_path) -> None:
    data = write(tmp_path / "data", dataset_files())
    out = tmp_path / "out"
    assert cli.main(["export", "--data", str(data), "--out", str(out), "--min-cell"]) == 0
    ready, go = tmp_path / "ready", tmp_path / "go"
    first = subprocess.Popen(
        [sys.executable, "-c", HOLDING_EXPORT, str(ready), str(go), "export", "--data", str(data), "--out", str(out)],
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=90)
        while not ready.exists():
            assert first.poll() is None and datetime.now(UTC) < deadline, "the first export did not start"
            time.sleep(0.05)
        during = snapshot(tmp_path)
        second = run_export(data, out, "--as-of", "2024-04-15")
        assert second.returncode == 4, second.stderr
        assert "another export is writing into" in second.stderr
        assert snapshot(tmp_path) == during  # the second touched nothing
    finally:
        go.touch()
        _, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    assert verify_export(out) == [] and export_kind(out) == "full"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "go", "out", "ready"]  # lock released
    assert cli.main(["export", "--data", str(data), "--out", str(out), "--as-of", "2024-04-15"]) == 0
