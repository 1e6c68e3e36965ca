"""Access control (issue #6): the permission matrix, the access file, clinic scoping and pseudonyms.

The expected permissions are written out by hand below, one row per role, not read back from
``analytics.privacy.access.PERMISSIONS``, so that a change to the matrix has to be made twice to pass.

The two-clinic dataset (hand-built; every patient has 28 baseline diary days before 2024-02-01):
    N1 North, sessions 2024-02-01 and 2024-06-20; diary to 2024-07-10 (North's latest date); one diary
       row with 30 h (rejected)
    N2 North, session 2024-02-01 only; diary to 2024-04-24
    N3 " north " (same clinic: case and spaces do not matter), sessions 2024-02-01, 2024-04-25
    S1 South, sessions 2024-02-01, 2024-04-25; diary to 2024-08-31 (the dataset's latest date); an
       invalid date row (rejected)
    X1 no clinic, session 2024-02-01
    U1 not in patients.csv: its session is rejected (unknown patient); a diary row with an empty
       patient_id and one with an invalid patient_id are rejected too.
So North sees N1, N2, N3 (n_treated 3 at cycle 1, 2 at cycle 2) and one rejected row (N1's); South
sees S1 and its rejected row; only "*" users see X1, U1 and the rejected rows without a patient.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pandas as pd
import pytest

from analytics.definitions.config import AnalysisConfig
from analytics.definitions.pipeline import analyse
from analytics.ingest.load import Dataset, load_dataset
from analytics.privacy import access

# --- the permission matrix, by hand ------------------------------------------------------------------

PAGES_BY_ROLE = {
    #             patient clinic outcomes data  audit
    "doctor": (True, False, False, True, False),
    "manager": (False, True, True, True, False),
    "researcher": (False, False, True, True, False),
    "admin": (True, True, True, True, True),
}
EXPORTS_BY_ROLE = {
    #             patient_level aggregate
    "doctor": (True, True),
    "manager": (False, True),
    "researcher": (True, True),
    "admin": (True, True),
}
PAGE_ORDER = ("patient", "clinic", "outcomes", "data", "audit")
KIND_ORDER = ("patient_level", "aggregate")


@pytest.mark.parametrize(
    ("role", "page", "expected"),
    [
        (role, page, allowed)
        for role, row in PAGES_BY_ROLE.items()
        for page, allowed in zip(PAGE_ORDER, row, strict=True)
    ],
)
def test_page_access(role: str, page: str, expected: bool) -> None:
    assert access.can_view(role, page) is expected


@pytest.mark.parametrize(
    ("role", "kind", "expected"),
    [
        (role, kind, allowed)
        for role, row in EXPORTS_BY_ROLE.items()
        for kind, allowed in zip(KIND_ORDER, row, strict=True)
    ],
)
def test_export_access(role: str, kind: str, expected: bool) -> None:
    assert access.can_export(role, kind) is expected
    assert (access.export_refusal(role, kind, min_cell=None) is None) is expected


def test_matrix_covers_exactly_the_roles_pages_and_kinds() -> None:
    assert set(access.ROLES) == set(PAGES_BY_ROLE) == set(access.PERMISSIONS)
    assert access.PAGES == PAGE_ORDER
    assert access.EXPORT_KINDS == KIND_ORDER
    assert access.allowed_pages("manager") == ("clinic", "outcomes", "data")


def test_unknown_role_page_or_kind_is_refused() -> None:
    assert not access.can_view("nurse", "patient")
    assert not access.can_view("admin", "settings")
    assert not access.can_export("nurse", "aggregate")
    assert not access.can_export("admin", "everything")


@pytest.mark.parametrize(
    ("role", "kind", "suppressed", "allowed"),
    [
        ("researcher", "patient_level", False, False),  # with suppression on: aggregate tables only
        ("researcher", "aggregate", False, False),  # ... and only once suppressed
        ("researcher", "aggregate", True, True),
        ("manager", "aggregate", True, True),
        ("manager", "patient_level", True, False),
    ],
)
def test_enforced_suppression_allows_suppressed_aggregates_only(
    role: str, kind: str, suppressed: bool, allowed: bool
) -> None:
    refusal = access.export_refusal(role, kind, min_cell=11, suppressed=suppressed)
    assert (refusal is None) is allowed


def test_export_kind_follows_the_patient_columns() -> None:
    assert access.export_kind(pd.DataFrame({"patient_id": ["N1"], "cycle": [1]})) == "patient_level"
    assert access.export_kind(pd.DataFrame({"patient": ["/patient?patient=N1"]})) == "patient_level"
    assert access.export_kind(pd.DataFrame({"cycle": [1], "n_treated": [12]})) == "aggregate"
    assert access.EXPORT_FILE_KINDS["patient_cycles.csv"] == "patient_level"
    assert access.EXPORT_FILE_KINDS["cohort_cycles.csv"] == "aggregate"


# --- the access file ---------------------------------------------------------------------------------

ACCESS_TOML = """
pseudonym_key_file = "keys/pseudonym.key"

[min_cell]
researcher = 11

[users."Dr.North@Clinic.example"]
role = "doctor"
clinics = ["North"]
name = "Dr North"

[users."boss@clinic.example"]
role = "manager"
clinics = ["North", "South"]

[users."admin@clinic.example"]
role = "admin"
clinics = "*"
"""


def test_access_file_toml(tmp_path: Path) -> None:
    path = tmp_path / "access.toml"
    path.write_text(ACCESS_TOML)
    policy = access.load_access_file(path)
    doctor = policy.grant_for("  dr.north@CLINIC.example ")
    assert doctor == access.Grant("dr.north@clinic.example", "doctor", ("North",), "Dr North")
    assert policy.grant_for("boss@clinic.example").clinics == ("North", "South")
    assert policy.grant_for("admin@clinic.example").clinics == "*"
    assert policy.grant_for("stranger@clinic.example") is None
    assert policy.grant_for(None) is None
    assert policy.min_cell_for("researcher") == 11
    assert policy.min_cell_for("manager") is None
    assert policy.pseudonym_key_file == tmp_path / "keys" / "pseudonym.key"


def test_access_file_json(tmp_path: Path) -> None:
    path = tmp_path / "access.json"
    content = {"users": {"r@x.org": {"role": "researcher", "clinics": "*"}}, "min_cell": {"manager": 5}}
    path.write_text(json.dumps(content))
    policy = access.load_access_file(path)
    assert policy.grant_for("R@X.org").role == "researcher"
    assert policy.min_cell_for("manager") == 5
    assert policy.pseudonym_key_file == tmp_path / "pseudonym.key"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[users."a@x.org"]\nrole = "nurse"\nclinics = "*"\n', "role must be one of"),
        ('[users."a@x.org"]\nrole = "doctor"\n', "clinics is missing"),
        ('[users."a@x.org"]\nrole = "doctor"\nclinics = "North"\n', "clinics must be a list"),
        ('[users."a@x.org"]\nrole = "doctor"\nclinics = []\n', "at least one"),
        ('[users."a@x.org"]\nrole = "doctor"\nclinics = ["*"]\n', 'write clinics = "*"'),
        (
            '[users."a@x.org"]\nrole = "admin"\nclinics = "*"\n[users."A@X.org"]\nrole = "doctor"\nclinics = "*"\n',
            "listed twice",
        ),
        ('[users."not-an-address"]\nrole = "admin"\nclinics = "*"\n', "not an e-mail address"),
        ('[users."a@x.org"]\nrole = "admin"\nclinics = "*"\nclinic = "North"\n', "unknown key"),
        ('[users."a@x.org"]\nrole = "admin"\nclinics = "*"\n[min_cell]\ndoctor = 11\n', "min_cell applies to"),
        ('[users."a@x.org"]\nrole = "admin"\nclinics = "*"\n[min_cell]\nresearcher = 1\n', "at least 2"),
        ('admins = ["a@x.org"]\n', "unknown setting"),
        ("", "no [users] table"),
        ("[users\n", "not valid TOML"),
    ],
)
def test_access_file_errors_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "access.toml"
    path.write_text(text)
    with pytest.raises(access.AccessFileError, match=message.replace("[", r"\[").replace("*", r"\*")):
        access.load_access_file(path)


# --- e-mail addresses: exact, ASCII-only case, no Unicode folding ---------------------------------------

ATTACK_TOML = """
[users."boss.north@clinic.example"]
role = "manager"
clinics = ["North"]

[users."analyst@uni.example"]
role = "researcher"
clinics = "*"

[users."josé@clinic.example"]
role = "doctor"
clinics = ["North"]
"""


@pytest.fixture
def attacked(tmp_path: Path) -> access.AccessPolicy:
    path = tmp_path / "access.toml"
    path.write_text(ATTACK_TOML, encoding="utf-8")
    return access.load_access_file(path)


@pytest.mark.parametrize(
    ("given", "victim"),
    [
        ("boß.north@clinic.example", "boss.north@clinic.example"),  # ß casefolds to ss
        ("boſs.north@clinic.example", "boss.north@clinic.example"),  # long s: NFKC and casefold give s
        ("analyﬆ@uni.example", "analyst@uni.example"),  # the "st" ligature U+FB06
        ("BOẞ.NORTH@clinic.example", "boss.north@clinic.example"),  # capital sharp s
        ("ｂｏｓｓ.north@clinic.example", "boss.north@clinic.example"),  # full-width letters
        ("\u00a0boss.north@clinic.example", "boss.north@clinic.example"),  # a non-ASCII space
        ("boss.north\u200b@clinic.example", "boss.north@clinic.example"),  # a zero-width space
        ("аnalyst@uni.example", "analyst@uni.example"),  # Cyrillic а (U+0430)
        ("bоss.north@clinic.example", "boss.north@clinic.example"),  # Cyrillic о (U+043E)
        ("bóss.north@clinic.example", "boss.north@clinic.example"),  # an accent
        ("jose\u0301@clinic.example", "josé@clinic.example"),  # the listed address, decomposed
        ("JOSÉ@clinic.example", "josé@clinic.example"),  # non-ASCII upper case
    ],
)
def test_unicode_look_alikes_never_get_the_entry(attacked: access.AccessPolicy, given: str, victim: str) -> None:
    assert victim in attacked.users
    assert attacked.grant_for(given) is None
    # Refused outright (NFKC or case folding would change it), or named as a look-alike of the entry.
    assert access.email_problem(given) is not None or attacked.lookalike(given) == victim


@pytest.mark.parametrize("given", ["boß.north@clinic.example", "boſs.north@clinic.example", "analyﬆ@uni.example"])
def test_folded_addresses_are_refused_not_normalised(given: str) -> None:
    with pytest.raises(ValueError, match="NFKC"):
        access.normalise_email(given)


def test_ascii_case_and_surrounding_ascii_spaces_still_match(attacked: access.AccessPolicy) -> None:
    assert attacked.grant_for(" Boss.NORTH@Clinic.Example\t").email == "boss.north@clinic.example"
    assert attacked.grant_for("josé@clinic.example").role == "doctor"  # a listed non-ASCII address, exactly
    assert attacked.grant_for("jose@clinic.example") is None
    assert attacked.lookalike("josé@clinic.example") is None
    assert attacked.lookalike("stranger@clinic.example") is None
    assert access.normalise_email("INFO@X.org") == "info@x.org"
    assert access.email_problem("İnfo@x.org") is not None  # not lowered to "i̇nfo" (str.lower would)


@pytest.mark.parametrize(
    "entry",
    [
        "boß@clinic.example",
        "ANALYﬆ@uni.example",
        "bo\u200bss@clinic.example",
        "ｂｏｓｓ@clinic.example",
        "JOSÉ@clinic.example",
    ],
)
def test_access_file_entries_are_checked_the_same_way(tmp_path: Path, entry: str) -> None:
    path = tmp_path / "access.toml"
    path.write_text(f'[users."{entry}"]\nrole = "admin"\nclinics = "*"\n', encoding="utf-8")
    with pytest.raises(access.AccessFileError, match="plain form"):
        access.load_access_file(path)


def test_access_file_entries_differing_in_ascii_case_are_one_user(tmp_path: Path) -> None:
    path = tmp_path / "access.toml"
    path.write_text(
        '[users."Boss@x.org"]\nrole = "admin"\nclinics = "*"\n[users."boss@X.ORG"]\nrole = "doctor"\nclinics = "*"\n'
    )
    with pytest.raises(access.AccessFileError, match="listed twice"):
        access.load_access_file(path)


def test_missing_access_file(tmp_path: Path) -> None:
    with pytest.raises(access.AccessFileError, match="cannot be read"):
        access.load_access_file(tmp_path / "nowhere.toml")


# --- scoping ------------------------------------------------------------------------------------------


def _diary(pid: str, first: str, days: int, hours: float = 5.0) -> list[str]:
    start = pd.Timestamp(first)
    return [f"{pid},{(start + pd.Timedelta(days=i)).date()},{hours if i % 3 else 0},,," for i in range(days)]


def two_clinic_files() -> dict[str, str]:
    patients = "patient_id,sex,clinic\nN1,F,North\nN2,M,North\nN3,F, north \nS1,F,South\nX1,M,\n"
    sessions = ["patient_id,session_date,total_units"]
    for pid, dates in {
        "N1": ["2024-02-01", "2024-06-20"],
        "N2": ["2024-02-01"],
        "N3": ["2024-02-01", "2024-04-25"],
        "S1": ["2024-02-01", "2024-04-25"],
        "X1": ["2024-02-01"],
        "U1": ["2024-02-01"],
    }.items():
        sessions += [f"{pid},{d},155" for d in dates]
    diary = ["patient_id,date,headache_hours,migraine,severity,acute_medication"]
    diary += _diary("N1", "2024-01-04", 189)
    diary += ["N1,2024-07-11,30,,,"]  # out of range: rejected, North's
    diary += _diary("N2", "2024-01-04", 112)
    diary += _diary("N3", "2024-01-04", 150, hours=6.0)
    diary += _diary("S1", "2024-01-04", 241)  # to 2024-08-31: the dataset's latest date
    diary += ["S1,2024/09/01,5,,,"]  # invalid date: rejected, South's
    diary += _diary("X1", "2024-01-04", 60)
    diary += [",2024-03-01,5,,,", "bad id!,2024-03-01,5,,,"]  # no valid patient: visible to "*" only
    questionnaires = "patient_id,date,instrument,score\nN1,2024-03-01,HIT-6,60\nS1,2024-03-01,HIT-6,66\n"
    adverse = "patient_id,session_date,event,severity\nS1,2024-02-01,neck_pain,mild\nN2,2024-02-01,eyelid_ptosis,mild\n"
    injections = (
        "patient_id,session_date,muscle,side,units\nN1,2024-02-01,frontalis,left,10\nS1,2024-02-01,frontalis,left,10\n"
    )
    return {
        "patients.csv": patients,
        "sessions.csv": "\n".join(sessions) + "\n",
        "diary.csv": "\n".join(diary) + "\n",
        "questionnaires.csv": questionnaires,
        "adverse_events.csv": adverse,
        "injections.csv": injections,
    }


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return load_dataset({name: text.encode() for name, text in two_clinic_files().items()})


NORTH = {"N1", "N2", "N3"}


def test_the_fixture_is_what_the_docstring_says(dataset: Dataset) -> None:
    rejected = set(zip(dataset.rejected["file"], dataset.rejected["patient_id"], strict=True))
    assert rejected == {
        ("sessions.csv", "U1"),
        ("diary.csv", "N1"),
        ("diary.csv", "S1"),
        ("diary.csv", ""),
        ("diary.csv", "bad id!"),
    }
    assert set(dataset.tables["sessions"]["patient_id"]) == {"N1", "N2", "N3", "S1", "X1"}


def test_north_sees_only_north_patients_everywhere(dataset: Dataset) -> None:
    north = access.scope_dataset(dataset, ("North",))
    for stem, table in north.tables.items():
        assert set(table["patient_id"]) <= NORTH, stem
    assert set(north.tables["diary"]["patient_id"]) == NORTH
    assert set(north.tables["questionnaires"]["patient_id"]) == {"N1"}
    assert set(north.tables["adverse_events"]["patient_id"]) == {"N2"}
    assert list(north.rejected["patient_id"]) == ["N1"]
    assert list(north.rejected["reason"]) == ["headache_hours out of range"]

    analysis = analyse(north, access.pinned_config(dataset, AnalysisConfig(), access.Scope(("North",))))
    assert set(analysis.patient_cycles["patient_id"]) == NORTH
    assert set(analysis.patient_days["patient_id"]) == NORTH
    cohort = analysis.cohort_cycles.set_index("cycle")
    assert cohort.loc[1, "n_treated"] == 3  # N1, N2, N3
    assert cohort.loc[2, "n_treated"] == 2  # N1, N3
    south_ids = {"S1", "X1", "U1", "bad id!"}
    for frame in (analysis.patient_cycles, analysis.patient_days, north.rejected):
        assert not south_ids & set(frame["patient_id"])


def test_a_scoped_patient_has_the_same_cycles_as_for_everyone(dataset: Dataset) -> None:
    """The cut-off is pinned to the whole dataset's, so N1's ongoing cycle ends on 2024-08-31 for both.

    Unpinned, North's own latest date (2024-07-10) would end it there, with other completeness.
    """
    everyone = analyse(dataset, AnalysisConfig())
    scope = access.Scope(("North",))
    pinned = access.pinned_config(dataset, AnalysisConfig(), scope)
    north = analyse(access.scope_dataset(dataset, scope.clinics), pinned)
    assert north.as_of == everyone.as_of == pd.Timestamp("2024-08-31")
    mine = everyone.patient_cycles[everyone.patient_cycles["patient_id"].isin(NORTH)].reset_index(drop=True)
    pd.testing.assert_frame_equal(north.patient_cycles.reset_index(drop=True), mine)
    last = north.patient_cycles[(north.patient_cycles["patient_id"] == "N1")].iloc[-1]
    assert (last["status"], last["end_date"]) == ("ongoing", pd.Timestamp("2024-08-31"))
    unpinned = analyse(access.scope_dataset(dataset, scope.clinics), AnalysisConfig())
    assert unpinned.as_of == pd.Timestamp("2024-07-10")


def test_an_explicit_as_of_is_kept(dataset: Dataset) -> None:
    config = AnalysisConfig(as_of=pd.Timestamp("2024-06-30").date())
    assert access.pinned_config(dataset, config, access.Scope(("North",))) is config
    assert access.pinned_config(dataset, AnalysisConfig(), access.Scope()) == AnalysisConfig()


def test_south_and_unlisted_patients(dataset: Dataset) -> None:
    south = access.scope_dataset(dataset, ["south"])
    assert set(south.tables["sessions"]["patient_id"]) == {"S1"}
    assert list(south.rejected["patient_id"]) == ["S1"]
    nowhere = access.scope_dataset(dataset, ("West",))
    assert all(t.empty for t in nowhere.tables.values())
    assert nowhere.rejected.empty
    assert access.scope_dataset(dataset, access.ALL_CLINICS) is dataset


def test_scoped_file_counts_reconcile_and_identities_differ(dataset: Dataset) -> None:
    north = access.scope_dataset(dataset, ("North",))
    counts = {f.file: (f.rows_read, f.rows_accepted, f.rows_rejected) for f in north.files}
    north_diary_days = 189 + 112 + 150
    assert counts["diary.csv"] == (north_diary_days + 1, north_diary_days, 1)
    assert counts["sessions.csv"] == (5, 5, 0)  # N1 x2, N2, N3 x2
    assert counts["patients.csv"] == (3, 3, 0)
    south = access.scope_dataset(dataset, ("South",))
    originals = {f.file: f.sha256 for f in dataset.files}
    for f_north, f_south in zip(north.files, south.files, strict=True):
        assert f_north.sha256 != f_south.sha256 != originals[f_north.file]
        assert f_north.sha256.split("/")[0] == originals[f_north.file]  # still names the source file
    # The original dataset is untouched.
    assert len(dataset.tables["sessions"]) == 8  # U1's session is rejected


def test_two_clinics_are_their_union(dataset: Dataset) -> None:
    both = access.scope_dataset(dataset, ("North", "South"))
    assert set(both.tables["sessions"]["patient_id"]) == NORTH | {"S1"}
    assert sorted(both.rejected["patient_id"]) == ["N1", "S1"]


# --- pseudonyms ---------------------------------------------------------------------------------------

KEY = bytes(range(32))


def expected_pseudonym(raw: str) -> str:
    """HMAC-SHA256 computed here with the standard library, independent of analytics.privacy.deidentify."""
    return "P" + hmac.new(KEY, b"id:" + raw.encode(), hashlib.sha256).hexdigest()[:16]


def test_researchers_see_keyed_pseudonyms_everywhere(dataset: Dataset) -> None:
    scope = access.Scope(access.ALL_CLINICS, KEY)
    seen = access.apply_scope(dataset, scope)
    raw_ids = {"N1", "N2", "N3", "S1", "X1", "U1", "bad id!"}
    for stem, table in seen.tables.items():
        assert not raw_ids & set(table["patient_id"]), stem
        assert str(table["patient_id"].dtype) == str(dataset.tables[stem]["patient_id"].dtype)
    assert set(seen.tables["sessions"]["patient_id"]) == {expected_pseudonym(p) for p in ("N1", "N2", "N3", "S1", "X1")}
    rejected = seen.rejected.set_index("file")
    assert expected_pseudonym("U1") in set(rejected["patient_id"])
    assert "" in set(rejected["patient_id"])  # an empty patient_id stays empty
    assert not raw_ids & set(seen.rejected["value"])  # the invalid id's own text is withheld
    # Results are the same up to the renaming.
    everyone, pseudonymised = analyse(dataset), analyse(seen)
    renamed = everyone.patient_cycles.assign(patient_id=everyone.patient_cycles["patient_id"].map(expected_pseudonym))
    key_columns = ["patient_id", "cycle"]
    pd.testing.assert_frame_equal(
        pseudonymised.patient_cycles.sort_values(key_columns).reset_index(drop=True),
        renamed.sort_values(key_columns).reset_index(drop=True),
        check_dtype=False,
    )
    pd.testing.assert_frame_equal(pseudonymised.cohort_cycles, everyone.cohort_cycles)


def test_a_north_researcher_is_scoped_then_pseudonymised(dataset: Dataset) -> None:
    scope = access.Scope(("North",), KEY)
    seen = access.apply_scope(dataset, scope)
    assert set(seen.tables["sessions"]["patient_id"]) == {expected_pseudonym(p) for p in NORTH}
    assert list(seen.rejected["patient_id"]) == [expected_pseudonym("N1")]
    tags = {f.sha256.split("/", 1)[1] for f in seen.files}
    assert tags == {scope.tag}
    assert KEY.hex() not in scope.tag and "pseudonymised=" in scope.tag
    assert access.Scope(("North",), bytes(32)).tag != scope.tag  # another key, another cache identity
    assert access.Scope(("A,B",)).tag != access.Scope(("A", "B")).tag


def test_scope_for_roles() -> None:
    assert access.scope_for("doctor", ("North",), KEY) == access.Scope(("North",))
    assert access.scope_for("researcher", "*", KEY).pseudonym_key == KEY
    with pytest.raises(access.AccessFileError):
        access.scope_for("researcher", "*", None)
    assert access.Scope().everything and not access.Scope(("North",)).everything


def test_cohort_tables_can_be_suppressed(dataset: Dataset) -> None:
    cohort = analyse(dataset).cohort_cycles
    assert access.suppressible(cohort)
    assert not access.suppressible(cohort[["cycle", "n_treated"]])
    suppressed = access.suppressed_table(cohort, 11).set_index("cycle")
    assert suppressed.loc[1, "n_treated"] == "<11"  # 5 treated patients
    assert set(suppressed["n_treated"]) <= {"<11", "suppressed", "0"}
