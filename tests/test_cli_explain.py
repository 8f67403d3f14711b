"""`tailscope explain`: a self-contained HTML report of a stored run's errors."""

from __future__ import annotations

import re

import plotly.offline
import pytest

from core.cli import main


def _explain(*args: str) -> int:
    return main(["explain", *args])


def test_explain_writes_a_self_contained_report(stored_home, tmp_path, capsys):
    from core.analysis._gallery import error_cases
    from core.store import RunStore

    run_id = stored_home["image_run"]
    out = tmp_path / "report.html"
    code = _explain(run_id, "--method", "integrated_gradients", "--classes", "all", "--wrong", "--n", "3",
                    "--out", str(out), "--device", "cpu")
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.strip() == str(out)
    assert "attribution maps (integrated_gradients) 6/6" in captured.err
    document = out.read_text(encoding="utf-8")

    store = RunStore(stored_home["home"])
    expected = error_cases(store.artifacts(run_id), store.metrics(run_id)["dataset"]["groups"]).head(3)
    assert document.count('class="case ') == 3
    for case in expected["case"]:  # each case named as a person finds it: a built-in's row number
        assert f"<h2>{case} &mdash;" in document and case.startswith("row ")
    assert "Integrated gradients" in document and "3 cases, 3 misclassified" in document
    assert "integrated_gradients" not in document.replace(plotly.offline.get_plotlyjs(), ""), "the method in words"
    rest = document.replace(plotly.offline.get_plotlyjs(), "")
    assert "http://" not in rest and "https://" not in rest
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", rest, flags=re.IGNORECASE)
    assert (store.run_dir(run_id) / "attributions" / "integrated_gradients").is_dir(), "maps are cached with the run"


def test_explain_a_table_run_by_class_name(stored_home, tmp_path, capsys):
    from core.store import RunStore

    run_id = stored_home["table_run"]
    name = RunStore(stored_home["home"]).metrics(run_id)["dataset"]["class_names"][0]
    out = tmp_path / "nested" / "table.html"
    assert _explain(run_id, "--method", "feature_ablation", "--classes", name, "--n", "2", "--out", str(out)) == 0
    document = out.read_text(encoding="utf-8")
    assert document.count('class="case ') == 2 and "Feature ablation" in document
    assert document.count('<table class="values">') == 2, "each table case lists its values in the file's units"
    from core.config import RunConfig
    from core.train import prepare_run_data

    splits = prepare_run_data(RunConfig.model_validate(RunStore(stored_home["home"]).get(run_id).config))
    raw = splits.x_test * splits.feature_std + splits.feature_mean  # wine's proline is in the hundreds
    assert raw[:, -1].min() > 100 and any(f"{v:.6g}" in document for v in raw[:, -1])


@pytest.mark.parametrize("args, message", [
    (["--method", "nope"], "unknown attribution method 'nope'; known: feature_ablation, gradient_shap, "
                           "input_x_gradient, integrated_gradients, layer_grad_cam, occlusion, saliency"),
    (["--method", "feature_ablation"], "feature_ablation does not apply to this image run; choose one of:"),
    (["--classes", "seven"], "unknown class 'seven'"),
    (["--n", "0"], "--n must be at least 1"),
])
def test_explain_refuses_bad_choices_with_exit_2(stored_home, tmp_path, capsys, args, message):
    out = tmp_path / "never.html"
    assert _explain(stored_home["image_run"], *args, "--out", str(out)) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_explain_an_unknown_run(stored_home, capsys):
    assert _explain("no-such-run") == 2
    assert "no run 'no-such-run'" in capsys.readouterr().err


def test_explain_carries_the_reviews_and_the_operating_point(copied_home, tmp_path, capsys):
    from core.analysis import set_review
    from core.analysis._gallery import error_cases
    from core.store import RunStore

    run_id = copied_home["image_run"]
    store = RunStore(copied_home["home"])
    case = int(error_cases(store.artifacts(run_id), store.metrics(run_id)["dataset"]["groups"],
                           correctness="wrong")["sample_id"].iloc[0])
    set_review(store, run_id, case, "ambiguous", "<i>smudged</i> top")
    store.write_annotation(run_id, "operating_point", {"class": 1, "threshold": 0.25, "prevalence": 0.03,
                                                        "cost_miss": 20.0})
    out = tmp_path / "report.html"
    assert _explain(run_id, "--wrong", "--n", "2", "--out", str(out), "--device", "cpu") == 0, capsys.readouterr().err
    document = out.read_text(encoding="utf-8")
    assert "Case reviews" in document and "&lt;i&gt;smudged&lt;/i&gt; top" in document and "<i>smudged" not in document
    assert "Saved operating point" in document and "0.25" in document


def test_explain_refuses_a_failed_run_or_a_damaged_file_before_loading_torch(copied_home):
    """Every refusal that needs only the store comes first: a failed run, or one whose metrics
    cannot be read, is answered in one line without the seconds of the torch import."""
    import os
    import subprocess
    import sys

    from core.store import RunStore

    home = copied_home["home"]
    RunStore(home).fail(copied_home["table_run"], "stopped")
    (home / "runs" / copied_home["image_run"] / "metrics.json").write_text("{not json")
    code = ("import sys; from core.cli import main\n"
            "for run in sys.argv[1:]:\n"
            "    assert main(['explain', run]) != 0\n"
            "assert 'torch' not in sys.modules, 'tailscope explain imported torch'")
    proc = subprocess.run([sys.executable, "-c", code, copied_home["table_run"], copied_home["image_run"]],
                          capture_output=True, text=True, env={**os.environ, "TAILSCOPE_HOME": str(home)}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2 and "only finished runs" in lines[0] and "metrics.json" in lines[1], lines
