"""Form helpers for the Data and Train pages.

Data: store an upload, preview it, and preview what an imbalance profile does to the
training split (exactly the split a run will use). Train: turn the registries into
widgets with no per-method code, and the chosen values into a validated RunConfig or a
one-line reason why it cannot run. Pure helpers first (tests call them directly), the
Streamlit pieces (cached loading, plug-in pickers) at the end.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any, get_args

import numpy as np
import pandas as pd
import streamlit as st
from pydantic import ValidationError

from app.services import ASSETS, load_splits
from app.widgets import params_form, table_height
from core.analysis import resampling_view
from core.config import DataConfig, RunConfig, TrainConfig, format_validation_error
from core.data import (
    UPLOAD_PREFIX, Dataset, DataError, class_statistics, describe_source, load_source, prepare_splits, save_upload,
    source_label,
)
from core.methods import resample
from core.paths import tailscope_home
from core.registry import Registry
from core.train import run_problems
from core.viz import resampling_figure

__all__ = [
    "DEFAULT_DATA", "SAMPLE_TABLE", "CLASS_ORDERS", "TABLE_SUFFIXES", "UPLOAD_TYPES", "TRAIN_EXPLAINER",
    "current_data_config", "data_label", "store_upload", "stored_upload_path", "is_table_upload", "table_columns",
    "table_preview", "dataset_preview", "class_order", "imbalance_preview", "describe_profile", "split_settings_form", "build_run_config",
    "default_run_name", "progress_text", "format_seconds", "load_dataset", "resampling_preview", "resampling_panel",
    "plugin_picker", "train_settings_form",
]

DEFAULT_DATA: dict[str, Any] = {"source": "digits", "imbalance": {"profile": "exp", "ratio": 50}}
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
- **Two-stage fix**: train normally first, then re-balance only the final layer on the frozen
  features (cRT, LWS, tau-norm). It costs seconds and often helps the tail the most.

Compare a run with plain cross-entropy and one with a fix to see what changed.
"""


# --- data ---------------------------------------------------------------------------------

def current_data_config(saved: dict | None) -> DataConfig:
    """The dataset the Train page uses: the one saved on the Data page, or the default."""
    return DataConfig.model_validate(saved or DEFAULT_DATA)


def data_label(data: DataConfig) -> str:
    """Short text: "digits (exp, ratio 50)"."""
    name = source_label(data.source)
    imb = data.imbalance
    detail = "balanced as given" if imb.profile == "none" else f"{imb.profile} profile, ratio {imb.ratio:g}"
    return f"{name} ({detail})"


def store_upload(data: bytes, filename: str) -> str:
    """Store an uploaded file once (content-hashed); returns its `upload:...` source."""
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix[1:] not in UPLOAD_TYPES:
        raise DataError(f"{filename}: unsupported file type {suffix or '(none)'!r}; upload .csv, .parquet, "
                        ".zip (one folder per class) or .npz.")
    return save_upload(data, filename)


def stored_upload_path(source: str):
    stored = source.removeprefix(UPLOAD_PREFIX)
    if not source.startswith(UPLOAD_PREFIX) or "/" in stored or "\\" in stored or stored.startswith("."):
        raise DataError(f"{source}: not a valid upload reference.")
    path = tailscope_home() / "uploads" / stored
    if not path.is_file():
        raise DataError(f"{describe_source(source)}: the uploaded file is no longer stored; upload it again.")
    return path


def is_table_upload(source: str | None) -> bool:
    return bool(source) and source.startswith(UPLOAD_PREFIX) and PurePosixPath(source).suffix.lower() in TABLE_SUFFIXES


def _read_raw_table(source: str, rows: int | None) -> pd.DataFrame:
    path = stored_upload_path(source)
    name = describe_source(source)
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(io.BytesIO(path.read_bytes()))
            return frame if rows is None else frame.head(rows)
        sep = "," if path.suffix.lower() == ".csv" else None
        return pd.read_csv(path, sep=sep, engine="c" if sep else "python", nrows=rows)
    except Exception as exc:  # any parser failure becomes a message the user can act on
        raise DataError(f"{name}: could not be read as a table ({type(exc).__name__}: {exc}); check that it "
                        "is a CSV with a header row, or a Parquet file.") from None


def table_columns(source: str) -> list[str]:
    """Column names of an uploaded table (its header row)."""
    return [str(c) for c in _read_raw_table(source, 0).columns]


def table_preview(source: str, rows: int = 100) -> pd.DataFrame:
    """The first rows of an uploaded table as written (before encoding)."""
    return _read_raw_table(source, rows)


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
    im = data.imbalance
    splits = prepare_splits(_labels_only(dataset), profile=im.profile, ratio=im.ratio, mu=im.mu,
                            class_order=im.class_order, test_fraction=data.test_fraction,
                            val_fraction=data.val_fraction, seed=data.seed)
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


def describe_profile(profile: str, ratio: float, mu: float, k: int) -> str:
    """What a profile does, in plain words."""
    if profile == "none":
        return ("**No profile**: the training data keeps the class sizes it came with. Use it to see "
                "how the model does without added imbalance.")
    rare = f"the rarest class keeps about 1/{ratio:g} as many examples as the most common one"
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


# --- train --------------------------------------------------------------------------------

def default_run_name(config: RunConfig) -> str:
    data = config.data
    source = source_label(data.source)
    imb = data.imbalance
    profile = "" if imb.profile == "none" else f" {imb.profile}{imb.ratio:g}"
    return f"{source}{profile} · {config.model.name} · {config.method_label}"


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
    if stage is None:
        return "starting…"
    if stage == "train":
        eta = p.get("eta_s")
        left = f" · about {format_seconds(eta)} left" if eta is not None else ""
        return f"epoch {p.get('epoch', '?')} of {p.get('epochs', '?')}{left}"
    if stage == "evaluate":
        return "evaluating on the test set"
    if stage == "embedding":
        return "computing the feature map for the Geometry page"
    if stage == "done":
        return "finished"
    return f"stage 2 ({stage}): epoch {p.get('epoch', '?')} of {p.get('epochs', '?')}"


# --- Streamlit pieces ---------------------------------------------------------------------

@st.cache_data(show_spinner="Loading the data…", max_entries=8)
def _load(source: str, params_json: str, label_column: str | None) -> Dataset:
    return load_source(source, json.loads(params_json), label_column)


def load_dataset(data: DataConfig) -> Dataset:
    """The data config's dataset (cached); raises DataError / ValueError with a readable message."""
    return _load(data.source, json.dumps(data.params, sort_keys=True), data.label_column)


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


def resampling_panel(data: DataConfig, resampler: dict[str, Any], class_names: Sequence[str], seed: int) -> None:
    """The chosen resampler's effect on the training rows: a picture and the counts."""
    with st.expander(f"What {resampler['name']} does to the training rows", expanded=True):
        try:
            view, counts = resampling_preview(data, resampler, int(seed))
        except ValueError as exc:
            st.error(str(exc))
            return
        st.plotly_chart(resampling_figure(view, class_names), width="stretch", key="train.resampling")
        st.dataframe(counts, hide_index=True, width="stretch", height=table_height(len(counts), 300))
        st.caption("Each dot is a training row, flattened onto its two main directions of variation. Open diamonds "
                   "are rows the resampler made up; crosses are real rows it threw away. Training then sees the "
                   "counts in the 'after' column. (Validation and test rows are never resampled.)")


def _caption(info) -> str:
    return info.description + (f"  \n*Paper: {info.paper}*" if info.paper else "")


def plugin_picker(label: str, registry: Registry, key: str, *, options: Sequence[str] | None = None,
                  optional: bool = False, default: str | None = None, help: str | None = None) -> dict | None:
    """A selectbox over a registry, the chosen entry's description and paper, and its
    parameter widgets. Returns `{"name": ..., **params}`, or None for "none"."""
    names = list(options if options is not None else registry.names())
    if optional:
        names = ["none", *names]
    index = names.index(default) if default in names else 0
    name = st.selectbox(label, names, index=index, key=key, help=help)
    if name == "none":
        return None
    info = registry.info(name)
    st.caption(_caption(info))
    return {"name": name, **params_form(info, key)}


def _literal_options(field: str) -> list[str]:
    return list(get_args(TrainConfig.model_fields[field].annotation))


def train_settings_form(key: str) -> dict[str, Any]:
    """Optimiser, epochs, batch size, learning rate, seed and device up front, the schedule and
    the rest in an expander; TrainConfig's defaults."""
    d = {name: f.default for name, f in TrainConfig.model_fields.items()}
    c1, c2, c3 = st.columns(3)
    optimizer = c1.selectbox("Optimiser", _literal_options("optimizer"), key=f"{key}.optimizer",
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
    return {"optimizer": optimizer, "epochs": int(epochs), "batch_size": int(batch), "lr": float(lr),
            "seed": int(seed), "device": device, "schedule": schedule, "weight_decay": float(decay),
            "warmup_epochs": int(warmup), "augment": augment, "momentum": float(momentum)}


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
