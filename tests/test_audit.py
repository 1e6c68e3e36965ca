"""The audit log (issue #6): append-only JSON lines, only the fields of each event, never data values."""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import multiprocessing
import stat
import subprocess
import sys
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.cli import main as analytics_main
from analytics.privacy import audit

PROJECT_DIR = Path(__file__).resolve().parent.parent


def lines(path: Path) -> list[dict[str, object]]:
    """The events of the log, each without its chain fields (``prev`` and ``hash``, checked here)."""
    events = []
    for line in path.read_text(encoding="ascii").splitlines():
        event = json.loads(line)
        if "hash" in event:  # a chained line: both digests, and they are the last two fields
            assert list(event)[-2:] == ["prev", "hash"]
            assert all(len(event.pop(name)) == 64 for name in ("prev", "hash"))
        events.append(event)
    return events


def test_events_are_json_lines_with_the_common_fields(tmp_path: Path) -> None:
    log = audit.AuditLog(tmp_path / "logs" / "audit.jsonl")
    log.record("login", "dr.north@clinic.example", "doctor", mode="oidc", clinics=["North"])
    log.record("open_patient", "dr.north@clinic.example", "doctor", patient_id="N1", page="patient")
    log.record(
        "export",
        "boss@clinic.example",
        "manager",
        file="cohort_cycles.csv",
        kind="aggregate",
        rows=5,
        filter={"clinic": "North", "injector": ["INJ1", "INJ2"]},
        parameters={"cycle_days": 84},
        page="data",
    )
    log.record("refused", "stranger@x.org", None, reason="not in the access file")
    events = lines(log.path)
    assert [e["event"] for e in events] == ["login", "open_patient", "export", "refused"]
    assert events[1] == {
        "ts": events[1]["ts"],
        "event": "open_patient",
        "user": "dr.north@clinic.example",
        "role": "doctor",
        "patient_id": "N1",
        "page": "patient",
    }
    assert events[2]["filter"] == {"clinic": "North", "injector": ["INJ1", "INJ2"]}
    assert events[2]["rows"] == 5
    assert events[3]["role"] is None
    for event in events:
        assert datetime.fromisoformat(event["ts"]).utcoffset().total_seconds() == 0


def test_the_time_is_utc(tmp_path: Path) -> None:
    line = audit.event_line("login", "a@x.org", "admin", now=datetime(2024, 5, 1, 12, 30, tzinfo=UTC), mode="local")
    assert json.loads(line)["ts"] == "2024-05-01T12:30:00+00:00"
    assert line.endswith(b"\n") and line.count(b"\n") == 1


def test_appending_never_rewrites(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b'{"event": "login", "user": "earlier@x.org"}\n')
    before = path.read_bytes()
    first, second = audit.AuditLog(path), audit.AuditLog(path)  # two writers, e.g. two server processes
    first.record("login", "a@x.org", "admin", mode="oidc")
    second.record("open_patient", "b@x.org", "doctor", patient_id="P7")
    first.record("refused", "c@x.org", None, reason="not in the access file")
    content = path.read_bytes()
    assert content.startswith(before)  # a writer without O_APPEND would have written over the first line
    assert [e["user"] for e in lines(path)] == ["earlier@x.org", "a@x.org", "b@x.org", "c@x.org"]


def test_a_new_log_is_private(tmp_path: Path) -> None:
    log = audit.AuditLog(tmp_path / "new" / "audit.jsonl")
    log.record("login", "a@x.org", "admin", mode="local")
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.path.parent.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    "value",
    [
        pd.DataFrame({"headache_hours": [7.25]}),
        pd.Series([7.25]),
        np.array([7.25]),
        {"rows": pd.Series([1])},
        {"nested": {"deeper": 1}},
        object(),
        b"bytes",
    ],
)
def test_data_cannot_be_written(tmp_path: Path, value: object) -> None:
    log = audit.AuditLog(tmp_path / "audit.jsonl")
    with pytest.raises(audit.AuditError):
        log.record("export", "a@x.org", "admin", file="x.csv", kind="aggregate", parameters=value)
    assert not log.path.exists()


def test_only_the_fields_of_the_event(tmp_path: Path) -> None:
    log = audit.AuditLog(tmp_path / "audit.jsonl")
    with pytest.raises(audit.AuditError, match="no field"):
        log.record("open_patient", "a@x.org", "doctor", patient_id="P1", headache_hours=7.25)
    with pytest.raises(audit.AuditError, match="no field"):
        log.record("login", "a@x.org", "doctor", diary=[7.25, 3.0])
    with pytest.raises(audit.AuditError, match="unknown audit event"):
        log.record("view_diary", "a@x.org", "doctor")
    assert not log.path.exists()


def test_reader(tmp_path: Path) -> None:
    log = audit.AuditLog(tmp_path / "audit.jsonl")
    log.record(
        "export",
        "a@x.org",
        "researcher",
        file="patient_cycles.csv",
        kind="patient_level",
        rows=12,
        filter={"sex": ["F", "M"]},
        parameters={"cycle_days": 84},
        page="outcomes",
        min_cell=None,
    )
    log.record("open_patient", "b@x.org", "doctor", patient_id="N1", page="patient")
    with open(log.path, "ab") as handle:
        handle.write(b'{"event": "login", "user": "torn')  # a line cut off by a crash
    events, unreadable = audit.read_events(log.path)
    assert unreadable == 1
    assert list(events.columns) == list(audit.COLUMNS)
    assert list(events["event"]) == ["export", "open_patient"]
    assert events.loc[0, "rows"] == 12
    assert json.loads(events.loc[0, "filter"]) == {"sex": ["F", "M"]}
    assert events.loc[1, "patient_id"] == "N1"
    assert str(events["ts"].dt.tz) == "UTC"


def test_reading_a_missing_log(tmp_path: Path) -> None:
    events, unreadable = audit.read_events(tmp_path / "none.jsonl")
    assert events.empty and unreadable == 0
    assert list(events.columns) == list(audit.COLUMNS)


# --- bounded fields -------------------------------------------------------------------------------------


def test_long_text_is_cut(tmp_path: Path) -> None:
    log = audit.AuditLog(tmp_path / "audit.jsonl")
    log.record(
        "export",
        "a@x.org",
        "admin",
        file="x" * 100_000 + ".csv",
        kind="aggregate",
        filter={"q" * 5_000: "v" * 5_000},
        page="p" * 10_000,
    )
    log.record("refused", "u" * 10_000 + "@x.org", None, reason="r" * 10_000, patient_id="P" * 10_000)
    export, refused = lines(log.path)
    assert len(export["file"]) <= audit.MAX_TEXT and export["file"].startswith("xxx")
    assert export["file"].endswith("more characters]")
    [(key, value)] = export["filter"].items()
    assert len(key) <= audit.MAX_TEXT and len(value) <= audit.MAX_TEXT
    for text in (export["page"], refused["user"], refused["reason"], refused["patient_id"]):
        assert len(text) <= audit.MAX_TEXT
    assert len(log.path.read_bytes()) < 7 * audit.MAX_TEXT + 1_000  # seven long fields, each cut


def test_the_number_of_query_parameters_and_values_is_capped(tmp_path: Path) -> None:
    log = audit.AuditLog(tmp_path / "audit.jsonl")
    values = [str(j) for j in range(500)]
    many = {f"p{i}": values for i in range(2_000)}  # a crafted URL
    log.record("export", "a@x.org", "admin", file="x.csv", kind="aggregate", filter=many)
    [event] = lines(log.path)
    assert len(event["filter"]) == audit.MAX_ITEMS + 1  # the first MAX_ITEMS, and a note
    assert event["filter"]["…"] == f"[{2_000 - audit.MAX_ITEMS:,} more]"
    assert event["filter"]["p0"][: audit.MAX_ITEMS] == values[: audit.MAX_ITEMS]
    assert event["filter"]["p0"][-1] == f"…[{500 - audit.MAX_ITEMS:,} more]"
    assert len(log.path.read_bytes()) < 200_000


def test_short_fields_are_kept_as_they_are(tmp_path: Path) -> None:
    text = "é" * audit.MAX_TEXT
    line = json.loads(audit.event_line("refused", "a@x.org", None, reason=text))
    assert line["reason"] == text


# --- rows of a download ------------------------------------------------------------------------------


def test_data_rows_of_downloaded_files() -> None:
    assert audit.data_rows("patient_cycles.csv", b'patient_id,note\nN1,"two\nlines"\nN2,x\n') == 2
    assert audit.data_rows("empty.csv", b"patient_id,cycle\n") == 0
    assert audit.data_rows("manifest.json", b'{"as_of": "2024-01-01"}') == 0
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.csv", "x\n1\n2\n3\n")
        z.writestr("b.csv", "y\n1\n")
        z.writestr("manifest.json", "{}")
    assert audit.data_rows("export.zip", archive.getvalue()) == 4
    assert audit.data_rows("summary.html", b"<html></html>") is None


# --- tamper evidence -----------------------------------------------------------------------------------


def chained_log(path: Path, n: int = 5) -> Path:
    log = audit.AuditLog(path)
    for i in range(n):
        log.record("open_patient", "dr.north@clinic.example", "doctor", patient_id=f"N{i + 1}", page="patient")
    return path


def test_each_line_chains_to_the_one_before(tmp_path: Path) -> None:
    path = chained_log(tmp_path / "audit.jsonl")
    raw = path.read_bytes().splitlines(keepends=True)
    prev = audit.GENESIS
    for line in raw:
        record = json.loads(line)
        assert record["prev"] == prev
        body = line[: line.rindex(b', "hash"')] + b"}"
        assert record["hash"] == hashlib.sha256(body).hexdigest()
        prev = hashlib.sha256(line).hexdigest()
    head = json.loads(audit.head_path(path).read_text())
    assert head == {"lines": 5, "bytes": len(path.read_bytes()), "last_line_sha256": prev}
    assert stat.S_IMODE(audit.head_path(path).stat().st_mode) == 0o600
    assert audit.verify(path) == audit.Verification(True, 5)


def _rewrite(path: Path, change: Callable[[list[bytes]], list[bytes]]) -> None:
    path.write_bytes(b"".join(change(path.read_bytes().splitlines(keepends=True))))


def _edited(lines_: list[bytes]) -> list[bytes]:
    lines_[2] = lines_[2].replace(b'"N3"', b'"S1"')
    return lines_


def _edited_with_a_new_hash(lines_: list[bytes]) -> list[bytes]:
    """A forger who also recomputes the edited line's own hash: the next line no longer follows it."""
    record = json.loads(lines_[2])
    record.pop("hash")
    record["patient_id"] = "S1"
    body = json.dumps(record).encode()
    lines_[2] = body[:-1] + b', "hash": "' + hashlib.sha256(body).hexdigest().encode() + b'"}\n'
    return lines_


def _inserted(lines_: list[bytes]) -> list[bytes]:
    forged = audit.seal(
        audit.event_line("login", "intruder@x.org", "admin", mode="oidc"), hashlib.sha256(lines_[1]).hexdigest()
    )  # a well-formed line chained to line 2
    return [*lines_[:2], forged, *lines_[2:]]


def _deleted(lines_: list[bytes]) -> list[bytes]:
    return lines_[:2] + lines_[3:]


@pytest.mark.parametrize(
    ("change", "broken_line"),
    [
        (_edited, 3),
        (_edited_with_a_new_hash, 4),
        (_inserted, 4),  # line 4 (old line 3) does not follow the inserted one
        (_deleted, 3),
        (lambda lines_: lines_[1:], 1),  # the first line deleted
        (lambda lines_: [*lines_[:2], b"\n", *lines_[2:]], 3),  # a blank line inserted
        (lambda lines_: [lines_[1], lines_[0], *lines_[2:]], 1),  # two lines swapped
        (lambda lines_: lines_[:-1], 5),  # the tail cut off: caught by the head file
        (lambda lines_: [*lines_[:-1], lines_[-1][:-30]], 5),  # the last line cut short
        (lambda lines_: [], 1),  # everything deleted but the file
    ],
    ids=[
        "edit",
        "edit-and-rehash",
        "insert",
        "delete",
        "delete-first",
        "blank-line",
        "swap",
        "truncate-tail",
        "cut-last-line",
        "empty",
    ],
)
def test_tampering_is_detected(tmp_path: Path, change: Callable[[list[bytes]], list[bytes]], broken_line: int) -> None:
    path = chained_log(tmp_path / "audit.jsonl")
    _rewrite(path, change)
    result = audit.verify(path)
    assert not result.ok
    assert result.broken_line == broken_line, result


def test_a_deleted_log_or_head_file_is_detected(tmp_path: Path) -> None:
    path = chained_log(tmp_path / "audit.jsonl")
    audit.head_path(path).unlink()
    result = audit.verify(path)
    assert not result.ok and "head file" in str(result.problem)
    path = chained_log(tmp_path / "other.jsonl")
    path.unlink()
    assert not audit.verify(path).ok
    assert audit.verify(tmp_path / "never_written.jsonl").ok  # no log yet, no head: nothing to check


def test_a_rewritten_log_does_not_match_its_head(tmp_path: Path) -> None:
    """A forger who rewrites the whole chain (one line changed, every hash after it redone) but not the head."""
    path = chained_log(tmp_path / "audit.jsonl", n=3)
    head = audit.head_path(path).read_bytes()
    path.unlink()
    audit.head_path(path).unlink()
    forged = audit.AuditLog(path)
    for pid in ("N1", "S1", "N3"):
        forged.record("open_patient", "dr.north@clinic.example", "doctor", patient_id=pid, page="patient")
    audit.head_path(path).write_bytes(head)
    result = audit.verify(path)
    assert (result.ok, result.broken_line) == (False, 3)


def test_a_crash_between_the_append_and_the_head_is_not_tampering(tmp_path: Path) -> None:
    path = chained_log(tmp_path / "audit.jsonl", n=3)
    head = audit.head_path(path).read_bytes()
    audit.AuditLog(path).record("login", "a@x.org", "admin", mode="local")
    audit.head_path(path).write_bytes(head)  # as if the server died before replacing the head
    assert audit.verify(path).ok
    audit.AuditLog(path).record("login", "b@x.org", "admin", mode="local")  # the next append repairs the head
    assert audit.verify(path) == audit.Verification(True, 5)


def test_a_torn_line_is_reported_and_the_chain_goes_on(tmp_path: Path) -> None:
    path = chained_log(tmp_path / "audit.jsonl", n=2)
    with open(path, "ab") as handle:
        handle.write(b'{"event": "login", "user": "torn')  # a crash in the middle of a write
    audit.AuditLog(path).record("login", "a@x.org", "admin", mode="local")
    events, unreadable = audit.read_events(path)
    assert (len(events), unreadable) == (3, 1)
    result = audit.verify(path)
    assert (result.ok, result.broken_line) == (False, 3)


def _append_many(path: str, writer: int, n: int) -> None:
    log = audit.AuditLog(path)
    for i in range(n):
        log.record("open_patient", f"writer{writer}@x.org", "doctor", patient_id=f"P{i}", page="patient")


def test_concurrent_writers_keep_the_chain(tmp_path: Path) -> None:
    """Four processes and, in each, two threads append at once; every line is kept and the chain holds."""
    path = str(tmp_path / "audit.jsonl")
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(4, mp_context=context) as pool:
        futures = [pool.submit(_append_many, path, writer, 25) for writer in range(4)]
        with concurrent.futures.ThreadPoolExecutor(2) as threads:
            list(threads.map(lambda w: _append_many(path, w, 25), (4, 5)))
        for future in futures:
            future.result()
    result = audit.verify(path)
    assert result == audit.Verification(True, 150), result
    users = [e["user"] for e in lines(Path(path))]
    assert sorted(set(users)) == [f"writer{w}@x.org" for w in range(6)]
    assert all(users.count(f"writer{w}@x.org") == 25 for w in range(6))


def test_audit_verify_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = chained_log(tmp_path / "audit.jsonl")
    assert analytics_main(["audit-verify", "--log", str(path)]) == 0
    assert capsys.readouterr().out.startswith("OK: 5 lines")
    _rewrite(path, _deleted)
    assert analytics_main(["audit-verify", "--log", str(path)]) == 1
    assert capsys.readouterr().out.startswith("line 3: ")


def test_audit_verify_command_reads_the_log_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = chained_log(tmp_path / "audit.jsonl", n=2)
    _rewrite(path, lambda lines_: [lines_[1], lines_[0]])
    monkeypatch.setenv("OUTCOMES_AUDIT_LOG", str(path))
    done = subprocess.run(
        [sys.executable, "-m", "analytics", "audit-verify"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout.split(":")[0]) == (1, "line 1")
