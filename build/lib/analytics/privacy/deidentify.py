"""De-identification of a clinic's raw export: ``python -m analytics deidentify``.

It turns a folder of raw files named like the data contract's (SPEC §2) into a dataset the
dashboard accepts, and writes nothing that links it back to the clinic's records:

- **columns**: direct identifiers (SPEC §2.1, ``schemas.direct_identifier``) and every
  column outside the data contract are dropped and listed in the report by position and category
  (``"column 3: direct identifier (email)"``), never by their header text, which may itself be
  personal data (an e-mail address used as a header); ``--keep COL`` keeps a
  contract-free column the user vouches for (never a direct identifier).
- **free text** in the contract (``protocol``, ``discontinuation_reason``: clinicians write names,
  dates and events there) is dropped like a column outside the contract unless kept with
  ``--keep``. ``clinic`` is kept: the dashboard scopes every user's data by clinic name (access
  file), and a site name describes the service, not the patient. ``injector_id`` (often a
  clinician's name and registration number) becomes ``"I"`` + 16 hex digits of
  HMAC-SHA256(key, ``"injector:"`` + id): stable across runs, a separate domain from patients.
- **kept text**: every value copied as is (``clinic``, free text kept with ``--keep``, any column
  kept with ``--keep``) that contains something date-like (``2024-03-01``, ``1/3/24``,
  ``20240301``, a year such as ``2024``, ``3 March``, a month or weekday name, Christmas/Easter)
  is withheld (emptied) and counted in the report: a real date beside the patient's shifted dates
  gives the offset away. The test errs towards withholding (``may`` is a month).
- **coded values**: a value of a contract column with a fixed form (numbers, booleans, muscles,
  events, sex, age band...) that its rule rejects is replaced by ``INVALID_VALUE_MARKER``, as an
  invalid date is: the loader rejects the row for the same reason, and no free text slips through
  a coded column.
- **patient_id** becomes a keyed pseudonym: ``"P"`` + the first 16 hex digits of
  HMAC-SHA256(key, ``"id:"`` + raw id with surrounding whitespace removed). It matches
  ``schemas.PATIENT_ID_PATTERN`` and is the same in every file and every run with the same key; an
  empty patient_id stays empty, so the loader still rejects its row.
- **dates**: every contract date column (session_date, date, onset_date, resolved_date,
  discontinued_on) of a patient moves back by one offset of 1 to 364 days taken from
  HMAC-SHA256(key, ``"shift:"`` + raw id) (REDCap's method). Intervals within a patient, and so
  every per-patient-cycle statistic, are unchanged. A date that is not a valid YYYY-MM-DD cannot be
  shifted; it is replaced by ``INVALID_DATE_MARKER`` (still an invalid date, so the loader rejects
  the row for the same reason) rather than copied, because an unshifted real date next to a
  pseudonym would undo the shift for that patient.
- **age_band**: a band whose first number is over 89 (``90-94``, ``95+``, ``92``) becomes ``90+``.
- **key**: a secret file of 64 hex digits (32 random bytes) created with mode 0600 when missing;
  it, the raw ids and any mapping between them are never written to the output folder. A key file
  its group or others may access is refused (not merely warned about), and so is a key shorter
  than 32 bytes or not random (all one byte, a repeated pattern, fewer than 8 distinct bytes).

What it does not guarantee: shifted dates are not HIPAA Safe Harbor (which removes every date
element but the year); the output suits an expert-determination or GDPR-pseudonymisation
setting, where whoever holds the key can re-identify. The cohort's data cut-off (``as_of``, the
latest date in the data) is not preserved, because patients move by different offsets: after the
shift most patients' records end before the new cut-off, so a cycle that was ongoing at the export
looks complete (and is judged on a diary that stops early), and intention-to-treat denominators
("had time to complete k cycles") grow. Cycles complete in the raw data are unaffected; analyse
results that depend on the cut-off on the raw data, inside the clinic.

Rows that cannot be split into the header's fields are not written; the report gives their line
numbers. Everything else is written through ``export.csv_bytes`` (formula-safe), with the rows
of each file in the order of their pseudonym and then their (shifted) key dates, never in the
raw export's order (``_in_pseudonym_order``).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import secrets
import stat
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analytics import __version__
from analytics.errors import AnalyticsRefusal
from analytics.ingest.load import DatasetRefused, RawTable, read_source, read_table
from analytics.ingest.schemas import FILES, PATIENT_ID_PATTERN, ColumnSpec, direct_identifier
from analytics.output.export import csv_bytes, write_atomically

REPORT_FILE = "deidentify_report.json"
PSEUDONYM_PREFIX = "P"
PSEUDONYM_HEX_DIGITS = 16
MAX_SHIFT_DAYS = 364
KEY_BYTES = 32
MIN_KEY_BYTES = 32
MIN_DISTINCT_KEY_BYTES = 8
MAX_KEY_FILE_BYTES = 4096
TOP_CODED_AGE = "90+"
INVALID_DATE_MARKER = "withheld-invalid-date"
INVALID_VALUE_MARKER = "withheld-invalid-value"
INJECTOR_PREFIX = "I"
PSEUDONYMISED_TEXT = frozenset({"injector_id"})
"""Contract free-text columns written as keyed pseudonyms (never copied, never kept as is)."""
FREE_TEXT_KEPT_BY_DEFAULT = frozenset({"clinic"})
"""Contract free-text columns written without ``--keep`` (date-like values withheld): clinic scoping needs them."""
# Date-like text: a real date next to the shifted ones gives the patient's offset away. Digits must
# not continue a match on either side (so "GMC 7012345" is no year), words are whole words.
_MONTHS = (
    "jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?"
    "|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_WEEKDAYS = "mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:r(?:s(?:day)?)?)?|fri(?:day)?|sat(?:urday)?|sun(?:day)?"
_DAY, _MONTH = r"(?:0?[1-9]|[12][0-9]|3[01])", r"(?:0?[1-9]|1[0-2])"
DATE_LIKE = re.compile(
    r"(?<![0-9])(?:"
    r"[0-9]{4}[-/.][0-9]{1,2}[-/.][0-9]{1,2}"  # 2024-03-01, 2024/3/1, 2024.03.01
    r"|[0-9]{1,2}[-/.][0-9]{1,2}[-/.][0-9]{2,4}"  # 01/03/2024, 1.3.24, 3-1-2024
    r"|(?:19|20)[0-9]{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"  # 20240301
    r"|(?:19|20)[0-9]{2}"  # a year
    rf"|{_DAY}/{_MONTH}|{_MONTH}/{_DAY}"  # 3/4 (day and month)
    r")(?![0-9])"
    rf"|\b(?:{_MONTHS}|(?:{_WEEKDAYS})s?|christmas|xmas|easter)\b",  # "Tuesdays" too
    re.IGNORECASE,
)
DROPPED_IDENTIFIER = "direct identifier"
DROPPED_NOT_IN_CONTRACT = "not in the data contract"
DROPPED_FREE_TEXT = "free text"
METHOD = {
    "patient_id": (
        f"'{PSEUDONYM_PREFIX}' + first {PSEUDONYM_HEX_DIGITS} hex digits of HMAC-SHA256(key, 'id:' + patient_id "
        "without surrounding whitespace); empty stays empty"
    ),
    "dates": (
        f"every contract date of a patient moved back by one offset of 1-{MAX_SHIFT_DAYS} days, "
        "1 + (first 8 bytes of HMAC-SHA256(key, 'shift:' + patient_id)) mod 364; "
        f"dates that are not valid YYYY-MM-DD are replaced by '{INVALID_DATE_MARKER}'"
    ),
    "age_band": f"a band whose first number is over 89 becomes '{TOP_CODED_AGE}'",
    "injector_id": (
        f"'{INJECTOR_PREFIX}' + first {PSEUDONYM_HEX_DIGITS} hex digits of HMAC-SHA256(key, 'injector:' + "
        "injector_id without surrounding whitespace); empty stays empty"
    ),
    "free_text": (
        "protocol and discontinuation_reason are dropped unless kept with --keep; clinic is kept (clinic scoping)"
    ),
    "date_like_text": (
        "a value copied as is (clinic, kept free text, kept columns) that contains a date-like substring "
        "(ISO, d/m/y, yyyymmdd, a year, a month or weekday name, a feast day) is withheld (emptied)"
    ),
    "invalid_values": (
        f"a value of a coded contract column (number, boolean, fixed vocabulary, age band) that its rule rejects "
        f"is replaced by '{INVALID_VALUE_MARKER}'"
    ),
    "columns": (
        "direct identifiers and columns outside the data contract are dropped unless kept with --keep; dropped "
        "columns are listed by position (1 = first column of the raw file) and category, never by header"
    ),
    "kept_columns": "copied as is (not pseudonymised, shifted or top-coded) except date-like values, withheld",
    "caveat": (
        "patients move by different offsets, so the data no longer share one cut-off: a cycle that was ongoing "
        "at the export may look complete (judged on a shortened diary) and intention-to-treat denominators "
        "grow; analyse as_of-dependent results on the raw data. Complete cycles are unchanged."
    ),
}


class DeidentifyError(AnalyticsRefusal):
    """The input cannot be de-identified; ``str()`` is one line, ``exit_code`` 2 (input) or 4 (output)."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class FileResult:
    """What happened to one input file (counts and column names only, never values)."""

    file: str
    source: str
    rows_in: int
    rows_out: int
    unreadable_lines: tuple[int, ...]
    patients: int
    columns_written: tuple[str, ...]
    columns_dropped: tuple[str, ...]
    dates_shifted: int
    invalid_dates_withheld: int
    ages_top_coded: int
    date_like_text_withheld: dict[str, int] = field(default_factory=dict)
    invalid_values_withheld: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rows_unreadable": len(self.unreadable_lines),
            "unreadable_lines": list(self.unreadable_lines),
            "patients": self.patients,
            "columns_written": list(self.columns_written),
            "columns_dropped": list(self.columns_dropped),
            "dates_shifted": self.dates_shifted,
            "invalid_dates_withheld": self.invalid_dates_withheld,
            "ages_top_coded": self.ages_top_coded,
            "date_like_text_withheld": dict(self.date_like_text_withheld),
            "invalid_values_withheld": dict(self.invalid_values_withheld),
        }


@dataclass
class Deidentified:
    """The de-identified files by name (the report included), the report and warnings for the user."""

    files: dict[str, bytes]
    report: dict[str, object]
    results: list[FileResult]
    warnings: list[str] = field(default_factory=list)


# --- the keyed transformations -----------------------------------------------------------------


def _digest(key: bytes, label: str, raw_id: str) -> bytes:
    return hmac.new(key, (label + raw_id.strip()).encode("utf-8"), hashlib.sha256).digest()


def pseudonym(key: bytes, raw_id: str) -> str:
    """The keyed pseudonym of a raw patient_id ("" for an empty one)."""
    if not raw_id.strip():
        return ""
    return PSEUDONYM_PREFIX + _digest(key, "id:", raw_id).hex()[:PSEUDONYM_HEX_DIGITS]


def injector_pseudonym(key: bytes, raw_id: str) -> str:
    """The keyed pseudonym of a raw injector_id ("" for an empty one); never equal to a patient's."""
    if not raw_id.strip():
        return ""
    return INJECTOR_PREFIX + _digest(key, "injector:", raw_id).hex()[:PSEUDONYM_HEX_DIGITS]


def shift_days(key: bytes, raw_id: str) -> int:
    """The patient's secret date offset, 1..364 days (an empty patient_id gets one offset too)."""
    # 64 bits modulo 364: the bias is below 2**-55, far from anything measurable.
    return 1 + int.from_bytes(_digest(key, "shift:", raw_id)[:8], "big") % MAX_SHIFT_DAYS


def check_key(key: bytes, where: str = "the key") -> None:
    """Refuse a key too short or too regular to be secret (all zeros, one byte repeated, a short pattern)."""
    if len(key) < MIN_KEY_BYTES:
        raise DeidentifyError(f"{where} holds {len(key)} bytes; a key needs at least {MIN_KEY_BYTES} random bytes")
    # 32 random bytes have about 30 distinct values and no period; fewer than 8 distinct values, or
    # one block repeated, is a made-up key (probability of either by chance: below 2**-100).
    periodic = any(len(key) % p == 0 and key == key[:p] * (len(key) // p) for p in range(1, len(key) // 2 + 1))
    if periodic or len(set(key)) < MIN_DISTINCT_KEY_BYTES:
        raise DeidentifyError(
            f"{where} is not random (all one byte, a repeated pattern or a few distinct bytes); delete it and run "
            "again to create a new key (pseudonyms then change)"
        )


def load_or_create_key(path: Path) -> tuple[bytes, bool, list[str]]:
    """The secret key from ``path`` (hex), created with 32 random bytes and mode 0600 when missing.

    Returns the key, whether it was created, and warnings (none at present: the list is kept for
    callers). Refuses a key file that its group or other users may access in any way (its secret may
    be out already), and a degenerate key (``check_key``).
    """
    path = Path(path)
    try:
        # O_EXCL: never overwrite a key that appeared meanwhile; 0o600 from the first byte on.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise DeidentifyError(f"cannot create key file {path}: {exc.strerror or exc}") from exc
    else:
        key_hex = secrets.token_hex(KEY_BYTES)
        with os.fdopen(fd, "w") as handle:
            handle.write(key_hex + "\n")
        return bytes.fromhex(key_hex), True, []
    if not path.is_file():
        raise DeidentifyError(f"key file {path} is not a file")
    try:
        # One open file for the mode and the content, so they are of the same file.
        with open(path, "rb") as handle:
            mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
            text = handle.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise DeidentifyError(f"cannot read key file {path}: {exc.strerror or exc}") from exc
    try:
        if len(text) > MAX_KEY_FILE_BYTES:
            raise ValueError("too long")
        key = bytes.fromhex(text.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError) as exc:
        raise DeidentifyError(f"key file {path} does not hold a hex key (expected {2 * KEY_BYTES} hex digits)") from exc
    check_key(key, f"key file {path}")
    if mode & 0o077:
        raise DeidentifyError(
            f"key file {path} is accessible to other users (mode {mode:04o}), so the key may no longer be secret; "
            f"if nobody else has read it, run: chmod 600 {path}; otherwise make a new key (pseudonyms then change)"
        )
    return key, False, []


# --- de-identifying tables -----------------------------------------------------------------------


def _free_text(column: ColumnSpec) -> bool:
    return column.kind == "text" and not column.choices


# Contract columns that are always written transformed, so --keep (copy as is) cannot apply.
_HOW = {"patient_id": "pseudonymised", "date": "date-shifted", "age_band": "top-coded"}
_TRANSFORMED = {
    c.name: _HOW.get(c.kind, "pseudonymised")
    for spec in FILES.values()
    for c in spec.columns
    if c.kind in ("patient_id", "date", "age_band") or c.name in PSEUDONYMISED_TEXT
}


def _check_keep(keep: list[str]) -> None:
    for column in keep:
        if direct_identifier(column):
            raise DeidentifyError(
                f"--keep {column}: '{column}' is a direct identifier (SPEC §2.1) and is always dropped"
            )
        if column in _TRANSFORMED:
            raise DeidentifyError(f"--keep {column}: '{column}' is always {_TRANSFORMED[column]}, never copied as is")


def _columns(stem: str, table: RawTable, keep: set[str]) -> tuple[list[str], list[str]]:
    """Columns written (in file order) and the dropped ones described by position and category.

    A dropped column is never named by its header: the header of a column outside the contract is
    the raw export's text and may be personal data itself.
    """
    contract = {c.name: c for c in FILES[stem].columns}
    written, dropped = [], []
    for position, column in enumerate(table.cells.columns, start=1):
        identifier = direct_identifier(column)
        if identifier:
            dropped.append(f"column {position}: {DROPPED_IDENTIFIER} ({identifier})")
        elif (
            column in contract
            and _free_text(contract[column])
            and column not in PSEUDONYMISED_TEXT | FREE_TEXT_KEPT_BY_DEFAULT | keep
        ):
            # A contract name, not the raw header's text: safe to name.
            dropped.append(f"column {position}: {column} ({DROPPED_FREE_TEXT}; keep it with --keep {column})")
        elif column in contract or column in keep:
            written.append(column)
        else:
            dropped.append(f"column {position}: {DROPPED_NOT_IN_CONTRACT}")
    missing = [c for c in FILES[stem].required_columns if c not in written]
    if missing:
        raise DeidentifyError(f"{table.name}: required column '{missing[0]}' is missing")
    return written, dropped


def _layouts(tables: Mapping[str, RawTable], keep: list[str]) -> dict[str, tuple[list[str], list[str]]]:
    """Columns written and dropped per file; refuses a file without a required column."""
    return {stem: _columns(stem, table, set(keep)) for stem, table in tables.items()}


def _raw_ids(table: RawTable) -> np.ndarray:
    """Each row's raw patient_id without surrounding whitespace (stripped once per distinct value)."""
    codes, distinct = pd.factorize(table.cells["patient_id"].astype(object), use_na_sentinel=False)
    return np.asarray([str(v).strip() for v in distinct], dtype=object)[codes]


def _shifted_dates(
    values: pd.Series, parse: Callable[[pd.Series], pd.Series], offsets: np.ndarray
) -> tuple[np.ndarray, int, int]:
    """Valid dates moved back by each row's offset; invalid ones withheld; empty stays empty."""
    parsed = parse(values)
    valid = parsed.notna().to_numpy()
    given = (values.astype(object) != "").to_numpy()
    days = (parsed.to_numpy().astype("datetime64[D]") - offsets.astype("timedelta64[D]"))[valid]
    # Few distinct shifted dates (patients x days): format each once.
    codes, distinct = pd.factorize(days.astype("int64"))
    text = np.where(given, INVALID_DATE_MARKER, "").astype(object)
    text[valid] = np.datetime_as_string(distinct.astype("datetime64[D]"), unit="D").astype(object)[codes]
    return text, int(valid.sum()), int((given & ~valid).sum())


def _keyed_text(values: pd.Series, key: bytes) -> np.ndarray:
    """Each value's injector pseudonym, computed once per distinct value; empty stays empty."""
    codes, distinct = pd.factorize(values.astype(object), use_na_sentinel=False)
    return np.asarray([injector_pseudonym(key, str(v)) for v in distinct], dtype=object)[codes]


def _without_date_like(values: pd.Series | np.ndarray) -> tuple[np.ndarray, int]:
    """Values copied as is, except those holding something date-like, emptied; and how many were."""
    codes, distinct = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=False)
    # Python's re on the distinct values (Arrow's RE2 has no look-behind); few distinct texts.
    date_like = pd.Series(distinct, dtype=object).str.contains(DATE_LIKE).fillna(False).to_numpy(dtype=bool)
    text = np.where(date_like, "", np.asarray(distinct, dtype=object)).astype(object)[codes]
    return text, int(date_like[codes].sum())


def _without_invalid(values: pd.Series, spec: ColumnSpec) -> tuple[np.ndarray, int]:
    """A coded column's values with those its rule rejects replaced by ``INVALID_VALUE_MARKER``."""
    # The loader's own parser (per distinct value), so "invalid" means what it means on loading.
    invalid = ((values != "") & spec.parse(values).isna()).to_numpy(dtype=bool)
    return np.where(invalid, INVALID_VALUE_MARKER, values.astype(object).to_numpy()).astype(object), int(invalid.sum())


def _top_coded_ages(values: pd.Series) -> tuple[np.ndarray, int]:
    text = values.astype(object)
    first_number = pd.to_numeric(text.str.extract(r"^\s*(\d+)", expand=False), errors="coerce")
    over_89 = (first_number >= 90).to_numpy()
    changed = over_89 & (text != TOP_CODED_AGE).to_numpy()
    return np.where(over_89, TOP_CODED_AGE, text.to_numpy()).astype(object), int(changed.sum())


def _in_pseudonym_order(stem: str, frame: pd.DataFrame, patient_rank: np.ndarray) -> pd.DataFrame:
    """Rows ordered by pseudonym, then by the file's key dates (shifted), so that their order says
    nothing about the raw export's (sorted by name, by record number, by first visit...).

    The sort is stable: rows of one patient with the same key dates (a repeated session, the muscles
    of one session) keep their relative order, so the loader's "the first row is kept" picks the
    same row as it would in the raw export. The order depends only on pseudonyms and shifted dates:
    the same key gives the same bytes. ``patient_rank`` is each row's pseudonym's rank among all.
    """
    dates = [c for c in FILES[stem].key if c in frame.columns and FILES[stem].column(c).kind == "date"]
    # np.lexsort is stable and sorts by the last key first. ISO dates sort as text.
    keys = [pd.factorize(frame[c], sort=True)[0] for c in reversed(dates)]
    order = np.lexsort([*keys, patient_rank])
    return frame.iloc[order].reset_index(drop=True)


def _deidentify_table(
    stem: str,
    table: RawTable,
    layout: tuple[list[str], list[str]],
    ids: pd.Index,
    pseudonyms: np.ndarray,
    offsets: np.ndarray,
    ranks: np.ndarray,
    key: bytes,
) -> tuple[pd.DataFrame, FileResult]:
    contract = {c.name: c for c in FILES[stem].columns}
    written, dropped = layout
    row_patient = ids.get_indexer(pd.Index(_raw_ids(table)))
    out: dict[str, np.ndarray] = {}
    shifted = withheld = top_coded = 0
    date_like: dict[str, int] = {}
    invalid: dict[str, int] = {}
    for column in written:
        values = table.cells[column]
        spec = contract.get(column)
        if spec is not None and spec.kind == "patient_id":
            out[column] = pseudonyms[row_patient]
        elif spec is not None and spec.kind == "date":
            out[column], n_shifted, n_withheld = _shifted_dates(values, spec.parse, offsets[row_patient])
            shifted, withheld = shifted + n_shifted, withheld + n_withheld
        elif column in PSEUDONYMISED_TEXT and spec is not None:
            out[column] = _keyed_text(values, key)
        elif spec is None or _free_text(spec):  # copied as is: kept columns, clinic, kept free text
            out[column], date_like[column] = _without_date_like(values)
        elif spec.kind == "age_band":
            ages, top_coded = _top_coded_ages(values)
            out[column], invalid[column] = _without_invalid(pd.Series(ages, dtype=object), spec)
        else:  # coded: numbers, booleans, fixed vocabularies
            out[column], invalid[column] = _without_invalid(values, spec)
    frame = _in_pseudonym_order(stem, pd.DataFrame(out, columns=written), ranks[row_patient])
    patients = pseudonyms[row_patient]
    result = FileResult(
        file=FILES[stem].filename,
        source=table.name,
        rows_in=len(table.cells) + len(table.malformed),
        rows_out=len(frame),
        unreadable_lines=tuple(int(line) for line in table.malformed["line"]),
        patients=len(set(patients[patients != ""])),
        columns_written=tuple(written),
        columns_dropped=tuple(dropped),
        dates_shifted=shifted,
        invalid_dates_withheld=withheld,
        ages_top_coded=top_coded,
        date_like_text_withheld={c: n for c, n in date_like.items() if n},
        invalid_values_withheld={c: n for c, n in invalid.items() if n},
    )
    return frame, result


def read_raw(source: Path | Mapping[str, bytes]) -> dict[str, RawTable]:
    """The raw export's contract files as text cells; refuses what cannot be read or is missing."""
    try:
        files = read_source(source)
        tables = {stem: read_table(name, data) for stem, (name, data) in files.items()}
    except DatasetRefused as exc:
        raise DeidentifyError(str(exc)) from exc
    for stem, spec in FILES.items():
        if spec.required and stem not in tables:
            raise DeidentifyError(f"{spec.filename}: required file is missing")
    return tables


def deidentify(source: Path | Mapping[str, bytes], key: bytes, keep: list[str] | tuple[str, ...] = ()) -> Deidentified:
    """De-identify a raw export (a folder, or file names -> bytes); nothing is written here."""
    _check_keep(list(keep))
    return deidentify_tables(read_raw(source), key, keep)


def deidentify_tables(
    tables: Mapping[str, RawTable], key: bytes, keep: list[str] | tuple[str, ...] = ()
) -> Deidentified:
    """The de-identified files of raw tables read by ``read_raw``."""
    keep = list(keep)
    _check_keep(keep)
    check_key(key)
    layouts = _layouts(tables, keep)
    # One pseudonym and one offset per distinct raw id over all files, so a patient matches across
    # files; HMAC is a per-value function, so this loop runs once per patient, not per row.
    ids = pd.Index(pd.unique(np.concatenate([_raw_ids(t) for t in tables.values()])))
    pseudonyms = np.asarray([pseudonym(key, raw) for raw in ids], dtype=object)
    offsets = np.asarray([shift_days(key, raw) for raw in ids], dtype=np.int64)
    ranks = np.argsort(np.argsort(pseudonyms.astype(str), kind="stable"), kind="stable")  # rows sort by these
    named = pseudonyms[pseudonyms != ""]
    if len(set(named)) != len(named):  # 64-bit pseudonyms: about 1 in 10**13 for 2,000 patients
        raise DeidentifyError("two patients got the same pseudonym; create a new key and run again")

    files: dict[str, bytes] = {}
    results: list[FileResult] = []
    for stem, table in tables.items():
        frame, result = _deidentify_table(stem, table, layouts[stem], ids, pseudonyms, offsets, ranks, key)
        files[result.file] = csv_bytes(frame)
        results.append(result)

    warnings = _warnings(results, keep)
    report = {
        "tool": "python -m analytics deidentify",
        "software": {"name": "botox-outcomes-analytics", "version": __version__},
        "method": METHOD,
        "patient_id_pattern": PATIENT_ID_PATTERN,
        "patients": len(named),
        "columns_kept_on_request": sorted(keep),
        "files": {r.file: r.as_json() for r in results},
    }
    files[REPORT_FILE] = (json.dumps(report, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    return Deidentified(files=files, report=report, results=results, warnings=warnings)


def _warnings(results: list[FileResult], keep: list[str]) -> list[str]:
    warnings = []
    found = {c for r in results for c in r.columns_written}
    for column in keep:
        if column not in found:
            warnings.append(f"--keep {column}: no file has a column named '{column}'")
        elif column not in {c.name for spec in FILES.values() for c in spec.columns}:
            warnings.append(
                f"kept column '{column}' is copied as is (not pseudonymised or date-shifted; date-like values withheld)"
            )
    for r in results:
        if r.unreadable_lines:
            lines = ", ".join(map(str, r.unreadable_lines[:10])) + (" ..." if len(r.unreadable_lines) > 10 else "")
            warnings.append(
                f"{r.source}: {len(r.unreadable_lines)} rows with the wrong number of fields "
                f"were not written (lines {lines}); fix them in the raw export"
            )
        if r.invalid_dates_withheld:
            warnings.append(
                f"{r.source}: {r.invalid_dates_withheld} dates are not valid YYYY-MM-DD and were "
                f"replaced by '{INVALID_DATE_MARKER}'; the loader will reject those rows"
            )
        for column, n in r.date_like_text_withheld.items():
            warnings.append(
                f"{r.source}: {n} values of {column} contain something date-like and were withheld "
                "(emptied): a real date beside the shifted ones would give the offset away"
            )
        for column, n in r.invalid_values_withheld.items():
            warnings.append(
                f"{r.source}: {n} values of {column} break its rule and were replaced by "
                f"'{INVALID_VALUE_MARKER}'; the loader will reject those rows"
            )
    return warnings


# --- the command line ----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--in",
        dest="in_dir",
        required=True,
        type=Path,
        metavar="RAW_DIR",
        help="folder with the raw sessions.csv, diary.csv, ... (files named as in the data contract)",
    )
    parser.add_argument(
        "--out", required=True, type=Path, metavar="OUT_DIR", help="folder to write the de-identified files into"
    )
    parser.add_argument(
        "--key-file",
        required=True,
        type=Path,
        metavar="KEY_FILE",
        help="secret key (created with mode 0600 if missing); keep it outside OUT_DIR, never share it",
    )
    parser.add_argument(
        "--keep",
        action="append",
        default=[],
        metavar="COL",
        help="keep this column outside the data contract, or the free-text protocol or "
        "discontinuation_reason (repeatable); never a direct identifier; date-like values are withheld",
    )


def _check_paths(in_dir: Path, out_dir: Path, key_file: Path, names: list[str]) -> None:
    out = out_dir.resolve()
    if in_dir.resolve() == out:
        raise DeidentifyError("--out must differ from --in: the raw export is never overwritten")
    if out == key_file.resolve().parent or out in key_file.resolve().parents:
        raise DeidentifyError("--key-file must be outside --out: the key never goes with the data")
    if out_dir.exists() and not out_dir.is_dir():
        raise DeidentifyError(f"--out {out_dir} exists and is not a folder")
    if out_dir.is_dir():
        stale = sorted(p.name for p in out_dir.iterdir() if p.name not in names)
        if stale:
            raise DeidentifyError(
                f"--out {out_dir} holds files this run would not replace ({', '.join(stale[:5])}); use a new folder"
            )


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """``python -m analytics deidentify``: 0 done, 2 bad input, 4 output not writable."""
    try:
        _check_keep(args.keep)
        _say(f"reading {args.in_dir} ...")
        if not Path(args.in_dir).is_dir():
            raise DeidentifyError(f"--in {args.in_dir}: not a folder")
        names = [spec.filename for spec in FILES.values()] + [REPORT_FILE]
        _check_paths(args.in_dir, args.out, args.key_file, names)
        tables = read_raw(args.in_dir)  # bad input is refused before a key file is created
        _layouts(tables, args.keep)
        key, created, key_warnings = load_or_create_key(args.key_file)
        result = deidentify_tables(tables, key, args.keep)
        write_atomically(result.files, args.out)
    except DeidentifyError as exc:
        _say(f"error: {exc}")
        return exc.exit_code
    except OSError as exc:
        _say(f"error: cannot write to {args.out}: {exc.strerror or exc}")
        return 4
    if created:
        _say(
            f"created key file {args.key_file} (mode 0600): keep it secret, apart from the data; "
            "the same key gives the same pseudonyms next time"
        )
    for r in result.results:
        dropped = "; ".join(r.columns_dropped) or "none"
        _say(
            f"  {r.source} -> {r.file}: {r.rows_in} rows in, {r.rows_out} out, {r.patients} patients, "
            f"{r.dates_shifted} dates shifted; dropped: {dropped}"
        )
    for warning in key_warnings + result.warnings:
        _say(f"warning: {warning}")
    _say(f"{result.report['patients']} patients; wrote {', '.join(result.files)} to {args.out}")
    return 0
