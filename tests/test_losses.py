"""Loss contract over the whole registry, plus each loss against an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.methods import LOSSES, class_weights, create_loss, ldam_margins

COUNTS = [60, 25, 10, 4]
K = len(COUNTS)
BATCH_LEVEL = {info.name for info in LOSSES.infos() if info.capabilities.get("batch_level")}


def _batch(seed: int = 0, n: int = 16, scale: float = 2.0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, K, generator=g) * scale
    target = torch.arange(n) % K
    return logits, target


# ---------------------------------------------------------------------------- contract

@pytest.mark.parametrize("name", LOSSES.names())
def test_schema_is_form_ready(name):
    info = LOSSES.info(name)
    assert info.description
    assert name == "ce" or info.paper
    for field_name, field in info.params.model_fields.items():
        assert field.description, f"{name}.{field_name} has no description"
    info.to_dict()


@pytest.mark.parametrize("name", LOSSES.names())
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_extreme_logits_give_finite_loss_and_gradients(name, dtype):
    loss = create_loss(name, class_counts=COUNTS)
    logits = torch.tensor([[1e4, -1e4, 0.0, 5.0], [-1e4, 1e4, -1e4, 1e4], [0.0, 0.0, 0.0, 0.0],
                           [1e4, 1e4, 1e4, 1e4], [-1e4, -1e4, -1e4, 1e4], [3.0, -1e4, 1e4, 0.0]])
    target = torch.tensor([1, 0, 2, 3, 3, 2])
    leaf = logits.clone().requires_grad_()
    value = loss(leaf.to(dtype), target)
    assert value.dtype == torch.float32
    assert value.shape == ()
    assert torch.isfinite(value)
    value.backward()
    assert torch.isfinite(leaf.grad).all()


@pytest.mark.parametrize("name", LOSSES.names())
def test_shape_and_determinism(name):
    loss = create_loss(name, class_counts=COUNTS)
    logits, target = _batch()
    a, b = loss(logits, target), loss(logits.clone(), target.clone())
    assert a.shape == ()
    assert torch.equal(a, b)
    again = create_loss(name, class_counts=COUNTS)(logits, target)
    assert torch.equal(a, again)


@pytest.mark.parametrize("name", LOSSES.names())
def test_honours_class_weight(name):
    loss = create_loss(name, class_counts=COUNTS)
    logits, target = _batch(1)
    plain = loss(logits, target)
    loss.set_class_weight(torch.ones(K))
    assert torch.allclose(loss(logits, target), plain, rtol=1e-5, atol=1e-6)
    loss.set_class_weight(torch.tensor([4.0, 1.0, 0.5, 0.1]))
    assert not torch.allclose(loss(logits, target), plain)
    loss.set_class_weight(None)
    assert torch.equal(loss(logits, target), plain)


@pytest.mark.parametrize("name", sorted(set(LOSSES.names()) - BATCH_LEVEL - {"label_smoothing"}))
def test_one_hot_class_weight_keeps_only_that_class(name):
    """A per-sample loss weighted by e_0 equals the same loss on the class-0 samples alone."""
    loss = create_loss(name, class_counts=COUNTS)
    logits, target = _batch(2)
    keep = target == 0
    expected = loss(logits[keep], target[keep])
    loss.set_class_weight(torch.tensor([1.0, 0.0, 0.0, 0.0]))
    assert torch.allclose(loss(logits, target), expected, rtol=1e-5)


def test_params_are_validated_with_the_loss_name():
    with pytest.raises(ValueError, match="focal"):
        create_loss("focal", {"gamma": -1}, class_counts=COUNTS)
    with pytest.raises(ValueError, match="known: .*zloss"):
        create_loss("nope", class_counts=COUNTS)


# ---------------------------------------------------------------------------- weights

def test_effective_number_weights_by_hand():
    counts, beta = [100, 10, 1], 0.99
    raw = [(1 - beta) / (1 - beta ** n) for n in counts]
    expected = [w * len(counts) / sum(raw) for w in raw]
    got = class_weights(counts, "effective_number", beta)
    assert got.dtype == torch.float32
    assert np.allclose(got.numpy(), expected, rtol=1e-6)
    assert math.isclose(float(got.sum()), 3.0, rel_tol=1e-6)


def test_inverse_and_sqrt_weights_by_hand():
    counts = [100, 25, 4]
    inv = np.array([1 / 100, 1 / 25, 1 / 4])
    sqrt = np.array([1 / 10, 1 / 5, 1 / 2])
    assert np.allclose(class_weights(counts, "inverse").numpy(), inv * 3 / inv.sum())
    assert np.allclose(class_weights(counts, "inverse_sqrt").numpy(), sqrt * 3 / sqrt.sum())
    assert np.allclose(class_weights(counts, "effective_number", 0.0).numpy(), 1.0)
    with pytest.raises(ValueError, match="known"):
        class_weights(counts, "bogus")


# ---------------------------------------------------------------------------- reductions

def test_focal_gamma_zero_is_cross_entropy():
    logits, target = _batch(3)
    loss = create_loss("focal", {"gamma": 0.0}, class_counts=COUNTS)
    assert torch.allclose(loss(logits, target), F.cross_entropy(logits, target), rtol=1e-6)


def test_focal_by_hand_with_alpha():
    logits, target = _batch(4)
    loss = create_loss("focal", {"gamma": 2.0, "alpha": "inverse"}, class_counts=COUNTS)
    p = F.softmax(logits.double(), 1)[torch.arange(len(target)), target]
    alpha = class_weights(COUNTS, "inverse").double()[target]
    expected = (alpha * (1 - p) ** 2 * -p.log()).sum() / alpha.sum()
    assert torch.allclose(loss(logits, target).double(), expected, rtol=1e-5)


def test_cb_focal_gamma_zero_is_class_balanced_cross_entropy():
    logits, target = _batch(5)
    loss = create_loss("cb_focal", {"gamma": 0.0, "beta": 0.999}, class_counts=COUNTS)
    w = class_weights(COUNTS, "effective_number", 0.999)
    assert torch.allclose(loss(logits, target), F.cross_entropy(logits, target, weight=w), rtol=1e-5)


def test_weighted_ce_matches_torch_weight():
    logits, target = _batch(6)
    for scheme in ("inverse", "inverse_sqrt", "effective_number"):
        loss = create_loss("weighted_ce", {"weights": scheme}, class_counts=COUNTS)
        w = class_weights(COUNTS, scheme)
        assert torch.allclose(loss(logits, target), F.cross_entropy(logits, target, weight=w), rtol=1e-6)


def test_balanced_softmax_is_ce_on_logits_plus_log_prior():
    logits, target = _batch(7)
    prior = torch.tensor(COUNTS, dtype=torch.float32) / sum(COUNTS)
    loss = create_loss("balanced_softmax", class_counts=COUNTS)
    assert torch.allclose(loss(logits, target), F.cross_entropy(logits + prior.log(), target), rtol=1e-6)


def test_logit_adjusted_reduces_to_ce_and_balanced_softmax():
    logits, target = _batch(8)
    la0 = create_loss("logit_adjusted", {"tau": 0.0}, class_counts=COUNTS)
    assert torch.allclose(la0(logits, target), F.cross_entropy(logits, target), rtol=1e-6)
    la1 = create_loss("logit_adjusted", {"tau": 1.0}, class_counts=COUNTS)
    bs = create_loss("balanced_softmax", class_counts=COUNTS)
    assert torch.allclose(la1(logits, target), bs(logits, target), rtol=1e-6)


def test_ldam_zero_margin_is_scaled_ce_and_margins_by_hand():
    logits, target = _batch(9, scale=0.1)
    loss = create_loss("ldam", {"max_margin": 0.0, "s": 30.0}, class_counts=COUNTS)
    assert torch.allclose(loss(logits, target), F.cross_entropy(30.0 * logits, target), rtol=1e-5)

    raw = np.array(COUNTS, dtype=float) ** -0.25
    margins = 0.5 * raw / raw.max()
    assert np.allclose(ldam_margins(COUNTS, 0.5).numpy(), margins, rtol=1e-6)
    shifted = logits.double().clone()
    for i, y in enumerate(target.tolist()):
        shifted[i, y] -= margins[y]
    expected = F.cross_entropy(10.0 * shifted, target)
    got = create_loss("ldam", {"max_margin": 0.5, "s": 10.0}, class_counts=COUNTS)(logits, target)
    assert torch.allclose(got.double(), expected, rtol=1e-5)


def test_label_smoothing_matches_torch_and_soft_target():
    logits, target = _batch(10)
    loss = create_loss("label_smoothing", {"eps": 0.2}, class_counts=COUNTS)
    reference = F.cross_entropy(logits, target, label_smoothing=0.2)
    assert torch.allclose(loss(logits, target), reference, rtol=1e-6)
    soft = torch.full((len(target), K), 0.2 / K)
    soft[torch.arange(len(target)), target] += 0.8
    by_hand = -(soft * F.log_softmax(logits, 1)).sum(1).mean()
    assert torch.allclose(loss(logits, target), by_hand, rtol=1e-5)


def _softmax_np(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


HAND_LOGITS = np.array([[2.0, 0.5, -1.0], [0.1, 1.5, 0.3], [-0.5, 0.2, 2.5],
                        [1.0, 1.2, -0.3], [0.0, -2.0, 0.7]])
HAND_TARGET = np.array([0, 1, 2, 1, 0])


def test_dice_against_numpy_loops():
    alpha, smooth = 0.3, 1e-4
    p = _softmax_np(HAND_LOGITS)
    n, k = p.shape
    per_class = []
    for j in range(k):
        inter = sum_p = sum_y = 0.0
        for i in range(n):
            pt = (1 - p[i, j]) ** alpha * p[i, j]
            y = 1.0 if HAND_TARGET[i] == j else 0.0
            inter += pt * y
            sum_p += pt
            sum_y += y
        per_class.append(1 - (2 * inter + smooth) / (sum_p + sum_y + smooth))
    loss = create_loss("dice", {"alpha": alpha, "smooth": smooth}, class_counts=[3, 2, 1])
    got = loss(torch.tensor(HAND_LOGITS, dtype=torch.float32), torch.tensor(HAND_TARGET))
    assert math.isclose(float(got), float(np.mean(per_class)), rel_tol=1e-5)
    w = [2.0, 1.0, 0.5]
    loss.set_class_weight(torch.tensor(w))
    weighted = sum(wj * lj for wj, lj in zip(w, per_class)) / sum(w)
    got_w = loss(torch.tensor(HAND_LOGITS, dtype=torch.float32), torch.tensor(HAND_TARGET))
    assert math.isclose(float(got_w), weighted, rel_tol=1e-5)


@pytest.mark.parametrize("threshold", [0.5, None])
@pytest.mark.parametrize("metric", ["f1", "balanced_accuracy", "gmean"])
def test_anyloss_against_numpy_loops(metric, threshold):
    L, beta, eps = 10.0, 2.0, 1e-5
    centre = 1 / 3 if threshold is None else threshold  # default: 1/K for K > 2
    p = _softmax_np(HAND_LOGITS)
    n, k = p.shape
    scores = []
    for j in range(k):
        tp = fp = fn = tn = 0.0
        for i in range(n):
            a = 1.0 / (1.0 + math.exp(-L * (p[i, j] - centre)))
            y = 1.0 if HAND_TARGET[i] == j else 0.0
            tp += y * a
            fp += (1 - y) * a
            fn += y * (1 - a)
            tn += (1 - y) * (1 - a)
        if metric == "f1":
            s = (1 + beta**2) * tp / ((1 + beta**2) * tp + beta**2 * fn + fp + eps)
        elif metric == "balanced_accuracy":
            s = 0.5 * (tp / (tp + fn + eps) + tn / (tn + fp + eps))
        else:
            s = math.sqrt(tp / (tp + fn + eps) * tn / (tn + fp + eps))
        scores.append(s)
    loss = create_loss("anyloss", {"metric": metric, "L": L, "beta": beta, "threshold": threshold},
                       class_counts=[3, 2, 1])
    got = loss(torch.tensor(HAND_LOGITS, dtype=torch.float32), torch.tensor(HAND_TARGET))
    assert math.isclose(float(got), 1 - float(np.mean(scores)), rel_tol=1e-4)


def test_anyloss_learns_from_an_untrained_ten_class_model():
    # near-uniform softmax (p ~ 0.1): with the binary centre 0.5 the sigmoid is saturated
    logits = (0.01 * torch.randn(64, 10, generator=torch.Generator().manual_seed(0))).requires_grad_()
    target = torch.arange(64) % 10
    grads = {}
    for name, threshold in (("paper", 0.5), ("default", None)):
        loss = create_loss("anyloss", {"metric": "balanced_accuracy", "threshold": threshold}, class_counts=[10] * 10)
        (g,) = torch.autograd.grad(loss(logits, target), logits)
        grads[name] = float(g.abs().max())
    assert grads["paper"] < 1e-6 < 1e-3 < grads["default"]


def test_zloss_by_hand():
    a, b = 2.0, 0.5
    losses = []
    for z, y in zip(HAND_LOGITS, HAND_TARGET):
        mean = sum(z) / len(z)
        std = math.sqrt(sum((v - mean) ** 2 for v in z) / len(z))
        zy = (z[y] - mean) / std
        losses.append(math.log1p(math.exp(a * (b - zy))) / a)
    loss = create_loss("zloss", {"a": a, "b": b}, class_counts=[3, 2, 1])
    got = loss(torch.tensor(HAND_LOGITS, dtype=torch.float32), torch.tensor(HAND_TARGET))
    assert math.isclose(float(got), float(np.mean(losses)), rel_tol=1e-5)


def test_zloss_is_shift_and_scale_invariant():
    logits, target = _batch(11)
    loss = create_loss("zloss", class_counts=COUNTS)
    assert torch.allclose(loss(logits, target), loss(3.0 * logits + 7.0, target), rtol=1e-4)
