"""The Error gallery for a multi-label run: pick a finding (the rarest first); the test cases
that carry it and were not flagged, the most confidently missed first, each with its other
findings and a map of what drove the model's score for that finding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app.gallery_cards import attribution_maps, run_model
from app.services import RunBundle, get_store, load_bundle
from app.widgets import explain, table_height
from core.analysis import ATTRIBUTIONS, display_image, list_attributions, missed_findings
from core.config import RunConfig
from core.data import prepare_multilabel_run_data
from core.store import RunFileDamaged
from core.text import md
from core.viz import feature_attribution_bars, image_with_attribution

__all__ = ["multilabel_gallery"]

CARDS = 6


@st.cache_data(show_spinner="Reading the run's test cases…", max_entries=4)
def _test_inputs(home: str, run_id: str, updated: float) -> np.ndarray:
    return prepare_multilabel_run_data(RunConfig.model_validate(load_bundle(run_id).record.config).data).x_test


def _words(indices, names) -> str:
    return ", ".join(names[k] for k in indices) or "none"


def multilabel_gallery(bundle: RunBundle) -> None:
    """Everything the Error gallery shows for a multi-label run."""
    art, record, m = bundle.artifacts, bundle.record, bundle.metrics
    per_label = pd.DataFrame(m["per_label"])
    names, thresholds = per_label["label"].tolist(), per_label["threshold"].to_numpy()
    order = per_label.sort_values("train_count", kind="stable").index.tolist()  # rarest first
    missed = {j: missed_findings(art.logits, art.label_matrix, thresholds, j) for j in order}
    st.markdown("A missed finding is a test case that carries it but whose chance for it stayed under the finding's "
                "threshold (tuned on the validation cases). Rare findings come first: their misses are the ones "
                "mAP hides. Test cases whose entry is unknown are never counted as missed.")
    # options are plain text, not markdown: the finding's name as written
    label = st.selectbox("Finding", order, key=f"gallery.ml_label.{record.id}", format_func=lambda j: (
        f"{names[j]} ({per_label.loc[j, 'group']}, {int(per_label.loc[j, 'train_count']):,} training cases, "
        f"{len(missed[j])} missed)"), help="From the fewest to the most training cases.")
    cases = missed[label]
    if cases.empty:
        st.info(f"The model missed no test case that carries {md(names[label])} at its threshold "
                f"({thresholds[label]:.3f}).")
        return
    table = pd.DataFrame({"case": cases["row"] + 1, "chance": cases["chance"],
                          "also carries": [_words(t, names) for t in cases["others_present"]],
                          "flagged instead": [_words(t, names) for t in cases["others_flagged"]]})
    st.dataframe(table, hide_index=True, width="stretch", height=table_height(len(table), 300), column_config={
        "case": st.column_config.NumberColumn("test case", help="Its place among the run's test cases."),
        "chance": st.column_config.NumberColumn(f"chance for {names[label]}", format="percent")})
    explain("The most confidently missed first. A case that also carries a common finding the model did flag hints "
            "that the model leans on the common one and overlooks the rare one beside it.")
    _maps(bundle, cases.head(CARDS), label, names)


def _maps(bundle: RunBundle, cases: pd.DataFrame, label: int, names) -> None:
    """What drove the model's score for the finding, on the first missed cases."""
    record, image = bundle.record, bundle.modality == "image"
    st.subheader(f"What drove the score for {md(names[label])}")
    if not bundle.artifacts.features.shape[1]:
        st.info(f"**{md(record.name)}** is a table baseline: the maps explain a neural network through its gradients, "
                "which a baseline does not have. The list above still holds.")
        return
    try:
        model = run_model(record.id)
    except (FileNotFoundError, RunFileDamaged) as exc:
        st.warning(f"{md(exc)}: no maps for this run; the list above still holds.")
        return
    methods = list_attributions(bundle.modality, model=model)
    method = st.selectbox("Attribution method", methods, key="gallery.ml_method",
                          index=methods.index("integrated_gradients") if "integrated_gradients" in methods else 0,
                          format_func=lambda n: ATTRIBUTIONS.info(n).label)
    rows = cases["row"].to_numpy()
    x = _test_inputs(str(get_store().home), record.id, record.updated)[rows]
    maps = attribution_maps(get_store().run_dir(record.id), model, x, rows.tolist(),
                            {"finding": [label] * len(rows)}, method=method, params={}, what="the maps")["finding"]
    features = bundle.metrics["dataset"].get("feature_names") or [f"feature {i + 1}" for i in range(x.shape[-1])]
    for col, row, chance, x_i, map_i in zip(st.columns(3) * 2, rows, cases["chance"], x, maps):
        with col.container(border=True):
            title = f"test case {row + 1}: {chance:.0%}"
            if image:
                st.image(display_image(x_i), caption="the input", width=120)
                st.plotly_chart(image_with_attribution(x_i, map_i, 0.6, title=title).update_layout(height=260),
                                width="stretch", key=f"gallery.ml_map.{row}")
            else:
                st.plotly_chart(feature_attribution_bars(map_i, features, top=6, title=title), width="stretch",
                                key=f"gallery.ml_map.{row}")
    explain(f"{ATTRIBUTIONS.info(method).label} towards the model's score for {md(names[label])}: red parts (or bars "
            "to the right) pushed the score up, blue ones down. A missed case whose map shows little for the finding "
            "suggests the model never learned what it looks like.")
