"""Runs: every run with its status and key numbers; open, compare, rename, re-run, download, delete."""

import pandas as pd
import streamlit as st

from app import state
from app.services import get_store
from app.widgets import delete_run, empty_state, flash, relative_time, rerun_run, run_method, status_badge
from core.analysis import comparable, describe_data
from core.config import RunConfig
from core.text import md

SHOWN_IDS = "runs.shown_ids"  # the table's run ids as last drawn


# Callbacks: they run before the page (and the sidebar's run picker) is drawn again, the only
# moment the picker's selection may be changed.
def select_run(run_id: str) -> None:
    st.session_state[state.RUN_ID] = run_id



st.title("🗂️ Runs")
st.caption("Every training run, newest first, with its balanced accuracy once it has finished (more columns: the "
           "table's Show/hide columns menu). Tick one run to open, rename, re-run, download or delete it; tick "
           "two or more trained on the same data to compare them.")

store = get_store()
runs = store.list_runs()
if not runs:
    empty_state("No runs yet: train one on the Train page, or start a demo run.")
    st.stop()

experiments = {e.id: e.name for e in store.list_experiments()}
rows = []
for r in runs:
    s = r.summary or {}
    score = s.get("balanced_accuracy")
    rows.append({"name": r.name, "status": status_badge(r.status),  # the score, or where the run stands
                 "result": f"{score:.3f}" if r.status == "done" and score is not None else status_badge(r.status),
                 "experiment": experiments.get(r.experiment, ""), "data": describe_data(r.config),
                 "method": run_method(r), "accuracy": s.get("accuracy"),
                 "macro F1": s.get("f1_macro"), "G-mean": s.get("gmean"), "created": relative_time(r.created),
                 "id": r.id})
table = pd.DataFrame(rows)
# Two columns in view, so nothing scrolls sideways beside the sidebar at 1024 px (the other
# columns wait in the table's "Show/hide columns" menu): the run's name, and its balanced
# accuracy or, until it has one, its status; the picked run's card below says the rest.
event = st.dataframe(
    table, hide_index=True, width="stretch", on_select="rerun", selection_mode="multi-row", key="runs.table",
    column_order=["name", "result", "status", "method", "data", "created", "experiment",
                  "accuracy", "macro F1", "G-mean", "id"],
    column_config={
        "result": st.column_config.TextColumn(
            "balanced accuracy", alignment="right",
            help="Balanced accuracy on the test split (each class counted the same, however rare) once the run has "
                 "finished; until then where it stands: queued, running, failed or cancelled."),
        **{c: {**st.column_config.NumberColumn(format="%.3f"), "hidden": True} for c in
           ("accuracy", "macro F1", "G-mean")},
        "data": {**st.column_config.TextColumn(help="The data set and the imbalance its training split was given."),
                 "hidden": True},
        "experiment": {**st.column_config.TextColumn(help="Runs of one configuration repeated over folds or "
                                                          "seeds; compare experiments on the Compare page."),
                       "hidden": True},
        "id": {**st.column_config.TextColumn(help="The run's folder name in the store; `tailscope show <id>`."),
               "hidden": True},
        **{c: {"hidden": True} for c in ("status", "method", "created")},
    },
)
# Ticked rows are positions in the table as it was drawn when they were ticked; map them
# through that table's ids, so a run queued or deleted meanwhile never shifts the choice.
by_id = {r.id: r for r in runs}
shown_ids = st.session_state.get(SHOWN_IDS, table["id"].tolist())
ticked = [shown_ids[i] for i in (event.selection.rows if event and event.selection else []) if i < len(shown_ids)]
st.session_state[SHOWN_IDS] = table["id"].tolist()
chosen = [by_id[i] for i in ticked if i in by_id]
if not chosen:
    sidebar_run = by_id.get(st.session_state.get(state.RUN_ID))
    if sidebar_run is None:
        st.info("Tick a run in the table to act on it.")
        st.stop()
    chosen = [sidebar_run]
    st.caption("Showing the run picked in the sidebar. Tick rows in the table to act on others, or tick two or "
               "more to compare them.")

if len(chosen) > 1:
    finished = [r for r in chosen if r.status == "done"]
    ok, reason = comparable({r.name: r.config for r in finished}) if len(finished) > 1 else (False, "")
    if len(finished) < 2:
        st.info("Only finished runs can be compared: tick at least two with status done.")
    elif not ok:
        st.warning(f"These runs cannot be compared. {md(reason)}")
    elif st.button(f"Compare these {len(finished)} runs", type="primary", key="runs.compare",
                   icon=":material/balance:"):
        st.session_state[state.COMPARE_RUN_IDS] = [r.id for r in finished]
        st.switch_page("../pages/compare.py")
    st.stop()

record = chosen[0]
with st.container(border=True):
    st.subheader(md(record.name))
    st.caption(f"{status_badge(record.status)} · {md(describe_data(record.config))} · {run_method(record)} · id `{record.id}`")
    if record.error:
        (st.error if record.status == "failed" else st.warning)(md(record.error))
    c1, c2, c3, c4 = st.columns(4, vertical_alignment="bottom")
    if c1.button("Show its results", type="primary", key="runs.open", disabled=record.status != "done",
                 icon=":material/bar_chart:", help="Open this run on the Results page.",
                 on_click=select_run, args=(record.id,)):
        st.switch_page("../pages/results.py")
    rerun_help = ("A post-hoc version of another run: re-running retrains the original set-up and applies the "
                  "same post-hoc fix again." if record.config.get("posthoc") else
                  "Queue a new run with exactly these settings.")
    c2.button("Re-run with the same config", key="runs.rerun", icon=":material/replay:", help=rerun_help,
              on_click=rerun_run, args=(record,))
    c3.download_button("Download config (JSON)", RunConfig.model_validate(record.config).to_json(),
                       file_name=f"{record.id}.json", mime="application/json", key="runs.download",
                       icon=":material/download:", on_click="ignore",
                       help="Train it again later with `tailscope train <file>`.")
    if record.status in ("queued", "running"):
        if c4.button("Cancel", key="runs.cancel", icon=":material/stop:"):
            store.request_cancel(record.id)
            st.rerun()

    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    new_name = c1.text_input("Name", value=record.name, key=f"runs.name.{record.id}")
    if c2.button("Rename", key="runs.rename", disabled=new_name.strip() in ("", record.name)):
        store.rename(record.id, new_name)
        flash(f"Renamed {md(record.name)} to {md(new_name.strip())}.")
        st.rerun()

    if record.status not in ("queued", "running"):
        c1, c2 = st.columns([3, 1], vertical_alignment="center")
        # the run's name is the card's title; a label is read out as written, so it holds no escaped text
        confirm = c1.checkbox("Yes, delete this run and its files for good", key=f"runs.confirm.{record.id}")
        c2.button("Delete", key="runs.delete", disabled=not confirm, icon=":material/delete:",
                  on_click=delete_run, args=(record,))
