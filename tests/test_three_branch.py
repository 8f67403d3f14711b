"""PLT-MLC's three branches (`scheme: plt_balance`): which cases each branch trains on, which
branch is kept and stored, masked entries, seeds, and where the scheme is refused."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from core.config import ConfigError, load_config

DATA = {"source": "multilabel_table", "params": {"n_samples": 240, "n_features": 6, "n_labels": 4, "ratio": 20.0},
        "few_shot": 40, "hide_labels": 0.2}
TRAIN = {"epochs": 2, "min_steps": 8, "batch_size": 32, "device": "cpu", "lr": 0.05}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _config(**extra):
    return load_config({"data": DATA, "scheme": {"name": "plt_balance"}, "train": TRAIN, **extra})


def _capture_models(monkeypatch) -> list:
    from core.train import _three_branch

    made = []
    original = _three_branch.create_model
    monkeypatch.setattr(_three_branch, "create_model", lambda *a, **k: made.append(original(*a, **k)) or made[-1])
    return made


def test_the_run_keeps_and_scores_the_balanced_branch(monkeypatch):
    from core.train import predict, train_run

    models = _capture_models(monkeypatch)
    result = train_run(_config())
    assert len(models) == 3 and result.model is models[2]
    x_test = torch.from_numpy(result.splits.x_test)
    np.testing.assert_array_equal(result.artifacts.logits, predict(models[2], x_test)[0].numpy())
    assert not np.allclose(result.artifacts.logits, predict(models[0], x_test)[0].numpy())  # the head branch differs
    assert result.artifacts.logits.shape == (len(result.splits.y_test), 4)
    assert result.info["kept_branch"] == "balanced" and len(result.history) == 2


def test_each_branch_trains_on_its_own_samplers_cases_and_labels(monkeypatch):
    """Each branch's sampler replaced by one drawing a fixed, disjoint block of cases: every
    batch a branch's network sees is its own block's rows, and the loss pairs them with
    those rows' labels (the release fed the balanced network the plain-order images)."""
    from core.train import _three_branch, train_run

    assert _three_branch.BRANCHES == (("head", "instance"), ("tail", "reverse_class"), ("balanced", "class_aware"))
    blocks = {"instance": 0, "reverse_class": 45, "class_aware": 90}  # of the 146 training cases

    class Block:
        def __init__(self, start):
            self.start = start

        def sample_indices(self, targets, *, epoch, num_epochs, generator):
            return torch.arange(self.start, self.start + 45).repeat(len(targets) // 45 + 1)[:len(targets)]

    monkeypatch.setattr(_three_branch, "create_multilabel_sampler", lambda name: Block(blocks[name]))
    models, inputs, targets = _capture_models(monkeypatch), [], []
    original_loss = _three_branch.three_branch_loss

    def recording_loss(modifier, branches, logits, ys, weight):
        targets.append([y.clone() for y in ys])
        return original_loss(modifier, branches, logits, ys, weight)

    monkeypatch.setattr(_three_branch, "three_branch_loss", recording_loss)
    monkeypatch.setattr(_three_branch, "check_divergence", lambda *a: None)
    original_branches = _three_branch._branches

    def hooked(*args):
        branches = original_branches(*args)
        for i, b in enumerate(branches):
            b.model.register_forward_pre_hook(lambda m, a, i=i: inputs.append((i, a[0].clone())) if m.training else None)
        return branches

    monkeypatch.setattr(_three_branch, "_branches", hooked)
    result = train_run(_config())
    x, y = torch.from_numpy(result.splits.x_train), torch.from_numpy(result.splits.y_train.astype(np.float32))
    for i, start in enumerate(blocks.values()):
        seen = torch.cat([a for j, a in inputs if j == i])
        own = x[start:start + 45]
        assert len(x) == 146 and len(seen) > 45 and all(bool((row == own).all(dim=1).any()) for row in seen), f"branch {i}"
        labels = torch.cat([step[i] for step in targets])
        rows = torch.arange(start, start + 45).repeat(len(x) // 45 + 1)[:len(x)].repeat(len(labels) // len(x) + 1)
        rows = rows[:len(labels)]
        assert torch.equal(torch.nan_to_num(labels, nan=-1.0), torch.nan_to_num(y[rows], nan=-1.0))


def test_unknown_entries_get_no_gradient_in_any_branch():
    from core.data import prepare_multilabel_run_data
    from core.methods import create_multilabel_loss
    from core.train._multilabel import loss_context
    from core.train._three_branch import Branch, three_branch_loss

    data = prepare_multilabel_run_data(_config().data)
    context = loss_context(data)
    modifier = create_multilabel_loss("plt_modifier", None, **context)

    def branches():  # fresh correctors: each counts the corrections it made
        return [Branch(n, None, None, create_multilabel_loss("plt_corrector", {"correct_from_epoch": 0}, **context))
                for n in ("head", "tail", "balanced")]

    g = torch.Generator().manual_seed(0)
    ys = [torch.from_numpy(data.y_train[k * 16:(k + 1) * 16].astype(np.float32)) for k in range(3)]
    assert all(bool(y.isnan().any()) for y in ys)
    logits = [(torch.randn(16, 4, generator=g) * 3).requires_grad_() for _ in range(3)]
    total, balanced = three_branch_loss(modifier, branches(), logits, ys, 0.2)
    assert torch.isfinite(total) and torch.isfinite(balanced)
    total.backward()
    for z, y in zip(logits, ys):
        assert (z.grad[y.isnan()] == 0).all() and (z.grad[~y.isnan()] != 0).any()
    moved = [torch.where(y.isnan(), torch.full_like(z, 30.0), z.detach()) for z, y in zip(logits, ys)]
    assert torch.equal(three_branch_loss(modifier, branches(), moved, ys, 0.2)[0], total.detach())


def test_the_same_seed_trains_the_same_branches_and_another_seed_others():
    from core.train import train_run

    first, again = train_run(_config()), train_run(_config())
    other = train_run(load_config({"data": DATA, "scheme": {"name": "plt_balance"}, "train": {**TRAIN, "seed": 1}}))
    np.testing.assert_array_equal(first.artifacts.logits, again.artifacts.logits)
    assert not np.array_equal(first.artifacts.logits, other.artifacts.logits)


@pytest.mark.parametrize(("raw", "words"), [
    ({"data": {"source": "digits"}}, "cannot take scheme 'plt_balance' (a multi-label training scheme"),
    ({"data": DATA, "model": {"name": "ovr_logistic_regression"}}, "with the table baseline"),
    ({"data": DATA, "loss": {"name": "asl"}}, "it picks each branch's loss and sampler"),
    ({"data": DATA, "sampler": {"name": "class_aware"}}, "it picks each branch's loss and sampler"),
    ({"data": DATA, "scheme": {"name": "plt_balance", "tau": 0.2}}, "tau"),
    ({"data": DATA, "scheme": {"name": "three"}}, "unknown multilabel_scheme 'three'"),
])
def test_the_scheme_is_refused_where_it_cannot_apply_in_one_line(raw, words):
    with pytest.raises(ConfigError) as info:
        load_config({"scheme": {"name": "plt_balance"}, **raw})
    assert words in str(info.value) and "\n" not in str(info.value)


def test_a_stored_three_branch_run_reads_back_and_predicts_new_cases(empty_home):
    """Stored as any multi-label network run: its test scores, and new cases scored by the stored
    (balanced) network as the run scored them."""
    from conftest import make_run
    from core.data import prepare_multilabel_run_data
    from core.predict import predict_multilabel_cases
    from core.store import RunStore

    run_id = make_run(empty_home, {"name": "three", "data": DATA, "scheme": {"name": "plt_balance"}, "train": TRAIN},
                      embeddings=False)
    store = RunStore(empty_home)
    art = store.artifacts(run_id)
    buf = io.BytesIO()
    np.savez(buf, x=prepare_multilabel_run_data(_config().data).x_test)
    cases = predict_multilabel_cases(store, run_id, "new.npz", buf.getvalue())
    np.testing.assert_allclose(cases.probs, 1 / (1 + np.exp(-art.logits)), atol=1e-5)
    assert art.logits.shape == (len(cases.probs), 4)


def test_the_train_page_offers_the_three_branches_in_plain_words_and_queues_them(empty_home):
    from streamlit.testing.v1 import AppTest

    from app import state
    from conftest import MAIN
    from core.store import RunStore
    from core.train import MULTILABEL_SCHEMES

    at = AppTest.from_file(str(MAIN), default_timeout=120)
    at.session_state[state.DATA_CONFIG] = DATA
    at.run()
    at.switch_page("../pages/train.py")
    at.run()
    scheme = at.selectbox(key="train.ml_scheme")
    assert scheme.value == "none" and MULTILABEL_SCHEMES.info("plt_balance").label in scheme.options
    assert {"train.ml_loss", "train.ml_sampler"} <= {s.key for s in at.selectbox}
    scheme.set_value("plt_balance").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert not {"train.ml_loss", "train.ml_sampler"} & {s.key for s in at.selectbox}
    captions = " ".join(c.value for c in at.caption)
    assert "two to three times" in captions and "choose their own losses and samplers" in captions
    at.button(key="train.start").click().run()
    (run,) = RunStore(empty_home).list_runs()
    assert run.config["scheme"]["name"] == "plt_balance" and run.config["loss"]["name"] == "bce"


def test_a_three_branch_run_is_named_by_its_scheme_not_by_the_unused_loss():
    from core.glossary import method_display

    config = _config()
    assert method_display(config) == "PLT-MLC three branches"
    assert method_display(load_config({"data": DATA})) == method_display({"loss": {"name": "bce"}}) != ""
