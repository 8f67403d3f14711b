"""Attribution engine: captum wrappers against hand-worked cases, the registry contract,
and the per-sample cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import core.analysis._attribution as attribution_module
import core.analysis._attribution_cache as cache_module
from core.analysis import (
    ATTRIBUTIONS,
    attribute,
    attribute_cached,
    class_feature_importance,
    list_attributions,
    top_features,
)
from core.models import Classifier, create_model

# Fast settings so the contract test runs every method in well under a second.
FAST_PARAMS = {
    "integrated_gradients": {"n_steps": 8},
    "gradient_shap": {"n_samples": 4, "n_baselines": 2},
}


class LinearClassifier(Classifier):
    """A Classifier whose features are the raw input: f(x) = W x + b."""

    def __init__(self, num_features: int, num_classes: int):
        super().__init__(num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return x


class IgnoresFeatureTwo(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
        mask = torch.ones(5)
        mask[2] = 0
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x * self.mask)


@pytest.fixture
def cnn() -> Classifier:
    torch.manual_seed(0)
    return create_model("small_cnn", {"width": 4}, input_shape=(1, 8, 8), num_classes=3)


@pytest.fixture
def mlp() -> Classifier:
    torch.manual_seed(0)
    return create_model("mlp", {"hidden": 8, "depth": 1}, input_shape=(5,), num_classes=3)


def _images(n: int = 6) -> np.ndarray:
    return np.random.default_rng(0).random((n, 1, 8, 8), dtype=np.float32)


def _table(n: int = 6) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((n, 5)).astype(np.float32)


# ---------------------------------------------------------------- hand-worked cases


def test_integrated_gradients_of_linear_model_is_weight_times_input():
    torch.manual_seed(0)
    model = LinearClassifier(4, 3)
    x = np.random.default_rng(2).standard_normal((5, 4)).astype(np.float32)
    targets = [0, 1, 2, 1, 0]
    result = attribute(model, x, method="integrated_gradients", targets=targets, params={"n_steps": 10})
    weight = model.head.weight.detach().numpy()
    np.testing.assert_allclose(result, weight[targets] * x, rtol=1e-4, atol=1e-6)


def test_integrated_gradients_is_complete_on_a_cnn(cnn):
    x = _images(4)
    targets = [0, 1, 2, 1]
    result = attribute(cnn, x, method="integrated_gradients", targets=targets, params={"n_steps": 300})
    with torch.no_grad():
        cnn.eval()
        logits = cnn(torch.from_numpy(x))
        baseline_logits = cnn(torch.zeros_like(torch.from_numpy(x)))
    expected = (logits - baseline_logits)[torch.arange(4), targets].numpy()
    np.testing.assert_allclose(result.reshape(4, -1).sum(axis=1), expected, rtol=1e-2, atol=1e-3)


def test_layer_grad_cam_maps_have_the_input_spatial_shape(cnn):
    result = attribute(cnn, _images(3), method="layer_grad_cam", targets=1)
    assert result.shape == (3, 1, 8, 8)
    assert np.all(result >= 0)  # ReLU on by default, as in the paper


def test_feature_ablation_gives_an_ignored_feature_exactly_zero():
    result = attribute(IgnoresFeatureTwo(), _table(), method="feature_ablation", targets=[0, 1, 2, 0, 1, 2])
    assert np.all(result[:, 2] == 0)
    assert np.any(result[:, [0, 1, 3, 4]] != 0)


# ---------------------------------------------------------------- registry contract


def _method_cases() -> list[tuple[str, str]]:
    return [(name, modality) for name in ATTRIBUTIONS.names() for modality in ATTRIBUTIONS.info(name).capabilities["modality"]]


@pytest.mark.parametrize(("method", "modality"), _method_cases())
def test_every_method_runs_on_its_modalities_with_the_right_shape(method, modality, cnn, mlp):
    model, x = (cnn, _images()) if modality == "image" else (mlp, _table())
    model.train()
    result = attribute(model, x, method=method, targets=[0, 1, 2, 0, 1, 2], params=FAST_PARAMS.get(method), batch_size=4)
    info = ATTRIBUTIONS.info(method)
    expected = (6, 1, 8, 8) if info.capabilities["output"] == "spatial_map" else x.shape
    assert result.shape == expected
    assert result.dtype == np.float32
    assert np.all(np.isfinite(result))
    # The model is only borrowed: mode and trainability restored, no gradient left behind.
    assert model.training
    assert all(p.requires_grad and p.grad is None for p in model.parameters())


@pytest.mark.parametrize("method", ATTRIBUTIONS.names())
def test_every_method_declares_what_pages_need(method):
    info = ATTRIBUTIONS.info(method)
    assert info.description and info.paper
    assert set(info.capabilities["modality"]) <= {"tabular", "image"}
    assert isinstance(info.capabilities["needs_cam_layer"], bool)
    assert info.capabilities["output"] in {"input", "spatial_map"}


@pytest.mark.parametrize("method", ["gradient_shap", "integrated_gradients"])
def test_stochastic_settings_are_reproducible(method, cnn):
    params = {**FAST_PARAMS.get(method, {}), "smoothgrad": True} if method == "integrated_gradients" else FAST_PARAMS[method]
    first = attribute(cnn, _images(), method=method, targets=1, params=params)
    second = attribute(cnn, _images(), method=method, targets=1, params=params)
    np.testing.assert_array_equal(first, second)


def test_smoothgrad_changes_a_gradient_map(cnn):
    plain = attribute(cnn, _images(), method="saliency", targets=0)
    smooth = attribute(cnn, _images(), method="saliency", targets=0, params={"smoothgrad": True, "nt_samples": 4})
    assert plain.shape == smooth.shape and not np.allclose(plain, smooth)


def test_list_attributions_offers_only_what_applies(cnn, mlp):
    assert "layer_grad_cam" in list_attributions("image", model=cnn)
    assert "layer_grad_cam" not in list_attributions("image", model=create_model("mlp", input_shape=(1, 8, 8), num_classes=3))
    assert "feature_ablation" not in list_attributions("image")
    assert "layer_grad_cam" not in list_attributions("tabular")


def test_inapplicable_or_unknown_methods_fail_clearly(mlp):
    with pytest.raises(ValueError, match="tabular"):
        attribute(mlp, _table(), method="layer_grad_cam", targets=0)
    image_mlp = create_model("mlp", input_shape=(1, 8, 8), num_classes=3)
    with pytest.raises(ValueError, match="cam_layer"):
        attribute(image_mlp, _images(), method="layer_grad_cam", targets=0)
    with pytest.raises(KeyError, match="integrated_gradients"):
        attribute(mlp, _table(), method="no_such_method", targets=0)
    with pytest.raises(ValueError, match="n_steps"):
        attribute(mlp, _table(), method="integrated_gradients", targets=0, params={"n_steps": 0})
    with pytest.raises(ValueError, match="targets"):
        attribute(mlp, _table(), method="saliency", targets=[0, 1])
    with pytest.raises(ValueError, match="targets"):
        attribute(mlp, _table(), method="saliency", targets=3)


def test_batches_report_progress_and_match_one_big_batch(mlp):
    calls: list[tuple[int, int]] = []
    batched = attribute(mlp, _table(7), method="integrated_gradients", targets=2, batch_size=3,
                        progress=lambda done, total: calls.append((done, total)))
    whole = attribute(mlp, _table(7), method="integrated_gradients", targets=2, batch_size=64)
    assert calls == [(3, 7), (6, 7), (7, 7)]
    np.testing.assert_allclose(batched, whole, rtol=1e-5, atol=1e-7)


def test_works_under_no_grad_and_on_tensors(mlp):
    with torch.no_grad():
        result = attribute(mlp, torch.from_numpy(_table()), method="saliency", targets=torch.tensor([0, 1, 2, 0, 1, 2]))
    assert result.shape == (6, 5) and np.any(result != 0)


# ---------------------------------------------------------------- cache


def _counting_attribute(monkeypatch) -> list[int]:
    computed: list[int] = []
    real = attribution_module.attribute

    def counting(model, inputs, **kwargs):
        computed.append(len(inputs))
        return real(model, inputs, **kwargs)

    monkeypatch.setattr(attribution_module, "attribute", counting)
    monkeypatch.setattr(cache_module, "attribute", counting)  # the cache calls it from its own module
    return computed


def test_cache_returns_the_same_arrays_and_computes_only_missing_samples(tmp_path, cnn, monkeypatch):
    computed = _counting_attribute(monkeypatch)
    x = _images(6)
    ids = [10, 11, 12, 13, 14, 15]
    targets = [0, 1, 2, 0, 1, 2]
    params = {"n_steps": 8}
    direct = attribute(cnn, x, method="integrated_gradients", targets=targets, params=params)
    computed.clear()

    first = attribute_cached(tmp_path, "run-a", cnn, x[:4], ids[:4], method="integrated_gradients", targets=targets[:4], params=params)
    assert computed == [4]
    np.testing.assert_allclose(first, direct[:4], rtol=1e-6)

    second = attribute_cached(tmp_path, "run-a", cnn, x, ids, method="integrated_gradients", targets=targets, params=params)
    assert computed == [4, 2]
    np.testing.assert_allclose(second, direct, rtol=1e-6)

    again = attribute_cached(tmp_path, "run-a", cnn, x, ids, method="integrated_gradients", targets=targets, params={"n_steps": 8})
    assert computed == [4, 2]
    np.testing.assert_array_equal(again, second)

    # A different target, parameter set or run is a different entry.
    attribute_cached(tmp_path, "run-a", cnn, x[:1], ids[:1], method="integrated_gradients", targets=2, params=params)
    attribute_cached(tmp_path, "run-a", cnn, x[:1], ids[:1], method="integrated_gradients", targets=0, params={"n_steps": 9})
    attribute_cached(tmp_path, "run-b", cnn, x[:1], ids[:1], method="integrated_gradients", targets=0, params=params)
    assert computed == [4, 2, 1, 1, 1]
    assert not list(tmp_path.rglob("*.tmp"))


def test_cache_keys_validated_params_and_odd_ids(tmp_path, mlp, monkeypatch):
    computed = _counting_attribute(monkeypatch)
    x, ids = _table(3), ["a/b", "../escape", "plain"]
    attribute_cached(tmp_path, "run", mlp, x, ids, method="integrated_gradients", targets=1, params={})
    attribute_cached(tmp_path, "run", mlp, x, ids, method="integrated_gradients", targets=1, params={"n_steps": 50})
    assert computed == [3]
    files = list(tmp_path.rglob("*.npy"))
    assert len(files) == 3 and all(tmp_path in f.parents for f in files)


def test_cache_recomputes_a_damaged_file(tmp_path, mlp, monkeypatch):
    computed = _counting_attribute(monkeypatch)
    x = _table(2)
    good = attribute_cached(tmp_path, "run", mlp, x, [0, 1], method="saliency", targets=0)
    next(iter(sorted(tmp_path.rglob("0.npy")))).write_bytes(b"not an array")
    again = attribute_cached(tmp_path, "run", mlp, x, [0, 1], method="saliency", targets=0)
    assert computed == [2, 1]
    np.testing.assert_array_equal(good, again)


# ---------------------------------------------------------------- tables


def test_class_feature_importance_is_mean_absolute_attribution_per_class():
    attributions = np.array([[1.0, -2.0], [-3.0, 0.0], [0.5, 0.5]])
    labels = np.array([0, 0, 2])
    importance = class_feature_importance(attributions, labels, num_classes=3)
    np.testing.assert_allclose(importance[0], [2.0, 1.0])
    assert np.all(np.isnan(importance[1]))
    np.testing.assert_allclose(importance[2], [0.5, 0.5])


def test_top_features_ranks_by_magnitude():
    frame = top_features(np.array([0.1, -0.9, 0.5]), ["a", "b", "c"], k=2)
    assert frame["feature"].tolist() == ["b", "c"]
    assert frame["rank"].tolist() == [1, 2]
    per_class = top_features(np.array([[1.0, 2.0], [np.nan, np.nan]]), ["a", "b"], k=1, class_names=["x", "y"])
    assert per_class.to_dict("records") == [{"class": "x", "rank": 1, "feature": "b", "value": 2.0}]


def test_seeded_methods_leave_the_callers_random_streams_alone(cnn):
    torch.manual_seed(123)
    np.random.seed(123)
    expected_torch, expected_numpy = torch.rand(1), np.random.rand()
    torch.manual_seed(123)
    np.random.seed(123)
    attribute(cnn, _images(2), method="gradient_shap", targets=0, params=FAST_PARAMS["gradient_shap"])
    assert torch.rand(1) == expected_torch and np.random.rand() == expected_numpy


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda_and_returns_the_model_home(cnn):
    on_cpu = attribute(cnn, _images(), method="integrated_gradients", targets=1, params={"n_steps": 16})
    on_gpu = attribute(cnn, _images(), method="integrated_gradients", targets=1, params={"n_steps": 16}, device="cuda")
    np.testing.assert_allclose(on_gpu, on_cpu, rtol=1e-3, atol=1e-5)
    assert next(cnn.parameters()).device.type == "cpu"
