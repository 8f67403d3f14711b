"""A damaged run file is a state of that run: named, with a way out, never a traceback."""

from __future__ import annotations

import json

import pytest

from core.cli import main
from conftest import shown
from core.store import RunFileDamaged, RunStore

FILES = ["eval.npz", "metrics.json", "history.json", "model.safetensors"]


def _damage(home, run_id: str, name: str) -> None:
    path = home / "runs" / run_id / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3] if name.endswith((".npz", ".safetensors")) else b'{"accuracy": 0.9, "per')


def _read(store: RunStore, run_id: str, name: str):
    if name == "model.safetensors":
        from core.analysis import load_run_model

        return load_run_model(store, run_id)
    return {"eval.npz": store.artifacts, "metrics.json": store.metrics, "history.json": store.history}[name](run_id)


@pytest.mark.parametrize("name", FILES)
def test_each_damaged_file_is_named_and_other_runs_still_load(copied_home, name):
    store = RunStore(copied_home["home"])
    _damage(copied_home["home"], copied_home["image_run"], name)
    with pytest.raises(RunFileDamaged) as caught:
        _read(store, copied_home["image_run"], name)
    assert caught.value.file == name and name in str(caught.value) and "re-run" in str(caught.value)
    assert "Traceback" not in str(caught.value) and str(copied_home["home"]) not in str(caught.value)
    _read(store, copied_home["table_run"], name)  # the other run is untouched


def test_a_json_file_of_the_wrong_shape_is_damaged_too(copied_home):
    (copied_home["home"] / "runs" / copied_home["table_run"] / "history.json").write_text('{"not": "a list"}')
    with pytest.raises(RunFileDamaged, match="expected a JSON list"):
        RunStore(copied_home["home"]).history(copied_home["table_run"])


@pytest.mark.parametrize("name, change, reason", [
    ("metrics.json", lambda m: {k: v for k, v in m.items() if k != "dataset"}, "no 'dataset' section"),
    ("metrics.json", lambda m: {**m, "per_class": "n/a"}, "'per_class' has the wrong type"),
    ("metrics.json", lambda m: {**m, "accuracy": "high"}, "'accuracy' is not a number"),
    ("history.json", lambda rows: [1] * len(rows), "entry 1 is not an object"),
])
def test_a_json_file_that_parses_but_has_fields_of_another_shape_is_damaged(copied_home, capsys, name, change, reason):
    """Found by bench/fault_injection.py: metrics.json without its 'dataset' section made
    `tailscope explain` print a KeyError traceback and every analysis page fail."""
    path = copied_home["home"] / "runs" / copied_home["image_run"] / name
    path.write_text(json.dumps(change(json.loads(path.read_text()))))
    with pytest.raises(RunFileDamaged, match=reason):
        _read(RunStore(copied_home["home"]), copied_home["image_run"], name)
    command = ["explain", copied_home["image_run"], "--n", "2"] if name == "metrics.json" else ["show", copied_home["image_run"]]
    assert main(command) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and name in err and "damaged" in err and "Traceback" not in err
    _read(RunStore(copied_home["home"]), copied_home["table_run"], name)  # the other run is untouched


@pytest.mark.parametrize("command, name", [(["show", "{run}"], "metrics.json"), (["show", "{run}", "--json"], "history.json"),
                                           (["explain", "{run}", "--n", "2"], "eval.npz")])
def test_the_cli_prints_one_line_and_exits_non_zero(copied_home, capsys, command, name):
    _damage(copied_home["home"], copied_home["image_run"], name)
    code = main([c.format(run=copied_home["image_run"]) for c in command])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.count("\n") == 0 and name in err and "damaged" in err


@pytest.mark.parametrize("page", ["results", "geometry", "calibration", "posthoc", "gallery", "triage"])
def test_analysis_pages_name_the_file_and_offer_rerun_and_delete(copied_home, open_page, page):
    _damage(copied_home["home"], copied_home["image_run"], "eval.npz")
    at = open_page(page, run_id=copied_home["image_run"])
    assert not at.exception, [e.value for e in at.exception]
    assert any("eval.npz" in e.value and "damaged" in e.value for e in at.error)
    assert at.button(key="damaged.rerun") and at.button(key="damaged.delete").disabled
    at.checkbox(key=f"damaged.confirm.{copied_home['image_run']}").check().run()
    at.button(key="damaged.delete").click().run()
    assert not at.exception
    assert copied_home["image_run"] not in [r.id for r in RunStore(copied_home["home"]).list_runs()]


def test_a_damaged_model_file_leaves_the_gallery_with_a_reason(copied_home, open_page):
    _damage(copied_home["home"], copied_home["image_run"], "model.safetensors")
    at = open_page("gallery", run_id=copied_home["image_run"])
    assert not at.exception and any("model.safetensors" in shown(e.value) for e in at.error)


def test_an_unexpected_page_error_is_a_short_notice_without_internals(stored_home, open_page, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError(f"secret detail at {stored_home['home']}/runs")

    monkeypatch.delenv("TAILSCOPE_RAISE_ERRORS")
    monkeypatch.setattr("app.results_view.confusion", boom)  # where the Results page's confusion explorer looks it up
    at = open_page("results", run_id=stored_home["image_run"])
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert "reference" in error and "secret detail" not in error and str(stored_home["home"]) not in error


def test_experiment_summaries_skip_a_damaged_run_and_say_so(experiment_store, tmp_path):
    import shutil

    from core.analysis import experiment_summary

    home = tmp_path / "copy"
    shutil.copytree(experiment_store["home"], home)
    store = RunStore(home)
    run = store.get_experiment(experiment_store["plain"]).runs[0]
    _damage(home, run.id, "metrics.json")
    summary = experiment_summary(store, experiment_store["plain"])
    assert summary["n_done"] == 2 and len(summary["damaged"]) == 1 and "metrics.json" in summary["damaged"][0]
    assert json.dumps(summary)  # still a complete, serialisable answer
