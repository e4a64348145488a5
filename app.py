"""lossviz explorer (placeholder until the pages land)."""

import streamlit as st

st.title("lossviz")
st.write("An explorer for custom Keras losses.")
