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
from core.config import UPLOAD_PREFIX, DataConfig, RunConfig
from core.data import DataError, source_label
from core.lessons._base import Chart, LessonRun, Verdict, cell_runs, family, interval_rows, paired_finding
from core.lessons._common import LessonSpec, declare, frame, mean_of, sentence

MIN_LAST_STAGE = 10  # rows of the last stage an upload needs: 5 folds get two each

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
    return {"data": {"source": "ordinal_stages",
                     "params": {"samples": 2000 if size == "full" else 1000, "last_share": 0.02, "noise_features": 20}},
            "model": {"name": "separate_logits"},
            "evaluation": {"folds": 2} if size == "tiny" else {"folds": 5, "seeds": [0, 1, 2]}}


def upload_problem(data: DataConfig) -> str | None:
    """Why an uploaded table cannot carry this lesson, in plain words (None: it can): it must
    be a table whose label is marked as ordered stages (three or more) with at least
    `MIN_LAST_STAGE` rows of the last stage."""
    name = source_label(data.source)
    if not data.source.startswith(UPLOAD_PREFIX):
        return f"{name} is not an uploaded table; the lesson's own generated stages are its built-in choice"
    if not data.ordinal:
        return (f"{name}: its label is not marked as ordered stages. Open it on the Data page, tick that the label's "
                "values are ordered stages, put them first to last, and save it for training")
    if len(data.ordinal) < 3:
        return (f"{name}: its label has only two stages, where all three models are the same logistic regression; "
                "the lesson needs three or more ordered stages")
    from core.train import prepare_run_data  # the table read as a run reads it (checked, ordered)

    try:
        splits = prepare_run_data(RunConfig(data=data))
    except (DataError, ValueError) as exc:
        return f"{name} cannot be read as the lesson would read it: {exc}"
    if splits.modality != "tabular":
        return f"{name} is not a table; the ordinal models need table columns"
    last = int(sum((y == len(splits.class_names) - 1).sum() for y in (splits.y_train, splits.y_val, splits.y_test)))
    if last < MIN_LAST_STAGE:
        return (f"{name}: its last stage '{splits.class_names[-1]}' has {last} row(s); the lesson needs at least "
                f"{MIN_LAST_STAGE} so that each of its 5 folds tests some")
    return None


def upload_setup(data: DataConfig, size: str) -> str:
    """The set-up in words on a person's uploaded table."""
    stages = " → ".join(data.ordinal or [])
    return (f"Your uploaded table {source_label(data.source)}, its label '{data.label_column or 'as guessed'}' as "
            f"ordered stages ({stages}; the last is the rare event), read as on the Data page; "
            + ("2 stratified folds." if size == "tiny" else "5 stratified folds, repeated 3 times."))


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
          "the paper's simulations (many features, few rare events); 5 stratified folds, repeated 3 times (tiny: 1,000 "
          "rows, 2 folds, PRESTO trying 6 penalties instead of 20).",
    base=_base,
    grid=lambda size: {"method": METHODS if size == "full" else {**METHODS, "presto": {
        "model.name": "presto", "model.n_lambdas": 6}}},
    analyse=analyse,
    data_problem=upload_problem,
    data_setup=upload_setup))
