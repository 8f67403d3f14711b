"""Lesson 1: plain accuracy on a long-tailed test set hides the rare classes' failure."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.analysis import metrics_at_prior
from core.lessons._base import Chart, LessonRun, Verdict, cell_runs, family, interval_rows, paired_finding, rare_classes
from core.lessons._common import MLP, LessonSpec, declare, digits, frame, mean_of, pct, recall_of, seeds, sentence, train

RATIOS = [1, 10, 100]


def _acc_at(r: LessonRun, choice: str) -> float:
    a = r.artifacts
    return float(metrics_at_prior(a.logits, a.labels, choice, train_prior=a.prior)["accuracy"])


def _rare_recall(r: LessonRun) -> float:
    a = r.artifacts
    return recall_of(a.logits, a.labels, rare_classes(a.class_counts))


def _other_recall(r: LessonRun) -> float:
    a = r.artifacts
    return recall_of(a.logits, a.labels, np.setdiff1d(np.arange(a.num_classes), rare_classes(a.class_counts)))


def analyse(runs: Sequence[LessonRun]) -> Verdict:
    top = cell_runs(runs, data__imbalance__ratio=str(RATIOS[-1]))
    gap, rare = family(
        paired_finding(top, top, lambda r: _acc_at(r, "train"), value_b=lambda r: _acc_at(r, "balanced"),
                       label=f"accuracy on a long-tailed test set minus on a balanced one (ratio {RATIOS[-1]})",
                       measure="accuracy", expect="higher"),
        paired_finding(top, top, _rare_recall, value_b=_other_recall,
                       label="recall of the rare classes minus the other classes", measure="recall", expect="lower"))
    rows = []
    for ratio in RATIOS:
        cell = cell_runs(runs, data__imbalance__ratio=str(ratio))
        if cell:
            rows += [interval_rows(ratio, "accuracy, long-tailed test set", cell, lambda r: _acc_at(r, "train")),
                     interval_rows(ratio, "accuracy, balanced test set", cell, lambda r: _acc_at(r, "balanced")),
                     interval_rows(ratio, "recall of the rare classes", cell, _rare_recall)]
    lt, balanced, rr = (mean_of(top, lambda r: _acc_at(r, "train")), mean_of(top, lambda r: _acc_at(r, "balanced")),
                        mean_of(top, _rare_recall))
    caption = (f"At imbalance ratio {RATIOS[-1]} the same models score {pct(lt)} accuracy on a test set with the "
               f"training mix and {pct(balanced)} on one where every class counts the same; the rarest third of the "
               f"classes is found {pct(rr)} of the time. "
               + sentence(gap, "The long-tailed score hides the rare classes' failure.",
                          "Here the long-tailed score is the lower one: the claim does not hold on these runs.",
                          "The two scores cannot be told apart on these seeds."))
    chart = Chart("lines", "The same models, scored on two test sets", frame(rows), "imbalance ratio (log scale)",
                  "score", log_x=True)
    return Verdict((gap, rare), caption, (chart,), frame(rows), len(runs))


SPEC = declare(LessonSpec(
    name="accuracy_hides_tail", display="Accuracy hides the tail",
    description="The same model looks good on a long-tailed test set and poor on a balanced one.",
    claim="On a test set with the training mix, plain accuracy stays high while the rare classes fail; "
          "scored with every class counting the same, the same model looks much worse.",
    paper="Buda et al., Neural Networks 2018; Liu et al., CVPR 2019 (OLTR): report per-class or balanced scores.",
    questions=("Which number would you put in a report for a screening test, and why?",
               "At ratio 1 the two scores agree: why?",
               "How many rare-class cases does the test set hold? How sure can we be of their recall?"),
    gpu_note="At paper scale (CIFAR-10-LT, ResNet-32, 200 epochs, 3 ratios x 3 seeds = 9 trainings) this is "
             "a few GPU-hours; the effect is the same.",
    setup="Digits (8x8 images), long-tailed training split (ratio 1, 10, 100), a small MLP, 20 epochs, "
          "8 seeds; test scored at the training mix and at a balanced mix (re-weighting, no new data).",
    base=lambda size: {"data": digits(), "model": MLP, "train": train(size, 20), "evaluation": seeds(size)},
    grid=lambda size: {"data.imbalance.ratio": RATIOS},
    analyse=analyse))
