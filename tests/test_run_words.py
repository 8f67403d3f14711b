"""Words about a run (core.run_words): the budget line against a hand-worked step count,
progress lines and durations, used by the Train page, the run cards and the CLI alike."""

from __future__ import annotations

import math

from core.config import RunConfig
from core.run_words import budget_text, default_run_name, evaluation_words, format_seconds
from core.train import prepare_run_data

WINE = {"source": "wine", "imbalance": {"profile": "exp", "ratio": 5}}


def _config(**train) -> RunConfig:
    return RunConfig.model_validate({"data": WINE, "model": {"name": "mlp"}, "loss": {"name": "ce"},
                                     "train": {"epochs": 10, "batch_size": 32, **train}})


def test_budget_counts_steps_as_worked_by_hand():
    # 70 rows, batch 32: ceil(70 / 32) = 3 batches per epoch, 10 epochs = 30 steps
    text = budget_text(_config(min_steps=0), [40, 20, 10])
    assert text == "**Budget:** One training 10 epochs × 3 batches of up to 32 rows = 30 optimiser steps."
    # at least 200 steps: ceil(200 / 10) = 20 per epoch wanted, so ceil(20 * 32 / 70) = 10 passes of the 70 rows,
    # ceil(10 * 70 / 32) = 22 batches per epoch, 220 steps
    raised = budget_text(_config(min_steps=200), [40, 20, 10])
    passes = math.ceil(math.ceil(200 / 10) * 32 / 70)
    steps = math.ceil(passes * 70 / 32) * 10
    assert (passes, steps) == (10, 220)
    assert f"raised to **{steps} steps** ({passes} passes over the 70 training rows" in raised


def test_budget_reads_the_split_when_no_counts_are_given():
    config = _config(min_steps=0)
    counts = prepare_run_data(config).class_counts
    assert budget_text(config) == budget_text(config, counts.tolist())


def test_budget_of_a_tuned_text_run_says_so_and_counts_without_tuning(monkeypatch, tmp_path):
    from core.data import TunedMiniLmEncoder

    def refuse(*args, **kwargs):
        raise AssertionError("the budget line tuned MiniLM")

    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    monkeypatch.setattr(TunedMiniLmEncoder, "_fit", refuse)
    data = {"source": "synthetic_notes", "params": {"num_classes": 3, "most_common": 40, "ratio": 4},
            "text_encoder": {"name": "minilm_tuned", "epochs": 3}}
    config = RunConfig.model_validate({"data": data, "model": {"name": "linear"}, "train": {"epochs": 2,
                                                                                           "min_steps": 0}})
    text = budget_text(config)
    assert "MiniLM is tuned on the training texts and labels (3 passes)" in text
    frozen = RunConfig.model_validate({**config.model_dump(mode="json"),
                                       "data": {**data, "text_encoder": {"name": "minilm"}}})
    assert text.startswith(budget_text(frozen)[:-1])  # the same steps, counted from the same split


def test_budget_of_an_experiment_and_of_a_baseline():
    experiment = RunConfig.model_validate({**_config().model_dump(mode="json"),
                                           "evaluation": {"folds": 2, "seeds": [0, 1]}})
    assert evaluation_words(experiment) == "2 folds × 2 seeds"
    assert budget_text(experiment, [40, 20, 10]).startswith("**Budget:** 4 trainings (2 folds × 2 seeds), each 10 epochs")
    baseline = RunConfig.model_validate({"data": WINE, "model": {"name": "logistic_regression"}})
    assert "fitted in one go" in budget_text(baseline)
    assert default_run_name(experiment).endswith(" · 2 folds × 2 seeds")


def test_durations():
    assert [format_seconds(s) for s in (0, 59.4, 60, 185, 3725)] == ["0 s", "59 s", "1 min 00 s", "3 min 05 s",
                                                                      "1 h 02 min"]
    assert format_seconds(float("nan")) == "unknown" and format_seconds(float("inf")) == "unknown"


def test_the_kept_epoch_is_named_as_the_chart_draws_it():
    """The training-curves chart draws a dashed line only when the kept epoch is not the last:
    the words beside it must not promise a line that is not there."""
    from core.run_words import kept_epoch_words
    from core.viz import training_curves_figure

    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1 / e, "val_balanced_accuracy": 0.5, "val_accuracy": 0.5}
               for e in range(1, 6)]
    for kept, line in ((5, False), (3, True)):
        figure = training_curves_figure(history, kept)
        has_line = any(s.line.dash == "dash" for s in figure.layout.shapes)
        words = kept_epoch_words(history, kept)
        assert has_line == line and ("dashed line" in words) == line and str(kept) in words
    assert kept_epoch_words(history, None) == "" and kept_epoch_words([], 3) == ""
