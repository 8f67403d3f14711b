"""Lesson 9: optimising F1 directly (Dice, AnyLoss) against CE with a tuned threshold."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.analysis import f1_tuned_on_validation, softmax
from core.lessons._base import Chart, LessonRun, Verdict, cell_runs, family, interval_rows, paired_finding
from core.lessons._common import LessonSpec, declare, frame, mean_of, pct, sentence, table_base
from core.lessons._smote import rare_class_of

METHODS = {"ce": {}, "dice": {"loss.name": "dice"},
           "anyloss": {"loss.name": "anyloss", "train.optimizer": "adamw", "train.lr": 0.01}}


def _rare_f1(r: LessonRun) -> float:
    """F1 of the rare class at the model's own decision (the most probable class)."""
    a, rare = r.artifacts, rare_class_of(r)
    pred = np.asarray(a.logits).argmax(axis=1) == rare
    positive = np.asarray(a.labels) == rare
    tp = np.count_nonzero(pred & positive)
    total = np.count_nonzero(pred) + np.count_nonzero(positive)
    return float(2 * tp / total) if total else 0.0


def _tuned_f1(r: LessonRun) -> float:
    """F1 of the rare class with its threshold on the softmax score chosen on validation."""
    a, rare = r.artifacts, rare_class_of(r)
    return f1_tuned_on_validation(softmax(a.val_logits)[:, rare], np.asarray(a.val_labels) == rare,
                                  softmax(a.logits)[:, rare], np.asarray(a.labels) == rare)


def analyse(runs: Sequence[LessonRun]) -> Verdict:
    cells = {m: cell_runs(runs, method=m) for m in METHODS}
    findings = family(
        paired_finding(cells["dice"], cells["ce"], _rare_f1, value_b=_tuned_f1,
                       label="Dice loss minus CE with a tuned threshold", measure="F1 of the rare class",
                       expect="higher"),
        paired_finding(cells["anyloss"], cells["ce"], _rare_f1, value_b=_tuned_f1,
                       label="AnyLoss (F1) minus CE with a tuned threshold", measure="F1 of the rare class",
                       expect="higher"),
        paired_finding(cells["ce"], cells["ce"], _tuned_f1, value_b=_rare_f1,
                       label="CE: tuned threshold minus the default", measure="F1 of the rare class", expect="higher"))
    rows = [interval_rows(n, "F1 of the rare class", c, v) for n, c, v in (
        ("CE, default threshold", cells["ce"], _rare_f1), ("CE, tuned threshold", cells["ce"], _tuned_f1),
        ("Dice", cells["dice"], _rare_f1), ("AnyLoss (F1)", cells["anyloss"], _rare_f1)) if c]
    caption = (f"F1 of the rare class: CE {pct(mean_of(cells['ce'], _rare_f1))} at the default threshold and "
               f"{pct(mean_of(cells['ce'], _tuned_f1))} with its threshold tuned on validation data; Dice "
               f"{pct(mean_of(cells['dice'], _rare_f1))}, AnyLoss {pct(mean_of(cells['anyloss'], _rare_f1))}. "
               + sentence(findings[0], "Optimising the overlap directly beats tuning CE's threshold here.",
                          "A tuned threshold on plain CE beats the Dice loss here.",
                          "Dice and a tuned CE cannot be told apart on these folds: the cheap fix is as good."))
    chart = Chart("bars", "F1 of the rare class", frame(rows), "", "F1")
    return Verdict(findings, caption, (chart,), frame(rows), len(runs))


SPEC = declare(LessonSpec(
    name="f1_directly", display="Optimising F1 directly",
    description="Dice and AnyLoss against cross-entropy with a tuned threshold on a rare binary class.",
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
    base=table_base,
    grid=lambda size: {"method": METHODS},
    analyse=analyse))
