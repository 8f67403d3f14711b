"""Multi-label uploads: separated label columns, 0/1 label columns, `.npz` with a 2-D y; every
malformed case refused in one line naming file, row and column."""

from __future__ import annotations

import io

import numpy as np
import pytest

from core.config import DataConfig, RunConfig, is_multilabel_data
from core.data import (
    DataError, detect_label_separator, load_multilabel_data, load_multilabel_upload, prepare_multilabel_run_data,
    save_upload,
)
import pandas as pd


def _separated_csv(n=40, sep="|") -> bytes:
    """Rows of two features and labels: 'a' on every row, 'b' on every second, 'c' on every fifth."""
    lines = ["age,weight,findings"]
    for i in range(n):
        labels = ["a"] + ["b"] * (i % 2 == 0) + ["c"] * (i % 5 == 0)
        lines.append(f"{30 + i % 17},{60 + i % 7},\"{sep.join(labels)}\"")
    return ("\n".join(lines) + "\n").encode()


def _columns_csv(rows) -> bytes:
    return ("x1,x2,fever,cough\n" + "\n".join(rows) + "\n").encode()


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_separated_column_becomes_a_label_matrix_counted_by_hand():
    ds = load_multilabel_upload(_separated_csv(), "cases.csv", separator="|", label_column="findings")
    assert ds.label_names == ("a", "b", "c")  # most common first
    assert ds.y.shape == (40, 3)
    assert ds.y.sum(axis=0).tolist() == [40, 20, 8]
    assert ds.y[0].tolist() == [1, 1, 1] and ds.y[1].tolist() == [1, 0, 0]
    assert ds.x.shape == (40, 2) and ds.feature_names == ("age", "weight")


@pytest.mark.parametrize("sep", ["|", ";", ","])
def test_separator_is_detected_inside_the_values(sep):
    assert detect_label_separator(pd.Series(["a", f"a{sep}b", "c"])) == sep
    assert detect_label_separator(pd.Series(["a", "b", "a"])) is None
    assert detect_label_separator(pd.Series(["a|", "b"])) is None  # a trailing bar splits into one label only


def test_zero_one_columns_with_blank_na_and_question_mark_as_unknown():
    rows = ["1,2,1,0", "2,3,1,", "3,4,0,1", "4,5,NA,1", "5,6,1,?", "6,7,0,1"]
    ds = load_multilabel_upload(_columns_csv(rows), "c.csv", columns=["fever", "cough"])
    assert ds.label_names == ("cough", "fever")  # 3 present each: ties by name
    fever = ds.y[:, ds.label_names.index("fever")]
    cough = ds.y[:, ds.label_names.index("cough")]
    np.testing.assert_array_equal(fever, [1, 1, 0, np.nan, 1, 0])
    np.testing.assert_array_equal(cough, [0, np.nan, 1, 1, np.nan, 1])
    assert ds.x.shape == (6, 2)


@pytest.mark.parametrize("rows, words", [
    (["1,2,1,0", "2,3,1,1", "3,4,maybe,1", "4,5,0,1"], ["c.csv", "row 4", "'fever'", "'maybe'"]),
    (["1,2,1,0", "2,3,,", "3,4,1,1", "4,5,0,1"], ["c.csv", "row 3", "no label at all"]),
    (["1,2,1,0", "2,3,1,1", "3,4,1,0", "4,5,0,0"], ["c.csv", "'cough'", "present in 1 row", "row 3"]),
    (["1,2,1,0", "2,3,1,2", "3,4,0,1", "4,5,0,1"], ["row 3", "'cough'", "holds 2;"]),
])
def test_malformed_label_columns_are_refused_in_one_line(rows, words):
    with pytest.raises(DataError) as err:
        load_multilabel_upload(_columns_csv(rows), "c.csv", columns=["fever", "cough"])
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_separated_column_refuses_an_empty_cell_and_a_label_seen_once():
    bad = _separated_csv().replace(b'"a|b|c"', b'""', 1)
    with pytest.raises(DataError, match=r"cases.csv: row 2 has no label at all in label column 'findings'"):
        load_multilabel_upload(bad, "cases.csv", separator="|", label_column="findings")
    once = _separated_csv().replace(b'"a|b|c"', b'"a|b|c|zebra"', 1)
    with pytest.raises(DataError, match=r"label 'zebra' is present in 1 row, in row 2"):
        load_multilabel_upload(once, "cases.csv", separator="|", label_column="findings")


def test_hostile_tables_are_refused():
    with pytest.raises(DataError, match="empty"):
        load_multilabel_upload(b"", "c.csv", columns=["fever", "cough"])
    with pytest.raises(DataError, match="no column named 'pain'"):
        load_multilabel_upload(_columns_csv(["1,2,1,0", "2,3,1,1"]), "c.csv", columns=["fever", "pain"])
    with pytest.raises(DataError, match="free text"):
        notes = "note,fever,cough\n" + "\n".join(
            f"patient said this and that at visit number {i} with words {i * 7},{i % 2},{(i + 1) % 2}"
            for i in range(30))
        load_multilabel_upload(notes.encode(), "n.csv", columns=["fever", "cough"])
    with pytest.raises(DataError, match="multi-label uploads are tables"):
        load_multilabel_upload(b"{}", "p.json")
    with pytest.raises(DataError, match="not a readable ZIP archive"):
        load_multilabel_upload(b"PK\x03\x04", "p.zip")


def test_npz_with_a_2d_y_minus_one_and_nan_unknown():
    y = np.array([[1, 0, 1], [1, -1, 0], [0, 1, 1], [1, 1, np.nan], [1, 0, 0]])
    ds = load_multilabel_upload(_npz(x=np.arange(15.0).reshape(5, 3), y=y,
                                     label_names=np.array(["p", "q", "r"])), "d.npz")
    assert ds.label_names == ("p", "q", "r")  # p: 4 present, q and r: 2 each (ties by name)
    np.testing.assert_array_equal(ds.y[:, 1], [0, np.nan, 1, 1, 0])
    np.testing.assert_array_equal(ds.y[:, 2], [1, 0, 1, np.nan, 0])
    assert ds.modality == "tabular"


@pytest.mark.parametrize("arrays, words", [
    ({"x": np.zeros((4, 2)), "y": np.array([0, 1, 1, 0])}, "2-D array"),
    ({"x": np.zeros((3, 2)), "y": np.array([[1, 0], [1, 2], [0, 1]])}, "sample 1, label column 1 holds 2"),
    ({"x": np.zeros((3, 2)), "y": np.ones((4, 2))}, "3 inputs but 4 label rows"),
    ({"x": np.zeros((3, 2)), "y": np.array([["a", "b"]] * 3)}, "type"),
    ({"x": np.zeros((3, 2)), "y": np.ones((3, 2)), "x_test": np.zeros((1, 2)), "y_test": np.ones((1, 2))}, "x_test"),
    ({"x": np.array([None] * 3, dtype=object), "y": np.ones((3, 2))}, "Python objects"),
])
def test_malformed_npz_is_refused(arrays, words):
    with pytest.raises(DataError, match=words):
        load_multilabel_upload(_npz(**arrays), "d.npz")


def test_config_marks_an_upload_multilabel_and_checks_the_spec():
    data = DataConfig(source="upload:abc-c.csv", multilabel_upload={"columns": ["fever", "cough"]})
    assert data.multilabel and is_multilabel_data(data.model_dump(mode="json"))
    assert not is_multilabel_data({"source": "upload:abc-c.csv"})
    for bad, words in (({"source": "digits", "multilabel_upload": {"separator": "|"}}, "uploaded files only"),
                       ({"source": "upload:abc-c.csv", "multilabel_upload": {}}, "one of the two"),
                       ({"source": "upload:abc-d.npz", "multilabel_upload": {"separator": "|"}}, "2-D y"),
                       ({"source": "upload:abc-c.csv", "label_column": "x", "multilabel_upload": {"columns": ["a", "b"]}},
                        "remove label_column")):
        with pytest.raises(ValueError, match=words):
            DataConfig(**bad)
    run = RunConfig(data={"source": "upload:abc-c.csv", "multilabel_upload": {"separator": "|"}},
                    loss={"name": "asl"})
    assert run.loss.name == "asl"  # a multi-label loss is taken on such data
    with pytest.raises(ValueError, match="single-label"):
        RunConfig(data={"source": "upload:abc-c.csv", "multilabel_upload": {"separator": "|"}}, loss={"name": "ce"})


def test_stored_upload_prepares_standardised_splits(empty_home):
    source = save_upload(_separated_csv(200), "cases.csv")
    data = DataConfig(source=source, label_column="findings", multilabel_upload={"separator": "|"})
    assert load_multilabel_data(data).num_labels == 3
    run = prepare_multilabel_run_data(data)
    assert len(run.y_train) + len(run.y_val) + len(run.y_test) == 200
    np.testing.assert_allclose(run.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(run.x_train.std(axis=0), 1, atol=1e-4)
    assert run.x_test.dtype == np.float32 and run.label_names == ("a", "b", "c")


def test_an_uploaded_multilabel_table_trains_and_stores_per_label_numbers(empty_home):
    from conftest import make_run
    from core.store import RunStore

    source = save_upload(_separated_csv(300), "cases.csv")
    run_id = make_run(empty_home, {"name": "upload", "loss": {"name": "db"},
                                   "data": {"source": source, "label_column": "findings",
                                            "multilabel_upload": {"separator": "|"}},
                                   "train": {"epochs": 2, "min_steps": 10, "batch_size": 64, "device": "cpu"}},
                      embeddings=False)
    metrics = RunStore(empty_home).metrics(run_id)
    assert metrics["multilabel"] is True
    assert [row["label"] for row in metrics["per_label"]] == ["a", "b", "c"]


def test_predict_gives_each_finding_a_probability_and_the_runs_decision(empty_home, capsys, tmp_path):
    """The run's own test rows, given back as new cases, get the stored test logits' sigmoid
    and the decisions at the thresholds stored in metrics.json."""
    import json

    from conftest import make_run
    from core.cli import main
    from core.data import load_multilabel_data, prepare_multilabel_splits
    from core.store import RunStore

    csv = _separated_csv(300)
    source = save_upload(csv, "cases.csv")
    data = {"source": source, "label_column": "findings", "multilabel_upload": {"separator": "|"}}
    run_id = make_run(empty_home, {"name": "upload", "data": data,
                                   "train": {"epochs": 2, "min_steps": 10, "batch_size": 64, "device": "cpu"}},
                      embeddings=False)
    store = RunStore(empty_home)
    config = DataConfig(**data)
    splits = prepare_multilabel_splits(load_multilabel_data(config).y, test_size=config.test_fraction,
                                       val_size=config.val_fraction, profile="none", ratio=config.imbalance.ratio,
                                       mu=config.imbalance.mu, hide_share=0.0, seed=config.seed)
    lines = csv.decode().splitlines()
    batch = tmp_path / "new.csv"
    batch.write_text("\n".join([lines[0].rsplit(",", 1)[0]] + [lines[1 + i].rsplit(",", 1)[0] for i in splits.test]))
    assert main(["predict", run_id, str(batch), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    art, metrics = store.artifacts(run_id), store.metrics(run_id)
    expected = 1 / (1 + np.exp(-art.logits))
    got = np.array([[row["probabilities"][n] for n in ("a", "b", "c")] for row in out["predictions"]])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    thresholds = np.array([r["threshold"] for r in sorted(metrics["per_label"], key=lambda r: r["label_index"])])
    decisions = np.array([[row["decisions"][n] for n in ("a", "b", "c")] for row in out["predictions"]])
    assert (decisions == (got >= thresholds)).all()
    assert [f["label"] for f in out["findings"]] == ["a", "b", "c"] and out["multilabel"] is True


def test_predict_on_a_builtin_run_takes_an_npz_of_its_rows(empty_home, tmp_path):
    from conftest import make_run
    from core.data import load_multilabel_data, prepare_multilabel_splits
    from core.predict import predict_multilabel_cases
    from core.store import RunStore

    data = {"source": "multilabel_table", "params": {"n_samples": 200, "n_features": 5, "n_labels": 4}}
    run_id = make_run(empty_home, {"name": "builtin", "data": data,
                                   "train": {"epochs": 1, "min_steps": 5, "batch_size": 64, "device": "cpu"}},
                      embeddings=False)
    config = DataConfig(**data)
    dataset = load_multilabel_data(config)
    splits = prepare_multilabel_splits(dataset.y, test_size=config.test_fraction, val_size=config.val_fraction,
                                       profile="none", ratio=10.0, mu=0.5, hide_share=0.0, seed=config.seed)
    store = RunStore(empty_home)
    cases = predict_multilabel_cases(store, run_id, "new.npz", _npz(x=dataset.x[splits.test]))
    np.testing.assert_allclose(cases.probs, 1 / (1 + np.exp(-store.artifacts(run_id).logits)), atol=1e-5)
    assert list(cases.frame.columns[:3]) == ["row", "p(finding 1)", "finding 1"]
    with pytest.raises(DataError, match=r"shape \(3, 2\); the model takes \(N, 5\)"):
        predict_multilabel_cases(store, run_id, "bad.npz", _npz(x=np.zeros((3, 2))))
