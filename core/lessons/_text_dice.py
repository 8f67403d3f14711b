"""Lesson 12: the self-adjusting Dice loss against cross-entropy (plain and class-weighted)
for a rare diagnosis's F1 in short clinic notes (Li et al. 2020)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.lessons._base import Chart, LessonRun, Verdict, cell_runs, family, interval_rows, paired_finding
from core.lessons._common import LessonSpec, bal, declare, frame, mean_of, pct, seeds, sentence, train
from core.lessons._smote import rare_class_of

METHODS = {"ce": {}, "weighted_ce": {"loss.name": "weighted_ce"}, "dice": {"loss.name": "dice"}}
NAMES = {"ce": "cross-entropy", "weighted_ce": "class-weighted cross-entropy", "dice": "self-adjusting Dice"}


def rare_f1(r: LessonRun) -> float:
    """F1 of the rarest training class at the model's own decision (the most probable class)."""
    a, rare = r.artifacts, rare_class_of(r)
    pred = np.asarray(a.logits).argmax(axis=1) == rare
    positive = np.asarray(a.labels) == rare
    total = np.count_nonzero(pred) + np.count_nonzero(positive)
    return float(2 * np.count_nonzero(pred & positive) / total) if total else 0.0


def text_base(size: str) -> dict:
    """Synthetic clinic notes (8 diagnoses, words shared between neighbours), the training
    split made long-tailed (ratio 30), word counts and a linear model, over seeds."""
    notes = {"most_common": 300 if size == "tiny" else 1200, "ratio": 8, "num_classes": 8}
    return {"data": {"source": "synthetic_notes", "params": notes, "imbalance": {"profile": "exp", "ratio": 30}},
            "model": {"name": "linear"}, "train": train(size, 30, optimizer="adamw", lr=0.05),
            "evaluation": seeds(size)}


def analyse(runs: Sequence[LessonRun]) -> Verdict:
    cells = {m: cell_runs(runs, method=m) for m in METHODS}
    findings = family(
        paired_finding(cells["dice"], cells["ce"], rare_f1, label="Dice minus cross-entropy",
                       measure="F1 of the rarest diagnosis", expect="higher"),
        paired_finding(cells["dice"], cells["weighted_ce"], rare_f1, label="Dice minus class-weighted cross-entropy",
                       measure="F1 of the rarest diagnosis", expect="higher"),
        paired_finding(cells["weighted_ce"], cells["ce"], rare_f1, label="class-weighted minus plain cross-entropy",
                       measure="F1 of the rarest diagnosis", expect="higher"))
    rows = [interval_rows(NAMES[m], "F1 of the rarest diagnosis", c, rare_f1) for m, c in cells.items() if c]
    rows += [interval_rows(NAMES[m], "balanced accuracy", c, bal) for m, c in cells.items() if c]
    caption = (f"F1 of the rarest diagnosis in the notes: cross-entropy {pct(mean_of(cells['ce'], rare_f1))}, "
               f"class-weighted {pct(mean_of(cells['weighted_ce'], rare_f1))}, Dice "
               f"{pct(mean_of(cells['dice'], rare_f1))}. "
               + sentence(findings[0], "Dice beats plain cross-entropy for the rare diagnosis here, as Li et al. found "
                                       "on their text tasks.",
                          "Plain cross-entropy beats Dice for the rare diagnosis here.",
                          "Dice and cross-entropy cannot be told apart over these seeds."))
    chart = Chart("bars", "F1 of the rarest diagnosis and balanced accuracy", frame(rows), "", "score")
    return Verdict(findings, caption, (chart,), frame(rows), len(runs))


SPEC = declare(LessonSpec(
    name="dice_on_text", display="Dice loss on clinic notes",
    description="The self-adjusting Dice loss against plain and class-weighted cross-entropy for a rare diagnosis "
                "in short notes.",
    claim="On text with a rare class, the self-adjusting Dice loss gives that class a better F1 than cross-entropy, "
          "plain or class-weighted.",
    paper="Li et al., ACL 2020, Dice Loss for Data-imbalanced NLP Tasks",
    questions=("Dice ignores true negatives, like F1. What does that cost the common diagnoses?",
               "Class weights also favour the rare class: is the gain from Dice, or from paying attention to it at all?",
               "The rare diagnosis has only a few test notes: how wide is the interval, and what would narrow it?"),
    gpu_note="Word counts and a linear model need no GPU. The paper fine-tunes BERT, a GPU-hour per run.",
    setup="Synthetic clinic notes (generated, no real patient): 8 diagnoses sharing words, the training split made "
          "long-tailed (ratio 30), word counts (TF-IDF) and a linear model, 30 epochs, 8 seeds (tiny: 2 seeds, "
          "2 epochs, fewer notes).",
    base=text_base,
    grid=lambda size: {"method": METHODS},
    analyse=analyse))
