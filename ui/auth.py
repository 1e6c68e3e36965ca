"""Who is using the dashboard and what they may see: login, roles, clinic scoping, guarded exports, audit.

``dashboard.py`` calls ``navigation(pages)`` instead of ``st.navigation``: it identifies the user
(stored for the pages in ``ui.context``) and offers only the pages their role may open
(``analytics.privacy.access.PERMISSIONS``; only admins get the Audit page). ``ui.state`` cuts every
loaded dataset down to the user's scope before analysing it, so no page ever holds another clinic's
patients; pages guard their downloads with ``download_button``
(and ``ui.render.table`` with ``table_download``), which checks the role, enforces small-cell
suppression and writes an ``export`` audit event when the file is actually downloaded; the patient
page calls ``opened_patient``, or ``refused_patient`` for a patient id in the link that is not one
of the user's. A link to a page the role may not open reaches a hidden "No access" page instead.
Every refusal writes a ``refused`` audit event (``refuse``).

Two modes:

- **OIDC**, when ``.streamlit/secrets.toml`` has an ``[auth]`` section: Streamlit's ``st.login()``
  (Authlib) signs the user in with the clinic's identity provider and ``st.user.email`` is looked up
  in the access file (path in ``OUTCOMES_ACCESS_FILE``, from the environment or the secrets), exactly
  but for the case of A-Z (``analytics.privacy.access.normalise_email``). A user not in the file, an address
  the provider does not mark verified (``email_verified`` true), an address that Unicode
  normalisation would change or that imitates an access-file entry, an unreadable access file or a
  provider that sends no e-mail address is refused with a message and a ``refused`` audit event
  naming the address as the provider sent it: the app fails closed.
- **Local single-user mode**, without ``[auth]``: nobody logs in, the one user is an admin who sees
  all data, and a banner on every page says so. Served on anything but a loopback address
  (``server.address``), it shows no data at all, only why.

The audit log's path is ``OUTCOMES_AUDIT_LOG`` (environment or secrets), by default
``logs/audit.jsonl`` in the project folder.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from pathlib import Path

import pandas as pd
import streamlit as st

from analytics.definitions.config import AnalysisConfig
from analytics.errors import AnalyticsRefusal
from analytics.privacy import access, audit
from analytics.privacy.deidentify import DeidentifyError, load_or_create_key
from ui.context import USER_KEY, User, current, current_user

logger = logging.getLogger("outcomes.auth")

ACCESS_FILE_VARIABLE = "OUTCOMES_ACCESS_FILE"
AUDIT_LOG_VARIABLE = "OUTCOMES_AUDIT_LOG"
LOCAL_MODE_BANNER = "Local single-user mode: no login; everyone with access to this computer sees all data"
PAGE_KEY = "auth_page"
LOGGED_KEY = "auth_logged"
OPENED_KEY = "auth_opened_patient"
REFUSALS_KEY = "auth_refusals"
ANALYSIS_PARAMETERS = frozenset(f.name for f in fields(AnalysisConfig) if f.repr)
REFUSED_UNKNOWN = "not in the access file"
REFUSED_PATIENT = "patient not among the user's patients (another clinic's, or unknown)"


LOCAL_USER = User(email="local", name="Local user", role="admin", clinics=access.ALL_CLINICS, mode="local")


class Refused(AnalyticsRefusal):
    """The signed-in person may not use the dashboard; ``str()`` is the message they see."""

    def __init__(self, message: str, reason: str, email: str):
        super().__init__(message)
        self.reason = reason
        self.email = email


# --- settings --------------------------------------------------------------------------------------


def _secrets() -> Mapping[str, object]:
    try:
        return {key: st.secrets[key] for key in st.secrets}
    except (FileNotFoundError, st.errors.StreamlitSecretNotFoundError):
        return {}


def setting(name: str) -> str | None:
    """A setting from the environment, else from ``.streamlit/secrets.toml``."""
    value = os.environ.get(name) or _secrets().get(name)
    return str(value) if value else None


def auth_section() -> Mapping[str, object] | None:
    """The ``[auth]`` section of the secrets, when there is one (then users log in)."""
    section = _secrets().get("auth")
    return section if isinstance(section, Mapping) else None


def audit_log() -> audit.AuditLog:
    return audit.AuditLog(setting(AUDIT_LOG_VARIABLE) or audit.DEFAULT_AUDIT_LOG)


def _file_version(path: Path) -> tuple[str, int, int]:
    """A file's path, modification time (ns) and size: changes whenever the file does."""
    stat = path.stat()
    return str(path), stat.st_mtime_ns, stat.st_size


@st.cache_resource(max_entries=4, show_spinner=False, hash_funcs={type(Path()): _file_version})
def _policy(path: Path) -> access.AccessPolicy | str:
    """The parsed access file, or the problem in words; re-read whenever the file changes."""
    try:
        return access.load_access_file(path)
    except access.AccessFileError as exc:
        return str(exc)


def access_policy() -> access.AccessPolicy:
    """The access file named by ``OUTCOMES_ACCESS_FILE``; raises ``AccessFileError``."""
    path = setting(ACCESS_FILE_VARIABLE)
    if not path:
        raise access.AccessFileError(f"no access file is configured ({ACCESS_FILE_VARIABLE})")
    access_file = Path(path).expanduser()
    try:
        access_file.stat()  # here, so that the problem is named (the cache key stats it too)
    except OSError as exc:
        raise access.AccessFileError(f"the access file {path} cannot be read ({exc.strerror or exc})") from exc
    policy = _policy(access_file)
    if isinstance(policy, str):
        raise access.AccessFileError(policy)
    return policy


def _pseudonym_key(policy: access.AccessPolicy) -> bytes:
    try:
        key, created, warnings = load_or_create_key(policy.pseudonym_key_file)
    except DeidentifyError as exc:
        raise access.AccessFileError(str(exc)) from exc
    if created:
        logger.info("created the researchers' pseudonym key %s", policy.pseudonym_key_file)
    for warning in warnings:
        logger.warning(warning)
    return key


# --- who is this -----------------------------------------------------------------------------------


def email_verified(value: object) -> bool:
    """Whether the provider's ``email_verified`` claim vouches for the address: True, or the text "true".

    A missing claim, false, "false", 1, "yes" or anything else is not a verification.
    """
    return value is True or value == "true"


def _signed_in_user() -> User:
    """The signed-in user from ``st.user`` and the access file; raises ``Refused``.

    ``Refused.email`` (what the audit log records) is the address exactly as the provider sent it,
    never the access-file entry it may imitate.
    """
    given = str(st.user.get("email") or "")
    email = given.strip(access.ASCII_WHITESPACE)
    if not email:
        raise Refused(
            "Your identity provider did not send an e-mail address, so your access cannot be checked.",
            "no e-mail address from the identity provider",
            "",
        )
    if not email_verified(st.user.get("email_verified")):
        claim = st.user.get("email_verified")
        raise Refused(
            f"Your identity provider does not confirm that the e-mail address {email} is verified, so it "
            "cannot be used to let you in. Please verify it with your identity provider, or ask the "
            "administrator.",
            f"e-mail address not verified (email_verified: {claim!r})",
            given,
        )
    try:
        policy = access_policy()
    except access.AccessFileError as exc:
        logger.error("Access file problem: %s", exc)
        raise Refused(
            "The dashboard's access settings cannot be read, so nobody can be let in. Please tell the "
            "administrator (the details are in the server log).",
            f"access file: {exc}",
            given,
        ) from exc
    problem, imitated = access.email_problem(email), policy.lookalike(email)
    if problem is not None or imitated is not None:
        reason = problem or "non-ASCII e-mail address"
        if imitated is not None:
            reason += ", a look-alike of an address in the access file"
        raise Refused(
            f"You are signed in as {email}, which is not an address the dashboard accepts (it holds "
            "characters that look like, or change into, other ones). Ask the administrator.",
            reason,
            given,
        )
    grant = policy.grant_for(email)
    if grant is None:
        raise Refused(
            f"You are signed in as {email}, but this address has no access to the dashboard. Ask the "
            "administrator to add it to the access file with your role and clinics.",
            REFUSED_UNKNOWN,
            given,
        )
    try:
        key = _pseudonym_key(policy) if access.PERMISSIONS[grant.role].pseudonymised else None
        scope = access.scope_for(grant.role, grant.clinics, key)
    except access.AccessFileError as exc:
        logger.error("Pseudonym key problem: %s", exc)
        raise Refused(
            "Your access needs the pseudonym key, which cannot be read. Please tell the administrator.",
            f"pseudonym key: {exc}",
            given,
        ) from exc
    name = grant.name or str(st.user.get("name") or "") or email
    return User(
        email=grant.email,
        name=name,
        role=grant.role,
        clinics=grant.clinics,
        min_cell=policy.min_cell_for(grant.role),
        scope=scope,
    )


def _login_screen() -> None:
    st.title("Botox outcomes")
    st.markdown("This dashboard holds patients' data. **Sign in** with your clinic account to continue.")
    section = auth_section() or {}
    providers = [name for name, value in section.items() if isinstance(value, Mapping) and "client_id" in value]
    if "client_id" in section or not providers:
        if st.button("Log in", key="auth_login", type="primary", icon=":material/login:"):
            st.login()
        return
    for name in providers:
        if st.button(f"Log in with {name}", key=f"auth_login_{name}", type="primary", icon=":material/login:"):
            st.login(name)


def _refusal_screen(refusal: Refused, logout: bool = True) -> Callable[[], None]:
    def screen() -> None:
        st.title("No access")
        st.error(str(refusal), icon=":material/block:")
        if logout and st.button("Log out", key="auth_logout_refused"):
            st.logout()

    return screen


def is_loopback(address: object) -> bool:
    """Whether a server bound to ``address`` is reachable from this computer only.

    Empty or unset (Streamlit then listens on every interface), ``0.0.0.0``, ``::``, a network
    address and any host name but ``localhost`` are not.
    """
    text = str(address or "").strip().strip("[]")
    if text.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def served_address() -> str:
    """The address the server listens on (``server.address``: config.toml, then the environment, then flags)."""
    return str(st.get_option("server.address") or "")


def _exposed_local_mode(address: str) -> Refused:
    where = f"the network address {address}" if address else "every network interface of this computer"
    return Refused(
        "This dashboard runs in local single-user mode: nobody logs in and whoever reaches it sees all data. It is "
        f"served on {where}, so other computers could reach it, and no data are shown. Serve it to this computer "
        'only (server.address = "127.0.0.1", as in .streamlit/config.toml and `make run`), or set up login with an '
        "[auth] section in .streamlit/secrets.toml before serving it to a network (README, Access control).",
        f"local single-user mode served on {address or 'all interfaces'}",
        LOCAL_USER.email,
    )


def _audit_once(flag: str, event: str, user: str, role: str | None, **fields: object) -> None:
    """Write an event once per session and flag (a rerun does not log in again)."""
    if st.session_state.get(LOGGED_KEY) == flag:
        return
    audit_log().record(event, user, role, **fields)
    st.session_state[LOGGED_KEY] = flag


def identify() -> User | Callable[[], None]:
    """The user of this session, or the screen to show instead (login, refusal)."""
    if auth_section() is None:
        address = served_address()
        if is_loopback(address):
            return LOCAL_USER
        refusal = _exposed_local_mode(address)
        _audit_once(f"refused:local:{refusal.reason}", "refused", refusal.email, None, reason=refusal.reason)
        return _refusal_screen(refusal, logout=False)
    if not st.user.get("is_logged_in", False):
        return _login_screen
    try:
        user = _signed_in_user()
    except Refused as refusal:
        _audit_once(
            f"refused:{refusal.email}:{refusal.reason}",
            "refused",
            refusal.email or "(unknown)",
            None,
            reason=refusal.reason,
        )
        return _refusal_screen(refusal)
    return user


def _home(pages: Sequence[st.Page]) -> st.Page:
    """The app's address without a page (``/``): opens the first of ``pages``, keeping the query parameters.

    Streamlit serves the default page at ``/`` only, so a named page that were the default could not be
    opened by its own address (``/patient`` would report "page not found"); every named page therefore
    stays an ordinary page and this hidden one is the default.
    """

    def home() -> None:
        query = {name: st.query_params.get_all(name) for name in st.query_params}
        st.switch_page(pages[0], query_params=query)

    return st.Page(home, title="Botox outcomes", url_path="home", default=True, visibility="hidden")


def navigation(pages: Sequence[st.Page]) -> st.Page:
    """``st.navigation`` over the pages this user may open (each page's ``url_path`` is its access-matrix name).

    Without a permitted user it draws the login or refusal screen and stops the run; the pages stay
    registered (hidden, never run) meanwhile, so that a link to a page shows that screen rather than
    Streamlit's "page not found". A page the user may not open is replaced by a hidden page at the
    same address that says so and writes a ``refused`` audit event (the page's own file never runs).
    """
    who = identify()
    if not isinstance(who, User):
        st.session_state.pop(USER_KEY, None)
        st.navigation([_home(pages), *pages], position="hidden")
        who()
        st.stop()
    user = who
    st.session_state[USER_KEY] = user
    _audit_once(
        f"login:{user.email}",
        "login",
        user.email,
        user.role,
        mode=user.mode,
        clinics=list(user.clinics) if user.clinics != access.ALL_CLINICS else access.ALL_CLINICS,
    )
    permitted = [page for page in pages if access.can_view(user.role, page.url_path)]
    refused = [
        st.Page(_page_refused(name), title="No access", url_path=name, visibility="hidden")
        for name in access.PAGES
        if not access.can_view(user.role, name)
    ]
    page = st.navigation([_home(permitted), *permitted, *refused])
    st.session_state[PAGE_KEY] = page.url_path
    return page


def identity() -> None:
    """The local-mode banner above the page; who is signed in (role, clinics, log out) in the sidebar."""
    user = current_user()
    if user is None:
        return
    if user.mode == "local":
        note = ""
        if setting(ACCESS_FILE_VARIABLE):
            note = " The access file is not used: add an [auth] section to .streamlit/secrets.toml to require login."
        # A coloured line rather than st.warning: warnings above the page are the parameter notices.
        st.markdown(f":orange-background[:material/lock_open: **{LOCAL_MODE_BANNER}.**{note}]")
        return
    who = f"**{user.name}** ({user.email})" if user.name != user.email else f"**{user.email}**"
    lines = [f"Signed in as {who} · {user.role} · {user.clinics_text}"]
    if user.scope.pseudonym_key is not None:
        lines.append("Patient ids are pseudonyms.")
    if user.min_cell is not None:
        lines.append(f"Small-cell suppression: counts below {user.min_cell} are withheld in exports.")
    st.sidebar.caption("  \n".join(lines))
    if st.sidebar.button("Log out", key="auth_logout", icon=":material/logout:"):
        st.logout()


def refuse(reason: str, **fields: object) -> None:
    """Write a ``refused`` audit event for the current user and page, once per session and attempt."""
    user = current_user()
    who, role = (user.email, user.role) if user is not None else ("(nobody)", None)
    fields.setdefault("page", st.session_state.get(PAGE_KEY))
    attempt = json.dumps([who, reason, fields], sort_keys=True, default=str)
    done = st.session_state.setdefault(REFUSALS_KEY, set())
    if attempt in done:  # a rerun of the same refused page is not a second attempt
        return
    audit_log().record("refused", who, role, reason=reason, **fields)
    done.add(attempt)


def _page_refused(name: str) -> Callable[[], None]:
    def screen() -> None:
        user = current_user()
        refuse(f"page not permitted for the {user.role if user else 'unknown'} role", page=name)
        st.title("No access")
        st.error("You do not have access to this page.", icon=":material/block:")

    screen.__name__ = f"no_access_{name}"
    return screen


def require_page(page: str) -> User:
    """Stop the page unless the current user may open it (a second check behind the navigation)."""
    user = current_user()
    if user is None or not access.can_view(user.role, page):
        refuse(f"page not permitted for the {user.role if user else 'unknown'} role", page=page)
        st.error("You do not have access to this page.", icon=":material/block:")
        st.stop()
    return user


# --- exports and audit events ----------------------------------------------------------------------


def enforced_min_cell() -> int | None:
    """The small-cell suppression K the access file enforces on the current user, if any."""
    user = current_user()
    return user.min_cell if user is not None else None


def export_refusal(kind: str, suppressed: bool = False) -> str | None:
    """Why the current user may not download an export of ``kind`` (``None`` when they may)."""
    user = current_user()
    if user is None:
        return "nobody is signed in"
    return access.export_refusal(user.role, kind, user.min_cell, suppressed)


def can_export(kind: str, suppressed: bool = False) -> bool:
    return export_refusal(kind, suppressed) is None


def _view_record() -> dict[str, object]:
    """The view an export comes from: page, filter (query parameters) and analysis parameters."""
    context = current()
    parameters: dict[str, object] = {}
    if context is not None and context.analysis is not None:
        parameters = context.analysis.config.parameters()
        parameters["as_of"] = context.analysis.as_of.date().isoformat()
    query = {name: st.query_params.get_all(name) for name in st.query_params if name not in ANALYSIS_PARAMETERS}
    return {
        "page": st.session_state.get(PAGE_KEY),
        "filter": {name: values[0] if len(values) == 1 else list(values) for name, values in query.items()},
        "parameters": parameters,
    }


def audited(
    data: Callable[[], bytes | str], file_name: str, kind: str, rows: int | None = None, min_cell: int | None = None
) -> Callable[[], bytes | str]:
    """``data`` that writes an ``export`` audit event each time it runs, i.e. when the file is downloaded.

    Who and what are taken now, in the script run: the download itself runs later, outside it. An
    export whose audit event cannot be written fails rather than leave no trace. Without ``rows``, the
    rows are counted in the file produced (``audit.data_rows``: a CSV's data rows, those of the CSV
    files in a ZIP).
    """
    user = current_user()
    who, role = (user.email, user.role) if user is not None else ("(nobody)", None)
    view = _view_record()
    log = audit_log()

    def produce() -> bytes | str:
        content = data()
        counted = rows if rows is not None else audit.data_rows(file_name, content)
        log.record("export", who, role, file=file_name, kind=kind, rows=counted, min_cell=min_cell, **view)
        return content

    return produce


def download_button(
    label: str,
    data: bytes | str | Callable[[], bytes | str],
    *,
    file_name: str,
    kind: str,
    rows: int | None = None,
    suppressed: bool = False,
    container: object = None,
    **kwargs: object,
) -> bool:
    """``st.download_button`` when the current user may export ``kind``, else a note saying why not.

    The file is produced when clicked (deferred) and each download is audited. ``suppressed`` says
    that the data went through ``analytics.privacy.suppression`` (required when suppression is enforced).
    Returns whether the button was shown.
    """
    target = container if container is not None else st
    refusal = export_refusal(kind, suppressed)
    if refusal is not None:
        target.caption(f":material/block: {label}: not available — {refusal}.")
        return False
    produce = data if callable(data) else (lambda: data)
    kwargs.setdefault("on_click", "ignore")
    target.download_button(
        label, audited(produce, file_name, kind, rows, enforced_min_cell()), file_name=file_name, **kwargs
    )
    return True


def table_download(frame: pd.DataFrame, filename: str, key: str, csv: Callable[[pd.DataFrame], bytes]) -> None:
    """The CSV download under a table: patient-level or aggregate by its columns, suppressed when enforced."""
    kind = access.export_kind(frame)
    min_cell = enforced_min_cell()
    suppressed = min_cell is not None and kind == "aggregate" and access.suppressible(frame)

    def content() -> bytes:  # run on click: the suppression auditor does not run on every rerun
        return csv(access.suppressed_table(frame, min_cell) if suppressed and min_cell is not None else frame)

    download_button(
        "Download CSV",
        content,
        file_name=filename,
        kind=kind,
        rows=len(frame),
        suppressed=suppressed,
        mime="text/csv",
        key=key,
    )


def refused_patient(patient_id: object) -> None:
    """Write a ``refused`` audit event for a patient the user may not open, or that does not exist.

    Both are one reason in the log and one message on screen, so nobody learns whether another
    clinic has a patient of that id.
    """
    refuse(REFUSED_PATIENT, patient_id=str(patient_id))


def opened_patient(patient_id: str | None) -> None:
    """Write an ``open_patient`` audit event when this session turns to another patient."""
    if not patient_id or st.session_state.get(OPENED_KEY) == patient_id:
        return
    user = current_user()
    who, role = (user.email, user.role) if user is not None else ("(nobody)", None)
    audit_log().record("open_patient", who, role, patient_id=str(patient_id), page=st.session_state.get(PAGE_KEY))
    st.session_state[OPENED_KEY] = patient_id
