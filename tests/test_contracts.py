"""Contract tests generated per plug-in kind, as imbalanced-learn's `_yield_sampler_checks`
yields checks per estimator: every registered entry of every kind in the table of kinds
(`core.registry.KINDS`) is built from its schema's defaults and run through the checks its
kind owes (shapes, finite output, seeded determinism, declared words, refusal of bad
parameters). A new entry is covered by registering it; a new kind fails here until it
says which checks it owes.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Iterator
from typing import get_args

import numpy as np
import pytest
import torch

from core.registry import KINDS, PluginInfo, Registry, describe_params, registry_for

Check = Callable[[Registry, str], None]
COUNTS = [40, 16, 6]  # a small long-tailed problem: head, medium, tail
K = len(COUNTS)
# "head" means the common classes in every text people read; the last layer is the classifier
_LAYER_HEAD = re.compile(r"\bheads?\b(?! class)(?!-class)(?! \(common)", re.I)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread, the more so on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _labels() -> np.ndarray:
    return np.repeat(np.arange(K), COUNTS)


def _table(seed: int = 0, features: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Three separated clouds with COUNTS rows each."""
    rng = np.random.default_rng(seed)
    y = _labels()
    centres = 3.0 * rng.standard_normal((K, features))
    return (centres[y] + rng.standard_normal((len(y), features))).astype(np.float32), y


# --- checks every entry owes ------------------------------------------------------------------

def check_words(registry: Registry, name: str) -> None:
    """A display name people read, and a one-line plain description."""
    info = registry.info(name)
    assert info.display and info.display != info.name, f"{name}: no display name"
    assert info.label == info.display and info.to_dict()["display"] == info.display
    assert len(info.description) >= 20 and info.description[0].isupper(), f"{name}: {info.description!r}"
    assert not _LAYER_HEAD.search(info.description), f"{name} says 'head' for the classifier"


def check_parameter_words(registry: Registry, name: str) -> None:
    """Every parameter has a title and a description; coded choices have words."""
    info = registry.info(name)
    for field_name, field in info.params.model_fields.items():
        assert field.title and field.title != field_name, f"{name}.{field_name}: no title"
        assert field.description, f"{name}.{field_name}: no description"
        assert not _LAYER_HEAD.search(field.description), f"{name}.{field_name} says 'head'"
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        choices = [c for a in get_args(field.annotation) for c in (get_args(a) or [a]) if isinstance(c, str)]
        choices += [c for c in extra.get("choices", []) if isinstance(c, str)]
        words = extra.get("choice_labels", {})
        coded = [c for c in choices if "_" in c and c not in words]
        assert not coded, f"{name}.{field_name}: choices {coded} need choice_labels"
    for item in describe_params(info.params):
        assert item["title"] == info.params.model_fields[item["name"]].title


def check_defaults_validate(registry: Registry, name: str) -> None:
    """The schema's defaults are a valid setting, and validating them changes nothing."""
    info = registry.info(name)
    defaults = registry.validate(name, {}).model_dump()
    assert registry.validate(name, defaults).model_dump() == defaults
    assert {p["name"] for p in info.to_dict()["params"]} == set(defaults)


def _wrong_values(item: dict) -> list:
    """Values a parameter must refuse: past each declared bound, and of the wrong type."""
    out = []
    for key, past in (("minimum", -1), ("exclusiveMinimum", 0), ("maximum", 1), ("exclusiveMaximum", 0)):
        if key in item and isinstance(item[key], (int, float)):
            out.append(item[key] + past)
    if "enum" in item:
        out.append("not_one_of_the_choices")
    return out + [["a", "list"]]


def check_refuses_bad_params(registry: Registry, name: str) -> None:
    """An unknown parameter, and every parameter past its bounds or of the wrong type, fail
    with a message naming that parameter (and the entry)."""
    with pytest.raises(ValueError, match=rf"{re.escape(name)}: no_such_parameter"):
        registry.validate(name, {"no_such_parameter": 1})
    for item in describe_params(registry.info(name).params):
        for bad in _wrong_values(item):
            with pytest.raises(ValueError, match=rf"{re.escape(name)}: {re.escape(item['name'])}"):
                registry.validate(name, {item["name"]: bad})


def _is_seed(param: str) -> bool:
    return "seed" in param or param == "random_state"


def check_seeds_are_whole_numbers_from_zero(registry: Registry, name: str) -> None:
    """A seed parameter takes 0 to 2^32-1, what numpy and torch generators accept."""
    for param in filter(_is_seed, registry.info(name).params.model_fields):
        registry.validate(name, {param: 0})
        registry.validate(name, {param: 2**32 - 1})
        for bad in (-1, 2**32):
            with pytest.raises(ValueError, match=rf"{re.escape(name)}: {param}"):
                registry.validate(name, {param: bad})


def _common_checks(info: PluginInfo) -> Iterator[Check]:
    yield check_words
    yield check_parameter_words
    yield check_defaults_validate
    yield check_refuses_bad_params
    if any(_is_seed(p) for p in info.params.model_fields):
        yield check_seeds_are_whole_numbers_from_zero


# --- datasets ---------------------------------------------------------------------------------

def check_dataset(registry: Registry, name: str) -> None:
    """Finite float32 rows of the declared modality, labels 0..K-1 with every class present,
    one distinct name per class; a seed parameter draws the same data again."""
    info = registry.info(name)
    data = registry.create(name)
    assert data.modality == info.capabilities["modality"]
    assert data.x.dtype == np.float32 and np.isfinite(data.x).all()
    assert data.x.ndim == (2 if data.modality == "tabular" else 4) and len(data.x) == len(data.y)
    assert np.issubdtype(data.y.dtype, np.integer)
    assert set(np.unique(data.y)) == set(range(data.num_classes)), "every class has rows"
    assert len(set(data.class_names)) == data.num_classes and all(data.class_names)
    if data.feature_names is not None:
        assert len(data.feature_names) == data.x.shape[1]
    if data.texts is not None:
        assert info.capabilities.get("text") and data.texts.shape == (len(data.y), len(data.text_names))
        assert all(len(t) > 0 for t in data.texts.reshape(-1)), "every row has text"
    if "seed" in info.params.model_fields:
        again, other = registry.create(name), registry.create(name, {"seed": 1})
        np.testing.assert_array_equal(again.x, data.x)
        if data.texts is not None:
            np.testing.assert_array_equal(again.texts, data.texts)
            assert not np.array_equal(other.texts, data.texts), "another seed writes other texts"
        else:
            assert not np.array_equal(other.x, data.x), "another seed draws other rows"


# --- models -----------------------------------------------------------------------------------

_SHAPES = {"tabular": (5,), "image": (1, 8, 8)}


def check_model(registry: Registry, name: str) -> None:
    """A network: (n, K) scores that are its classifier applied to its features, finite, the
    same for the same seed; a table baseline: (n, K) probabilities, the same for the same seed
    (a multi-label one: (n, L) probabilities from a label matrix with unknown entries)."""
    info = registry.info(name)
    if info.capabilities.get("multilabel"):
        from core.models import create_baseline

        x, y = _table()
        matrix = np.eye(K)[y]
        matrix[::7, 1] = np.nan  # unknown entries
        proba = [create_baseline(name, seed=3).fit(x, matrix).predict_proba(x) for _ in range(2)]
        assert proba[0].shape == (len(x), K) and ((proba[0] >= 0) & (proba[0] <= 1)).all()
        np.testing.assert_array_equal(proba[0], proba[1])
        return
    if info.capabilities.get("family") == "baseline":
        from core.models import create_baseline

        x, y = _table()
        proba = [create_baseline(name, seed=3).fit(x, y).predict_proba(x) for _ in range(2)]
        assert proba[0].shape == (len(x), K) and np.allclose(proba[0].sum(axis=1), 1.0)
        np.testing.assert_array_equal(proba[0], proba[1])
        return
    from core.models import create_model

    for modality in info.capabilities["modality"]:
        shape = (3, 32, 32) if name == "resnet32" else _SHAPES[modality]
        x = torch.randn(4, *shape, generator=torch.Generator().manual_seed(0))
        outputs = []
        for _ in range(2):
            torch.manual_seed(5)
            model = create_model(name, input_shape=shape, num_classes=K).eval()
            with torch.no_grad():
                logits, features = model(x), model.forward_features(x)
            assert logits.shape == (4, K) and features.ndim == 2 and features.shape[0] == 4
            assert torch.isfinite(logits).all()
            torch.testing.assert_close(model.head(features), logits)
            outputs.append(logits)
        assert torch.equal(*outputs), "the same seed builds the same network"


# --- losses and loss schedules ----------------------------------------------------------------

def check_loss(registry: Registry, name: str) -> None:
    """A finite scalar with finite gradients shaped like the logits, the same on a rebuild."""
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(12, K, generator=g) * 3).requires_grad_()
    target = torch.arange(12) % K
    loss = registry.create(name, class_counts=COUNTS)
    value = loss(logits, target)
    assert value.shape == () and torch.isfinite(value)
    value.backward()
    assert logits.grad is not None and logits.grad.shape == logits.shape and torch.isfinite(logits.grad).all()
    assert torch.equal(registry.create(name, class_counts=COUNTS)(logits.detach(), target), value.detach())


def check_loss_schedule(registry: Registry, name: str) -> None:
    """Off by default; switched on at an epoch: no weight before it, then finite positive
    per-class weights that favour the rare classes. Its settings are fields of the loss
    section of a config, with the same defaults."""
    from core.config import LossSpec

    info = registry.info(name)
    schedule = registry.create(name, class_counts=COUNTS)
    assert all(schedule.class_weight(e) is None for e in range(5)), "off unless switched on"
    switch = info.capabilities["switch"]
    on = registry.create(name, {switch: 2}, class_counts=COUNTS)
    assert on.class_weight(0) is None and on.class_weight(1) is None
    weight = on.class_weight(2)
    assert weight.shape == (K,) and torch.isfinite(weight).all() and (weight > 0).all()
    assert weight[-1] > weight[0], "the rarest class weighs more than the most common"
    assert torch.equal(on.class_weight(4), weight)
    for param, field in info.params.model_fields.items():
        assert LossSpec.model_fields[param].default == field.get_default(), f"loss.{param}: defaults differ"


# --- samplers and resamplers ------------------------------------------------------------------

def check_sampler(registry: Registry, name: str) -> None:
    """Long indices into the labels; the same generator seed draws the same indices, another
    seed others; over the whole training, class shares match the declared trained prior."""
    labels = torch.from_numpy(_labels())
    sampler = registry.create(name)
    epochs = 4

    def draw(seed: int, epoch: int = 1) -> torch.Tensor:
        return sampler.sample_indices(labels, num_classes=K, epoch=epoch, num_epochs=epochs,
                                      generator=torch.Generator().manual_seed(seed))

    idx = draw(0)
    assert idx.dtype == torch.long and idx.ndim == 1 and len(idx) > 0
    assert int(idx.min()) >= 0 and int(idx.max()) < len(labels)
    assert torch.equal(idx, draw(0)) and not torch.equal(idx, draw(1))
    seen = torch.zeros(K, dtype=torch.float64)
    for repeat in range(60):
        for epoch in range(epochs):
            seen += torch.bincount(labels[draw(100 * repeat + epoch, epoch)], minlength=K)
    prior = sampler.trained_prior(COUNTS, epochs)
    assert np.isclose(prior.sum(), 1.0)
    np.testing.assert_allclose((seen / seen.sum()).numpy(), prior, atol=0.02)


def check_resampler(registry: Registry, name: str) -> None:
    """Rows shaped like the input with labels from the input; an over-sampler adds made-up
    rows and raises the rarest class, an under-sampler or cleaner only removes rows; the same
    seed gives the same rows."""
    from core.methods import resample

    x, y = _table()
    out = resample(name, x, y, seed=0)
    assert out.x.shape[1:] == x.shape[1:] and len(out.x) == len(out.y) == len(out.synthetic)
    assert out.removed.shape == (len(x),) and set(np.unique(out.y)) <= set(np.unique(y))
    before, after = np.bincount(y, minlength=K), np.bincount(out.y, minlength=K)
    if registry.info(name).capabilities["kind"] == "over":
        assert out.n_synthetic > 0 and after[-1] > before[-1]
    else:
        assert out.n_synthetic == 0 and (after <= before).all() and after.sum() < before.sum()
    again = resample(name, x, y, seed=0)
    np.testing.assert_array_equal(again.x, out.x)
    np.testing.assert_array_equal(again.y, out.y)


# --- label noise and label-issue cleaners -----------------------------------------------------

def check_label_noise(registry: Registry, name: str) -> None:
    """A noisy copy: labels in range, every changed row given another class, at most the
    rate's share of rows changed, the same rows for the same seed and others for another."""
    from core.data import class_groups, exact_count

    x, y = _table()
    groups = class_groups(COUNTS, many=30, few=10)
    noise = registry.create(name)

    def corrupt(seed: int) -> np.ndarray:
        return noise.corrupt(y, rate=0.3, seed=seed, num_classes=K, x=x, groups=groups)

    noisy = corrupt(0)
    changed = noisy != y
    assert noisy.shape == y.shape and noisy.min() >= 0 and noisy.max() < K
    assert 0 < changed.sum() <= exact_count(0.3, len(y))
    np.testing.assert_array_equal(corrupt(0), noisy)
    assert not np.array_equal(corrupt(1), noisy)


def check_cleaner(registry: Registry, name: str) -> None:
    """On a tiny problem whose scores are sure of the true class, the rows whose given label
    was swapped are the ones flagged, and flagged rows count less in training."""
    y = _labels()
    swapped = np.array([1, 5, 20, 44, 50])
    given = y.copy()
    given[swapped] = (y[swapped] + 1) % K
    probs = np.full((len(y), K), 0.02)
    probs[np.arange(len(y)), y] = 1 - 0.02 * (K - 1)
    cleaner = registry.create(name)
    flags = cleaner.find(given, probs)
    flag = flags.flag
    assert flag.shape == y.shape and flags.score.shape == y.shape and flags.flag.dtype == bool
    np.testing.assert_array_equal(np.flatnonzero(flag), swapped)
    weights = cleaner.sample_weights(flag)
    assert weights.shape == y.shape and (weights[~flag] == 1).all() and (weights[flag] < 1).all()


# --- training stages: two-stage fixes, pre-training, semi-supervised --------------------------

TINY_RUN = {
    "data": {"source": "blobs2d", "params": {"samples_per_class": 30}, "imbalance": {"profile": "exp", "ratio": 4},
             "many_shot": 15, "few_shot": 6},
    "model": {"name": "mlp", "hidden": 16},
    "train": {"epochs": 2, "batch_size": 16, "min_steps": 0, "nc_every": 0, "train_subset": 10,
              "deterministic": True},
}


def _stage_check(section: str, extra: dict | None = None) -> Check:
    def check(registry: Registry, name: str) -> None:
        """Trains a tiny run with this stage at its defaults: finite history rows and test
        scores of the right shape, the same for the same seed."""
        from core.config import RunConfig
        from core.train import train_run

        raw = {**TINY_RUN, section: {"name": name}, **(extra or {})}
        raw["data"] = {**TINY_RUN["data"], **(extra or {}).get("data", {})}
        config = RunConfig.model_validate(raw)
        results = [train_run(config) for _ in range(2)]
        art = results[0].artifacts
        assert art.logits.shape == (len(art.labels), art.num_classes) and np.isfinite(art.logits).all()
        losses = [r[k] for r in results[0].history for k in ("train_loss", "val_loss") if r.get(k) is not None]
        assert losses and np.isfinite(losses).all()
        np.testing.assert_array_equal(results[1].artifacts.logits, art.logits)

    check.__name__ = f"check_{section}_stage"
    return check


# --- post-hoc adjustments and attributions ----------------------------------------------------

def _artifacts():
    from core.artifacts import EvalArtifacts

    rng = np.random.default_rng(0)
    d = 3
    weight, bias = rng.standard_normal((K, d)).astype(np.float32), rng.standard_normal(K).astype(np.float32)

    def split(n):
        feats = rng.standard_normal((n, d)).astype(np.float32)
        return feats, feats @ weight.T + bias, rng.integers(0, K, n)

    (f, z, y), (vf, vz, vy) = split(30), split(20)
    return EvalArtifacts(logits=z, labels=y, features=f, head_weight=weight, head_bias=bias, train_features=f[:10],
                         train_labels=y[:10], class_counts=np.array(COUNTS), val_logits=vz, val_labels=vy,
                         val_features=vf, test_index=np.arange(30))


def check_posthoc(registry: Registry, name: str) -> None:
    """Finite logits shaped like the stored ones for either split, the same on a rerun; an
    entry declared not to change predictions keeps every argmax."""
    from core.methods import apply_posthoc

    art = _artifacts()
    for split, stored in (("test", art.logits), ("val", art.val_logits)):
        out = apply_posthoc(name, art, split=split)
        assert out.shape == stored.shape and np.isfinite(out).all()
        np.testing.assert_array_equal(apply_posthoc(name, art, split=split), out)
        if not registry.info(name).capabilities["changes_prediction"]:
            np.testing.assert_array_equal(out.argmax(1), stored.argmax(1))


def check_attribution(registry: Registry, name: str) -> None:
    """For each modality it declares: finite maps of the declared output shape, the same on
    a rerun (seeded methods included)."""
    from core.analysis import attribute, attribution_output_shape
    from core.models import create_model

    info = registry.info(name)
    for modality in info.capabilities["modality"]:
        shape = _SHAPES[modality]
        torch.manual_seed(0)
        model = create_model("small_cnn" if modality == "image" else "mlp", input_shape=shape, num_classes=K)
        x = torch.rand(3, *shape, generator=torch.Generator().manual_seed(1)).numpy()
        maps = [attribute(model, x, method=name, targets=[0, 1, 2]) for _ in range(2)]
        assert maps[0].shape == (3, *attribution_output_shape(name, shape)) and np.isfinite(maps[0]).all()
        np.testing.assert_array_equal(maps[0], maps[1])


def check_attack(registry: Registry, name: str) -> None:
    """On a picture and a table: adversarial copies of the inputs' shape, finite, inside the
    declared ball and the pictures' range, the same on a rerun; epsilon 0 changes nothing."""
    from core.methods import input_bounds
    from core.models import create_model

    info = registry.info(name)
    for modality in ("image", "tabular"):
        shape = _SHAPES[modality]
        torch.manual_seed(0)
        model = create_model("small_cnn" if modality == "image" else "mlp", input_shape=shape, num_classes=K).eval()
        x = torch.rand(6, *shape, generator=torch.Generator().manual_seed(1))
        y = torch.arange(6) % K
        bounds = input_bounds(modality)
        adv = [registry.create(name, {"epsilon": 0.1}).perturb(model, x, y, bounds=bounds) for _ in range(2)]
        assert adv[0].shape == x.shape and torch.isfinite(adv[0]).all() and not adv[0].requires_grad
        change = (adv[0] - x).flatten(1)
        size = change.norm(dim=1) if info.capabilities["norm"] == "l2" else change.abs().amax(1)
        assert (size <= 0.1 + 1e-6).all() and (size > 0).any()
        assert adv[0].min() >= bounds[0] and adv[0].max() <= bounds[1]
        torch.testing.assert_close(adv[0], adv[1], rtol=0, atol=0)
        torch.testing.assert_close(registry.create(name, {"epsilon": 0.0}).perturb(model, x, y, bounds=bounds), x)


# --- text encoders ----------------------------------------------------------------------------

_TRAIN_TEXTS = ["fever and cough for two days", "cough, wheeze and a tight chest", "headache with aura",
                "fever, rash and neck stiffness", "tight chest at night", "headache and fever"]
_TRAIN_LABELS = [0, 1, 2, 0, 1, 2]
_UNSEEN_TEXT = "zyxwvut qqqq fever"


def check_text_encoder(registry: Registry, name: str) -> None:
    """(n, features) finite float32 rows named one per feature, the same from a second fit;
    an encoder that learns fits on the training texts only (a word seen only later is no
    feature); every feature found in a text is placed on its words in full."""
    import os
    import tempfile

    info = registry.info(name)
    rows = []
    previous = os.environ.get("TAILSCOPE_HOME")
    with tempfile.TemporaryDirectory() as home:  # a cache an encoder keeps goes here, not into the repo
        os.environ["TAILSCOPE_HOME"] = home
        try:
            for _ in range(2):
                encoder = registry.create(name)
                if encoder.supervised:  # learns from the labels too: refused without them
                    with pytest.raises(ValueError, match="label"):
                        encoder.fit(_TRAIN_TEXTS)
                    encoder.fit(_TRAIN_TEXTS, _TRAIN_LABELS)
                elif not encoder.frozen:
                    encoder.fit(_TRAIN_TEXTS)
                rows.append(encoder.transform(_TRAIN_TEXTS + [_UNSEEN_TEXT, ""]))
        finally:
            os.environ.pop("TAILSCOPE_HOME") if previous is None else os.environ.update(TAILSCOPE_HOME=previous)
    assert rows[0].dtype == np.float32 and rows[0].shape == (len(_TRAIN_TEXTS) + 2, len(encoder.feature_names()))
    assert np.isfinite(rows[0]).all()
    np.testing.assert_array_equal(rows[0], rows[1])
    assert info.capabilities["frozen"] == encoder.frozen and info.capabilities["supervised"] == encoder.supervised
    if not encoder.frozen:
        assert not any("zyxwvut" in n for n in encoder.feature_names()), "fitted on the training texts only"
    placement = encoder.placement(_TRAIN_TEXTS[1])
    assert placement.words(_TRAIN_TEXTS[1]) == _TRAIN_TEXTS[1].split()
    found = rows[0][1] != 0
    sums = placement.weights.sum(axis=1)
    if info.capabilities["words"]:
        np.testing.assert_allclose(sums[found], 1.0)
        np.testing.assert_allclose(sums[~found], 0.0)
    attribution = np.random.default_rng(0).standard_normal(len(sums))
    words, rest = placement.per_word(attribution)
    assert words.shape == (len(placement.spans),)
    assert abs(words.sum() + rest - attribution.sum()) < 1e-9


# --- multi-label: losses, samplers, datasets --------------------------------------------------

ML_COUNTS = [30, 12, 4]  # training positives per label: head, medium, tail


def _label_matrix(seed: int = 0, n: int = 40) -> torch.Tensor:
    """A small long-tailed label matrix: label 0 common, label 2 rare, every label present."""
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, 3, generator=g) < torch.tensor([0.6, 0.3, 0.1])).float()
    y[:3] = torch.eye(3)
    return y


def check_multilabel_loss(registry: Registry, name: str) -> None:
    """A finite scalar with finite gradients shaped like the logits, the same on a rebuild;
    unknown entries (NaN) get no gradient, and changing their logits changes nothing."""
    context = {"label_counts": ML_COUNTS, "num_cases": 50,
               "cooccurrence": torch.tensor([[30.0, 6, 2], [6, 12, 1], [2, 1, 4]])}
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(12, 3, generator=g) * 3).requires_grad_()
    target = _label_matrix(0, 12)
    target[5, 1] = target[7, 2] = float("nan")
    loss = registry.create(name, **context)
    value = loss(logits, target)
    assert value.shape == () and torch.isfinite(value)
    value.backward()
    assert logits.grad is not None and logits.grad.shape == logits.shape and torch.isfinite(logits.grad).all()
    assert logits.grad[5, 1] == 0 and logits.grad[7, 2] == 0
    moved = logits.detach().clone()
    moved[5, 1], moved[7, 2] = 40.0, -40.0
    assert torch.equal(registry.create(name, **context)(logits.detach(), target), value.detach())
    assert torch.equal(loss(moved, target), value.detach())


def check_multilabel_sampler(registry: Registry, name: str) -> None:
    """Long indices into the cases; the same seed draws the same, another seed others (for
    random entries); over many epochs each case is visited as often as `expected_visits` says."""
    targets = _label_matrix(0, 40)
    targets[4, 0] = float("nan")
    sampler = registry.create(name)

    def draw(seed: int) -> torch.Tensor:
        return sampler.sample_indices(targets, epoch=0, num_epochs=1, generator=torch.Generator().manual_seed(seed))

    idx = draw(0)
    assert idx.dtype == torch.long and idx.ndim == 1 and len(idx) > 0
    assert int(idx.min()) >= 0 and int(idx.max()) < len(targets)
    assert torch.equal(idx, draw(0)) and not torch.equal(idx, draw(1))
    expected = sampler.expected_visits(targets)
    assert expected.shape == (len(targets),) and (expected >= 0).all()
    seen = sum(torch.bincount(draw(10 + r), minlength=len(targets)).double() for r in range(400)) / 400
    np.testing.assert_allclose(seen.numpy(), expected, atol=0.25)


def check_multilabel_dataset(registry: Registry, name: str) -> None:
    """Finite float32 rows of the declared modality, a 0/1 label matrix with every label
    present and a long tail (the most common label at least twice the rarest), one distinct
    name per label; the same seed draws the same data, another seed other data."""
    info = registry.info(name)
    small = {"n_samples": 300}
    data = registry.create(name, small)
    assert data.modality == info.capabilities["modality"]
    assert data.x.dtype == np.float32 and np.isfinite(data.x).all() and len(data.x) == len(data.y) == 300
    assert data.x.ndim == (2 if data.modality == "tabular" else 4)
    assert set(np.unique(data.y)) <= {0.0, 1.0} and data.y.shape[1] == data.num_labels
    counts = data.label_counts
    assert counts.min() > 0 and counts.max() >= 2 * counts.min(), counts
    assert len(set(data.label_names)) == data.num_labels and all(data.label_names)
    again, other = registry.create(name, small), registry.create(name, {**small, "seed": 1})
    np.testing.assert_array_equal(again.x, data.x)
    assert not np.array_equal(other.x, data.x)


def check_multilabel_scheme(registry: Registry, name: str) -> None:
    """Trains a tiny multi-label run with this scheme at its defaults, twice: finite history
    rows and test scores of one column per finding, the same for the same seed."""
    from core.config import RunConfig
    from core.train import train_run

    data = {"source": "multilabel_table", "params": {"n_samples": 200, "n_features": 6, "n_labels": 4},
            "hide_labels": 0.2}
    config = RunConfig.model_validate({"data": data, "scheme": {"name": name},
                                       "train": {"epochs": 2, "min_steps": 8, "batch_size": 32, "device": "cpu"}})
    results = [train_run(config) for _ in range(2)]
    art = results[0].artifacts
    assert art.logits.shape == (len(art.label_matrix), 4) and np.isfinite(art.logits).all()
    losses = [r[k] for r in results[0].history for k in ("train_loss", "val_loss")]
    assert losses and np.isfinite(losses).all()
    np.testing.assert_array_equal(results[1].artifacts.logits, art.logits)


# --- the table: which checks each kind owes ---------------------------------------------------

KIND_CHECKS: dict[str, tuple[Check, ...]] = {
    "dataset": (check_dataset,),
    "model": (check_model,),
    "loss": (check_loss,),
    "loss_schedule": (check_loss_schedule,),
    "sampler": (check_sampler,),
    "resampler": (check_resampler,),
    "stage2": (_stage_check("stage2"),),
    "label_noise": (check_label_noise,),
    "text_encoder": (check_text_encoder,),
    "label_issues": (check_cleaner,),
    "pretrain": (_stage_check("pretrain"),),
    "semi": (_stage_check("semi", {"data": {"unlabeled": {"fraction": 0.5}}}),),
    "robust": (_stage_check("robust"),),
    "sharpness": (_stage_check("sharpness"),),
    "posthoc": (check_posthoc,),
    "attribution": (check_attribution,),
    "attack": (check_attack,),
    "multilabel_loss": (check_multilabel_loss,),
    "multilabel_sampler": (check_multilabel_sampler,),
    "multilabel_dataset": (check_multilabel_dataset,),
    "multilabel_scheme": (check_multilabel_scheme,),
}


def _yield_checks(kind: str, info: PluginInfo) -> Iterator[Check]:
    yield from _common_checks(info)
    yield from KIND_CHECKS.get(kind, ())


CASES = [pytest.param(kind.name, info.name, check, id=f"{kind.name}-{info.name}-{check.__name__}")
         for kind in KINDS for info in registry_for(kind.name).infos() for check in _yield_checks(kind.name, info)]


@pytest.mark.parametrize("kind, name, check", CASES)
def test_contract(kind, name, check):
    check(registry_for(kind), name)


def test_every_kind_owes_behaviour_checks_and_has_entries():
    assert set(KIND_CHECKS) == {k.name for k in KINDS}, "a new kind says which checks its entries owe"
    assert all(registry_for(k.name).names() for k in KINDS)


def test_the_table_lists_every_registry_the_packages_expose():
    listed = {id(registry_for(k.name)) for k in KINDS}
    for package in ("core.data", "core.models", "core.methods", "core.train", "core.analysis"):
        for attr, value in vars(importlib.import_module(package)).items():
            if isinstance(value, Registry):
                assert id(value) in listed, f"{package}.{attr} is a registry the table of kinds does not list"
    assert len({k.listing for k in KINDS}) == len(KINDS) and len({k.section for k in KINDS if k.section}) == len(
        [k for k in KINDS if k.section])


def test_a_new_entry_is_covered_without_writing_a_test():
    """Registering an entry is enough for it to be checked, and a broken one is caught."""
    from core.methods import LOSSES, CrossEntropy

    name = "contract_probe"
    LOSSES.register(name, display="Probe loss", description="A loss registered by this test only.")(CrossEntropy)
    try:
        checks = [c.__name__ for c in _yield_checks("loss", LOSSES.info(name))]
        assert {"check_words", "check_refuses_bad_params", "check_loss"} <= set(checks)
        for check in _yield_checks("loss", LOSSES.info(name)):
            check(LOSSES, name)
    finally:
        LOSSES._factories.pop(name), LOSSES._infos.pop(name)

    class Broken(CrossEntropy):
        def forward(self, logits, target):
            return logits.sum() * float("nan")

    LOSSES.register(name, display="Broken loss", description="A loss that returns NaN, to be caught.")(Broken)
    try:
        with pytest.raises(AssertionError):
            check_loss(LOSSES, name)
    finally:
        LOSSES._factories.pop(name), LOSSES._infos.pop(name)


def test_each_config_section_of_the_table_is_checked_against_its_kind():
    """The table's `section` of a kind is where a config holds that kind's entry, and that
    section validates against the same kind's registry."""
    from typing import Union, get_origin

    from core.config import DataConfig, PluginSpec, RunConfig

    for kind in KINDS:
        if kind.section is None:
            continue
        if kind.section == "data.params":  # a built-in dataset: data.source names it, data.params holds its settings
            assert "params" in DataConfig.model_fields and kind.setting == "data.source"
            continue
        model, annotation = RunConfig, None
        for part in kind.section.split("."):
            annotation = model.model_fields[part].annotation
            options = get_args(annotation) if get_origin(annotation) in (Union, type(int | None)) else (annotation,)
            model = next(o for o in options if isinstance(o, type))
        assert issubclass(model, PluginSpec) and model.plugin_kind == kind.name, kind.section
        assert kind.setting == f"{kind.section}.name"


def test_every_entry_of_every_kind_meets_the_common_and_its_kinds_checks():
    """The generated cases name each registered entry with every check it owes, for each kind
    the redesign lists (nothing filtered out of CASES on the way)."""
    named = {"dataset", "model", "loss", "sampler", "resampler", "stage2", "pretrain", "semi", "label_issues",
             "posthoc", "attribution"}
    assert named <= {k.name for k in KINDS}
    cases = {(p.values[0], p.values[1], p.values[2].__name__) for p in CASES}
    for kind in KINDS:
        for name in registry_for(kind.name).names():
            owed = ["check_words", "check_defaults_validate", "check_refuses_bad_params",
                    *(c.__name__ for c in KIND_CHECKS[kind.name])]
            missing = [c for c in owed if (kind.name, name, c) not in cases]
            assert not missing, f"{kind.name} {name!r} is not run through {missing}"


def _registries_in_the_source() -> dict[str, str]:
    """Every module-level `NAME = Registry(...)` in core/, module by module (read from the
    code, so a registry a package does not re-export is found too)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    found = {}
    for path in sorted((root / "core").rglob("*.py")):
        for node in ast.parse(path.read_text()).body:
            target = node.target if isinstance(node, ast.AnnAssign) else (
                node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
            value = getattr(node, "value", None)
            if (isinstance(target, ast.Name) and isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                    and value.func.id == "Registry"):
                found[target.id] = ".".join(path.relative_to(root).with_suffix("").parts)
    return found


def test_every_registry_in_the_code_is_a_kind_of_the_table():
    """A registry made anywhere in core/ is a row of the table of kinds, so its entries get the
    contract checks. Lessons are the one exception: a lesson is a sweep plus a verdict, not a
    plug-in of a run, and tests/test_lessons.py trains and checks every one."""
    listed = {id(registry_for(k.name)) for k in KINDS}
    found = _registries_in_the_source()
    assert len(found) >= len(KINDS)
    for attr, module in found.items():
        registry = getattr(importlib.import_module(module), attr)
        if module.startswith("core.lessons"):
            continue
        assert id(registry) in listed, f"{module}.{attr} is a registry the table of kinds does not list"
