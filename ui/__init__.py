"""Streamlit glue shared by the pages: data source, parameters, cached analysis, theme.

Everything here is presentation and caching; the clinical definitions live in ``analytics``.
"""
