"""The dashboard's pages: one module per page, each defining ``render()``; importing one shows nothing.

``dashboard.py`` registers each as ``st.Page(module.render, url_path=<the module's name>)``. Because this
folder is named ``pages/`` and sits beside the entry point, Streamlit starts every server process in its
legacy multipage mode, which lasts until the first ``st.navigation`` call: on a fresh server a request
for ``/clinic`` executes ``pages/clinic.py`` on its own, as ``__main__``, without ``dashboard.py`` (so
without login, sidebar or data). Each page file therefore ends with
``if __name__ == "__main__": run_dashboard_instead()``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

FOLDER = Path(__file__).resolve().parent
HANDED_OVER = "page_file_handed_over"
"""Set while a request goes from a page file to ``dashboard.py``, which clears it."""
NOTE = "This file is a page of the Botox outcomes dashboard: start it with `streamlit run dashboard.py`."


def _nothing() -> None:
    """Stands in for every page while the request is handed over: nothing of it ever runs."""


def run_dashboard_instead() -> None:
    """Show nothing of the page, and have Streamlit run this request again through ``dashboard.py``.

    ``st.navigation`` ends the legacy mode for the whole server process (Streamlit ignores ``pages/``
    from then on). It lists a placeholder under each page file's name, so the requested address
    stays the current page, then ``st.rerun`` runs the entry point, which identifies the user and
    draws the sidebar and the page. Should the file run alone again before ``dashboard.py`` ran
    (``streamlit run pages/clinic.py``), a note is shown instead of rerunning for ever.
    """
    if st.session_state.get(HANDED_OVER):
        st.info(NOTE)
        return
    st.session_state[HANDED_OVER] = True
    names = sorted(path.stem for path in FOLDER.glob("*.py") if path.stem != "__init__")
    placeholders = [st.Page(_nothing, title=name, url_path=name) for name in names]
    st.navigation(
        [st.Page(_nothing, title="Botox outcomes", url_path="start", default=True), *placeholders], position="hidden"
    )
    st.rerun()
