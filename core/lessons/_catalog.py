"""The lessons: nine published claims about imbalance, each with the sweep that tests it.

Every lesson is sized to finish in about three minutes on a two-core laptop (small MLPs on
the built-in digits and breast-cancer data); `size="tiny"` keeps the same cells with two
seeds (or folds) and two epochs, for trying the commands and for the tests. The analyses
only read the runs' stored arrays and call `core.analysis`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field
from sklearn.metrics import balanced_accuracy_score, f1_score, precision_recall_curve

from core.analysis import (
    calibration_summary, class_geometry, metrics_at_prior, minority_collapse, norm_count_correlation,
)
from core.lessons._base import (
    Chart, Finding, Lesson, LessonRun, Size, Verdict, cell_runs, interval_rows, paired_finding, rare_classes,
    train_logits,
)
from core.methods import logit_adjustment, prior_threshold, select_tau_norm, tau_norm
from core.registry import Params, Registry
from core.sweep import load_sweep

__all__ = ["LESSONS", "LessonParams", "TEACHING_ORDER", "create_lesson", "list_lessons", "lesson_json"]

LESSONS: Registry[Lesson] = Registry("lesson")


class LessonParams(Params):
    size: Size = Field("full", description="full: the class-ready run (about 3 minutes on a laptop); "
                                           "tiny: two seeds and two epochs, seconds, for a first look")


def create_lesson(name: str, size: str = "full") -> Lesson:
    return LESSONS.create(name, {"size": size})


def list_lessons() -> list[str]:
    """In teaching order, not alphabetical: from what a score hides to what fixes it."""
    return [name for name in TEACHING_ORDER if name in LESSONS]


# --- shared set-up ----------------------------------------------------------------------------

def _train(size: str, epochs: int, **extra: Any) -> dict[str, Any]:
    if size == "tiny":
        return {"epochs": 2, "min_steps": 0, "nc_every": 0, "batch_size": 64, **extra}
    return {"epochs": epochs, "nc_every": 0, "batch_size": 64, **extra}


def _seeds(size: str, n: int = 5) -> dict[str, Any]:
    return {"seeds": [0, 1] if size == "tiny" else list(range(n))}


def _digits(profile: str = "exp", ratio: float = 50, **extra: Any) -> dict[str, Any]:
    return {"source": "digits", "imbalance": {"profile": profile, "ratio": ratio, **extra}}


MLP = {"name": "mlp", "hidden": 64}


def _lesson(name: str, size: str, display: str, base: dict, grid: dict, **fields: Any) -> Lesson:
    spec = load_sweep({"name": f"lesson: {display}" + (" (tiny)" if size == "tiny" else ""), **base, "grid": grid})
    if size == "tiny":
        fields["setup"] += (" This is the tiny version (2 seeds or folds, 2 epochs): a first look at the machinery, "
                            "not numbers to teach from.")
    return Lesson(name=name, display=display, size=size, spec=spec, **fields)


def _bal(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(balanced_accuracy_score(labels, np.asarray(logits).argmax(axis=1)))


def bal(r: LessonRun) -> float:
    return _bal(r.artifacts.logits, r.artifacts.labels)


def _recall(logits: np.ndarray, labels: np.ndarray, classes: np.ndarray) -> float:
    """Mean recall over `classes` (those with cases in `labels`)."""
    pred = np.asarray(logits).argmax(axis=1)
    values = [float((pred[labels == c] == c).mean()) for c in classes if (labels == c).any()]
    return float(np.mean(values)) if values else float("nan")


def _pct(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.0%}"


def _mean(runs: Sequence[LessonRun], value) -> float:
    values = [value(r) for r in runs]
    values = [v for v in values if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def _sentence(finding: Finding, holds: str, fails: str, noise: str) -> str:
    """The caption's verdict sentence, picked by the measured status."""
    return {"holds": holds, "does not hold": fails}.get(finding.status, noise)


def _frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["x", "series", "y", "low", "high", "sd", "n"])


# --- 1. accuracy hides the tail -------------------------------------------------------------

RATIOS = [1, 10, 100]


def _acc_at(r: LessonRun, choice: str) -> float:
    a = r.artifacts
    return float(metrics_at_prior(a.logits, a.labels, choice, train_prior=a.prior)["accuracy"])


def _rare_recall(r: LessonRun) -> float:
    a = r.artifacts
    return _recall(a.logits, a.labels, rare_classes(a.class_counts))


def analyse_accuracy(runs: Sequence[LessonRun]) -> Verdict:
    top = cell_runs(runs, data__imbalance__ratio=str(RATIOS[-1]))
    gap = paired_finding(top, top, lambda r: _acc_at(r, "train"), value_b=lambda r: _acc_at(r, "balanced"),
                         label=f"accuracy on a long-tailed test set minus on a balanced one (ratio {RATIOS[-1]})",
                         measure="accuracy", expect="higher")
    rare = paired_finding(top, top, _rare_recall, value_b=lambda r: _recall(
        r.artifacts.logits, r.artifacts.labels, np.setdiff1d(np.arange(r.artifacts.num_classes),
                                                             rare_classes(r.artifacts.class_counts))),
        label="recall of the rare classes minus the other classes", measure="recall", expect="lower")
    rows = []
    for ratio in RATIOS:
        cell = cell_runs(runs, data__imbalance__ratio=str(ratio))
        if cell:
            rows += [interval_rows(ratio, "accuracy, long-tailed test set", cell, lambda r: _acc_at(r, "train")),
                     interval_rows(ratio, "accuracy, balanced test set", cell, lambda r: _acc_at(r, "balanced")),
                     interval_rows(ratio, "recall of the rare classes", cell, _rare_recall)]
    lt, balanced, rr = (_mean(top, lambda r: _acc_at(r, "train")), _mean(top, lambda r: _acc_at(r, "balanced")),
                        _mean(top, _rare_recall))
    caption = (f"At imbalance ratio {RATIOS[-1]} the same models score {_pct(lt)} accuracy on a test set with the "
               f"training mix and {_pct(balanced)} on one where every class counts the same; the rarest third of the "
               f"classes is found {_pct(rr)} of the time. "
               + _sentence(gap, "The long-tailed score hides the rare classes' failure.",
                           "Here the long-tailed score is the lower one: the claim does not hold on these runs.",
                           "The two scores cannot be told apart on these seeds."))
    chart = Chart("lines", "The same models, scored on two test sets", _frame(rows), "imbalance ratio (log scale)",
                  "score", log_x=True)
    return Verdict((gap, rare), caption, (chart,), _frame(rows), len(runs))


@LESSONS.register("accuracy_hides_tail", display="Accuracy hides the tail", params=LessonParams,
                  description="The same model looks good on a long-tailed test set and poor on a balanced one.",
                  paper="Buda et al., Neural Networks 2018; Liu et al., CVPR 2019 (OLTR)")
def accuracy_hides_tail(*, size: str) -> Lesson:
    base = {"data": _digits(), "model": MLP, "train": _train(size, 20), "evaluation": _seeds(size, 3)}
    return _lesson(
        "accuracy_hides_tail", size, "Accuracy hides the tail", base, {"data.imbalance.ratio": RATIOS},
        claim="On a test set with the training mix, plain accuracy stays high while the rare classes fail; "
              "scored with every class counting the same, the same model looks much worse.",
        paper="Buda et al., Neural Networks 2018; Liu et al., CVPR 2019 (OLTR): report per-class or balanced scores.",
        questions=("Which number would you put in a report for a screening test, and why?",
                   "At ratio 1 the two scores agree: why?",
                   "How many rare-class cases does the test set hold? How sure can we be of their recall?"),
        gpu_note="At paper scale (CIFAR-10-LT, ResNet-32, 200 epochs, 3 ratios x 3 seeds = 9 trainings) this is "
                 "a few GPU-hours; the effect is the same.",
        setup="Digits (8x8 images), long-tailed training split (ratio 1, 10, 100), a small MLP, 20 epochs, "
              "3 seeds; test scored at the training mix and at a balanced mix (re-weighting, no new data).",
        analyse=analyse_accuracy)


# --- 2. over- vs under-sampling vs thresholding (Buda et al. 2018) -----------------------------

BUDA_RATIOS = [10, 50]
SAMPLING_METHODS = {"ce": {}, "oversample": {"sampler.name": "oversample"},
                    "undersample": {"sampler.name": "undersample"}}


def _threshold_bal(r: LessonRun) -> float:
    return _bal(prior_threshold(r.artifacts), r.artifacts.labels)


def analyse_sampling(runs: Sequence[LessonRun]) -> Verdict:
    top = str(BUDA_RATIOS[-1])
    ce, over, under = (cell_runs(runs, method=m, data__imbalance__ratio=top) for m in SAMPLING_METHODS)
    f_over_under = paired_finding(over, under, bal, label=f"oversampling minus undersampling (ratio {top})",
                                  measure="balanced accuracy", expect="higher")
    f_thresh = paired_finding(ce, ce, _threshold_bal, value_b=bal, label="thresholding minus plain training",
                              measure="balanced accuracy", expect="higher")
    f_over = paired_finding(over, ce, bal, label="oversampling minus plain training", measure="balanced accuracy",
                            expect="higher")
    rows = []
    for ratio in BUDA_RATIOS:
        for method in SAMPLING_METHODS:
            cell = cell_runs(runs, method=method, data__imbalance__ratio=str(ratio))
            if cell:
                rows.append(interval_rows(ratio, {"ce": "plain"}.get(method, method), cell, bal))
        cell = cell_runs(runs, method="ce", data__imbalance__ratio=str(ratio))
        if cell:
            rows.append(interval_rows(ratio, "thresholding", cell, _threshold_bal))
    caption = (f"At step imbalance ratio {top}: oversampling {_pct(_mean(over, bal))}, undersampling "
               f"{_pct(_mean(under, bal))}, plain training {_pct(_mean(ce, bal))} and plain training with "
               f"thresholding {_pct(_mean(ce, _threshold_bal))} balanced accuracy. "
               + _sentence(f_over_under, "Oversampling beats undersampling here, as Buda et al. found.",
                           "Undersampling beats oversampling here, against the paper's finding.",
                           "Oversampling and undersampling cannot be told apart on these seeds."))
    chart = Chart("lines", "Balanced accuracy as the imbalance grows", _frame(rows), "imbalance ratio (log scale)",
                  "balanced accuracy", log_x=True)
    return Verdict((f_over_under, f_thresh, f_over), caption, (chart,), _frame(rows), len(runs))


@LESSONS.register("over_under_threshold", display="Over- vs under-sampling vs thresholding", params=LessonParams,
                  description="Random oversampling, undersampling and prior thresholding on a step imbalance.",
                  paper="Buda et al., Neural Networks 2018, A systematic study of the class imbalance problem in CNNs")
def over_under_threshold(*, size: str) -> Lesson:
    base = {"data": _digits("step", 10, mu=0.5), "model": MLP, "train": _train(size, 20),
            "evaluation": _seeds(size, 4)}
    return _lesson(
        "over_under_threshold", size, "Over- vs under-sampling vs thresholding", base,
        {"method": SAMPLING_METHODS, "data.imbalance.ratio": BUDA_RATIOS},
        claim="Oversampling the rare classes beats undersampling the common ones, and dividing the scores by the "
              "class prior (thresholding) helps plain training.",
        paper="Buda, Maki & Mazurowski, Neural Networks 2018, A systematic study of the class imbalance problem "
              "in convolutional neural networks",
        questions=("Undersampling throws data away: at which ratio would you expect it to hurt most?",
                   "Thresholding needs no retraining. What does it need to know instead?",
                   "Is the gap between the methods larger than the spread over seeds?"),
        gpu_note="The paper's scale: MNIST, CIFAR-10 and ImageNet subsets with many ratios; CIFAR-10 with "
                 "ResNet-32, 4 methods x 5 ratios x 3 seeds is about a GPU-day.",
        setup="Digits, step imbalance (half the classes rare) at ratio 10 and 50, a small MLP, 20 epochs, 4 seeds; "
              "thresholding re-scores the plain runs.",
        analyse=analyse_sampling)


# --- 3. upsample or upweight? (Li et al. 2025) --------------------------------------------------

UPSAMPLE_METHODS = {
    "ce": {},
    "upweight": {"loss.name": "weighted_ce"},
    "upsample": {"sampler.name": "temperature", "sampler.t0": 5.0, "sampler.cooldown": False},
    "upsample_cooldown": {"sampler.name": "temperature", "sampler.t0": 5.0, "sampler.t_end": 1.0,
                          "sampler.cooldown": True, "sampler.cooldown_start": 0.5},
}


def _overfit_gap(r: LessonRun) -> float:
    """Recall of the rare classes on their training samples minus on the test set."""
    a = r.artifacts
    rare = rare_classes(a.class_counts)
    return _recall(train_logits(a), np.asarray(a.train_labels), rare) - _recall(a.logits, a.labels, rare)


def analyse_upsample(runs: Sequence[LessonRun]) -> Verdict:
    cells = {m: cell_runs(runs, method=m) for m in UPSAMPLE_METHODS}
    f_gap = paired_finding(cells["upsample"], cells["upweight"], _overfit_gap,
                           label="rare-class overfitting (train minus test recall): upsampling minus upweighting",
                           measure="recall gap", expect="higher")
    f_cool = paired_finding(cells["upsample_cooldown"], cells["upsample"], _overfit_gap,
                            label="rare-class overfitting: upsampling with cooldown minus without",
                            measure="recall gap", expect="lower")
    f_bal = paired_finding(cells["upsample_cooldown"], cells["upweight"], bal,
                           label="upsampling with cooldown minus upweighting", measure="balanced accuracy",
                           expect="higher")
    names = {"ce": "plain", "upweight": "upweighting", "upsample": "upsampling",
             "upsample_cooldown": "upsampling + cooldown"}
    rows = [interval_rows(names[m], "balanced accuracy", c, bal) for m, c in cells.items() if c]
    rows += [interval_rows(names[m], "rare-class train-test recall gap", c, _overfit_gap) for m, c in cells.items()
             if c]
    sds = {names[m]: _frame([interval_rows(0, "", c, bal)])["sd"].iloc[0] for m, c in cells.items() if len(c) > 1}
    spread = ", ".join(f"{k} {v:.3f}" for k, v in sds.items() if np.isfinite(v))
    caption = (f"Rare classes' recall drops from training to test by {_pct(_mean(cells['upsample'], _overfit_gap))} "
               f"with upsampling, {_pct(_mean(cells['upweight'], _overfit_gap))} with upweighting and "
               f"{_pct(_mean(cells['upsample_cooldown'], _overfit_gap))} with upsampling plus cooldown. "
               + _sentence(f_gap, "Upsampling overfits the rare classes more, as the paper reports.",
                           "Here upweighting overfits more: the claim does not hold on these runs.",
                           "The overfitting of the two cannot be told apart on these seeds.")
               + (f" Spread of balanced accuracy over seeds (sd): {spread}." if spread else ""))
    chart = Chart("bars", "Balanced accuracy and rare-class overfitting", _frame(rows), "", "value",
                  bounds=(-1.0, 1.0))
    return Verdict((f_gap, f_cool, f_bal), caption, (chart,), _frame(rows), len(runs))


@LESSONS.register("upsample_or_upweight", display="Upsample or upweight?", params=LessonParams,
                  description="Temperature sampling with cooldown against loss re-weighting: accuracy and "
                              "overfitting of the rare classes.",
                  paper="Li et al., NAACL 2025, Upsample or Upweight? Balanced Training on Heavily Imbalanced Datasets")
def upsample_or_upweight(*, size: str) -> Lesson:
    base = {"data": _digits(ratio=50), "model": MLP, "train": _train(size, 20), "evaluation": _seeds(size, 4)}
    return _lesson(
        "upsample_or_upweight", size, "Upsample or upweight?", base, {"method": UPSAMPLE_METHODS},
        claim="Showing rare examples more often (upsampling) and counting them more (upweighting) are equivalent "
              "in theory but not with mini-batches: upsampling overfits the rare classes more, and cooling the "
              "sampling temperature during training (cooldown) limits that.",
        paper="Li et al., NAACL 2025, Upsample or Upweight? Balanced Training on Heavily Imbalanced Datasets",
        questions=("Why would seeing the same few rare examples many times make the model memorise them?",
                   "Which method's results vary most from seed to seed? Would you trust one run of it?",
                   "The cooldown returns to the natural class mix at the end: what does that cost the rare classes?"),
        gpu_note="The paper trains language models on heavily imbalanced language and task mixtures (GPU-days). "
                 "CIFAR-100-LT with ResNet-32, 4 methods x 5 seeds is about 10 GPU-hours.",
        setup="Digits, long-tailed training split (ratio 50), a small MLP, 20 epochs, 4 seeds; temperature "
              "sampling q ∝ prior^(1/T) with T = 5, with and without cooling to T = 1 over the second half.",
        analyse=analyse_upsample)


# --- 4. margins and priors -----------------------------------------------------------------------

TAUS = np.linspace(0.0, 2.0, 9)


def _margin_methods(size: str) -> dict[str, dict]:
    drw = 1 if size == "tiny" else 15
    return {"ce": {}, "ldam_drw": {"loss.name": "ldam", "loss.drw_epoch": drw},
            "balanced_softmax": {"loss.name": "balanced_softmax"}, "logit_adjusted": {"loss.name": "logit_adjusted"}}


def _posthoc_bal(tau: float):
    return lambda r: _bal(logit_adjustment(r.artifacts, tau=float(tau)), r.artifacts.labels)


def analyse_margins(runs: Sequence[LessonRun]) -> Verdict:
    names = {"ce": "plain CE", "ldam_drw": "LDAM-DRW", "balanced_softmax": "balanced softmax",
             "logit_adjusted": "logit-adjusted loss"}
    cells = {m: cell_runs(runs, method=m) for m in names}
    findings = [paired_finding(cells[m], cells["ce"], bal, label=f"{names[m]} minus plain CE",
                               measure="balanced accuracy", expect="higher")
                for m in ("logit_adjusted", "balanced_softmax", "ldam_drw")]
    findings.append(paired_finding(cells["ce"], cells["ce"], _posthoc_bal(1.0), value_b=bal,
                                   label="plain CE with post-hoc logit adjustment (tau = 1) minus plain CE",
                                   measure="balanced accuracy", expect="higher"))
    bars = [interval_rows(names[m], "balanced accuracy", c, bal) for m, c in cells.items() if c]
    if cells["ce"]:
        bars.append(interval_rows("CE + post-hoc (tau 1)", "balanced accuracy", cells["ce"], _posthoc_bal(1.0)))
    sweep = [interval_rows(float(t), "plain CE, adjusted after training", cells["ce"], _posthoc_bal(t))
             for t in TAUS] if cells["ce"] else []
    held = sum(f.status == "holds" for f in findings[:3])
    best = max(sweep, key=lambda row: row["y"] if np.isfinite(row["y"]) else -1) if sweep else None
    caption = (f"Balanced accuracy: plain CE {_pct(_mean(cells['ce'], bal))}, logit-adjusted loss "
               f"{_pct(_mean(cells['logit_adjusted'], bal))}, balanced softmax "
               f"{_pct(_mean(cells['balanced_softmax'], bal))}, LDAM-DRW {_pct(_mean(cells['ldam_drw'], bal))}. "
               f"{held} of the 3 losses beat plain CE beyond noise here. "
               + (f"Adjusting the plain model after training peaks near tau = {best['x']:.2f} "
                  f"({_pct(best['y'])})." if best else ""))
    charts = (Chart("bars", "Balanced accuracy of each loss", _frame(bars), "", "balanced accuracy"),
              Chart("lines", "Post-hoc logit adjustment of plain CE: the tau sweep", _frame(sweep),
                    "tau (0: no adjustment, 1: the Bayes correction for a balanced test)", "balanced accuracy",
                    reference=_mean(cells["logit_adjusted"], bal) if cells["logit_adjusted"] else None,
                    reference_label="logit-adjusted loss"))
    return Verdict(tuple(findings), caption, charts, _frame(bars + sweep), len(runs))


@LESSONS.register("margins_and_priors", display="Margins and priors", params=LessonParams,
                  description="LDAM-DRW, balanced softmax and logit adjustment against plain cross-entropy.",
                  paper="Cao et al. NeurIPS 2019; Ren et al. NeurIPS 2020; Menon et al. ICLR 2021")
def margins_and_priors(*, size: str) -> Lesson:
    base = {"data": _digits(ratio=50), "model": MLP, "train": _train(size, 20), "evaluation": _seeds(size, 4)}
    return _lesson(
        "margins_and_priors", size, "Margins and priors", base, {"method": _margin_methods(size)},
        claim="Losses that build the class prior into training (larger margins for rare classes, or logits shifted "
              "by log prior) beat plain cross-entropy on balanced accuracy; shifting a plain model's scores after "
              "training by tau x log prior does much of the same.",
        paper="Cao et al., NeurIPS 2019 (LDAM-DRW); Ren et al., NeurIPS 2020 (balanced softmax); Menon et al., "
              "ICLR 2021 (logit adjustment)",
        questions=("The post-hoc curve peaks somewhere: why near tau = 1, and what happens far past it?",
                   "If post-hoc adjustment is free, when would you still change the loss?",
                   "Balanced softmax and the logit-adjusted loss (tau = 1) give the same numbers here: why?"),
        gpu_note="Paper scale: CIFAR-10-LT (ratio 100), ResNet-32, 200 epochs: 4 losses x 3 seeds = 12 trainings, "
                 "several GPU-hours (reported: CE 70.4 %, LDAM-DRW 77.0 %, logit adjustment 77.9 %).",
        setup="Digits, long-tailed training split (ratio 50), a small MLP, 20 epochs (DRW from epoch 15), "
              "4 seeds; the tau sweep re-scores the plain runs.",
        analyse=analyse_margins)


# --- 5. decoupling -------------------------------------------------------------------------------

def _norm_spearman(r: LessonRun) -> float:
    a = r.artifacts
    table = class_geometry(a.features, a.labels, a.head_weight, a.class_counts)
    return norm_count_correlation(table)["weight_norm_count_spearman"]


def _tau_norm_bal(r: LessonRun) -> float:
    tau = select_tau_norm(r.artifacts).best_tau
    return _bal(tau_norm(r.artifacts, tau=tau), r.artifacts.labels)


def analyse_decoupling(runs: Sequence[LessonRun]) -> Verdict:
    ce, crt = cell_runs(runs, method="ce"), cell_runs(runs, method="crt")
    f_norm = paired_finding(ce, ce, _norm_spearman, value_b=lambda r: 0.0,
                            label="rank correlation of classifier weight norm with class count (plain training)",
                            measure="Spearman correlation", expect="higher")
    f_crt = paired_finding(crt, ce, bal, label="cRT minus plain training", measure="balanced accuracy",
                           expect="higher")
    f_tau = paired_finding(ce, ce, _tau_norm_bal, value_b=bal, label="tau-norm (tau chosen on validation) minus "
                           "plain training", measure="balanced accuracy", expect="higher")
    f_flat = paired_finding(crt, ce, _norm_spearman, label="weight-norm correlation after cRT minus before",
                            measure="Spearman correlation", expect="lower")
    scatter = []
    for method, cell in (("plain", ce), ("cRT", crt)):
        for r in cell:
            a = r.artifacts
            norms = np.linalg.norm(a.head_weight, axis=1)
            scatter += [{"x": float(c), "series": method, "y": float(n), "low": np.nan, "high": np.nan, "sd": np.nan,
                         "n": 1} for c, n in zip(a.class_counts, norms)]
    bars = [interval_rows(n, "balanced accuracy", c, v) for n, c, v in
            (("plain", ce, bal), ("tau-norm", ce, _tau_norm_bal), ("cRT", crt, bal)) if c]
    ranks = _sentence(f_norm, "rank with the class counts", "rank against the class counts",
                      "do not clearly follow the class counts")
    caption = (f"With plain training the classifier's weight norms {ranks} (Spearman "
               f"{_mean(ce, _norm_spearman):+.2f} on average"
               f"{'' if not crt else f', {_mean(crt, _norm_spearman):+.2f} after cRT'}). "
               f"Balanced accuracy: plain {_pct(_mean(ce, bal))}, tau-norm {_pct(_mean(ce, _tau_norm_bal))}, "
               f"cRT {_pct(_mean(crt, bal))}. "
               + _sentence(f_crt, "Re-training the classifier alone helps: the features were good enough.",
                           "Re-training the classifier alone hurts here.",
                           "cRT and plain training cannot be told apart on these seeds."))
    charts = (Chart("scatter", "Classifier weight norm against training count (every seed)", _frame(scatter),
                    "training samples of the class (log scale)", "weight norm ||w||", log_x=True, bounds=None),
              Chart("bars", "Balanced accuracy: plain, tau-norm, cRT", _frame(bars), "", "balanced accuracy"))
    return Verdict((f_norm, f_crt, f_tau, f_flat), caption, charts, _frame(bars), len(runs))


@LESSONS.register("decoupling", display="Decoupling the classifier", params=LessonParams,
                  description="Weight norms follow class counts; cRT and tau-norm fix the classifier alone.",
                  paper="Kang et al., ICLR 2020, Decoupling Representation and Classifier for Long-Tailed Recognition")
def decoupling(*, size: str) -> Lesson:
    crt = {"stage2.name": "crt", **({"stage2.epochs": 1} if size == "tiny" else {})}
    base = {"data": _digits(ratio=50), "model": MLP, "train": _train(size, 20), "evaluation": _seeds(size, 4)}
    return _lesson(
        "decoupling", size, "Decoupling the classifier", base, {"method": {"ce": {}, "crt": crt}},
        claim="After plain training, the classifier's weight vectors are longer for common classes; the features "
              "are fine, and re-balancing the classifier alone (cRT: re-train it class-balanced; tau-norm: divide "
              "each weight by its norm^tau) recovers the rare classes.",
        paper="Kang et al., ICLR 2020, Decoupling Representation and Classifier for Long-Tailed Recognition",
        questions=("Why would a longer weight vector make a class win more often?",
                   "tau-norm needs no training at all: what does it assume about the features?",
                   "Does cRT flatten the norms completely? Should it?"),
        gpu_note="Paper scale: ImageNet-LT with ResNeXt-50, 90 epochs plus 10 of cRT: a few GPU-days; "
                 "CIFAR-10-LT with ResNet-32 is under an hour per seed.",
        setup="Digits, long-tailed training split (ratio 50), a small MLP, 20 epochs, 4 seeds; cRT re-trains the "
              "classifier for 10 class-balanced epochs; tau-norm re-scores the plain runs.",
        analyse=analyse_decoupling)


# --- 6. minority collapse --------------------------------------------------------------------------

COLLAPSE_RATIOS = [1, 10, 100]


def _collapse(r: LessonRun) -> dict[str, float]:
    """Within-group cosines of the classifier vectors and train-feature class means, head =
    the first three classes of the profile's order, tail = the last three (the same classes
    at every ratio, so the ratios compare like with like)."""
    a = r.artifacts
    k = a.num_classes
    order = r.config.data.imbalance.class_order or list(range(k))
    groups = np.array(["medium"] * k, dtype=object)
    groups[list(order[:3])], groups[list(order[-3:])] = "head", "tail"
    feats, labels = np.asarray(a.train_features, dtype=np.float64), np.asarray(a.train_labels)
    means = np.stack([feats[labels == c].mean(axis=0) if (labels == c).any() else np.full(feats.shape[1], np.nan)
                      for c in range(k)])
    centred = means - np.nanmean(means, axis=0)
    return minority_collapse(a.head_weight, centred, list(groups))


def analyse_collapse(runs: Sequence[LessonRun]) -> Verdict:
    low, high = (cell_runs(runs, data__imbalance__ratio=str(x)) for x in (COLLAPSE_RATIOS[0], COLLAPSE_RATIOS[-1]))
    f_w = paired_finding(high, low, lambda r: _collapse(r)["tail_weight_cosine"],
                         label=f"tail classifier vectors' mean cosine, ratio {COLLAPSE_RATIOS[-1]} minus "
                               f"{COLLAPSE_RATIOS[0]}", measure="cosine", expect="higher")
    f_m = paired_finding(high, low, lambda r: _collapse(r)["tail_mean_cosine"],
                         label="tail class means' mean cosine, same comparison", measure="cosine", expect="higher")
    f_h = paired_finding(high, high, lambda r: _collapse(r)["tail_weight_cosine"],
                         value_b=lambda r: _collapse(r)["head_weight_cosine"],
                         label=f"tail minus head classifier cosine at ratio {COLLAPSE_RATIOS[-1]}", measure="cosine",
                         expect="higher")
    rows = []
    for ratio in COLLAPSE_RATIOS:
        cell = cell_runs(runs, data__imbalance__ratio=str(ratio))
        for key, name in (("tail_weight_cosine", "tail classifier vectors"),
                          ("head_weight_cosine", "head classifier vectors"), ("tail_mean_cosine", "tail class means")):
            if cell:
                rows.append(interval_rows(ratio, name, cell, lambda r, key=key: _collapse(r)[key]))
    k = runs[0].artifacts.num_classes if runs else 10
    caption = (f"The tail classes' classifier vectors have mean pairwise cosine "
               f"{_mean(low, lambda r: _collapse(r)['tail_weight_cosine']):+.2f} when training is balanced and "
               f"{_mean(high, lambda r: _collapse(r)['tail_weight_cosine']):+.2f} at ratio {COLLAPSE_RATIOS[-1]} "
               f"(a perfectly spread simplex has {-1 / (k - 1):+.2f}). "
               + _sentence(f_w, "They are pulled together as the imbalance grows: minority collapse.",
                           "They spread apart instead: the claim does not hold on these runs.",
                           "The change cannot be told from noise on these seeds."))
    chart = Chart("lines", "How close together the tail classes sit", _frame(rows), "imbalance ratio (log scale)",
                  "mean pairwise cosine", log_x=True, reference=-1 / (k - 1), reference_label="simplex (ideal)",
                  bounds=(-1.0, 1.0))
    return Verdict((f_w, f_m, f_h), caption, (chart,), _frame(rows), len(runs))


@LESSONS.register("minority_collapse", display="Minority collapse", params=LessonParams,
                  description="As imbalance grows, the rare classes' classifier vectors collapse toward each other.",
                  paper="Fang et al., PNAS 2021; Dang et al., ICML 2023")
def minority_collapse_lesson(*, size: str) -> Lesson:
    base = {"data": _digits(), "model": MLP, "train": _train(size, 40), "evaluation": _seeds(size, 3)}
    return _lesson(
        "minority_collapse", size, "Minority collapse", base, {"data.imbalance.ratio": COLLAPSE_RATIOS},
        claim="Trained long enough on imbalanced data, the classifier vectors of the rare classes point ever closer "
              "together as the imbalance grows (minority collapse), instead of spreading out evenly as they do on "
              "balanced data (neural collapse).",
        paper="Fang et al., PNAS 2021, Exploring deep neural networks via layer-peeled model: minority collapse in "
              "imbalanced training; Dang et al., ICML 2023, Neural collapse in deep linear networks",
        questions=("If two classes' vectors point the same way, what happens to the model's choice between them?",
                   "Why is the head group's cosine a useful control?",
                   "The paper's effect needs training to zero loss: is 40 epochs enough here?"),
        gpu_note="Paper scale: CIFAR-10 with VGG/ResNet trained 350 epochs to zero training loss at several ratios: "
                 "about a GPU-hour per run.",
        setup="Digits, long-tailed training split (ratio 1, 10, 100), a small MLP (64 features), 40 epochs, "
              "3 seeds; head = the 3 most common classes, tail = the 3 rarest (the same classes at every ratio).",
        analyse=analyse_collapse)


# --- 7. calibration ----------------------------------------------------------------------------------

CALIBRATION_METHODS = {"ce": {}, "weighted_ce": {"loss.name": "weighted_ce"},
                       "class_balanced": {"sampler.name": "class_balanced"}}


def _calibration(r: LessonRun) -> dict:
    a = r.artifacts
    return calibration_summary(a.logits, a.labels, a.class_counts, a.val_logits, a.val_labels)


def analyse_calibration(runs: Sequence[LessonRun]) -> Verdict:
    memo: dict[str, dict] = {}

    def cal(r: LessonRun) -> dict:
        key = r.run_id or str(id(r))
        if key not in memo:
            memo[key] = _calibration(r)
        return memo[key]

    before, after = (lambda r: cal(r)["ece"]), (lambda r: cal(r)["ece_after_temperature"])
    cells = {m: cell_runs(runs, method=m) for m in CALIBRATION_METHODS}
    findings = (
        paired_finding(cells["weighted_ce"], cells["ce"], before, label="ECE of re-weighted minus plain training",
                       measure="ECE", expect="different"),
        paired_finding(cells["weighted_ce"], cells["weighted_ce"], after, value_b=before,
                       label="re-weighted training: ECE after temperature scaling minus before", measure="ECE",
                       expect="lower"),
        paired_finding(cells["ce"], cells["ce"], after, value_b=before,
                       label="plain training: ECE after temperature scaling minus before", measure="ECE",
                       expect="lower"),
        paired_finding(cells["class_balanced"], cells["ce"], before,
                       label="ECE of class-balanced sampling minus plain training", measure="ECE", expect="different"),
    )
    names = {"ce": "plain", "weighted_ce": "re-weighted loss", "class_balanced": "class-balanced sampling"}
    rows = [interval_rows(names[m], "ECE as trained", c, before) for m, c in cells.items() if c]
    rows += [interval_rows(names[m], "ECE after temperature scaling", c, after) for m, c in cells.items() if c]
    caption = (f"Expected calibration error: plain {_mean(cells['ce'], before):.3f}, re-weighted "
               f"{_mean(cells['weighted_ce'], before):.3f}, class-balanced sampling "
               f"{_mean(cells['class_balanced'], before):.3f}; after temperature scaling "
               f"{_mean(cells['ce'], after):.3f}, {_mean(cells['weighted_ce'], after):.3f} and "
               f"{_mean(cells['class_balanced'], after):.3f}. "
               + _sentence(findings[0], f"Re-weighting {'raised' if findings[0].estimate > 0 else 'lowered'} ECE "
                                        "beyond noise.", "",
                           "Re-weighting did not move ECE beyond noise here.")
               + " " + _sentence(findings[1], "One temperature, fitted on validation data, repairs much of it.",
                                 "Temperature scaling made it worse here.",
                                 "Temperature scaling's effect is within noise here."))
    chart = Chart("bars", "Calibration error before and after temperature scaling", _frame(rows), "",
                  "ECE (lower is better)")
    return Verdict(findings, caption, (chart,), _frame(rows), len(runs))


@LESSONS.register("calibration", display="Calibration after re-balancing", params=LessonParams,
                  description="Re-balancing moves the calibration error; temperature scaling repairs confidence.",
                  paper="Guo et al., ICML 2017; Zhong et al., CVPR 2021")
def calibration_lesson(*, size: str) -> Lesson:
    base = {"data": _digits(ratio=50), "model": MLP, "train": _train(size, 20), "evaluation": _seeds(size, 4)}
    return _lesson(
        "calibration", size, "Calibration after re-balancing", base, {"method": CALIBRATION_METHODS},
        claim="Re-balancing changes how well a model's confidence matches its accuracy (ECE moves, often up), and "
              "one temperature fitted on validation data repairs much of the mismatch without changing a "
              "single prediction.",
        paper="Guo et al., ICML 2017, On Calibration of Modern Neural Networks; Zhong et al., CVPR 2021, Improving "
              "Calibration for Long-Tailed Recognition",
        questions=("Re-weighting pushes scores toward rare classes. Which way should that move confidence?",
                   "Temperature scaling never changes a prediction: why can it still matter to a clinician?",
                   "The validation split is small for rare classes: what could go wrong with the fitted temperature?"),
        gpu_note="Paper scale: CIFAR-10/100-LT with ResNet-32, 200 epochs, 3 methods x 3 seeds: several GPU-hours.",
        setup="Digits, long-tailed training split (ratio 50), a small MLP, 20 epochs, 4 seeds; temperature fitted "
              "on each run's validation split.",
        analyse=analyse_calibration)


# --- 8. SMOTE vs random oversampling -------------------------------------------------------------

RESAMPLE_METHODS = {"none": {}, "random_over": {"resampler.name": "random_over"}, "smote": {"resampler.name": "smote"}}


def _table_base(size: str, model: dict | None = None, **train: Any) -> dict[str, Any]:
    return {"data": {"source": "breast_cancer", "imbalance": {"profile": "exp", "ratio": 20, "class_order": [1, 0]}},
            "model": model or {"name": "mlp", "hidden": 32}, "train": _train(size, 30, **train),
            "evaluation": {"folds": 2 if size == "tiny" else 5}}


def _rare_of(r: LessonRun) -> int:
    return int(np.argmin(r.artifacts.class_counts))


def _rare_recall_binary(r: LessonRun) -> float:
    return _recall(r.artifacts.logits, r.artifacts.labels, np.array([_rare_of(r)]))


def analyse_smote(runs: Sequence[LessonRun]) -> Verdict:
    cells = {m: cell_runs(runs, method=m) for m in RESAMPLE_METHODS}
    findings = (
        paired_finding(cells["smote"], cells["random_over"], bal, label="SMOTE minus random oversampling",
                       measure="balanced accuracy", expect="higher"),
        paired_finding(cells["smote"], cells["none"], bal, label="SMOTE minus no resampling",
                       measure="balanced accuracy", expect="higher"),
        paired_finding(cells["smote"], cells["random_over"], _rare_recall_binary,
                       label="recall of the rare class: SMOTE minus random oversampling", measure="recall",
                       expect="higher"),
    )
    names = {"none": "no resampling", "random_over": "random oversampling", "smote": "SMOTE"}
    rows = [interval_rows(names[m], "balanced accuracy", c, bal) for m, c in cells.items() if c]
    rows += [interval_rows(names[m], "recall of the rare class", c, _rare_recall_binary) for m, c in cells.items()
             if c]
    caption = (f"Balanced accuracy over the folds: no resampling {_pct(_mean(cells['none'], bal))}, random "
               f"oversampling {_pct(_mean(cells['random_over'], bal))}, SMOTE {_pct(_mean(cells['smote'], bal))}. "
               + _sentence(findings[0], "Making up new rare rows beats copying them here, as Chawla et al. found.",
                           "Copying rare rows beats making up new ones here.",
                           "SMOTE and random oversampling cannot be told apart on these folds."))
    chart = Chart("bars", "SMOTE against random oversampling (breast cancer table)", _frame(rows), "", "value")
    return Verdict(findings, caption, (chart,), _frame(rows), len(runs))


@LESSONS.register("smote_vs_random", display="SMOTE vs random oversampling", params=LessonParams,
                  description="Synthetic rare-class rows against copies of them, on a table.",
                  paper="Chawla et al., JAIR 2002, SMOTE: Synthetic Minority Over-sampling Technique")
def smote_vs_random(*, size: str) -> Lesson:
    return _lesson(
        "smote_vs_random", size, "SMOTE vs random oversampling", _table_base(size), {"method": RESAMPLE_METHODS},
        claim="Making up new rare-class rows between neighbouring ones (SMOTE) widens the region the model assigns "
              "to the rare class and beats simply copying rare rows (random oversampling).",
        paper="Chawla, Bowyer, Hall & Kegelmeyer, JAIR 2002, SMOTE: Synthetic Minority Over-sampling Technique",
        questions=("Where in the feature space does SMOTE put its new rows? When could that be wrong?",
                   "Copies and synthetic rows both balance the counts: why might they train differently?",
                   "With 5 folds, how large would a difference have to be to show beyond noise?"),
        gpu_note="Tables need no GPU: the paper's data sets are small. This is the full-size lesson.",
        setup="Breast cancer table (malignant made rare: ratio 20 in training), a small MLP, 30 epochs, "
              "5 stratified folds (tiny: 2).",
        analyse=analyse_smote)


# --- 9. optimising F1 directly ---------------------------------------------------------------------

F1_METHODS = {"ce": {}, "dice": {"loss.name": "dice"},
              "anyloss": {"loss.name": "anyloss", "train.optimizer": "adamw", "train.lr": 0.01}}


def _rare_f1(r: LessonRun, logits: np.ndarray | None = None) -> float:
    a = r.artifacts
    pred = np.asarray(a.logits if logits is None else logits).argmax(axis=1)
    rare = _rare_of(r)
    return float(f1_score(a.labels == rare, pred == rare, zero_division=0))


def _tuned_f1(r: LessonRun) -> float:
    """F1 of the rare class with its threshold on the softmax score chosen on validation."""
    a = r.artifacts
    rare = _rare_of(r)

    def score(z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.float64)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e[:, rare] / e.sum(axis=1)

    val_y = np.asarray(a.val_labels) == rare
    if not val_y.any():
        return _rare_f1(r)
    precision, recall, thresholds = precision_recall_curve(val_y, score(a.val_logits))
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))[:-1]
    threshold = thresholds[int(np.argmax(f1))]
    return float(f1_score(a.labels == rare, score(a.logits) >= threshold, zero_division=0))


def analyse_f1(runs: Sequence[LessonRun]) -> Verdict:
    cells = {m: cell_runs(runs, method=m) for m in F1_METHODS}
    findings = (
        paired_finding(cells["dice"], cells["ce"], _rare_f1, value_b=_tuned_f1,
                       label="Dice loss minus CE with a tuned threshold", measure="F1 of the rare class",
                       expect="higher"),
        paired_finding(cells["anyloss"], cells["ce"], _rare_f1, value_b=_tuned_f1,
                       label="AnyLoss (F1) minus CE with a tuned threshold", measure="F1 of the rare class",
                       expect="higher"),
        paired_finding(cells["ce"], cells["ce"], _tuned_f1, value_b=_rare_f1,
                       label="CE: tuned threshold minus the default", measure="F1 of the rare class", expect="higher"),
    )
    rows = [interval_rows(n, "F1 of the rare class", c, v) for n, c, v in (
        ("CE, default threshold", cells["ce"], _rare_f1), ("CE, tuned threshold", cells["ce"], _tuned_f1),
        ("Dice", cells["dice"], _rare_f1), ("AnyLoss (F1)", cells["anyloss"], _rare_f1)) if c]
    caption = (f"F1 of the rare class: CE {_pct(_mean(cells['ce'], _rare_f1))} at the default threshold and "
               f"{_pct(_mean(cells['ce'], _tuned_f1))} with its threshold tuned on validation data; Dice "
               f"{_pct(_mean(cells['dice'], _rare_f1))}, AnyLoss {_pct(_mean(cells['anyloss'], _rare_f1))}. "
               + _sentence(findings[0], "Optimising the overlap directly beats tuning CE's threshold here.",
                           "A tuned threshold on plain CE beats the Dice loss here.",
                           "Dice and a tuned CE cannot be told apart on these folds: the cheap fix is as good."))
    chart = Chart("bars", "F1 of the rare class", _frame(rows), "", "F1")
    return Verdict(findings, caption, (chart,), _frame(rows), len(runs))


@LESSONS.register("f1_directly", display="Optimising F1 directly", params=LessonParams,
                  description="Dice and AnyLoss against cross-entropy with a tuned threshold on a rare binary class.",
                  paper="Li et al., ACL 2020 (Dice); Han, Moniz & Chawla, KDD 2024 (AnyLoss)")
def f1_directly(*, size: str) -> Lesson:
    return _lesson(
        "f1_directly", size, "Optimising F1 directly", _table_base(size), {"method": F1_METHODS},
        claim="Training on a differentiable F1 (Dice, AnyLoss) gives a better F1 on a rare class than "
              "cross-entropy, even when cross-entropy's decision threshold is tuned for F1.",
        paper="Li et al., ACL 2020, Dice Loss for Data-imbalanced NLP Tasks; Han, Moniz & Chawla, KDD 2024, "
              "AnyLoss: Transforming Classification Metrics into Loss Functions",
        questions=("Tuning a threshold costs nothing after training: what is the fair baseline for a new loss?",
                   "F1 ignores true negatives. When is that what you want?",
                   "The threshold is chosen on a small validation split: how stable is it across folds?"),
        gpu_note="Tables need no GPU. The papers' text tasks (BERT fine-tuning) take a GPU-hour per run.",
        setup="Breast cancer table (malignant made rare: ratio 20 in training), a small MLP, 30 epochs "
              "(AnyLoss with adamw), 5 stratified folds (tiny: 2).",
        analyse=analyse_f1)


TEACHING_ORDER = ("accuracy_hides_tail", "over_under_threshold", "upsample_or_upweight", "margins_and_priors",
                  "decoupling", "minority_collapse", "calibration", "smote_vs_random", "f1_directly")


def lesson_json(lesson: Lesson) -> dict[str, Any]:
    """The lesson's description for `--json` (no functions, no arrays)."""
    return {"name": lesson.name, "display": lesson.display, "claim": lesson.claim, "paper": lesson.paper,
            "questions": list(lesson.questions), "gpu_note": lesson.gpu_note, "setup": lesson.setup,
            "size": lesson.size, "runs": lesson.n_runs, "spec_hash": lesson.spec.spec_hash,
            "sweep": json.loads(json.dumps(lesson.spec.to_dict(), default=str))}
