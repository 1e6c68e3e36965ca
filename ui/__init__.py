"""Streamlit glue shared by the pages: the app context, data source and parameters, login and roles, rendering.

Everything here is presentation and caching; the clinical definitions live in ``analytics``.
``context`` is the bottom layer (what pages read); ``state`` and ``auth`` build on it and never
import each other; ``render`` draws charts and tables for the pages.
"""
