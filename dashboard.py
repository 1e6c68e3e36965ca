"""Entry point: page config, the shared sidebar (data source, parameters) and navigation.

Run with ``make run`` (or ``streamlit run dashboard.py``). Each page lives in ``pages/`` and reads
the shared, cached analysis through ``ui.state.context()``.
"""

import streamlit as st

from ui import state

st.set_page_config(page_title="Botox outcomes", page_icon="🩺", layout="wide")

navigation = st.navigation(
    [
        st.Page("pages/patient.py", title="Patient", icon="🧑‍⚕️", url_path="patient", default=True),
        st.Page("pages/clinic.py", title="Clinic", icon="🏥", url_path="clinic"),
        st.Page("pages/outcomes.py", title="Outcomes", icon="📈", url_path="outcomes"),
        st.Page("pages/data.py", title="Data", icon="🗂️", url_path="data"),
    ]
)
state.sidebar()
navigation.run()
