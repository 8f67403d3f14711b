"""Words for people: what every metric key, setting and symbol the app shows is called on
screen, and what it means in one plain line.

Internal names (`balanced_accuracy`, `nc1`, `cb_focal`, `ce+drw / class_balanced`) stay in
the config, the CLI and the JSON; pickers, table headers, figure titles and help texts read
them through this module, so a teacher or a clinician reads words, not identifiers.

    display_name("f1_macro")      -> "Macro F1"
    explanation("gmean")          -> "Geometric mean of the per-class hit rates; ..."
    plugin_label("loss", "cb_focal") -> "Class-balanced focal loss"
    method_display(config)        -> "Focal loss + DRW · Class-balanced"   (config.method_label stays for the CLI)
    glossary()                    -> [Term("tau", "τ (tau)", "..."), ...]

Words sit below the analysis: `core.analysis` takes its metrics' names and meanings from
`METRIC_WORDS` here, and nothing here imports the analysis. Plug-in words come from the
table of kinds (`core.registry`), which every entry declares its display words to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.registry import KINDS, kind_of_section, kind_of_setting, plugin_label, registry_for

__all__ = ["Term", "GLOSSARY", "METRIC_WORDS", "display_name", "explanation", "term", "terms", "glossary",
           "glossary_markdown", "plugin_label", "method_display", "posthoc_words", "setting_title", "setting_value"]


@dataclass(frozen=True)
class Term:
    """A key or symbol, what it is called on screen, and its plain one-line meaning."""

    key: str
    display: str
    explanation: str


def _t(key: str, display: str, explanation: str) -> Term:
    return Term(key, display, explanation)


# The headline and calibration metrics (core.analysis.METRICS and CALIBRATION_METRICS read
# their names and meanings here).
METRIC_WORDS: dict[str, Term] = {t.key: t for t in (
    _t("accuracy", "Accuracy", "Share of all test cases classified correctly; dominated by the common classes."),
    _t("balanced_accuracy", "Balanced accuracy",
       "Average of the per-class hit rates, so every class counts the same however rare."),
    _t("f1_macro", "Macro F1",
       "Average over classes of the balance between finding a class and being right when claiming it."),
    _t("gmean", "G-mean", "Geometric mean of the per-class hit rates; drops to zero if any class is never found."),
    _t("worst_class_recall", "Worst-class recall", "Hit rate of the class the model handles worst."),
    _t("mcc", "MCC", "Correlation between predictions and truth (1 perfect, 0 chance), robust to imbalance."),
    _t("cohen_kappa", "Cohen's kappa",
       "Agreement with the truth beyond what guessing by class frequency would achieve."),
    _t("roc_auc_ovr_macro", "ROC-AUC (macro, one-vs-rest)",
       "How well the scores rank each class above the others, averaged over classes (0.5 is chance)."),
    _t("average_precision_macro", "Average precision (macro)",
       "Area under each class's precision-recall curve, averaged; sensitive to rare-class quality."),
    _t("map", "mAP (mean average precision)",
       "For each finding, how well the scores rank the cases that have it above those that do not (its average "
       "precision), averaged over findings so a rare one counts as much as a common one."),
    _t("map_head", "mAP of common findings",
       "Mean average precision over the findings with many training examples (head)."),
    _t("map_medium", "mAP of medium findings",
       "Mean average precision over the findings with a medium number of training examples."),
    _t("map_tail", "mAP of rare findings",
       "Mean average precision over the findings with few training examples (tail): where long-tail methods "
       "should help."),
    _t("f1_micro", "Micro F1",
       "F1 over every decision on every finding pooled together, so common findings dominate it."),
    _t("roc_auc_macro", "ROC-AUC (macro over findings)",
       "How well the scores rank the cases with a finding above those without it, averaged over findings "
       "(0.5 is chance)."),
    _t("subset_accuracy", "Exact-match rate",
       "Share of cases whose every known finding is decided right; one wrong finding makes the case wrong."),
    _t("hamming_loss", "Hamming loss",
       "Share of all known finding decisions that are wrong (lower is better)."),
    _t("robust_balanced_accuracy", "Balanced accuracy under attack",
       "Balanced accuracy on test cases changed on purpose, within the run's attack budget, to fool the model."),
    _t("robust_tail_accuracy", "Tail accuracy under attack",
       "Mean hit rate of the rare (tail) classes on test cases changed on purpose to fool the model."),
    _t("robust_gap", "Head − tail gap under attack",
       "Head classes' accuracy minus tail classes' on attacked test cases: how much more the rare classes pay."),
    _t("ece", "ECE", "Average gap between how sure the model is and how often it is right."),
    _t("mce", "MCE", "Largest such gap in any confidence range: the worst over- or under-confidence."),
    _t("adaptive_ece", "Adaptive ECE",
       "ECE with confidence ranges holding equal numbers of cases, steadier when most predictions are very "
       "confident."),
    _t("classwise_ece", "Classwise ECE",
       "Calibration of every class's probability, not just the top one, averaged over classes."),
    _t("brier", "Brier score", "Squared distance between the predicted probabilities and the true answer."),
    _t("nll", "NLL", "Average surprise at the true answer; punishes confident mistakes heavily."),
    _t("optimal_temperature", "Optimal temperature",
       "Factor that best softens (above 1) or sharpens (below 1) the scores on validation data."),
    _t("ece_after_temperature", "ECE after temperature scaling",
       "ECE once the scores are softened or sharpened by the optimal temperature."),
    _t("nll_after_temperature", "NLL after temperature scaling",
       "NLL once the scores are softened or sharpened by the optimal temperature."),
)}

# Other keys the app shows.
_EXTRA_TERMS = (
    _t("recall", "Recall", "Share of a class's test cases the model finds (its hit rate, sensitivity)."),
    _t("precision", "Precision", "Of the cases the model calls this class, the share that really are."),
    _t("f1", "F1", "Balance (harmonic mean) of recall and precision for one class."),
    _t("support", "Test cases", "Number of test cases of the class."),
    _t("count_train", "Training examples", "Number of training examples of the class, after the imbalance profile."),
    _t("n_train", "Training examples", "Number of training examples in the group."),
    _t("n_test", "Test cases", "Number of test cases in the group."),
    _t("n_classes", "Classes", "Number of classes in the group."),
    _t("group", "Group", "Head (common), medium or tail (rare) class, by its number of training examples."),
    _t("specificity", "Specificity", "Of the cases that are not this class, the share the model correctly leaves out."),
    _t("npv", "NPV", "Negative predictive value: of the cases the model says are not this class, the share that "
                     "really are not."),
    _t("prevalence", "Share of cases", "How common the class is among the cases scored."),
    _t("confidence", "Confidence", "The probability the model gives its own answer."),
    _t("p_true", "p(true class)", "The probability the model gives the correct class."),
    _t("head_recall", "Head-class recall", "Average hit rate over the head classes (the common ones)."),
    _t("medium_recall", "Medium-class recall", "Average hit rate over the medium classes."),
    _t("tail_recall", "Tail-class recall", "Average hit rate over the tail classes (the rare ones)."),
    _t("train_loss", "Training loss", "The loss on the training batches; lower means a closer fit."),
    _t("val_loss", "Validation loss", "The loss on held-out validation data."),
    _t("val_accuracy", "Validation accuracy", "Accuracy on held-out validation data."),
    _t("val_balanced_accuracy", "Validation balanced accuracy", "Balanced accuracy on held-out validation data."),
    _t("val_recall", "Validation recall per class", "Each class's hit rate on held-out validation data."),
    _t("nc1", "NC1: spread within classes",
       "How spread out each class's features are compared with the distances between classes; 0: every class "
       "has shrunk to a single point."),
    _t("nc2_equinorm_means", "NC2: unequal class-mean lengths",
       "How much the lengths of the class means differ (0: all equal)."),
    _t("nc2_equinorm_weights", "NC2: unequal classifier-weight lengths",
       "How much the lengths of the classifier's per-class weights differ (0: all equal)."),
    _t("nc2_equiangular_means", "NC2: uneven angles between class means",
       "How much the angles between pairs of class means differ (0: all equal)."),
    _t("nc2_equiangular_weights", "NC2: uneven angles between classifier weights",
       "How much the angles between pairs of the classifier's per-class weights differ (0: all equal)."),
    _t("nc2_maxangle_means", "NC2: class means off the ideal angles",
       "How far the angles between class means are from classes spread as far apart as possible (0: ideal)."),
    _t("nc2_maxangle_weights", "NC2: classifier weights off the ideal angles",
       "How far the angles between the classifier's weights are from the ideal spread (0: ideal)."),
    _t("nc3", "NC3: classifier vs class means",
       "Mismatch between the classifier's weights and the class means (0: they point the same way)."),
    _t("nc4", "NC4: nearest-mean disagreement",
       "Share of cases where 'the closest class mean' and the model's answer differ (0: they always agree)."),
    _t("tail_weight_cosine", "Tail: classifier weights", "Mean cosine between the classifier weights of pairs of "
                                                         "tail classes; high means they are hard to tell apart."),
    _t("head_weight_cosine", "Head: classifier weights", "Mean cosine between the classifier weights of pairs of "
                                                         "head classes."),
    _t("tail_mean_cosine", "Tail: class means", "Mean cosine between the feature means of pairs of tail classes."),
    _t("head_mean_cosine", "Head: class means", "Mean cosine between the feature means of pairs of head classes."),
)

# Symbols and words used across the pages, in the order a newcomer meets them.
GLOSSARY: tuple[Term, ...] = (
    _t("head", "Head classes", "The common classes: many training examples (more than 100, or the top third of "
                               "classes by count on small data)."),
    _t("medium", "Medium classes", "Classes with a middling number of training examples (20 to 100, or the middle "
                                   "third)."),
    _t("tail", "Tail classes", "The rare classes: few training examples (fewer than 20, or the bottom third)."),
    _t("imbalance_ratio", "Imbalance ratio", "Training examples of the largest class divided by those of the "
                                             "smallest."),
    _t("mu", "μ (mu), step profile", "In the step imbalance profile: the share of classes that are rare."),
    _t("prior", "Prior (class share)", "How common each class is: its share of the training examples (π)."),
    _t("classifier", "Classifier", "The network's last layer: one weight vector per class; a case's score for a class "
                                   "is how well its features line up with that class's vector."),
    _t("features", "Features", "What the network computes from a case just before the classifier: a list of numbers "
                               "summarising the case."),
    _t("logits", "Logits (scores)", "The raw per-class scores the classifier outputs, before they are turned into "
                                    "probabilities; the highest wins."),
    _t("softmax", "Softmax", "The step that turns scores into probabilities that add up to 1."),
    _t("loss", "Loss", "The number training tries to make small: how wrong the model is on the training examples."),
    _t("sampler", "Sampler", "Decides how often each training example is shown to the model in an epoch."),
    _t("resampler", "Resampler", "Changes the training table before training: adds made-up rare-class rows or "
                                 "drops common-class rows."),
    _t("two_stage", "Two-stage fix", "After training, re-balance only the classifier (the last layer) and keep the "
                                     "rest of the network."),
    _t("epoch", "Epoch", "One pass over the training data."),
    _t("learning_rate", "Learning rate", "How big a step training takes each time it adjusts the model."),
    _t("drw", "DRW (deferred re-weighting)", "Train with the plain loss first, then make rare classes count more "
                                             "from a chosen epoch on."),
    _t("tau", "τ (tau)", "A strength knob: how strongly class shares shift the scores (logit adjustment) or how "
                         "much the classifier weights are normalised (tau-norm); 0 changes nothing."),
    _t("temperature", "Temperature (T)", "Scores are divided by T before softmax: above 1 makes the model less sure, "
                                         "below 1 more sure; in sampling, a high T shows classes more evenly."),
    _t("margin", "Margin", "How far a case's true-class score must beat the others; LDAM asks rare classes for a "
                           "wider margin."),
    _t("effective_number", "Effective number of samples", "A count that grows more slowly than the real one, since "
                                                          "similar examples add little; rare classes are weighted by "
                                                          "1 / effective number."),
    _t("recall", "Recall (hit rate)", "Share of a class's test cases the model gets right."),
    _t("accuracy", "Accuracy", "Share of all test cases right; the common classes dominate it."),
    _t("balanced_accuracy", "Balanced accuracy", "The average recall over classes, so every class counts the same, "
                                                 "however rare."),
    _t("f1_macro", "Macro F1", "The F1 score (balance of recall and precision) of each class, averaged over classes."),
    _t("gmean", "G-mean", "Geometric mean of the per-class recalls: zero as soon as one class is never found."),
    _t("ece", "ECE (expected calibration error)", "Average gap between how sure the model is and how often it is "
                                                  "right; 0 is perfectly calibrated."),
    _t("mce", "MCE (maximum calibration error)", "The largest such gap in any confidence range."),
    _t("calibration", "Calibration", "Whether a model that says '80 % sure' is right 80 % of the time."),
    _t("mu_G", "μ_G (global mean)", "The centre of all class means (each class counted once), from which the "
                                    "geometry page measures directions."),
    _t("class_mean", "μ_k (class mean)", "The average feature vector of the examples of class k."),
    _t("neural_collapse", "Neural collapse (NC1-NC4)", "What well-trained networks tend toward: each class shrinks "
                                                      "to a point (NC1), the points spread evenly (NC2), the "
                                                      "classifier lines up with them (NC3) and picks the nearest "
                                                      "(NC4)."),
    _t("nc1", "NC1", "Spread within each class relative to the distance between classes (0: collapsed)."),
    _t("nc2", "NC2", "How unequal the lengths and angles of the class means (or classifier weights) are "
                     "(0: a perfectly even spread, a 'simplex')."),
    _t("nc3", "NC3", "Mismatch between the classifier's weights and the class means (0: aligned)."),
    _t("nc4", "NC4", "Share of cases where the nearest class mean and the model disagree."),
    _t("minority_collapse", "Minority collapse", "Under strong imbalance the rare classes' classifier weights "
                                                 "squeeze together, so the model can hardly tell rare classes "
                                                 "apart."),
    _t("interval", "95 % interval", "The range the true value most likely lies in, given the seeds or folds run; "
                                    "intervals that overlap a lot mean the difference may be noise."),
    _t("seed", "Seed", "The number that fixes the random choices of a run; other seeds show how much luck matters."),
    _t("fold", "Fold", "One of K parts of the data: each is the test set once while the others train."),
)


def _build_terms() -> dict[str, Term]:
    out = dict(METRIC_WORDS)
    for t in _EXTRA_TERMS:
        out.setdefault(t.key, t)
    return out


_TERMS = _build_terms()


def _terms() -> dict[str, Term]:
    return _TERMS


def terms() -> dict[str, Term]:
    """Every metric or column key the app shows, with its screen name and meaning."""
    return dict(_terms())


def term(key: str) -> Term | None:
    return _terms().get(key)


def display_name(key: str) -> str:
    """The screen name of a metric or column key; an unknown key reads with spaces, never raises."""
    t = _terms().get(key)
    return t.display if t else str(key).replace("_", " ")


def explanation(key: str) -> str:
    """The one-line meaning of a metric key or glossary symbol; '' when there is none."""
    t = _terms().get(key) or next((g for g in GLOSSARY if g.key == key), None)
    return t.explanation if t else ""


def glossary() -> list[Term]:
    """The symbols and words the pages use, each with its plain meaning."""
    return list(GLOSSARY)


def glossary_markdown() -> str:
    """The glossary as a markdown list (the text is ours: nothing to escape)."""
    return "\n".join(f"- **{t.display}**: {t.explanation}" for t in GLOSSARY)


# --- plug-ins and run methods --------------------------------------------------------------

_BASELINE_FAMILY = "baseline"  # core.models.BASELINE_FAMILY, read without importing torch models here


def _get(config: Any, key: str) -> Any:
    return config.get(key) if isinstance(config, Mapping) else getattr(config, key, None)


def _name(section: Any) -> str | None:
    return _get(section, "name") if section is not None else None


def _either_label(kind: str, name: str) -> str:
    """A loss's or sampler's words, single- or multi-label (their names do not overlap,
    bar the plain sampler, which is never shown)."""
    if name not in registry_for(kind) and name in registry_for(f"multilabel_{kind}"):
        return plugin_label(f"multilabel_{kind}", name)
    return plugin_label(kind, name)


def method_display(config: Any) -> str:
    """A run's method in words: "Focal loss + DRW · Class-balanced · Classifier re-training (cRT)".

    Takes a RunConfig or its JSON dict (a stored run's `config`); the plain sampler and
    absent sections are left out, as in `RunConfig.method_label`, which the CLI and the
    JSON keep.
    """
    model = _name(_get(config, "model"))
    models = registry_for("model")
    if model in models and models.info(model).capabilities.get("family") == _BASELINE_FAMILY:
        return plugin_label("model", model)  # fits its own objective: no loss or sampler applies
    loss, scheme = _get(config, "loss"), _name(_get(config, "scheme"))
    parts = [plugin_label("multilabel_scheme", scheme)] if scheme else []  # it picks its own losses and samplers
    if _name(loss) and not scheme:
        parts.append(_either_label("loss", _name(loss)) + (" + DRW" if _get(loss, "drw_epoch") is not None else ""))
    sampler = _name(_get(config, "sampler"))
    if sampler and sampler != "instance" and not scheme:
        parts.append(_either_label("sampler", sampler))
    for section in ("resampler", "stage2", "label_issues", "pretrain", "semi", "robust", "sharpness"):
        name = _name(_get(config, section))
        if name:
            parts.append(plugin_label(section, name))
    text = " · ".join(parts)
    steps = _get(config, "posthoc") or []
    if steps:
        words = [posthoc_words(s if isinstance(s, Mapping) else s.model_dump()) for s in steps]
        text += " + post-hoc " + "; then ".join(words)
    return text


def posthoc_words(step: Mapping[str, Any]) -> str:
    """'logit adjustment tau=1.0, temperature T=1.5': a post-hoc step's adjustments that change
    something (a setting left out changes nothing); 'no change' when none does."""
    parts = []
    if step.get("tau_norm"):
        parts.append(f"tau-norm tau={round(float(step['tau_norm']), 3)}")
    if step.get("logit_tau"):
        parts.append(f"logit adjustment tau={round(float(step['logit_tau']), 3)}")
    if step.get("prior_threshold"):
        parts.append("prior threshold")
    if float(step.get("temperature", 1.0)) != 1.0:
        parts.append(f"temperature T={round(float(step['temperature']), 3)}")
    return ", ".join(parts) or "no change"


_SETTING_TITLES = {
    **{k.setting: k.words for k in KINDS if k.setting and k.setting.endswith(".name")},
    "data.source": "Dataset", "data.imbalance.ratio": "Imbalance ratio",
    "data.imbalance.profile": "Imbalance profile", "data.imbalance.mu": "Share of rare classes (μ, step profile)",
    "train.epochs": "Epochs", "train.lr": "Learning rate", "train.batch_size": "Batch size",
    "train.weight_decay": "Weight decay", "train.optimizer": "Optimiser", "train.schedule": "Learning-rate schedule",
    "train.seed": "Seed", "loss.drw_epoch": "Re-weight from epoch (DRW)", "loss.tau": "Adjustment strength (τ)",
    "stage2.tau": "Normalisation strength (τ)", "train.warmup_epochs": "Warm-up epochs",
    "data.label_noise.rate": "Label-noise rate",
}


def setting_title(key: str) -> str:
    """A dotted config key in words: 'train.lr' -> 'Learning rate'; a plug-in's parameter
    takes its schema title ('loss.gamma' -> 'Loss: Focusing strength (gamma)', 'data.params.noise'
    -> 'Dataset: Spread'); anything else
    reads as its last part with spaces."""
    if key in _SETTING_TITLES:
        return _SETTING_TITLES[key]
    section, _, field = key.rpartition(".")
    kind = kind_of_section(section)
    if kind is not None:
        for info in registry_for(kind.name).infos():
            spec = info.params.model_fields.get(field)
            if spec is not None and spec.title:
                return f"{_SETTING_TITLES.get(kind.setting, kind.words)}: {spec.title}"
    return field.replace("_", " ")


_VALUE_KINDS = ("loss", "sampler", "stage2", "resampler", "model", "loss_schedule", "label_issues", "pretrain",
                "semi", "posthoc", "dataset", "attribution", "label_noise")


def _registered_words(name: str) -> str | None:
    """A registered name of any kind in words, or a name joined from registered names with
    "_" ('ldam_drw' -> 'LDAM margin loss + DRW'), else None."""
    for kind in _VALUE_KINDS:
        if name in registry_for(kind):
            return plugin_label(kind, name)
    parts = name.split("_")
    for cut in range(len(parts) - 1, 0, -1):
        head, rest = _registered_words("_".join(parts[:cut])), _registered_words("_".join(parts[cut:]))
        if head and rest:
            return f"{head} + {'DRW' if rest.endswith('(DRW)') else rest}"
    return None


def setting_value(key: str, value: Any) -> str:
    """A config value in words: a plug-in name reads as its display name ('cb_focal' ->
    'Class-balanced focal loss'), as does a sweep variant named after plug-ins ('ldam_drw'
    -> 'LDAM margin loss + DRW'); an imbalance ratio as '100 : 1'; nothing as '—'; any other
    name with its underscores as spaces."""
    kind = kind_of_setting(key)
    if kind is not None and isinstance(value, str):
        return plugin_label(kind.name, value)
    if value is None or value == "None":
        return "—"
    if key == "data.imbalance.ratio":
        try:
            return f"{float(value):g} : 1"
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, str):
        return _registered_words(value) or value.replace("_", " ")
    return str(value)
