"""Lesson 3: upsample or upweight? Temperature sampling with cooldown (Li et al. 2025)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.lessons._base import (
    Chart, LessonRun, Verdict, cell_runs, family, interval_rows, paired_finding, rare_classes, train_logits,
)
from core.lessons._common import MLP, LessonSpec, bal, declare, digits, frame, mean_of, pct, recall_of, seeds, sentence, train

METHODS = {
    "ce": {},
    "upweight": {"loss.name": "weighted_ce"},
    "upsample": {"sampler.name": "temperature", "sampler.t0": 5.0, "sampler.cooldown": False},
    "upsample_cooldown": {"sampler.name": "temperature", "sampler.t0": 5.0, "sampler.t_end": 1.0,
                          "sampler.cooldown": True, "sampler.cooldown_start": 0.5},
}
NAMES = {"ce": "plain", "upweight": "upweighting", "upsample": "upsampling", "upsample_cooldown": "upsampling + cooldown"}
GAP = (-1.0, 1.0)  # a difference of two recalls


def _overfit_gap(r: LessonRun) -> float:
    """Recall of the rare classes on their training samples minus on the test set."""
    a = r.artifacts
    rare = rare_classes(a.class_counts)
    return recall_of(train_logits(a), np.asarray(a.train_labels), rare) - recall_of(a.logits, a.labels, rare)


def analyse(runs: Sequence[LessonRun]) -> Verdict:
    cells = {m: cell_runs(runs, method=m) for m in METHODS}
    f_gap, f_cool, f_bal = family(
        paired_finding(cells["upsample"], cells["upweight"], _overfit_gap, bounds=GAP,
                       label="rare-class overfitting (train minus test recall): upsampling minus upweighting",
                       measure="recall gap", expect="higher"),
        paired_finding(cells["upsample_cooldown"], cells["upsample"], _overfit_gap, bounds=GAP,
                       label="rare-class overfitting: upsampling with cooldown minus without",
                       measure="recall gap", expect="lower"),
        paired_finding(cells["upsample_cooldown"], cells["upweight"], bal,
                       label="upsampling with cooldown minus upweighting", measure="balanced accuracy",
                       expect="higher"))
    rows = [interval_rows(NAMES[m], "balanced accuracy", c, bal) for m, c in cells.items() if c]
    rows += [interval_rows(NAMES[m], "rare-class train-test recall gap", c, _overfit_gap, GAP)
             for m, c in cells.items() if c]
    sds = {NAMES[m]: interval_rows(0, "", c, bal)["sd"] for m, c in cells.items() if len(c) > 1}
    spread = ", ".join(f"{k} {v:.3f}" for k, v in sds.items() if np.isfinite(v))
    caption = (f"Rare classes' recall drops from training to test by {pct(mean_of(cells['upsample'], _overfit_gap))} "
               f"with upsampling, {pct(mean_of(cells['upweight'], _overfit_gap))} with upweighting and "
               f"{pct(mean_of(cells['upsample_cooldown'], _overfit_gap))} with upsampling plus cooldown. "
               + sentence(f_gap, "Upsampling overfits the rare classes more, as the paper reports.",
                          "Here upweighting overfits more: the claim does not hold on these runs.",
                          "The overfitting of the two cannot be told apart on these seeds.")
               + (f" Spread of balanced accuracy over seeds (sd): {spread}." if spread else ""))
    chart = Chart("bars", "Balanced accuracy and rare-class overfitting", frame(rows), "", "value", bounds=GAP)
    return Verdict((f_gap, f_cool, f_bal), caption, (chart,), frame(rows), len(runs))


SPEC = declare(LessonSpec(
    name="upsample_or_upweight", display="Upsample or upweight?",
    description="Temperature sampling with cooldown against loss re-weighting: accuracy and overfitting of the rare "
                "classes.",
    claim="Showing rare examples more often (upsampling) and counting them more (upweighting) are equivalent "
          "in theory but not with mini-batches: upsampling overfits the rare classes more, and cooling the "
          "sampling temperature during training (cooldown) limits that.",
    paper="Li et al., NAACL 2025, Upsample or Upweight? Balanced Training on Heavily Imbalanced Datasets",
    questions=("Why would seeing the same few rare examples many times make the model memorise them?",
               "Which method's results vary most from seed to seed? Would you trust one run of it?",
               "The cooldown returns to the natural class mix at the end: what does that cost the rare classes?"),
    gpu_note="The paper trains language models on heavily imbalanced language and task mixtures (GPU-days). "
             "CIFAR-100-LT with ResNet-32, 4 methods x 5 seeds is about 10 GPU-hours.",
    setup="Digits, long-tailed training split (ratio 50), a small MLP, 20 epochs, 8 seeds; temperature "
          "sampling q ∝ prior^(1/T) with T = 5, with and without cooling to T = 1 over the second half.",
    base=lambda size: {"data": digits(ratio=50), "model": MLP, "train": train(size, 20), "evaluation": seeds(size)},
    grid=lambda size: {"method": METHODS},
    analyse=analyse))
