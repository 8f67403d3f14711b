"""Geometry: how the classes sit in the model's feature space, and how imbalance bends it."""

import numpy as np
import streamlit as st

from app import embedding_jobs as jobs
from app.geometry_view import TABS, angles_tab, fmt, neural_collapse_tab, sample_values
from app.multilabel_geometry_view import multilabel_geometry
from app.services import get_store, load_bundle, load_splits
from app.widgets import explain, require_run, table_height
from core.analysis import class_geometry, norm_count_correlation
from core.data import head_to_tail_order
from core.registry import plugin_label
from core.text import md
from core.viz import (
    add_thumbnails, centred_class_means, embedding_hover_features, text_hover, embedding_scatter, norm_count_figure,
    sample_image_figure, spread_bars,
)

st.title("🧭 Geometry")
st.caption("Inside the network every example becomes a list of numbers, its *features*; the last layer draws "
           "the class boundaries in that space. This page shows how the classes sit there and how rare classes "
           "get squeezed.")
record = require_run(multilabel=True)
store, bundle = get_store(), load_bundle(record.id)
if bundle.multilabel:  # several findings per case: coloured by one finding
    multilabel_geometry(bundle)
    st.stop()
art, names, groups = bundle.artifacts, bundle.class_names, bundle.groups
if not art.has_features:
    st.info(f"**{md(record.name)}** is a table baseline ({md(plugin_label('model', bundle.config.model.name))}): it learns no feature space, so there "
            "is no geometry to show. Pick a neural-network run in the sidebar; the Results, Calibration and Post-hoc "
            "pages work for baselines too.")
    st.stop()
counts, order = art.class_counts, head_to_tail_order(art.class_counts)


def per_class_geometry():  # only the tabs that draw it pay for it
    return class_geometry(art.features, art.labels, art.head_weight, counts, pred=art.logits)


# Only the open tab is drawn: five tabs of charts at once cost the browser seconds.
feature_map, collapse, lengths, angles, spread = st.tabs(TABS, key="geometry.tabs", on_change="rerun")

if feature_map.open:
    with feature_map:
        c = st.columns([1.3, 1, 1, 0.8, 1.4])
        split = c[0].radio("Points", list(jobs.SPLITS), format_func=jobs.SPLITS.get, key="geometry.split",
                           horizontal=True, help="Test set: the held-out examples. Training subset: a fixed, "
                           "class-stratified sample of the training data.")
        neighbours = c[1].slider("Neighbours", 5, 50, 15, key="geometry.n_neighbors",
                                 help="UMAP n_neighbors: small values keep local detail, large ones the big picture.")
        min_dist = c[2].select_slider("Min. distance", [0.0, 0.05, 0.1, 0.25, 0.5, 0.8], 0.1, key="geometry.min_dist",
                                      help="UMAP min_dist: how tightly points may pack together.")
        dims = int(c[3].radio("View", ["2-D", "3-D"], key="geometry.dims")[0])
        tail_on = c[4].toggle("Highlight tail classes", key="geometry.highlight_tail")
        errors_on = c[4].toggle("Highlight misclassified samples", key="geometry.highlight_errors")
        params = {"n_neighbors": neighbours, "min_dist": min_dist, "n_components": dims}
        made = bundle.made_rows  # rows the run's resampler made up: on the training map, apart
        features, labels, pred = jobs.split_arrays(art, split, made)
        coords, method = jobs.map_coordinates(store, record.id, split, params, art)
        splits = load_splits(bundle.config.data)
        inputs = jobs.split_inputs(splits, art, bundle.config, split, made)
        feature_names = bundle.metrics["dataset"].get("feature_names")
        texts = jobs.split_texts(splits, art, bundle.config, split, made)  # free text: the note itself on hover
        hover = text_hover(texts) if texts is not None else embedding_hover_features(
            inputs, feature_names) if inputs is not None and feature_names else None
        wrong = art.train_labels != art.train_clean_labels if split == "train" and art.train_clean_labels is not None \
            else None  # labels made wrong on purpose (data.label_noise): an X on the map
        who = jobs.split_case_names(splits, art, bundle.config, split, made)  # hover and the sample's line name the case
        is_made = jobs.made_mask(art, split, made)
        if wrong is not None and is_made is not None:
            wrong = np.concatenate([wrong, np.zeros(int(is_made.sum()), bool)])
        made_by = plugin_label("resampler", made.resampler) if made is not None else ""
        fig = embedding_scatter(coords, labels, names, counts, pred=pred, groups=groups, highlight_tail=tail_on,
                                highlight_errors=errors_on, hover_text=hover, axis_label=method, wrong_label=wrong,
                                case_names=who, made=is_made, made_by=made_by)
        if bundle.modality == "image" and dims == 2 and inputs is not None and c[4].toggle(
                "Show pictures on the map", key="geometry.pictures",
                help="Draws up to 120 of the inputs themselves where they sit, an equal share of every class, in its colour."):
            add_thumbnails(fig, coords, inputs, labels, counts)
        sample_key = f"geometry.sample.{record.id}.{split}"

        def pick_sample() -> None:
            points = st.session_state["geometry.map"].selection.points
            ids = [p["customdata"][0] for p in points if p.get("customdata")]
            if ids:
                st.session_state[sample_key] = int(ids[0])

        st.plotly_chart(fig, width="stretch", key="geometry.map", on_select=pick_sample, selection_mode="points")
        explain(f"Each dot is one example, placed by {method} so that examples the model sees as similar sit close "
                "together; colour is the true class. Rare classes are drawn larger and on top. Well-separated "
                "islands mean the model tells classes apart; a rare class smeared into a big one is being confused "
                "with it. Axes have no units." + (" An X marks a training example whose label was made wrong on purpose; "
                                                  "it is coloured by the wrong label." if wrong is not None else "")
                + (f" Open diamonds are rows {md(made_by)} made up for training (no real case behind them), placed where "
                   "the trained network puts them; they never enter the test or validation rows." if is_made is not None
                   else ""))
        left, right = st.columns([1, 1])
        sample = left.number_input("Show sample number (or click a dot on the 2-D map)", 0, len(labels) - 1,
                                   key=sample_key)
        verdict = "correct" if labels[sample] == pred[sample] else "**misclassified**"
        title = md(who[sample]) if who else f"Sample {sample}" + (
            f" (made by {md(made_by)}, no real case)" if is_made is not None and is_made[sample] else "")
        left.markdown(f"**{title}**: true class **{md(names[labels[sample]])}**, predicted "
                      f"**{md(names[pred[sample]])}** ({verdict})")
        if inputs is not None and bundle.modality == "image":
            right.plotly_chart(sample_image_figure(inputs[sample]), width="content", key="geometry.sample_image")
        elif inputs is not None:
            values = sample_values(splits, inputs[sample])
            right.dataframe(values, hide_index=True, height=table_height(len(values), 220))
            right.caption("Each value as in the data file (gaps show the value they were filled with).")

if collapse.open:
    with collapse:
        neural_collapse_tab(bundle)

if lengths.open:
    with lengths:
        geometry = per_class_geometry()
        corr = norm_count_correlation(geometry)
        st.plotly_chart(norm_count_figure(geometry, names, groups, corr), width="stretch", key="geometry.norms")
        explain("Spearman rank correlation with the training count: class means "
                f"{fmt(corr['mean_norm_count_spearman'])}, classifier weights {fmt(corr['weight_norm_count_spearman'])}. "
                "Near +1 means *weight lengths follow class counts*: the classic imbalance signature, where common "
                "classes get longer weights and win close calls. Re-balancing (re-weighting, balanced sampling, "
                "tau-norm, cRT) flattens it.")

if angles.open:
    with angles:
        angles_tab(bundle, centred_class_means(art.features, art.labels, art.num_classes), order)

if spread.open:
    with spread:
        st.plotly_chart(spread_bars(per_class_geometry(), names, groups), width="stretch", key="geometry.spread")
        explain("Top: how wide each class's cloud of test examples is. Bottom: how far the nearest other class's "
                "centre is. A class whose spread approaches its gap overlaps its neighbour; rare (tail) classes, "
                "seen less in training, often have wide, loose clouds sitting close to a bigger class.")
