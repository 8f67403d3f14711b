"""New cases through a finished run: the run's own transform and model, calibrated
probabilities, the batch's prior by EM after bias-corrected temperature scaling (BBSE beside
it), a balanced-softmax run estimated as well as a plain one, the operating point, and
every refusal."""

from __future__ import annotations

import csv
import io
import os
import zipfile

import numpy as np
import pandas as pd
import pytest

from conftest import make_run

CLASSES = ("healthy", "flu", "rare")
TRAIN_MIX = (0.6, 0.3, 0.1)


def patients(n: int, mix, seed: int, *, label: bool = True, prefix: str = "P") -> bytes:
    """A clinic export: an ID column, two measurements (one with gaps), a category with
    gaps, a ward that hints at the class, and the diagnosis."""
    rng = np.random.default_rng(seed)
    y = rng.choice(len(mix), size=n, p=mix)
    y[: len(mix)] = np.arange(len(mix))  # every class present
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["patient_id", "age", "marker", "sex", "ward", *(["diagnosis"] if label else [])])
    for i, c in enumerate(y):
        age = "" if rng.random() < 0.06 else f"{30 + 20 * c + rng.normal(0, 4):.1f}"
        marker = f"{3.0 * c + rng.normal(0, 0.7):.3f}"
        sex = "" if rng.random() < 0.05 else ("F" if rng.random() < 0.5 else "M")
        ward = "ABC"[c] if rng.random() < 0.7 else "ABC"[rng.integers(3)]
        w.writerow([f"{prefix}{i:05d}", age, marker, sex, ward, *([CLASSES[c]] if label else [])])
    return out.getvalue().encode()


def _png(rgb, size: int = 12) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), tuple(int(v) for v in rgb)).save(buf, format="PNG")
    return buf.getvalue()


def pictures_zip(seed: int = 0, per_class=(24, 12, 6)) -> bytes:
    rng = np.random.default_rng(seed)
    base = {"red": (200, 40, 40), "green": (40, 200, 40), "blue": (40, 40, 200)}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for (name, rgb), count in zip(base.items(), per_class):
            for i in range(count):
                z.writestr(f"{name}/{i:03d}.png", _png(np.clip(np.array(rgb) + rng.normal(0, 25, 3), 0, 255)))
    return buf.getvalue()


def _softmax(z):
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A network and a baseline on an uploaded table (gaps filled), and a small CNN on a ZIP."""
    from core.data import save_upload

    home = tmp_path_factory.mktemp("predict-home")
    previous = os.environ.get("TAILSCOPE_HOME")
    os.environ["TAILSCOPE_HOME"] = str(home)
    table = patients(360, TRAIN_MIX, seed=1)
    pictures = pictures_zip()
    source = save_upload(table, "clinic.csv")
    data = {"source": source, "label_column": "diagnosis", "missing": "fill"}
    train = {"epochs": 15, "batch_size": 64, "lr": 0.05, "min_steps": 0, "nc_every": 0}
    ids = {
        "table": make_run(home, {"name": "clinic mlp", "data": data, "model": {"name": "mlp", "hidden": 16},
                                 "loss": {"name": "ce"}, "train": train}, embeddings=False),
        "balanced": make_run(home, {"name": "clinic mlp bs", "data": data, "model": {"name": "mlp", "hidden": 16},
                                    "loss": {"name": "balanced_softmax"}, "train": train}, embeddings=False),
        "baseline": make_run(home, {"name": "clinic lr", "data": data, "model": {"name": "logistic_regression"},
                                    "loss": {"name": "ce"}, "train": {"epochs": 1}}, embeddings=False),
        "image": make_run(home, {"name": "colours cnn", "data": {"source": save_upload(pictures, "colours.zip")},
                                 "model": {"name": "small_cnn", "width": 8}, "loss": {"name": "ce"},
                                 "train": {"epochs": 3, "batch_size": 32, "lr": 0.05, "min_steps": 0,
                                           "nc_every": 0}}, embeddings=False),
    }
    try:
        yield {"home": home, "table_file": table, "picture_file": pictures, **ids}
    finally:
        if previous is None:
            os.environ.pop("TAILSCOPE_HOME", None)
        else:
            os.environ["TAILSCOPE_HOME"] = previous


def _store(runs):
    from core.store import RunStore

    return RunStore(runs["home"])


def _test_rows(store, run_id):
    """Row numbers (0-based, in file order) of the run's test split."""
    from core.config import RunConfig
    from core.data import load_data, stratified_split

    config = RunConfig.model_validate(store.get(run_id).config)
    dataset = load_data(config.data)
    return stratified_split(dataset.y, config.data.test_fraction, config.data.seed)[1]


def _same_as_the_run(store, run_id, cases, rows):
    """The batch's rows that are the run's test split get the run's own scores: the stored
    logits, recalibrated by the batch's temperature and biases; predicted, the raw argmax."""
    artifacts = store.artifacts(run_id)
    logits = np.asarray(artifacts.logits, dtype=np.float64)
    np.testing.assert_allclose(cases.probs[rows], _softmax(logits / cases.temperature + cases.bias), atol=1e-5)
    names = np.array(cases.class_names)
    assert (cases.frame["predicted"].to_numpy()[rows] == names[logits.argmax(1)]).all()


@pytest.mark.parametrize("which", ["table", "baseline"])
def test_table_rows_get_the_runs_own_predictions(runs, which):
    from core.predict import predict_new_cases

    store = _store(runs)
    cases = predict_new_cases(store, runs[which], "clinic.csv", runs["table_file"])
    rows = _test_rows(store, runs[which])
    _same_as_the_run(store, runs[which], cases, rows)
    assert list(cases.frame.columns) == ["patient_id", "predicted", *(f"p({c})" for c in CLASSES)]
    assert cases.frame["patient_id"].iloc[0] == "P00000"  # named by the run's own ID column
    assert cases.id_name == "patient_id"
    np.testing.assert_allclose(cases.probs.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(cases.adjusted_probs.sum(axis=1), 1.0, atol=1e-9)
    text = " ".join(cases.warnings)
    assert "'diagnosis'" in text and "'patient_id'" not in text  # the label is named as ignored; the ID names cases
    assert "filled" in text and "'age'" in text  # gaps are reported, not silently dropped
    if which == "baseline":
        assert "fitted again" in text


def _truth(mix, n, seed):
    labelled = pd.read_csv(io.BytesIO(patients(n, mix, seed=seed)))
    return np.bincount(labelled.diagnosis.map({c: i for i, c in enumerate(CLASSES)}), minlength=3) / n


def test_the_prior_of_a_shifted_batch_is_recovered_within_its_interval(runs):
    from core.predict import predict_new_cases

    mix = np.array([0.25, 0.3, 0.45])
    batch = patients(400, mix, seed=7, label=False, prefix="N")
    cases = predict_new_cases(_store(runs), runs["table"], "new.csv", batch)
    truth = _truth(mix, 400, 7)
    prior = cases.prior
    assert cases.estimator == "em" and cases.second_estimator == "bbse"
    for name, est in prior["estimates"].items():
        assert np.all(est["low"] <= est["prior"]) and np.all(est["prior"] <= est["high"]), name
        assert np.all(truth >= est["low"] - 0.03) and np.all(truth <= est["high"] + 0.03), (name, truth, est)
        assert abs(est["prior"].sum() - 1) < 1e-9
    np.testing.assert_allclose(prior["prior"], prior["estimates"]["em"]["prior"])
    # calibrated on the run's validation and test cases, whose mix is the reference
    assert cases.reference_splits == "validation and test" and cases.reference_cases > 100
    np.testing.assert_allclose(cases.reference_prior.sum(), 1.0)
    # re-adjusting to a prior with more rare cases calls more of them rare
    rare = cases.frame["predicted"].eq("rare").sum()
    assert cases.adjusted_frame["predicted"].eq("rare").sum() >= rare
    table = cases.prior_table()
    assert list(table["class"]) == list(CLASSES) and table["predicted"].sum() == 400
    assert set(table["estimator"]) == {"EM after BCTS"} and set(table["second estimator"]) == {"BBSE"}
    np.testing.assert_allclose(table["second estimate"], prior["estimates"]["bbse"]["prior"])
    out = pd.read_csv(io.BytesIO(cases.to_csv()))
    assert len(out) == 400 and "predicted at estimated prior" in out.columns and "p(rare) at estimated prior" in out
    assert set(out["estimated prior by"]) == {"EM after BCTS"}


@pytest.mark.parametrize("mix", [TRAIN_MIX, (0.3, 0.3, 0.4)], ids=["as in training", "shifted"])
def test_a_balanced_softmax_run_estimates_the_mix_as_well_as_a_plain_one(runs, mix):
    """The reported bug: a run whose loss already corrected for the training prior encodes a
    uniform prior, and EM started from the training prior pushed the rare class far up. Both
    runs are calibrated on their own labelled cases first, so both land on the truth."""
    from core.predict import predict_new_cases

    batch = patients(400, mix, seed=11, label=False, prefix="N")
    truth = _truth(mix, 400, 11)
    store = _store(runs)
    for which in ("table", "balanced"):
        cases = predict_new_cases(store, runs[which], "new.csv", batch)
        prior = cases.prior
        assert np.abs(prior["prior"] - truth).max() < 0.06, (which, truth, prior["prior"])
        assert np.all(truth >= prior["low"] - 0.01) and np.all(truth <= prior["high"] + 0.01), (which, truth, prior)
        assert not any("disagree" in w for w in cases.warnings), cases.warnings


def test_a_missing_column_is_named(runs):
    from core.data import DataError
    from core.predict import predict_new_cases

    frame = pd.read_csv(io.BytesIO(patients(30, TRAIN_MIX, seed=3, label=False))).drop(columns="marker")
    with pytest.raises(DataError, match="'marker'") as err:
        predict_new_cases(_store(runs), runs["table"], "new.csv", frame.to_csv(index=False).encode())
    assert str(err.value).startswith("new.csv:")


def test_malformed_rows_and_unusable_cells_are_named_by_row_and_column(runs):
    from core.data import DataError
    from core.predict import predict_new_cases

    lines = patients(30, TRAIN_MIX, seed=3, label=False).decode().splitlines()
    broken = "\n".join([*lines[:5], lines[5] + ",extra", *lines[6:]]).encode()
    with pytest.raises(DataError, match="line 6"):
        predict_new_cases(_store(runs), runs["table"], "new.csv", broken)
    frame = pd.read_csv(io.BytesIO(patients(30, TRAIN_MIX, seed=3, label=False)), dtype=str, keep_default_na=False)
    frame.loc[3, "marker"] = "high"
    frame.loc[4, "ward"] = "Z"
    cases = predict_new_cases(_store(runs), runs["table"], "new.csv", frame.to_csv(index=False).encode())
    text = " ".join(cases.warnings)
    assert "'marker' row 5 (not a number, e.g. 'high')" in text
    assert "'ward' row 6 (a category not seen in training, e.g. 'Z')" in text
    assert len(cases.frame) == 30


def test_the_saved_operating_point_is_applied(runs):
    from core.predict import predict_new_cases

    store = _store(runs)
    batch = patients(60, TRAIN_MIX, seed=4, label=False)
    plain = predict_new_cases(store, runs["table"], "new.csv", batch)
    store.write_annotation(runs["table"], "operating_point", {"class": 2, "threshold": 0.0, "prevalence": None})
    try:
        everyone = predict_new_cases(store, runs["table"], "new.csv", batch)
        store.write_annotation(runs["table"], "operating_point", {"class": 2, "threshold": 0.2})
        some = predict_new_cases(store, runs["table"], "new.csv", batch)
    finally:
        store.write_annotation(runs["table"], "operating_point", {})
    assert everyone.frame["predicted"].eq("rare").all()
    assert any("operating point" in w and "'rare'" in w for w in everyone.warnings)
    assert not any("operating point" in w for w in plain.warnings)
    was_rare = plain.frame["predicted"].eq("rare")
    now_rare = some.frame["predicted"].eq("rare")
    assert (now_rare | ~was_rare).all() and now_rare.sum() >= was_rare.sum()
    assert everyone.adjusted_frame.equals(plain.adjusted_frame)  # the prior view is the model's own


def test_pictures_and_npz_get_the_runs_own_predictions(runs):
    from core.config import RunConfig
    from core.predict import predict_new_cases
    from core.train import prepare_run_data

    store = _store(runs)
    cases = predict_new_cases(store, runs["image"], "colours.zip", runs["picture_file"])
    _same_as_the_run(store, runs["image"], cases, _test_rows(store, runs["image"]))
    assert cases.frame["file"].iloc[0] == "red/000.png"
    one = predict_new_cases(store, runs["image"], "x.png", _png((200, 40, 40)))
    assert list(one.frame["file"]) == ["x.png"] and one.probs.shape == (1, 3)
    splits = prepare_run_data(RunConfig.model_validate(store.get(runs["image"]).config))
    buf = io.BytesIO()
    np.savez(buf, x=splits.x_test)
    from_npz = predict_new_cases(store, runs["image"], "batch.npz", buf.getvalue())
    _same_as_the_run(store, runs["image"], from_npz, np.arange(len(splits.x_test)))


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize("files, needle", [
    ({"../escape.png": b"x"}, "'../escape.png' has an unsafe path"),
    ({"a/bomb.png": b"\0" * 3_000_000}, "decompression bomb"),
    ({"a/broken.png": b"not a picture"}, "'a/broken.png' is not a readable image"),
    ({"notes.txt": b"hello"}, "no pictures found"),
])
def test_hostile_or_empty_archives_are_refused_by_name(runs, files, needle):
    from core.data import DataError
    from core.predict import predict_new_cases

    with pytest.raises(DataError, match="^cases.zip: ") as err:
        predict_new_cases(_store(runs), runs["image"], "cases.zip", _zip(files))
    assert needle in str(err.value)


def test_wrong_kinds_of_batches_are_refused(runs):
    from core.data import DataError
    from core.predict import predict_new_cases

    store = _store(runs)
    buf = io.BytesIO()
    np.savez(buf, x=np.zeros((2, 3, 8, 8), np.float32))
    with pytest.raises(DataError, match=r"shape \(2, 3, 8, 8\).*\(N, 3, 32, 32\)"):
        predict_new_cases(store, runs["image"], "small.npz", buf.getvalue())
    with pytest.raises(DataError, match="unsupported file type"):
        predict_new_cases(store, runs["image"], "cases.csv", runs["table_file"])
    with pytest.raises(DataError, match="empty"):
        predict_new_cases(store, runs["table"], "new.csv", b"")


def test_cli_predict(runs, tmp_path, capsys):
    from core.cli import main

    batch = tmp_path / "new.csv"
    batch.write_bytes(patients(50, (0.3, 0.3, 0.4), seed=9, label=False))
    out = tmp_path / "predictions.csv"
    assert main(["predict", runs["table"], str(batch), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "estimated prior" in printed and "rare" in printed and "95% interval" in printed
    assert "EM after bias-corrected temperature scaling" in printed and "BBSE" in printed
    written = pd.read_csv(out)
    assert len(written) == 50 and {"patient_id", "predicted", "p(rare)", "predicted at estimated prior"} <= set(written)
    assert written["patient_id"].iloc[0] == "P00000"
    assert main(["predict", runs["table"], str(batch), "--json"]) == 0
    import json

    payload = json.loads(capsys.readouterr().out)
    assert payload["cases"] == 50 and [c["class"] for c in payload["classes"]] == list(CLASSES)
    assert payload["estimator"]["name"] == "em" and "bias-corrected temperature scaling" in payload["estimator"][
        "description"]
    assert payload["second_estimator"]["label"] == "BBSE"
    assert payload["calibration"]["splits"] == "validation and test" and len(payload["calibration"]["bias"]) == 3
    for row in payload["classes"]:
        assert row["estimator"] == "EM after BCTS" and row["low"] <= row["estimated prior"] <= row["high"]
        assert row["second estimator"] == "BBSE" and 0 <= row["second estimate"] <= 1
    missing = tmp_path / "short.csv"
    missing.write_text("age,sex\n40,F\n")
    assert main(["predict", runs["table"], str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tailscope: short.csv:") and "'marker'" in err and len(err.strip().splitlines()) == 1
    assert main(["predict", "no-such-run", str(batch)]) == 2
    assert main(["predict", runs["table"], str(tmp_path / "absent.csv")]) == 2
    assert "absent.csv" in capsys.readouterr().err
