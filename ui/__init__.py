"""Streamlit glue shared by the pages: the app context, data source and parameters, login and roles, rendering.

Everything here is presentation and caching; the clinical definitions live in ``analytics``.
``context`` is the bottom layer (what pages read); ``state`` and ``auth`` build on it and never
import each other; ``render`` draws charts and tables for the pages.
"""

import streamlit.delta_generator as _delta_generator

# Streamlit checks, at the first element a process draws, whether it runs in a Python REPL to print a "use
# streamlit run" warning. The check (inspect.stack()) maps every loaded module to its file: a quarter of a second
# with pandas, pyarrow and plotly loaded, spent on the first page anyone opens after a restart. The dashboard is
# always run by ``streamlit run`` (or Streamlit's AppTest), so the check is marked done. A private name of
# Streamlit: should it change, this line does nothing and the check costs its quarter second again.
_delta_generator._use_warning_has_been_displayed = True
