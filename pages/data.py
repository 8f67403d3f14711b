"""Data: choose or upload a dataset, check an uploaded table's columns and gaps, make the
training split long-tailed, save it for training."""

import streamlit as st

from app import data_forms, data_offers, label_forms, made_rows_view, multilabel_data_view, state, text_view
from app.widgets import explain, starting_value
from core.config import DataConfig
from core.data import (
    CLASS_ORDERS, UPLOAD_PREFIX, DataError, class_order, dataset_preview, describe_profile, imbalance_preview,
    order_classes,
)
from core.text import md
from core.viz import class_counts_figure, image_grid

st.title("📦 Data")
st.caption("Pick the data, then decide how unequal the classes should be in the training split. "
           "Validation and test data keep the sizes they came with, so every score measures what the "
           "imbalance did to training.")

saved = data_forms.current_data_config(st.session_state.get(state.DATA_CONFIG))

# --- source -------------------------------------------------------------------------------
kinds = ["Built-in dataset", "Upload a file"]
kind = st.radio("Data source", kinds, horizontal=True,
                key=starting_value("data.kind", kinds[1] if saved.source.startswith(UPLOAD_PREFIX) else kinds[0]))
params, label_column, roles, missing = {}, None, {}, "refuse"
if kind == kinds[0]:
    source, params = data_forms.builtin_form(saved)
    multilabel_data_view.builtin_section(source, params, saved)  # several labels per case: its own form
else:
    source, label_column, roles, missing = data_forms.upload_form(saved)
    layout = multilabel_data_view.label_layout(source, label_column, saved)  # several labels per case?
    if layout is not None:
        multilabel_data_view.multilabel_section(source, layout, label_column, roles, missing, saved)

merge = data_offers.merge_choice(source, saved)
try:
    dataset = data_offers.load_with_label_offer(DataConfig(source=source, params=params, label_column=label_column,
                                                           column_roles=roles, missing=missing, merge_labels=merge),
                                                data_forms.load_dataset)
except (DataError, ValueError) as exc:
    st.error(md(exc))
    st.stop()
ordinal = data_offers.ordinal_choice(dataset, saved)
dataset = order_classes(dataset, ordinal) if ordinal else dataset

# --- preview ------------------------------------------------------------------------------
with st.expander(f"Preview: {len(dataset.y):,} samples, {dataset.num_classes} classes, {dataset.modality}"
                 + (", with its own test split" if dataset.y_test is not None else ""), expanded=True):
    if dataset.modality == "image":
        st.plotly_chart(image_grid(dataset.x, dataset.y, dataset.class_names, per_class=8), width="content")
        explain("A few examples of every class, one row per class.")
    else:
        frame = data_forms.table_preview(source) if data_forms.is_table_upload(source) else dataset_preview(dataset)
        st.dataframe(frame, hide_index=True, width="stretch", height=240)
        explain("The first rows of the table as written; each row is one sample, the label column is what the model "
                "learns to predict.")

text = text_view.text_data_panel(dataset, saved)  # free text: lengths, telling words, the encoder

# --- imbalance ----------------------------------------------------------------------------
st.subheader("Make it imbalanced")
k = dataset.num_classes
im = saved.imbalance
c1, c2, c3 = st.columns([2, 2, 2])
profiles = ["none", "exp", "step", "linear"]
# Defaults go into the session, not the widgets: a new upload and "Use my last profile" set these keys.
for key, default in (("data.profile", im.profile), ("data.ratio", min(float(im.ratio), 200.0)), ("data.mu", float(im.mu))):
    st.session_state.setdefault(key, default)
profile = c1.radio("Profile", profiles, horizontal=True, key="data.profile",
                   format_func=data_forms.PROFILE_WORDS.get,
                   help="none keeps the class sizes the data has; the others make the training split rarer "
                        "from the most common (head) to the rarest (tail) class.")
data_forms.offer_last_profile(c1)
ratio, mu, choice, custom = im.ratio, im.mu, "as is", []
if profile != "none":
    ratio = c2.slider("Imbalance ratio (largest ÷ smallest class)", 1.0, 200.0, step=1.0, key="data.ratio")
    if profile == "step":
        mu = c2.slider("Share of classes made rare (μ)", 0.0, 1.0, step=0.05, key="data.mu")
    choice = c3.selectbox("Class order (head to tail)", CLASS_ORDERS, key="data.order",
                          help="Which classes stay common and which become rare.")
    if choice == "custom":
        custom = c3.multiselect("Most common first", range(k), format_func=lambda c: dataset.class_names[c],
                                key="data.custom_order", help="Classes you leave out follow in their usual order.")
split = data_forms.split_settings_form(saved, has_test_split=dataset.y_test is not None)
with st.expander("Wrong or hidden labels (optional)", expanded=bool(saved.label_noise or saved.unlabeled)):
    labels = label_forms.label_options_form(saved, "data.labels", upload=True)

config = DataConfig(source=source, params=params, label_column=label_column, column_roles=roles, missing=missing,
                    merge_labels=merge, ordinal=ordinal,
                    imbalance={"profile": profile, "ratio": ratio, "mu": mu,
                               "class_order": class_order(choice, k, split["seed"], custom)}, **split, **labels,
                    **text)
try:
    preview = imbalance_preview(dataset, config)
except ValueError as exc:
    st.error(md(exc))
    st.stop()
st.markdown(describe_profile(profile, ratio, mu, k, achieved=preview["ratio_after"],
                             natural=preview["ratio_before"]))

data_forms.imbalance_cards(preview, profile, ratio)
log_y = st.toggle("Log scale", key="data.log_y", help="Makes the smallest classes visible next to the largest.")
st.plotly_chart(class_counts_figure(preview["counts_before"], preview["counts_after"], preview["class_names"],
                                    preview["groups"], log_y=log_y), width="stretch", key="data.counts_chart")
explain("Grey: training samples the data offers per class. Coloured: what the profile keeps, from the most "
        f"common class (left) to the rarest (right). Validation: {preview['n_val']:,} and test: "
        f"{preview['n_test']:,} samples, not made imbalanced.")
if config.label_noise or config.unlabeled:
    st.subheader("Wrong and hidden labels")
    label_forms.label_damage_panel(config)
if dataset.modality == "tabular":
    made_rows_view.resampler_preview_panel(config, seed=0)  # the Train page's default seed

# --- save ---------------------------------------------------------------------------------
data_forms.save_panel(config.model_dump(mode="json"), data_forms.data_label(config, dataset))
if kind == kinds[1]:
    data_forms.stored_uploads_panel()
