"""Imbalance methods: losses (and DRW), samplers, resamplers, label-issue cleaners, post-hoc adjustments,
and the adversarial attacks that robustness evaluation and robust training share."""

from core.methods._attacks import (
    ATTACKS,
    Attack,
    AttackParams,
    PGDParams,
    create_attack,
    input_bounds,
    list_attacks,
    per_sample_cross_entropy,
)

from core.methods._cleaners import (
    CLEANERS,
    FILTERS,
    Cleaner,
    LabelIssueFlags,
    baseline_fit_predict,
    confident_learning,
    create_cleaner,
    list_cleaners,
    out_of_fold_probabilities,
    stratified_folds,
    weighted_batch_loss,
)
from core.methods._losses import (
    LOSSES,
    AnyLoss,
    BalancedSoftmaxLoss,
    ClassBalancedFocalLoss,
    CrossEntropy,
    DiceLoss,
    FocalLoss,
    LabelSmoothingLoss,
    LDAMLoss,
    LogitAdjustedLoss,
    Loss,
    WeightedCrossEntropy,
    ZLoss,
    create_loss,
    ldam_margins,
    list_losses,
    weighted_mean,
)
from core.methods._multilabel_losses import (
    MULTILABEL_LOSSES,
    AsymmetricLoss,
    ClassBalancedBCE,
    DistributionBalancedLoss,
    HybridLoss,
    MultiLabelBCE,
    MultiLabelFocal,
    MultiLabelLoss,
    create_multilabel_loss,
    list_multilabel_losses,
    split_targets,
)
from core.methods._multilabel_samplers import (
    MULTILABEL_SAMPLERS,
    ClassAwareSampler,
    MultiLabelSampler,
    RepeatFactorSampler,
    ReverseClassSampler,
    create_multilabel_sampler,
    label_draw_probabilities,
    list_multilabel_samplers,
    positives_of,
    repeat_factors,
)
from core.methods._comic import PriorFocalModifier, ReflectiveLabelCorrector, plt_class_weight
from core.methods._loss_schedules import LOSS_SCHEDULES, DeferredReweighting, DRWParams
from core.methods._posthoc import (
    POSTHOC,
    TAU_NORM_GRID,
    TauSweep,
    apply_posthoc,
    fit_temperature,
    list_posthoc,
    log_prior,
    logit_adjustment,
    prior_threshold,
    select_tau_norm,
    tau_norm,
    temperature,
)
from core.methods._resamplers import (
    RESAMPLERS,
    SAMPLING_STRATEGIES,
    ResampleResult,
    check_resampler,
    create_resampler,
    list_resamplers,
    resample,
)
from core.methods._samplers import (
    SAMPLERS,
    ClassBalancedSampler,
    ClassLevelSampler,
    InstanceSampler,
    OversampleSampler,
    ProgressiveSampler,
    Sampler,
    SqrtSampler,
    TemperatureSampler,
    UndersampleSampler,
    class_counts_of,
    cooldown_temperature,
    create_sampler,
    list_samplers,
)
from core.methods._weights import WEIGHT_SCHEMES, WeightScheme, class_weights

__all__ = [
    # adversarial attacks
    "ATTACKS", "Attack", "AttackParams", "PGDParams", "create_attack", "list_attacks", "input_bounds",
    "per_sample_cross_entropy",
    # losses
    "LOSSES", "Loss", "create_loss", "list_losses", "weighted_mean", "ldam_margins",
    "CrossEntropy", "WeightedCrossEntropy", "FocalLoss", "ClassBalancedFocalLoss", "LDAMLoss",
    "BalancedSoftmaxLoss", "LogitAdjustedLoss", "LabelSmoothingLoss", "DiceLoss", "AnyLoss", "ZLoss",
    # multi-label losses
    "MULTILABEL_LOSSES", "MultiLabelLoss", "create_multilabel_loss", "list_multilabel_losses", "split_targets",
    "MultiLabelBCE", "MultiLabelFocal", "ClassBalancedBCE", "AsymmetricLoss", "DistributionBalancedLoss", "HybridLoss",
    "PriorFocalModifier", "ReflectiveLabelCorrector", "plt_class_weight",
    # multi-label samplers
    "MULTILABEL_SAMPLERS", "MultiLabelSampler", "RepeatFactorSampler", "ClassAwareSampler",
    "ReverseClassSampler", "create_multilabel_sampler", "label_draw_probabilities", "list_multilabel_samplers",
    "positives_of", "repeat_factors",
    # loss schedules (deferred re-weighting)
    "LOSS_SCHEDULES", "DeferredReweighting", "DRWParams",
    # class weights (losses and DRW)
    "class_weights", "WeightScheme", "WEIGHT_SCHEMES",
    # samplers
    "SAMPLERS", "Sampler", "class_counts_of", "create_sampler", "list_samplers",
    "ClassLevelSampler", "InstanceSampler", "ClassBalancedSampler", "SqrtSampler",
    "ProgressiveSampler", "TemperatureSampler", "OversampleSampler", "UndersampleSampler",
    "cooldown_temperature",
    # resamplers
    "RESAMPLERS", "ResampleResult", "resample", "check_resampler", "create_resampler", "list_resamplers",
    "SAMPLING_STRATEGIES",
    # label-issue cleaners
    "CLEANERS", "Cleaner", "LabelIssueFlags", "FILTERS", "create_cleaner", "list_cleaners", "stratified_folds",
    "out_of_fold_probabilities", "confident_learning", "baseline_fit_predict", "weighted_batch_loss",
    # post-hoc
    "POSTHOC", "apply_posthoc", "list_posthoc", "logit_adjustment", "prior_threshold", "tau_norm",
    "temperature", "select_tau_norm", "TauSweep", "fit_temperature", "TAU_NORM_GRID", "log_prior",
]
