"""Samplers: empirical class frequencies follow the declared distribution, schedules move,
indices stay on the labels' device and are reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.methods import SAMPLERS, cooldown_temperature, create_sampler

COUNTS = [200, 80, 30, 10]
K = len(COUNTS)
LABELS = torch.repeat_interleave(torch.arange(K), torch.tensor(COUNTS))
PRIOR = np.array(COUNTS) / sum(COUNTS)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _draw(sampler, epoch, num_epochs, generator=None, labels=LABELS):
    return sampler.sample_indices(labels, num_classes=K, epoch=epoch, num_epochs=num_epochs,
                                  generator=generator)


def _empirical(sampler, epoch, num_epochs, repeats=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    counts = torch.zeros(K)
    for _ in range(repeats):
        counts += torch.bincount(LABELS[_draw(sampler, epoch, num_epochs, g)], minlength=K)
    return (counts / counts.sum()).numpy()


@pytest.mark.parametrize("name", SAMPLERS.names())
@pytest.mark.parametrize("epoch", [0, 7])
def test_empirical_distribution_matches_target(name, epoch):
    sampler = create_sampler(name)
    target = sampler.class_distribution(COUNTS, epoch, 10).numpy()
    assert np.isclose(target.sum(), 1.0)
    assert np.allclose(_empirical(sampler, epoch, 10), target, atol=0.015)


def test_known_targets():
    def q(name, epoch=0, num_epochs=1, **params):
        return create_sampler(name, params).class_distribution(COUNTS, epoch, num_epochs).numpy()

    assert np.allclose(q("instance"), PRIOR)
    assert np.allclose(q("class_balanced"), 1 / K)
    assert np.allclose(q("sqrt"), np.sqrt(COUNTS) / np.sqrt(COUNTS).sum())
    assert np.allclose(q("oversample"), 1 / K)
    assert np.allclose(q("undersample"), 1 / K)
    assert np.allclose(q("progressive", 5, 10), 0.5 * PRIOR + 0.5 / K)
    assert np.allclose(q("temperature", cooldown=False, t0=2.0), np.sqrt(PRIOR) / np.sqrt(PRIOR).sum())
    # a class without samples is never targeted
    zero = create_sampler("class_balanced").class_distribution([5, 0, 5], 0, 1).numpy()
    assert np.allclose(zero, [0.5, 0.0, 0.5])


def test_progressive_moves_from_instance_to_balanced():
    sampler = create_sampler("progressive")
    qs = [sampler.class_distribution(COUNTS, e, 10).numpy() for e in range(10)]
    assert np.allclose(qs[0], PRIOR)
    tail_share = [q[-1] for q in qs]
    assert all(b > a for a, b in zip(tail_share, tail_share[1:]))
    assert abs(qs[-1][-1] - 1 / K) < abs(qs[0][-1] - 1 / K)


def test_temperature_cools_from_t0_to_t_end():
    sampler = create_sampler("temperature", {"t0": 5.0, "t_end": 1.0, "cooldown_start": 0.5})
    temps = [sampler.temperature_at(e, 11) for e in range(11)]
    assert temps[:5] == [5.0] * 5
    assert temps[-1] == 1.0
    assert all(b <= a for a, b in zip(temps, temps[1:]))
    start = sampler.class_distribution(COUNTS, 0, 11).numpy()
    assert np.allclose(start, PRIOR ** 0.2 / (PRIOR ** 0.2).sum())
    assert np.allclose(sampler.class_distribution(COUNTS, 10, 11).numpy(), PRIOR)
    assert np.allclose(_empirical(sampler, 10, 11), PRIOR, atol=0.015)

    step = [cooldown_temperature(e, 10, t0=4.0, t_end=2.0, cooldown_shape="step") for e in range(10)]
    assert set(step) == {4.0, 2.0} and step[0] == 4.0 and step[-1] == 2.0
    # four equal steps over the second half of 9 epochs (progress e/8): 5, 4, 3, 2 from epoch 4 on
    stairs = [cooldown_temperature(e, 9, t0=6.0, t_end=2.0, cooldown_shape="step", cooldown_steps=4)
              for e in range(9)]
    assert stairs == [6.0, 6.0, 6.0, 6.0, 5.0, 4.0, 3.0, 2.0, 2.0]
    stepped = create_sampler("temperature", {"t0": 6.0, "t_end": 2.0, "cooldown_shape": "step",
                                             "cooldown_steps": 4})
    assert [stepped.temperature_at(e, 9) for e in range(9)] == stairs
    flat = create_sampler("temperature", {"cooldown": False, "t0": 3.0})
    assert {flat.temperature_at(e, 10) for e in range(10)} == {3.0}


def test_epoch_sizes():
    assert _draw(create_sampler("instance"), 0, 1).numel() == sum(COUNTS)
    assert _draw(create_sampler("sqrt"), 0, 1).numel() == sum(COUNTS)
    over = _draw(create_sampler("oversample"), 0, 1)
    assert over.numel() == K * max(COUNTS)
    assert set(over.tolist()) == set(range(sum(COUNTS)))  # every original at least once
    half = create_sampler("oversample", {"ratio": 0.5})
    idx = _draw(half, 0, 1)
    assert torch.bincount(LABELS[idx], minlength=K).tolist() == [200, 100, 100, 100]  # up to 0.5 x 200
    assert set(idx.tolist()) == set(range(sum(COUNTS)))
    assert np.allclose(half.class_distribution(COUNTS, 0, 1).numpy(), np.array([200, 100, 100, 100]) / 500)
    under = create_sampler("undersample", {"ratio": 2.0})
    idx = _draw(under, 0, 1)
    assert torch.bincount(LABELS[idx], minlength=K).tolist() == [20, 20, 20, 10]
    assert idx.unique().numel() == idx.numel()


def test_undersample_draws_a_fresh_subset_each_epoch():
    sampler = create_sampler("undersample")
    g = torch.Generator().manual_seed(0)
    subsets = [frozenset(_draw(sampler, e, 5, g).tolist()) for e in range(5)]
    assert all(len(s) == K * min(COUNTS) for s in subsets)
    assert len(set(subsets)) == 5
    majority_seen = set().union(*subsets) & set(range(COUNTS[0]))
    assert len(majority_seen) > 3 * min(COUNTS)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", SAMPLERS.names())
def test_indices_stay_on_device_and_are_reproducible(name, device):
    labels = LABELS.to(device)
    sampler = create_sampler(name)

    def run(seed):
        g = torch.Generator(device=device).manual_seed(seed)
        return _draw(sampler, 1, 3, g, labels)

    a, b, c = run(0), run(0), run(1)
    assert a.device == labels.device
    assert a.dtype == torch.long
    assert int(a.min()) >= 0 and int(a.max()) < labels.numel()
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_several_passes_are_the_same_as_as_many_draws_in_a_row(name):
    """The trainer repeats an epoch's draw on small data in one call; the generator must be
    used exactly as by separate calls, so the indices (and every run) stay the same."""
    sampler = create_sampler(name)
    together = sampler.sample_indices(LABELS, num_classes=K, epoch=2, num_epochs=5,
                                      generator=torch.Generator().manual_seed(3), passes=4)
    g = torch.Generator().manual_seed(3)
    apart = torch.cat([_draw(sampler, 2, 5, g) for _ in range(4)])
    assert torch.equal(together, apart)
    with pytest.raises(ValueError, match="passes"):
        sampler.sample_indices(LABELS, num_classes=K, epoch=0, num_epochs=1, passes=0)


def test_validation_errors():
    with pytest.raises(ValueError, match="epoch"):
        _draw(create_sampler("sqrt"), 3, 3)
    with pytest.raises(ValueError, match="temperature"):
        create_sampler("temperature", {"t0": 0.0})
    with pytest.raises(ValueError, match="known: .*undersample"):
        create_sampler("nope")
