"""The explorer's pages, one thin script per loss family plus the check page.

Not ``pages/``: Streamlit serves a folder of that name beside ``app.py`` in
its old multipage mode until ``st.navigation`` has run once in the server, so
the first visitor of a fresh server would get a page without the shared
sidebar.
"""
