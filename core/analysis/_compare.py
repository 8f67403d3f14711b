"""Comparing finished runs: which runs may be compared, and their headline numbers side by side.

Two runs are comparable only when they were evaluated on the same test set and trained
on the same imbalanced training split: same data source and loading parameters, same
imbalance profile, same split fractions and seed. Anything else compares data sets, not
methods, so it is refused with a reason a person can act on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from core.analysis._metrics import METRICS
from core.config import RunConfig
from core.data import source_label

__all__ = ["SUMMARY_KEYS", "comparable", "config_differences", "describe_data", "metrics_table", "best_per_column",
           "newest_comparable", "run_labels", "same_setup", "setup_key"]

SUMMARY_KEYS: tuple[str, ...] = (
    "accuracy", "balanced_accuracy", "f1_macro", "gmean", "worst_class_recall", "mcc", "cohen_kappa",
    "roc_auc_ovr_macro", "average_precision_macro",
)


def describe_data(config: RunConfig | Mapping[str, Any], *, split: bool = False, thresholds: bool = False) -> str:
    """The data a run learned from, in words: "digits (exp imbalance, ratio 20)"; with
    `split` the split seed and fractions, with `thresholds` the head/tail thresholds."""
    c = config if isinstance(config, RunConfig) else RunConfig.model_validate(config)
    d = c.data
    im = d.imbalance
    if im.profile == "none":
        parts = ["no added imbalance"]
    elif im.profile == "step":
        parts = [f"step imbalance, ratio {im.ratio:g}, {im.mu:.0%} minority classes"]
    else:
        parts = [f"{im.profile} imbalance, ratio {im.ratio:g}"]
    if im.class_order:
        parts.append(f"class order {im.class_order}")
    if d.params:
        parts.append(", ".join(f"{k}={v}" for k, v in sorted(d.params.items())))
    if split:
        parts.append(f"split seed {d.seed}, test {d.test_fraction:g}, validation {d.val_fraction:g}")
    if thresholds:
        parts.append(f"head above {d.many_shot} and tail below {d.few_shot} training samples")
    return f"{source_label(d.source)} ({'; '.join(parts)})"


_DIFFERENCES = (
    ("source", lambda d: (d.source, d.label_column), "a different data source"),
    ("params", lambda d: d.params, "different data-set parameters"),
    ("imbalance", lambda d: d.imbalance.model_dump(), "a different imbalance profile"),
    ("split", lambda d: (d.seed, d.test_fraction, d.val_fraction, d.fold), "a different split (seed, fractions or fold)"),
    ("groups", lambda d: (d.many_shot, d.few_shot), "different head/tail thresholds"),
)


def comparable(runs_configs: Mapping[str, RunConfig | Mapping[str, Any]], noun: str = "runs") -> tuple[bool, str]:
    """Whether the runs (run label -> config) share a data set, with the reason if not.

    Every run is checked against the first; the reason names the runs and what differs,
    e.g. "'b' uses wine (exp imbalance, ratio 5) but 'a' uses digits (...): a different
    data source, so their test sets differ ..."
    """
    items = [(name, c if isinstance(c, RunConfig) else RunConfig.model_validate(c)) for name, c in runs_configs.items()]
    if len(items) < 2:
        return True, f"one {noun[:-1]}: nothing to compare against"
    (first_name, first), rest = items[0], items[1:]
    for name, config in rest:
        diffs = [(kind, label) for kind, key, label in _DIFFERENCES if key(config.data) != key(first.data)]
        if diffs:
            kinds = {kind for kind, _ in diffs}
            what = " and ".join(label for _, label in diffs)
            if kinds & {"source", "params", "split"}:
                consequence = ("their test sets differ and their numbers would compare data sets, not methods. "
                               "Compare runs trained on the same data.")
            elif "imbalance" in kinds:
                consequence = ("they learned from differently imbalanced training sets and their numbers would "
                               "compare data sets, not methods. Compare runs trained on the same data.")
            else:
                consequence = "their head/medium/tail groups differ and the group numbers would not line up."
            detail = {"split": "split" in kinds, "thresholds": "groups" in kinds}
            return False, (f"'{name}' uses {describe_data(config, **detail)} but '{first_name}' uses "
                           f"{describe_data(first, **detail)}: {what}, so {consequence}")
    return True, f"{'both' if len(items) == 2 else f'all {len(items)} {noun}'} use {describe_data(first)}"


def metrics_table(bundles: Sequence[Any] | Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per run (index: run label), one column per summary metric (`SUMMARY_KEYS`).

    Accepts a mapping run label -> metrics dict (a run's `metrics.json`), or run bundles
    with `.record.name`, `.record.id` and `.metrics` (labels from `run_labels`).
    """
    if isinstance(bundles, Mapping):
        named = dict(bundles)
    else:
        labels = run_labels([(b.record.name, b.record.id) for b in bundles])
        named = {label: b.metrics for label, b in zip(labels, bundles, strict=True)}
    rows = {label: [float(m.get(k, np.nan)) if m.get(k) is not None else np.nan for k in SUMMARY_KEYS]
            for label, m in named.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(SUMMARY_KEYS)).rename_axis("run")


def best_per_column(table: pd.DataFrame, higher_is_better: Mapping[str, bool | None] | None = None) -> pd.DataFrame:
    """Boolean frame of `table`'s shape: True where a run is best in that column (ties all
    marked). Directions default to `METRICS[key].higher_is_better`; a column with no
    direction (None), a single run, only NaN, or one value shared by every run marks
    nothing."""
    directions = higher_is_better if higher_is_better is not None else {
        k: m.higher_is_better for k, m in METRICS.items()}
    mask = pd.DataFrame(False, index=table.index, columns=table.columns)
    if len(table) < 2:
        return mask
    for col in table.columns:
        direction = directions.get(col)
        values = pd.to_numeric(table[col], errors="coerce")
        if direction is None or values.isna().all():
            continue
        if values.nunique(dropna=True) < 2:
            continue  # every run ties: no run is best
        best = values.max() if direction else values.min()
        mask[col] = np.isclose(values.to_numpy(dtype=float), best, rtol=0, atol=1e-12)
    return mask


def newest_comparable(runs_configs: Mapping[str, RunConfig | Mapping[str, Any]], n: int = 2) -> list[str]:
    """The first `n` runs (in the mapping's order, newest first) that share a data set with
    an earlier one: the default selection of the Compare page. Fewer when none match. Two
    repeats of one set-up (only the seed or fold differs) are never paired: their difference
    is chance alone."""
    keys = list(runs_configs)
    setups = {k: setup_key(c.model_dump(mode="json") if isinstance(c, RunConfig) else c)  # once per run: stores
              for k, c in runs_configs.items()}                                         # hold many repeats
    for i, anchor in enumerate(keys):
        group = [anchor]
        for other in keys[i + 1:]:
            if any(setups[member] == setups[other] for member in group):
                continue
            if comparable({anchor: runs_configs[anchor], other: runs_configs[other]})[0]:
                group.append(other)
            if len(group) == n:
                return group
    return keys[:1]


def run_labels(names_ids: Sequence[tuple[str, str]]) -> list[str]:
    """Display labels for runs: the name, with the id's tail added where names repeat."""
    names = [name for name, _ in names_ids]
    labels = []
    for name, run_id in names_ids:
        if names.count(name) == 1:
            labels.append(name)
            continue
        twins = [other for n, other in names_ids if n == name and other != run_id]
        width = 6  # grow the id's tail until it tells this run from its namesakes
        while width < len(run_id) and any(other.endswith(run_id[-width:]) for other in twins):
            width += 1
        labels.append(f"{name} · {run_id[-width:]}")
    return labels


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: value}


_REPEAT_KEYS = ("name", "train.seed", "data.seed", "data.fold", "evaluation")  # what differs between repeats


def setup_key(config: Mapping[str, Any]) -> str:
    """The config without what differs between repeats (name, seeds, folds)."""
    flat = {k: v for k, v in _flatten(config).items()
            if not any(k == r or k.startswith(r + ".") for r in _REPEAT_KEYS)}
    return json.dumps(flat, sort_keys=True, default=str)


def same_setup(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Two runs of one set-up, repeated with another seed or fold: comparing them says only how
    much chance moves the numbers, never which method is better."""
    return setup_key(a) == setup_key(b)


def config_differences(runs_configs: Mapping[str, RunConfig | Mapping[str, Any]]) -> pd.DataFrame:
    """The settings that differ between runs: one row per setting (e.g. `loss.name`,
    `train.epochs`), one column per run; settings every run shares are left out, and
    so is the run name."""
    flat = {}
    for label, config in runs_configs.items():
        c = config if isinstance(config, RunConfig) else RunConfig.model_validate(config)
        raw = c.model_dump(mode="json", exclude={"name"})
        for section in ("model", "loss", "sampler", "resampler", "stage2"):
            spec = getattr(c, section)
            if spec is not None:  # defaults filled in, so an unset parameter is not shown as missing
                raw[section] = {**raw[section], **spec.resolved_params()}
        flat[label] = _flatten(raw)
    keys = sorted(set().union(*(f.keys() for f in flat.values()))) if flat else []
    rows = {}
    for key in keys:
        values = [flat[label].get(key) for label in flat]
        if any(v != values[0] for v in values[1:]):
            rows[key] = ["—" if v is None else str(v) for v in values]
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(flat)).rename_axis("setting")
