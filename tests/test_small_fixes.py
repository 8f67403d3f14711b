"""The smaller items of issue 24: words for settings and reports, the corrects-twice note,
Geometry's sample in the file's units, the sweep map's legend clear of the mode bar, and
Data page widgets whose values the app sets taking no second default."""

from __future__ import annotations

import numpy as np

from core.glossary import setting_value


def test_setting_values_read_as_words():
    assert setting_value("method", "ldam_drw") == "LDAM margin loss + DRW"
    assert setting_value("method", "hist_gradient_boosting") == "Gradient boosting (baseline)"
    assert setting_value("method", "weighted_ce") == "Class-weighted cross-entropy"
    assert setting_value("method", "upsample_cooldown") == "upsample cooldown"
    assert setting_value("data.imbalance.ratio", "100") == "100 : 1"
    assert setting_value("anything", None) == "—" and setting_value("anything", "None") == "—"


def test_sweep_cells_are_named_in_words():
    from core.jobs import expand_sweep, load_sweep

    spec = load_sweep({"name": "s", "data": {"source": "wine"}, "model": {"name": "mlp"},
                       "grid": {"method": {"ce": {}, "ldam_drw": {"loss.name": "ldam", "loss.drw_epoch": 1}},
                                "data.imbalance.ratio": [10], "train.lr": [0.1]}})
    names = [c.config.name for c in expand_sweep(spec)[0]]
    # the model is the same in every cell: the sweep's name and the method say the cell
    assert names == ["s · Cross-entropy (plain) · imbalance 10 : 1 · learning rate 0.1",
                     "s · LDAM margin loss + DRW · imbalance 10 : 1 · learning rate 0.1"]
    mixed = load_sweep({"name": "s", "data": {"source": "wine"}, "model": {"name": "mlp"},
                        "grid": {"method": {"ce": {}, "gb": {"model.name": "hist_gradient_boosting"}}}})
    assert [c.config.name for c in expand_sweep(mixed)[0]] == ["s · MLP · Cross-entropy (plain)",
                                                               "s · Gradient boosting (baseline)"], \
        "where the model changes, each cell says its model, by its abbreviation"
    assert [c.label for c in expand_sweep(spec)[0]][1] == "method=ldam_drw, data.imbalance.ratio=10, train.lr=0.1", \
        "the cell's settings keep the config's names (CLI, JSON)"


def test_builtin_datasets_and_the_report_speak_words():
    from core.data import source_label
    from core.viz import error_report_html

    assert source_label("digits") == "Handwritten digits" and source_label("upload:0123-t.csv") == "t.csv"
    html = error_report_html([], title="t", run_name="r", method="integrated_gradients", class_names=["a"])
    assert "Integrated gradients" in html and "integrated_gradients" not in html


def test_gallery_neighbour_headers_are_words():
    from app.gallery_cards import NEIGHBOUR_HEADERS

    assert set(NEIGHBOUR_HEADERS) == {"train_row", "distance"}
    assert all("_" not in v for v in NEIGHBOUR_HEADERS.values())


def test_tau_on_a_loss_that_already_corrects_says_it_corrects_twice():
    from app.playground_panels import corrects_twice_note

    assert "Corrects twice" in corrects_twice_note("logit_adjusted", 1.0)
    assert "Balanced softmax" in corrects_twice_note("balanced_softmax", 0.5)
    assert corrects_twice_note("ce", 1.0) is None and corrects_twice_note("logit_adjusted", 0.0) is None


def test_geometry_sample_shows_the_file_units():
    from sklearn.datasets import load_wine

    from app.geometry_view import sample_values
    from core.config import DataConfig
    from core.data import load_data, split_data

    data = DataConfig.model_validate({"source": "wine"})
    splits = split_data(load_data(data), data)
    table = sample_values(splits, splits.x_test[0])
    values = np.array([float(v) for v in table["value"]])
    raw = load_wine().data
    assert np.abs(raw - values).max(axis=1).min() < 1e-3 * raw.max(), "the sample is a row of the file, unscaled"
    assert not np.allclose(values, splits.x_test[0])


def test_sweep_map_legend_sits_below_the_chart():
    import pandas as pd

    from core.viz import sweep_heatmap_figure

    table = pd.DataFrame({"loss.name": ["a", "b"], "status": ["done", "done"], "runs done": [2, 2], "runs": [2, 2],
                          "experiment": ["e1", "e2"], "balanced_accuracy": [0.5, 0.6],
                          "balanced_accuracy_low": [0.4, 0.5], "balanced_accuracy_high": [0.6, 0.7]})
    fig = sweep_heatmap_figure(table, "loss.name", None, "balanced_accuracy", reference=["loss.name", "a"])
    assert fig.layout.legend.yref == "container" and fig.layout.legend.y < 0.1 and fig.layout.legend.yanchor == "bottom"


def test_data_page_widgets_the_app_sets_take_their_default_from_the_session(empty_home, monkeypatch):
    """Streamlit warns when a widget has a default and its key was also set from code (a new
    upload sets the profile; "Use my last profile" sets profile and ratio)."""
    import streamlit.elements.lib.policies as policies

    from conftest import open_at_address

    flagged, original = [], policies.check_session_state_rules

    def every_time(default_value, key, writes_allowed=True):
        if key and default_value is not None and policies.get_session_state().is_new_state_value(key):
            flagged.append(key)
        return original(default_value, key, writes_allowed)

    monkeypatch.setattr(policies, "check_session_state_rules", every_time)
    at = open_at_address("data")
    at.session_state["data.profile"], at.session_state["data.ratio"] = "exp", 30.0
    at.run()
    assert not at.exception and at.radio(key="data.profile").value == "exp"
    assert at.slider(key="data.ratio").value == 30.0
    assert not {"data.profile", "data.ratio", "data.mu"} & set(flagged), flagged


def test_a_wide_grid_shows_the_columns_that_fit_and_names_the_rest():
    import pandas as pd

    from app.fit_tables import columns_that_fit

    frame = pd.DataFrame({"patient_id": ["P-00001"], "true": ["sepsis"], "age": [71], "creatinine": [1.234567],
                          "ferritin": ["n/a"], "a long column name": [1.0]})
    first = ["patient_id", "true"]  # 12 + 8 characters with their padding
    # age 5, creatinine 12 ("1.235" shown shorter than its header), ferritin 10, then 20
    assert columns_that_fit(frame, first, ["age", "creatinine", "ferritin", "a long column name"], budget=50) == (
        ["age", "creatinine", "ferritin"], ["a long column name"])
    assert columns_that_fit(frame, first, ["age", "creatinine", "ferritin"], budget=30) == (
        ["age"], ["creatinine", "ferritin"])
    assert columns_that_fit(frame, first, ["a long column name", "age"], budget=10)[0] == ["a long column name"], \
        "the first value is shown even when nothing fits"
