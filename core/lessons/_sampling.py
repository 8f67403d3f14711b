"""Lesson 2: oversampling against undersampling against thresholding (Buda et al. 2018)."""

from __future__ import annotations

from collections.abc import Sequence

from core.analysis import balanced_accuracy
from core.lessons._base import Chart, LessonRun, Verdict, cell_runs, family, interval_rows, paired_finding
from core.lessons._common import MLP, LessonSpec, bal, declare, digits, frame, mean_of, pct, seeds, sentence, train
from core.methods import prior_threshold

RATIOS = [10, 50]
METHODS = {"ce": {}, "oversample": {"sampler.name": "oversample"}, "undersample": {"sampler.name": "undersample"}}


def _threshold_bal(r: LessonRun) -> float:
    return balanced_accuracy(prior_threshold(r.artifacts), r.artifacts.labels)


def analyse(runs: Sequence[LessonRun]) -> Verdict:
    top = str(RATIOS[-1])
    ce, over, under = (cell_runs(runs, method=m, data__imbalance__ratio=top) for m in METHODS)
    f_over_under, f_thresh, f_over = family(
        paired_finding(over, under, bal, label=f"oversampling minus undersampling (ratio {top})",
                       measure="balanced accuracy", expect="higher"),
        paired_finding(ce, ce, _threshold_bal, value_b=bal, label="thresholding minus plain training",
                       measure="balanced accuracy", expect="higher"),
        paired_finding(over, ce, bal, label="oversampling minus plain training", measure="balanced accuracy",
                       expect="higher"))
    rows = []
    for ratio in RATIOS:
        for method in METHODS:
            cell = cell_runs(runs, method=method, data__imbalance__ratio=str(ratio))
            if cell:
                rows.append(interval_rows(ratio, {"ce": "plain"}.get(method, method), cell, bal))
        cell = cell_runs(runs, method="ce", data__imbalance__ratio=str(ratio))
        if cell:
            rows.append(interval_rows(ratio, "thresholding", cell, _threshold_bal))
    caption = (f"At step imbalance ratio {top}: oversampling {pct(mean_of(over, bal))}, undersampling "
               f"{pct(mean_of(under, bal))}, plain training {pct(mean_of(ce, bal))} and plain training with "
               f"thresholding {pct(mean_of(ce, _threshold_bal))} balanced accuracy. "
               + sentence(f_over_under, "Oversampling beats undersampling here, as Buda et al. found.",
                          "Undersampling beats oversampling here, against the paper's finding.",
                          "Oversampling and undersampling cannot be told apart on these seeds."))
    chart = Chart("lines", "Balanced accuracy as the imbalance grows", frame(rows), "imbalance ratio (log scale)",
                  "balanced accuracy", log_x=True)
    return Verdict((f_over_under, f_thresh, f_over), caption, (chart,), frame(rows), len(runs))


SPEC = declare(LessonSpec(
    name="over_under_threshold", display="Over- vs under-sampling vs thresholding",
    description="Random oversampling, undersampling and prior thresholding on a step imbalance.",
    claim="Oversampling the rare classes beats undersampling the common ones, and dividing the scores by the "
          "class prior (thresholding) helps plain training.",
    paper="Buda, Maki & Mazurowski, Neural Networks 2018, A systematic study of the class imbalance problem "
          "in convolutional neural networks",
    questions=("Undersampling throws data away: at which ratio would you expect it to hurt most?",
               "Thresholding needs no retraining. What does it need to know instead?",
               "Is the gap between the methods larger than the spread over seeds?"),
    gpu_note="The paper's scale: MNIST, CIFAR-10 and ImageNet subsets with many ratios; CIFAR-10 with "
             "ResNet-32, 4 methods x 5 ratios x 3 seeds is about a GPU-day.",
    setup="Digits, step imbalance (half the classes rare) at ratio 10 and 50, a small MLP, 20 epochs, 8 seeds; "
          "thresholding re-scores the plain runs.",
    base=lambda size: {"data": digits("step", 10, mu=0.5), "model": MLP, "train": train(size, 20),
                       "evaluation": seeds(size)},
    grid=lambda size: {"method": METHODS, "data.imbalance.ratio": RATIOS},
    analyse=analyse))
