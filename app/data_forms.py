"""The Data page's forms: store an upload and read it once, the label column, column roles
and gap policy of an uploaded table, split settings, and the stored uploads. The dataset a
config names is loaded once per session and shared (the Train page reads it too). The
words and counts beside these widgets are pure and live in `core.data`."""

from __future__ import annotations

import hashlib
import json
from pathlib import PurePosixPath
from typing import Any

import pandas as pd
import streamlit as st

from app import state
from app.services import ASSETS, DEFAULT_DATA, save_data_choice
from app.data_offers import MERGE_KEY, drop_cost_panel, merge_choice
from app.widgets import flash, params_form, read_as_written, starting_value, table_height
from core.config import DataConfig
from core.data import (
    DATASETS, DEFAULT_TEXT_ENCODER, MULTILABEL_DATASETS, MISSING_HELP, ROLE_CHOICES, ROLE_LABELS, UPLOAD_PREFIX, Dataset, DataError, DropCost, RawTable,
    TableProfile, apply_role_edits, drop_cost, gaps_line, merge_label_variants,
    imbalance_preview, keep_if_accepted, left_out_line, list_uploads, load_data, load_multilabel_upload,
    npz_has_label_matrix, zip_has_label_manifest, missing_options, profile_table, read_stored_table,
    remove_upload, roles_frame, save_upload, source_label, sources_of,
)
from core.registry import plugin_label
from core.text import md

__all__ = [
    "SAMPLE_TABLE", "TABLE_SUFFIXES", "UPLOAD_TYPES", "PROFILE_WORDS", "current_data_config", "natural_ratio",
    "data_label", "data_kind_words", "store_upload", "open_upload", "is_table_upload", "raw_table", "table_columns", "table_preview",
    "table_profile", "load_dataset", "builtin_form", "upload_form", "imbalance_cards", "split_settings_form", "table_settings", "start_new_upload",
    "offer_last_profile", "upload_usage", "stored_uploads_panel",
]

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet")
UPLOAD_TYPES = ["csv", "tsv", "txt", "parquet", "zip", "npz"]
SAMPLE_TABLE = ASSETS / "sample-table.csv"  # synthetic, offered for a first upload
PROFILE_WORDS = {"none": "none (as given)", "exp": "exponential", "step": "step", "linear": "linear"}


def current_data_config(saved: dict | None) -> DataConfig:
    """The dataset the Train page uses: the one saved on the Data page, or the default."""
    return DataConfig.model_validate(saved or DEFAULT_DATA)


def natural_ratio(dataset: Dataset, data: DataConfig) -> float:
    """Largest ÷ smallest class of the training split before any profile: the imbalance the
    data really has, as the Data page's chart and text show it."""
    return float(imbalance_preview(dataset, data)["ratio_before"])


def data_label(data: DataConfig, dataset: Dataset | None = None) -> str:
    """Short text: "digits (exp profile, ratio 50)" or "patients.csv (43 : 1, natural)"."""
    name = source_label(data.source)
    imb = data.imbalance
    if imb.profile != "none":
        return f"{name} ({imb.profile} profile, ratio {imb.ratio:g})"
    if dataset is None:
        try:
            dataset = load_dataset(data)
        except (DataError, ValueError):
            return f"{name} (class sizes as given)"
    ratio = natural_ratio(dataset, data)
    return f"{name} ({ratio:.0f} : 1, natural)" if ratio >= 1.5 else f"{name} ({ratio:.1f} : 1, about balanced)"


def data_kind_words(dataset: Dataset, data: DataConfig) -> str:
    """What the model reads: "tabular data", "image data", or for free text the columns and
    how they become numbers ("free text (note), read as Word counts (TF-IDF)")."""
    if not dataset.text_names:
        return f"{dataset.modality} data"
    encoder = plugin_label("text_encoder", data.text_encoder.name if data.text_encoder else DEFAULT_TEXT_ENCODER)
    others = " beside other columns" if dataset.x.ndim == 2 and dataset.x.shape[1] else ""
    return f"free text ({md(', '.join(dataset.text_names))}){others}, read as {encoder}"


# --- uploads --------------------------------------------------------------------------------

def store_upload_type(filename: str) -> None:
    """Refuse a file type the Data page does not read, before anything is stored."""
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix[1:] not in UPLOAD_TYPES:
        raise DataError(f"{filename}: unsupported file type {suffix or '(none)'!r}; upload .csv, .parquet, "
                        ".zip (one folder per class) or .npz.")


def store_upload(data: bytes, filename: str) -> str:
    """Store an uploaded file once (content-hashed); returns its `upload:...` source."""
    store_upload_type(filename)
    return save_upload(data, filename)


def open_upload(data: bytes, filename: str) -> str:
    """Store an upload and read it once; a file that cannot be read is refused and, unless it
    was stored before, not kept (`core.data.keep_if_accepted`)."""
    store_upload_type(filename)

    def read(source: str) -> None:
        if is_table_upload(source):
            raw_table(source)
        elif npz_has_label_matrix(data, filename) or zip_has_label_manifest(data, filename):  # several labels per case
            load_multilabel_upload(data, filename)
        else:
            load_dataset(DataConfig(source=source))

    return keep_if_accepted(data, filename, read)


def is_table_upload(source: str | None) -> bool:
    return bool(source) and source.startswith(UPLOAD_PREFIX) and PurePosixPath(source).suffix.lower() in TABLE_SUFFIXES


@st.cache_resource(show_spinner="Reading the table…", max_entries=4)
def raw_table(source: str) -> RawTable:
    """An uploaded table parsed once per session and shared (pages treat it as read-only)."""
    return read_stored_table(source)


def table_columns(source: str) -> list[str]:
    """Column names of an uploaded table (its header row)."""
    return [str(c) for c in raw_table(source).frame.columns]


def table_preview(source: str, rows: int = 100) -> pd.DataFrame:
    """The first rows of an uploaded table as written, from the one parse."""
    return raw_table(source).frame.head(rows)


@st.cache_resource(show_spinner="Looking at the columns…", max_entries=16)
def _profile(source: str, label_column: str | None, roles_json: str) -> TableProfile:
    raw = raw_table(source)
    return profile_table(raw.frame, raw.filename, label_column, json.loads(roles_json), first_row=raw.first_row,
                         notes=raw.notes)


def table_profile(source: str, label_column: str | None = None, roles: dict[str, str] | None = None) -> TableProfile:
    """Every column's role (detected, or as the person set it), why, and its gaps."""
    return _profile(source, label_column, json.dumps(roles or {}, sort_keys=True))


@st.cache_resource(show_spinner="Loading the data…", max_entries=8)
def _load(data_json: str) -> Dataset:
    """Shared, not copied per rerun (a 200,000-row table is large): treat it as read-only.
    An uploaded table is built from its one cached parse."""
    data = DataConfig.model_validate_json(data_json)
    return load_data(data, raw_table(data.source) if is_table_upload(data.source) else None)


def load_dataset(data: DataConfig) -> Dataset:
    """The data config's dataset (cached); raises DataError / ValueError with a readable message."""
    return _load(data.model_dump_json(include={"source", "params", "label_column", "column_roles", "missing",
                                               "merge_labels", "ordinal"}))


# --- Streamlit pieces -----------------------------------------------------------------------

def builtin_form(saved: DataConfig) -> tuple[str, dict[str, Any]]:
    """A built-in dataset (the multi-label ones last), its description and source, and its
    parameters: (name, params)."""
    names = DATASETS.names() + MULTILABEL_DATASETS.names()
    default = saved.source if saved.source in names else "digits"
    registry = {n: DATASETS for n in DATASETS.names()} | {n: MULTILABEL_DATASETS for n in MULTILABEL_DATASETS.names()}
    name = st.selectbox("Dataset", names, key=starting_value("data.builtin", default),
                        format_func=lambda n: registry[n].info(n).label + (" (several labels per case)" if registry[n]
                                                                          is MULTILABEL_DATASETS else ""))
    info = registry[name].info(name)
    st.caption(info.description)
    if info.paper:
        st.caption(f"Source: {info.paper}")
    params = {}
    if info.params.model_fields:
        with st.expander("Dataset parameters", expanded=True):
            params = params_form(info, "data.params")
    return name, params


def upload_form(saved: DataConfig) -> tuple[str, str | None, dict[str, str], str]:
    """An upload (or the one uploaded earlier) and, for a table, its label column, column roles
    and gap policy: (source, label column, role overrides, missing policy). Stops the page
    with what to do while there is no usable file or no label column yet."""
    upload_source = st.session_state.get(state.UPLOAD_SOURCE) or (
        saved.source if saved.source.startswith(UPLOAD_PREFIX) else None)
    st.caption("A table (.csv, .tsv or .parquet, as Excel or a clinic system exports it) with one label column "
               "(or several labels per case: a column listing them, or one 0/1 column per finding); "
               "a .zip of images in one folder per "
               "class (cat/001.png, dog/002.png), or with a labels.csv (columns file and labels, several labels per picture "
               "separated by |, ; or ,); or an .npz with x_train, y_train (and optionally "
               "x_test, y_test; MedMNIST names work too; a 2-D y of 0/1 is read as several labels per case).")
    uploaded = st.file_uploader("Upload a file", type=UPLOAD_TYPES, key="data.upload")
    st.download_button("No file at hand? Download a sample table", SAMPLE_TABLE.read_bytes(),
                       file_name=SAMPLE_TABLE.name, mime="text/csv", type="tertiary",
                       icon=":material/download:", on_click="ignore",
                       help="404 synthetic rows: four measurements, a site and a label with four classes "
                            "from 240 'common' down to 14 'rare' rows. Upload it back here to try the workbench.")
    if uploaded is not None:
        try:
            upload_source = open_upload(uploaded.getvalue(), uploaded.name)
            st.session_state[state.UPLOAD_SOURCE] = upload_source
        except DataError as exc:
            st.error(md(exc))
            stored_uploads_panel()
            st.stop()
    if not upload_source:
        st.info("Upload a file to continue, or choose a built-in dataset.")
        stored_uploads_panel()
        st.stop()
    if uploaded is None:
        st.caption(f"In use: **{md(source_label(upload_source))}**, uploaded earlier. Upload another file to replace it.")
    start_new_upload(upload_source, saved)
    if not is_table_upload(upload_source):
        return upload_source, None, {}, "refuse"
    try:
        label_column, roles, missing, _ = table_settings(upload_source, saved)
    except DataError as exc:
        st.error(md(exc))
        st.stop()
    if label_column is None:
        st.info("Choose the label column to continue.")
        st.stop()
    return upload_source, label_column, roles, missing


def imbalance_cards(preview: dict[str, Any], profile: str, ratio: float) -> None:
    """Training samples, the imbalance ratio (against before the profile) and the number of
    head, medium and tail classes, as cards."""
    m = st.columns(5)
    m[0].metric("Training samples", f"{preview['total_after']:,}",
                delta=f"{preview['total_after'] - preview['total_before']:,} removed".lstrip("-")
                if profile != "none" else None, delta_color="off", delta_arrow="off")
    asked = f" You asked for {ratio:g}; small classes round down to whole samples." if profile != "none" else ""
    m[1].metric("Imbalance ratio", f"{preview['ratio_after']:.1f}",
                help=f"Largest ÷ smallest class, in training.{asked}",
                delta=f"{preview['ratio_after'] - preview['ratio_before']:+.1f}" if profile != "none" else None,
                delta_color="off", delta_arrow="off", delta_description="vs. before" if profile != "none" else None)
    for col, group in zip(m[2:], ("head", "medium", "tail")):
        col.metric(f"{group.capitalize()} classes", preview["group_classes"][group],
                   help=f"{preview['group_counts'][group]:,} training samples in {group} classes")

def split_settings_form(saved: DataConfig, *, has_test_split: bool) -> dict[str, Any]:
    """Seed, split fractions and head/tail thresholds (DataConfig fields), in an expander."""
    with st.expander("Split and group settings"):
        s = st.columns(5)
        seed = int(s[0].number_input("Seed", 0, 2**31 - 1, key=starting_value("data.seed", saved.seed),
                                     help="Seeds the split, the subsampling and a random class order."))
        test_fraction = s[1].number_input("Test fraction", 0.05, 0.8, step=0.05,
                                          key=starting_value("data.test_fraction", saved.test_fraction),
                                          disabled=has_test_split,
                                          help="Ignored when the data ships its own test split.")
        val_fraction = s[2].number_input("Validation fraction", 0.05, 0.45, step=0.05,
                                         key=starting_value("data.val_fraction", saved.val_fraction))
        many = int(s[3].number_input("Head: more than", 1, 100_000, key=starting_value("data.many", saved.many_shot),
                                     help="Classes with more training samples than this are head classes."))
        few = int(s[4].number_input("Tail: fewer than", 1, many,
                                    key=starting_value("data.few", min(saved.few_shot, many)),
                                    help="Classes with fewer training samples than this are tail classes. On small "
                                         "data, when every class falls in one group, the top, middle and bottom "
                                         "thirds of classes are used instead."))
    return {"seed": seed, "test_fraction": test_fraction, "val_fraction": val_fraction, "many_shot": many,
            "few_shot": few}


def _label_column(source: str, saved: DataConfig, guess: TableProfile) -> str | None:
    """The label column picker, with the guess and why; None until one is chosen."""
    columns = table_columns(source)
    default = saved.label_column if saved.source == source and saved.label_column in columns else guess.label
    label = st.selectbox("Label column (the class to predict)", columns,
                         key=starting_value("data.label_column", default if default in columns else None),
                         placeholder="Choose the column that names the class",
                         help="The column with the diagnosis, outcome or group the model should learn to predict.")
    if guess.label is None:
        st.caption(f"No column looks like a class label ({guess.label_reason}); choose it here.")
    elif label == guess.label:
        st.caption(f"Guessed **{md(guess.label)}**: {guess.label_reason}. Pick another column if that is wrong.")
    else:
        st.caption(f"Your choice; the guess was **{md(guess.label)}** ({guess.label_reason}).")
    return label


def _roles_editor(profile: TableProfile, key: str, source: str, roles_store: dict) -> None:
    with st.expander(f"Columns: {len(profile.used)} used as features, {len(profile.left_out)} left out", expanded=True):
        st.caption("What each column seems to be, and why. If a role is wrong, pick the column under **Change a "
                   "role** below the table and click its new role; the label is chosen above.")
        st.data_editor(roles_frame(profile), key=key, hide_index=True, width="stretch",
                       height=table_height(len(profile.columns), 460),
                       disabled=["Column", "Used", "Why", "Gaps"], column_config={
                           "Role": st.column_config.SelectboxColumn(
                               options=ROLE_CHOICES, required=True, help=ROLE_PICK_HELP + " Double-click to change."),
                           "Why": st.column_config.TextColumn(width="medium"),
                           "Gaps": st.column_config.TextColumn(width="medium", help=MISSING_HELP)})
        _role_picker(profile, source, roles_store)
        st.caption(left_out_line(profile))


ROLE_PICK_HELP = ("number: a measurement; category: named groups; date: days since 1970; ID-like, free text, constant "
                  "and left out are not used.")


def _role_picker(profile: TableProfile, source: str, roles_store: dict) -> None:
    """One column and one click on its new role: the roles table's cells need a double-click,
    which few people find. The change goes into the overrides, and the table is drawn anew."""
    names = [c.name for c in profile.columns if c.role != "label"]
    column = st.columns([2, 3])[0].selectbox("Change a role", names, index=None, key="data.role_column",
                                             placeholder="Choose a column",
                                             help="Pick a column, then click the role it should have.")
    if column not in names:
        return
    current = profile.column(column)
    choices = [r for r in ROLE_LABELS if r != "label"]

    def apply(pick_key: str) -> None:
        role = _ROLE_BY_LABEL.get(st.session_state.get(pick_key))
        if role is None:
            return
        overrides = dict(roles_store.get(source, {}))
        if role == current.detected:
            overrides.pop(column, None)
        else:
            overrides[column] = role
        roles_store[source] = overrides
        versions = st.session_state.setdefault(_ROLES_VERSION, {})
        versions[source] = versions.get(source, 0) + 1  # a fresh roles table: its old cell edits are in the overrides

    pick_key = f"roles.pick.{names.index(column)}.{current.role}"
    st.pills(options=[ROLE_LABELS[r] for r in choices], default=ROLE_LABELS[current.role], key=pick_key,
             on_change=apply, args=(pick_key,), help=ROLE_PICK_HELP,
             **read_as_written(f"Role of {column}", f"Role of {md(column)}"))  # the file's own column name


_ROLE_BY_LABEL = {label: role for role, label in ROLE_LABELS.items()}
_ROLES_VERSION = "tailscope.roles_version"  # per upload: bumped when the picker changes a role


def table_settings(source: str, saved: DataConfig) -> tuple[str | None, dict[str, str], str, TableProfile]:
    """Label column, the column-roles table and the gap policy of an uploaded table:
    (label, role overrides, missing policy, profile). The label is None until chosen."""
    raw = raw_table(source)
    for note in raw.notes:
        st.info(md(note), icon=":material/info:")
    same = saved.source == source
    guess = table_profile(source)
    label = _label_column(source, saved, guess)
    if label is None:
        return None, {}, saved.missing, guess
    roles_store = st.session_state.setdefault(state.COLUMN_ROLES, {})
    current = roles_store.get(source, dict(saved.column_roles) if same else {})
    version = st.session_state.get(_ROLES_VERSION, {}).get(source, 0)
    key = f"data_roles_{hashlib.sha256(source.encode()).hexdigest()[:10]}_{version}"  # one roles editor per upload
    before = table_profile(source, label, {k: v for k, v in current.items() if k != label})
    edits = (st.session_state.get(key) or {}).get("edited_rows", {})
    overrides = {k: v for k, v in apply_role_edits(before, current, edits).items() if k != label}
    roles_store[source] = overrides
    profile = table_profile(source, label, overrides)
    _roles_editor(profile, key, source, roles_store)
    missing = saved.missing if same else "refuse"
    if profile.gap_cells or len(profile.label_missing_rows):
        st.warning(gaps_line(profile), icon=":material/warning:")
        cost = _drop_cost(raw, profile, merge_choice(source, saved))
        options = missing_options(profile, cost)
        start = saved.missing if same and saved.missing != "refuse" else "fill"
        missing = st.radio("Empty or unusable cells", list(options), format_func=options.get, key="data.missing",
                           index=list(options).index(start), help=MISSING_HELP)
        if cost is not None and profile.gap_cells:
            drop_cost_panel(cost)
    return label, overrides, missing, profile


def _drop_cost(raw: RawTable, profile: TableProfile, merge: bool | None) -> DropCost | None:
    """What dropping the rows with a gap costs each class, counted as the run would count the
    classes (merged spellings merged); None when the labels cannot be counted yet."""
    labels = raw.frame[profile.label]
    if merge:
        labels = pd.Series(merge_label_variants(labels, True, raw.filename, "labels")[0], index=labels.index)
    try:
        return drop_cost(profile, labels)
    except ValueError:  # no labelled row at all: the load below names that
        return None


def start_new_upload(source: str, saved: DataConfig) -> None:
    """A newly uploaded file starts at profile "none" (its real class sizes) with its own
    label guess; the profile that was in the form is offered instead of applied."""
    if st.session_state.get(state.DATA_SOURCE_SHOWN) == source:
        return
    st.session_state[state.DATA_SOURCE_SHOWN] = source
    st.session_state.pop(MERGE_KEY, None)  # each file's labels get their own choice
    if not source.startswith(UPLOAD_PREFIX) or saved.source == source:
        return
    im = saved.imbalance
    before = {"profile": st.session_state.get("data.profile", im.profile),
              "ratio": float(st.session_state.get("data.ratio", im.ratio)),
              "mu": float(st.session_state.get("data.mu", im.mu))}
    if before["profile"] != "none" and _chosen_by_person(before):  # else keep what an earlier upload offered
        st.session_state[state.PROFILE_OFFER] = before
    st.session_state["data.profile"] = "none"
    for key in ("data.label_column", "data.missing", "data.order", "data.custom_order",  # and how its labels read:
                "data.ml_layout", "data.ml_separator", "data.ml_columns", "data.ml_profile", "data.ml_ratio",
                "data.ml_hide"):  # found again in the new file, never carried over from the last one
        st.session_state.pop(key, None)


def _chosen_by_person(profile: dict) -> bool:
    """Whether a profile is the person's own: they saved a dataset choice, or the form differs
    from the built-in default. The default alone (a first-time uploader's) is nothing to offer."""
    if st.session_state.get(state.DATA_CONFIG):
        return True
    default = current_data_config(None).imbalance
    return (profile["profile"], profile["ratio"], profile["mu"]) != (default.profile, float(default.ratio),
                                                                    float(default.mu))


def offer_last_profile(column) -> None:
    """A button that applies the profile a new upload did not inherit."""
    offer = st.session_state.get(state.PROFILE_OFFER)
    if not offer or st.session_state.get("data.profile") != "none":
        return

    def apply() -> None:
        st.session_state.update({"data.profile": offer["profile"], "data.ratio": min(offer["ratio"], 200.0),
                                 "data.mu": offer["mu"]})
        st.session_state[state.PROFILE_OFFER] = None

    column.button(f"Use my last profile ({offer['profile']}, ratio {offer['ratio']:g})", on_click=apply,
                  key="offer.apply_profile", type="tertiary", icon=":material/history:",
                  help="A new upload starts with the class sizes it really has; this brings back the profile "
                       "you had before.")


def upload_usage() -> pd.DataFrame:
    """Stored uploads with the runs that use them (the Data page's current choice counts too)."""
    from app.services import get_store

    users: dict[str, int] = {}
    for record in get_store().list_runs():
        for src in sources_of(record.config):
            users[src] = users.get(src, 0) + 1
    chosen = {(st.session_state.get(state.DATA_CONFIG) or {}).get("source"), st.session_state.get(state.UPLOAD_SOURCE)}
    return pd.DataFrame([{"file": u.name, "size (MB)": round(u.size / 1024**2, 2),
                          "stored": pd.Timestamp(u.modified, unit="s").strftime("%Y-%m-%d %H:%M"),
                          "runs using it": users.get(u.source, 0), "in use here": u.source in chosen,
                          "source": u.source} for u in list_uploads()],
                        columns=["file", "size (MB)", "stored", "runs using it", "in use here", "source"])


def stored_uploads_panel() -> None:
    """Stored uploads, which runs use them, and a button that removes the ones nothing uses."""
    usage = upload_usage()
    if usage.empty:
        return
    unused = usage[(usage["runs using it"] == 0) & ~usage["in use here"]]
    with st.expander(f"Stored uploads: {len(usage)} file{'s' if len(usage) != 1 else ''}, "
                     f"{usage['size (MB)'].sum():.1f} MB"):
        st.dataframe(usage.drop(columns="source"), hide_index=True, width="stretch",
                     height=table_height(len(usage), 250))
        st.caption("Every uploaded file is kept once, so runs can be repeated on exactly the same data.")
        if len(unused) and st.button(f"Remove the {len(unused)} upload{'s' if len(unused) != 1 else ''} no run uses "
                                     f"({unused['size (MB)'].sum():.1f} MB)", key="uploads.remove_unused",
                                     icon=":material/delete:",
                                     help="Files that no run refers to and that this page is not using."):
            for src in unused["source"]:
                remove_upload(src)
            st.rerun()


def save_panel(chosen: dict[str, Any], label: str) -> None:
    """The Data page's last step, for every kind of data: says the Train page uses `chosen`,
    or saves it on "Use this dataset for training"; then the way to the Train page."""
    if st.session_state.get(state.DATA_CONFIG) == chosen:
        st.success(f"The Train page uses this dataset: {md(label)}.")
    elif st.button("Use this dataset for training", type="primary", key="data.save"):
        save_data_choice(chosen)
        flash(f"Saved. The Train page now uses {md(label)}.")
        st.rerun()
    st.page_link("../pages/train.py", label="Go to training", icon="🏋️")
