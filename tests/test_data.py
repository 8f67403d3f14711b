"""Data layer: imbalance profiles, splits, built-ins and hostile uploads."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pandas as pd
import pytest

from core.data import (
    DATASETS, DataError, apply_imbalance_profile, class_statistics, guess_label_column, load_builtin,
    load_image_zip, load_npz, load_source, load_table, prepare_splits, profile_counts, save_upload,
)


# --- profiles -----------------------------------------------------------------------------

def test_exp_profile_reproduces_cifar10_lt_counts():
    # REFERENCE.md: CIFAR-10-LT with rho = 100 from 5,000 images per class
    counts = profile_counts([5000] * 10, "exp", ratio=100)
    assert counts.tolist() == [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    assert counts.sum() == 12406


def test_step_and_linear_profiles_by_hand():
    assert profile_counts([100] * 4, "step", ratio=10, mu=0.5).tolist() == [100, 100, 10, 10]
    assert profile_counts([100] * 5, "linear", ratio=5).tolist() == [100, 80, 60, 40, 20]
    assert profile_counts([7, 9, 3], "none").tolist() == [7, 9, 3]


def test_class_order_puts_the_head_where_asked():
    counts = profile_counts([100] * 3, "exp", ratio=100, order=[2, 0, 1])
    assert counts.tolist() == [10, 1, 100]
    with pytest.raises(ValueError, match=r"each class index 0\.\.2 once, got \[0, 0, 1\]"):
        profile_counts([100] * 3, "exp", ratio=10, order=[0, 0, 1])


def test_profile_caps_n_max_to_what_every_class_can_supply():
    counts = profile_counts([100, 100, 4], "exp", ratio=10)  # tail needs n_max/10 <= 4
    assert counts[2] <= 4 and counts[0] == 40 and np.all(counts <= [100, 100, 4])


def test_apply_profile_draws_exact_counts():
    y = np.repeat(np.arange(3), 50)
    keep = apply_imbalance_profile(y, [50, 10, 2], seed=1)
    assert np.bincount(y[keep]).tolist() == [50, 10, 2]


def test_prepare_splits_imbalances_train_only_and_standardises_tables():
    data = load_builtin("wine")
    splits = prepare_splits(data, profile="exp", ratio=5, seed=0)
    before = np.bincount(splits.y_test, minlength=3)
    assert splits.class_counts[0] / splits.class_counts[-1] == pytest.approx(5, rel=0.35)
    assert before.min() >= 10, "test split keeps the source's balance"
    np.testing.assert_allclose(splits.x_train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(splits.x_train.std(0), 1, atol=1e-4)
    again = prepare_splits(data, profile="exp", ratio=5, seed=0)
    np.testing.assert_array_equal(splits.x_val, again.x_val)


def test_validation_and_test_splits_keep_the_class_shares():
    data = load_builtin("digits")
    splits = prepare_splits(data, profile="exp", ratio=50, test_fraction=0.25, val_fraction=0.15, seed=3)
    source = np.bincount(data.y) / len(data.y)
    for part in (splits.y_val, splits.y_test):
        counts = np.bincount(part, minlength=10)
        np.testing.assert_allclose(counts, source * len(part), atol=1.0)  # stratified: within one sample
    n = len(data.y)
    assert len(splits.y_test) == pytest.approx(0.25 * n, abs=1)
    assert len(splits.y_val) + len(splits.y_test) + int(splits.counts_before.sum()) == n


def test_class_statistics_groups_with_tercile_fallback():
    stats = class_statistics([500, 300, 150, 60, 30, 10, 5])
    assert stats["groups"] == ["head", "head", "head", "medium", "medium", "tail", "tail"]
    assert stats["imbalance_ratio"] == 100
    small = class_statistics([9, 6, 3])  # all below 20: terciles
    assert small["groups"] == ["head", "medium", "tail"]


# --- built-ins ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", DATASETS.names())
def test_builtins_load_offline(name):
    d = load_builtin(name)
    assert len(d.x) == len(d.y) and d.num_classes >= 2
    assert d.x.dtype == np.float32 and np.isfinite(d.x).all()
    assert set(np.unique(d.y)) == set(range(d.num_classes))


def test_digits_is_an_image_set():
    d = load_builtin("digits")
    assert d.modality == "image" and d.x.shape[1:] == (1, 8, 8) and d.x.max() <= 1


# --- tables -------------------------------------------------------------------------------

def _csv(text: str) -> bytes:
    return text.strip().encode()


def test_csv_with_categoricals_is_one_hot_encoded():
    data = load_table(_csv("age,colour,label\n1,red,a\n2,blue,b\n3,red,a\n4,blue,b\n5,red,a\n6,blue,b"), "t.csv")
    assert data.feature_names == ("age", "colour=blue", "colour=red")
    assert data.class_names == ("a", "b") and data.x.shape == (6, 3)


def test_numeric_labels_sort_as_numbers():
    rows = "\n".join(f"{i},{lab}" for i, lab in enumerate([2, 10, 2, 10, 2, 10, 1, 1, 1]))
    data = load_table(_csv("x,target\n" + rows), "n.csv")
    assert data.class_names == ("1", "2", "10")


def test_parquet_roundtrip():
    frame = pd.DataFrame({"f": np.arange(9.0), "y": ["u", "v", "w"] * 3})
    buf = io.BytesIO()
    frame.to_parquet(buf)
    data = load_table(buf.getvalue(), "t.parquet", label_column="y")
    assert data.x[:, 0].tolist() == list(range(9))


@pytest.mark.parametrize("text, message", [
    ("a,b,label\n1,2,x\n3,oops,y\n5,6,x\n7,8,y\n1,1,x\n2,2,y", "'b' row 3 (not a number, e.g. 'oops')"),
    ("a,label\n1,x\n,y\n5,x\n7,y\n1,x\n2,y", "'a' row 3 (empty)"),
    ("a,label\n1,x\n2,\n5,x\n7,y\n1,y\n2,y", "row 3 has no value in label column 'label'"),
    ("a,label\n1,x\n2,x\n3,x", "only one class"),
    ("a,label\n1,x\n2,x\n3,x\n4,y", "fewer than 3 samples"),
    ("a,label\n1,x,9\n2,y\n3,x\n4,y", "line 2 has 3 fields but the header has 2"),
])
def test_bad_csv_rows_are_named(text, message):
    with pytest.raises(DataError) as exc:
        load_table(_csv(text), "bad.csv")
    assert str(exc.value).startswith("bad.csv:") and message in str(exc.value)


def test_label_column_guess():
    assert guess_label_column(["x", "Target", "z"]) == "Target"
    assert guess_label_column(["x", "z"]) is None, "names alone say nothing: no guess, never the last column"


# --- image ZIPs ---------------------------------------------------------------------------

def _png(value: int, size=(6, 6), mode="L") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size, value if mode == "L" else (value, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_image_zip_class_folders_resized():
    files = {f"cat/{i}.png": _png(10 * i, (6, 6)) for i in range(4)}
    files |= {f"dog/{i}.png": _png(200, (9, 5)) for i in range(3)}
    files["__MACOSX/cat/._0.png"] = b"junk"
    data = load_image_zip(_zip(files), "pets.zip", size=8)
    assert data.x.shape == (7, 1, 8, 8) and data.class_names == ("cat", "dog")
    assert np.bincount(data.y).tolist() == [4, 3]


def test_colour_images_keep_three_channels():
    files = {f"{c}/{i}.png": _png(100, mode="RGB") for c in "ab" for i in range(3)}
    assert load_image_zip(_zip(files), "rgb.zip", size=4).x.shape == (6, 3, 4, 4)


@pytest.mark.parametrize("files, message", [
    ({"../evil/1.png": b"x"}, "unsafe path"),
    ({"/abs/1.png": b"x"}, "unsafe path"),
    ({"loose.png": _png(1)}, "not inside a class folder"),
    ({"a/1.png": b"not an image", "a/2.png": _png(1), "a/3.png": _png(1)}, "'a/1.png' is not a readable image"),
    ({"a/readme.txt": b"hi"}, "no images found"),
])
def test_hostile_or_broken_zips_are_refused(files, message):
    with pytest.raises(DataError, match=message):
        load_image_zip(_zip(files), "up.zip")


def test_decompression_bomb_is_refused():
    bomb = _zip({"a/1.png": b"\0" * 5_000_000})
    with pytest.raises(DataError, match="decompression bomb"):
        load_image_zip(bomb, "bomb.zip")


# --- npz ----------------------------------------------------------------------------------

def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_npz_with_medmnist_names_and_test_split():
    rng = np.random.default_rng(0)
    data = load_npz(_npz(train_images=rng.integers(0, 255, (12, 5, 5), dtype=np.uint8),
                         train_labels=np.repeat([0, 1, 2], 4)[:, None],
                         test_images=rng.integers(0, 255, (6, 5, 5), dtype=np.uint8),
                         test_labels=np.repeat([0, 1, 2], 2)[:, None]), "med.npz")
    assert data.x.shape == (12, 1, 5, 5) and data.x.max() <= 1
    assert data.x_test.shape == (6, 1, 5, 5) and data.y_test.tolist() == [0, 0, 1, 1, 2, 2]
    splits = prepare_splits(data, seed=0)
    assert len(splits.y_test) == 6, "a shipped test split is kept as given"


def test_npz_refuses_pickled_objects_and_missing_arrays():
    with pytest.raises(DataError, match="holds Python objects, which are not loaded for safety"):
        load_npz(_npz(x_train=np.array([{"a": 1}] * 6, dtype=object), y_train=np.arange(6) % 2), "obj.npz")
    with pytest.raises(DataError, match="no y_train or train_labels"):
        load_npz(_npz(x_train=np.zeros((4, 2))), "half.npz")
    with pytest.raises(DataError, match="3 training inputs but 4 labels"):
        load_npz(_npz(x_train=np.zeros((3, 2)), y_train=np.zeros(4)), "mismatch.npz")


def test_uploads_are_content_addressed(tmp_path, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    raw = _csv("a,label\n1,x\n2,y\n3,x\n4,y\n5,x\n6,y")
    source = save_upload(raw, "../../weird name.csv")
    assert source == save_upload(raw, "../../weird name.csv")
    assert "/" not in source.removeprefix("upload:")
    assert load_source(source).class_names == ("x", "y")
    with pytest.raises(DataError, match="not a valid upload"):
        load_source("upload:../tailscope.db")
    with pytest.raises(DataError, match="no longer stored"):
        load_source("upload:0000-gone.csv")
    with pytest.raises(DataError, match="is empty"):
        save_upload(b"", "e.csv")
