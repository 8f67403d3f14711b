"""Datasets: built-ins, user uploads, imbalance profiles and splits."""

from core.data._builtins import DATASETS, list_datasets, load_builtin
from core.data._dataset import (
    PICTURE_IDS, ROW_IDS, Dataset, FeatureBlock, Modality, as_ids, as_texts, case_id_words, case_words, row_ids,
)
from core.data._groups import class_groups, head_to_tail_order
from core.data._label_matrix import UNKNOWN_ENTRY, as_label_matrix, known_mask, label_counts, label_frequencies
from core.data._multilabel import MULTILABEL_DATASETS, MultiLabelDataset, load_multilabel_builtin
from core.data._multilabel_splits import (
    LabelProfileResult, MultiLabelSplits, apply_label_profile, hide_label_entries, multilabel_folds, multilabel_split,
    prepare_multilabel_splits,
)
from core.data._multilabel_run import (
    MultiLabelRunData, cooccurrence_counts, load_multilabel_data, prepare_multilabel_run_data,
)
from core.data._multilabel_uploads import (
    LABEL_SEPARATORS, detect_label_separator, label_columns_matrix, load_multilabel_npz, load_multilabel_upload,
    multilabel_table, npz_has_label_matrix, separated_labels, UNKNOWN_MARK, listed_labels, load_multilabel_zip,
)
from core.data._multilabel_zip import MANIFEST_NAME, manifest_labels, zip_has_label_manifest
from core.data._imbalance import (
    Profile, Splits, apply_imbalance_profile, class_statistics, prepare_splits, profile_counts,
    stratified_fold, stratified_split, table_transform,
)
from core.data._loaders import (
    MAX_UPLOAD_BYTES, DataError, check_upload_size, guess_label_column, load_image_zip, load_npz, load_npz_inputs,
    load_pictures, load_table, load_upload,
)
from core.data._columns import (
    ROLE_HELP, ROLE_LABELS, USED_ROLES, ColumnProfile, TableProfile, column_values, profile_table, suggest_label,
)
from core.data._features import (
    TableTransform, feature_table, fill_missing, fit_table_transform, in_original_units, original_values,
)
from core.data._tables import RawTable, case_ids, read_table, table_dataset
from core.data._text_builtin import NOTE_CLASSES, synthetic_notes  # registers the synthetic notes
from core.data._toy import TOY_NOISE, TOY_PRESETS, TOY_SHAPES, ToyData, make_toy_data  # also registers the toy datasets
from core.data._sources import (
    UPLOAD_PREFIX, StoredUpload, describe_source, list_uploads, load_source, read_stored_table, remove_upload,
    keep_if_accepted, save_upload, source_label, sources_of, unused_uploads, upload_path, upload_source,
)
from core.data._ordinal import is_ordinal, order_classes
from core.data._prepare import (
    encoded_splits, labelled_train_counts, labelled_train_labels, load_data, run_table_transform, source_problems,
    split_data,
)
from core.data._profile_preview import CLASS_ORDERS, class_order, dataset_preview, describe_profile, imbalance_preview
from core.data._table_words import (
    MISSING_HELP, ROLE_CHOICES, DropCost, apply_role_edits, drop_cost, gap_text, gaps_line, left_out_line, missing_options, roles_frame,
)
from core.data._noise import (
    LABEL_NOISE, LabelNoise, corrupt_labels, damage_by_group, exact_count, label_damage_table, most_similar_class,
)
from core.data._batch import PICTURE_SUFFIXES, read_image_batch, read_table_batch
from core.data._text_encoders import (
    MAX_PIECES, TEXT_ENCODERS, TextEncoder, WordPlacement, create_text_encoder, word_spans,
)
from core.data._sentence_encoder import MiniLmEncoder, minilm_path, offline_hub  # registers "minilm"
from core.data._tuned_encoder import TUNING_SECONDS_PER_1000_CPU, TunedMiniLmEncoder, gpu_available  # "minilm_tuned"
from core.data._text_stats import distinctive_words, text_statistics
from core.data._text_features import DEFAULT_TEXT_ENCODER, TextFeatures, encode_text_splits
from core.data._unlabeled import UNKNOWN_LABEL, hidden_counts, hide_labels, load_unlabeled_upload
from core.data._label_variants import (
    LabelVariants, LabelVariantsError, find_label_variants, label_key, merge_label_variants, quoted_forms, variants_text,
)

__all__ = [
    "TOY_NOISE", "TOY_PRESETS", "TOY_SHAPES", "ToyData", "make_toy_data",
    "DATASETS", "list_datasets", "load_builtin", "Dataset", "Modality", "PICTURE_IDS", "ROW_IDS", "as_ids", "case_id_words", "case_words",
    "row_ids", "class_groups", "head_to_tail_order",
    "UNKNOWN_ENTRY", "as_label_matrix", "known_mask", "label_counts", "label_frequencies",
    "MULTILABEL_DATASETS", "MultiLabelDataset", "load_multilabel_builtin", "LabelProfileResult", "apply_label_profile",
    "hide_label_entries", "multilabel_folds", "multilabel_split", "MultiLabelSplits", "prepare_multilabel_splits",
    "MultiLabelRunData", "cooccurrence_counts", "prepare_multilabel_run_data", "load_multilabel_data",
    "LABEL_SEPARATORS", "detect_label_separator", "label_columns_matrix", "load_multilabel_npz",
    "load_multilabel_upload", "multilabel_table", "separated_labels", "npz_has_label_matrix",
    "UNKNOWN_MARK", "listed_labels", "load_multilabel_zip", "MANIFEST_NAME", "zip_has_label_manifest", "manifest_labels",
    "Profile", "Splits", "apply_imbalance_profile", "class_statistics", "prepare_splits",
    "profile_counts", "stratified_split", "stratified_fold", "load_data", "split_data", "MAX_UPLOAD_BYTES", "DataError", "guess_label_column",
    "load_image_zip", "load_npz", "load_table", "load_upload", "UPLOAD_PREFIX", "describe_source", "source_label",
    "load_source", "save_upload", "is_ordinal", "order_classes",
    "FeatureBlock", "ROLE_HELP", "ROLE_LABELS", "USED_ROLES", "ColumnProfile", "TableProfile", "profile_table",
    "suggest_label", "feature_table", "fill_missing", "in_original_units", "original_values", "RawTable", "read_table", "table_dataset", "case_ids",
    "StoredUpload", "sources_of", "list_uploads", "read_stored_table", "remove_upload", "unused_uploads", "upload_path",
    "upload_source", "load_pictures", "load_npz_inputs", "check_upload_size", "column_values", "TableTransform",
    "fit_table_transform", "table_transform", "run_table_transform", "source_problems", "keep_if_accepted",
    "labelled_train_counts",
    "labelled_train_labels", "encoded_splits",
    "LABEL_NOISE", "LabelNoise", "corrupt_labels", "exact_count", "label_damage_table", "damage_by_group",
    "most_similar_class",
    "CLASS_ORDERS", "class_order", "dataset_preview", "describe_profile", "imbalance_preview",
    "MISSING_HELP", "ROLE_CHOICES", "DropCost", "apply_role_edits", "drop_cost", "gap_text", "gaps_line", "left_out_line", "missing_options",
    "roles_frame",
    "LabelVariants", "LabelVariantsError", "find_label_variants", "label_key", "merge_label_variants", "quoted_forms",
    "variants_text",
    "MAX_PIECES", "TEXT_ENCODERS", "TextEncoder", "WordPlacement", "create_text_encoder", "word_spans", "DEFAULT_TEXT_ENCODER",
    "TextFeatures", "encode_text_splits", "as_texts", "NOTE_CLASSES", "synthetic_notes",
    "MiniLmEncoder", "TunedMiniLmEncoder", "TUNING_SECONDS_PER_1000_CPU", "gpu_available", "minilm_path", "offline_hub", "distinctive_words", "text_statistics",
    "PICTURE_SUFFIXES", "read_image_batch", "read_table_batch", "UNKNOWN_LABEL", "hidden_counts", "hide_labels", "load_unlabeled_upload",
]
