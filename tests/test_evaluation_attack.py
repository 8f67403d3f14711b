"""`evaluation.attack`: a run scored on attacked copies of its test cases reports its balanced
accuracy, tail accuracy and head - tail gap under attack, which experiments, sweeps and the
paired comparisons read like any other measure."""

from __future__ import annotations

import os

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from conftest import TINY_TABLE_RUN, make_run
from core.config import RunConfig

# wine's training split keeps 35, 15 and 7 rows: one head, one medium and one tail class
ATTACKED = {**TINY_TABLE_RUN, "data": {**TINY_TABLE_RUN["data"], "many_shot": 30, "few_shot": 10},
            "evaluation": {"attack": {"name": "pgd", "epsilon": 0.1, "steps": 3}}}


@pytest.fixture(scope="module")
def attacked_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("attacked")
    ids = [make_run(home, {**ATTACKED, "loss": {"name": loss}}, embeddings=False) for loss in ("ce", "balanced_softmax")]
    return home, ids


def test_a_run_reports_its_numbers_under_the_attack_it_names(attacked_home):
    from core.store import RunStore

    home, (run_id, _) = attacked_home
    store = RunStore(home)
    art, metrics = store.artifacts(run_id), store.metrics(run_id)
    attacked = art.attacked_predictions
    assert attacked is not None and attacked.shape == art.labels.shape
    assert metrics["robust_balanced_accuracy"] == pytest.approx(balanced_accuracy_score(art.labels, attacked))
    low, high = metrics["ci"]["robust_balanced_accuracy"]["low"], metrics["ci"]["robust_balanced_accuracy"]["high"]
    assert low <= metrics["robust_balanced_accuracy"] <= high
    groups = metrics["dataset"]["groups"]
    tail = [c for c, g in enumerate(groups) if g == "tail"]
    head = [c for c, g in enumerate(groups) if g == "head"]
    assert tail and head
    recall = [np.mean(attacked[art.labels == c] == c) for c in range(art.num_classes)]
    assert metrics["robust_tail_accuracy"] == pytest.approx(np.mean([recall[c] for c in tail]))
    assert metrics["robust_gap"] == pytest.approx(np.mean([recall[c] for c in head]) - metrics["robust_tail_accuracy"])
    assert metrics["attack"] == {"name": "pgd", "epsilon": 0.1, "steps": 3, "step_size": None, "random_start": True,
                                 "seed": 0}
    assert metrics["robust_balanced_accuracy"] <= metrics["balanced_accuracy"] + 1e-9, "an attack never helps here"


def test_an_attack_of_size_zero_leaves_the_clean_numbers(tmp_path):
    from core.store import RunStore

    run_id = make_run(tmp_path, {**ATTACKED, "evaluation": {"attack": {"name": "fgsm", "epsilon": 0.0}}},
                      embeddings=False)
    metrics = RunStore(tmp_path).metrics(run_id)
    assert metrics["robust_balanced_accuracy"] == pytest.approx(metrics["balanced_accuracy"])


def test_two_attacked_runs_compare_on_the_same_attacked_cases(attacked_home):
    from core.analysis import paired_comparison
    from core.store import RunStore

    home, (a, b) = attacked_home
    store = RunStore(home)
    result, extra = paired_comparison(store, a, b, "robust_balanced_accuracy")
    pa, pb, y = store.artifacts(a).attacked_predictions, store.artifacts(b).attacked_predictions, store.artifacts(a).labels
    assert result.metric == "robust_balanced_accuracy"
    assert result.difference == pytest.approx(balanced_accuracy_score(y, pa) - balanced_accuracy_score(y, pb))
    assert result.ci[0] <= result.difference <= result.ci[1] and "mcnemar" in extra
    with pytest.raises(ValueError, match="several seeds or folds"):
        paired_comparison(store, a, b, "robust_gap")


def test_a_run_without_an_attack_cannot_be_compared_under_one(attacked_home, tmp_path):
    from core.analysis import paired_comparison
    from core.store import RunStore

    home, (a, _) = attacked_home
    plain = make_run(home, {**ATTACKED, "name": "plain", "evaluation": {}}, embeddings=False)
    other = make_run(home, {**ATTACKED, "name": "fgsm", "evaluation": {"attack": {"name": "fgsm", "epsilon": 0.1}}},
                     embeddings=False)
    with pytest.raises(ValueError, match="evaluation attack"):
        paired_comparison(RunStore(home), a, plain, "robust_balanced_accuracy")
    with pytest.raises(ValueError, match="different attacks"):
        paired_comparison(RunStore(home), a, other, "robust_balanced_accuracy")


def test_a_sweep_scored_under_attack_offers_and_tables_its_measures(tmp_path):
    from types import SimpleNamespace

    from app.sweep_view import measures
    from core.analysis import ROBUST_KEYS, sweep_summary, sweep_table
    from core.jobs import execute_run, start_sweep
    from core.jobs._sweeps import load_sweep
    from core.store import RunStore

    store = RunStore(tmp_path)
    spec = {**ATTACKED, "name": "attacked losses", "evaluation": {**ATTACKED["evaluation"], "seeds": [0, 1]},
            "grid": {"loss.name": ["ce", "weighted_ce"]}}
    sweep_id, _, _ = start_sweep(store, load_sweep(spec))
    for run in store.get_sweep(sweep_id).runs:
        assert execute_run(store, store.claim(run.id, os.getpid()), embeddings=False) == "done"
    _sweeps_page_reads_it_under_attack(tmp_path, sweep_id)
    summary = sweep_summary(store, sweep_id, "robust_gap")
    table = sweep_table(summary)
    assert set(ROBUST_KEYS) <= set(table.columns) and table["robust_balanced_accuracy"].notna().all()
    cell = next(c for c in summary["cells"] if c["vs_reference"])
    assert cell["vs_reference"]["metric"] == "robust_gap"
    assert measures(store.get_sweep(sweep_id))[-len(ROBUST_KEYS):] == ROBUST_KEYS
    assert not set(ROBUST_KEYS) & set(measures(SimpleNamespace(spec={**TINY_TABLE_RUN, "grid": {}})))


def test_an_attack_is_checked_with_the_config_and_refused_for_table_baselines():
    from core.train import run_problems

    with pytest.raises(Exception, match="epsilon"):
        RunConfig.model_validate({**TINY_TABLE_RUN, "evaluation": {"attack": {"name": "pgd", "epsilon": -1}}})
    with pytest.raises(Exception, match="nope"):
        RunConfig.model_validate({**TINY_TABLE_RUN, "evaluation": {"attack": {"name": "nope"}}})
    baseline = RunConfig.model_validate({**TINY_TABLE_RUN, "model": {"name": "logistic_regression"},
                                         "evaluation": {"attack": {"name": "fgsm"}}})
    problems = run_problems(baseline)
    assert any("evaluation.attack does not apply" in p for p in problems), problems


def _sweeps_page_reads_it_under_attack(home, sweep_id: str) -> None:
    """The Sweeps page offers the measures under attack for this sweep and maps by one."""
    from conftest import open_at_address

    previous = os.environ.get("TAILSCOPE_HOME")
    os.environ["TAILSCOPE_HOME"] = str(home)
    try:
        at = open_at_address("sweeps", sweep=sweep_id)
        measure = at.selectbox(key="sweeps.metric")
        assert "robust_gap" in measure.options or "Head − tail gap under attack" in measure.options
        measure.set_value("robust_gap").run()
        assert not at.exception, [e.value for e in at.exception]
        assert any("under attack" in m.value for m in at.markdown) or any(
            "under attack" in (c.value or "") for c in at.caption)
    finally:
        if previous is None:
            os.environ.pop("TAILSCOPE_HOME", None)
        else:
            os.environ["TAILSCOPE_HOME"] = previous


def test_the_attack_at_the_end_of_a_run_reports_its_own_progress(tmp_path):
    """Attacking the test set takes a pass per attack step: the progress line says so, batch by
    batch, between training and the finished run."""
    from core.jobs._worker import produce_run
    from core.run_words import progress_text
    from core.store import RunStore

    store = RunStore(tmp_path)
    config = RunConfig.model_validate(ATTACKED)
    seen = []
    produce_run(config, store.folder(store.create_run(config)), progress=seen.append)
    attack = [p for p in seen if p.get("stage") == "attack"]
    assert attack and attack[-1]["fraction"] == 1.0
    fractions = [p["fraction"] for p in attack]
    assert fractions == sorted(fractions) and len(set(fractions)) == len(fractions)
    stages = [p.get("stage") for p in seen]
    assert stages.index("attack") > max(i for i, s in enumerate(stages) if s == "train")
    assert progress_text(attack[-1]) == "scoring the test set under attack: 100% of its cases"
