"""Runs: every run with its status and key numbers; rename, re-run, download, delete."""

import pandas as pd
import streamlit as st

from app import state
from app.services import get_store, queue_run
from app.widgets import empty_state, flash, relative_time, status_badge
from core.config import RunConfig

st.title("🗂️ Runs")
st.caption("Every training run, newest first. Select a row to rename it, re-run it with the same "
           "settings, download its config or delete it.")

store = get_store()
runs = store.list_runs()
if not runs:
    empty_state("No runs yet: train one on the Train page, or start a demo run.")
    st.stop()

rows = []
for r in runs:
    s = r.summary or {}
    rows.append({"status": status_badge(r.status), "name": r.name, "dataset": r.dataset, "method": r.method,
                 "accuracy": s.get("accuracy"), "balanced accuracy": s.get("balanced_accuracy"),
                 "macro F1": s.get("f1_macro"), "G-mean": s.get("gmean"), "created": relative_time(r.created),
                 "id": r.id})
table = pd.DataFrame(rows)
event = st.dataframe(
    table, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row", key="runs.table",
    column_config={c: st.column_config.NumberColumn(format="%.3f") for c in
                   ("accuracy", "balanced accuracy", "macro F1", "G-mean")},
)
chosen = event.selection.rows if event and event.selection else []
if not chosen:
    st.info("Select a run in the table to act on it.")
    st.stop()

record = runs[chosen[0]]
st.subheader(record.name)
if record.error:
    (st.error if record.status == "failed" else st.warning)(record.error)
c1, c2, c3, c4 = st.columns(4)
with c1:
    new_name = st.text_input("New name", value=record.name, key=f"runs.name.{record.id}")
    if st.button("Rename", key="runs.rename", disabled=new_name.strip() in ("", record.name)):
        store.rename(record.id, new_name)
        flash(f"Renamed to {new_name.strip()}.")
        st.rerun()
with c2:
    st.write("")
    if st.button("Re-run with the same config", key="runs.rerun"):
        config = RunConfig.model_validate({**record.config, "name": f"{record.name} (re-run)"})
        new_id = queue_run(config)
        st.session_state[state.RUN_ID] = new_id
        st.session_state.setdefault(state.WATCH_RUN_IDS, []).append(new_id)
        flash("Queued a re-run; follow it on the Train page.")
        st.rerun()
with c3:
    st.write("")
    st.download_button("Download config (JSON)", RunConfig.model_validate(record.config).to_json(),
                       file_name=f"{record.id}.json", mime="application/json", key="runs.download")
with c4:
    st.write("")
    if record.status in ("queued", "running"):
        if st.button("Cancel", key="runs.cancel"):
            store.request_cancel(record.id)
            st.rerun()
    else:
        confirm = st.checkbox("Yes, delete it", key=f"runs.confirm.{record.id}")
        if st.button("Delete", key="runs.delete", disabled=not confirm, type="primary"):
            store.delete(record.id)
            if st.session_state.get(state.RUN_ID) == record.id:
                st.session_state.pop(state.RUN_ID)
            flash(f"Deleted {record.name}.")
            st.rerun()
