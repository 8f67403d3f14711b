"""The Train page: registry-built forms, invalid combinations, queueing, the live panel."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from app import state
from app.data_forms import current_data_config
from app.train_forms import build_run_config
from conftest import shown
from core.config import RunConfig
from core.data import class_order, describe_profile, load_builtin
from core.jobs import BASELINES
from core.models import MODELS
from core.run_words import format_seconds, progress_text
from core.store import RunStore
from core.train import compatible_models

MAIN = Path(__file__).resolve().parent.parent / "app" / "main.py"
WINE = {"source": "wine", "imbalance": {"profile": "exp", "ratio": 5}}


def _no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _open_train(data: dict | None = None, watch: list[str] | None = None):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(MAIN), default_timeout=120)
    if data is not None:
        at.session_state[state.DATA_CONFIG] = data
    if watch is not None:
        at.session_state[state.WATCH_RUN_IDS] = watch
    at.run()
    at.switch_page("../pages/train.py")
    at.run()
    return at


def _errors(at) -> str:
    return " ".join(shown(e.value) for e in at.error)


@pytest.mark.parametrize("home", ["empty_home", "stored_home"])
def test_renders_with_the_default_dataset(home, request, open_page):
    request.getfixturevalue(home)
    at = open_page("train")
    _no_exceptions(at)
    assert not at.error
    assert "digits" in " ".join(i.value for i in at.info)
    assert set(at.selectbox(key="train.model").options) == {MODELS.info(n).label for n in compatible_models("image")}
    assert at.selectbox(key="train.model").value == "small_cnn"
    assert not at.button(key="train.start").disabled
    assert any("Three places" in m.value for m in at.markdown), "the plain-words explainer"
    assert any("The standard loss" in c.value for c in at.caption), "the chosen loss's description"


def test_tables_offer_only_table_models(empty_home):
    at = _open_train(data=WINE)
    _no_exceptions(at)
    assert compatible_models("tabular") == [
        "balanced_random_forest", "hist_gradient_boosting", "linear", "logistic_regression", "mlp"]
    assert at.selectbox(key="train.model").options == [MODELS.info(n).label for n in compatible_models("tabular")]


def test_folds_and_seeds_queue_one_experiment_and_say_its_budget(empty_home):
    at = _open_train(data=WINE)
    budget = " ".join(c.value for c in at.caption if "Budget" in c.value)
    assert "optimiser steps" in budget and "raised to" in budget, "a small table gets its minimum steps"
    at.number_input(key="train.evaluation.folds").set_value(3).run()
    at.number_input(key="train.evaluation.seeds").set_value(2).run()
    _no_exceptions(at)
    assert any("6 trainings (3 folds × 2 seeds)" in c.value for c in at.caption)
    at.button(key="train.start").click().run()
    _no_exceptions(at)
    store = RunStore(empty_home)
    (experiment,) = store.list_experiments()
    assert len(experiment.runs) == 6 and experiment.config["evaluation"] == {"folds": 3, "seeds": [0, 1]}
    assert at.session_state[state.WATCH_RUN_IDS] == [experiment.id]
    assert any("experiment of 6 runs" in m.value for m in at.markdown), "one card for the whole experiment"
    assert at.session_state[state.JUST_MADE]["id"] == experiment.id
    at.run()  # the next rerun (the status watcher's) moves the run picker to it
    assert at.session_state[state.RUN_ID] in {r.id for r in experiment.runs}, "Results opens what was just queued"


def test_add_the_baselines_queues_three_on_the_same_data(empty_home):
    at = _open_train(data=WINE)
    at.number_input(key="train.evaluation.folds").set_value(2).run()
    at.button(key="train.baselines").click().run()
    _no_exceptions(at)
    experiments = RunStore(empty_home).list_experiments()
    assert sorted(e.config["model"]["name"] for e in experiments) == sorted(BASELINES)
    assert all(e.config["data"] == experiments[0].config["data"] and e.config["evaluation"]["folds"] == 2
               for e in experiments)


def test_a_baseline_with_a_deep_loss_is_refused(empty_home):
    at = _open_train(data=WINE)
    at.selectbox(key="train.model").set_value("logistic_regression").run()
    at.selectbox(key="train.loss").set_value("focal").run()
    _no_exceptions(at)
    assert "loss 'focal' does not apply" in _errors(at) and at.button(key="train.start").disabled


def test_focal_loss_with_gamma_is_queued(empty_home, open_page):
    at = open_page("train")
    at.selectbox(key="train.loss").set_value("focal").run()
    assert any("Lin et al." in c.value for c in at.caption), "the loss's paper"
    # under each select, its choice's whole name (a half column may end the select's text in "…")
    for key, label in (("train.loss", "Focal loss"), ("train.sampler", "Natural (every example once)"),
                       ("train.model", "Small convolutional network")):
        assert at.selectbox(key=key).options[at.selectbox(key=key).index] == label
        assert any(shown(c.value).startswith(f"**{label}**: ") for c in at.caption), label
    at.number_input(key="train.loss.focal.gamma").set_value(1.5).run()
    at.number_input(key="train.settings.epochs").set_value(2).run()
    at.button(key="train.start").click().run()
    _no_exceptions(at)
    runs = RunStore(empty_home).list_runs()
    assert len(runs) == 1 and runs[0].status == "queued"
    config = RunConfig.model_validate(runs[0].config)
    assert config.loss.name == "focal" and config.loss.params["gamma"] == 1.5
    assert config.train.epochs == 2 and config.data.source == "digits"
    assert config.data.imbalance.profile == "exp" and config.data.imbalance.ratio == 50
    assert at.session_state[state.WATCH_RUN_IDS] == [runs[0].id]
    assert any("queued" in m.value for m in at.markdown), "the live panel shows the queued run"
    # a second run can be queued while the first waits
    at.button(key="train.start").click().run()
    assert len(RunStore(empty_home).list_runs()) == 2
    assert len(at.session_state[state.WATCH_RUN_IDS]) == 2


def test_drw_epoch_past_the_end_is_an_error_and_queues_nothing(empty_home, open_page):
    at = open_page("train")
    at.checkbox(key="train.drw").check().run()
    at.number_input(key="train.drw.drw_epoch").set_value(30).run()
    _no_exceptions(at)
    assert "drw_epoch (30) must be below train.epochs (20)" in _errors(at)
    assert at.button(key="train.start").disabled
    assert RunStore(empty_home).list_runs() == []
    at.number_input(key="train.drw.drw_epoch").set_value(10).run()
    assert not at.error and not at.button(key="train.start").disabled
    assert at.number_input(key="train.drw.drw_beta").value == 0.9999, "DRW's other setting, from its declaration"


def test_resampler_on_images_is_an_error(empty_home, open_page):
    at = open_page("train")
    at.selectbox(key="train.resampler").set_value("smote").run()
    _no_exceptions(at)
    assert "resampler 'smote'" in _errors(at) and "image" in _errors(at)
    assert at.button(key="train.start").disabled
    assert RunStore(empty_home).list_runs() == []


def test_resampler_and_stage_two_on_a_table(empty_home):
    at = _open_train(data=WINE)
    at.selectbox(key="train.resampler").set_value("smote").run()
    at.number_input(key="train.resampler.smote.k_neighbors").set_value(3).run()
    [counts] = [d.value for d in at.dataframe if "synthetic" in d.value.columns]
    assert (counts["after"] == counts["before"] + counts["synthetic"] - counts["removed"]).all()
    assert counts["synthetic"].sum() > 0 and counts["removed"].sum() == 0  # SMOTE only adds rows
    assert len(set(counts["after"])) == 1, "SMOTE's default strategy balances every class"
    assert any(c.proto.id and "row made by SMOTE" in c.proto.spec for c in at.get("plotly_chart"))  # named by its maker
    at.selectbox(key="train.stage2").set_value("crt").run()
    at.text_input(key="train.name").input("wine smote crt").run()
    assert not at.error
    at.button(key="train.start").click().run()
    (record,) = RunStore(empty_home).list_runs()
    assert record.name == "wine smote crt"
    config = RunConfig.model_validate(record.config)
    assert config.resampler.name == "smote" and config.resampler.params["k_neighbors"] == 3
    assert config.stage2.name == "crt" and config.data.source == "wine"


def test_finished_runs_show_results_and_curves(stored_home):
    runs = [stored_home["table_run"], stored_home["image_run"]]
    at = _open_train(watch=runs)
    _no_exceptions(at)
    assert sum("Finished" in s.value for s in at.success) == 2
    assert not at.get("plotly_chart"), "a finished run's curves are built only when their expander is opened"
    at.session_state[f"train.curves_open.{runs[0]}"] = True  # what opening that expander does
    at.run()
    assert len(at.get("plotly_chart")) == 2, "curves and recall heatmap of the opened run"
    links = [link.proto for link in at.get("page_link")]
    opens = [link for link in links if link.label == "Open its results"]
    assert {link.query_string for link in opens} == {f"run={r}" for r in runs}, "a plain link per run: ?run=ID"


def test_running_run_shows_progress_and_can_be_cancelled(empty_home):
    store = RunStore(empty_home)
    run_id = store.create_run(RunConfig.model_validate({"name": "live", "train": {"epochs": 10}}))
    store.claim(run_id, os.getpid())
    store.set_progress(run_id, {"stage": "train", "epoch": 3, "epochs": 10, "fraction": 0.25, "eta_s": 42.0})
    store.write_metrics(run_id, {"dataset": {"class_names": ["a", "b", "c"], "counts_train": [30, 10, 3],
                                             "groups": ["head", "medium", "tail"]}})
    store.write_history(run_id, [{"epoch": e, "stage": "train", "train_loss": 1.0 / e, "val_loss": 1.2 / e,
                                  "val_accuracy": 0.5, "val_balanced_accuracy": 0.4,
                                  "val_recall": [0.9, 0.5, 0.1]} for e in (1, 2)])
    at = _open_train(watch=[run_id])
    _no_exceptions(at)
    (bar,) = at.get("progress")
    assert "epoch 3 of 10" in bar.proto.text and "42 s" in bar.proto.text
    assert len(at.get("plotly_chart")) == 2
    at.button(key=f"train.cancel.{run_id}").click().run()
    _no_exceptions(at)
    assert store.cancel_requested(run_id)
    assert "cancelling" in at.get("progress")[0].proto.text
    store.mark_cancelled(run_id)
    at.run()
    assert any("cancelled" in w.value for w in at.warning)


# --- form helpers -------------------------------------------------------------------------

def test_build_run_config_explains_what_cannot_run():
    digits, wine = load_builtin("digits"), load_builtin("wine")
    base = {"data": {"source": "digits"}, "model": {"name": "small_cnn"}, "loss": {"name": "ce"}}
    config, error = build_run_config(base, digits)
    assert error is None and config.name == "Handwritten digits · Small convolutional network · Cross-entropy (plain)"
    _, error = build_run_config({**base, "loss": {"name": "focal", "gamma": -1}}, digits)
    assert "gamma" in error
    _, error = build_run_config({**base, "resampler": {"name": "smote"}}, digits)
    assert "resampler 'smote'" in error
    _, error = build_run_config({**base, "data": WINE}, wine)
    assert "model 'small_cnn' works on image data" in error and "mlp" in error
    _, error = build_run_config({**base, "loss": {"name": "ce", "drw_epoch": 20}}, digits)
    assert "drw_epoch (20) must be below train.epochs (20)" in error
    order = {"source": "digits", "imbalance": {"profile": "exp", "ratio": 10, "class_order": [0, 1, 2]}}
    _, error = build_run_config({**base, "data": order}, digits)
    assert "data.imbalance.class_order" in error and "10 classes" in error


def test_progress_text_and_durations():
    assert progress_text(None) == "starting…"
    assert progress_text({"stage": "train", "epoch": 2, "epochs": 5, "eta_s": 75}) == \
        "epoch 2 of 5 · about 1 min 15 s left"
    assert progress_text({"stage": "crt", "epoch": 1, "epochs": 3}) == "stage 2 (crt): epoch 1 of 3"
    assert "test set" in progress_text({"stage": "evaluate"})
    assert progress_text({"stage": "pretrain", "epoch": 3, "epochs": 8}).endswith("epoch 3 of 8")
    assert "without labels" in progress_text({"stage": "pretrain", "epoch": 3, "epochs": 8})
    assert "the labelled rows" in progress_text({"stage": "pretrain", "epoch": 3, "epochs": 8, "labels": True})
    assert progress_text({"stage": "train", "epoch": 1, "epochs": 4, "phase": "first model"}) == \
        "first model · epoch 1 of 4"
    assert format_seconds(3725) == "1 h 02 min" and format_seconds(None) == "unknown"


def test_class_order_choices():
    assert class_order("as is", 4) is None
    assert class_order("reversed", 4) == [3, 2, 1, 0]
    assert sorted(class_order("random (seeded)", 4, seed=3)) == [0, 1, 2, 3]
    assert class_order("random (seeded)", 4, seed=3) == class_order("random (seeded)", 4, seed=3)
    assert class_order("custom", 4, custom=[2, 2, 0]) == [2, 0, 1, 3]
    with pytest.raises(ValueError):
        class_order("sideways", 4)


def test_default_data_config_is_digits_exp_50():
    data = current_data_config(None)
    assert (data.source, data.imbalance.profile, data.imbalance.ratio) == ("digits", "exp", 50)
    assert "1/50" in describe_profile("exp", 50, 0.5, 10)
    assert "3 classes keep" in describe_profile("step", 10, 0.7, 10)


def test_form_values_survive_a_visit_to_another_page(empty_home, open_page):
    at = open_page("train")
    at.number_input(key="train.settings.epochs").set_value(2).run()
    at.selectbox(key="train.loss").set_value("focal").run()
    at.switch_page("../pages/results.py")
    at.run()
    at.switch_page("../pages/train.py")
    at.run()
    assert not at.exception
    assert at.number_input(key="train.settings.epochs").value == 2
    assert at.selectbox(key="train.loss").value == "focal"


def test_a_resampler_that_cannot_run_on_this_split_blocks_the_start(empty_home):
    at = _open_train(data={"source": "wine", "imbalance": {"profile": "exp", "ratio": 50}})
    at.selectbox(key="train.resampler").set_value("smote").run()
    _no_exceptions(at)
    assert "k_neighbors=5 needs at least 6" in _errors(at)  # in the preview and in the reason
    assert at.button(key="train.start").disabled
    at.selectbox(key="train.resampler").set_value("random_over").run()  # copies need no neighbours
    assert not at.error and not at.button(key="train.start").disabled


def test_schedule_and_weight_decay_reach_the_config(empty_home, open_page):
    at = open_page("train")
    at.selectbox(key="train.settings.schedule").set_value("step").run()
    at.number_input(key="train.settings.weight_decay").set_value(2e-4).run()
    at.number_input(key="train.settings.warmup_epochs").set_value(5).run()
    at.button(key="train.start").click().run()
    _no_exceptions(at)
    (record,) = RunStore(empty_home).list_runs()
    train = RunConfig.model_validate(record.config).train
    assert (train.schedule, train.weight_decay, train.warmup_epochs) == ("step", 2e-4, 5)
    at.number_input(key="train.settings.warmup_epochs").set_value(20).run()  # not below the 20 epochs
    assert "warmup_epochs must be below train.epochs" in _errors(at) and at.button(key="train.start").disabled


def test_crt_with_a_feature_space_resampler_and_its_parameters(empty_home, open_page):
    at = open_page("train")
    at.selectbox(key="train.stage2").set_value("crt").run()
    at.selectbox(key="train.stage2.crt.resampler").set_value("smote").run()
    at.text_input(key="train.stage2.crt.resampler_params").input('{"k_neighbors": 0}').run()
    assert "k_neighbors" in _errors(at) and at.button(key="train.start").disabled
    at.text_input(key="train.stage2.crt.resampler_params").input('{"k_neighbors": 2}').run()
    assert not at.error
    at.button(key="train.start").click().run()
    (record,) = RunStore(empty_home).list_runs()
    stage2 = RunConfig.model_validate(record.config).stage2.resolved_params()
    assert stage2["resampler"] == "smote" and stage2["resampler_params"] == {"k_neighbors": 2}


def test_a_reload_still_shows_the_runs_in_progress(empty_home):
    store = RunStore(empty_home)
    run_id = store.create_run(RunConfig.model_validate({"name": "still waiting", "train": {"epochs": 1}}))
    at = _open_train()  # a new session: nothing watched
    _no_exceptions(at)
    assert any("still waiting" in m.value for m in at.markdown), "the queued run has its card after a reload"
    assert at.button(key=f"train.cancel.{run_id}")


def test_ordered_stages_offer_the_ordinal_models(empty_home):
    at = _open_train(data={"source": "ordinal_stages", "params": {"samples": 400}})
    _no_exceptions(at)
    options = at.selectbox(key="train.model").options
    assert {MODELS.info(n).label for n in ("proportional_odds", "presto", "separate_logits")} <= set(options)
    assert set(compatible_models("tabular", ordinal=True)) - set(compatible_models("tabular")) == {
        "proportional_odds", "presto", "separate_logits"}


def test_a_gan_resampler_shows_its_made_rows_and_their_checks(empty_home):
    at = _open_train(data=WINE)
    at.session_state["train.resampler.tabular_gan.epochs"] = 2
    at.selectbox(key="train.resampler").set_value("tabular_gan").run()
    _no_exceptions(at)
    [counts] = [d.value for d in at.dataframe if "synthetic" in d.value.columns]
    assert counts["synthetic"].sum() > 0 and len(set(counts["after"])) == 1
    assert any("Copies of real rows" in c.value and "Useful?" in c.value for c in at.caption)
    assert at.number_input(key="train.resampler.tabular_gan.epochs").value == 2


def _refuse(monkeypatch, owner, name: str, why: str) -> None:
    """`owner.name` fails the test if the page calls it."""
    def refuse(*args, **kwargs):
        raise AssertionError(why)

    monkeypatch.setattr(owner, name, refuse)


def test_the_budget_line_never_waits_on_encoding_free_text(empty_home, monkeypatch):
    """Notes read for their meaning: the form counts classes from the labels alone, so its
    budget line shows at once; encoding (half a minute for 5,000 notes) is the run's work."""
    from core.data._sentence_encoder import MiniLmEncoder

    _refuse(monkeypatch, MiniLmEncoder, "_encode", "the Train page encoded the notes")
    at = _open_train({"source": "synthetic_notes", "params": {"most_common": 200},
                      "text_encoder": {"name": "minilm"}})
    _no_exceptions(at)
    assert not at.error, _errors(at)
    assert any("optimiser steps" in c.value for c in at.caption), [c.value for c in at.caption]


def test_a_text_run_says_how_its_notes_are_read_and_never_tunes_minilm_on_the_page(empty_home, monkeypatch):
    from core.data import TunedMiniLmEncoder

    _refuse(monkeypatch, TunedMiniLmEncoder, "_fit", "the Train page tuned MiniLM")
    at = _open_train({"source": "synthetic_notes", "params": {"most_common": 200},
                      "text_encoder": {"name": "minilm_tuned"}})
    _no_exceptions(at)
    assert not at.error, _errors(at)
    [banner] = [i.value for i in at.info if i.value.startswith("**Data:**")]
    assert "free text (note), read as Sentence meaning, fine-tuned (MiniLM; best on a GPU)" in banner
    assert "tabular" not in banner
    assert any("MiniLM is tuned on the training texts and labels (2 passes)" in c.value for c in at.caption)

