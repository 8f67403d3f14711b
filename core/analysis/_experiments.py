"""Experiments and comparisons read back from the store.

The statistics are the pure functions of `_paired`, `_verdict` and `_uncertainty`; this
module only finds the finished runs, pairs them (same fold and seed) and hands their stored
numbers over, so the CLI, the pages, sweeps and lessons answer "is A better than B?" the
same way. It reads the store and never trains or queues anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.analysis._compare import SUMMARY_KEYS, comparable
from core.analysis._metrics import MULTILABEL_METRICS, ROBUST_METRICS
from core.analysis._multilabel import sigmoid
from core.analysis._multilabel_stats import compare_multilabel_runs
from core.analysis._paired import compare_experiments, compare_single_runs, mcnemar
from core.analysis._robustness import compare_attacked
from core.analysis._uncertainty import pooled_per_class, summarize_runs
from core.analysis._verdict import Comparison, adjust_family
from core.config import RunConfig
from core.store import EXPERIMENT_PREFIX, ExperimentRecord, RunFileDamaged, RunRecord, RunStore

__all__ = ["EXPERIMENT_KEYS", "ROBUST_KEYS", "MULTILABEL_KEYS", "flat_metrics", "experiment_summary", "compare_against", "compare_ids", "comparison_dict",
           "paired_comparison", "pair_key", "is_experiment_id"]

EXPERIMENT_KEYS: tuple[str, ...] = (*SUMMARY_KEYS, "ece")
# reported only by runs scored under an attack (`evaluation.attack`): summarised and compared
# like the rest, offered where the runs have them
ROBUST_KEYS: tuple[str, ...] = tuple(ROBUST_METRICS)
# a multi-label run's headline numbers (`core.jobs` writes them in its metrics.json)
MULTILABEL_KEYS: tuple[str, ...] = tuple(MULTILABEL_METRICS)
# what two single multi-label runs are compared on case by case: the ranking numbers, which
# need no decision threshold (each run's thresholds were tuned on its own validation scores)
_ML_RANKING = ("map", "map_head", "map_medium", "map_tail", "roc_auc_macro")


def is_experiment_id(item_id: str) -> bool:
    return item_id.startswith(EXPERIMENT_PREFIX)


def flat_metrics(metrics: dict[str, Any]) -> dict[str, float | None]:
    """A run's headline numbers (and its ECE) as one flat dict."""
    if metrics.get("multilabel"):
        return {k: metrics.get(k) for k in MULTILABEL_KEYS}
    flat = {k: metrics.get(k) for k in SUMMARY_KEYS}
    flat["ece"] = (metrics.get("calibration") or {}).get("ece")
    flat.update({k: metrics[k] for k in ROBUST_KEYS if k in metrics})
    return flat


def experiment_summary(store: RunStore, exp_id: str) -> dict[str, Any]:
    """Mean, sd and 95 % t-interval of every headline metric over the experiment's finished
    runs, the pooled per-class numbers, and each run's own numbers."""
    exp = store.get_experiment(exp_id)
    metrics, damaged = {}, []
    for run in (r for r in exp.runs if r.status == "done"):
        try:
            metrics[run.id] = store.metrics(run.id)
        except RunFileDamaged as exc:  # summarise the rest; name the damaged one
            damaged.append(str(exc))
    done = [r for r in exp.runs if r.id in metrics]
    tables = [pd.DataFrame(m["per_class"]) for m in metrics.values() if "per_class" in m]
    per_class = pooled_per_class(tables) if tables else None
    return {
        **exp.to_dict(),
        "config": exp.config,
        "runs": [{**r.to_dict(), "metrics": flat_metrics(metrics[r.id]) if r.id in metrics else None}
                 for r in exp.runs],
        "summary": summarize_runs([flat_metrics(m) for m in metrics.values()], _keys_of(metrics.values())),
        "per_class": None if per_class is None else per_class.to_dict(orient="records"),
        "n_done": len(done),
        "n_runs": len(exp.runs),
        "damaged": damaged,
    }


def pair_key(config: dict[str, Any] | RunConfig) -> tuple:
    """What makes two runs of different experiments a pair: the same split and seed."""
    c = config if isinstance(config, RunConfig) else RunConfig.model_validate(config)
    return c.data.seed, None if c.data.fold is None else c.data.fold.index, c.train.seed


@dataclass(frozen=True)
class _Side:
    label: str
    runs: tuple[RunRecord, ...]
    config: RunConfig
    experiment: ExperimentRecord | None


def _side(store: RunStore, item_id: str) -> _Side:
    if is_experiment_id(item_id):
        exp = store.get_experiment(item_id)
        return _Side(exp.name, tuple(r for r in exp.runs if r.status == "done"),
                     RunConfig.model_validate(exp.config), exp)
    record = store.get(item_id)
    if record.status != "done":
        raise ValueError(f"run {item_id} is {record.status}; only finished runs can be compared")
    return _Side(record.name, (record,), RunConfig.model_validate(record.config), None)


def compare_ids(store: RunStore, a: str, b: str, metric: str = "balanced_accuracy") -> dict[str, Any]:
    """The paired difference a - b of `metric` with its interval, p-value, test and verdict,
    all from one procedure (`core.analysis._paired`), as a plain dict (`paired_comparison`)."""
    comparison, extra = paired_comparison(store, a, b, metric)
    return comparison_dict(comparison, extra)


def comparison_dict(comparison: Comparison, extra: dict[str, Any]) -> dict[str, Any]:
    return {**{k: v for k, v in extra.items() if k in ("a", "b")}, **comparison.to_dict(),
            **{k: v for k, v in extra.items() if k not in ("a", "b")}}


def compare_against(store: RunStore, items: list[str], reference: str, metric: str = "balanced_accuracy",
                    method: str = "holm") -> list[dict[str, Any]]:
    """Each item minus `reference`, adjusted together (Holm by default: several runs held
    against one are a family, and the best of them looks better by chance alone). Items
    that cannot be paired come back as {"id", "error"}."""
    found, out = [], []
    for item in items:
        try:
            found.append((len(out), *paired_comparison(store, item, reference, metric)))
            out.append(None)
        except (ValueError, RunFileDamaged) as exc:
            out.append({"a": {"id": item}, "error": str(exc)})
    adjusted = adjust_family([c for _, c, _ in found], method)
    for (index, _, extra), comparison in zip(found, adjusted, strict=True):
        out[index] = comparison_dict(comparison, extra)
    return out


def paired_comparison(store: RunStore, a: str, b: str, metric: str = "balanced_accuracy"
                      ) -> tuple[Comparison, dict[str, Any]]:
    """a - b as a `Comparison` (for views that adjust several together) and what goes beside
    it: the two sides' ids and names, and for two runs McNemar's test of accuracy.

    Two runs: a paired, class-stratified bootstrap on their shared test set. Two
    experiments: their runs paired by fold and seed, then the corrected resampled t-test
    (folds) or the sign-flip test (seeds). Runs that all predict one class give "cannot
    tell". Raises ValueError with the reason when the two cannot be paired.
    """
    if metric not in (*EXPERIMENT_KEYS, *ROBUST_KEYS, *MULTILABEL_KEYS):
        raise ValueError(f"unknown metric {metric!r}; choose one of: "
                         f"{', '.join((*EXPERIMENT_KEYS, *ROBUST_KEYS, *MULTILABEL_KEYS))}")
    left, right = _side(store, a), _side(store, b)
    _same_targets(left, right, metric)
    if (left.experiment is None) != (right.experiment is None):
        raise ValueError("compare a run with a run, or an experiment with an experiment; "
                         f"{a if left.experiment else b} is an experiment")
    ok, reason = comparable({left.label: left.config, right.label: right.config})
    if not ok:
        raise ValueError(reason)
    if metric in ROBUST_KEYS:
        _same_attack(left, right)
    extra: dict[str, Any] = {"a": {"id": a, "name": left.label}, "b": {"id": b, "name": right.label}}
    if left.experiment is None:
        art_a, art_b = store.artifacts(a), store.artifacts(b)
        if art_a.multilabel:
            return _compare_multilabel(art_a, art_b, metric), extra
        if not np.array_equal(art_a.labels, art_b.labels):
            raise ValueError("the two runs were not scored on the same test cases; re-run one of them")
        if metric in ROBUST_KEYS:
            result, extra["mcnemar"] = _compare_attacked(art_a, art_b, metric)
        else:
            result = compare_single_runs(art_a.logits, art_b.logits, art_a.labels, art_a.num_classes, metric)
            extra["mcnemar"] = mcnemar(art_a.logits, art_b.logits, art_a.labels)
    else:
        result = _compare_experiments(store, left, right, metric)
    return result, extra


def _same_targets(left: _Side, right: _Side, metric: str) -> None:
    """Multi-label runs compare with multi-label runs, on a multi-label metric."""
    kinds = {side.config.data.multilabel for side in (left, right)}
    if len(kinds) > 1:
        raise ValueError(f"'{left.label}' and '{right.label}' differ in kind: one is multi-label (several findings per "
                         "case), the other single-label; compare runs of one kind")
    if kinds == {True} and metric not in MULTILABEL_KEYS:
        raise ValueError(f"{metric} is a single-label metric; multi-label runs compare on: {', '.join(MULTILABEL_KEYS)}")
    if kinds == {False} and metric in MULTILABEL_KEYS and metric not in EXPERIMENT_KEYS:
        raise ValueError(f"{metric} is a multi-label metric; these runs have one class per case")


def _compare_multilabel(art_a, art_b, metric: str) -> Comparison:
    """Two multi-label runs on the same test cases: the paired bootstrap over whole cases."""
    if metric not in _ML_RANKING:
        raise ValueError(f"{metric} depends on each run's own thresholds; for two single runs compare one of "
                         f"{', '.join(_ML_RANKING)}, or compare experiments over several seeds")
    if not np.array_equal(art_a.label_matrix, art_b.label_matrix, equal_nan=True):
        raise ValueError("the two runs were not scored on the same test cases; re-run one of them")
    return compare_multilabel_runs(sigmoid(art_a.logits), sigmoid(art_b.logits), art_a.label_matrix,
                                   art_a.label_counts, metric)


def _keys_of(metrics) -> tuple[str, ...]:
    """The keys to summarise: every headline key, and the attacked ones when a run has them."""
    if any(m.get("multilabel") for m in metrics):
        return MULTILABEL_KEYS
    robust = [k for k in ROBUST_KEYS if any(m.get(k) is not None for m in metrics)]
    return (*EXPERIMENT_KEYS, *robust)


def _same_attack(left: _Side, right: _Side) -> None:
    """Numbers under attack compare only under the same attack, budget and steps."""
    attacks = [side.config.evaluation.attack for side in (left, right)]
    if any(a is None for a in attacks):
        raise ValueError("both need an evaluation attack (evaluation.attack) to be compared under attack")
    if attacks[0] != attacks[1]:
        raise ValueError(f"'{left.label}' and '{right.label}' were scored under different attacks "
                         f"({attacks[0].name} and {attacks[1].name}, or other budgets); score both under one")


def _compare_attacked(art_a, art_b, metric: str) -> tuple[Comparison, dict[str, Any]]:
    """Two runs' balanced accuracy on their attacked test cases: the paired bootstrap over the
    same cases, read from each case's predicted class (a one-hot score per case). The head -
    tail gap and tail accuracy need per-seed values: compare experiments for those."""
    if metric != "robust_balanced_accuracy":
        raise ValueError(f"{metric} is compared over several seeds or folds; for two single runs compare "
                         "robust_balanced_accuracy")
    if art_a.attacked_predictions is None or art_b.attacked_predictions is None:
        raise ValueError("both runs need an evaluation attack (evaluation.attack) to compare them under attack")
    return compare_attacked(art_a.attacked_predictions, art_b.attacked_predictions, art_a.labels, art_a.num_classes)


def _one_class(metrics: dict[str, Any]) -> str | None:
    """The class a run predicts for every test case, from its per-class table, or None."""
    rows = metrics.get("per_class") or []
    if not rows or any(row.get("predicted") is None for row in rows):
        return None  # a run stored before the predicted counts were kept
    used = [str(row.get("class")) for row in rows if row["predicted"]]
    return used[0] if len(used) == 1 else None


def _compare_experiments(store: RunStore, left: _Side, right: _Side, metric: str):
    ev_a, ev_b = left.config.evaluation, right.config.evaluation
    if ev_a.folds != ev_b.folds:
        raise ValueError(f"'{left.label}' uses {ev_a.folds} fold(s) and '{right.label}' {ev_b.folds}: "
                         "pairs need the same folds; run both with the same evaluation settings")
    by_key = {pair_key(r.config): r for r in right.runs}
    pairs = [(r, by_key[pair_key(r.config)]) for r in left.runs if pair_key(r.config) in by_key]
    if len(pairs) < 2:
        raise ValueError(f"only {len(pairs)} finished run(s) of '{left.label}' and '{right.label}' share a fold "
                         "and seed; a paired comparison needs at least 2 (wait for the runs, or use the same "
                         "seeds in both)")
    values = {side: [] for side in "ab"}
    n_test, collapsed = [], []
    for run_a, run_b in pairs:
        for side, run in (("a", run_a), ("b", run_b)):
            metrics = store.metrics(run.id)
            values[side].append(flat_metrics(metrics).get(metric))
            collapsed.append(_one_class(metrics))
        n_test.append((store.metrics(run_a.id).get("dataset") or {}).get("n_test") or 0)
    a, b = (np.asarray([np.nan if v is None else v for v in values[s]], dtype=float) for s in "ab")
    keep = np.isfinite(a) & np.isfinite(b)
    folds = ev_a.folds
    degenerate = ""
    if collapsed and all(c is not None for c in collapsed):
        classes = sorted(set(collapsed))
        degenerate = (f"every run of both predicts one class ({', '.join(map(str, classes))}) for every case, so "
                      "no difference between them can be measured")
    # The fold design's sizes: each test fold against the k - 1 folds its training set is drawn from.
    test_size = int(np.mean(n_test)) if n_test else 0
    return compare_experiments(
        a[keep], b[keep], metric=metric, design="folds" if folds > 1 else "seeds",
        n_train=max(1, test_size * (folds - 1)), n_test=max(1, test_size), folds=folds,
        repeats=max(1, int(keep.sum()) // folds) if folds > 1 else None, degenerate=degenerate)
