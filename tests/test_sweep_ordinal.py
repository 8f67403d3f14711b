"""The sweep builder offers the models for ordered stages (separate regressions, proportional
odds, PRESTO) when the data's label is ordinal, and compares them as an axis of the sweep."""

from __future__ import annotations

import yaml

from conftest import open_at_address, shown
from core.jobs import SweepChoices, expand_sweep, load_sweep, sweep_from_choices

ORDINAL_MODELS = ["separate_logits", "proportional_odds", "presto"]
STAGES = {"source": "ordinal_stages", "params": {"samples": 600}}


def test_models_to_compare_become_an_axis_and_every_cell_can_run():
    raw = sweep_from_choices(SweepChoices(data=STAGES, model={"name": "presto"}, models=ORDINAL_MODELS,
                                          train={"epochs": 1}, losses=["ce"], seeds=2))
    spec = load_sweep(raw)
    assert spec.grid == {"model.name": ORDINAL_MODELS} and raw["model"] == {"name": "separate_logits"}
    cells, problems = expand_sweep(spec)
    assert not problems and sorted(c.config.model.name for c in cells) == sorted(ORDINAL_MODELS)
    one = sweep_from_choices(SweepChoices(data=STAGES, model={"name": "presto"}, models=["presto"],
                                          train={"epochs": 1}, losses=["ce"], ratios=[2, 5]))
    assert one["model"] == {"name": "presto"} and "model.name" not in one["grid"]


def test_the_builder_offers_the_ordinal_models_only_for_ordered_stages(empty_home):
    at = open_at_address("sweeps")
    at.selectbox(key="sweeps.build.data").set_value("wine").run()
    assert not [m for m in at.multiselect if m.key == "sweeps.build.models"]
    plain = at.selectbox(key="sweeps.build.model").options
    assert plain and not any("PRESTO" in shown(o) or "proportional odds" in shown(o).lower() for o in plain)

    at.selectbox(key="sweeps.build.data").set_value("ordinal_stages").run()
    assert not at.exception, [e.value for e in at.exception]
    models = at.multiselect(key="sweeps.build.models")
    assert list(models.value) == ORDINAL_MODELS, models.value
    from core.registry import plugin_label

    assert plugin_label("model", "mlp") in [shown(o) for o in models.options], "other table models stay on offer"
    assert at.multiselect(key="sweeps.build.loss.ordinal").value == ["ce"], "the models, not losses, are compared"
    raw = yaml.safe_load(next(c for c in at.get("code") if "grid:" in c.proto.code_text).proto.code_text)
    assert raw["grid"] == {"model.name": ORDINAL_MODELS} and raw["data"]["source"] == "ordinal_stages"
    text = " ".join(shown(m.value) for m in at.markdown)
    assert "3 combinations × 3 trainings each = 9 trainings." in text
    assert not at.warning, [w.value for w in at.warning]
