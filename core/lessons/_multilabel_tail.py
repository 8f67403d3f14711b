"""Lesson 13: on a multi-label long tail, a re-balanced loss (distribution-balanced, DB; and
the asymmetric loss, ASL) against plain binary cross-entropy (BCE) for the rare findings'
mAP (Wu et al. 2020; Ridnik et al. 2021).

Each finding's average precision (AP) is read from the run's stored test scores and label
matrix; head / tail are the findings with more than `data.many_shot` / fewer than
`data.few_shot` training cases (`core.analysis.multilabel_summary`, the numbers a run's
metrics.json reports). Tail mAP needs no threshold, so nothing here is tuned.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.analysis import multilabel_summary, per_label_average_precision, sigmoid, t_interval
from core.lessons._base import Chart, LessonRun, Verdict, cell_runs, family, interval_rows, paired_finding
from core.lessons._common import LessonSpec, declare, frame, mean_of, pct, seeds, sentence, train

METHODS = {"bce": {}, "db": {"loss.name": "db"}, "asl": {"loss.name": "asl"}}
NAMES = {"bce": "plain BCE", "db": "distribution-balanced (DB)", "asl": "asymmetric (ASL)"}
EPOCHS = 10
HEAD_SHOT, TAIL_SHOT = 250, 100  # head: more training cases than 250; tail: fewer than 100


def _summary(r: LessonRun, key: str) -> float:
    a, d = r.artifacts, r.config.data
    return multilabel_summary(sigmoid(np.asarray(a.logits)), a.label_matrix, a.label_counts,
                              many=d.many_shot, few=d.few_shot)[key]


def tail_map(r: LessonRun) -> float:
    """mAP over the findings with fewer than `few_shot` training cases."""
    return _summary(r, "map_tail")


def head_map(r: LessonRun) -> float:
    """mAP over the findings with more than `many_shot` training cases."""
    return _summary(r, "map_head")


def label_ap_rows(series: str, runs: Sequence[LessonRun]) -> list[dict]:
    """Per finding: its training cases (x) and its AP over the runs (mean and 95 % t-interval)."""
    if not runs:
        return []
    counts = np.asarray(runs[0].artifacts.label_counts)
    aps = np.array([per_label_average_precision(sigmoid(np.asarray(r.artifacts.logits)), r.artifacts.label_matrix)
                    for r in runs])
    rows = []
    for j in np.argsort(counts, kind="stable"):
        s = t_interval(aps[:, j], bounds=(0.0, 1.0))
        rows.append({"x": float(counts[j]), "series": series, "y": s["mean"], "low": s["ci"][0], "high": s["ci"][1],
                     "sd": s["sd"], "n": s["n"]})
    return rows


def table_base(size: str) -> dict:
    """The generated multi-label table (10 findings, head-to-tail ratio 30), an MLP, over seeds."""
    params = {"n_samples": 300 if size == "tiny" else 2000, "n_labels": 10, "n_features": 20}
    return {"data": {"source": "multilabel_table", "params": params, "many_shot": HEAD_SHOT, "few_shot": TAIL_SHOT},
            "model": {"name": "mlp", "hidden": 64}, "train": train(size, EPOCHS, lr=0.05), "evaluation": seeds(size)}


def analyse(runs: Sequence[LessonRun]) -> Verdict:
    cells = {m: cell_runs(runs, method=m) for m in METHODS}
    findings = family(
        paired_finding(cells["db"], cells["bce"], tail_map, label="DB minus plain BCE",
                       measure="mAP of the rare findings", expect="higher"),
        paired_finding(cells["asl"], cells["bce"], tail_map, label="ASL minus plain BCE",
                       measure="mAP of the rare findings", expect="higher"),
        paired_finding(cells["db"], cells["bce"], head_map, label="DB minus plain BCE, common findings",
                       measure="mAP of the common findings", expect="higher"))
    rows = [interval_rows(NAMES[m], "rare findings (tail)", c, tail_map) for m, c in cells.items() if c]
    rows += [interval_rows(NAMES[m], "common findings (head)", c, head_map) for m, c in cells.items() if c]
    per_label = [row for m in ("bce", "db") for row in label_ap_rows(NAMES[m], cells[m])]
    head = findings[2]
    head_words = {"holds": "DB also helps the common findings.",
                  "does not hold": "DB costs the common findings something here.",
                  }.get(head.status, "On the common findings the two cannot be told apart.")
    caption = (f"mAP of the rare findings: plain BCE {pct(mean_of(cells['bce'], tail_map))}, DB "
               f"{pct(mean_of(cells['db'], tail_map))}, ASL {pct(mean_of(cells['asl'], tail_map))}; of the common "
               f"findings: BCE {pct(mean_of(cells['bce'], head_map))}, DB {pct(mean_of(cells['db'], head_map))}. "
               + sentence(findings[0], "The distribution-balanced loss ranks the rare findings better than plain BCE "
                                       "here, as Wu et al. found.",
                          "Plain BCE ranks the rare findings better than the distribution-balanced loss here.",
                          "DB and plain BCE cannot be told apart on the rare findings over these seeds.")
               + ("" if head.status in ("too few runs", "cannot tell", "not enough runs") else " " + head_words))
    charts = (Chart("lines", "Each finding's average precision against its training cases (mean over seeds)",
                    frame(per_label), "training cases with the finding (log scale)", "average precision",
                    log_x=True),
              Chart("bars", "mAP of the rare and the common findings", frame(rows), "", "mAP"))
    return Verdict(findings, caption, charts, frame(rows), len(runs))


SPEC = declare(LessonSpec(
    name="multilabel_tail_loss", display="Re-balanced loss for rare findings",
    description="On cases that carry several findings, a re-balanced loss (DB or ASL) against plain BCE for the "
                "rare findings' mAP.",
    claim="When each case can carry several findings and some findings are rare, a re-balanced loss (the "
          "distribution-balanced loss, or the asymmetric loss) ranks the rare findings better than plain binary "
          "cross-entropy: their mAP (tail mAP) is higher.",
    paper="Wu et al., ECCV 2020, Distribution-Balanced Loss for Multi-Label Classification in Long-Tailed Datasets; "
          "Ridnik et al., ICCV 2021, Asymmetric Loss for Multi-Label Classification",
    questions=("Average precision asks: when the model ranks the cases by how likely a finding is, do the cases "
               "that truly have it come first? Why is that a fairer score for a rare finding than accuracy?",
               "A case with a common and a rare finding is counted for both. How does DB stop such cases from "
               "being counted twice for the common one?",
               "The rare findings have few test cases: how wide are their intervals, and what would narrow them?"),
    gpu_note="A table and a small network need no GPU. The papers train ResNet-50 on COCO-MLT and VOC-MLT "
             "pictures: a few GPU-hours per run.",
    setup="A generated table of 2,000 cases, each carrying one or more of 10 findings whose frequencies fall "
          "30-fold from the most to the least common; a small network, 10 epochs, 8 seeds per loss (the same "
          "split, so the seeds measure training noise). Rare findings (tail): fewer than 100 training cases; "
          "common (head): more than 250. Average precision: 1 when every case with the finding is ranked above "
          "every case without it; mAP is its mean over the findings of a group (tiny: 2 seeds, 2 epochs, "
          "300 cases).",
    base=table_base,
    grid=lambda size: {"method": METHODS},
    analyse=analyse))
