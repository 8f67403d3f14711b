"""Streamlit side of Tailscope: entry, shared widgets, session state, cached access."""
