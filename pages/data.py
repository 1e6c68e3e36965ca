"""Data page (placeholder until its issue is built)."""

import streamlit as st

from ui import state

ctx = state.context()
st.title("Data")
st.dataframe(ctx.analysis.cohort_cycles, hide_index=True)
