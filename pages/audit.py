"""Audit page (admins): who logged in or was refused, who opened which patient, who exported what, and when.

It reads the append-only log through ``analytics.privacy.audit.read_events``; the filters only narrow what is
shown, newest first. The log holds no diary values, so neither does this page. Above the events it
says whether the log's hash chain and head file verify (``analytics.privacy.audit.verify``), or the first
broken line. ``render()`` draws it; importing the module draws nothing.
"""

from __future__ import annotations

import streamlit as st

from analytics.privacy import audit
from pages import run_dashboard_instead
from ui import auth
from ui import render as ui_render


def render() -> None:
    """The Audit page: the log, filtered by event, user and period, newest first."""
    auth.require_page("audit")
    log = auth.audit_log()
    events, unreadable = audit.read_events(log.path)
    check = audit.verify(log.path)

    st.title("Audit trail")
    st.caption(f"Log file: {log.path} · {len(events):,} events · append-only, one JSON object per line (UTC times)")
    if check.ok:
        st.success(
            f"Hash chain verified: {check.lines:,} lines, none changed, inserted or deleted, and the log ends "
            "where its head file says.",
            icon=":material/verified:",
        )
    else:
        st.error(
            f"The hash chain does not verify at line {check.broken_line:,}: {check.problem}. The log may "
            f"have been tampered with. Check it with `python -m analytics audit-verify --log {log.path}`.",
            icon=":material/gpp_bad:",
        )
    if unreadable:
        st.warning(
            f"{unreadable:,} lines of the log could not be read (e.g. a line cut off by a crash); they are "
            "not shown. The file itself is never rewritten.",
            icon=":material/warning:",
        )
    if events.empty:
        st.info("No events yet.")
        st.stop()

    left, middle, right = st.columns([2, 2, 3])
    kinds = left.multiselect("Events", list(audit.EVENT_FIELDS), default=list(audit.EVENT_FIELDS), key="audit_events")
    users = middle.multiselect(
        "Users", sorted(events["user"].dropna().unique()), key="audit_users", placeholder="all users"
    )
    first, last = events["ts"].min().date(), events["ts"].max().date()
    period = right.date_input(
        "Period (UTC)", value=(first, last), min_value=first, max_value=last, key="audit_period", format="YYYY-MM-DD"
    )

    shown = events[events["event"].isin(kinds)]
    if users:
        shown = shown[shown["user"].isin(users)]
    if isinstance(period, tuple) and len(period) == 2:
        day = shown["ts"].dt.date
        shown = shown[(day >= period[0]) & (day <= period[1])]
    shown = shown.sort_values("ts", ascending=False, kind="stable")
    shown = shown.loc[:, shown.notna().any() | shown.columns.isin(audit.COMMON_FIELDS)]

    counts = shown["event"].value_counts()
    st.markdown(" · ".join(f"**{counts.get(kind, 0):,}** {kind}" for kind in kinds) + f" (of {len(events):,} events)")
    ui_render.table(
        shown.assign(ts=shown["ts"].dt.strftime("%Y-%m-%d %H:%M:%S")).reset_index(drop=True),
        key="audit_log",
        filename="audit_log.csv",
        caption="Newest first. export: file, kind, rows, the view's filter and the analysis parameters; open_patient: "
        "the patient id as the user saw it.",
        height=min(600, 38 + 35 * max(len(shown), 1)),
        column_config={"ts": st.column_config.TextColumn("time (UTC)", width=150)},
        fit=("user", "clinics", "reason", "file", "filter", "parameters"),
    )


if __name__ == "__main__":  # Streamlit ran this file on its own (legacy pages/ mode): see pages/__init__.py
    run_dashboard_instead()
