"""Geometry: how the classes sit in the model's feature space, and how imbalance bends it."""

import math

import pandas as pd
import streamlit as st

from app import embedding_jobs as jobs
from app.services import get_store, load_bundle, load_splits
from app.widgets import explain, require_run, table_height
from core.analysis import class_geometry, minority_collapse, norm_count_correlation
from core.data import head_to_tail_order
from core.text import md
from core.viz import (
    add_thumbnails, centred_class_means, cosine_heatmap, embedding_hover_features, embedding_scatter,
    nc_history_figure, norm_count_figure, sample_image_figure, spread_bars,
)

st.title("🧭 Geometry")
st.caption("Inside the network every example becomes a list of numbers, its *features*; the last layer draws "
           "the class boundaries in that space. This page shows how the classes sit there and how rare classes "
           "get squeezed.")
record = require_run()
store, bundle = get_store(), load_bundle(record.id)
art, names, groups = bundle.artifacts, bundle.class_names, bundle.groups
if not art.has_features:
    st.info(f"**{md(record.name)}** is a table baseline ({bundle.config.model.name}): it learns no feature space, so there "
            "is no geometry to show. Pick a neural-network run in the sidebar; the Results, Calibration and Post-hoc "
            "pages work for baselines too.")
    st.stop()
counts, order = art.class_counts, head_to_tail_order(art.class_counts)
geometry = class_geometry(art.features, art.labels, art.head_weight, counts, pred=art.logits)
means = centred_class_means(art.features, art.labels, art.num_classes)


def fmt(value) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"


tabs = st.tabs(["Feature map", "Neural collapse", "Lengths vs counts", "Angles", "Tail spread"], key="geometry.tabs")

with tabs[0]:
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
    features, labels, pred = jobs.split_arrays(art, split)
    coords, method = jobs.map_coordinates(store, record.id, split, params, art)
    splits = load_splits(bundle.config.data)
    inputs = jobs.split_inputs(splits, art, bundle.config, split)
    feature_names = bundle.metrics["dataset"].get("feature_names")
    hover = embedding_hover_features(inputs, feature_names) if inputs is not None and feature_names else None
    wrong = art.train_labels != art.train_clean_labels if split == "train" and art.train_clean_labels is not None \
        else None  # labels made wrong on purpose (data.label_noise): an X on the map
    fig = embedding_scatter(coords, labels, names, counts, pred=pred, groups=groups, highlight_tail=tail_on,
                            highlight_errors=errors_on, hover_text=hover, axis_label=method, wrong_label=wrong)
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
                                              "it is coloured by the wrong label." if wrong is not None else ""))
    left, right = st.columns([1, 1])
    sample = left.number_input("Show sample number (or click a dot on the 2-D map)", 0, len(labels) - 1,
                               key=sample_key)
    verdict = "correct" if labels[sample] == pred[sample] else "**misclassified**"
    left.markdown(f"**Sample {sample}**: true class **{md(names[labels[sample]])}**, predicted "
                  f"**{md(names[pred[sample]])}** ({verdict})")
    if inputs is not None and bundle.modality == "image":
        right.plotly_chart(sample_image_figure(inputs[sample]), width="content", key="geometry.sample_image")
    elif inputs is not None:
        right.dataframe(pd.DataFrame({"feature": feature_names or range(inputs.shape[1]), "value": inputs[sample]}),
                        hide_index=True, height=table_height(inputs.shape[1], 220))

with tabs[1]:
    nc = bundle.metrics.get("geometry", {})
    cards = [("NC1", "nc1", "Within-class spread relative to between-class spread (0 = each class is a point)."),
             ("NC2 lengths", "nc2_equinorm_means", "How unequal the class-mean lengths are (0 = all equal)."),
             ("NC2 angles", "nc2_maxangle_means", "How far the class-mean angles are from a perfect simplex."),
             ("NC3", "nc3", "Mismatch between classifier weights and class means (0 = aligned)."),
             ("NC4", "nc4", "Share of test samples where 'nearest class mean' disagrees with the model.")]
    for col, (label, key, help_text) in zip(st.columns(len(cards)), cards):
        col.metric(label, fmt(nc.get(key)), help=help_text, border=True)
    st.caption("Cards: the test set at the end of training. Lines: a fixed training subset, every few epochs.")
    if any(row.get("nc1") is not None for row in bundle.history):
        st.plotly_chart(nc_history_figure(bundle.history), width="stretch", key="geometry.nc_history")
    else:
        st.info("This run recorded no neural-collapse numbers during training (set `train.nc_every` above 0).")
    explain("Neural collapse (Papyan, Han & Donoho 2020) is what long training on balanced data tends toward: "
            "each class shrinks to a point and the class points spread out as evenly as possible. Lower is more "
            "collapsed.\n"
            "- **NC1**: within-class spread relative to between-class spread "
            "(0 = each class collapses to a point).\n"
            "- **NC2**: how equal the class-mean lengths and angles are (0 = a perfectly symmetric simplex).\n"
            "- **NC3**: how well the classifier lines up with the class means (0 = perfectly aligned).\n"
            "- **NC4**: how often 'nearest class mean' disagrees with the model.\n\n"
            "Class means are measured from mu_G, the mean of the class means (every class counts once, so the head "
            "does not pull it; a sample-weighted mean would give other numbers).")

with tabs[2]:
    corr = norm_count_correlation(geometry)
    st.plotly_chart(norm_count_figure(geometry, names, groups, corr), width="stretch", key="geometry.norms")
    explain("Spearman rank correlation with the training count: class means "
            f"{fmt(corr['mean_norm_count_spearman'])}, classifier weights {fmt(corr['weight_norm_count_spearman'])}. "
            "Near +1 means *weight lengths follow class counts*: the classic imbalance signature, where common "
            "classes get longer weights and win close calls. Re-balancing (re-weighting, balanced sampling, "
            "tau-norm, cRT) flattens it.")

with tabs[3]:
    ideal = -1 / (len(names) - 1) if len(names) > 1 else 0.0
    left, right = st.columns(2)
    left.plotly_chart(cosine_heatmap(means, names, order, "class means (centred on mu_G)"), width="stretch",
                      key="geometry.cos_means")
    right.plotly_chart(cosine_heatmap(art.head_weight, names, order, "classifier weights"), width="stretch",
                       key="geometry.cos_weights")
    explain(f"Cosine of the angle between every pair of classes, head to tail. White is the ideal simplex value "
            f"-1/(K-1) = {ideal:.2f} for K = {len(names)} classes (all pairs equally far apart). Red pairs point "
            "closer together than ideal (easier to confuse), blue pairs further apart.")
    few_heads = groups.count("head") < 2  # then compare the tail with every other class
    reference = "Head + medium" if few_heads else "Head"
    mc = minority_collapse(art.head_weight, means, [g if g == "tail" or not few_heads else "head" for g in groups])
    cards = [("Tail", "tail_weight_cosine"), (reference, "head_weight_cosine"), ("Tail", "tail_mean_cosine"),
             (reference, "head_mean_cosine")]
    for col, (who, key) in zip(st.columns(4), cards):
        col.metric(f"{who}: {'weights' if 'weight' in key else 'class means'}", fmt(mc[key]), border=True,
                   help=f"Mean cosine between pairs of {who.lower()} classes.")
    explain("Cards: the mean cosine within each group. Minority collapse (Fang et al. 2021): under strong imbalance "
            "the rare classes' classifier vectors squeeze toward each other, so the model can hardly tell rare "
            f"classes apart. It shows as a tail value well above the others' (ideal for both: {ideal:.2f}). "
            "'n/a': the group has fewer than two classes.")

with tabs[4]:
    st.plotly_chart(spread_bars(geometry, names, groups), width="stretch", key="geometry.spread")
    explain("Top: how wide each class's cloud of test examples is. Bottom: how far the nearest other class's "
            "centre is. A class whose spread approaches its gap overlaps its neighbour; rare (tail) classes, "
            "seen less in training, often have wide, loose clouds sitting close to a bigger class.")
