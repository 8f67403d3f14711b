"""Lesson 5: decoupling representation and classifier (cRT, tau-norm; Kang et al. 2020)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.analysis import balanced_accuracy, class_geometry, norm_count_correlation
from core.lessons._base import Chart, LessonRun, Verdict, cell_runs, family, interval_rows, paired_finding
from core.lessons._common import MLP, LessonSpec, bal, declare, digits, frame, mean_of, pct, seeds, sentence, train
from core.methods import select_tau_norm, tau_norm

CORRELATION = (-1.0, 1.0)


def _norm_spearman(r: LessonRun) -> float:
    a = r.artifacts
    table = class_geometry(a.features, a.labels, a.head_weight, a.class_counts)
    return norm_count_correlation(table)["weight_norm_count_spearman"]


def _tau_norm_bal(r: LessonRun) -> float:
    tau = select_tau_norm(r.artifacts).best_tau  # chosen on the validation split
    return balanced_accuracy(tau_norm(r.artifacts, tau=tau), r.artifacts.labels)


def analyse(runs: Sequence[LessonRun]) -> Verdict:
    ce, crt = cell_runs(runs, method="ce"), cell_runs(runs, method="crt")
    f_norm, f_crt, f_tau, f_flat = family(
        paired_finding(ce, ce, _norm_spearman, value_b=lambda r: 0.0, bounds=CORRELATION,
                       label="rank correlation of classifier weight norm with class count (plain training)",
                       measure="Spearman correlation", expect="higher"),
        paired_finding(crt, ce, bal, label="cRT minus plain training", measure="balanced accuracy", expect="higher"),
        paired_finding(ce, ce, _tau_norm_bal, value_b=bal, label="tau-norm (tau chosen on validation) minus "
                       "plain training", measure="balanced accuracy", expect="higher"),
        paired_finding(crt, ce, _norm_spearman, bounds=CORRELATION, label="weight-norm correlation after cRT minus "
                       "before", measure="Spearman correlation", expect="lower"))
    scatter = []
    for method, cell in (("plain", ce), ("cRT", crt)):
        for r in cell:
            a = r.artifacts
            norms = np.linalg.norm(a.head_weight, axis=1)
            scatter += [{"x": float(c), "series": method, "y": float(n), "low": np.nan, "high": np.nan, "sd": np.nan,
                         "n": 1} for c, n in zip(a.class_counts, norms, strict=True)]
    bars = [interval_rows(n, "balanced accuracy", c, v) for n, c, v in
            (("plain", ce, bal), ("tau-norm", ce, _tau_norm_bal), ("cRT", crt, bal)) if c]
    ranks = {"holds": "rank with the class counts", "does not hold": "rank against the class counts"}.get(
        f_norm.status, "do not clearly follow the class counts")
    caption = (f"With plain training the classifier's weight norms {ranks} (Spearman "
               f"{mean_of(ce, _norm_spearman):+.2f} on average"
               f"{'' if not crt else f', {mean_of(crt, _norm_spearman):+.2f} after cRT'}). "
               f"Balanced accuracy: plain {pct(mean_of(ce, bal))}, tau-norm {pct(mean_of(ce, _tau_norm_bal))}, "
               f"cRT {pct(mean_of(crt, bal))}. "
               + sentence(f_crt, "Re-training the classifier alone helps: the features were good enough.",
                          "Re-training the classifier alone hurts here.",
                          "cRT and plain training cannot be told apart on these seeds."))
    charts = (Chart("scatter", "Classifier weight norm against training count (every seed)", frame(scatter),
                    "training samples of the class (log scale)", "weight norm ||w||", log_x=True, bounds=None),
              Chart("bars", "Balanced accuracy: plain, tau-norm, cRT", frame(bars), "", "balanced accuracy"))
    return Verdict((f_norm, f_crt, f_tau, f_flat), caption, charts, frame(bars), len(runs))


SPEC = declare(LessonSpec(
    name="decoupling", display="Decoupling the classifier",
    description="Weight norms follow class counts; cRT and tau-norm fix the classifier alone.",
    claim="After plain training, the classifier's weight vectors are longer for common classes; the features "
          "are fine, and re-balancing the classifier alone (cRT: re-train it class-balanced; tau-norm: divide "
          "each weight by its norm^tau) recovers the rare classes.",
    paper="Kang et al., ICLR 2020, Decoupling Representation and Classifier for Long-Tailed Recognition",
    questions=("Why would a longer weight vector make a class win more often?",
               "tau-norm needs no training at all: what does it assume about the features?",
               "Does cRT flatten the norms completely? Should it?"),
    gpu_note="Paper scale: ImageNet-LT with ResNeXt-50, 90 epochs plus 10 of cRT: a few GPU-days; "
             "CIFAR-10-LT with ResNet-32 is under an hour per seed.",
    setup="Digits, long-tailed training split (ratio 50), a small MLP, 20 epochs, 8 seeds; cRT re-trains the "
          "classifier for 10 class-balanced epochs; tau-norm re-scores the plain runs.",
    base=lambda size: {"data": digits(ratio=50), "model": MLP, "train": train(size, 20), "evaluation": seeds(size)},
    grid=lambda size: {"method": {"ce": {}, "crt": {"stage2.name": "crt",
                                                   **({"stage2.epochs": 1} if size == "tiny" else {})}}},
    analyse=analyse))
