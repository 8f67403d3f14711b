"""The CLI contract other tools rely on, end to end through a real store."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from core.cli import main

EXAMPLE = """\
name: digits-lt-ce
data: {source: digits, imbalance: {profile: exp, ratio: 50}, seed: 0}
model: {name: small_cnn}
loss: {name: ce}
sampler: {name: instance}
train: {epochs: 3, batch_size: 128, lr: 0.01, seed: 0, min_steps: 0}
"""


def _tailscope(*args: str, home) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core.cli", *args], capture_output=True, text=True,
                          env={"TAILSCOPE_HOME": str(home), "PATH": "/usr/bin:/bin"}, timeout=600)


@pytest.mark.slow
def test_issue_config_trains_end_to_end(tmp_path):
    config = tmp_path / "digits.yaml"
    config.write_text(EXAMPLE)
    done = _tailscope("train", str(config), "--wait", "--no-embeddings", home=tmp_path)
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip().splitlines()[-1]

    runs = json.loads(_tailscope("runs", "--json", home=tmp_path).stdout)
    assert runs[0]["id"] == run_id and runs[0]["status"] == "done"
    assert {"id", "name", "status", "created"} <= set(runs[0])

    shown = json.loads(_tailscope("show", run_id, "--json", home=tmp_path).stdout)
    assert shown["status"] == "done" and shown["config"]["model"]["name"] == "small_cnn"
    metrics = shown["metrics"]
    assert {"accuracy", "balanced_accuracy", "macro_f1", "per_class"} <= set(metrics)
    assert {"class", "count_train", "precision", "recall", "f1", "support"} <= set(metrics["per_class"][0])
    assert [r["count_train"] for r in metrics["per_class"]][0] / metrics["per_class"][-1]["count_train"] >= 40
    assert len(shown["history"]) == 3

    folder = tmp_path / "runs" / run_id
    assert {"config.json", "history.json", "model.safetensors", "eval.npz"} <= {p.name for p in folder.iterdir()}

    # the analysis objects other issues rely on; strict JSON (no NaN) so jq and browsers can read it
    text = _tailscope("show", run_id, "--json", home=tmp_path).stdout
    json.loads(text, parse_constant=lambda name: pytest.fail(f"show --json printed {name}"))
    nc_keys = {"nc1", "nc2_equinorm_means", "nc2_equinorm_weights", "nc2_equiangular_means",
               "nc2_equiangular_weights", "nc3", "nc4"}
    assert nc_keys | {"weight_norm_count_spearman", "mean_norm_count_spearman"} <= set(shown["geometry"])
    assert {"ece", "mce", "adaptive_ece", "classwise_ece", "brier", "nll", "optimal_temperature",
            "gap"} <= set(shown["calibration"])
    assert set(shown["calibration"]["gap"]) <= {"head", "medium", "tail"} and shown["calibration"]["gap"]
    recorded = [row for row in shown["history"] if "nc1" in row]
    assert recorded and all(nc_keys <= set(row) for row in recorded)


def test_bad_config_exits_2_with_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    bad = tmp_path / "bad.yaml"
    bad.write_text("loss: {name: fancy}\n")
    assert main(["train", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown loss 'fancy'" in err and "known: " in err
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2


@pytest.mark.parametrize("config, reason", [
    ("data: {source: cifar11}", "unknown dataset 'cifar11'"),
    ("data: {source: digits, imbalance: {profile: exp, ratio: 5, class_order: [0, 1]}}",
     "data.imbalance.class_order"),
    ("data: {source: breast_cancer}\nmodel: {name: small_cnn}", "model 'small_cnn' works on image data"),
    ("resampler: {name: smote}", "resampler 'smote' makes new table rows"),
    ("stage2: {name: crt, sampler: balanced}", "unknown sampler 'balanced'"),
    ("data: {source: wine, imbalance: {profile: exp, ratio: 50}}\nmodel: {name: mlp}\nresampler: {name: smote}",
     "smote: class 1 has only 4 sample(s) but k_neighbors=5"),
])
def test_configs_that_cannot_run_are_refused_before_queueing(tmp_path, capsys, monkeypatch, config, reason):
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    path = tmp_path / "bad.yaml"
    path.write_text(config + "\n")
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and reason in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir()), "nothing was queued"


def test_show_unknown_run_exits_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    assert main(["show", "nope", "--json"]) == 2
    assert "no run 'nope'" in capsys.readouterr().err


def test_methods_lists_every_kind_with_parameters(capsys):
    assert main(["methods", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert {"losses", "samplers", "resamplers", "stage2", "posthoc", "models", "datasets"} <= set(listing)
    losses = {e["name"]: e for e in listing["losses"]}
    assert {"ce", "weighted_ce", "focal", "cb_focal", "ldam", "balanced_softmax", "logit_adjusted",
            "label_smoothing", "dice", "anyloss", "zloss"} <= set(losses)
    assert {p["name"] for p in losses["ldam"]["params"]} == {"max_margin", "s"}
    crt = {p["name"]: p for p in next(e for e in listing["stage2"] if e["name"] == "crt")["params"]}
    assert crt["resampler_params"]["default"] == {} and "smote" in crt["resampler"]["choices"]
    assert "class_balanced" in crt["sampler"]["choices"]
    [drw] = listing["loss_schedules"]
    assert drw["name"] == "drw" and {p["name"] for p in drw["params"]} == {"drw_epoch", "drw_beta"}
    assert "Cao et al." in drw["paper"]
    assert all(e["description"] for kind in listing.values() for e in kind)


def test_queue_without_wait_prints_the_id(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    config = tmp_path / "c.yaml"
    config.write_text(EXAMPLE)
    assert main(["train", str(config), "--no-worker"]) == 0
    run_id = capsys.readouterr().out.strip()
    assert main(["runs", "--json"]) == 0
    newest = json.loads(capsys.readouterr().out)[0]
    assert newest["id"] == run_id and newest["status"] == "queued"


def test_an_unexpected_error_is_one_line_and_the_traceback_goes_to_a_log(tmp_path, capsys, monkeypatch):
    import core.cli

    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))

    def boom(args):
        raise RuntimeError(f"internal detail at {tmp_path}")

    parser = core.cli.build_parser
    monkeypatch.setattr(core.cli, "build_parser", lambda: _with_runs(parser(), boom))
    assert main(["runs"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cli-errors.log" in err and "internal detail" not in err and "Traceback" not in err
    assert "RuntimeError: internal detail" in (tmp_path / "cli-errors.log").read_text()


def _with_runs(parser, func):
    parser.set_defaults(func=func)
    for action in parser._subparsers._group_actions:
        for sub in action.choices.values():
            sub.set_defaults(func=func)
    return parser
