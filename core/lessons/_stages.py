"""Lesson 11: the commoner earlier stages sharpen the estimate of the rare last one (Faletto &
Bien 2023, PRESTO).

On ordered stages (seen, clicked, added to cart, bought), a separate logistic regression for
"bought or not" learns from the few buyers alone. Proportional odds lets every boundary
between stages teach one weight vector; PRESTO starts there and lets the last boundary's
weights move away only where the data insist. The measure is the Brier score of the
probability each model gives the last stage, on the test folds (lower is better).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.analysis import softmax
from core.lessons._base import Chart, LessonRun, Verdict, cell_runs, family, interval_rows, paired_finding
from core.lessons._common import LessonSpec, declare, frame, mean_of, sentence

METHODS = {"separate": {"model.name": "separate_logits"}, "proportional_odds": {"model.name": "proportional_odds"},
           "presto": {"model.name": "presto"}}
NAMES = {"separate": "separate regressions", "proportional_odds": "proportional odds", "presto": "PRESTO"}


def last_stage_brier(r: LessonRun) -> float:
    """Brier score of the last stage's predicted probability on the run's test cases."""
    art = r.artifacts
    p = softmax(np.asarray(art.logits, np.float64))[:, -1]
    return float(np.mean((p - (art.labels == art.num_classes - 1)) ** 2))


def last_stage_log_loss(r: LessonRun) -> float:
    art = r.artifacts
    p = np.clip(softmax(np.asarray(art.logits, np.float64))[:, -1], 1e-12, 1 - 1e-12)
    hit = art.labels == art.num_classes - 1
    return float(-np.mean(np.where(hit, np.log(p), np.log(1 - p))))


def analyse(runs: Sequence[LessonRun]) -> Verdict:
    cells = {m: cell_runs(runs, method=m) for m in METHODS}
    findings = family(
        paired_finding(cells["presto"], cells["separate"], last_stage_brier,
                       label="Brier score of the last stage: PRESTO minus separate regressions",
                       measure="Brier score", expect="lower"),
        paired_finding(cells["proportional_odds"], cells["separate"], last_stage_brier,
                       label="Brier score of the last stage: proportional odds minus separate regressions",
                       measure="Brier score", expect="lower"),
        paired_finding(cells["presto"], cells["proportional_odds"], last_stage_brier,
                       label="Brier score of the last stage: PRESTO minus proportional odds",
                       measure="Brier score", expect="lower"),
        paired_finding(cells["presto"], cells["separate"], last_stage_log_loss,
                       label="log loss of the last stage: PRESTO minus separate regressions",
                       measure="log loss", expect="lower", bounds=None))
    rows = [interval_rows(NAMES[m], "Brier score of the last stage", c, last_stage_brier) for m, c in cells.items()
            if c]
    brier = {m: mean_of(c, last_stage_brier) for m, c in cells.items()}
    caption = (f"Brier score of the last stage over the test folds: separate regressions {brier['separate']:.4f}, "
               f"proportional odds {brier['proportional_odds']:.4f}, PRESTO {brier['presto']:.4f}. "
               + sentence(findings[0], "Learning from the earlier stages sharpens the rare last one here, as Faletto "
                                       "and Bien found.",
                          "The separate regression for the last stage does better here: the earlier stages mislead it.",
                          "PRESTO and separate regressions cannot be told apart on these folds."))
    chart = Chart("bars", "The rare last stage predicted three ways (ordered stages)", frame(rows), "",
                  "Brier score (lower is better)")
    return Verdict(findings, caption, (chart,), frame(rows), len(runs))


def _base(size: str) -> dict:
    return {"data": {"source": "ordinal_stages", "params": {"samples": 2000, "last_share": 0.02, "noise_features": 20}},
            "model": {"name": "separate_logits"},
            "evaluation": {"folds": 2} if size == "tiny" else {"folds": 5, "seeds": [0, 1, 2]}}


SPEC = declare(LessonSpec(
    name="rare_last_stage", display="The rare last stage learns from the earlier ones",
    description="Ordered stages with a rare last one: separate regressions, proportional odds and PRESTO.",
    claim="When the classes are ordered stages, the commoner earlier stages sharpen the estimate of the rare last "
          "one: a model that shares what every boundary between stages learns (proportional odds, PRESTO) predicts "
          "the last stage better than a regression that learns from it alone.",
    paper="Faletto & Bien, ICML 2023, Predicting Rare Events by Shrinking Towards Proportional Odds",
    questions=("Why would visits that stopped at 'clicked' tell us anything about who buys?",
               "When would proportional odds be wrong, and how does PRESTO notice?",
               "Which score of the last stage would you report to a shop owner, and why not accuracy?"),
    gpu_note="Table models need no GPU. This is the full-size lesson.",
    setup="Generated ordered stages (seen, clicked, added to cart, bought: about 2 %), 2,000 rows, 25 features of "
          "which four push a visit through every stage, one matters only for the last step and 20 are noise, as in "
          "the paper's simulations (many features, few rare events); 5 stratified folds, repeated 3 times (tiny: 2 "
          "folds).",
    base=_base,
    grid=lambda size: {"method": METHODS},
    analyse=analyse))
