"""The audit trail: an append-only JSON-lines log of who logged in, was refused, opened a patient or exported.

One event per line, a JSON object with ``ts`` (UTC, ISO 8601), ``event``, ``user`` (the e-mail
address, ``local`` in single-user mode) and ``role``, then the event's own fields:

- ``login``: ``mode`` (``oidc`` or ``local``), ``clinics``;
- ``refused``: ``reason`` (not in the access file, access file broken, no e-mail from the provider);
- ``open_patient``: ``patient_id`` (as the user saw it), ``page``;
- ``export``: ``file``, ``kind`` (patient_level or aggregate), ``rows``, ``filter`` (the view's query
  parameters other than the analysis parameters), ``parameters`` (the analysis parameters with the
  as_of used), ``page``, ``min_cell`` (when suppressed).

The log never holds data values: each event accepts only its own field names, and a value must be
text, a number, true/false or empty, or a list or table of those (filters, parameters), so a data
frame, a diary row or a figure cannot be written by mistake. Lines are written with one ``write``
to a file opened with ``O_APPEND`` (created with mode 0600), so concurrent writers never overwrite
each other and nothing is ever rewritten; the log is rotated, if at all, by the administrator.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from analytics.definitions.config import PROJECT_DIR

DEFAULT_AUDIT_LOG = PROJECT_DIR / "logs" / "audit.jsonl"
COMMON_FIELDS = ("ts", "event", "user", "role")
EVENT_FIELDS: Mapping[str, frozenset[str]] = {
    "login": frozenset({"mode", "clinics"}),
    "refused": frozenset({"reason"}),
    "open_patient": frozenset({"patient_id", "page"}),
    "export": frozenset({"file", "kind", "rows", "filter", "parameters", "page", "min_cell"}),
}
COLUMNS = (*COMMON_FIELDS, "mode", "clinics", "reason", "patient_id", "page", "file", "kind", "rows", "filter",
           "parameters", "min_cell")
"""The columns of ``read_events``, in display order."""

class AuditError(ValueError):
    """An event that the audit log does not accept (unknown event or field, a value that is data)."""


def _checked(name: str, value: object, depth: int = 0) -> object:
    """``value`` when it is a scalar, a list of scalars, or a table of scalars and lists of scalars."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if depth < 2 and isinstance(value, (list, tuple)):
        return [_checked(name, v, depth + 1) for v in value]
    if depth < 1 and isinstance(value, Mapping):
        return {str(k): _checked(name, v, depth + 1) for k, v in value.items()}
    raise AuditError(f"audit field {name!r}: {type(value).__name__} is not accepted (the log holds no data)")


def event_line(event: str, user: str, role: str | None, now: datetime | None = None, **fields: object) -> bytes:
    """One event as a JSON line; raises ``AuditError`` for an unknown event, field or a data value."""
    if event not in EVENT_FIELDS:
        raise AuditError(f"unknown audit event {event!r}")
    unknown = set(fields) - EVENT_FIELDS[event]
    if unknown:
        raise AuditError(f"audit event {event!r} has no field(s) {', '.join(sorted(unknown))}")
    record: dict[str, object] = {
        "ts": (now or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds"),
        "event": event,
        "user": _checked("user", user),
        "role": _checked("role", role),
    }
    record.update({name: _checked(name, value) for name, value in fields.items()})
    # ensure_ascii: one line whatever the text, and no control character can split it.
    return (json.dumps(record, ensure_ascii=True, allow_nan=False) + "\n").encode("ascii")


class AuditLog:
    """The append-only log at ``path`` (its folder is created with mode 0700 when missing)."""

    def __init__(self, path: Path | str = DEFAULT_AUDIT_LOG):
        self.path = Path(path).expanduser()

    def record(self, event: str, user: str, role: str | None, **fields: object) -> None:
        """Append one event; the whole line goes out in one ``write`` on an ``O_APPEND`` descriptor."""
        line = event_line(event, user, role, **fields)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            written = os.write(fd, line)
            if written != len(line):  # a short write on a regular file means the disk is full
                raise OSError(f"audit log {self.path}: only {written} of {len(line)} bytes written")
            os.fsync(fd)
        finally:
            os.close(fd)


def read_events(path: Path | str) -> tuple[pd.DataFrame, int]:
    """The events of the log (oldest first, columns ``COLUMNS``) and how many lines could not be read.

    A missing log reads as no events. A line that is not a JSON object (a torn last line after a
    crash, an edit by hand) is counted, not guessed at. ``filter`` and ``parameters`` stay JSON text.
    """
    path = Path(path).expanduser()
    if not path.exists():
        return pd.DataFrame(columns=list(COLUMNS)), 0
    records, unreadable = [], 0
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                unreadable += 1
                continue
            if not isinstance(record, dict) or "event" not in record:
                unreadable += 1
                continue
            records.append(record)
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    for name in ("filter", "parameters", "clinics"):
        frame[name] = [json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v for v in frame[name]]
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, errors="coerce")
    frame["rows"] = pd.to_numeric(frame["rows"], errors="coerce").astype("Int64")
    frame["min_cell"] = pd.to_numeric(frame["min_cell"], errors="coerce").astype("Int64")
    return frame, unreadable
