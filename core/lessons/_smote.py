"""Lesson 8: SMOTE against random oversampling on a table (Chawla et al. 2002)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.lessons._base import Chart, LessonRun, Verdict, cell_runs, family, interval_rows, paired_finding
from core.lessons._common import LessonSpec, bal, declare, frame, mean_of, pct, recall_of, sentence, table_base

METHODS = {"none": {}, "random_over": {"resampler.name": "random_over"}, "smote": {"resampler.name": "smote"}}
NAMES = {"none": "no resampling", "random_over": "random oversampling", "smote": "SMOTE"}


def rare_class_of(r: LessonRun) -> int:
    return int(np.argmin(r.artifacts.class_counts))


def _rare_recall(r: LessonRun) -> float:
    return recall_of(r.artifacts.logits, r.artifacts.labels, np.array([rare_class_of(r)]))


def analyse(runs: Sequence[LessonRun]) -> Verdict:
    cells = {m: cell_runs(runs, method=m) for m in METHODS}
    findings = family(
        paired_finding(cells["smote"], cells["random_over"], bal, label="SMOTE minus random oversampling",
                       measure="balanced accuracy", expect="higher"),
        paired_finding(cells["smote"], cells["none"], bal, label="SMOTE minus no resampling",
                       measure="balanced accuracy", expect="higher"),
        paired_finding(cells["smote"], cells["random_over"], _rare_recall,
                       label="recall of the rare class: SMOTE minus random oversampling", measure="recall",
                       expect="higher"))
    rows = [interval_rows(NAMES[m], "balanced accuracy", c, bal) for m, c in cells.items() if c]
    rows += [interval_rows(NAMES[m], "recall of the rare class", c, _rare_recall) for m, c in cells.items() if c]
    caption = (f"Balanced accuracy over the folds: no resampling {pct(mean_of(cells['none'], bal))}, random "
               f"oversampling {pct(mean_of(cells['random_over'], bal))}, SMOTE {pct(mean_of(cells['smote'], bal))}. "
               + sentence(findings[0], "Making up new rare rows beats copying them here, as Chawla et al. found.",
                          "Copying rare rows beats making up new ones here.",
                          "SMOTE and random oversampling cannot be told apart on these folds."))
    chart = Chart("bars", "SMOTE against random oversampling (breast cancer table)", frame(rows), "", "value")
    return Verdict(findings, caption, (chart,), frame(rows), len(runs))


SPEC = declare(LessonSpec(
    name="smote_vs_random", display="SMOTE vs random oversampling",
    description="Synthetic rare-class rows against copies of them, on a table.",
    claim="Making up new rare-class rows between neighbouring ones (SMOTE) widens the region the model assigns "
          "to the rare class and beats simply copying rare rows (random oversampling).",
    paper="Chawla, Bowyer, Hall & Kegelmeyer, JAIR 2002, SMOTE: Synthetic Minority Over-sampling Technique",
    questions=("Where in the feature space does SMOTE put its new rows? When could that be wrong?",
               "Copies and synthetic rows both balance the counts: why might they train differently?",
               "With 5 folds, how large would a difference have to be to show beyond noise?"),
    gpu_note="Tables need no GPU: the paper's data sets are small. This is the full-size lesson.",
    setup="Breast cancer table (malignant made rare: ratio 20 in training), a small MLP, 30 epochs, "
          "5 stratified folds (tiny: 2).",
    base=table_base,
    grid=lambda size: {"method": METHODS},
    analyse=analyse))
