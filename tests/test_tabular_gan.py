"""The conditional tabular GAN resampler: rows of the rare classes appended and marked, made
from the training rows only (never the test split), progress and stopping while it fits; the
closest-record check against the reference's worked values and a planted copy; utility."""

from __future__ import annotations

import numpy as np
import pytest

from core.analysis import closest_record_check, closest_record_distances, synthetic_utility
from core.config import RunConfig
from core.methods import resample
from core.methods._tabular_gan import FittingStopped, information_loss
from core.train import Cancelled, prepare_run_data, train_run

FAST = {"epochs": 3, "batch_size": 32, "hidden": 16, "noise_dim": 8}
TINY = {
    "data": {"source": "blobs2d", "params": {"samples_per_class": 40}, "imbalance": {"profile": "exp", "ratio": 5}},
    "model": {"name": "mlp", "hidden": 16},
    "train": {"epochs": 2, "batch_size": 16, "min_steps": 0, "nc_every": 0, "train_subset": 10},
}


def _table():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [60, 20, 8])
    return (rng.standard_normal((len(y), 3)) + 3 * y[:, None]).astype(np.float32), y


def test_rare_class_rows_are_appended_marked_and_reported_while_fitting():
    x, y = _table()
    seen = []
    out = resample("tabular_gan", x, y, FAST, seed=0, progress=seen.append)
    np.testing.assert_array_equal(np.bincount(out.y), [60, 60, 60])
    np.testing.assert_array_equal(out.x[: len(x)], x)
    assert out.synthetic.sum() == 40 + 52 and not out.synthetic[: len(x)].any()
    assert np.isfinite(out.x).all()
    # 88 rows in batches of 32: 2 steps an epoch, each reported (every 4th step and an epoch's last)
    assert [(p["epoch"], p["batch"]) for p in seen] == [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2)]
    assert [p["fraction"] for p in seen] == pytest.approx([1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1.0])
    assert seen[-1]["eta_s"] == 0.0
    from core.run_words import progress_text

    assert progress_text(seen[0]).startswith("fitting the resampler's generator of new rows: epoch 1 of 3")
    again = resample("tabular_gan", x, y, FAST, seed=0)
    np.testing.assert_array_equal(again.x, out.x)


def test_fitting_stops_when_asked():
    x, y = _table()
    with pytest.raises(FittingStopped):
        resample("tabular_gan", x, y, FAST, seed=0, should_stop=lambda: True)


def test_fitting_checks_for_a_cancel_every_few_steps_inside_an_epoch_as_the_training_loop_does():
    """One epoch of 11 steps (88 rows, batches of 8) is asked at steps 1, 5, 9 and 11; a
    cancel that arrives after the second check stops it at step 9 of epoch 1."""
    x, y = _table()
    asked = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) == 3

    with pytest.raises(FittingStopped, match="epoch 1, step 9"):
        resample("tabular_gan", x, y, {**FAST, "epochs": 1, "batch_size": 8}, seed=0, should_stop=stop)


def test_information_loss_is_zero_for_matching_features_and_positive_otherwise():
    import torch

    a = torch.randn(10, 4, generator=torch.Generator().manual_seed(0))
    assert information_loss(a, a).item() == 0
    assert information_loss(a, a + 1).item() == pytest.approx(4.0)


def test_made_rows_come_from_training_rows_only_and_never_reach_the_test_split():
    config = RunConfig.model_validate({**TINY, "resampler": {"name": "tabular_gan", **FAST}})
    plain = prepare_run_data(config)
    result = train_run(config)
    np.testing.assert_array_equal(result.splits.x_test, plain.x_test)
    np.testing.assert_array_equal(result.splits.x_val, plain.x_val)
    np.testing.assert_array_equal(result.artifacts.labels, plain.y_test)
    counts = np.bincount(plain.y_train)
    assert result.synthetic_count == int((counts.max() - counts).sum())
    with pytest.raises(Cancelled):
        train_run(config, should_stop=lambda: True)


def test_closest_record_distances_match_the_worked_example():
    """R = {(0, 0), (1, 1)}, F = {(0, 1), (3, 3)}, no scaling: real -> made minima [1, 1], 5th
    percentile 1.0; made -> real minima [1, 2.8284], 5th percentile 1.0914."""
    real, made = np.array([[0, 0], [1, 1]], float), np.array([[0, 1], [3, 3]], float)
    out = closest_record_distances(real, made, scale=False)
    assert out["p5_real_to_synthetic"] == pytest.approx(1.0)
    assert out["p5_synthetic_to_real"] == pytest.approx(1.0914, abs=1e-4)
    np.testing.assert_allclose(out["distances"]["synthetic_to_real"], [1, np.sqrt(8)])


def test_a_made_row_that_copies_a_real_one_is_flagged():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((200, 4))
    made = np.vstack([real[17] + 1e-6, rng.standard_normal((9, 4)) * 3 + 6])
    check = closest_record_check(real, made)
    assert check["flagged"][0] and not check["flagged"][1:].any()
    assert check["share_flagged"] == pytest.approx(0.1)


def test_utility_trains_on_made_rows_and_tests_on_real_ones():
    x, y = _table()
    out = resample("tabular_gan", x, y, FAST, seed=0)
    made, labels = out.x[out.synthetic], out.y[out.synthetic]
    scores = synthetic_utility(x, y, made, labels, x, y)
    assert 0 <= scores["train_real"] <= 1 and 0 <= scores["train_both"] <= 1
    assert 0 <= scores["train_synthetic"] <= 1


def test_the_worker_shows_the_gan_fitting_and_a_cancel_stops_it_there(tmp_path):
    """Through the run's own channel: the store's progress says the generator is being fitted,
    and a cancel asked for meanwhile ends the run as cancelled while it fits (no epoch of the
    network is ever trained)."""
    from core.jobs import execute_run
    from core.run_words import progress_text
    from core.store import RunStore

    store = RunStore(tmp_path)
    slow = {**FAST, "epochs": 5000}  # far longer than the test: only a cancel ends it soon
    run_id = store.create_run(RunConfig.model_validate({**TINY, "resampler": {"name": "tabular_gan", **slow}}))
    seen = []

    def echo(info):
        seen.append(dict(store.get(run_id).progress or {}))
        store.request_cancel(run_id)

    import os

    assert execute_run(store, store.claim(run_id, os.getpid()), embeddings=False, echo=echo) == "cancelled"
    record = store.get(run_id)
    assert seen and seen[0]["stage"] == "resample" and seen[0]["epochs"] == 5000
    assert progress_text(seen[0]).startswith("fitting the resampler's generator of new rows: epoch 1 of 5000")
    assert "resampler was fitting" in record.error and record.status == "cancelled"
    assert max(p["epoch"] for p in seen) < 5000 and not store.history(run_id)
