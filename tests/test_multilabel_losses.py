"""Multi-label losses against hand-worked cases (ASL and DB from the papers' official code,
CB by class) and proof that unknown entries are outside every loss."""

from __future__ import annotations

import math

import pytest
import torch

from core.methods import MULTILABEL_LOSSES, create_multilabel_loss


def _sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_asl_hand_worked():
    # z = [2, -1, 0.5], y = [1, 0, 0], gamma- 4, gamma+ 0, m 0.05 (Alibaba-MIIL/ASL losses.py)
    z, y = [2.0, -1.0, 0.5], [1, 0, 0]
    expected = []
    for zi, yi in zip(z, y):
        p = _sig(zi)
        if yi:
            expected.append(-math.log(p))
        else:
            pm = max(p - 0.05, 0.0)
            expected.append(-(pm ** 4) * math.log(1 - pm))
    assert sum(expected) == pytest.approx(0.2187, abs=1e-4)  # the reference's sum
    loss = create_multilabel_loss("asl", label_counts=[1, 1, 1], num_cases=4)
    per = loss.elementwise(torch.tensor([z]), torch.tensor([y], dtype=torch.float32), None)[0]
    torch.testing.assert_close(per, torch.tensor(expected, dtype=torch.float32), atol=1e-6, rtol=1e-5)
    assert float(loss(torch.tensor([z]), torch.tensor([y], dtype=torch.float32))) == pytest.approx(
        sum(expected) / 3, rel=1e-5)


def test_db_hand_worked():
    # n = [100, 10, 1], N = 200, y = [1, 0, 1], z = [0.5, -1, 0.2]; alpha .1, beta 10, mu .2, kappa .05, lambda 2
    n, total, y, z = [100, 10, 1], 200, [1, 0, 1], [0.5, -1.0, 0.2]
    repeat = sum(1 / n[k] for k in range(3) if y[k])
    expected = []
    for k in range(3):
        r = (1 / n[k]) / repeat
        w = 0.1 + _sig(10 * (r - 0.2))
        shifted = z[k] + 0.05 * -math.log(total / n[k] - 1)
        if y[k]:
            term, weight = math.log(1 + math.exp(-shifted)), w
        else:
            term, weight = math.log(1 + math.exp(2 * shifted)), w / 2
        p_t = math.exp(-term)
        expected.append(2 * (1 - p_t) ** 2 * weight * term)
    assert expected == pytest.approx([0.0311, 0.0003, 0.4254], abs=1e-4)
    assert sum(expected) / 3 == pytest.approx(0.1523, abs=1e-4)  # the reference's mean (without the old /lambda bug)
    loss = create_multilabel_loss("db", label_counts=n, num_cases=total)
    value = loss(torch.tensor([z]), torch.tensor([y], dtype=torch.float32))
    assert float(value) == pytest.approx(sum(expected) / 3, rel=1e-4)


def test_class_balanced_bce_by_class_hand_worked():
    n, beta = [100, 10, 1], 0.99
    raw = [(1 - beta) / (1 - beta ** c) for c in n]
    w = [3 * v / sum(raw) for v in raw]
    assert w == pytest.approx([0.0422, 0.2800, 2.6777], abs=1e-4)
    z, y = [0.5, -1.0, 0.2], [1, 0, 1]
    bce = [math.log(1 + math.exp(-zi)) if yi else math.log(1 + math.exp(zi)) for zi, yi in zip(z, y)]
    mean = sum(wi * b for wi, b in zip(w, bce)) / 3
    assert mean == pytest.approx(0.5698, abs=1e-4)
    loss = create_multilabel_loss("cb_bce", {"beta": beta}, label_counts=n, num_cases=200)
    assert float(loss(torch.tensor([z]), torch.tensor([y], dtype=torch.float32))) == pytest.approx(mean, rel=1e-5)


def test_focal_bce_is_bce_at_gamma_zero_and_discounts_easy_entries():
    z = torch.tensor([[3.0, -2.0, 0.1]])
    y = torch.tensor([[1.0, 0.0, 1.0]])
    bce = create_multilabel_loss("bce", label_counts=[5, 5, 5], num_cases=10)
    flat = create_multilabel_loss("focal_bce", {"gamma": 0.0}, label_counts=[5, 5, 5], num_cases=10)
    torch.testing.assert_close(flat(z, y), bce(z, y))
    focal = create_multilabel_loss("focal_bce", label_counts=[5, 5, 5], num_cases=10)
    p = _sig(3.0)
    assert float(focal.elementwise(z, y, None)[0, 0]) == pytest.approx((1 - p) ** 2 * -math.log(p), rel=1e-5)


def _context():
    co = torch.tensor([[30.0, 6, 2], [6, 12, 1], [2, 1, 4]])
    return {"label_counts": [30, 12, 4], "num_cases": 60, "cooccurrence": co}


@pytest.mark.parametrize("name", MULTILABEL_LOSSES.names())
def test_unknown_entries_change_neither_loss_nor_gradient(name):
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(8, 3, generator=g) * 2
    targets = (torch.rand(8, 3, generator=g) < 0.4).float()
    unknown = torch.rand(8, 3, generator=g) < 0.3
    unknown[0] = False
    partial = torch.where(unknown, torch.full_like(targets, float("nan")), targets)
    loss = create_multilabel_loss(name, **_context())

    def run(z, t):
        z = z.clone().requires_grad_()
        value = loss(z, t)
        value.backward()
        return value.detach(), z.grad

    value, grad = run(logits, partial)
    assert torch.isfinite(value) and torch.isfinite(grad).all()
    other_logits = torch.where(unknown, torch.randn(8, 3, generator=g) * 50, logits)
    other_targets = torch.where(unknown, torch.full_like(targets, -1.0), targets)  # -1 also means unknown
    for z, t in ((other_logits, partial), (logits, other_targets), (other_logits, other_targets)):
        v, gr = run(z, t)
        torch.testing.assert_close(v, value, rtol=0, atol=1e-6)
        torch.testing.assert_close(gr, grad, rtol=0, atol=1e-6)
    assert (grad[unknown] == 0).all()
    # reading unknown as absent is a different loss: the masking does something
    as_absent = torch.where(unknown, torch.zeros_like(targets), targets)
    assert not torch.isclose(run(logits, as_absent)[0], value)


def test_hybrid_terms_switch_on_and_off():
    ctx = _context()
    z = torch.randn(6, 3, generator=torch.Generator().manual_seed(2))
    y = torch.tensor([[1.0, 1, 0], [1, 0, 0], [0, 1, 1], [1, 1, 0], [0, 0, 1], [1, 0, 1]])
    plain = create_multilabel_loss("hybrid", {"weight_correlation": 0.0, "weight_contrastive": 0.0}, **ctx)
    cb = create_multilabel_loss("cb_bce", **{k: v for k, v in ctx.items()})
    torch.testing.assert_close(plain(z, y), cb(z, y))
    full = create_multilabel_loss("hybrid", **ctx)
    assert float(full(z, y)) > float(plain(z, y))


# --- PLT-MLC (COMIC release: loss/PriorFocalModifierLoss.py, loss/ReflectiveLabelCorrectorLoss.py) ---

def test_plt_class_weights_hand_worked():
    from core.methods import plt_class_weight

    counts = torch.tensor([100.0, 10, 1])
    torch.testing.assert_close(plt_class_weight(counts, 1 / 3), torch.tensor([1.0, 1.4892, 1.7764]), atol=1e-4,
                               rtol=0)
    torch.testing.assert_close(plt_class_weight(counts, 1 / 6), torch.tensor([1.0, 1.2203, 1.3328]), atol=1e-4,
                               rtol=0)


def test_prior_focal_modifier_hand_worked():
    # two labels, co-occurrence [[4, 2], [2, 2]]: columns normalised -> [[2/3, 1/2], [1/3, 1/2]].
    # case y = [1, 0]: attention = row 0 = [2/3, 1/2], renormalised -> [4/7, 3/7].
    counts, z, y = [4.0, 2.0], [0.4, -0.3], [1.0, 0.0]
    a = [4 / 7, 3 / 7]
    w = [(1 - math.log(c / 4)) ** (1 / 3) for c in counts]
    p = [_sig(v) for v in z]
    pos = -w[0] * math.log(p[0] * (1 - a[0]))  # gamma+ = 0: no focusing on the present entry
    p_neg = min(min(1 - p[1] + 0.05, 1) * 1.2, 1)
    neg = -w[1] * math.log(p_neg) * (1 - p_neg) ** (3 + w[1])
    loss = create_multilabel_loss("plt_modifier", label_counts=counts, num_cases=6,
                                  cooccurrence=torch.tensor([[4.0, 2], [2, 2]]))
    per = loss.elementwise(torch.tensor([z]), torch.tensor([y]), None)[0]
    torch.testing.assert_close(per, torch.tensor([pos, neg], dtype=torch.float32), atol=1e-6, rtol=1e-5)


def test_label_corrector_reads_confident_absent_findings_as_present_from_its_epoch():
    counts = [20.0, 5.0]
    z = torch.tensor([[3.0, 4.0], [2.0, -3.0], [2.5, -2.0]])
    y = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    loss = create_multilabel_loss("plt_corrector", label_counts=counts, num_cases=30)
    # p(label 1) = [0.982, 0.047, 0.119]: only case 0 is above tau 0.7 and the batch mean
    assert loss.correct(z, y, torch.ones_like(y, dtype=torch.bool))[:, 1].tolist() == [1.0, 0.0, 0.0]
    before = loss(z, y)
    loss.set_epoch(1)
    after = loss(z, y)
    assert float(after) < float(before)  # a confident "absent" no longer costs much
    assert loss.corrected.tolist() == [0.0, 1.0]
    loss.set_epoch(2)
    assert loss.corrected.tolist() == [0.0, 0.0]
    unknown = y.clone()
    unknown[0, 1] = float("nan")  # an unknown entry is never corrected
    fresh = create_multilabel_loss("plt_corrector", label_counts=counts, num_cases=30)
    fresh.set_epoch(1)
    fresh(z, unknown)
    assert fresh.corrected.tolist() == [0.0, 0.0]


def test_label_corrector_after_its_epoch_still_ignores_unknown_entries():
    g = torch.Generator().manual_seed(4)
    z = torch.randn(10, 3, generator=g) * 3
    y = (torch.rand(10, 3, generator=g) < 0.4).float()
    unknown = torch.rand(10, 3, generator=g) < 0.3
    partial = torch.where(unknown, torch.full_like(y, float("nan")), y)
    moved = torch.where(unknown, torch.randn(10, 3, generator=g) * 40, z)

    def run(logits):
        loss = create_multilabel_loss("plt_corrector", label_counts=[6, 3, 1], num_cases=10)
        loss.set_epoch(1)
        logits = logits.clone().requires_grad_()
        value = loss(logits, partial)
        value.backward()
        return value.detach(), logits.grad, loss.corrected

    value, grad, corrected = run(z)
    other = run(moved)
    torch.testing.assert_close(other[0], value, rtol=0, atol=1e-6)
    torch.testing.assert_close(other[1], grad, rtol=0, atol=1e-6)
    assert torch.equal(other[2], corrected)
