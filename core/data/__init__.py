"""Datasets: built-ins, user uploads, imbalance profiles and splits."""

from core.data._builtins import DATASETS, list_datasets, load_builtin
from core.data._dataset import Dataset, Modality
from core.data._groups import class_groups, head_to_tail_order
from core.data._imbalance import (
    Profile, Splits, apply_imbalance_profile, class_statistics, prepare_splits, profile_counts,
    stratified_split,
)
from core.data._loaders import (
    MAX_UPLOAD_BYTES, DataError, guess_label_column, load_image_zip, load_npz, load_table, load_upload,
)
from core.data._toy import TOY_SHAPES, ToyData, make_toy_data  # also registers the toy datasets
from core.data._sources import UPLOAD_PREFIX, describe_source, load_source, save_upload, source_label

__all__ = [
    "TOY_SHAPES", "ToyData", "make_toy_data",
    "DATASETS", "list_datasets", "load_builtin", "Dataset", "Modality", "class_groups", "head_to_tail_order",
    "Profile", "Splits", "apply_imbalance_profile", "class_statistics", "prepare_splits",
    "profile_counts", "stratified_split", "MAX_UPLOAD_BYTES", "DataError", "guess_label_column",
    "load_image_zip", "load_npz", "load_table", "load_upload", "UPLOAD_PREFIX", "describe_source", "source_label",
    "load_source", "save_upload",
]
