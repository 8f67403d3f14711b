"""How well the class mix of an unlabelled batch is estimated: the absolute error of the
rare class's share and how often its 95 % interval holds the truth, over batches drawn at
known mixes.

Sizes are those of a 3,000-row clinical table with the default splits: a validation split
of 450 rows and a test split of 750 (both mixed like the source, 70 / 19 / 8 / 3 %), batches
of 400 new cases. The 50 batches of a setting cycle through five mixes whose rare-class
share is 1, 3 (the source's), 6, 12 and 20 %, the other classes keeping their source
proportions; each batch is drawn case by case, so its truth is its own realised share.

(a) Synthetic: four Gaussian classes in 3-D whose Bayes posteriors are exact, turned into a
"model" whose scores encode the source mix, a longer-tailed training mix (an imbalance
profile: 86 / 10 / 3 / 1 %), or a uniform one (what balanced softmax and the other prior
corrections learn), then made over-confident (temperature 0.5) or under-confident (2).
Every 10 batches draw a fresh validation and test split, so calibration noise is sampled too.
An "oracle" row runs EM on the exact posteriors with the known source mix: what no method
can beat with 400 cases.

(b) Real runs: a 4-class table (sklearn make_classification, 70 / 19 / 8 / 3 %) trained
with the engine (`core.train.train_run`, an MLP) with plain cross-entropy and every
prior-correcting method; batches drawn from 20,000 held-out rows.

Estimators: EM after bias-corrected temperature scaling (the default; BCTS fitted on the
validation and test splits together, as `predict` does), BBSE beside it (same reference),
the same EM with BCTS fitted on the validation split alone (what pooling the test split
buys), and, for contrast, what `predict` did before: temperature scaling on the validation
split, then EM from the training prior, with a batch-only bootstrap. Prints errors and
coverage; asserts nothing.

`--part sizes` adds what larger calibration splits and batches would give (well-separated
synthetic classes, calibrated scores).

    .venv/bin/python bench/prior_shift.py [--batches 50] [--boot 200] [--part synthetic runs sizes]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import numpy as np

from core.analysis import (
    estimate_label_shift, estimate_prior_interval, fit_shift_reference, softmax,
)

SOURCE = np.array([0.70, 0.19, 0.08, 0.03])
LONG_TAILED = np.array([0.86, 0.10, 0.03, 0.01])
RARE_SHARES = (0.01, 0.03, 0.06, 0.12, 0.20)
N_VAL, N_TEST, N_BATCH = 450, 750, 400
RARE = 3
CORNERS = np.array([[0, 0, 0], [1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=np.float64)  # a regular tetrahedron
ESTIMATOR_COLUMNS = ("EM after BCTS", "BBSE", "EM after BCTS, validation split only", "before: EM, temperature only")
ORACLE = "oracle: EM on exact posteriors"


def batch_mix(rare_share: float) -> np.ndarray:
    rest = SOURCE[:RARE] / SOURCE[:RARE].sum() * (1 - rare_share)
    return np.append(rest, rare_share)


class Tally:
    """Absolute errors of the rare share and interval hits, per estimator."""

    def __init__(self):
        self.errors: dict[str, list[float]] = {}
        self.hits: dict[str, list[bool]] = {}

    def add(self, name: str, estimate: dict, truth: float) -> None:
        self.errors.setdefault(name, []).append(abs(float(estimate["prior"][RARE]) - truth))
        self.hits.setdefault(name, []).append(bool(estimate["low"][RARE] <= truth <= estimate["high"][RARE]))

    def cells(self) -> dict[str, tuple[float, float, float]]:
        return {name: (float(np.mean(e)), float(np.max(e)), float(np.mean(self.hits[name])))
                for name, e in self.errors.items()}


def old_estimate(val_logits, val_labels, batch_logits, train_prior, n_boot):
    """What predict did before: plain temperature scaling, then EM from the training prior."""
    from core.methods import fit_temperature

    t = fit_temperature(val_logits, val_labels)
    return estimate_prior_interval(softmax(batch_logits / t), train_prior, n_boot=n_boot)


def estimate_all(tally: Tally, references, batch_logits, truth: float, old_args, seed: int) -> None:
    """`references`: BCTS fitted on validation + test, and on the validation split alone."""
    pooled, val_only = references
    est = estimate_label_shift(pooled, batch_logits, seed=seed)
    tally.add("EM after BCTS", est["estimates"]["em"], truth)
    tally.add("BBSE", est["estimates"]["bbse"], truth)
    tally.add("EM after BCTS, validation split only", estimate_label_shift(val_only, batch_logits, seed=seed), truth)
    if old_args is not None:
        val_logits, val_labels, train_prior, n_boot = old_args
        tally.add("before: EM, temperature only", old_estimate(val_logits, val_labels, batch_logits, train_prior,
                                                                n_boot), truth)


# --- (a) synthetic -----------------------------------------------------------------------------

def gaussian_draw(rng, means, mix, n):
    y = rng.choice(len(mix), size=n, p=mix)
    return means[y] + rng.normal(size=(n, means.shape[1])), y


def log_likelihood(x, means):
    return -0.5 * ((x[:, None, :] - means[None]) ** 2).sum(axis=-1)


def synthetic(batches: int, n_boot: int) -> list[tuple]:
    """(setting, cells) per synthetic setting; see the module docstring."""
    uniform = np.full(4, 0.25)
    per_class = np.array([2.0, 2.0, 2.0, 0.5])
    # (words, scale of the class means, training mix, prior the scores encode, temperature per class)
    settings = [
        ("plain training on the source mix, calibrated (T = 1)", 2.6, SOURCE, SOURCE, 1.0),
        ("plain training on the source mix, over-confident (T = 0.5)", 2.6, SOURCE, SOURCE, 0.5),
        ("plain training on the source mix, under-confident (T = 2)", 2.6, SOURCE, SOURCE, 2.0),
        ("plain training on a longer-tailed mix, T = 0.5", 2.6, LONG_TAILED, LONG_TAILED, 0.5),
        ("plain training on a longer-tailed mix, T = 2", 2.6, LONG_TAILED, LONG_TAILED, 2.0),
        ("prior-corrected loss (scores encode uniform), T = 0.5", 2.6, LONG_TAILED, uniform, 0.5),
        ("prior-corrected loss (scores encode uniform), T = 2", 2.6, LONG_TAILED, uniform, 2.0),
        ("outside BCTS's reach: rare class at T = 0.5, the others at T = 2", 2.6, SOURCE, SOURCE, per_class),
        ("harder classes (Bayes balanced accuracy 0.73), T = 1", 1.6, SOURCE, SOURCE, 1.0),
    ]
    rows = []
    for words, scale, training, encoded, temperature in settings:
        means = scale * CORNERS
        model = lambda x: (log_likelihood(x, means) + np.log(encoded)) / temperature  # noqa: E731
        rng = np.random.default_rng(0)
        tally = Tally()
        for b in range(batches):
            if b % 10 == 0:
                x_ref, y_ref = gaussian_draw(rng, means, SOURCE, N_VAL + N_TEST)
                reference = (fit_shift_reference(model(x_ref), y_ref, n_boot=n_boot, seed=b),
                             fit_shift_reference(model(x_ref[:N_VAL]), y_ref[:N_VAL], n_boot=n_boot, seed=b))
                old = (model(x_ref[:N_VAL]), y_ref[:N_VAL], training, n_boot)
            x, y = gaussian_draw(rng, means, batch_mix(RARE_SHARES[b % len(RARE_SHARES)]), N_BATCH)
            truth = float(np.mean(y == RARE))
            estimate_all(tally, reference, model(x), truth, old, seed=b)
            if np.isscalar(temperature) and temperature == 1.0:
                exact = softmax(log_likelihood(x, means) + np.log(SOURCE))
                tally.add(ORACLE, estimate_prior_interval(exact, SOURCE, n_boot=n_boot), truth)
        rows.append(("synthetic", words, tally.cells()))
        print(f"  done: {words}", flush=True)
    return rows


def sizes(batches: int, n_boot: int) -> list[tuple]:
    """What would meet the bound: the well-separated calibrated setting at larger
    calibration splits and batches (`--part sizes`; not in the default run)."""
    means = 2.6 * CORNERS
    rows = []
    for n_ref, n_batch in [(N_VAL + N_TEST, N_BATCH), (3000, N_BATCH), (10_000, N_BATCH), (N_VAL + N_TEST, 1000),
                           (10_000, 2000)]:
        rng = np.random.default_rng(0)
        tally = Tally()
        for b in range(batches):
            if b % 10 == 0:
                x_ref, y_ref = gaussian_draw(rng, means, SOURCE, n_ref)
                reference = fit_shift_reference(log_likelihood(x_ref, means), y_ref, n_boot=n_boot, seed=b)
            x, y = gaussian_draw(rng, means, batch_mix(RARE_SHARES[b % len(RARE_SHARES)]), n_batch)
            est = estimate_label_shift(reference, log_likelihood(x, means), seed=b)
            tally.add("EM after BCTS", est["estimates"]["em"], float(np.mean(y == RARE)))
            tally.add("BBSE", est["estimates"]["bbse"], float(np.mean(y == RARE)))
        rows.append(("synthetic", f"{n_ref:,} calibration cases, batches of {n_batch:,}", tally.cells()))
        print(f"  done: {n_ref} / {n_batch}", flush=True)
    return rows


# --- (b) real runs -----------------------------------------------------------------------------

METHODS = {
    "plain cross-entropy": {},
    "balanced softmax": {"loss": {"name": "balanced_softmax"}},
    "logit-adjusted loss": {"loss": {"name": "logit_adjusted"}},
    "LDAM-DRW": {"loss": {"name": "ldam", "drw_epoch": 20}},
    "cRT (stage 2)": {"stage2": {"name": "crt", "epochs": 10}},
    "tau-norm (stage 2)": {"stage2": {"name": "tau_norm"}},
    "class-balanced sampler": {"sampler": {"name": "class_balanced"}},
}


def table_data(pool: int = 20_000):
    """A 4-class table (3,000 rows as a clinic would upload) and held-out rows of the same
    distribution for the batches."""
    from sklearn.datasets import make_classification

    from core.data import Dataset, prepare_splits

    n = 3000 + pool
    x, y = make_classification(n_samples=n, n_features=10, n_informative=5, n_redundant=2, n_classes=4,
                               n_clusters_per_class=1, weights=SOURCE.tolist(), class_sep=1.0, flip_y=0.0,
                               random_state=0)
    rng = np.random.default_rng(1)
    order = rng.permutation(n)
    table, held = order[:3000], order[3000:]
    rest, test = table[:2250], table[2250:]
    # The table's own test split (750 rows) ships with the held-out pool behind it, so one
    # training scores both; validation is carved from the other 2,250 rows as usual (450).
    dataset = Dataset("bench table", x[rest].astype(np.float32), y[rest].astype(np.int64),
                      ("healthy", "sepsis", "embolism", "dissection"), "tabular",
                      x_test=x[np.concatenate([test, held])].astype(np.float32),
                      y_test=y[np.concatenate([test, held])].astype(np.int64))
    splits = prepare_splits(dataset, test_fraction=0.25, val_fraction=0.15, seed=0)
    return splits, len(test)


def real_runs(batches: int, n_boot: int) -> list[tuple]:
    from core.config import RunConfig
    from core.train import train_run

    splits, n_test = table_data()
    rows = []
    base = {"model": {"name": "mlp", "hidden": 64}, "train": {"epochs": 30, "batch_size": 64, "lr": 0.05,
                                                           "nc_every": 0, "min_steps": 0, "seed": 0}}
    for label, change in METHODS.items():
        config = RunConfig.model_validate({"name": label, **base, **change})
        art = train_run(config, splits=splits).artifacts
        logits, labels = np.asarray(art.logits, np.float64), np.asarray(art.labels)
        ref_z = np.concatenate([np.asarray(art.val_logits, np.float64), logits[:n_test]])
        ref_y = np.concatenate([np.asarray(art.val_labels), labels[:n_test]])
        reference = (fit_shift_reference(ref_z, ref_y, n_boot=n_boot),
                     fit_shift_reference(ref_z[:len(art.val_labels)], ref_y[:len(art.val_labels)], n_boot=n_boot))
        old = (np.asarray(art.val_logits, np.float64), np.asarray(art.val_labels), art.trained_prior, n_boot)
        pool_z, pool_y = logits[n_test:], labels[n_test:]
        members = [np.flatnonzero(pool_y == c) for c in range(4)]
        rng = np.random.default_rng(2)
        tally = Tally()
        for b in range(batches):
            y = rng.choice(4, size=N_BATCH, p=batch_mix(RARE_SHARES[b % len(RARE_SHARES)]))
            rows_b = np.concatenate([rng.choice(members[c], size=int(np.sum(y == c)), replace=False)
                                     for c in range(4)])
            estimate_all(tally, reference, pool_z[rows_b], float(np.mean(y == RARE)), old, seed=b)
        bal = float(np.mean([np.mean(logits[:n_test][labels[:n_test] == c].argmax(1) == c) for c in range(4)]))
        rows.append(("real run", f"{label} (test balanced accuracy {bal:.2f})", tally.cells()))
        print(f"  done: {label}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--boot", type=int, default=200)
    parser.add_argument("--part", nargs="+", choices=("synthetic", "runs", "sizes"), default=["synthetic", "runs"])
    args = parser.parse_args()
    os.environ.setdefault("TAILSCOPE_HOME", tempfile.mkdtemp())
    import torch

    torch.set_num_threads(1)  # small MLPs: more threads only contend
    start = time.perf_counter()
    rows = []
    if "synthetic" in args.part:
        rows += synthetic(args.batches, args.boot)
    if "runs" in args.part:
        rows += real_runs(args.batches, args.boot)
    if "sizes" in args.part:
        rows += sizes(args.batches, args.boot)
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores; validation {N_VAL} + test "
          f"{N_TEST} rows, batches of {N_BATCH}, {args.batches} batches per setting, {args.boot} bootstrap "
          f"replicates; rare-class shares {', '.join(f'{s:.0%}' for s in RARE_SHARES)}; "
          f"{time.perf_counter() - start:.0f} s")
    print("\nEach cell: mean / worst absolute error of the rare class's share, and how often the 95 % interval "
          "held the truth (flagged when the worst error exceeds 0.02 or coverage is below 95 %).\n")
    names = [*ESTIMATOR_COLUMNS, ORACLE]
    print("| data | setting | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for data, setting, cells in rows:
        print(f"| {data} | {setting} | " + " | ".join(cell(cells.get(name)) for name in names) + " |")


def cell(values: tuple[float, float, float] | None) -> str:
    if values is None:
        return ""
    mean, worst, coverage = values
    flags = "*" if worst > 0.02 else ""
    flags += "!" if coverage < 0.95 else ""
    return f"{mean:.3f} / {worst:.3f} / {coverage:.0%}{(' ' + flags) if flags else ''}"


if __name__ == "__main__":
    main()
