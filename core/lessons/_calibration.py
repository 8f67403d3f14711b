"""Lesson 7: re-balancing moves calibration; temperature scaling repairs it (Guo et al. 2017)."""

from __future__ import annotations

from collections.abc import Sequence

from core.analysis import calibration_summary
from core.lessons._base import Chart, LessonRun, Verdict, cell_runs, family, interval_rows, paired_finding
from core.lessons._common import MLP, LessonSpec, declare, digits, frame, mean_of, seeds, sentence, train

METHODS = {"ce": {}, "weighted_ce": {"loss.name": "weighted_ce"}, "class_balanced": {"sampler.name": "class_balanced"}}
NAMES = {"ce": "plain", "weighted_ce": "re-weighted loss", "class_balanced": "class-balanced sampling"}


def analyse(runs: Sequence[LessonRun]) -> Verdict:
    memo: dict[str, dict] = {}

    def cal(r: LessonRun) -> dict:
        key = r.run_id or str(id(r))
        if key not in memo:
            a = r.artifacts
            memo[key] = calibration_summary(a.logits, a.labels, a.class_counts, a.val_logits, a.val_labels)
        return memo[key]

    before, after = (lambda r: cal(r)["ece"]), (lambda r: cal(r)["ece_after_temperature"])
    cells = {m: cell_runs(runs, method=m) for m in METHODS}
    findings = family(
        paired_finding(cells["weighted_ce"], cells["ce"], before, label="ECE of re-weighted minus plain training",
                       measure="ECE", expect="different"),
        paired_finding(cells["weighted_ce"], cells["weighted_ce"], after, value_b=before,
                       label="re-weighted training: ECE after temperature scaling minus before", measure="ECE",
                       expect="lower"),
        paired_finding(cells["ce"], cells["ce"], after, value_b=before,
                       label="plain training: ECE after temperature scaling minus before", measure="ECE",
                       expect="lower"),
        paired_finding(cells["class_balanced"], cells["ce"], before,
                       label="ECE of class-balanced sampling minus plain training", measure="ECE", expect="different"))
    rows = [interval_rows(NAMES[m], "ECE as trained", c, before) for m, c in cells.items() if c]
    rows += [interval_rows(NAMES[m], "ECE after temperature scaling", c, after) for m, c in cells.items() if c]
    caption = (f"Expected calibration error: plain {mean_of(cells['ce'], before):.3f}, re-weighted "
               f"{mean_of(cells['weighted_ce'], before):.3f}, class-balanced sampling "
               f"{mean_of(cells['class_balanced'], before):.3f}; after temperature scaling "
               f"{mean_of(cells['ce'], after):.3f}, {mean_of(cells['weighted_ce'], after):.3f} and "
               f"{mean_of(cells['class_balanced'], after):.3f}. "
               + sentence(findings[0], f"Re-weighting {'raised' if findings[0].estimate > 0 else 'lowered'} ECE "
                                       "beyond noise.", "",
                          "Re-weighting did not move ECE beyond noise here.")
               + " " + sentence(findings[1], "One temperature, fitted on validation data, repairs much of it.",
                                "Temperature scaling made it worse here.",
                                "Temperature scaling's effect is within noise here."))
    chart = Chart("bars", "Calibration error before and after temperature scaling", frame(rows), "",
                  "ECE (lower is better)")
    return Verdict(findings, caption, (chart,), frame(rows), len(runs))


SPEC = declare(LessonSpec(
    name="calibration", display="Calibration after re-balancing",
    description="Re-balancing moves the calibration error; temperature scaling repairs confidence.",
    claim="Re-balancing changes how well a model's confidence matches its accuracy (ECE moves, often up), and "
          "one temperature fitted on validation data repairs much of the mismatch without changing a "
          "single prediction.",
    paper="Guo et al., ICML 2017, On Calibration of Modern Neural Networks; Zhong et al., CVPR 2021, Improving "
          "Calibration for Long-Tailed Recognition",
    questions=("Re-weighting pushes scores toward rare classes. Which way should that move confidence?",
               "Temperature scaling never changes a prediction: why can it still matter to a clinician?",
               "The validation split is small for rare classes: what could go wrong with the fitted temperature?"),
    gpu_note="Paper scale: CIFAR-10/100-LT with ResNet-32, 200 epochs, 3 methods x 3 seeds: several GPU-hours.",
    setup="Digits, long-tailed training split (ratio 50), a small MLP, 20 epochs, 8 seeds; temperature fitted "
          "on each run's validation split.",
    base=lambda size: {"data": digits(ratio=50), "model": MLP, "train": train(size, 20), "evaluation": seeds(size)},
    grid=lambda size: {"method": METHODS},
    analyse=analyse))
