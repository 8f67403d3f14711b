"""Train: choose a model, a loss, a sampler and a two-stage fix, queue runs, watch them learn."""

import streamlit as st

from app import forms, state
from app.services import get_store, queue_run
from app.widgets import explain, status_badge
from core.data import DataError
from core.methods import LOSSES, RESAMPLERS, SAMPLERS
from core.models import MODELS
from core.store import RunNotFound
from core.train import STAGE2, compatible_models
from core.viz import recall_heatmap_figure, training_curves_figure

st.title("🏋️ Train")

data = forms.current_data_config(st.session_state.get(state.DATA_CONFIG))
try:
    dataset = forms.load_dataset(data)
except (DataError, ValueError) as exc:
    st.error(f"The chosen dataset cannot be loaded: {exc}")
    st.page_link("../pages/data.py", label="Choose data", icon="📦")
    st.stop()
modality = dataset.modality
c1, c2 = st.columns([4, 1])
c1.info(f"**Data:** {forms.data_label(data)}: {dataset.num_classes} classes, {modality} data"
        + ("" if state.DATA_CONFIG in st.session_state else " (the default; choose your own on the Data page)"))
c2.page_link("../pages/data.py", label="Change data", icon="📦")

# --- the form -----------------------------------------------------------------------------
form, side = st.columns([3, 2], gap="large")
with form:
    a, b = st.columns(2)
    with a:
        model = forms.plugin_picker("Model", MODELS, "train.model", options=compatible_models(modality),
                                    default="small_cnn" if modality == "image" else "mlp",
                                    help="Only models that fit this data's kind are listed.")
    with b:
        loss = forms.plugin_picker("Loss", LOSSES, "train.loss", default="ce")
        if st.checkbox("Deferred re-weighting (DRW)", key="train.drw",
                       help="Train with the plain loss first, then weight classes by their effective number "
                            "of samples from the chosen epoch on (Cao et al., NeurIPS 2019)."):
            loss["drw_epoch"] = int(st.number_input("Re-weight from epoch", 0, 10_000, 16, key="train.drw_epoch",
                                                    help="Must be below the number of epochs; the paper uses 80 %."))
    a, b = st.columns(2)
    with a:
        sampler = forms.plugin_picker("Sampler", SAMPLERS, "train.sampler", default="instance")
    with b:
        resampler = forms.plugin_picker("Resampler (tables only)", RESAMPLERS, "train.resampler", optional=True,
                                        help="imbalanced-learn resampling of the training rows before training. "
                                             "Tables only: for images, use a sampler.")
    if resampler and modality == "tabular":
        forms.resampling_panel(data, resampler, dataset.class_names, seed=st.session_state.get("train.settings.seed", 0))
    stage2 = forms.plugin_picker("Two-stage fix (after training)", STAGE2, "train.stage2", optional=True)
    st.markdown("**Training**")
    settings = forms.train_settings_form("train.settings")
    name = st.text_input("Run name", key="train.name", placeholder="automatic: data · model · method")
with side:
    with st.container(border=True):
        st.markdown(forms.TRAIN_EXPLAINER)

raw = {"name": name.strip(), "data": data.model_dump(mode="json"), "model": model, "loss": loss, "sampler": sampler,
       "resampler": resampler, "stage2": stage2, "train": settings}
config, error = forms.build_run_config(raw, dataset)
if error:
    st.error(f"**This combination cannot run:** {error}")
if st.button("Start training", type="primary", key="train.start", disabled=config is None):
    run_id = queue_run(config)
    st.session_state.setdefault(state.WATCH_RUN_IDS, []).append(run_id)
    st.success(f"Queued **{config.name}**. It starts as soon as the worker is free; follow it below.")

# --- live panel ---------------------------------------------------------------------------
store = get_store()


def _records():
    records = []
    for run_id in reversed(st.session_state.get(state.WATCH_RUN_IDS, [])):
        try:
            records.append(store.get(run_id))
        except RunNotFound:
            continue
    return records


def _open_results(run_id: str) -> None:
    st.session_state[state.RUN_ID] = run_id


def _charts(record) -> None:
    history = store.history(record.id)
    info = store.metrics(record.id).get("dataset")
    if not history or not info:
        st.caption("Curves appear after the first epoch.")
        return
    st.plotly_chart(training_curves_figure(history), width="stretch", key=f"train.curves.{record.id}")
    explain("Loss should fall and accuracy rise. When balanced accuracy stays well below accuracy, the rare "
            "classes are being missed. A shaded band marks the epochs of a two-stage fix.")
    st.plotly_chart(recall_heatmap_figure(history, info["class_names"], info["counts_train"], info["groups"]),
                    width="stretch", key=f"train.recall.{record.id}")
    explain("Recall of each class (the share of its validation samples the model finds) at every epoch: common "
            "classes at the top, rare ones at the bottom; label colours mark head (blue), medium (orange) and "
            "tail (red) classes. Bright is good; a dark row is a class the model is ignoring.")


def _run_card(record) -> None:
    with st.container(border=True):
        top, button = st.columns([5, 1])
        method = "" if record.method in record.name else f" · {record.method}"
        top.markdown(f"{status_badge(record.status)} **{record.name}**{method}")
        if record.status in ("queued", "running"):
            if button.button("Cancel", key=f"train.cancel.{record.id}"):
                store.request_cancel(record.id)
                record = store.get(record.id)
        if record.status == "queued":
            st.caption("Waiting for the worker to pick it up…")
        elif record.status == "running":
            progress = record.progress or {}
            text = "cancelling…" if store.cancel_requested(record.id) else forms.progress_text(progress)
            st.progress(min(max(float(progress.get("fraction", 0.0)), 0.0), 1.0), text=text)
            _charts(record)
        elif record.status == "done":
            s = record.summary or {}
            st.success(f"Finished: balanced accuracy {s.get('balanced_accuracy', float('nan')):.3f}, "
                       f"accuracy {s.get('accuracy', float('nan')):.3f}.")
            if st.button("📊 Open its results", key=f"train.open.{record.id}", on_click=_open_results,
                         args=(record.id,)):
                st.switch_page("../pages/results.py")
            with st.expander("Training curves and per-class recall"):
                _charts(record)
        else:
            (st.error if record.status == "failed" else st.warning)(record.error or record.status)


records = _records()
active = any(r.status in ("queued", "running") for r in records)


@st.fragment(run_every=1.0 if active else None)
def live_panel() -> None:
    current = _records()
    if not current:
        return
    st.subheader("Your runs")
    for record in current:
        _run_card(record)
    if active and not any(r.status in ("queued", "running") for r in current):
        st.rerun()  # all finished: one full rerun refreshes the sidebar and stops the polling


live_panel()
