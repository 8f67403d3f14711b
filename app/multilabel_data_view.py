"""The Data page for an upload with several labels per case: how the labels are written (a
label column listing several, one 0/1 column per finding, an `.npz` with a 2-D `y`), the
label frequencies (the long tail) and the share unknown, the training profile and the
hidden share, and "Use this dataset for training" saving a multi-label data config."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from app.data_forms import is_table_upload, raw_table, save_panel, split_settings_form, table_columns
from app.widgets import explain, starting_value
from core.config import DataConfig
from core.data import (
    LABEL_SEPARATORS, MANIFEST_NAME, MULTILABEL_DATASETS, DataError, MultiLabelDataset, class_groups, detect_label_separator, known_mask,
    load_multilabel_data, manifest_labels, npz_has_label_matrix, prepare_multilabel_run_data, source_label,
    upload_path, zip_has_label_manifest,
)
from core.text import md
from core.viz import class_counts_figure

__all__ = ["LAYOUT_WORDS", "label_layout", "multilabel_section", "builtin_section", "load_multilabel_dataset"]

LAYOUT_WORDS = {
    "one": "One label per row",
    "separated": "Several labels in the label column",
    "columns": "One 0/1 column per finding",
}
_PROFILES = {"none": "none (as given)", "exp": "exponential", "step": "step"}


@st.cache_resource(show_spinner=False, max_entries=8)
def _npz_is_multilabel(source: str) -> bool:
    return npz_has_label_matrix(upload_path(source).read_bytes(), source_label(source))


@st.cache_resource(show_spinner=False, max_entries=8)
def _zip_separator(source: str) -> str | None:
    """The separator a picture ZIP's labels.csv uses ("" when it has none: one picture folder per
    class, single-label; None when every row lists one label)."""
    data, name = upload_path(source).read_bytes(), source_label(source)
    if not zip_has_label_manifest(data, name):
        return ""
    try:
        return detect_label_separator(manifest_labels(data, name))
    except DataError:  # the loader below names what is wrong
        return None


def _zip_layout(source: str, saved: DataConfig) -> dict | None:
    """A picture ZIP with a labels.csv is multi-label; the separator is found and can be changed."""
    found = _zip_separator(source)
    if found == "":
        return None
    spec = saved.multilabel_upload if saved.source == source else None
    st.info(f"This ZIP has a **{MANIFEST_NAME}**, so it is read as **multi-label** data: each picture can carry "
            "several findings, listed in its row. A **?** in a row means the findings not listed there were not "
            "checked (unknown) rather than absent.", icon=":material/label:")
    first = (spec.separator if spec and spec.separator else found) or "|"
    sep = st.selectbox("Separator between labels", list(LABEL_SEPARATORS),
                       format_func=lambda s: f"{s}  ({LABEL_SEPARATORS[s]})",
                       key=starting_value("data.ml_separator", first))
    return {"separator": sep}


def label_layout(source: str, label_column: str | None, saved: DataConfig) -> dict | None:
    """How the upload writes its labels, as `data.multilabel_upload` (None: one label per
    row). A table's label column listing several labels is noticed and said in words."""
    if source.lower().endswith(".zip"):
        return _zip_layout(source, saved)
    if not is_table_upload(source):
        return {} if _npz_is_multilabel(source) else None
    found = detect_label_separator(raw_table(source).frame[label_column]) if label_column else None
    spec = saved.multilabel_upload if saved.source == source else None
    start = "columns" if spec and spec.columns else "separated" if (spec and spec.separator) or found else "one"
    if found:
        st.info(f"This looks like **multi-label** data: values in **{md(label_column)}** list several labels "
                f"separated by {LABEL_SEPARATORS[found]}, so a case can carry several findings at once.",
                icon=":material/label:")
    layout = st.radio("How are the labels written?", list(LAYOUT_WORDS), format_func=LAYOUT_WORDS.get,
                      horizontal=True, key=starting_value("data.ml_layout", start),
                      help="One label per row: each case has one class. Several labels: a case can carry several "
                           "findings at once (multi-label), e.g. 'fever|cough'. 0/1 columns: one column per finding, "
                           "1 present, 0 absent, blank / NA / ? not known.")
    if layout == "one":
        return None
    if layout == "separated":
        options = list(LABEL_SEPARATORS)
        first = (spec.separator if spec and spec.separator else found) or "|"
        sep = st.selectbox("Separator between labels", options, format_func=lambda s: f"{s}  ({LABEL_SEPARATORS[s]})",
                           key=starting_value("data.ml_separator", first))
        return {"separator": sep}
    columns = table_columns(source)
    chosen = [c for c in (spec.columns if spec and spec.columns else [label_column]) if c in columns]
    picked = st.multiselect("Label columns (one per finding)", columns, key=starting_value("data.ml_columns", chosen),
                            help="Each picked column says for every case whether it carries that finding.")
    if len(picked) < 2:
        st.info("Pick at least two label columns, one per finding.")
        st.stop()
    return {"columns": picked}


@st.cache_resource(show_spinner="Reading the labels…", max_entries=8)
def _dataset(data_json: str) -> MultiLabelDataset:
    return load_multilabel_data(DataConfig.model_validate_json(data_json))


def load_multilabel_dataset(data: DataConfig) -> MultiLabelDataset:
    """A multi-label data config's cases and label matrix (cached, shared: read-only)."""
    return _dataset(data.model_dump_json(include={"source", "params", "label_column", "column_roles", "missing",
                                                  "multilabel_upload"}))


@st.cache_data(show_spinner="Making the training split…", max_entries=8)
def _training_counts(data_json: str) -> tuple[np.ndarray, np.ndarray]:
    """(known positives per label in the training split before the profile, after it)."""
    profile = prepare_multilabel_run_data(DataConfig.model_validate_json(data_json)).profile
    return profile.before, profile.reached


def base_label(source: str) -> str:
    """The data's name in words: an upload's file name, a built-in's display words."""
    return MULTILABEL_DATASETS.info(source).label if source in MULTILABEL_DATASETS.names() else source_label(source)


def _summary(ds: MultiLabelDataset) -> str:
    known = known_mask(ds.y)
    per_case = np.nansum(ds.y, axis=1).mean()
    unknown = 1 - known.mean()
    return (f"**Multi-label data:** {len(ds.y):,} cases, {ds.num_labels} findings, on average {per_case:.1f} "
            f"findings per case. {unknown:.0%} of the entries (case × finding) are **unknown**: training leaves them "
            "out of the loss rather than reading them as absent.")


def multilabel_section(source: str, spec: dict, label_column: str | None, roles: dict[str, str], missing: str,
                       saved: DataConfig) -> None:
    """Everything below the file for multi-label data, ending the page."""
    base: dict[str, Any] = {"source": source, "multilabel_upload": spec, "missing": missing,
                            "label_column": label_column if spec.get("separator") else None,
                            "column_roles": {k: v for k, v in roles.items() if k not in spec.get("columns", ())}}
    _section(base, saved, spec)


def builtin_section(source: str, params: dict[str, Any], saved: DataConfig) -> None:
    """A multi-label built-in below its parameters: the same summary, profile, hidden share and
    save as an upload's, ending the page. A single-label built-in returns at once."""
    if not DataConfig(source=source).multilabel:
        return
    _section({"source": source, "params": params}, saved, {})


def _picture_preview(ds: MultiLabelDataset, most: int = 6) -> None:
    """One picture carrying each finding, the rarest first, with every finding it carries:
    what the findings look like before anything is trained."""
    order = [int(j) for j in np.argsort(ds.label_counts, kind="stable") if (ds.y[:, j] == 1).any()][:most]
    found = (ds.y == 1).sum(axis=1)
    used: set[int] = set()
    for col, j in zip(st.columns(most), order, strict=False):
        carrying = np.flatnonzero(ds.y[:, j] == 1)
        carrying = carrying[np.argsort(found[carrying], kind="stable")]  # fewest other findings first
        i = int(next((c for c in carrying if int(c) not in used), carrying[0]))
        used.add(i)
        picture = np.clip(ds.x[i].transpose(1, 2, 0), 0.0, 1.0)
        col.image(picture[:, :, 0] if picture.shape[2] == 1 else picture, width="stretch")
        carries = ", ".join(ds.label_names[k] for k in np.flatnonzero(ds.y[i] == 1))
        col.caption(f"**{md(ds.label_names[j])}** · carries {md(carries)}")
    explain("A picture of each finding, the rarest on the left, with every finding that picture carries.")


def _section(base: dict[str, Any], saved: DataConfig, spec: dict) -> None:
    """The summary, the training profile and hidden share, the chart and the save button."""
    source = base["source"]
    try:
        ds = load_multilabel_dataset(DataConfig.model_validate(base))
    except (DataError, ValueError) as exc:
        st.error(md(exc))
        st.stop()
    st.markdown(_summary(ds))
    if ds.modality == "image":
        _picture_preview(ds)
    if spec.get("columns"):
        explain(f"The {len(spec['columns'])} label columns are never used as measurements, whatever the table of "
                "columns above says about them.")
    st.subheader("Make it long-tailed")
    same = saved.source == source and saved.multilabel
    c1, c2, c3 = st.columns(3)
    profile = c1.radio("Profile", list(_PROFILES), format_func=_PROFILES.get, horizontal=True,
                       key=starting_value("data.ml_profile", saved.imbalance.profile if same else "none"),
                       help="Keeps fewer training cases of the rarer findings, from the most common to the rarest. "
                            "Findings occur together, so the counts reached can differ from those asked for.")
    ratio = c2.slider("Ratio (most ÷ least common finding)", 1.0, 200.0, step=1.0,
                      key=starting_value("data.ml_ratio", min(float(saved.imbalance.ratio), 200.0)),
                      disabled=profile == "none")
    hide = c3.slider("Hide a share of each finding's training entries", 0.0, 0.9, step=0.05,
                     key=starting_value("data.ml_hide", float(saved.hide_labels) if same else 0.0),
                     help="Makes partial labels on purpose: those entries become unknown in training only.")
    split = split_settings_form(saved, has_test_split=False)
    config = DataConfig.model_validate({**base, "imbalance": {"profile": profile, "ratio": ratio}, "hide_labels": hide,
                                        **split})
    try:
        before, after = _training_counts(config.model_dump_json())
    except (DataError, ValueError) as exc:
        st.error(md(exc))
        st.stop()
    groups = class_groups(after, config.many_shot, config.few_shot)
    st.plotly_chart(class_counts_figure(before, after, ds.label_names, groups), width="stretch", key="data.ml_chart")
    explain("Each bar is one finding, most common on the left, rarest on the right: grey, the training cases that "
            "carry it; coloured, what the profile keeps (head, medium, tail). A case with several findings counts "
            "once for each. Validation and test cases keep the mix they came with.")
    save_panel(config.model_dump(mode="json"), f"{base_label(source)} ({ds.num_labels} findings, multi-label)")
    st.stop()
