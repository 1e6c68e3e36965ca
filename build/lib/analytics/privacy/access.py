"""Who may see what: roles, the access file, the permission matrix, clinic scoping and pseudonyms.

Four roles share the dashboard (issue #6). What each may open and export is one table,
``PERMISSIONS``, read by the navigation, the export buttons and the tests alike:

==========  =====================================  ==========================================
role        pages                                  exports
==========  =====================================  ==========================================
doctor      patient, data                          patient-level and aggregate (own clinics)
manager     clinic, outcomes, data                 aggregate only
researcher  outcomes, data                         patient-level (pseudonymised) and aggregate
admin       patient, clinic, outcomes, data, audit patient-level and aggregate
==========  =====================================  ==========================================

An export is **patient-level** when it has a row per patient (any table with a ``patient_id`` or
``patient`` column, patient_cycles.csv, rejected_rows.csv, a patient summary) and **aggregate**
otherwise (cohort_cycles.csv, the manifest, counts and rates). The access file (TOML or JSON) maps
each user's e-mail address (compared exactly, see below) to a role and the clinics they may see, a
list of clinic names as in patients.csv (compared without case and surrounding spaces) or ``"*"`` for
all; optional ``min_cell`` per role (manager, researcher) enforces small-cell suppression
(``analytics.privacy.suppression``) on that role's exports, which then are aggregate and suppressed only.

**E-mail addresses** are compared exactly, after removing surrounding ASCII whitespace and lowering
the ASCII letters A-Z only (``normalise_email``). Unicode case folding or NFKC normalisation is never
applied: it would let ``boß@…`` (casefold ``boss@…``), ``boſs@…`` (long s) or ``analyﬆ@…`` (the
"st" ligature) sign in as ``boss@…`` or ``analyst@…``. An address that NFKC or case folding would
change, or that holds control or format characters (zero-width spaces, ...), is refused outright
(``email_problem``), both from the identity provider and in the access file; a non-ASCII address
whose look-alike skeleton (``lookalike_skeleton``) is that of an access-file entry is refused too
(``AccessPolicy.lookalike``), so that ``аnalyst@…`` with a Cyrillic ``а`` is reported as such.

**Scoping** happens once, on the loaded dataset, before any analysis (``scope_dataset``): every
table keeps only the rows of patients whose patients.csv clinic is one of the user's clinics, so
no page, worklist, chart, summary or export can show another clinic's patient. Patients without a
clinic (or without a patients.csv row) are visible only to users with ``"*"``. Rejected rows are
kept when their patient_id is one of the visible patients; a rejected row with no such patient
(empty or invalid patient_id, unknown patient, unreadable line) is visible only to ``"*"`` users.
Per-file row counts are recomputed for the scope (read = accepted + rejected still holds), and each
file's ``sha256`` becomes ``"<the file's SHA-256>/<scope>"``, so every cache keyed on the files
(``st.cache_data`` is shared by all sessions) keeps each scope apart, while the part before the
``/`` still identifies the source file. For a clinic-scoped user the data cut-off (as_of) is pinned
to the whole dataset's (``pinned_config``), so a patient's cycles are the same for every user.

**Pseudonyms** for researchers: every patient_id (in every table and in the rejection report) is
replaced by ``analytics.privacy.deidentify.pseudonym`` under a separate secret key, "P" + 16 hex digits of
HMAC-SHA256, before analysis, so researchers see and export the same pseudonyms on every page and
in every file, stable across sessions for one key; the rejected value of an invalid patient_id is
withheld. Dates, clinics and other attributes are not changed (the de-identification tool shifts
dates before the data reach the dashboard).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final, Literal

import pandas as pd

from analytics.definitions.config import AnalysisConfig
from analytics.definitions.cycles import data_cutoff
from analytics.errors import AnalyticsRefusal
from analytics.ingest.load import Dataset, FileReport
from analytics.privacy.deidentify import pseudonym
from analytics.privacy.suppression import COUNT_COLUMNS, check_min_cell, suppress_cohort_cycles

ROLES = ("doctor", "manager", "researcher", "admin")
PAGES = ("patient", "clinic", "outcomes", "data", "audit")
EXPORT_KINDS = ("patient_level", "aggregate")
ALL_CLINICS: Final = "*"
PATIENT_COLUMNS = ("patient_id", "patient")
"""A table with one of these columns has a row per patient: exporting it is patient-level."""

Clinics = tuple[str, ...] | Literal["*"]


@dataclass(frozen=True)
class Permissions:
    """What one role may open and export."""

    pages: frozenset[str]
    exports: frozenset[str]
    pseudonymised: bool = False
    """Patient ids are replaced by keyed pseudonyms everywhere this role looks."""
    may_suppress: bool = False
    """``min_cell`` in the access file may enforce small-cell suppression on this role."""


PERMISSIONS: Mapping[str, Permissions] = MappingProxyType(
    {
        "doctor": Permissions(frozenset({"patient", "data"}), frozenset({"patient_level", "aggregate"})),
        "manager": Permissions(frozenset({"clinic", "outcomes", "data"}), frozenset({"aggregate"}), may_suppress=True),
        "researcher": Permissions(
            frozenset({"outcomes", "data"}),
            frozenset({"patient_level", "aggregate"}),
            pseudonymised=True,
            may_suppress=True,
        ),
        "admin": Permissions(frozenset(PAGES), frozenset(EXPORT_KINDS)),
    }
)
EXPORT_FILE_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "patient_cycles.csv": "patient_level",
        "rejected_rows.csv": "patient_level",
        "patient_status.csv": "patient_level",
        "cohort_cycles.csv": "aggregate",
        "safety.csv": "aggregate",
        "manifest.json": "aggregate",
        "rejected_counts.csv": "aggregate",
    }
)
"""The kind of each file of the export command (SPEC §4 and the suppressed export)."""
KIND_WORDS = {"patient_level": "patient-level data", "aggregate": "aggregate tables"}


class AccessFileError(AnalyticsRefusal, ValueError):
    """The access file is missing, unreadable or breaks the format; the message names the problem."""


def can_view(role: str, page: str) -> bool:
    """Whether ``role`` may open ``page`` (one of ``PAGES``)."""
    return role in PERMISSIONS and page in PERMISSIONS[role].pages


def can_export(role: str, kind: str) -> bool:
    """Whether ``role`` may download an export of ``kind`` (one of ``EXPORT_KINDS``)."""
    return role in PERMISSIONS and kind in PERMISSIONS[role].exports


def allowed_pages(role: str) -> tuple[str, ...]:
    """The pages ``role`` may open, in navigation order."""
    return tuple(page for page in PAGES if can_view(role, page))


def export_kind(frame: pd.DataFrame) -> str:
    """``patient_level`` when the table has a row per patient (a patient id column), else ``aggregate``."""
    return "patient_level" if any(c in frame.columns for c in PATIENT_COLUMNS) else "aggregate"


def export_refusal(role: str, kind: str, min_cell: int | None, suppressed: bool = False) -> str | None:
    """Why ``role`` may not download an export of ``kind`` (``None`` when it may), in words.

    With small-cell suppression enforced (``min_cell``), only aggregate exports that went through
    ``analytics.privacy.suppression`` (``suppressed``) are allowed, as with ``export --min-cell``.
    """
    if not can_export(role, kind):
        return f"your role ({role}) may not export {KIND_WORDS.get(kind, kind)}"
    if min_cell is not None and (kind != "aggregate" or not suppressed):
        return (
            f"small-cell suppression (min_cell {min_cell}) is enforced for your account: only the suppressed "
            "aggregate export is available"
        )
    return None


def suppressible(frame: pd.DataFrame) -> bool:
    """Whether ``analytics.privacy.suppression`` can protect the table: a cohort_cycles table (cycle and its counts)."""
    return {"cycle", *COUNT_COLUMNS} <= set(frame.columns)


def suppressed_table(frame: pd.DataFrame, min_cell: int) -> pd.DataFrame:
    """A cohort_cycles table with small cells suppressed (``suppression.suppress_cohort_cycles``)."""
    return suppress_cohort_cycles(frame, min_cell)


# --- the access file -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Grant:
    """One user's entry in the access file."""

    email: str
    role: str
    clinics: Clinics
    name: str = ""


@dataclass(frozen=True)
class AccessPolicy:
    """The parsed access file: users by e-mail (``normalise_email``), suppression per role, the pseudonym key file."""

    users: Mapping[str, Grant]
    min_cell: Mapping[str, int]
    pseudonym_key_file: Path
    source: Path

    def grant_for(self, email: str | None) -> Grant | None:
        """The user's entry: the exact address, but for surrounding ASCII whitespace and the case of A-Z.

        An address that ``email_problem`` refuses never matches any entry.
        """
        if not email or email_problem(email) is not None:
            return None
        return self.users.get(normalise_email(email))

    def lookalike(self, email: str) -> str | None:
        """The entry that the non-ASCII ``email`` imitates (same look-alike skeleton), if any.

        ``grant_for`` never maps such an address to the entry; this only names the attempt. An address
        that is an entry itself is no look-alike.
        """
        key = _ascii_lower(email.strip(ASCII_WHITESPACE))
        if key.isascii() or key in self.users:
            return None
        skeleton = lookalike_skeleton(key)
        return next((entry for entry in self.users if lookalike_skeleton(entry) == skeleton), None)

    def min_cell_for(self, role: str) -> int | None:
        return self.min_cell.get(role)


ASCII_WHITESPACE = " \t\r\n"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# Non-ASCII letters that look like ASCII ones and that NFKD does not take apart (Unicode TR39
# confusables, the Cyrillic and Greek ones of the Latin alphabet's lower case, plus dotless i).
_CONFUSABLES = str.maketrans(
    {
        "а": "a",
        "в": "b",
        "с": "c",
        "ԁ": "d",
        "е": "e",
        "һ": "h",
        "і": "i",
        "ј": "j",
        "к": "k",
        "ӏ": "l",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "ԛ": "q",
        "г": "r",
        "ѕ": "s",
        "т": "t",
        "џ": "u",
        "ѵ": "v",
        "ԝ": "w",
        "х": "x",
        "у": "y",
        "α": "a",
        "β": "b",
        "ε": "e",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "ı": "i",
        "ø": "o",
        "ł": "l",
        "đ": "d",
        "ħ": "h",
    }
)


def _ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def email_problem(email: str) -> str | None:
    """Why ``email`` cannot be compared exactly (``None`` when it can), in words for the audit log.

    Refused: an address that NFKC normalisation or Unicode case folding would change (``boß``,
    ``boſs``, ``analyﬆ``, upper-case non-ASCII letters, decomposed accents, full-width letters,
    non-ASCII spaces) and one holding control or format characters (zero-width space, bidi marks).
    """
    key = _ascii_lower(email.strip(ASCII_WHITESPACE))
    if not key:
        return "empty e-mail address"
    if any(unicodedata.category(char)[0] in "CZ" for char in key):
        return "e-mail address with spaces, control or invisible characters"
    if unicodedata.normalize("NFKC", key) != key or key.casefold() != key:
        return "e-mail address that Unicode normalisation (NFKC) or case folding would change"
    return None


def normalise_email(email: str) -> str:
    """The address as compared: surrounding ASCII whitespace removed, A-Z lowered, nothing else changed.

    Raises ``ValueError`` for an address that ``email_problem`` refuses.
    """
    problem = email_problem(email)
    if problem is not None:
        raise ValueError(problem)
    return _ascii_lower(email.strip(ASCII_WHITESPACE))


def lookalike_skeleton(email: str) -> str:
    """A rough skeleton for spotting look-alikes: accents dropped, compatibility forms and confusables to ASCII.

    Only used to name an attempt; never to let anyone in.
    """
    decomposed = unicodedata.normalize("NFKD", email.casefold())
    stripped = "".join(
        char for char in decomposed if not unicodedata.combining(char) and unicodedata.category(char) != "Cf"
    )
    return unicodedata.normalize("NFKC", stripped.translate(_CONFUSABLES)).casefold()


def normalise_clinic(clinic: str) -> str:
    return clinic.strip().casefold()


def _clinics(value: object, where: str) -> Clinics:
    if value == ALL_CLINICS:
        return ALL_CLINICS
    if isinstance(value, str) or not isinstance(value, list):
        raise AccessFileError(f'{where}: clinics must be a list of clinic names or "*" (got {value!r})')
    if not value or not all(isinstance(c, str) and c.strip() for c in value):
        raise AccessFileError(f"{where}: clinics must list at least one non-empty clinic name")
    if ALL_CLINICS in value:
        raise AccessFileError(f'{where}: write clinics = "*" for all clinics, not "*" inside a list')
    return tuple(sorted({c.strip() for c in value}))


def parse_access(data: Mapping[str, object], source: Path) -> AccessPolicy:
    """An ``AccessPolicy`` from the access file's content; raises ``AccessFileError``."""
    unknown = set(data) - {"users", "min_cell", "pseudonym_key_file"}
    if unknown:
        raise AccessFileError(f"{source.name}: unknown setting(s) {', '.join(sorted(unknown))}")
    users_table = data.get("users")
    if not isinstance(users_table, Mapping) or not users_table:
        raise AccessFileError(f"{source.name}: no [users] table (e-mail address -> role and clinics)")
    users: dict[str, Grant] = {}
    for email, entry in users_table.items():
        where = f"{source.name}, user {email}"
        if not isinstance(entry, Mapping):
            raise AccessFileError(f"{where}: expected a table with role and clinics")
        extra = set(entry) - {"role", "clinics", "name"}
        if extra:
            raise AccessFileError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
        try:
            key = normalise_email(str(email))
        except ValueError as exc:
            raise AccessFileError(f"{where}: {exc}; write the address in plain form") from exc
        if "@" not in key:
            raise AccessFileError(f"{where}: not an e-mail address")
        if key in users:
            raise AccessFileError(f"{where}: listed twice (e-mail addresses are compared without the case of A-Z)")
        role = entry.get("role")
        if role not in ROLES:
            raise AccessFileError(f"{where}: role must be one of {', '.join(ROLES)} (got {role!r})")
        if "clinics" not in entry:
            raise AccessFileError(f'{where}: clinics is missing (a list of clinic names, or "*")')
        users[key] = Grant(key, str(role), _clinics(entry["clinics"], where), str(entry.get("name", "")))
    min_cell_table = data.get("min_cell", {})
    if not isinstance(min_cell_table, Mapping):
        raise AccessFileError(f"{source.name}: min_cell must be a table of role = K")
    min_cell: dict[str, int] = {}
    for role, k in min_cell_table.items():
        if role not in PERMISSIONS or not PERMISSIONS[role].may_suppress:
            allowed = ", ".join(r for r in ROLES if PERMISSIONS[r].may_suppress)
            raise AccessFileError(f"{source.name}: min_cell applies to {allowed} (got {role!r})")
        if isinstance(k, bool) or not isinstance(k, int):
            raise AccessFileError(f"{source.name}: min_cell.{role} must be a whole number")
        try:
            min_cell[role] = check_min_cell(k)
        except ValueError as exc:
            raise AccessFileError(f"{source.name}: min_cell.{role}: {exc}") from exc
    key_file = Path(str(data.get("pseudonym_key_file", "pseudonym.key"))).expanduser()
    return AccessPolicy(
        users=MappingProxyType(users),
        min_cell=MappingProxyType(min_cell),
        pseudonym_key_file=key_file if key_file.is_absolute() else source.parent / key_file,
        source=source,
    )


def load_access_file(path: Path) -> AccessPolicy:
    """Read the access file (``.json`` as JSON, anything else as TOML); raises ``AccessFileError``."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AccessFileError(f"the access file {path} cannot be read ({exc.strerror or exc})") from exc
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise AccessFileError(f"{path.name} is not valid {path.suffix.lstrip('.').upper() or 'TOML'}: {exc}") from exc
    if not isinstance(data, Mapping):
        raise AccessFileError(f"{path.name}: expected a table at the top level")
    return parse_access(data, path)


# --- scoping a dataset ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What one user's dataset is cut down to: their clinics, and a pseudonym key for researchers."""

    clinics: Clinics = ALL_CLINICS
    pseudonym_key: bytes | None = dataclasses.field(default=None, repr=False)

    @property
    def everything(self) -> bool:
        """True when the scope changes nothing (all clinics, real ids)."""
        return self.clinics == ALL_CLINICS and self.pseudonym_key is None

    @property
    def tag(self) -> str:
        """A stable text naming the scope (never the key), for cache keys and file identities."""
        # JSON, so that no two lists of clinic names (which may hold commas) give the same text.
        parts = ["clinics=" + (ALL_CLINICS if self.clinics == ALL_CLINICS else json.dumps(list(self.clinics)))]
        if self.pseudonym_key is not None:
            # A fingerprint of the key, so that a new key never meets results cached under the old one.
            fingerprint = hmac.new(self.pseudonym_key, b"scope fingerprint", hashlib.sha256).hexdigest()[:12]
            parts.append(f"pseudonymised={fingerprint}")
        return ";".join(parts)


def _stem(file_name: str) -> str:
    return file_name.rsplit(".", 1)[0]


def _with_reports(
    dataset: Dataset, tables: dict[str, pd.DataFrame], rejected: pd.DataFrame, tag: str, unlisted: pd.DataFrame
) -> Dataset:
    """The dataset with new tables and rejections (listed and ``unlisted``), and per-file counts and identities."""
    rejected_per_file = rejected["file"].value_counts()
    unlisted_per_file = unlisted.groupby("file")["rows"].sum()
    reports = []
    for f in dataset.files:
        accepted = len(tables[_stem(f.file)]) if _stem(f.file) in tables else 0
        rejected_rows = int(rejected_per_file.get(f.file, 0)) + int(unlisted_per_file.get(f.file, 0))
        reports.append(
            FileReport(
                file=f.file,
                sha256=f"{f.sha256}/{tag}",
                rows_read=accepted + rejected_rows,
                rows_accepted=accepted,
                rows_rejected=rejected_rows,
                columns_ignored=f.columns_ignored,
            )
        )
    return Dataset(
        tables=tables,
        rejected=rejected.reset_index(drop=True),
        files=reports,
        present_columns=dict(dataset.present_columns),
        rejected_unlisted=unlisted.reset_index(drop=True),
    )


def visible_patients(dataset: Dataset, clinics: Clinics) -> pd.Index:
    """The patient ids listed in patients.csv with a clinic among ``clinics`` (compared without case)."""
    patients = dataset.tables["patients"]
    if clinics == ALL_CLINICS:
        return pd.Index(patients["patient_id"].unique())
    wanted = {normalise_clinic(c) for c in clinics}
    clinic = patients["clinic"].astype("string").str.strip().str.casefold()
    return pd.Index(patients.loc[clinic.isin(wanted).fillna(False).astype(bool), "patient_id"].unique())


def scope_dataset(dataset: Dataset, clinics: Clinics) -> Dataset:
    """The dataset cut down to the patients of ``clinics`` (every table and the rejection report).

    ``"*"`` returns the dataset itself, unchanged. Otherwise a row is kept when its patient_id is
    listed in patients.csv with one of ``clinics``; a rejected row likewise, so rejected rows without
    such a patient are left out.
    """
    if clinics == ALL_CLINICS:
        return dataset
    visible = visible_patients(dataset, clinics)
    tables = {stem: t[t["patient_id"].isin(visible)].reset_index(drop=True) for stem, t in dataset.tables.items()}
    rejected = dataset.rejected[dataset.rejected["patient_id"].isin(visible)]
    unlisted = dataset.rejected_unlisted[dataset.rejected_unlisted["patient_id"].isin(visible)]
    return _with_reports(dataset, tables, rejected, Scope(clinics).tag, unlisted)


def pseudonymise_dataset(dataset: Dataset, key: bytes) -> Dataset:
    """Every patient_id replaced by its keyed pseudonym; the rejected value of a patient_id withheld."""
    ids = (
        pd.concat(
            [t["patient_id"].astype("string") for t in dataset.tables.values()]
            + [
                dataset.rejected["patient_id"].astype("string"),
                dataset.rejected_unlisted["patient_id"].astype("string"),
            ]
        )
        .dropna()
        .unique()
    )
    # HMAC has no vectorised form: one call per distinct id, then a vectorised map over the rows.
    mapping = pd.Series({raw: pseudonym(key, raw) for raw in ids}, dtype="string")
    if mapping[mapping != ""].nunique() != (mapping != "").sum():
        raise ValueError("two patient ids received the same pseudonym; use another key")

    def renamed(column: pd.Series) -> pd.Series:
        return column.astype("string").map(mapping).astype(column.dtype)

    tables = {stem: t.assign(patient_id=renamed(t["patient_id"])) for stem, t in dataset.tables.items()}
    rejected = dataset.rejected.assign(patient_id=renamed(dataset.rejected["patient_id"]))
    rejected["value"] = rejected["value"].where(rejected["column"] != "patient_id", "")
    unlisted = dataset.rejected_unlisted.assign(patient_id=renamed(dataset.rejected_unlisted["patient_id"]))
    return _with_reports(dataset, tables, rejected, Scope(pseudonym_key=key).tag, unlisted)


def apply_scope(dataset: Dataset, scope: Scope) -> Dataset:
    """The dataset one user may see: their clinics, then pseudonyms when the scope has a key."""
    if scope.everything:
        return dataset
    scoped = scope_dataset(dataset, scope.clinics)
    if scope.pseudonym_key is not None:
        scoped = pseudonymise_dataset(scoped, scope.pseudonym_key)
    # One identity for the whole scope, whichever steps ran.
    original = {f.file: f.sha256 for f in dataset.files}
    scoped.files = [dataclasses.replace(f, sha256=f"{original[f.file]}/{scope.tag}") for f in scoped.files]
    return scoped


def pinned_config(dataset: Dataset, config: AnalysisConfig, scope: Scope) -> AnalysisConfig:
    """For a clinic-scoped user, ``config`` with as_of fixed to the whole dataset's data cut-off.

    The default cut-off is the latest session or diary date of the data analysed; computed on one
    clinic's rows it could fall earlier, and the same patient's ongoing cycle, completeness and
    intention-to-treat denominators would then differ between users. An explicit as_of is kept.
    """
    if config.as_of is not None or scope.clinics == ALL_CLINICS:
        return config
    cutoff = data_cutoff(dataset.tables["sessions"], dataset.tables["diary"], config)
    return config.replace(as_of=cutoff.date())


def scope_for(role: str, clinics: Clinics, pseudonym_key: bytes | None) -> Scope:
    """The scope of one user: their clinics, and the key when their role sees pseudonyms."""
    if not PERMISSIONS[role].pseudonymised:
        return Scope(clinics)
    if pseudonym_key is None:
        raise AccessFileError(f"the {role} role sees pseudonyms only, and no pseudonym key is available")
    return Scope(clinics, pseudonym_key)
