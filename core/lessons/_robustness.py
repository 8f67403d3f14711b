"""Lesson 10: robustness costs the rare classes more, and re-weighting narrows the gap (Hu et al.
2023; Wang et al. 2022).

The measure is Hu et al.'s accuracy disparity: the head classes' clean accuracy minus the tail
classes' (mean recall within each group), read from each run's stored test scores. Adversarial
training at a growing budget should widen it on a long-tailed set; re-weighted adversarial
training (SRAT) at the same budget should narrow it again.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.data import class_groups
from core.lessons._base import Chart, LessonRun, Verdict, cell_runs, family, interval_rows, paired_finding
from core.lessons._common import MLP, LessonSpec, bal, declare, digits, frame, mean_of, pct, seeds, sentence, train

EPSILONS = (0.05, 0.15)  # training budgets, brightness units of the 8x8 digits
STEPS = 3
METHODS = {
    "plain": {},
    f"pgd {EPSILONS[0]:g}": {"robust.name": "pgd_at", "robust.epsilon": EPSILONS[0], "robust.steps": STEPS},
    f"pgd {EPSILONS[1]:g}": {"robust.name": "pgd_at", "robust.epsilon": EPSILONS[1], "robust.steps": STEPS},
    f"srat {EPSILONS[1]:g}": {"robust.name": "srat", "robust.epsilon": EPSILONS[1], "robust.steps": STEPS},
}
_GAP_BOUNDS = (-1.0, 1.0)


def accuracy_disparity(r: LessonRun) -> float:
    """Clean head accuracy minus clean tail accuracy (mean recall of each group's classes)."""
    art, d = r.artifacts, r.config.data
    groups = np.asarray(class_groups(art.class_counts, many=d.many_shot, few=d.few_shot))
    y, pred = art.labels, art.logits.argmax(1)
    recall = np.array([(pred[y == c] == c).mean() if (y == c).any() else np.nan for c in range(art.num_classes)])
    head, tail = recall[groups == "head"], recall[groups == "tail"]
    if not np.isfinite(head).any() or not np.isfinite(tail).any():
        return float("nan")
    return float(np.nanmean(head) - np.nanmean(tail))


def analyse(runs: Sequence[LessonRun]) -> Verdict:
    cells = {m: cell_runs(runs, method=m) for m in METHODS}
    plain, small, large, srat = (cells[m] for m in METHODS)
    f_cost, f_reweight, f_bal = family(
        paired_finding(large, plain, accuracy_disparity, label=f"adversarial training (epsilon {EPSILONS[1]:g}) "
                       "minus plain training", measure="accuracy disparity", expect="higher", bounds=_GAP_BOUNDS),
        paired_finding(srat, large, accuracy_disparity, label=f"re-weighted minus plain adversarial training "
                       f"(epsilon {EPSILONS[1]:g})", measure="accuracy disparity", expect="lower",
                       bounds=_GAP_BOUNDS),
        paired_finding(srat, large, bal, label="re-weighted minus plain adversarial training",
                       measure="balanced accuracy", expect="higher"))
    rows = [interval_rows(eps, "adversarial training", cell, accuracy_disparity, _GAP_BOUNDS)
            for eps, cell in ((0.0, plain), (EPSILONS[0], small), (EPSILONS[1], large)) if cell]
    if srat:
        rows.append(interval_rows(EPSILONS[1], "re-weighted (SRAT)", srat, accuracy_disparity, _GAP_BOUNDS))
    caption = (f"Head minus tail clean accuracy: plain training {pct(mean_of(plain, accuracy_disparity))}, "
               f"adversarial training at epsilon {EPSILONS[0]:g} {pct(mean_of(small, accuracy_disparity))} and "
               f"{EPSILONS[1]:g} {pct(mean_of(large, accuracy_disparity))}, re-weighted at {EPSILONS[1]:g} "
               f"{pct(mean_of(srat, accuracy_disparity))}. "
               + sentence(f_cost, "Robustness widened the gap between common and rare classes, as Hu et al. found.",
                          "Robustness did not widen the gap here, against the paper's finding.",
                          "Whether robustness widened the gap cannot be told from these seeds.")
               + " " + sentence(f_reweight, "Re-weighting narrowed the gap again.",
                                "Re-weighting widened the gap here.",
                                "Re-weighting and plain adversarial training cannot be told apart on the gap."))
    chart = Chart("lines", "Gap between head and tail accuracy as the training budget grows", frame(rows),
                  "training budget epsilon", "head minus tail accuracy")
    return Verdict((f_cost, f_reweight, f_bal), caption, (chart,), frame(rows), len(runs))


SPEC = declare(LessonSpec(
    name="robustness_costs_tail", display="Robustness costs the rare classes more",
    description="Adversarial training on a long-tailed set, at two budgets, with and without re-weighting.",
    claim="Training a model to resist small attacks widens the accuracy gap between common and rare classes, "
          "more as the attack budget grows; re-weighting the rare classes in adversarial training narrows it.",
    paper="Hu, Wang, Zhao & Xu 2023, Understanding the Impact of Adversarial Robustness on Accuracy Disparity (ICML); "
          "Wang et al. 2022, Imbalanced Adversarial Training with Reweighting (ICDM)",
    questions=("Why would a budget that is the same for every class cost a class with few examples more?",
               "The gap here is of clean accuracy: what would you expect of the gap on attacked inputs?",
               "Re-weighting shifts errors between classes: which classes pay for the narrower gap?"),
    gpu_note="The papers' scale: CIFAR-10/100-LT with ResNet-18 and 10-step PGD at 8/255, some hours of GPU per "
             "run; here 8x8 digits, a small MLP and 3-step PGD.",
    setup=f"Digits, long-tailed (exponential, ratio 50), a small MLP, 20 epochs, 8 seeds; plain training, PGD "
          f"adversarial training at epsilon {EPSILONS[0]:g} and {EPSILONS[1]:g} ({STEPS} steps) and re-weighted "
          f"adversarial training (SRAT) at {EPSILONS[1]:g}.",
    base=lambda size: {"data": digits("exp", 50), "model": MLP, "train": train(size, 20),
                       "evaluation": seeds(size)},
    grid=lambda size: {"method": METHODS},
    analyse=analyse))
