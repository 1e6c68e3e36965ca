"""The audit log (issue #6): append-only JSON lines, only the fields of each event, never data values."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics.privacy import audit


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="ascii").splitlines()]


def test_events_are_json_lines_with_the_common_fields(tmp_path: Path) -> None:
    log = audit.AuditLog(tmp_path / "logs" / "audit.jsonl")
    log.record("login", "dr.north@clinic.example", "doctor", mode="oidc", clinics=["North"])
    log.record("open_patient", "dr.north@clinic.example", "doctor", patient_id="N1", page="patient")
    log.record("export", "boss@clinic.example", "manager", file="cohort_cycles.csv", kind="aggregate", rows=5,
               filter={"clinic": "North", "injector": ["INJ1", "INJ2"]}, parameters={"cycle_days": 84}, page="data")
    log.record("refused", "stranger@x.org", None, reason="not in the access file")
    events = lines(log.path)
    assert [e["event"] for e in events] == ["login", "open_patient", "export", "refused"]
    assert events[1] == {"ts": events[1]["ts"], "event": "open_patient", "user": "dr.north@clinic.example",
                         "role": "doctor", "patient_id": "N1", "page": "patient"}
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
    log.record("export", "a@x.org", "researcher", file="patient_cycles.csv", kind="patient_level", rows=12,
               filter={"sex": ["F", "M"]}, parameters={"cycle_days": 84}, page="outcomes", min_cell=None)
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
