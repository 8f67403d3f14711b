"""Wrong or hidden labels on the Data and Train pages: the options (noise on purpose, hidden
labels, extra unlabelled rows), the per-class panel of what they did, the pickers of the
extra training stages (label cleaning, pre-training, pseudo-labels), and the note Results
shows for a run trained on wrong labels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from app.data_forms import UPLOAD_TYPES
from app.train_forms import plugin_picker
from app.services import load_splits
from app.widgets import explain, params_form, plugin_caption, starting_value, table_height
from core.config import DataConfig, UnlabeledConfig
from core.data import (
    LABEL_NOISE, DataError, damage_by_group, keep_if_accepted, label_damage_table, source_label, source_problems,
)
from core.methods import CLEANERS
from core.text import md
from core.train import PRETRAIN, SEMI
from core.viz import label_damage_figure

__all__ = ["label_options_form", "label_damage_panel", "corrupted_rows_preview", "EXTRA_STAGES", "extra_stages_form",
           "label_noise_note"]


def label_options_form(saved: DataConfig, key: str, *, upload: bool = False) -> dict[str, Any]:
    """Wrong labels on purpose (kind, share, seed, the kind's own settings) and the share of
    training labels to hide: `data.label_noise` and `data.unlabeled`, starting from `saved`;
    with `upload`, also a file of extra unlabelled rows. Returns both keys, None where off."""
    noise, hidden = saved.label_noise, saved.unlabeled
    names = ["none", *LABEL_NOISE.names()]
    c1, c2, c3 = st.columns(3)
    name = c1.selectbox("Wrong labels on purpose", names,
                        key=starting_value(f"{key}.noise", noise.name if noise else "none"),
                        format_func=lambda n: n if n == "none" else LABEL_NOISE.info(n).label,
                        help="Real data has mislabelled rows, and a rare class suffers most. Change some training "
                             "and validation labels on purpose to see it; the test labels always stay correct.")
    label_noise = None
    if name != "none":
        info = LABEL_NOISE.info(name)
        c1.caption(f"**{md(info.label)}**: {plugin_caption(info)}")  # the whole name: a third of the width cuts it
        rate = c2.slider("Share of labels made wrong", 0.0, 0.9, step=0.05,
                         key=starting_value(f"{key}.rate", float(noise.rate) if noise else 0.2),
                         help="Exactly this share of the rows (rounded to whole rows) gets another class; for 'rare "
                              "classes only', the share of the rare rows.")
        seed = int(c3.number_input("Noise seed", 0, 2**31 - 1,
                                   key=starting_value(f"{key}.seed", noise.seed if noise else 0),
                                   help="The same seed changes the same rows."))
        with c3:
            extra = params_form(info, f"{key}.noise")
        label_noise = {"name": name, "rate": float(rate), "seed": seed, **extra}
    fraction = st.slider("Hide the labels of this share of training rows (in every class)", 0.0, 0.95,
                         step=0.05, key=starting_value(f"{key}.hidden", float(hidden.fraction) if hidden else 0.0),
                         help="These rows stay in the data without their label, for methods that learn from "
                              "unlabelled rows (pseudo-labels, pre-training). Every class keeps at least one label.")
    source = hidden.source if hidden is not None else None
    if upload:
        extra_file = st.file_uploader("Extra rows without labels (optional)", type=UPLOAD_TYPES,
                                      key=f"upload.{key}.extra",  # outside data.*: an uploader is not remembered
                                      help="A table with the same feature columns (a label column is not needed), "
                                           "or a .zip of pictures in any folders. They are scaled or resized like the "
                                           "training rows and join the hidden-label rows.")
        if extra_file is not None:
            try:
                source = keep_if_accepted(extra_file.getvalue(), extra_file.name,
                                          lambda stored: _check_extra_rows(saved, stored))
            except DataError as exc:
                st.error(md(exc))
        if source:  # the file's name in the text above: a label is read out as written, escapes and all
            st.caption(f"Extra rows without labels: **{md(source_label(source))}**")
        if source and not st.checkbox("Use these unlabelled rows", key=starting_value(f"{key}.use_extra", True)):
            source = None
    unlabeled = {"fraction": float(fraction), "source": source} if fraction > 0 or source else None
    return {"label_noise": label_noise, "unlabeled": unlabeled}


def _check_extra_rows(data: DataConfig, source: str) -> None:
    """Read the extra unlabelled rows as a run on `data` would (the same columns, sizes and
    scaling), so a file that cannot serve is refused now and not kept."""
    unlabeled = {**(data.unlabeled.model_dump() if data.unlabeled else {}), "source": source}
    _, problems = source_problems(data.model_copy(update={"unlabeled": UnlabeledConfig(**unlabeled)}))
    for problem in problems:  # a problem of the data itself is the Data page's to show, not this file's
        if problem.startswith("data.unlabeled.source: "):
            raise DataError(problem.removeprefix("data.unlabeled.source: "))


def label_damage_panel(data: DataConfig) -> None:
    """Per class (head to tail): the share of training labels made wrong and the share hidden
    (chart and table), then the training rows whose label was changed."""
    if data.label_noise is None and data.unlabeled is None:
        return
    try:
        splits = load_splits(data)
    except (DataError, ValueError) as exc:
        st.error(md(exc))
        return
    table = label_damage_table(splits, data.many_shot, data.few_shot)
    st.plotly_chart(label_damage_figure(table), width="stretch", key="data.label_damage_chart")
    explain("Red: the share of each class's training labels changed to a wrong class. Grey: the share whose label "
            "is hidden. Classes run from the most common (left) to the rarest (right); a few wrong labels are a "
            "large share of a rare class. Validation labels are changed the same way (that is the data you would "
            "have), test labels never.")
    shown = table.copy()
    for column in ("corrupted share", "hidden share"):
        shown[column] = (100 * shown[column]).round(1)
    st.dataframe(shown.rename(columns={"corrupted share": "wrong labels (%)", "corrupted rows": "wrong labels",
                                       "hidden share": "hidden (%)", "hidden rows": "hidden"}),
                 hide_index=True, width="stretch", height=table_height(len(shown), 300))
    if splits.y_train_clean is not None:
        st.markdown("**Training rows with a wrong label**")
        st.dataframe(corrupted_rows_preview(splits), hide_index=True, width="stretch", height=240)


def corrupted_rows_preview(splits, rows: int = 100) -> pd.DataFrame:
    """The first training rows, those with a changed label first: the label training sees,
    the true class, and a mark where they differ (tables: the features too)."""
    names = np.asarray(splits.class_names, dtype=object)
    wrong = splits.y_train != splits.y_train_clean
    order = np.argsort(~wrong, kind="stable")[:rows]
    frame = pd.DataFrame({"training row": order, "wrong label": np.where(wrong[order], "✗ wrong", ""),
                          "label given": names[splits.y_train[order]],
                          "true class": names[splits.y_train_clean[order]]})
    if splits.modality == "tabular" and splits.x_train.ndim == 2:
        features = list(splits.feature_names or [f"f{i}" for i in range(splits.x_train.shape[1])])
        if len(features) == splits.x_train.shape[1]:
            frame = pd.concat([frame, pd.DataFrame(splits.x_train[order], columns=features)], axis=1)
    return frame


EXTRA_STAGES = (  # (config section, label, registry, what it is for)
    ("label_issues", "Suspected wrong labels (before training)", CLEANERS,
     "Find training rows whose label looks wrong, then drop or down-weight them before training."),
    ("pretrain", "Pre-training of the features", PRETRAIN,
     "First teach the network the look of the data: from every training input without labels (contrastive, "
     "masked), or from the labelled rows with their head classes split into tail-sized subclasses (SBCL)."),
    ("semi", "Learn from unlabelled rows", SEMI,
     "Give the hidden-label rows labels the model guesses, and train on the confident ones too. Needs hidden "
     "labels (or uploaded unlabelled rows)."),
)


def extra_stages_form(key: str) -> dict[str, Any]:
    """Optional pickers for the label-cleaning, pre-training and semi-supervised sections,
    built from their registries; {section: {"name": ..., **params} or None}."""
    return {section: plugin_picker(label, registry, f"{key}.{section}", optional=True, help=help_text)
            for section, label, registry, help_text in EXTRA_STAGES}


def label_noise_note(data: DataConfig) -> str | None:
    """One markdown line for a run trained on labels made wrong on purpose: the share per
    class group (head / medium / tail); None for a run without label noise."""
    if data.label_noise is None:
        return None
    try:
        splits = load_splits(data)
    except (DataError, ValueError):
        return None
    table = damage_by_group(label_damage_table(splits, data.many_shot, data.few_shot))
    total = table["corrupted rows"].sum() / max(table["labelled rows"].sum(), 1)
    parts = ", ".join(f"{g} {s:.0%}" for g, s in zip(table["group"], table["corrupted share"]))
    kind = LABEL_NOISE.info(data.label_noise.name).label.lower() if data.label_noise.name in LABEL_NOISE else ""
    return (f"Trained on labels made wrong on purpose ({md(kind)}): {total:.0%} of the training labels ({parts}). "
            "The test labels are all correct, so these scores are measured against the truth.")
