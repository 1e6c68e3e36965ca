"""Entry point: page config, the pages and their navigation, the shared sidebar.

Run with ``make run`` (or ``streamlit run dashboard.py``). Each page is the ``render()`` function of a
module in ``pages/``; ``ui.auth.navigation`` offers the pages the user's role may open, and the
sidebar (``ui.state``) loads and analyses the chosen data into the context the pages read
(``ui.context``). An unexpected error on a page is shown as a short message with a reference while
the traceback goes to the server log; under pytest it is raised again after the message, so that a
test never passes over a broken page. (``st.stop()``, ``st.rerun()`` and ``st.switch_page()`` steer the
script with exceptions that are not an ``Exception``, so they pass through.) Sessions' scripts take turns
(``ui.turns``): many users clicking at once are served in order rather than all slowly together.
"""

import os

import streamlit as st

from pages import HANDED_OVER, audit, clinic, data, outcomes, patient
from ui import auth, state, turns
from ui import render as ui_render

st.set_page_config(page_title="Botox outcomes", page_icon=":material/stethoscope:", layout="wide")
ui_render.page_style()  # phone-sized screens: phone chart layouts, no chart toolbar
st.session_state.pop(HANDED_OVER, None)  # a page file run on its own sent this request here: pages/__init__.py

# Each url_path is the page's name in the access matrix (analytics.privacy.access) and its module's name.
# Icons are Material Symbols (a font Streamlit ships), not emoji, which a browser without an emoji font
# shows as boxes.
DATA_PAGE = st.Page(data.render, title="Data", icon=":material/table_view:", url_path="data")
page = auth.navigation(  # only the pages this user's role may open (login, or refusal, first)
    [
        st.Page(patient.render, title="Patient", icon=":material/person:", url_path="patient"),
        st.Page(clinic.render, title="Clinic", icon=":material/local_hospital:", url_path="clinic"),
        st.Page(outcomes.render, title="Outcomes", icon=":material/monitoring:", url_path="outcomes"),
        DATA_PAGE,
        st.Page(audit.render, title="Audit", icon=":material/policy:", url_path="audit"),
    ]
)
with turns.turn():  # sessions' pages take turns on the one Python core (ui/turns.py)
    try:
        auth.identity()
        ctx = state.sidebar(DATA_PAGE)
        state.banner(ctx)
        page.run()
        state.finish_in_background(ctx)  # the other pages' first views, while this one is read
    except Exception:
        state.report_unexpected_error()
        if "PYTEST_CURRENT_TEST" in os.environ:
            raise
