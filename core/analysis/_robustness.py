"""Robustness per class: which classes break first when the inputs are attacked?

A finished run's model is attacked (`core.methods.ATTACKS`) at several budgets epsilon; at
each, every test case is counted right or wrong on its attacked copy. Robust accuracy of a
class is its recall on attacked copies, with a Wilson interval; of a group (head / medium /
tail) the mean recall of its classes and, over all classes, the balanced accuracy, each with
the stratified bootstrap interval `bootstrap_intervals` uses. At epsilon 0 the attacked copy
is the input itself, so robust accuracy there is the clean accuracy.

The accuracy disparity (Hu et al. 2023) is the head group's accuracy minus the tail group's:
at epsilon 0 it is their clean disparity, and its growth with epsilon says how much more the
rare classes pay for an attack. It too gets a bootstrap interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from core.analysis._attribution import _borrowed
from core.analysis._paired import compare_single_runs, mcnemar
from core.analysis._uncertainty import _stratified_bootstrap, wilson_interval
from core.data._groups import GROUP_ORDER
from core.methods import ATTACKS, input_bounds

__all__ = ["DEFAULT_EPSILONS", "ATTACK_WORDS", "robust_predictions", "adversarial_examples", "robustness_table", "disparity",
           "disparity_curve", "robustness_summary", "attack_params", "robust_metrics", "compare_attacked"]

DEFAULT_EPSILONS: dict[str, tuple[float, ...]] = {
    "image": (0.0, 0.01, 0.03, 0.1),  # brightness units: 0.03 is about 8/255, the usual CIFAR budget
    "tabular": (0.0, 0.05, 0.1, 0.3),  # standard deviations of each feature
}
ATTACK_WORDS: dict[str, str] = {
    "image": "brightness units (pictures lie in [0, 1])",
    "tabular": "standard deviations of each feature (tables are standardised)",
}


def attack_params(attack: str, params: Mapping[str, Any] | None, epsilon: float) -> dict[str, Any]:
    """The attack's validated parameters with `epsilon` set (the curve's budgets share the rest)."""
    return ATTACKS.validate(attack, {**dict(params or {}), "epsilon": float(epsilon)}).model_dump()


def _attack_batches(model: nn.Module, x: np.ndarray, y: np.ndarray, attack: str, params: dict[str, Any],
                    modality: str, device: str, batch_size: int,
                    on_batch: Callable[[], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(attacked copies, predictions on them) of every row of `x`; `on_batch()` after each batch."""
    fitted = ATTACKS.create(attack, params)
    bounds = input_bounds(modality)
    adv = np.empty_like(x, dtype=np.float32)
    pred = np.empty(len(x), dtype=np.int64)
    with _borrowed(model, torch.device(device)) as dtype, torch.inference_mode(False):
        for start in range(0, len(x), batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(x[start:start + batch_size])).to(device, dtype)
            yb = torch.from_numpy(np.asarray(y[start:start + batch_size], dtype=np.int64)).to(device)
            out = fitted.perturb(model, xb, yb, bounds=bounds, seed=params.get("seed", 0) + start)
            with torch.no_grad():
                pred[start:start + len(xb)] = model(out).argmax(1).cpu().numpy()
            adv[start:start + len(xb)] = out.float().cpu().numpy()
            if on_batch is not None:
                on_batch()
    return adv, pred


def robust_predictions(
    model: nn.Module, x: np.ndarray, y: np.ndarray, *, attack: str = "pgd", params: Mapping[str, Any] | None = None,
    epsilons: Sequence[float], modality: str, device: str = "cpu", batch_size: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> dict[float, np.ndarray]:
    """The model's predicted class of every test case's attacked copy, at each epsilon.

    The model is borrowed (moved to `device`, eval mode, parameters frozen, all restored).
    Pictures stay in [0, 1]; tables are standardised and unbounded. `progress(done, total)`
    counts batches over all epsilons (an attack of many steps on a large test set takes a while)."""
    if len(x) != len(y):
        raise ValueError(f"need one label per input: {len(x)} inputs, {len(y)} labels")
    eps = sorted({float(e) for e in epsilons})
    if not eps or eps[0] < 0:
        raise ValueError("give at least one epsilon, none negative")
    total, done = len(eps) * -(-len(x) // batch_size), [0]

    def on_batch() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], total)

    return {e: _attack_batches(model, x, y, attack, attack_params(attack, params, e), modality, device, batch_size,
                               on_batch)[1] for e in eps}


def adversarial_examples(model: nn.Module, x: np.ndarray, y: np.ndarray, *, attack: str, params: Mapping[str, Any]
                         | None, epsilon: float, modality: str, device: str = "cpu") -> dict[str, np.ndarray]:
    """For a few cases: the attacked copies, the change, and the predicted class before and after."""
    adv, pred_adv = _attack_batches(model, x, y, attack, attack_params(attack, params, epsilon), modality, device, 256)
    with _borrowed(model, torch.device(device)) as dtype, torch.no_grad():
        pred_clean = model(torch.from_numpy(np.ascontiguousarray(x)).to(device, dtype)).argmax(1).cpu().numpy()
    return {"original": x, "adversarial": adv, "change": adv - x, "pred_clean": pred_clean, "pred_adv": pred_adv}


def _group_members(groups: Sequence[str]) -> dict[str, np.ndarray]:
    g = np.asarray(groups, dtype=object)
    return {name: np.flatnonzero(g == name) for name in GROUP_ORDER if (g == name).any()}


def robustness_table(
    labels: np.ndarray, predictions: Mapping[float, np.ndarray], groups: Sequence[str],
    class_names: Sequence[str], class_counts: Sequence[int], *, confidence: float = 0.95,
    n_resamples: int = 1000, seed: int = 0,
) -> pd.DataFrame:
    """One row per (epsilon, scope, name): scope "class" (recall on attacked copies, Wilson
    interval), "group" (mean recall of the group's classes) , "balanced" (all classes) and
    "gap" (head minus tail), the last three with stratified bootstrap intervals.
    Columns: epsilon, scope, name, group, count_train, n_test, accuracy, low, high."""
    y = np.asarray(labels).astype(np.int64)
    k = len(class_names)
    support = np.bincount(y, minlength=k)
    members = _group_members(groups)
    tested = support > 0
    rows = []
    for e in sorted(predictions):
        hit = np.asarray(predictions[e]) == y
        hits = np.bincount(y[hit], minlength=k)
        low, high = wilson_interval(hits, support, confidence)
        for c in range(k):
            rows.append({"epsilon": e, "scope": "class", "name": str(class_names[c]), "group": groups[c],
                         "count_train": int(class_counts[c]), "n_test": int(support[c]),
                         "accuracy": hits[c] / support[c] if support[c] else math.nan, "low": low[c], "high": high[c]})
        rows += _pooled_rows(e, y, hit, k, members, tested, support, confidence, n_resamples, seed)
    return pd.DataFrame(rows, columns=["epsilon", "scope", "name", "group", "count_train", "n_test", "accuracy", "low",
                                       "high"])


def _pooled_rows(e, y, hit, k, members, tested, support, confidence, n_resamples, seed) -> list[dict[str, Any]]:
    """Balanced accuracy, each group's accuracy and the head - tail gap at one epsilon, with
    the stratified bootstrap's percentile intervals."""
    outputs = [("balanced", "all classes", np.flatnonzero(tested))]
    outputs += [("group", name, idx[tested[idx]]) for name, idx in members.items() if tested[idx].any()]
    has_gap = all(name in members and tested[members[name]].any() for name in ("head", "tail"))

    def statistic(idx: np.ndarray) -> np.ndarray:
        r = idx.shape[0]
        flat = (np.arange(r)[:, None] * k + y[idx]).ravel()
        hits = np.bincount(flat, weights=hit[idx].ravel(), minlength=r * k).reshape(r, k)
        n = np.bincount(flat, minlength=r * k).reshape(r, k)
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = hits / n
        values = [recall[:, cls].mean(axis=1) for _, _, cls in outputs]
        if has_gap:
            values.append(values[[o[1] for o in outputs].index("head")] - values[[o[1] for o in outputs].index("tail")])
        return np.stack(values)

    n_out = len(outputs) + has_gap
    estimate, low, high, _ = _stratified_bootstrap(y, statistic, n_out, n_resamples=n_resamples, confidence=confidence,
                                                   seed=seed, per_row=max(y.size, 1))
    names = [*outputs, *([("gap", "head - tail", None)] if has_gap else [])]
    rows = []
    for i, (scope, name, cls) in enumerate(names):
        n_test = int(support[cls].sum()) if cls is not None else int(support[members["head"]].sum()
                                                                        + support[members["tail"]].sum())
        rows.append({"epsilon": e, "scope": scope, "name": name, "group": name if scope == "group" else "",
                     "count_train": math.nan, "n_test": n_test, "accuracy": float(estimate[i]), "low": float(low[i]),
                     "high": float(high[i])})
    return rows


def disparity(majority_accuracy: float, minority_accuracy: float) -> float:
    """Accuracy disparity (Hu et al. 2023): the common classes' accuracy minus the rare ones'."""
    return float(majority_accuracy) - float(minority_accuracy)


def disparity_curve(table: pd.DataFrame) -> pd.DataFrame:
    """The head - tail gap at each epsilon, with its interval: epsilon, gap, low, high."""
    gap = table[table["scope"] == "gap"]
    return pd.DataFrame({"epsilon": gap["epsilon"].to_numpy(), "gap": gap["accuracy"].to_numpy(),
                         "low": gap["low"].to_numpy(), "high": gap["high"].to_numpy()})


def robustness_summary(table: pd.DataFrame) -> dict[str, Any]:
    """What `tailscope robustness --json` prints: per epsilon, the balanced accuracy, each
    group's and the gap with intervals, and the per-class rows."""
    out: dict[str, Any] = {}
    for e, rows in table.groupby("epsilon", sort=True):
        pooled = rows[rows["scope"] != "class"]
        out[f"{e:g}"] = {
            "pooled": {r.name if r.scope != "balanced" else "balanced_accuracy":
                       {"accuracy": r.accuracy, "low": r.low, "high": r.high, "n_test": r.n_test}
                       for r in pooled.itertuples()},
            "per_class": rows[rows["scope"] == "class"].drop(columns=["scope", "epsilon"]).to_dict(orient="records"),
        }
    return out


def robust_metrics(labels: np.ndarray, attacked: np.ndarray, groups: Sequence[str], class_names: Sequence[str],
                   class_counts: Sequence[int], *, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The run's numbers under its evaluation attack (`ROBUST_METRICS`), from each test case's
    predicted class on its attacked copy: {key: value} and "ci": {key: {low, high}} (the same
    stratified bootstrap as the clean intervals). A key whose classes are missing (no tail
    class, say) is None."""
    table = robustness_table(labels, {1.0: attacked}, groups, class_names, class_counts, n_resamples=n_resamples,
                             seed=seed)
    rows = {(r.scope, r.name): r for r in table[table["scope"] != "class"].itertuples()}
    found = {"robust_balanced_accuracy": rows.get(("balanced", "all classes")),
             "robust_tail_accuracy": rows.get(("group", "tail")), "robust_gap": rows.get(("gap", "head - tail"))}
    return {**{key: None if r is None else float(r.accuracy) for key, r in found.items()},
            "ci": {key: {"low": float(r.low), "high": float(r.high)} for key, r in found.items() if r is not None}}


def compare_attacked(pred_a: np.ndarray, pred_b: np.ndarray, labels: np.ndarray, num_classes: int, *,
                     n_resamples: int = 2000):
    """Two runs' balanced accuracy on the same attacked test cases, a - b: the project's paired
    bootstrap read from each case's predicted class (a one-hot score per case), with McNemar's
    test of accuracy beside it. Returns (Comparison named robust_balanced_accuracy, mcnemar)."""
    from dataclasses import replace

    onehot = np.eye(num_classes)
    a, b = onehot[np.asarray(pred_a)], onehot[np.asarray(pred_b)]
    result = compare_single_runs(a, b, labels, num_classes, "balanced_accuracy", n_resamples=n_resamples)
    return replace(result, metric="robust_balanced_accuracy"), mcnemar(a, b, labels)
