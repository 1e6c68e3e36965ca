"""Entry point: page config, the shared sidebar (data source, parameters) and navigation.

Run with ``make run`` (or ``streamlit run dashboard.py``). Each page lives in ``pages/`` and reads
the shared, cached analysis through ``ui.state.context()``. An unexpected error on a page is shown
as a short message with a reference while the traceback goes to the server log; under pytest it is
raised again after the message, so that a test never passes over a broken page.
"""

import os
from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import RerunException, StopException

from ui import auth, state

# Page files by absolute path, from this file and not from the working directory. Icons are Material
# Symbols (a font Streamlit ships), not emoji, which a browser without an emoji font shows as boxes.
PAGES = Path(__file__).resolve().parent / "pages"

st.set_page_config(page_title="Botox outcomes", page_icon=":material/stethoscope:", layout="wide")

# The pages this user's role may open (login, or refusal, first): ui/auth.py.
navigation = auth.navigation(
    [
        st.Page(PAGES / "patient.py", title="Patient", icon=":material/person:", url_path="patient", default=True),
        st.Page(PAGES / "clinic.py", title="Clinic", icon=":material/local_hospital:", url_path="clinic"),
        st.Page(PAGES / "outcomes.py", title="Outcomes", icon=":material/monitoring:", url_path="outcomes"),
        st.Page(PAGES / "data.py", title="Data", icon=":material/table_view:", url_path="data"),
    ]
)
try:
    auth.identity()
    state.banner(state.sidebar())
    navigation.run()
except (StopException, RerunException):
    # st.stop(), st.rerun() and st.switch_page() steer the script with these; they are not errors.
    raise
except Exception:
    state.report_unexpected_error()
    if "PYTEST_CURRENT_TEST" in os.environ:
        raise
