"""The Geometry page for a multi-label run: the map of the test cases' features (the
network's last layer before its outputs), coloured by whether each case carries a chosen
finding, does not, or has an unknown entry. The run stores its test features only, so the
map is of the test cases."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app.embedding_jobs import embedding_settings, load_embedding
from app.multilabel_calibration_view import finding_choices
from app.services import RunBundle, get_store
from app.widgets import explain
from core.analysis import embed, embed_cached, sigmoid
from core.text import md
from core.viz import label_map_figure

__all__ = ["multilabel_geometry"]


def _umap(run_id: str, features: np.ndarray, params: dict) -> None:
    """Compute the UMAP map now and cache it with the run (where single-label maps live)."""
    with st.spinner("Computing the UMAP map (the first one in a process takes 15-60 s)…"):
        embed_cached(features, get_store().run_dir(run_id) / "embeddings", "test", **embedding_settings(params))


def multilabel_geometry(bundle: RunBundle) -> None:
    """Everything the Geometry page shows for a multi-label run."""
    art, record, store = bundle.artifacts, bundle.record, get_store()
    if not art.features.shape[1]:
        st.info(f"**{md(record.name)}** is a table baseline: it learns no feature space, so there is no map to show. "
                "Its findings are on the Results, Calibration, Triage and Error gallery pages.")
        return
    order, words = finding_choices(bundle)
    st.markdown("Each dot is a test case, placed by the numbers the network turned it into just before its outputs: "
                "cases the network sees as alike sit close. Colour them by one finding to see whether its cases "
                "gather in a place of their own (the network has learned it) or sit scattered among the others.")
    c1, c2 = st.columns([3, 1])
    # options are plain text, not markdown: the finding's name as written
    label = c1.selectbox("Colour by finding", order, index=len(order) - 1, format_func=lambda j: words[j],
                         key=f"geometry.ml_label.{record.id}", help="From the most to the fewest training cases.")
    dims = int(c2.radio("View", ["2-D", "3-D"], key="geometry.ml_dims", horizontal=True)[0])
    params = {"n_components": dims}
    coords, how = load_embedding(store, record.id, "test", params, art), "UMAP"
    if coords is None:
        coords, how = embed(art.features, method="pca", n_components=dims), "PCA"
        st.info("This is PCA, a quick straight-line view. UMAP keeps neighbours together better and is worth the "
                "wait on a map of many cases.")
        st.button("Compute the UMAP map", key="geometry.ml_umap", on_click=_umap, args=(record.id, art.features, params),
                  icon=":material/scatter_plot:")
    name = bundle.metrics["per_label"][label]["label"]
    chance = sigmoid(art.logits[:, label])
    st.plotly_chart(label_map_figure(coords, art.label_matrix[:, label], chance, name, axis_label=how),
                    width="stretch", key="geometry.ml_map")
    explain(f"Red: test cases that carry {md(name)}; grey: those that do not; open orange rings: cases whose entry "
            "is unknown. Hover a dot for the model's chance for the finding. A rare finding whose red dots are "
            "spread among grey ones is one the network has no place for: it will be missed or confused.")
