"""The teaching playground's engine: toy generators, the fast training loop, post-hoc tau
and the figure builders. Everything here runs on tiny CPU setups in a few seconds."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, recall_score
from sklearn.neighbors import KNeighborsClassifier

from core.data import DATASETS, TOY_NOISE, TOY_PRESETS, load_builtin, profile_counts
from core.data._toy import HELD_OUT_PER_CLASS, TOY_SHAPES, make_toy_data
from core.methods import LOSSES, SAMPLERS
from core.train import ToyTrainer
from core.train._toy import ToyAdam, apply_tau, run_toy, toy_scores, train_toy
from core.viz import accuracy_bars_figure, decision_regions_figure, playground_notes, recall_bars_figure

# The fixed setup of the imbalance check: two interlocking moons, the second 50x rarer.
MOONS_50 = dict(num_classes=2, samples_per_class=500, noise=0.15, profile="exp", ratio=50.0)


@pytest.fixture(scope="module")
def trained():
    """One CE model on the fixed setup, trained once for the tau and figure tests."""
    data = make_toy_data("moons", **MOONS_50, seed=0)
    return data, run_toy(data, loss="ce", steps=300, seed=0)


# --- toy data ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", list(TOY_SHAPES))
@pytest.mark.parametrize("k", [2, 3, 6])
def test_generators_give_the_requested_class_counts(shape, k):
    d = TOY_SHAPES[shape](k, 37, 0.2, 1)
    assert d.x.shape == (37 * k, 2) and d.x.dtype == np.float32 and np.isfinite(d.x).all()
    assert np.bincount(d.y).tolist() == [37] * k
    assert d.class_names == tuple(f"class {c}" for c in range(k))
    again = TOY_SHAPES[shape](k, 37, 0.2, 1)
    assert np.array_equal(d.x, again.x), "a seed fixes the sample"


@pytest.mark.parametrize("k", [1, 7])
def test_generators_refuse_other_class_numbers(k):
    with pytest.raises(ValueError, match="2-6 classes"):
        TOY_SHAPES["blobs"](k, 10, 0.1, 0)


@pytest.mark.parametrize("profile, ratio", [("exp", 50.0), ("step", 10.0), ("linear", 4.0), ("none", 1.0)])
def test_toy_data_applies_the_imbalance_profile(profile, ratio):
    d = make_toy_data("spirals", num_classes=4, samples_per_class=200, profile=profile, ratio=ratio, seed=3)
    assert d.class_counts.tolist() == profile_counts([200] * 4, profile, ratio).tolist()
    assert np.bincount(d.y_test).tolist() == [HELD_OUT_PER_CLASS] * 4, "the held-out sample is balanced"
    assert np.bincount(d.y_mix, minlength=4).tolist() == d.class_counts.tolist(), "the second one has the training mix"
    # training points are a subset of the full draw; held-out points are fresh
    full = TOY_SHAPES["spirals"](4, 200, 0.3, 3)
    assert {tuple(p) for p in d.x_train} <= {tuple(p) for p in full.x}
    assert not {tuple(p) for p in d.x_test} & {tuple(p) for p in full.x}
    assert not {tuple(p) for p in d.x_mix} & ({tuple(p) for p in full.x} | {tuple(p) for p in d.x_test})


def _shape_shows(shape: str, k: int, noise: float) -> float:
    """How much a 5-nearest-neighbour classifier beats a straight line on fresh balanced
    points: large when the curved shape is visible, near zero once noise has made it a blob."""
    train, test = TOY_SHAPES[shape](k, 300, noise, 0), TOY_SHAPES[shape](k, 300, noise, 1)
    knn = KNeighborsClassifier(5).fit(train.x, train.y).score(test.x, test.y)
    line = LogisticRegression().fit(train.x, train.y).score(test.x, test.y)
    return knn - line


@pytest.mark.parametrize("shape", ["moons", "spirals"])
def test_each_shape_defaults_to_a_noise_that_shows_it(shape):
    assert _shape_shows(shape, 3, TOY_NOISE[shape]) > 0.1
    assert _shape_shows(shape, 3, TOY_NOISE[shape]) > _shape_shows(shape, 3, 0.6) + 0.05, "more noise blurs it"
    assert _shape_shows("spirals", 3, 0.6) < 0.05, "at the old default the spirals were a blob"


@pytest.mark.parametrize("name", list(TOY_PRESETS))
def test_presets_build_their_data(name):
    preset = TOY_PRESETS[name]
    d = make_toy_data(**preset, seed=0)
    counts = d.class_counts
    assert len(counts) == preset["num_classes"] and counts.max() == preset["samples_per_class"]
    if preset["profile"] == "none":
        assert counts.min() == counts.max()
    else:
        assert counts.max() / counts.min() == pytest.approx(preset["ratio"], rel=0.1)
    if preset["shape"] != "blobs":
        assert preset["noise"] == TOY_NOISE[preset["shape"]]


def test_toy_shapes_are_registered_datasets():
    for name in ("moons2d", "spirals2d"):
        assert name in DATASETS
        d = load_builtin(name, {"num_classes": 4, "samples_per_class": 20})
        assert np.bincount(d.y).tolist() == [20] * 4 and d.modality == "tabular"


# --- training loop ----------------------------------------------------------------------------

def test_training_yields_snapshots_on_schedule():
    data = make_toy_data("blobs", num_classes=3, samples_per_class=100, ratio=10, seed=0)
    snaps = list(train_toy(data, steps=100, snapshot_every=30, resolution=20))
    assert [s.step for s in snaps] == [30, 60, 90, 100] and snaps[-1].done and not snaps[0].done
    last = snaps[-1]
    assert last.grid_logits.shape == (20, 20, 3) and last.test_logits.shape == (len(data.y_test), 3)
    assert np.allclose(last.grid_probs.sum(-1), 1) and np.isfinite([s.loss for s in snaps]).all()
    assert snaps[-1].loss < snaps[0].loss, "the loss goes down"
    assert all(a.elapsed_s <= b.elapsed_s for a, b in zip(snaps, snaps[1:]))


def test_training_is_deterministic_for_a_seed():
    data = make_toy_data("moons", num_classes=3, samples_per_class=100, ratio=10, seed=0)
    a = run_toy(data, loss="focal", sampler="class_balanced", steps=60, seed=5)
    b = run_toy(data, loss="focal", sampler="class_balanced", steps=60, seed=5)
    c = run_toy(data, loss="focal", sampler="class_balanced", steps=60, seed=6)
    assert np.array_equal(a.grid_logits, b.grid_logits) and np.array_equal(a.test_logits, b.test_logits)
    assert a.loss == b.loss
    assert not np.allclose(a.grid_logits, c.grid_logits)


def test_written_out_adam_matches_torch_adam():
    import torch

    torch.manual_seed(0)
    ours, theirs = torch.nn.Linear(3, 4), torch.nn.Linear(3, 4)
    theirs.load_state_dict(ours.state_dict())
    opt_ours, opt_theirs = ToyAdam(list(ours.parameters()), lr=0.05), torch.optim.Adam(theirs.parameters(), lr=0.05)
    x, y = torch.randn(32, 3), torch.randint(0, 4, (32,))
    for _ in range(30):
        for model, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("loss", LOSSES.names())
def test_every_registered_loss_trains(loss):
    data = make_toy_data("blobs", num_classes=3, samples_per_class=60, ratio=10, seed=0)
    snap = run_toy(data, loss=loss, steps=4, resolution=8)
    assert np.isfinite(snap.loss) and np.isfinite(snap.grid_logits).all()


@pytest.mark.parametrize("sampler", SAMPLERS.names())
def test_every_registered_sampler_trains(sampler):
    data = make_toy_data("blobs", num_classes=3, samples_per_class=60, ratio=10, seed=0)
    snap = run_toy(data, sampler=sampler, steps=4, resolution=8)
    assert np.isfinite(snap.loss)


def test_scores_match_sklearn():
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(300, 4)), np.repeat(np.arange(4), 75)
    mix_labels = np.repeat(np.arange(4), [400, 100, 30, 5])
    mix_logits = rng.normal(size=(len(mix_labels), 4)) + 0.8 * np.eye(4)[mix_labels]
    recall, acc, bal = toy_scores(logits, labels, mix_logits, mix_labels)
    pred = logits.argmax(1)
    assert np.allclose(recall, recall_score(labels, pred, average=None))
    assert bal == pytest.approx(balanced_accuracy_score(labels, pred))
    assert acc == pytest.approx(accuracy_score(mix_labels, mix_logits.argmax(1)))


# --- step-through training --------------------------------------------------------------------

def test_steps_taken_in_chunks_equal_one_run():
    data = make_toy_data("moons", num_classes=2, samples_per_class=100, ratio=10, seed=0)
    kwargs = dict(loss="focal", sampler="class_balanced", steps=37, resolution=12, seed=4)
    chunked = ToyTrainer(data, **kwargs)
    assert chunked.step == 0 and not chunked.done and np.isnan(chunked.last.loss)
    for n in (1, 5, 10, 30):  # the last chunk overshoots: it stops at 37
        snap = chunked.advance(n)
        assert snap.step == chunked.step
    assert chunked.done and snap.step == 37
    assert chunked.advance(5) is snap, "a finished trainer stays where it is"
    whole = ToyTrainer(data, **kwargs).advance(37)
    assert np.array_equal(snap.grid_logits, whole.grid_logits) and np.array_equal(snap.mix_logits, whole.mix_logits)
    assert np.array_equal(run_toy(data, snapshot_every=7, **kwargs).test_logits, whole.test_logits)
    with pytest.raises(ValueError):
        chunked.advance(0)


def test_logit_adjustment_raises_minority_recall_over_seeds():
    """Ratio 50: plain CE gives up the rare moon; the logit-adjusted loss wins it back,
    measured on a balanced held-out sample, for the mean and for nearly every seed."""
    ce, la = [], []
    for seed in range(5):
        data = make_toy_data("moons", **MOONS_50, seed=seed)
        tail = int(data.class_counts.argmin())
        ce.append(run_toy(data, loss="ce", seed=seed).recall[tail])
        la.append(run_toy(data, loss="logit_adjusted", seed=seed).recall[tail])
    ce, la = np.array(ce), np.array(la)
    assert la.mean() > ce.mean() + 0.05, (ce, la)
    assert (la > ce).sum() >= 4, (ce, la)


# --- post-hoc tau -----------------------------------------------------------------------------

def test_tau_zero_is_the_identity(trained):
    _, snap = trained
    same = apply_tau(snap, 0.0)
    assert np.array_equal(same.grid_logits, snap.grid_logits) and np.array_equal(same.recall, snap.recall)
    assert same.accuracy == snap.accuracy and same.balanced_accuracy == snap.balanced_accuracy


def test_tau_follows_the_formula_and_is_reversible(trained):
    _, snap = trained
    log_prior = np.log(snap.class_counts / snap.class_counts.sum())
    moved = apply_tau(snap, 0.7)
    assert np.allclose(moved.test_logits, snap.test_logits - 0.7 * log_prior, atol=1e-5)
    assert np.allclose(moved.mix_logits, snap.mix_logits - 0.7 * log_prior, atol=1e-5)
    assert moved.accuracy == pytest.approx(accuracy_score(snap.mix_labels, moved.mix_logits.argmax(1)))
    assert np.allclose(moved.grid_logits, snap.grid_logits - 0.7 * log_prior, atol=1e-5)
    back = apply_tau(moved, 0.0)
    assert back.tau == 0 and np.allclose(back.grid_logits, snap.grid_logits, atol=1e-5)


def test_increasing_tau_raises_minority_recall(trained):
    data, snap = trained
    tail = int(data.class_counts.argmin())
    taus = [0.0, 0.5, 1.0, 1.5, 2.0]
    recalls = [apply_tau(snap, t).recall[tail] for t in taus]
    areas = [(apply_tau(snap, t).grid_pred == tail).mean() for t in taus]
    assert all(a <= b for a, b in zip(recalls, recalls[1:])) and recalls[-1] > recalls[0], recalls
    assert all(a <= b for a, b in zip(areas, areas[1:])) and areas[-1] > areas[0], "the tail's region grows"


# --- figures ----------------------------------------------------------------------------------

def test_decision_regions_draw_the_prediction_and_the_rare_class_on_top(trained):
    data, snap = trained
    fig = decision_regions_figure(snap.grid_x, snap.grid_y, snap.grid_probs, data.x_train, data.y_train,
                                  data.class_names, data.class_counts)
    heat, *points = fig.data
    assert isinstance(heat, go.Heatmap) and all(isinstance(t, go.Scatter) for t in points)
    z = np.asarray(heat.z)
    assert np.array_equal(np.floor(z).astype(int), snap.grid_probs.argmax(-1))
    assert heat.zmin == 0 and heat.zmax == data.num_classes
    head, tail = points  # head first, so the rare class is drawn on top of it
    assert len(head.x) == data.class_counts[0] and len(tail.x) == data.class_counts[1]
    assert tail.marker.size > head.marker.size and tail.marker.line.width > head.marker.line.width
    assert np.allclose(np.column_stack([tail.x, tail.y]), data.x_train[data.y_train == 1])


def test_decision_regions_without_a_model_and_with_hard_predictions():
    pts = np.array([[0, 0], [1, 1], [2, 2.0]])
    only_points = decision_regions_figure(None, None, None, pts, np.array([0, 0, 1]), ["a", "b"])
    assert [type(t) for t in only_points.data] == [go.Scatter, go.Scatter]
    pred = np.array([[0, 1], [1, 1]])
    fig = decision_regions_figure(np.arange(2.0), np.arange(2.0), pred, pts, np.array([0, 0, 1]), ["a", "b"])
    assert np.array_equal(np.floor(np.asarray(fig.data[0].z)), pred)


def test_recall_bars_go_head_to_tail_in_the_colours_of_their_points():
    counts, recall = np.array([10, 500, 80]), np.array([0.2, 0.99, 0.7])
    fig = recall_bars_figure(["a", "b", "c"], recall, counts)
    assert list(fig.layout.xaxis.categoryarray) == ["b", "c", "a"]
    bars = {t.name: t for t in fig.data}
    assert set(bars) == {"b (head)", "c (medium)", "a (tail)"}
    points = decision_regions_figure(None, None, None, np.zeros((3, 2)), np.array([0, 1, 2]), ["a", "b", "c"], counts)
    point_colours = {t.name.split(" · ")[0]: t.marker.color for t in points.data}
    assert {name.split(" (")[0]: bar.marker.color for name, bar in bars.items()} == point_colours
    assert "class" in fig.layout.legend.title.text
    assert list(bars["a (tail)"].x) == ["a"] and bars["a (tail)"].y[0] == pytest.approx(0.2)


def test_accuracy_bars_pair_plain_and_balanced():
    fig = accuracy_bars_figure([0.98, 0.95], [0.6, 0.9], ["ce", "logit_adjusted"])
    acc, bal = fig.data
    assert acc.name.startswith("accuracy") and bal.name == "balanced accuracy"
    assert list(acc.y) == [0.98, 0.95] and list(bal.y) == [0.6, 0.9] and list(acc.x) == ["ce", "logit_adjusted"]
    single = accuracy_bars_figure(0.9, 0.5)
    assert len(single.data[0].y) == 1
    with pytest.raises(ValueError):
        accuracy_bars_figure([0.9, 0.8], [0.5])


# --- captions from the numbers ------------------------------------------------------------------

def test_notes_say_when_the_fix_does_worse():
    notes = playground_notes(["Cross-entropy", "Logit-adjusted"], [0.85, 0.37], [0.95, 0.90], [0.90, 0.70],
                             "class 2", seed=3)
    text = " ".join(notes)
    assert "finds *fewer* of the rarest class" in notes[0] and "85%" in notes[0] and "37%" in notes[0]
    assert "48 percentage points fewer" in notes[0] and "did worse" in notes[0]
    assert "worse than **Cross\\-entropy** on balanced accuracy (-20 points; accuracy -5 points)" in notes[1]
    assert "more of the rarest" not in text and "seed (3)" in notes[-1]


def test_notes_follow_the_numbers_when_the_fix_helps_or_ties():
    better = playground_notes(["A", "B"], [0.10, 0.62], [0.97, 0.93], [0.64, 0.85], "rare", seed=0)
    assert "**B** finds more of the rarest class, rare: 62% against 10%" in better[0] and "52 percentage points more" in better[0]
    assert "gives up 4 points of accuracy for 21 points of balanced accuracy" in better[1]
    assert "hide a gap of 33 points" in better[2] and "hide a gap of 8 points" in better[3]
    tie = playground_notes(["A", "B"], [0.5, 0.5], [0.9, 0.9], [0.7, 0.7], "rare", seed=0)
    assert tie[0].startswith("Both settings find the same share") and "accuracy is the same" in tie[1].lower()
    single = playground_notes(["A"], [0.9], [0.91], [0.90], "rare", seed=0)
    assert len(single) == 1 and "agree within 1 point:" in single[0]
    favour = playground_notes(["A"], [0.9], [0.70], [0.85], "rare", seed=0)
    assert "favours the rare classes" in favour[0]
