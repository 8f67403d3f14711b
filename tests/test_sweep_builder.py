"""The sweep builder's pure parts (a sweep from choices, its YAML, its time estimate) and the
starting points (the best fix against plain cross-entropy, repeats never paired, runs grouped)."""

from __future__ import annotations

import itertools
import os
import statistics

import pytest
import yaml

from core.analysis import (
    best_against_reference, experiment_labels, grouped_run_labels, latest_work, same_setup, sweep_starting_point,
)
from core.config import ConfigError, RunConfig
from core.jobs import (
    MAX_CELLS, NO_STAGE2, SweepChoices, estimate_sweep_seconds, expand_sweep, load_sweep, sweep_from_choices,
    sweep_size, sweep_yaml,
)
from core.store import ExperimentRecord, RunRecord, SweepRecord

WINE = {"source": "wine", "imbalance": {"profile": "exp", "ratio": 5}}


def choices(**changes) -> SweepChoices:
    return SweepChoices(**{"data": WINE, "model": {"name": "mlp"}, "train": {"epochs": 3}, **changes})


def test_yaml_loads_back_to_the_same_sweep_and_every_combination_is_built():
    raw = sweep_from_choices(choices(losses=["ce", "focal"], samplers=["instance", "class_balanced"],
                                     stage2=[NO_STAGE2, "crt"], ratios=[5, 20], noise_rates=[0, 0.2], seeds=2))
    text = sweep_yaml(raw)
    from_file = load_sweep(yaml.safe_load(text))
    assert from_file.spec_hash == load_sweep(raw).spec_hash, "the shown YAML resumes the sweep started here"
    cells, problems = expand_sweep(from_file)
    assert not problems
    assert sweep_size(from_file) == (32, 64)  # 2^5 combinations, 2 seeds each
    wanted = set(itertools.product(["ce", "focal"], ["instance", "class_balanced"], [None, "crt"], [5.0, 20.0],
                                   [None, 0.2]))
    built = {(c.config.loss.name, c.config.sampler.name, c.config.stage2.name if c.config.stage2 else None,
              c.config.data.imbalance.ratio, c.config.data.label_noise.rate if c.config.data.label_noise else None)
             for c in cells}
    assert built == wanted
    for cell in cells:
        assert cell.config.evaluation.seeds == [0, 1] and cell.config.train.epochs == 3
        assert cell.config.data.source == "wine" and cell.config.model.name == "mlp"
        if cell.config.data.label_noise:
            assert cell.config.data.label_noise.name == "symmetric"


def test_one_value_is_held_fixed_and_a_ratio_gets_a_profile():
    raw = sweep_from_choices(choices(data={"source": "wine"}, losses=["ce", "ldam"], stage2=["lws"], ratios=[50],
                                     noise_rates=[0.1], seeds=1, folds=3))
    assert list(raw["grid"]) == ["loss.name"], "single values are not axes"
    spec = load_sweep(raw)
    cells, _ = expand_sweep(spec)
    for cell in cells:
        c = cell.config
        assert c.stage2.name == "lws" and c.data.imbalance.profile == "exp" and c.data.imbalance.ratio == 50
        assert c.data.label_noise.rate == 0.1 and c.evaluation.folds == 3 and c.evaluation.seeds == []
    assert sweep_size(spec) == (2, 6)
    assert raw["name"] == "loss on Wine cultivars", "named in words, as the Sweeps page lists it"


def test_nothing_to_compare_and_too_many_cells_are_refused_in_words():
    with pytest.raises(ConfigError, match="at least two values"):
        sweep_from_choices(choices(losses=["ce"]))
    from core.registry import registry_for

    losses, samplers = registry_for("loss").names(), registry_for("sampler").names()
    ratios = [2, 5, 10, 20, 50, 100, 200]
    assert len(losses) * len(samplers) * len(ratios) > MAX_CELLS
    with pytest.raises(ConfigError, match=f"more than {MAX_CELLS}; sweep fewer values at a time"):
        sweep_from_choices(choices(losses=losses, samplers=samplers, ratios=ratios))


def test_time_estimate_is_the_median_pace_of_matching_runs_shared_among_workers():
    spec = load_sweep(sweep_from_choices(choices(losses=["ce", "focal"], seeds=3, train={"epochs": 4})))
    wine_mlp = {"data": {"source": "wine"}, "model": {"name": "mlp"}, "train": {"epochs": 2}}
    past = [(wine_mlp, 10.0), (wine_mlp, 14.0), ({**wine_mlp, "train": {"epochs": 4}}, 4.0),
            ({"data": {"source": "digits"}, "model": {"name": "mlp"}, "train": {"epochs": 1}}, 1000.0)]
    pace = statistics.median([5.0, 7.0, 1.0])  # seconds per epoch of the wine/mlp runs only
    seconds, timed = estimate_sweep_seconds(spec, past, workers=2)
    assert timed == 6 and seconds == pytest.approx(6 * 4 * pace / 2)
    assert estimate_sweep_seconds(spec, past[3:], workers=2)[0] is None, "no run of this data and model: no guess"


def test_time_estimate_counts_a_first_stage_once_and_ignores_two_stage_paces():
    """cRT beside plain training on the same seeds starts from the plain run's network, so the
    sweep trains 3 networks, not 6; and a finished cRT run's time (a fraction of a training when
    it read its first stage) never sets the pace."""
    spec = load_sweep(sweep_from_choices(choices(stage2=[NO_STAGE2, "crt"], seeds=3, train={"epochs": 4})))
    wine_mlp = {"data": {"source": "wine"}, "model": {"name": "mlp"}, "train": {"epochs": 2}}
    past = [(wine_mlp, 10.0), ({**wine_mlp, "stage2": {"name": "crt"}}, 0.2)]
    seconds, timed = estimate_sweep_seconds(spec, past, workers=1)
    assert timed == 6 and seconds == pytest.approx(3 * 4 * 5.0)
    lws = load_sweep(sweep_from_choices(choices(stage2=["crt", "lws"], seeds=3, train={"epochs": 4})))
    assert estimate_sweep_seconds(lws, past, workers=1)[0] == pytest.approx(3 * 4 * 5.0), "the first of the two trains it"


# --- starting points ----------------------------------------------------------------------

def cell(settings, experiment, mean, runs, n_done=None):
    return {"settings": settings, "experiment": experiment, "runs": runs, "n_done": len(runs) if n_done is None
            else n_done, "summary": {"balanced_accuracy": {"mean": mean}} if mean is not None else {}}


SUMMARY = {"metric": "balanced_accuracy", "reference": ["loss.name", "ce"], "cells": [
    cell({"loss.name": "ce", "ratio": "5"}, "e-ce5", 0.60, ["a1", "a2"]),
    cell({"loss.name": "focal", "ratio": "5"}, "e-f5", 0.70, ["b1", "b2"]),
    cell({"loss.name": "ce", "ratio": "50"}, "e-ce50", 0.95, ["c1", "c2"]),  # a reference is never "the best fix"
    cell({"loss.name": "focal", "ratio": "50"}, "e-f50", 0.75, ["d1", "d2"]),
    cell({"loss.name": "ldam", "ratio": "50"}, "e-l50", None, ["e1", "e2"], n_done=0),
]}


def test_best_fix_is_paired_with_plain_cross_entropy_on_the_same_other_settings():
    best, ref = best_against_reference(SUMMARY)
    assert best["experiment"] == "e-f50" and ref["experiment"] == "e-ce50"
    best, _ = best_against_reference(SUMMARY, higher_is_better=False)
    assert best["experiment"] == "e-f5"
    assert best_against_reference({**SUMMARY, "cells": SUMMARY["cells"][4:]}) is None


def _run(run_id, status="done", name=None, experiment=None, config=None, created=0.0):
    return RunRecord(run_id, name or run_id, status, created, created, None, None, "wine", "ce", config or {}, None,
                     None, None, None, None, experiment)


def test_sweep_starting_point_pairs_runs_of_the_same_seed():
    runs = [_run("d1", "failed"), _run("d2"), _run("c1"), _run("c2")]
    exps = (ExperimentRecord("e-f50", "x", 0, "wine", "focal", {}, tuple(runs[:2])),
            ExperimentRecord("e-ce50", "y", 0, "wine", "ce", {}, tuple(runs[2:])))
    sweep = SweepRecord("sweep-1", "s", 0, {}, "h", None, None, exps)
    point = sweep_starting_point(SUMMARY, sweep)
    assert point.run == "d2" and point.compare_runs == ["d2", "c2"], "seed 1 is the first finished on both sides"
    assert point.compare_experiments == ["e-f50", "e-ce50"] and point.finished


def test_same_setup_ignores_only_name_seed_and_folds():
    a = RunConfig.model_validate({"name": "x · seed 0", "data": WINE, "train": {"seed": 0}}).model_dump(mode="json")
    b = RunConfig.model_validate({"name": "x · seed 1", "data": {**WINE, "seed": 1}, "train": {"seed": 1},
                                  "evaluation": {"seeds": [1, 2]}}).model_dump(mode="json")
    c = RunConfig.model_validate({"data": WINE, "loss": {"name": "focal"}}).model_dump(mode="json")
    assert same_setup(a, b) and not same_setup(a, c)


def test_picker_groups_a_sweeps_runs_under_its_name_and_home_gives_one_line_each():
    sweep_runs = [_run("s-a0", name="sw · loss.name=ce · seed 0", experiment="exp-a"),
                  _run("s-b0", name="sw · loss.name=focal · seed 0", experiment="exp-b"),
                  _run("s-a1", name="sw · loss.name=ce · seed 1", experiment="exp-a")]
    lone = [_run("lone1", name="digits run", config={"loss": {"name": "ce"}, "train": {"seed": 1}}, created=9),
            _run("lone0", name="digits run", config={"loss": {"name": "ce"}, "train": {"seed": 0}}, created=8)]
    runs = [lone[0], sweep_runs[0], lone[1], sweep_runs[1], sweep_runs[2]]  # newest first, interleaved
    exps = [ExperimentRecord("exp-a", "sw · loss.name=ce", 0, "wine", "ce", {}, (sweep_runs[0], sweep_runs[2]),
                             "sweep-1", {"loss.name": "ce"}),
            ExperimentRecord("exp-b", "sw · loss.name=focal", 0, "wine", "focal", {}, (sweep_runs[1],), "sweep-1",
                             {"loss.name": "focal"})]
    sweeps = [SweepRecord("sweep-1", "fixes on wine", 0, {}, "h", None, None, tuple(exps))]
    labels = grouped_run_labels(runs, exps, sweeps)
    assert [i for i, _ in labels] == ["lone1", "s-a0", "s-b0", "s-a1", "lone0"]
    assert dict(labels)["s-a1"] == "fixes on wine › Cross-entropy (plain) › seed 1"
    assert dict(labels)["s-b0"] == "fixes on wine › Focal loss › seed 0"
    work = latest_work(runs, exps, sweeps)
    assert [(w["kind"], len(w["runs"])) for w in work] == [("runs", 2), ("sweep", 3)], "repeats of one set-up: one line"
    words = experiment_labels(exps, sweeps)
    assert words == {"exp-a": "fixes on wine › Cross-entropy (plain) · 2 runs",
                     "exp-b": "fixes on wine › Focal loss · 1 run"}


def test_before_anything_finishes_a_sweep_opens_a_running_run():
    runs = [_run("q1", "queued"), _run("r2", "running"), _run("q3", "queued"), _run("q4", "queued")]
    exps = (ExperimentRecord("e-f50", "x", 0, "wine", "focal", {}, tuple(runs[:2])),
            ExperimentRecord("e-ce50", "y", 0, "wine", "ce", {}, tuple(runs[2:])))
    sweep = SweepRecord("sweep-1", "s", 0, {}, "h", os.getpid(), "local", exps)
    waiting = {**SUMMARY, "cells": [{**c, "n_done": 0, "summary": {}} for c in SUMMARY["cells"]]}
    point = sweep_starting_point(waiting, sweep)
    assert point.run == "r2" and not point.compare_runs and not point.finished


def test_a_cell_of_one_run_is_labelled_by_its_settings_alone():
    run = _run("r", name="sw · loss.name=ce", experiment="exp-a")
    exp = ExperimentRecord("exp-a", "sw · loss.name=ce", 0, "wine", "ce", {}, (run,), "sweep-1", {"loss.name": "ce"})
    sweep = SweepRecord("sweep-1", "fixes on wine", 0, {}, "h", None, None, (exp,))
    assert grouped_run_labels([run], [exp], [sweep]) == [("r", "fixes on wine › Cross-entropy (plain)")]
