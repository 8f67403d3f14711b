"""Placeholder until this page is built."""

import streamlit as st

st.title("calibration")
st.info("This page is being built.")
