"""Semi-supervised pseudo-labels and self-supervised pre-training: the objectives learn, they
never see the test split, the threshold and the per-class report are right, and a tiny run
through the worker stores what the Results page shows."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from sklearn.metrics import precision_score, recall_score
from statsmodels.stats.proportion import proportion_confint

from core.config import ConfigError, PretrainSpec, RunConfig, load_config
from core.models import Classifier, create_model
from core.registry import describe_params
from core.train import PRETRAIN, SEMI, prepare_run_data, pseudo_label_report, select_pseudo_labels, train_run
from core.train import _pretrain, _semi
from core.train._pretrain import nt_xent
from core.train._common import TrainResult
from core.viz import pretrain_loss_figure, pseudo_label_figure, pseudo_label_table

DATA = {"source": "digits", "imbalance": {"profile": "exp", "ratio": 20}, "unlabeled": {"fraction": 0.8}}
TINY_TRAIN = {"epochs": 2, "batch_size": 64, "min_steps": 0, "nc_every": 0, "train_subset": 100}
MARK = 1000.0  # added to every test input: a value no training or unlabelled input can have


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, the more so on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def splits():
    return prepare_run_data(RunConfig.model_validate({"data": DATA}))


def marked_test(splits):
    """The same splits with test inputs no other row can equal."""
    return dataclasses.replace(splits, x_test=splits.x_test + MARK)


# --- registries ------------------------------------------------------------------------------

@pytest.mark.parametrize("registry", [PRETRAIN, SEMI])
def test_entries_explain_themselves(registry):
    for info in registry.infos():
        assert info.display and info.description and info.paper
        for param in describe_params(info.params):
            assert param["title"] and param["help"], (info.name, param["name"])


# --- pre-training ----------------------------------------------------------------------------

def test_nt_xent_matches_a_hand_computation():
    gen = torch.Generator().manual_seed(3)
    a, b = torch.randn(4, 5, generator=gen), torch.randn(4, 5, generator=gen)
    z = torch.cat([a, b]).numpy().astype(np.float64)
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    t, n, losses = 0.3, 4, []
    for i in range(2 * n):
        partner = (i + n) % (2 * n)
        others = [np.exp(z[i] @ z[j] / t) for j in range(2 * n) if j != i]
        losses.append(-np.log(np.exp(z[i] @ z[partner] / t) / sum(others)))
    assert float(nt_xent(a, b, t)) == pytest.approx(np.mean(losses), rel=1e-5)


@pytest.mark.parametrize("name", PRETRAIN.names())
def test_pretraining_lowers_its_own_loss(splits, name):
    torch.manual_seed(0)
    model = create_model("mlp", {"hidden": 64}, input_shape=splits.input_shape, num_classes=splits.num_classes)
    head_before = model.head.weight.detach().clone()
    stages = []
    labelled = PRETRAIN.info(name).capabilities.get("labels", False)  # SBCL: the labelled rows and their labels
    inputs = splits.x_train if labelled else _pretrain.pretrain_inputs(splits)
    info = _pretrain.run_pretrain(PretrainSpec(name=name, epochs=10, batch_size=64), model, inputs,
                                  device=torch.device("cpu"), seed=0, labels=splits.y_train if labelled else None,
                                  progress=lambda p: stages.append(p["stage"]), should_stop=lambda: False)
    loss = info["loss"]
    assert len(loss) == 10 and all(np.isfinite(loss))
    # a clear fall, beyond the epoch-to-epoch noise; SBCL's loss cannot fall as far (with many positives per anchor
    # its least value is about tau / 0.07 x log(positives), and re-clustering moves the target once)
    assert np.mean(loss[-3:]) < (0.95 if labelled else 0.92) * loss[0], loss
    assert torch.equal(model.head.weight, head_before), "pre-training leaves the classifier alone"
    assert set(stages) == {"pretrain"}


def test_pretraining_sees_every_training_input_and_no_test_input(splits, monkeypatch):
    seen = []
    real = _pretrain.run_pretrain

    def spy(spec, model, inputs, **kwargs):
        seen.append(np.array(inputs))
        return real(spec, model, inputs, **kwargs)

    monkeypatch.setattr(_pretrain, "run_pretrain", spy)
    config = RunConfig.model_validate({"data": DATA, "model": {"name": "mlp", "hidden": 32}, "train": TINY_TRAIN,
                                       "pretrain": {"name": "contrastive", "epochs": 2}})
    result = train_run(config, splits=marked_test(splits))
    (inputs,) = seen
    assert len(inputs) == len(splits.x_train) + len(splits.x_unlabeled)
    np.testing.assert_array_equal(inputs, np.concatenate([splits.x_train, splits.x_unlabeled]))
    assert inputs.max() < MARK, "a test input reached pre-training"
    assert result.info["pretrain"]["inputs"] == len(inputs) and len(result.info["pretrain"]["loss"]) == 2


def test_baselines_and_semi_without_unlabelled_rows_are_refused():
    with pytest.raises(ValidationError, match="semi needs unlabelled rows"):
        RunConfig.model_validate({"semi": {"name": "pseudo_label"}})
    with pytest.raises(ConfigError, match=r"semi needs unlabelled rows: set data.unlabeled.fraction"):
        load_config({"data": {"unlabeled": {"fraction": 0}}, "semi": {"name": "pseudo_label"}})
    with pytest.raises(ConfigError, match="threshold"):
        load_config({"data": DATA, "semi": {"name": "pseudo_label", "threshold": 1.5}})
    config = RunConfig.model_validate({"data": {"source": "wine"}, "model": {"name": "logistic_regression"},
                                       "pretrain": {"name": "masked"}})
    with pytest.raises(ValueError, match="table baseline"):
        train_run(config)


# --- pseudo-labels ---------------------------------------------------------------------------

def test_threshold_keeps_exactly_the_confident_rows():
    probs = np.array([[0.96, 0.04], [0.94, 0.06], [0.05, 0.95], [0.5, 0.5], [0.01, 0.99]])
    rows, labels, confidence = select_pseudo_labels(probs, threshold=0.95)
    assert rows.tolist() == [0, 2, 4] and labels.tolist() == [0, 1, 1]
    np.testing.assert_allclose(confidence, [0.96, 0.95, 0.99])
    assert select_pseudo_labels(probs, threshold=0.995)[0].size == 0


def test_class_balanced_cap_keeps_each_class_s_most_confident_rows():
    conf0 = [0.97, 0.99, 0.96, 0.98]
    probs = np.array([[c, 1 - c] for c in conf0] + [[0.02, 0.98], [0.6, 0.4]])
    rows, labels, _ = select_pseudo_labels(probs, threshold=0.9, max_ratio=2)
    assert rows.tolist() == [1, 3, 4] and labels.tolist() == [0, 0, 1]  # class 1 has 1, so class 0 keeps its best 2


@dataclasses.dataclass
class _NoArtifacts:
    """The fake training evaluates nothing; `run` only swaps its class counts."""

    class_counts: np.ndarray | None = None


class _FixedLogits(Classifier):
    """Its logits are its inputs: a first model whose confidences the test chooses."""

    def __init__(self, k: int):
        super().__init__(k, k)
        with torch.no_grad():
            self.head.weight.copy_(torch.eye(k))
            self.head.bias.zero_()

    def forward_features(self, x):
        return x.reshape(len(x), -1)


def test_pseudo_labelling_respects_the_threshold_and_never_sees_the_test_split(splits, monkeypatch):
    """Through the real `run`: rows below the threshold never join training; the first model
    is handed no test row and predicts only the unlabelled rows."""
    k, rng = 3, np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(60, k)).astype(np.float32)
    probs = torch.softmax(torch.from_numpy(logits), 1).numpy()
    table = dataclasses.replace(
        splits, x_train=np.eye(k, dtype=np.float32).repeat(2, 0), y_train=np.arange(k).repeat(2),
        x_val=np.eye(k, dtype=np.float32), y_val=np.arange(k), x_test=np.full((5, k), MARK, np.float32),
        y_test=np.arange(5) % k, class_names=("a", "b", "c"), modality="tabular", x_unlabeled=logits,
        y_unlabeled_true=rng.integers(0, k, 60))
    calls, predicted = [], []

    def fake_train(config, given, progress, should_stop, on_epoch, snapshot_metrics):
        calls.append(given)
        return TrainResult(_FixedLogits(k), [], _NoArtifacts(), given, "cpu", 0, {})

    real_predict = _semi.predict
    monkeypatch.setattr(_semi, "predict", lambda model, x: predicted.append(x.numpy().copy()) or real_predict(model, x))
    config = RunConfig.model_validate({"data": DATA, "semi": {"name": "pseudo_label", "threshold": 0.9}})
    result = _semi.run_semi(config, table, train=fake_train, progress=lambda p: None, should_stop=lambda: False)

    first, second = calls
    assert len(first.x_test) == 0 and len(first.y_test) == 0, "the first model must not hold the test split"
    (seen,) = predicted
    np.testing.assert_array_equal(seen, logits)
    keep = probs.max(1) >= 0.9
    added = second.x_train[len(table.x_train):]
    np.testing.assert_array_equal(added, logits[keep])
    np.testing.assert_array_equal(second.y_train[len(table.y_train):], probs.argmax(1)[keep])
    assert (second.x_train < MARK).all() and len(second.x_unlabeled) == (~keep).sum()
    assert result.info["semi"]["n_pseudo"] == keep.sum() and 0 < keep.sum() < 60


def test_every_row_variant_labels_each_row_with_its_most_likely_class():
    """REFERENCE-METHODS 9.2 (Yang & Xu): no threshold, a hard argmax for every row."""
    probs = np.array([[0.6, 0.4], [0.45, 0.55]])
    rows, labels, confidence = _semi.pseudo_label_every_row(probs)
    assert rows.tolist() == [0, 1] and labels.tolist() == [0, 1]
    np.testing.assert_allclose(confidence, [0.6, 0.55])
    assert len(select_pseudo_labels(probs, threshold=0.95)[0]) == 0  # the thresholded variant keeps neither


def _toy_split(splits, k=3, n_unlabeled=60, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, size=(n_unlabeled, k)).astype(np.float32)
    table = dataclasses.replace(
        splits, x_train=np.eye(k, dtype=np.float32).repeat(2, 0), y_train=np.arange(k).repeat(2),
        x_val=np.eye(k, dtype=np.float32), y_val=np.arange(k), x_test=np.full((5, k), MARK, np.float32),
        y_test=np.arange(5) % k, class_names=("a", "b", "c"), modality="tabular", x_unlabeled=logits,
        y_unlabeled_true=rng.integers(0, k, n_unlabeled))
    return table, logits


def test_every_row_variant_adds_all_unlabelled_rows_with_their_weight(splits):
    k = 3
    table, logits = _toy_split(splits, k)
    calls = []

    def fake_train(config, given, progress, should_stop, on_epoch, snapshot_metrics, row_weight=None):
        calls.append((given, row_weight))
        return TrainResult(_FixedLogits(k), [], _NoArtifacts(), given, "cpu", 0, {})

    config = RunConfig.model_validate({"data": DATA, "semi": {"name": "pseudo_label_all", "weight": 0.3}})
    result = _semi.run_semi(config, table, train=fake_train, progress=lambda p: None, should_stop=lambda: False)
    (first, first_weight), (second, weight) = calls
    assert len(first.x_test) == 0 and first_weight is None
    np.testing.assert_array_equal(second.x_train[len(table.x_train):], logits)  # every row, in order
    np.testing.assert_array_equal(second.y_train[len(table.y_train):], logits.argmax(1))
    assert len(second.x_unlabeled) == 0
    np.testing.assert_array_equal(weight, np.r_[np.ones(len(table.y_train)), np.full(60, 0.3)])
    report = result.info["semi"]
    assert report["n_pseudo"] == 60 and report["threshold"] is None and report["weight"] == 0.3
    assert [c["pseudo_labels"] for c in report["per_class"]] == np.bincount(logits.argmax(1), minlength=k).tolist()


def test_the_pseudo_label_weight_reaches_the_loss(splits, monkeypatch):
    """Through a real run: in an epoch of the second model (every row once, instance sampling)
    exactly the pseudo-labelled rows weigh 0.25, and the batch loss is sum w_i l_i / sum w_i,
    checked by hand from per-row cross-entropies."""
    from core.methods import weighted_batch_loss

    from core.train import _loop

    batches = []

    def spy(loss_fn, logits, target, weight):
        out = weighted_batch_loss(loss_fn, logits, target, weight)
        batches.append((weight.detach().clone(), torch.nn.functional.cross_entropy(logits.detach(), target, reduction="none"),
                        out.detach()))
        return out

    monkeypatch.setattr(_loop, "weighted_batch_loss", spy)
    config = RunConfig.model_validate({"data": DATA, "model": {"name": "mlp", "hidden": 16},
                                       "train": {**TINY_TRAIN, "epochs": 1},
                                       "semi": {"name": "pseudo_label_all", "weight": 0.25}})
    result = train_run(config, splits=splits)
    weights = torch.cat([w for w, _, _ in batches])
    assert len(weights) == len(splits.y_train) + len(splits.x_unlabeled)  # one epoch of the second model
    assert int((weights == 0.25).sum()) == len(splits.x_unlabeled) == result.info["semi"]["n_pseudo"]
    assert int((weights == 1).sum()) == len(splits.y_train)
    for w, per_row, loss in batches:
        assert float(loss) == pytest.approx(float((w * per_row).sum() / w.sum()), rel=1e-5)


def test_per_class_report_matches_sklearn():
    rng = np.random.default_rng(1)
    k, n = 4, 300
    y_true = rng.integers(0, k, n)
    y_true[rng.random(n) < 0.1] = -1  # uploaded rows: true class unknown
    rows = np.sort(rng.choice(n, 120, replace=False))
    labels = np.where(rng.random(120) < 0.7, np.maximum(y_true[rows], 0), rng.integers(0, k, 120))
    labels[labels == 3] = 2  # class 3 gets no pseudo-label: precision undefined, ratio unbounded
    report = pseudo_label_report(rows, labels, y_true, num_classes=k, labelled_counts=np.array([9, 5, 3, 1]),
                                 n_unlabeled=n)
    known = y_true[rows] >= 0
    expected = precision_score(y_true[rows][known], labels[known], labels=range(k), average=None, zero_division=np.nan)
    got = np.array([np.nan if c["precision"] is None else c["precision"] for c in report["per_class"]])
    np.testing.assert_allclose(got, expected)
    abstain = np.full(n, -1)
    abstain[rows] = labels
    has_truth = y_true >= 0
    expected_recall = recall_score(y_true[has_truth], abstain[has_truth], labels=range(k), average=None)
    np.testing.assert_allclose([c["recall"] for c in report["per_class"]], expected_recall)
    assert [c["pseudo_labels"] for c in report["per_class"]] == np.bincount(labels, minlength=k).tolist()
    assert report["imbalance_ratio"] is None and report["classes_without"] == 1
    assert report["precision"] == pytest.approx((labels[known] == y_true[rows][known]).mean())
    assert report["labelled_imbalance_ratio"] == 9.0

    table = pseudo_label_table(report, ["w", "x", "y", "z"])
    assert table["class"].tolist() == ["w", "x", "y", "z"]  # head to tail by labelled rows
    row = table.iloc[0]
    low, high = proportion_confint(row["correct"], row["checked"], method="wilson")
    assert (row["precision_low"], row["precision_high"]) == pytest.approx((low, high))
    fig = pseudo_label_figure(table, 0.95)
    right, wrong = (t for t in fig.data if t.type == "bar")
    np.testing.assert_array_equal(np.add(right.y, wrong.y), table["pseudo_labels"])


def test_figures_escape_class_names_and_show_the_loss():
    report = pseudo_label_report(np.array([0, 1]), np.array([0, 0]), None, num_classes=2,
                                 labelled_counts=np.array([3, 1]), n_unlabeled=4)
    fig = pseudo_label_figure(pseudo_label_table(report, ["<b>bold</b>", "rare"]))
    assert "<b>bold</b>" not in str(fig.data[0].x) and len(fig.data) == 1  # truth unknown: one bar, no precision
    loss = [3.0, 2.5, 2.0]
    assert list(pretrain_loss_figure(loss, "contrastive").data[0].y) == loss


def test_progress_names_each_stage_and_spans_both_trainings(splits):
    seen = []
    config = RunConfig.model_validate({"data": DATA, "model": {"name": "mlp", "hidden": 16}, "train": TINY_TRAIN,
                                       "pretrain": {"name": "masked", "epochs": 2},
                                       "semi": {"name": "pseudo_label", "threshold": 0.2}})
    train_run(config, splits=splits, progress=seen.append)
    phases = [p.get("phase") for p in seen]
    first = [p for p in seen if p.get("phase", "").startswith("first")]
    second = [p for p in seen if p.get("phase", "").startswith("second")]
    assert first and second and phases.index(second[0]["phase"]) > phases.index(first[-1]["phase"])
    assert {p["stage"] for p in first} == {"pretrain", "train"}, "round one has no test evaluation to report"
    assert max(p["fraction"] for p in first) <= 0.5 <= min(p["fraction"] for p in second)
    assert seen[-1]["stage"] == "evaluate" and seen[-1]["fraction"] == 1.0


# --- end to end: worker, store, Results page ---------------------------------------------------

@pytest.fixture(scope="module")
def label_runs(tmp_path_factory):
    from conftest import make_run

    home = tmp_path_factory.mktemp("labels-home")
    previous = os.environ.get("TAILSCOPE_HOME")
    os.environ["TAILSCOPE_HOME"] = str(home)
    common = {"data": DATA, "model": {"name": "mlp", "hidden": 32}, "train": {**TINY_TRAIN, "min_steps": 20}}
    try:
        pretrain = make_run(home, {**common, "name": "pretrained", "pretrain": {"name": "masked", "epochs": 3}},
                            embeddings=False)
        semi = make_run(home, {**common, "name": "pseudo", "semi": {"name": "pseudo_label", "threshold": 0.2}},
                        embeddings=False)
        every = make_run(home, {**common, "name": "every row", "semi": {"name": "pseudo_label_all", "weight": 0.5}},
                         embeddings=False)
    finally:
        if previous is None:
            os.environ.pop("TAILSCOPE_HOME", None)
        else:
            os.environ["TAILSCOPE_HOME"] = previous
    return {"home": home, "semi": semi, "pretrain": pretrain, "every": every}


def test_tiny_runs_store_what_the_page_reads(label_runs):
    from core.store import RunStore

    store = RunStore(label_runs["home"])
    semi = store.metrics(label_runs["semi"])
    report = semi["training"]["semi"]
    k = len(semi["dataset"]["class_names"])
    assert len(report["per_class"]) == k and report["n_pseudo"] == sum(c["pseudo_labels"] for c in report["per_class"])
    assert 0 < report["n_pseudo"] <= report["n_unlabeled"] and report["precision"] is not None
    assert semi["dataset"]["counts_train"] == [c["labelled"] for c in report["per_class"]]
    assert [r["epoch"] for r in store.history(label_runs["semi"])] == [1, 2], "history holds the final model only"
    pre = store.metrics(label_runs["pretrain"])["training"]["pretrain"]
    assert pre["name"] == "masked" and len(pre["loss"]) == 3
    every = store.metrics(label_runs["every"])["training"]["semi"]
    assert every["method"] == "pseudo_label_all" and every["threshold"] is None and every["weight"] == 0.5
    assert every["n_pseudo"] == every["n_unlabeled"] == sum(c["pseudo_labels"] for c in every["per_class"])


def test_results_page_shows_the_unlabelled_section(label_runs, open_page, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(label_runs["home"]))
    at = open_page("results", run_id=label_runs["semi"])
    assert not at.exception, [e.value for e in at.exception]
    assert "What the unlabelled rows added" in [s.value for s in at.subheader]
    labels = {m.label for m in at.metric}
    assert {"Pseudo-labelled rows", "Right", "Most / fewest per class"} <= labels
    assert len(at.get("plotly_chart")) == 4  # the open tab's three, and the pseudo-labels
    at = open_page("results", run_id=label_runs["every"])
    assert not at.exception, [e.value for e in at.exception]
    (chosen,) = [m for m in at.metric if m.label == "Pseudo-labelled rows"]
    assert "Every unlabelled row" in chosen.help and "0.5 times" in chosen.help
    at = open_page("results", run_id=label_runs["pretrain"])
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) == 4  # the open tab's three, and the pre-training loss
    assert any("practised on all" in c.value for c in at.caption)
