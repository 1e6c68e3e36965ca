"""The audit trail: an append-only JSON-lines log of who logged in, was refused, opened a patient or exported.

One event per line, a JSON object with ``ts`` (UTC, ISO 8601), ``event``, ``user`` (the e-mail
address, ``local`` in single-user mode) and ``role``, then the event's own fields:

- ``login``: ``mode`` (``oidc`` or ``local``), ``clinics``;
- ``refused``: ``reason`` (not in the access file, access file broken, no e-mail from the provider,
  e-mail not verified or not in plain form, a page the role may not open, a patient outside the
  user's clinics or unknown, local mode served to the network), ``page`` and ``patient_id`` when
  the refusal concerns one (the patient id as requested);
- ``open_patient``: ``patient_id`` (as the user saw it), ``page``;
- ``export``: ``file``, ``kind`` (patient_level or aggregate), ``rows`` (the data rows of the CSV
  file, of all CSV files in a ZIP, 0 for a JSON manifest, 1 for a one-patient summary), ``filter``
  (the view's query parameters other than the analysis parameters), ``parameters`` (the analysis
  parameters with the as_of used), ``page``, ``min_cell`` (when suppressed).

The log never holds data values: each event accepts only its own field names, and a value must be
text, a number, true/false or empty, or a list or table of those (filters, parameters), so a data
frame, a diary row or a figure cannot be written by mistake. Fields are bounded, so that a crafted
URL cannot flood the log: text is cut to ``MAX_TEXT`` characters (names of table entries too), and
a list or table keeps its first ``MAX_ITEMS`` entries, followed by a note of how many were left out.

**Tamper evidence.** Each line ends with ``prev``, the SHA-256 of the previous line's bytes (newline
included; ``GENESIS`` for the first line), and ``hash``, the SHA-256 of the line itself up to and
including ``prev`` (the bytes before ``, "hash"`` followed by ``}``). Editing, inserting or deleting
a line breaks the chain at that line; ``verify`` finds the first broken line (``python -m analytics
audit-verify``). A chain cannot show that its last lines were cut off, so a small sidecar file,
``<log>.head`` (``head_path``), holds the number of lines, bytes and the hash of the last line; it
is rewritten (atomically) after every append, and ``verify`` checks the log against it. This is
tamper-*evident*, not tamper-proof: whoever may write both files can recompute the whole chain and
the head. Keep copies of the head elsewhere (or ship the log to a log server) to anchor it.

Lines are written with one ``write`` to a file opened with ``O_APPEND`` (created with mode 0600)
while holding an exclusive ``flock`` on it, so concurrent writers (threads, server processes) never
overwrite each other and each line chains to the one before it; nothing is ever rewritten. Rotate
the log by moving the log and its head file away together: the next event starts a new chain.
"""

from __future__ import annotations

import csv
import fcntl
import hashlib
import io
import json
import os
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from analytics.definitions.config import PROJECT_DIR

DEFAULT_AUDIT_LOG = PROJECT_DIR / "logs" / "audit.jsonl"
COMMON_FIELDS = ("ts", "event", "user", "role")
EVENT_FIELDS: Mapping[str, frozenset[str]] = {
    "login": frozenset({"mode", "clinics"}),
    "refused": frozenset({"reason", "page", "patient_id"}),
    "open_patient": frozenset({"patient_id", "page"}),
    "export": frozenset({"file", "kind", "rows", "filter", "parameters", "page", "min_cell"}),
}
COLUMNS = (
    *COMMON_FIELDS,
    "mode",
    "clinics",
    "reason",
    "patient_id",
    "page",
    "file",
    "kind",
    "rows",
    "filter",
    "parameters",
    "min_cell",
)
"""The columns of ``read_events``, in display order."""
MAX_TEXT = 512
"""The longest text kept in a field (longer text is cut, ending in a note of what was left out)."""
MAX_ITEMS = 50
"""The most entries kept of a list or table (query parameters, values of one parameter)."""
GENESIS = "0" * 64
"""The ``prev`` of the first line of a log."""
_SEAL = re.compile(rb', "hash": "([0-9a-f]{64})"\}\n\Z')


class AuditError(ValueError):
    """An event that the audit log does not accept (unknown event or field, a value that is data)."""


def _bounded(text: str) -> str:
    """``text``, or its start and a note of how much was cut when it is longer than ``MAX_TEXT``."""
    if len(text) <= MAX_TEXT:
        return text
    kept = MAX_TEXT - 32  # the note is at most 32 characters
    return text[:kept] + f"…[{len(text) - kept} more characters]"


def _checked(name: str, value: object, depth: int = 0) -> object:
    """``value`` when it is a scalar, a list of scalars, or a table of scalars and lists of scalars; bounded."""
    if isinstance(value, str):
        return _bounded(value)
    if value is None or isinstance(value, (int, float, bool)):
        return value
    if depth < 2 and isinstance(value, (list, tuple)):
        kept = [_checked(name, v, depth + 1) for v in value[:MAX_ITEMS]]
        return kept + ([f"…[{len(value) - MAX_ITEMS:,} more]"] if len(value) > MAX_ITEMS else [])
    if depth < 1 and isinstance(value, Mapping):
        items = list(value.items())
        table = {_bounded(str(k)): _checked(name, v, depth + 1) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            table["…"] = f"[{len(items) - MAX_ITEMS:,} more]"
        return table
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


def head_path(path: Path | str) -> Path:
    """The sidecar file that records the log's length and last hash: ``<log>.head``."""
    path = Path(path).expanduser()
    return path.with_name(path.name + ".head")


def seal(line: bytes, prev: str) -> bytes:
    """``line`` (one JSON object and a newline, from ``event_line``) with ``prev`` and its own ``hash`` added."""
    if not line.endswith(b"}\n") or not re.fullmatch(r"[0-9a-f]{64}", prev):
        raise AuditError("seal: expected one JSON object line and a SHA-256 hex digest")
    body = line[:-2] + b', "prev": "' + prev.encode("ascii") + b'"}'
    own = hashlib.sha256(body).hexdigest()
    return body[:-1] + b', "hash": "' + own.encode("ascii") + b'"}\n'


def line_hash(line: bytes) -> str:
    """The SHA-256 of a line's bytes (newline included): the next line's ``prev``."""
    return hashlib.sha256(line).hexdigest()


@dataclass(frozen=True)
class Head:
    """What the head file records: the log's lines and bytes, and the hash of its last line."""

    lines: int
    size: int
    hash: str

    def text(self) -> str:
        return json.dumps({"lines": self.lines, "bytes": self.size, "last_line_sha256": self.hash}) + "\n"


def read_head(path: Path | str) -> Head | None:
    """The head file of the log at ``path`` (``None`` when missing or unreadable)."""
    try:
        data = json.loads(head_path(path).read_text(encoding="ascii"))
        head = Head(int(data["lines"]), int(data["bytes"]), str(data["last_line_sha256"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return head


def _write_head(path: Path, head: Head) -> None:
    """Replace the head file atomically (a temporary file in the same folder, then ``os.replace``)."""
    target = head_path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, head.text().encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, target)


def _scan(fd: int) -> Head:
    """The head of the open log, by reading it whole (when the head file is missing or behind)."""
    lines, size, last = 0, 0, b""
    with os.fdopen(os.dup(fd), "rb") as handle:
        handle.seek(0)
        for line in handle:
            lines, size, last = lines + 1, size + len(line), line
    return Head(lines, size, line_hash(last) if lines else GENESIS)


class AuditLog:
    """The append-only, hash-chained log at ``path`` (its folder is created with mode 0700 when missing)."""

    def __init__(self, path: Path | str = DEFAULT_AUDIT_LOG):
        self.path = Path(path).expanduser()

    @property
    def head_path(self) -> Path:
        return head_path(self.path)

    def record(self, event: str, user: str, role: str | None, **fields: Any) -> None:
        """Append one event, chained to the line before it.

        Under an exclusive ``flock`` on the log: find the previous line's hash (from the head file when
        it matches the log's size, else by reading the log), write the sealed line in one ``write`` on
        an ``O_APPEND`` descriptor, ``fsync``, then replace the head file.
        """
        line = event_line(event, user, role, **fields)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            head = read_head(self.path)
            if head is None or head.size != size:  # a new log, a crash after the append, or an older log
                head = _scan(fd)
                if size and os.pread(fd, 1, size - 1) != b"\n":  # a line torn by a crash: end it
                    os.write(fd, b"\n")
                    head = _scan(fd)
            sealed = seal(line, head.hash)
            written = os.write(fd, sealed)
            if written != len(sealed):  # a short write on a regular file means the disk is full
                raise OSError(f"audit log {self.path}: only {written} of {len(sealed)} bytes written")
            os.fsync(fd)
            _write_head(self.path, Head(head.lines + 1, head.size + len(sealed), line_hash(sealed)))
        finally:
            os.close(fd)  # releases the lock


@dataclass(frozen=True)
class Verification:
    """The result of ``verify``: ``ok``, the lines checked, and the first broken line (1-based) and why."""

    ok: bool
    lines: int
    broken_line: int | None = None
    problem: str | None = None

    def message(self) -> str:
        if self.ok:
            return f"OK: {self.lines:,} lines, hash chain and head file verified"
        return f"line {self.broken_line}: {self.problem}"


def _check_line(line: bytes, prev: str) -> str | None:
    """Why ``line`` does not follow a line whose hash is ``prev`` (``None`` when it does)."""
    sealed = _SEAL.search(line)
    if sealed is None:
        return "no hash at the end of the line (edited, inserted, cut off, or written before the chain)"
    body = line[: sealed.start()] + b"}"
    if hashlib.sha256(body).hexdigest() != sealed.group(1).decode():
        return "the line was changed after it was written (its hash does not match)"
    try:
        record = json.loads(body)
    except ValueError:
        return "not a JSON object"
    if not isinstance(record, dict) or record.get("prev") != prev:
        return (
            "it does not follow the line before it (a line was deleted or inserted before it, or the "
            "line before it was changed)"
        )
    return None


def verify(path: Path | str) -> Verification:
    """Check the hash chain of the log at ``path`` line by line, then its end against the head file.

    Takes a shared ``flock``, so no append happens meanwhile. A missing log with no head file is an
    empty, valid log.
    """
    path = Path(path).expanduser()
    if not path.exists():
        head = read_head(path)
        if head is None or head.lines == 0:
            return Verification(True, 0)
        return Verification(False, 0, 1, f"the log is missing, but its head file records {head.lines:,} lines")
    prev, lines, at_head = GENESIS, 0, GENESIS
    with open(path, "rb") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        head = read_head(path)
        for line in handle:
            lines += 1
            problem = _check_line(line, prev)
            if problem is not None:
                return Verification(False, lines, lines, problem)
            prev = line_hash(line)
            if head is not None and lines == head.lines:
                at_head = prev
    if head is None:
        if lines == 0:
            return Verification(True, 0)
        return Verification(
            False,
            lines,
            lines,
            f"the head file {head_path(path).name} is missing, so a cut-off end of the log cannot be ruled out",
        )
    if lines < head.lines:
        return Verification(
            False,
            lines,
            lines + 1,
            f"the log ends after line {lines:,}, but its head file records {head.lines:,} lines: the end was cut off",
        )
    if at_head != head.hash:
        return Verification(False, lines, head.lines, "the line does not match the head file (the log was rewritten)")
    return Verification(True, lines)


def data_rows(file_name: str, content: bytes | str) -> int | None:
    """The data rows of a downloaded file, for the audit log: a CSV's rows below the header, the sum of
    the CSV files in a ZIP, 0 for a JSON file (a manifest holds no data rows); ``None`` for other files."""
    name = file_name.lower()
    if name.endswith(".csv"):
        text = content if isinstance(content, str) else content.decode("utf-8", errors="replace")
        return max(sum(1 for row in csv.reader(io.StringIO(text, newline="")) if row) - 1, 0)
    if name.endswith(".zip"):
        raw = content.encode("utf-8") if isinstance(content, str) else content
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            return sum(
                data_rows(member, archive.read(member)) or 0
                for member in archive.namelist()
                if member.lower().endswith(".csv")
            )
    if name.endswith(".json"):
        return 0
    return None


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
