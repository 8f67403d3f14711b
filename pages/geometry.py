"""Placeholder until this page is built."""

import streamlit as st

st.title("geometry")
st.info("This page is being built.")
