"""Train: choose a model, a loss, a sampler and a two-stage fix, queue runs, watch them learn."""

import streamlit as st

from app import label_forms, state
from app.live_runs import live_panel, watch
from app.multilabel_train_view import multilabel_train_form
from app.data_forms import current_data_config, data_kind_words, data_label, load_dataset
from app.services import queue_run
from app.starting_points import remember_made
from app.train_forms import (
    TRAIN_EXPLAINER, budget_line, build_run_config, evaluation_form, plugin_picker, resampling_panel,
    standard_fixes_button, train_settings_form, training_fixes_form,
)
from app.widgets import loss_schedule_form
from core.data import DataError
from core.jobs import baseline_configs
from core.methods import LOSSES, RESAMPLERS, SAMPLERS
from core.models import MODELS
from core.text import md
from core.train import compatible_models, run_warnings

st.title("🏋️ Train")

data = current_data_config(st.session_state.get(state.DATA_CONFIG))
if data.multilabel:  # several findings per case: its own losses and samplers
    multilabel_train_form(data)
    live_panel()
    st.stop()
try:
    dataset = load_dataset(data)
except (DataError, ValueError) as exc:
    st.error(f"The chosen dataset cannot be loaded: {md(exc)}")
    st.page_link("../pages/data.py", label="Choose data", icon="📦")
    st.stop()
modality = dataset.modality
c1, c2 = st.columns([4, 1])
c1.info(f"**Data:** {md(data_label(data))}: {dataset.num_classes} classes, {data_kind_words(dataset, data)}"
        + ("" if state.DATA_CONFIG in st.session_state else " (the default; choose your own on the Data page)"))
c2.page_link("../pages/data.py", label="Change data", icon="📦")

# --- the form -----------------------------------------------------------------------------
with st.expander("What a loss, a sampler and a two-stage fix do, in plain words"):
    st.markdown(TRAIN_EXPLAINER)
form = st.container()  # the whole width: beside the explainer, a 1280-px laptop cut the choices' names
with form:
    a, b = st.columns(2)
    with a:
        model = plugin_picker("Model", MODELS, "train.model", options=compatible_models(modality, dataset.ordinal),
                              default="small_cnn" if modality == "image" else "mlp",
                              help="Only models that fit this data's kind are listed. The scikit-learn "
                                   "baselines fit their own class-weighted objective (no loss or sampler).")
    with b:
        loss = plugin_picker("Loss", LOSSES, "train.loss", default="ce")
        loss.update(loss_schedule_form("train"))
    a, b = st.columns(2)
    with a:
        sampler = plugin_picker("Sampler", SAMPLERS, "train.sampler", default="instance")
    with b:
        resampler = plugin_picker("Resampler (tables only)", RESAMPLERS, "train.resampler", optional=True,
                                  help="imbalanced-learn resampling of the training rows before training. "
                                       "Tables only: for images, use a sampler.")
    train_counts = None
    if resampler and modality == "tabular":
        train_counts = resampling_panel(data, resampler, dataset.class_names,
                                        seed=st.session_state.get("train.settings.seed", 0))
    extras = training_fixes_form("train")  # stage 2, robust training, sharpness-aware steps
    with st.expander("Wrong or hidden labels, and methods for them", expanded=bool(data.label_noise or data.unlabeled)):
        labels = label_forms.label_options_form(data, "train.labels")
        stages = label_forms.extra_stages_form("train")
    st.markdown("**Training**")
    settings = train_settings_form("train.settings")
    st.markdown("**How many trainings answer the question**")
    evaluation = evaluation_form("train.evaluation", settings["seed"])
    name = st.text_input("Run name", key="train.name", placeholder="automatic: data · model · method")

raw = {"name": name.strip(), "data": {**data.model_dump(mode="json"), **labels}, "model": model, "loss": loss,
       "sampler": sampler, "resampler": resampler, "train": settings, "evaluation": evaluation, **extras, **stages}
config, error = build_run_config(raw, dataset)
if error:
    st.error(f"**This combination cannot run:** {md(error)}")
else:
    for note in run_warnings(config, dataset):
        st.warning(f"Note: {note}.", icon=":material/info:")
    st.caption(budget_line(config, dataset, train_counts))


start, fixes, extra = st.columns([1, 1.2, 2])
notice = st.empty()  # the queued notice's own slot, on every run: the live panel below keeps its place
with fixes:
    standard_fixes_button(config, modality)
if start.button("Start training", type="primary", key="train.start", disabled=config is None):
    watch(made := queue_run(config))
    remember_made(made)  # Results and Compare open it next
    notice.success(f"Queued **{md(config.name)}**. It starts as soon as the worker is free; follow it below.")
if modality == "tabular" and extra.button(
        "Add the baselines", key="train.baselines", disabled=config is None,
        help="Also queue class-weighted logistic regression, a balanced random forest and class-weighted gradient "
             "boosting on the same data, folds and seeds: the classic answers a deep fix has to beat."):
    for baseline in baseline_configs(config):
        watch(queue_run(baseline))
    notice.success("Queued the three baselines; compare them with your runs on the Compare page when they finish.")

# --- live panel ---------------------------------------------------------------------------
live_panel()
