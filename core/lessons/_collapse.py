"""Lesson 6: minority collapse (Fang et al. 2021): rare classes' classifier vectors draw together."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.analysis import minority_collapse
from core.lessons._base import Chart, LessonRun, Verdict, cell_runs, family, interval_rows, paired_finding
from core.lessons._common import MLP, LessonSpec, declare, digits, frame, mean_of, seeds, sentence, train

RATIOS = [1, 10, 100]
COSINE = (-1.0, 1.0)


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


def _cosine(key: str):
    return lambda r: _collapse(r)[key]


def analyse(runs: Sequence[LessonRun]) -> Verdict:
    low, high = (cell_runs(runs, data__imbalance__ratio=str(x)) for x in (RATIOS[0], RATIOS[-1]))
    f_w, f_m, f_h = family(
        paired_finding(high, low, _cosine("tail_weight_cosine"), bounds=COSINE,
                       label=f"tail classifier vectors' mean cosine, ratio {RATIOS[-1]} minus {RATIOS[0]}",
                       measure="cosine", expect="higher"),
        paired_finding(high, low, _cosine("tail_mean_cosine"), bounds=COSINE,
                       label="tail class means' mean cosine, same comparison", measure="cosine", expect="higher"),
        paired_finding(high, high, _cosine("tail_weight_cosine"), value_b=_cosine("head_weight_cosine"),
                       bounds=COSINE, label=f"tail minus head classifier cosine at ratio {RATIOS[-1]}",
                       measure="cosine", expect="higher"))
    rows = []
    for ratio in RATIOS:
        cell = cell_runs(runs, data__imbalance__ratio=str(ratio))
        for key, name in (("tail_weight_cosine", "tail classifier vectors"),
                          ("head_weight_cosine", "head classifier vectors"), ("tail_mean_cosine", "tail class means")):
            if cell:
                rows.append(interval_rows(ratio, name, cell, _cosine(key), COSINE))
    k = runs[0].artifacts.num_classes if runs else 10
    caption = (f"The tail classes' classifier vectors have mean pairwise cosine "
               f"{mean_of(low, _cosine('tail_weight_cosine')):+.2f} when training is balanced and "
               f"{mean_of(high, _cosine('tail_weight_cosine')):+.2f} at ratio {RATIOS[-1]} "
               f"(a perfectly spread simplex has {-1 / (k - 1):+.2f}). "
               + sentence(f_w, "They are pulled together as the imbalance grows: minority collapse.",
                          "They spread apart instead: the claim does not hold on these runs.",
                          "The change cannot be told from noise on these seeds."))
    chart = Chart("lines", "How close together the tail classes sit", frame(rows), "imbalance ratio (log scale)",
                  "mean pairwise cosine", log_x=True, reference=-1 / (k - 1), reference_label="simplex (ideal)",
                  bounds=COSINE)
    return Verdict((f_w, f_m, f_h), caption, (chart,), frame(rows), len(runs))


SPEC = declare(LessonSpec(
    name="minority_collapse", display="Minority collapse",
    description="As imbalance grows, the rare classes' classifier vectors collapse toward each other.",
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
          "8 seeds; head = the 3 most common classes, tail = the 3 rarest (the same classes at every ratio).",
    base=lambda size: {"data": digits(), "model": MLP, "train": train(size, 40), "evaluation": seeds(size)},
    grid=lambda size: {"data.imbalance.ratio": RATIOS},
    analyse=analyse))
