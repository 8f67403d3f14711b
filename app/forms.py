"""Form helpers for the Data and Train pages.

Data: store an upload, preview it, and preview what an imbalance profile does to the
training split (exactly the split a run will use). Train: turn the registries into
widgets with no per-method code, and the chosen values into a validated RunConfig or a
one-line reason why it cannot run. Pure helpers first (tests call them directly), the
Streamlit pieces (cached loading, plug-in pickers) at the end.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any, get_args

import numpy as np
import pandas as pd
import streamlit as st
from pydantic import ValidationError

from app import state
from app.services import ASSETS, DEFAULT_DATA, load_splits, start_sweep_in_background
from app.widgets import flash, loss_schedule_form, params_form, plugin_caption, table_height
from core.analysis import resampling_view
from core.config import DataConfig, RunConfig, TrainConfig, format_validation_error
from core.data import (
    ROLE_LABELS, UPLOAD_PREFIX, Dataset, DataError, RawTable, TableProfile, class_statistics, list_uploads, sources_of,
    keep_if_accepted, load_data, profile_table, read_stored_table, remove_upload, save_upload, source_label,
    split_data, upload_path,
)
from core.glossary import method_display, plugin_label
from core.jobs import SweepRefused, SweepSpec, expand_sweep, load_sweep
from core.methods import resample
from core.registry import Registry, registry_for
from core.text import md
from core.train import run_problems
from core.viz import resampling_figure

__all__ = [
    "DEFAULT_DATA", "SAMPLE_TABLE", "CLASS_ORDERS", "TABLE_SUFFIXES", "UPLOAD_TYPES", "TRAIN_EXPLAINER",
    "current_data_config", "data_label", "store_upload", "stored_upload_path", "is_table_upload", "table_columns",
    "table_preview", "dataset_preview", "class_order", "imbalance_preview", "describe_profile", "split_settings_form", "build_run_config",
    "ROLE_CHOICES", "natural_ratio", "open_upload", "raw_table", "table_profile", "roles_frame", "apply_role_edits",
    "left_out_line", "missing_options", "gaps_line", "table_settings", "upload_usage", "stored_uploads_panel",
    "start_new_upload", "offer_last_profile",
    "default_run_name", "progress_text", "format_seconds", "load_dataset", "resampling_preview", "resampling_panel",
    "plugin_caption", "plugin_picker", "loss_schedule_form", "train_settings_form", "evaluation_form", "BASELINES", "baseline_configs", "budget_text",
    "STANDARD_FIXES", "standard_fixes_spec", "sweep_size", "standard_fixes_button",
]

CLASS_ORDERS = ("as is", "reversed", "random (seeded)", "custom")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet")
UPLOAD_TYPES = ["csv", "tsv", "txt", "parquet", "zip", "npz"]
SAMPLE_TABLE = ASSETS / "sample-table.csv"  # synthetic, offered for a first upload

TRAIN_EXPLAINER = """
**Three places to push back against imbalance**

- **Loss**: how much each mistake costs. Plain cross-entropy treats every example alike, so
  the common classes dominate. Imbalance losses make mistakes on rare classes cost more
  (weights), ask rare classes to win by a wider margin (LDAM), or correct for how often each
  class appears (balanced softmax, logit adjustment). *DRW* switches the re-weighting on only
  late in training, after the features have been learned.
- **Sampler**: how often each class is shown. Instance sampling shows every example once per
  epoch; class-balanced sampling shows every class equally often, repeating rare examples.
- **Two-stage fix**: train normally first, then re-balance only the classifier (the final layer) on the frozen
  features (cRT, LWS, tau-norm). It costs seconds and often helps the tail the most.

Compare a run with plain cross-entropy and one with a fix to see what changed.
"""


# --- data ---------------------------------------------------------------------------------

ROLE_CHOICES = [ROLE_LABELS[r] for r in ("label", "numeric", "categorical", "date", "id", "text", "constant", "ignore")]
_ROLE_OF_LABEL = {label: role for role, label in ROLE_LABELS.items()}
MISSING_HELP = ("Empty cells, text in a number column, and numbers that are infinite or too large for training. "
                "Filling uses only the training rows, so nothing about the test rows leaks into training.")


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
        else:
            load_dataset(DataConfig(source=source))

    return keep_if_accepted(data, filename, read)


def stored_upload_path(source: str):
    return upload_path(source)


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


def roles_frame(profile: TableProfile) -> pd.DataFrame:
    """One row per column for the roles editor: role, whether it is used, why, gaps."""
    return pd.DataFrame({
        "Column": [c.name for c in profile.columns],
        "Role": [ROLE_LABELS[c.role] for c in profile.columns],
        "Used": ["label" if c.role == "label" else "✓ feature" if c.used else "left out" for c in profile.columns],
        "Why": [c.reason for c in profile.columns],
        "Gaps": [_gap_text(c) for c in profile.columns],
    })


def _gap_text(column) -> str:
    """'33 empty, 1 not a number (e.g. 'n/a?')' for a used column; blank otherwise."""
    if not column.used:
        return ""
    unusable = "not a date" if column.role == "date" else "not a number"
    parts = [f"{n:,} {what}" for n, what in ((column.empty, "empty"), (column.unusable, unusable),
                                               (column.non_finite, "infinite or too large")) if n]
    example = f" (e.g. {column.examples[0]})" if column.examples else ""
    return ", ".join(parts) + example if parts else "none"


def apply_role_edits(profile: TableProfile, current: dict[str, str], edited_rows: dict) -> dict[str, str]:
    """The roles editor's cell edits (row -> {"Role": label}) on top of `current`; a role
    set back to the detected one is no longer an override; the label row is fixed."""
    overrides = dict(current)
    for row, change in edited_rows.items():
        role = _ROLE_OF_LABEL.get((change or {}).get("Role"))
        if role is None or not 0 <= int(row) < len(profile.columns):
            continue
        column = profile.columns[int(row)]
        if column.role == "label" or role == "label":
            continue
        if role == column.detected:
            overrides.pop(column.name, None)
        else:
            overrides[column.name] = role
    return overrides


def left_out_line(profile: TableProfile) -> str:
    """Which columns are not features, in one line of markdown."""
    left = profile.left_out
    if not left:
        return "Every column except the label is used as a feature."
    names = ", ".join(f"**{md(c.name)}** ({ROLE_LABELS[c.role]})" for c in left[:6]) + (
        f" and {len(left) - 6} more" if len(left) > 6 else "")
    return (f"Left out of the features: {names}. ID-like, free-text and constant columns cannot help tell classes "
            "apart (or only by accident); set a role to number or category to use one anyway.")


def missing_options(profile: TableProfile) -> dict[str, str]:
    """The three ways to handle gaps, each with the number of rows or cells it touches."""
    rows = int((profile.gap_mask() | np.isin(np.arange(profile.rows), profile.label_missing_rows)).sum())
    cells = profile.gap_cells
    no_label = len(profile.label_missing_rows)
    extra = f"; the {no_label} row{'s' if no_label != 1 else ''} without a label are left out" if no_label else ""
    return {
        "fill": f"Fill the {cells:,} gap{'s' if cells != 1 else ''}: the median for numbers, the most frequent value "
                f"for categories, learned from the training rows{extra}",
        "drop": f"Drop the {rows:,} row{'s' if rows != 1 else ''} with a gap "
                f"({rows / max(profile.rows, 1):.1%} of the table)",
        "refuse": "Refuse the file: I will fix it and upload it again",
    }


def gaps_line(profile: TableProfile) -> str:
    """How many cells are missing or unusable, in which columns (markdown)."""
    bad = sorted((c for c in profile.used if c.gaps), key=lambda c: -c.gaps)
    parts = [f"{md(c.name)} {c.gaps:,}" for c in bad[:5]] + ([f"{len(bad) - 5} more columns"] if len(bad) > 5 else [])
    no_label = len(profile.label_missing_rows)
    label = f"{no_label:,} row{'s' if no_label != 1 else ''} without a label" if no_label else ""
    n = profile.gap_cells
    cells = f"{n:,} cell{'s are' if n != 1 else ' is'} empty or unusable ({', '.join(parts)})" if bad else ""
    return " and ".join(p for p in (cells, label) if p) + ". Choose what to do with them:"


def dataset_preview(dataset: Dataset, rows: int = 100) -> pd.DataFrame:
    """The first rows of a table dataset, with its label as class names."""
    names = list(dataset.feature_names or [f"f{i}" for i in range(dataset.x.shape[1])])
    frame = pd.DataFrame(dataset.x[:rows], columns=names)
    frame.insert(0, "label", [dataset.class_names[i] for i in dataset.y[:rows]])
    return frame


def class_order(choice: str, k: int, seed: int = 0, custom: Sequence[int] = ()) -> list[int] | None:
    """Class indices from head to tail for an order choice (None: as given).

    `custom` lists the classes the user put first; the others follow in index order.
    """
    if choice == "as is":
        return None
    if choice == "reversed":
        return list(range(k))[::-1]
    if choice == "random (seeded)":
        return np.random.default_rng(seed).permutation(k).tolist()
    if choice == "custom":
        first = [int(c) for c in dict.fromkeys(custom) if 0 <= int(c) < k]
        return first + [c for c in range(k) if c not in first]
    raise ValueError(f"unknown class order {choice!r}; choose one of {', '.join(CLASS_ORDERS)}")


def _labels_only(dataset: Dataset) -> Dataset:
    """The dataset's labels with one dummy feature: splits depend on labels and seed only."""
    test = None if dataset.y_test is None else np.zeros((len(dataset.y_test), 1), np.float32)
    return Dataset(dataset.name, np.zeros((len(dataset.y), 1), np.float32), dataset.y, dataset.class_names,
                   "tabular", x_test=test, y_test=dataset.y_test)


def imbalance_preview(dataset: Dataset, data: DataConfig) -> dict[str, Any]:
    """Training counts before/after the profile (the exact split a run will use), groups
    and summary numbers, without copying the feature arrays."""
    splits = split_data(_labels_only(dataset), data.model_copy(update={"label_noise": None, "unlabeled": None}))
    before, after = splits.counts_before, splits.class_counts
    stats = class_statistics(after, dataset.class_names, many=data.many_shot, few=data.few_shot)
    group_classes = {g: sum(1 for x in stats["groups"] if x == g) for g in ("head", "medium", "tail")}
    return {
        "counts_before": before.tolist(), "counts_after": after.tolist(), "class_names": list(dataset.class_names),
        "groups": stats["groups"], "ratio_after": stats["imbalance_ratio"],
        "ratio_before": class_statistics(before)["imbalance_ratio"], "total_before": int(before.sum()),
        "total_after": stats["total"], "group_counts": stats["group_counts"], "group_classes": group_classes,
        "n_val": len(splits.y_val), "n_test": len(splits.y_test),
    }


def describe_profile(profile: str, ratio: float, mu: float, k: int, achieved: float | None = None,
                     natural: float | None = None) -> str:
    """What a profile does, in plain words. `achieved` is the ratio the training split really
    gets (whole samples round it), so the text and the numbers beside it agree."""
    if profile == "none":
        real = f" Here the largest class has **{natural:.0f} times** as many training examples as the smallest." \
            if natural is not None and natural >= 1.5 else ""
        return ("**No profile**: the training data keeps the class sizes it came with, so you see how the model "
                f"does on the imbalance the data really has.{real}")
    shown = ratio if achieved is None or abs(achieved - ratio) < 0.5 else achieved
    rare = f"the rarest class keeps about 1/{shown:.0f} as many examples as the most common one"
    if shown != ratio:
        rare += f" (you asked for 1/{ratio:g}; with this few examples the counts round to whole samples)"
    if profile == "exp":
        return (f"**Exponential** (as in the long-tail papers): each class keeps a fixed fraction of the "
                f"examples of the class before it, so a few classes stay large and many become small; {rare}.")
    if profile == "linear":
        return (f"**Linear**: class sizes go down in equal steps from the most common class to the rarest; "
                f"{rare}.")
    if profile == "step":
        n_min = int(round(mu * k))
        return (f"**Step**: {k - n_min} classes keep all their examples and the other {n_min} "
                f"(a fraction mu = {mu:g}) become rare at once; {rare}.")
    raise ValueError(f"unknown profile {profile!r}")


# --- data: Streamlit pieces ---------------------------------------------------------------

def table_settings(source: str, saved: DataConfig) -> tuple[str | None, dict[str, str], str, TableProfile]:
    """Label column, the column-roles table and the gap policy of an uploaded table:
    (label, role overrides, missing policy, profile). The label is None until chosen."""
    raw = raw_table(source)
    for note in raw.notes:
        st.info(md(note), icon=":material/info:")
    same = saved.source == source
    guess = table_profile(source)
    columns = table_columns(source)
    default = saved.label_column if same and saved.label_column in columns else guess.label
    label = st.selectbox("Label column (the class to predict)", columns, key="data.label_column",
                         index=columns.index(default) if default in columns else None,
                         placeholder="Choose the column that names the class",
                         help="The column with the diagnosis, outcome or group the model should learn to predict.")
    if guess.label is None:
        st.caption(f"No column looks like a class label ({guess.label_reason}); choose it here.")
    elif label == guess.label:
        st.caption(f"Guessed **{md(guess.label)}**: {guess.label_reason}. Pick another column if that is wrong.")
    else:
        st.caption(f"Your choice; the guess was **{md(guess.label)}** ({guess.label_reason}).")
    if label is None:
        return None, {}, saved.missing, guess
    roles_store = st.session_state.setdefault(state.COLUMN_ROLES, {})
    current = roles_store.get(source, dict(saved.column_roles) if same else {})
    key = f"data_roles_{hashlib.sha256(source.encode()).hexdigest()[:10]}"  # one roles editor per upload
    before = table_profile(source, label, {k: v for k, v in current.items() if k != label})
    edits = (st.session_state.get(key) or {}).get("edited_rows", {})
    overrides = {k: v for k, v in apply_role_edits(before, current, edits).items() if k != label}
    roles_store[source] = overrides
    profile = table_profile(source, label, overrides)
    with st.expander(f"Columns: {len(profile.used)} used as features, {len(profile.left_out)} left out", expanded=True):
        st.caption("What each column seems to be, and why. If a role is wrong, click it in the **Role** column and "
                   "pick another; the label is chosen above.")
        st.data_editor(roles_frame(profile), key=key, hide_index=True, width="stretch",
                       height=table_height(len(profile.columns), 460),
                       disabled=["Column", "Used", "Why", "Gaps"], column_config={
                           "Role": st.column_config.SelectboxColumn(
                               options=ROLE_CHOICES, required=True,
                               help="number: a measurement; category: named groups; date: days since 1970; "
                                    "ID-like, free text, constant and left out are not used."),
                           "Why": st.column_config.TextColumn(width="medium"),
                           "Gaps": st.column_config.TextColumn(width="medium", help=MISSING_HELP)})
        st.caption(left_out_line(profile))
    missing = saved.missing if same else "refuse"
    if profile.gap_cells or len(profile.label_missing_rows):
        st.warning(gaps_line(profile), icon=":material/warning:")
        options = missing_options(profile)
        start = saved.missing if same and saved.missing != "refuse" else "fill"
        missing = st.radio("Empty or unusable cells", list(options), format_func=options.get, key="data.missing",
                           index=list(options).index(start), help=MISSING_HELP)
    return label, overrides, missing, profile


def start_new_upload(source: str, saved: DataConfig) -> None:
    """A newly uploaded file starts at profile "none" (its real class sizes) with its own
    label guess; the profile that was in the form is offered instead of applied."""
    if st.session_state.get(state.DATA_SOURCE_SHOWN) == source:
        return
    st.session_state[state.DATA_SOURCE_SHOWN] = source
    if not source.startswith(UPLOAD_PREFIX) or saved.source == source:
        return
    im = saved.imbalance
    before = {"profile": st.session_state.get("data.profile", im.profile),
              "ratio": float(st.session_state.get("data.ratio", im.ratio)),
              "mu": float(st.session_state.get("data.mu", im.mu))}
    if before["profile"] != "none":  # else keep what an earlier upload offered
        st.session_state[state.PROFILE_OFFER] = before
    st.session_state["data.profile"] = "none"
    for key in ("data.label_column", "data.missing", "data.order", "data.custom_order"):
        st.session_state.pop(key, None)


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


# --- train --------------------------------------------------------------------------------

def default_run_name(config: RunConfig) -> str:
    data = config.data
    source = source_label(data.source)
    imb = data.imbalance
    profile = "" if imb.profile == "none" else f" {imb.profile}{imb.ratio:g}"
    model, method = plugin_label("model", config.model.name), method_display(config)
    name = f"{source}{profile} · {model}" + ("" if method == model else f" · {method}")
    if data.label_noise is not None:
        name += f" · {data.label_noise.name} noise {data.label_noise.rate:.0%}"
    if data.unlabeled is not None and data.unlabeled.fraction > 0:
        name += f" · {data.unlabeled.fraction:.0%} unlabelled"
    return f"{name} · {_evaluation_words(config)}" if config.evaluation.is_experiment else name


def build_run_config(raw: dict[str, Any], dataset: Dataset) -> tuple[RunConfig | None, str | None]:
    """(config, None) when it can run, else (None, the reason in one line)."""
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        return None, format_validation_error(exc)
    labels = None  # the cached training split, not a fresh one on every rerun
    if config.resampler and dataset.modality == "tabular":
        try:
            labels = load_splits(config.data).y_train
        except ValueError:  # e.g. a bad class order: run_problems names it
            pass
    problems = run_problems(config, dataset, train_labels=labels)
    if problems:
        return None, "; ".join(problems)
    if not config.name.strip():
        config = config.model_copy(update={"name": default_run_name(config)})
    return config, None


BASELINES = ("logistic_regression", "balanced_random_forest", "hist_gradient_boosting")


def baseline_configs(config: RunConfig) -> list[RunConfig]:
    """The table baselines on the same data, splits, folds and seeds as `config`: the
    classic answers a deep fix has to beat."""
    raw = json.loads(config.to_json())
    for section in ("loss", "sampler", "resampler", "stage2"):
        raw.pop(section, None)
    name = source_label(config.data.source)
    return [RunConfig.model_validate({**raw, "model": {"name": model}, "name": f"{name} · {model} (baseline)"})
            for model in BASELINES]


# The standard fixes for imbalance, as one sweep axis `method`: label -> dotted settings
# changed from plain training. "ce" is the reference every other method is compared with.
STANDARD_FIXES: dict[str, dict[str, Any]] = {
    "ce": {},
    "weighted_ce": {"loss.name": "weighted_ce"},
    "class_balanced": {"sampler.name": "class_balanced"},
    "crt": {"stage2.name": "crt"},
    "balanced_softmax": {"loss.name": "balanced_softmax"},  # = logit adjustment (tau 1): the same loss, trained once
    "ldam_drw": {"loss.name": "ldam"},  # drw_epoch: 80 % of the epochs, as the paper
}
FIXES_SEEDS = 6  # seeds per method when the form asks for one: the fewest whose exact paired test can reach p < 0.05


def standard_fixes_spec(config: RunConfig, modality: str) -> SweepSpec:
    """Plain cross-entropy, the five standard fixes and (on tables) the three classic
    baselines, on this config's data, model, training settings and folds, over matched seeds
    (the form's seeds, or FIXES_SEEDS from its seed): one sweep with one axis, `method`."""
    from core.models import is_baseline

    raw = json.loads(config.to_json())
    for section in ("loss", "sampler", "resampler", "stage2", "posthoc"):
        raw.pop(section, None)
    if is_baseline(config.model.name):  # the fixes need a network: the page's default for this kind of data
        raw["model"] = {"name": "small_cnn" if modality == "image" else "mlp"}
    seed, folds = config.train.seed, config.evaluation.folds
    seeds = list(config.evaluation.seeds) if len(config.evaluation.seeds) > 1 or folds > 1 else \
        list(range(seed, seed + FIXES_SEEDS))  # folds on the form: they are the repeats
    raw["evaluation"] = {"folds": folds, "seeds": seeds}
    imb = config.data.imbalance
    profile = "" if imb.profile == "none" else f" {imb.profile}{imb.ratio:g}"
    raw["name"] = f"standard fixes · {source_label(config.data.source)}{profile} · {raw['model']['name']}"
    variants = {label: dict(patch) for label, patch in STANDARD_FIXES.items()}
    variants["ldam_drw"]["loss.drw_epoch"] = int(0.8 * config.train.epochs)
    if modality == "tabular":
        variants.update({model: {"model.name": model} for model in BASELINES})
    return load_sweep({**raw, "grid": {"method": variants}})


def sweep_size(spec: SweepSpec) -> tuple[int, int]:
    """(cells, trainings) of a sweep."""
    cells, _ = expand_sweep(spec)
    return len(cells), sum(len(c.config.experiment_runs()) for c in cells)


def budget_text(config: RunConfig, train_counts: Sequence[int] | None = None) -> str:
    """The optimiser steps a run will take, in words, and why small data gets more.
    `train_counts`: the rows per class training sees (default: the first run's split)."""
    from core.methods import create_sampler
    from core.models import is_baseline
    from core.train import step_plan

    runs = len(config.experiment_runs())
    trainings = f"{runs} trainings ({_evaluation_words(config)}), each" if runs > 1 else "One training"
    if is_baseline(config.model.name):
        return f"**Budget:** {trainings} fitted in one go on the training split (no epochs)."
    t = config.train
    if train_counts is None:
        train_counts = load_splits(config.experiment_runs()[0].data).class_counts
    sampler = create_sampler(config.sampler.name, config.sampler.params)
    epoch_length = int(round(float(sampler.expected_class_counts(np.asarray(train_counts), 0, t.epochs).sum())))
    plan = step_plan(epoch_length, t.batch_size, t.epochs, t.min_steps)
    plain = t.epochs * plan["batches_per_pass"]
    text = (f"**Budget:** {trainings} {t.epochs} epochs × {plan['batches_per_pass']} batch"
            f"{'es' if plan['batches_per_pass'] > 1 else ''} of up to {t.batch_size} rows = {plain} optimiser steps")
    if plan["passes_per_epoch"] > 1:
        text += (f", raised to **{plan['steps']} steps** ({plan['passes_per_epoch']} passes over the "
                 f"{epoch_length} training rows in each epoch) so the small training split is learned, not just "
                 f"glimpsed (minimum steps: {t.min_steps}).")
    else:
        text += "."
    return text


def _evaluation_words(config: RunConfig) -> str:
    ev = config.evaluation
    seeds = len(ev.seeds) or 1
    parts = ([f"{ev.folds} folds"] if ev.folds > 1 else []) + ([f"{seeds} seeds"] if seeds > 1 else [])
    return " × ".join(parts)


def format_seconds(seconds: float | None) -> str:
    if seconds is None or not np.isfinite(seconds):
        return "unknown"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def progress_text(progress: dict[str, Any] | None) -> str:
    """One line for a progress bar: stage, epoch and time left."""
    p = progress or {}
    stage = p.get("stage")
    phase = f"{p['phase']} · " if p.get("phase") else ""  # the rounds of semi-supervised training
    if stage is None:
        return "starting…"
    if stage == "train":
        eta = p.get("eta_s")
        left = f" · about {format_seconds(eta)} left" if eta is not None else ""
        return f"{phase}epoch {p.get('epoch', '?')} of {p.get('epochs', '?')}{left}"
    if stage == "pretrain":
        return f"pre-training on the inputs alone, without labels: epoch {p.get('epoch', '?')} of {p.get('epochs', '?')}"
    if stage == "evaluate":
        return "evaluating on the test set"
    if stage == "embedding":
        return "computing the feature map for the Geometry page"
    if stage == "done":
        return "finished"
    if stage == "submitted":
        return "handed to a sweep's worker; waiting for it to finish"
    return f"stage 2 ({stage}): epoch {p.get('epoch', '?')} of {p.get('epochs', '?')}"


# --- Streamlit pieces ---------------------------------------------------------------------

@st.cache_resource(show_spinner="Loading the data…", max_entries=8)
def _load(data_json: str) -> Dataset:
    """Shared, not copied per rerun (a 200,000-row table is large): treat it as read-only.
    An uploaded table is built from its one cached parse."""
    data = DataConfig.model_validate_json(data_json)
    return load_data(data, raw_table(data.source) if is_table_upload(data.source) else None)


def load_dataset(data: DataConfig) -> Dataset:
    """The data config's dataset (cached); raises DataError / ValueError with a readable message."""
    return _load(data.model_dump_json(include={"source", "params", "label_column", "column_roles", "missing"}))


@st.cache_data(show_spinner="Resampling the training rows…", max_entries=8)
def _resampling(data_json: str, name: str, params_json: str, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    splits = load_splits(DataConfig.model_validate_json(data_json))
    out = resample(name, splits.x_train, splits.y_train, json.loads(params_json), seed=seed)
    k = splits.num_classes
    counts = pd.DataFrame({
        "class": list(splits.class_names), "before": np.bincount(splits.y_train, minlength=k),
        "removed": np.bincount(splits.y_train[out.removed], minlength=k),
        "synthetic": np.bincount(out.y[out.synthetic], minlength=k), "after": np.bincount(out.y, minlength=k)})
    view = resampling_view(splits.x_train, splits.y_train, out.x, out.y, out.synthetic, out.removed, seed=seed)
    return view, counts


def resampling_preview(data: DataConfig, resampler: dict[str, Any], seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What the resampler does to this data's training split, exactly as a run would do it:
    (rows for `resampling_figure`, per-class counts before/removed/synthetic/after).
    Raises ValueError with the resampler's own reason when it cannot run on this data."""
    params = {k: v for k, v in resampler.items() if k != "name"}
    return _resampling(data.model_dump_json(), resampler["name"], json.dumps(params, sort_keys=True), seed)


def resampling_panel(data: DataConfig, resampler: dict[str, Any], class_names: Sequence[str],
                     seed: int) -> list[int] | None:
    """The chosen resampler's effect on the training rows: a picture and the counts.
    Returns the training counts after resampling (None when it cannot run)."""
    with st.expander(f"What {resampler['name']} does to the training rows", expanded=True):
        try:
            view, counts = resampling_preview(data, resampler, int(seed))
        except ValueError as exc:
            st.error(md(exc))
            return None
        st.plotly_chart(resampling_figure(view, class_names), width="stretch", key="train.resampling")
        st.dataframe(counts, hide_index=True, width="stretch", height=table_height(len(counts), 300))
        st.caption("Each dot is a training row, flattened onto its two main directions of variation. Open diamonds "
                   "are rows the resampler made up; crosses are real rows it threw away. Training then sees the "
                   "counts in the 'after' column. (Validation and test rows are never resampled.)")
    return counts["after"].astype(int).tolist()


def plugin_picker(label: str, registry: Registry | str, key: str, *, options: Sequence[str] | None = None,
                  optional: bool = False, default: str | None = None, help: str | None = None) -> dict | None:
    """A selectbox over a registry (or a kind of the table of kinds: "loss", "sampler", ...),
    the chosen entry's description and paper, and its parameter widgets. Returns
    `{"name": ..., **params}`, or None for "none"."""
    registry = registry_for(registry) if isinstance(registry, str) else registry
    names = list(options if options is not None else registry.names())
    if optional:
        names = ["none", *names]
    index = names.index(default) if default in names else 0
    name = st.selectbox(label, names, index=index, key=key, help=help,
                        format_func=lambda n: "none" if n == "none" else registry.info(n).label)
    if name == "none":
        return None
    info = registry.info(name)
    st.caption(plugin_caption(info))
    return {"name": name, **params_form(info, key)}


def _literal_options(field: str) -> list[str]:
    return list(get_args(TrainConfig.model_fields[field].annotation))


OPTIMISER_WORDS = {"sgd": "SGD with momentum", "adamw": "AdamW"}
PROFILE_WORDS = {"none": "none (as given)", "exp": "exponential", "step": "step", "linear": "linear"}


def train_settings_form(key: str) -> dict[str, Any]:
    """Optimiser, epochs, batch size, learning rate, seed and device up front, the schedule and
    the rest in an expander; TrainConfig's defaults."""
    d = {name: f.default for name, f in TrainConfig.model_fields.items()}
    c1, c2, c3 = st.columns(3)
    optimizer = c1.selectbox("Optimiser", _literal_options("optimizer"), key=f"{key}.optimizer",
                             format_func=lambda o: OPTIMISER_WORDS.get(o, o),
                             help="sgd: SGD with momentum (the long-tail papers' choice); adamw: Adam with weight decay.")
    epochs = c2.number_input("Epochs", 1, 10_000, d["epochs"], key=f"{key}.epochs",
                             help="Passes over the training data.")
    batch = c3.number_input("Batch size", 2, 65_536, d["batch_size"], key=f"{key}.batch_size")
    lr = c1.number_input("Learning rate", 1e-6, 10.0, d["lr"], format="%g", key=f"{key}.lr")
    seed = c2.number_input("Seed", 0, 2**31 - 1, d["seed"], key=f"{key}.seed",
                           help="Same settings and seed give the same result on the same device.")
    device = c3.selectbox("Device", _literal_options("device"), key=f"{key}.device",
                          help="auto: the GPU when there is one, else the CPU.")
    with st.expander("More training settings"):
        c1, c2, c3 = st.columns(3)
        schedule = c1.selectbox("Learning-rate schedule", _literal_options("schedule"), key=f"{key}.schedule",
                                help="cosine: smoothly down to zero; step: x step_gamma at 80 % and 90 % of "
                                     "training (the LDAM-DRW recipe); constant: never changes.")
        decay = c2.number_input("Weight decay", 0.0, 1.0, d["weight_decay"], format="%g", key=f"{key}.weight_decay",
                                help="Pulls weights toward zero; the long-tail papers use 2e-4 to 5e-4.")
        warmup = c3.number_input("Warm-up epochs", 0, 10_000, d["warmup_epochs"], key=f"{key}.warmup_epochs",
                                 help="Learning rate ramps up linearly over these first epochs.")
        augment = c1.selectbox("Augmentation", _literal_options("augment"), key=f"{key}.augment",
                               help="auto: random crops and flips for 32x32 images, none otherwise.")
        momentum = c2.number_input("Momentum (sgd)", 0.0, 0.999, d["momentum"], format="%g", key=f"{key}.momentum")
        min_steps = c3.number_input("Minimum optimiser steps", 0, 1_000_000, d["min_steps"], key=f"{key}.min_steps",
                                    help="Small training splits repeat within each epoch until training takes at "
                                         "least this many steps; 0 turns it off.")
        select = c1.selectbox("Keep the model of", _literal_options("select"), key=f"{key}.select",
                              format_func=lambda v: {"best": "the best epoch", "last": "the last epoch"}[v],
                              help="best: the epoch with the best validation balanced accuracy (its weights are "
                                   "kept and restored); last: whatever the final epoch gives.")
        patience = c2.number_input("Stop early after (epochs)", 0, 10_000, 0, key=f"{key}.patience",
                                   help="Stop when validation balanced accuracy has not improved for this many "
                                        "epochs; 0 never stops early.")
        deterministic = c3.checkbox("Bit-identical repeats", key=f"{key}.deterministic",
                                    help="Deterministic kernels: the same settings, seed, device and thread "
                                         "count give exactly the same numbers (a little slower on a GPU).")
    return {"optimizer": optimizer, "epochs": int(epochs), "batch_size": int(batch), "lr": float(lr),
            "seed": int(seed), "device": device, "schedule": schedule, "weight_decay": float(decay),
            "warmup_epochs": int(warmup), "augment": augment, "momentum": float(momentum),
            "min_steps": int(min_steps), "select": select, "patience": int(patience) or None,
            "deterministic": bool(deterministic)}


def evaluation_form(key: str, seed: int) -> dict[str, Any]:
    """Folds and seeds: how many trainings answer the question (EvaluationConfig)."""
    c1, c2 = st.columns(2)
    folds = int(c1.number_input("Repeat over folds", 1, 10, 1, key=f"{key}.folds",
                                help="1: one split, as set on the Data page. 5: five trainings, each tested on a "
                                     "different fifth of the data, so every sample is tested once and one lucky "
                                     "split cannot decide the result."))
    seeds = int(c2.number_input("Repeat over seeds", 1, 10, 1, key=f"{key}.seeds",
                                help="Train again with other random starts (seeds from the one above). With folds, "
                                     "each seed also reshuffles the folds."))
    return {"folds": folds, "seeds": list(range(seed, seed + seeds)) if seeds > 1 else []}


def split_settings_form(saved: DataConfig, *, has_test_split: bool) -> dict[str, Any]:
    """Seed, split fractions and head/tail thresholds (DataConfig fields), in an expander."""
    with st.expander("Split and group settings"):
        s = st.columns(5)
        seed = int(s[0].number_input("Seed", 0, 2**31 - 1, saved.seed, key="data.seed",
                                     help="Seeds the split, the subsampling and a random class order."))
        test_fraction = s[1].number_input("Test fraction", 0.05, 0.8, saved.test_fraction, step=0.05,
                                          key="data.test_fraction", disabled=has_test_split,
                                          help="Ignored when the data ships its own test split.")
        val_fraction = s[2].number_input("Validation fraction", 0.05, 0.45, saved.val_fraction, step=0.05,
                                         key="data.val_fraction")
        many = int(s[3].number_input("Head: more than", 1, 100_000, saved.many_shot, key="data.many",
                                     help="Classes with more training samples than this are head classes."))
        few = int(s[4].number_input("Tail: fewer than", 1, many, min(saved.few_shot, many), key="data.few",
                                    help="Classes with fewer training samples than this are tail classes. On small "
                                         "data, when every class falls in one group, the top, middle and bottom "
                                         "thirds of classes are used instead."))
    return {"seed": seed, "test_fraction": test_fraction, "val_fraction": val_fraction, "many_shot": many,
            "few_shot": few}


def standard_fixes_button(config: RunConfig | None, modality: str) -> None:
    """"Try the standard fixes": one sweep of plain cross-entropy, the standard fixes and (on
    tables) the baselines on the form's set-up, started in the background; then the Sweeps
    page opens on it. A normal button, not a fragment's: switching pages needs a full run."""
    spec = standard_fixes_spec(config, modality) if config is not None else None
    cells, runs = sweep_size(spec) if spec is not None else (0, 0)
    extra = " and the three classic table baselines" if modality == "tabular" else ""
    evaluation = spec.base["evaluation"] if spec is not None else {"folds": 1, "seeds": [0] * FIXES_SEEDS}
    repeats = (f"the same {evaluation['folds']} folds" + (f" x {len(evaluation['seeds'])} seeds" if len(
        evaluation["seeds"]) > 1 else "") if evaluation["folds"] > 1 else f"the same {len(evaluation['seeds'])} seeds")
    clicked = st.button(
        "Try the standard fixes", key="train.fixes", disabled=spec is None, icon=":material/science:",
        help=f"One click trains plain cross-entropy and five common fixes for imbalance (class weights, class-balanced "
             f"sampling, cRT, balanced softmax, which is logit adjustment, and LDAM-DRW){extra} with this data, model and "
             f"training settings, each over {repeats}: {cells} methods, {runs} trainings in the "
             "background. The Sweeps page then maps which fix helps, and by how much.")
    if not clicked:
        return
    try:
        sweep_id, to_run = start_sweep_in_background(spec)
    except SweepRefused as exc:
        st.error("**Some fixes cannot run on this set-up:** " + "; ".join(md(p) for p in exc.problems))
        return
    except ValueError as exc:
        st.error(md(exc))
        return
    flash("This sweep is already training; here it is." if to_run < 0 else
          "Every run of this sweep had finished already; here are its results." if to_run == 0 else
          f"Started the standard fixes: {runs} trainings in the background. This page follows them as they finish.")
    st.switch_page("../pages/sweeps.py", query_params={"sweep": sweep_id})
