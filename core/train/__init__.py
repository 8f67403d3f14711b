"""The training engine: stages composed by `train_run`, one device-resident loop, schedules,
two-stage fixes, robust and sharpness-aware training, evaluation, and everything that fits models on folds."""

from core.train._cleaning import CleaningOutcome, FoldProbabilities
from core.train._common import Cancelled, Diverged, Snapshot, Stage, TrainResult
from core.train._data import fixed_train_subset, prepare_run_data, train_subset_rows
from core.train._device import augment_batch, balanced_accuracy_t, deterministic_algorithms, predict, resolve_device
from core.train._multilabel_schemes import MULTILABEL_SCHEMES
from core.train._preflight import compatible_models, run_problems, run_warnings
from core.train._pretrain import PRETRAIN, pretrain_inputs, run_pretrain
from core.train._robust import ROBUST, kl_elements, mtard_weights, separation_loss, trades_loss
from core.train._run import STAGES, clean_training_rows, fold_probabilities, train_run
from core.train._schedule import lr_at, step_plan
from core.train._sbcl import assign_subclasses, class_temperatures, sbcl_loss, subclass_counts
from core.train._sharpness import SHARPNESS, sam_perturbation, tail_classes
from core.train._semi import SEMI, pseudo_label_report, run_semi, select_pseudo_labels
from core.train._stage2 import STAGE2, run_stage2, select_tau, tau_normalised_weight
from core.train._stage_one import StageOneStore
from core.train._weight_balancing import maxnorm_project, maxnorm_radius
from core.train._toy import ToySnapshot, ToyTrainer, apply_tau, run_toy, toy_mesh, toy_scores, train_toy

__all__ = [
    "MULTILABEL_SCHEMES", "CleaningOutcome", "FoldProbabilities", "clean_training_rows", "fold_probabilities",
    "compatible_models", "run_problems", "run_warnings",
    "ToySnapshot", "ToyTrainer", "apply_tau", "run_toy", "toy_mesh", "toy_scores", "train_toy",
    "augment_batch", "balanced_accuracy_t", "predict", "resolve_device", "lr_at", "STAGE2", "run_stage2",
    "select_tau", "tau_normalised_weight", "Cancelled", "Diverged", "Snapshot", "TrainResult", "fixed_train_subset",
    "train_subset_rows", "prepare_run_data", "train_run", "StageOneStore", "step_plan", "deterministic_algorithms",
    "Stage", "STAGES",
    "PRETRAIN", "pretrain_inputs", "run_pretrain", "ROBUST", "trades_loss", "mtard_weights", "kl_elements",
    "separation_loss", "SHARPNESS", "sam_perturbation", "tail_classes", "maxnorm_project", "maxnorm_radius",
    "assign_subclasses", "class_temperatures", "sbcl_loss", "subclass_counts", "SEMI", "pseudo_label_report", "run_semi", "select_pseudo_labels",
]
