"""Real data as people bring it: exported tables with IDs, gaps and odd values, malformed files.

Every case builds its file here and asserts the exact outcome: loaded with the right roles,
or refused with a short message that names the file and the problem, in words a person reads
(no Python internals, at most ~300 characters).
"""

from __future__ import annotations

import codecs
import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from core.config import DataConfig
from core.data import (
    DataError, feature_table, in_original_units, load_builtin, load_data, load_image_zip, load_npz, load_table,
    profile_table, read_table, save_upload, split_data, suggest_label,
)

FORBIDDEN = ("np.str_", "Error", "Exception", "Traceback", "<class", "errno", "pickle")


def _readable(message: str, filename: str) -> None:
    assert message.startswith(f"{filename}:"), message
    assert len(message) <= 300, (len(message), message)
    for word in FORBIDDEN:
        assert word not in message, (word, message)


def _refused(call, filename: str, *needles: str) -> str:
    with pytest.raises(DataError) as err:
        call()
    message = str(err.value)
    _readable(message, filename)
    for needle in needles:
        assert needle in message, (needle, message)
    return message


def patients_csv(rows: int = 120, gaps: bool = True) -> bytes:
    """An exported patient table: an ID, numbers with gaps, categories, free text, a date,
    a constant column and a diagnosis from common to rare."""
    rng = np.random.default_rng(0)
    dx = np.array(["healthy"] * 6 + ["flu"] * 3 + ["sepsis"])[np.arange(rows) % 10]
    lines = ["patient_id,age,sex,cholesterol,site,notes,admitted,diagnosis,export"]
    for i in range(rows):
        chol = "" if gaps and i % 17 == 3 else f"{180 + 30 * (dx[i] != 'healthy') + rng.normal(0, 5):.1f}"
        lines.append(f"P{i:05d},{20 + i % 60},{'FM'[i % 2]},{chol},{['north', 'south', 'east'][i % 3]},"
                     f"seen on ward {i % 7} for {i % 11} days,2023-{1 + i % 12:02d}-{1 + i % 28:02d},{dx[i]},v2")
    return ("\n".join(lines) + "\n").encode()


# --- 1. column roles ----------------------------------------------------------------------

def test_each_column_gets_a_role_and_a_reason():
    raw = read_table(patients_csv(), "patients.csv")
    profile = profile_table(raw.frame, "patients.csv")
    roles = {c.name: c.role for c in profile.columns}
    assert roles == {"patient_id": "id", "age": "numeric", "sex": "categorical", "cholesterol": "numeric",
                     "site": "categorical", "notes": "text", "admitted": "date", "diagnosis": "label",
                     "export": "constant"}
    reasons = {c.name: c.reason for c in profile.columns}
    assert reasons["patient_id"] == "unique in 100% of rows"
    assert reasons["export"] == "the same value ('v2') in every filled row"
    assert reasons["sex"] == "2 categories: 'F', 'M'"
    assert reasons["admitted"].startswith("dates from 2023-01-01")
    assert profile.label == "diagnosis" and profile.label_guessed
    assert profile.label_reason == "named like a label, with 3 classes"
    assert [c.name for c in profile.left_out] == ["patient_id", "export"]
    assert profile.column("notes").used, "free text is a feature, through the text encoder"


def test_id_free_text_and_constant_columns_are_left_out_of_the_features():
    data = load_table(patients_csv(), "patients.csv", missing="fill")
    assert data.feature_names == ("age", "sex=F", "sex=M", "cholesterol", "site=east", "site=north", "site=south",
                                  "admitted")
    assert not any(name.startswith(("patient_id", "notes", "export")) for name in data.feature_names)
    assert [b.name for b in data.columns] == ["age", "sex", "cholesterol", "site", "admitted"]
    assert data.x[:, -1].min() == pytest.approx((pd.Timestamp("2023-01-01") - pd.Timestamp("1970-01-01")).days)


def test_numeric_ids_are_ids_and_whole_number_measurements_are_not():
    rows = "\n".join(f"{1000 + i},{i * 7 % 50},{'ab'[i % 2]}" for i in range(40))
    profile = profile_table(read_table(f"record_no,heart_rate,label\n{rows}".encode(), "t.csv").frame, "t.csv")
    assert profile.column("record_no").role == "id"
    assert profile.column("heart_rate").role == "numeric"


def test_the_user_changes_roles():
    raw = read_table(patients_csv(gaps=False), "patients.csv")
    data = load_table(patients_csv(gaps=False), "patients.csv",
                      roles={"age": "categorical", "site": "ignore", "export": "categorical"})
    assert "age=20" in data.feature_names and not any(n.startswith("site") for n in data.feature_names)
    assert "export=v2" in data.feature_names
    profile = profile_table(raw.frame, "patients.csv", roles={"site": "ignore"})
    assert profile.column("site").reason.startswith("set by you (looked like: category")
    assert profile.overrides == {"site": "ignore"}
    _refused(lambda: load_table(patients_csv(), "patients.csv", roles={"weight": "numeric"}), "patients.csv",
             "column_roles names 'weight', not in the file")


def test_a_free_text_column_forced_to_categories_hits_the_feature_limit_with_its_name():
    rows = "\n".join(f"note number {i} about the visit,{i % 5},{'ab'[i % 2]}" for i in range(2500))
    _refused(lambda: load_table(f"notes,x,label\n{rows}".encode(), "notes.csv", roles={"notes": "categorical"}),
             "notes.csv", "'notes' alone gives 2,500 (one per value): set its role to ID-like or left out")


def test_the_label_guess_prefers_a_label_name_then_the_most_unequal_category_never_a_measurement():
    rng = np.random.default_rng(1)
    n = 200
    frame = pd.DataFrame({"group": np.where(np.arange(n) % 2, "a", "b"),
                          "finding": np.array(["common"] * 30 + ["mid"] * 8 + ["rare"] * 2)[np.arange(n) % 40],
                          "measure": rng.normal(size=n)})
    assert suggest_label(frame) == ("finding", "no column is named like a label; the most unequal text column, "
                                               "3 classes, 15 : 1")
    assert suggest_label(frame.assign(Outcome=frame["group"]))[0] == "Outcome"
    only_numbers = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    assert suggest_label(only_numbers) == (None, "no column has a few repeated values that could name classes")


def test_an_unknown_label_name_with_a_continuous_last_column_is_not_guessed_as_the_label():
    rng = np.random.default_rng(2)
    rows = "\n".join(f"{['benign', 'benign', 'benign', 'malignant'][i % 4]},{rng.normal():.6f}" for i in range(400))
    data = load_table(f"tumour_kind,score\n{rows}".encode(), "real.csv")
    assert data.class_names == ("benign", "malignant") and data.feature_names == ("score",)


# --- 2. missing and non-finite values -----------------------------------------------------

def test_gaps_are_refused_by_default_naming_every_column_and_the_count():
    text = patients_csv().decode().replace(",north,", ",,", 4)
    message = _refused(lambda: load_table(text.encode(), "patients.csv"), "patients.csv",
                       "11 cells cannot be used", "'cholesterol' rows 5, 22 and 5 more (empty)",
                       "'site' rows 2, 5 and 2 more")
    assert "drop" in message and "fill" in message


def test_drop_removes_exactly_the_rows_with_a_gap():
    data = load_table(patients_csv(), "patients.csv", missing="drop")
    assert len(data.y) == 120 - 7 and not np.isnan(data.x).any()


def test_fill_uses_the_training_split_only():
    rows = ["row,x,colour,label"]
    for i in range(200):
        x = "" if i % 10 == 0 else str(i * i)  # skewed: the median depends on which rows are in training
        colour = "" if i % 20 == 5 else ("red" if i % 3 else "blue")
        rows.append(f"{i},{x},{colour},{'ab'[i % 2]}")
    data = load_table(("\n".join(rows)).encode(), "gaps.csv", roles={"row": "numeric"}, missing="fill")
    assert np.isnan(data.x).any(), "the dataset keeps its gaps until the split"
    config = DataConfig(source="upload:0-gaps.csv", column_roles={"row": "numeric"}, missing="fill")
    splits = split_data(data, config)
    train, val, test = (in_original_units(splits, a) for a in (splits.x_train, splits.x_val, splits.x_test))
    had_value = train["row"].round().astype(int) % 10 != 0
    median = float(np.median(train["x"][had_value]))
    for part in (train, val, test):
        gap = part["row"].round().astype(int) % 10 == 0
        assert gap.any() and np.allclose(part["x"][gap], median, rtol=1e-5)
    assert float(np.median(test["x"][test["row"].round().astype(int) % 10 != 0])) != median
    assert set(pd.concat([train, val, test])["colour"]) == {"red", "blue"}
    assert all(np.isfinite(a).all() for a in (splits.x_train, splits.x_val, splits.x_test))


def test_fill_statistics_come_from_the_training_rows(monkeypatch):
    """The imputer is fitted on the training split alone: a test set whose values differ wildly
    leaves the fill value unchanged."""
    from core.data import fill_missing

    train = np.array([[1.0], [2.0], [np.nan], [4.0]], dtype=np.float32)
    test = np.array([[np.nan], [1000.0], [1000.0]], dtype=np.float32)
    train_filled, (test_filled,) = fill_missing(train, [test])
    assert train_filled[2, 0] == 2.0 and test_filled[0, 0] == 2.0


def test_rows_without_a_label():
    text = patients_csv(gaps=False).decode().replace(",sepsis,", ",,", 2)
    _refused(lambda: load_table(text.encode(), "patients.csv"), "patients.csv",
             "rows 11, 21 have no value in label column 'diagnosis'")
    assert len(load_table(text.encode(), "patients.csv", missing="fill").y) == 118


@pytest.mark.parametrize("cell, kind", [("inf", "infinite or too large"), ("-inf", "infinite or too large"),
                                        ("1e308", "infinite or too large"), ("oops", "not a number")])
def test_non_finite_and_overflowing_cells_never_reach_training(cell, kind):
    rows = "\n".join(f"{cell if i == 4 else i},{'ab'[i % 2]}" for i in range(30))
    text = f"dose,label\n{rows}".encode()
    _refused(lambda: load_table(text, "doses.csv"), "doses.csv", f"'dose' row 6 ({kind}")
    data = load_table(text, "doses.csv", missing="fill")
    splits = split_data(data, DataConfig(source="upload:0-doses.csv", missing="fill"))
    assert all(np.isfinite(a).all() for a in (splits.x_train, splits.x_val, splits.x_test))
    assert len(load_table(text, "doses.csv", missing="drop").y) == 29


def test_huge_but_float32_values_are_standardised_without_overflow():
    rows = "\n".join(f"{(i % 7) * 1e37:.3g},{'ab'[i % 2]}" for i in range(40))
    data = load_table(f"big,label\n{rows}".encode(), "big.csv")
    splits = split_data(data, DataConfig(source="upload:0-big.csv"))
    assert np.isfinite(splits.x_train).all() and abs(float(splits.x_train.mean())) < 1e-3


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@pytest.mark.parametrize("x, needle", [
    (np.full((12, 4), np.nan), "holds no numbers (every value is NaN)"),
    (np.where(np.arange(48).reshape(12, 4) == 5, np.inf, 1.0), "1 values that are missing (NaN), infinite or beyond"),
    (np.where(np.arange(48).reshape(12, 4) % 9 == 0, 1e308, 1.0), "in samples 0, 2, 4 and 3 more"),
])
def test_npz_with_non_finite_values_is_refused(x, needle):
    _refused(lambda: load_npz(_npz(x_train=x, y_train=np.arange(12) % 2), "arrays.npz"), "arrays.npz", needle)


def test_npz_labels_with_nan_are_refused():
    y = np.arange(12, dtype=float) % 2
    y[3] = np.nan
    _refused(lambda: load_npz(_npz(x_train=np.ones((12, 2)), y_train=y), "arrays.npz"), "arrays.npz",
             "'y_train' has 1 missing or infinite labels (sample 3")


# --- 3. messages a person can read ------------------------------------------------------

def test_a_continuous_label_is_refused_in_one_short_sentence():
    rows = "\n".join(f"{i % 97},{i / 3000:.5f}" for i in range(3000))
    _refused(lambda: load_table(f"a,ratio\n{rows}".encode(), "lab.csv", label_column="ratio"), "lab.csv",
             "label column 'ratio' has 3,000 different values", "too many for classes")
    rows = "\n".join(f"{i % 97},{i / 300:.5f}" for i in range(300))
    _refused(lambda: load_table(f"a,ratio\n{rows}".encode(), "lab.csv", label_column="ratio"), "lab.csv",
             "it looks like a measurement or an ID, not a class")


def test_a_single_rare_class_is_named_plainly():
    rows = "\n".join(f"{i % 7},{'common' if i else 'rare'}" for i in range(20))
    _refused(lambda: load_table(f"a,label\n{rows}".encode(), "one.csv"), "one.csv",
             "class 'rare' (1) has fewer than 3 samples")
    rows = "\n".join(f"{i % 7},{'common' if i > 8 else f'rare{i}'}" for i in range(30))
    _refused(lambda: load_table(f"a,label\n{rows}".encode(), "many.csv"), "many.csv",
             "classes 'rare0' (1), 'rare1' (1), 'rare2' (1) and 6 more have fewer than 3 samples")


def test_windows_1252_and_latin_1_files_are_read_with_a_note():
    text = "name,label\n" + "\n".join(f"{w},{c}" for w, c in [("café", "a"), ("naïve", "b")] * 4)
    raw = read_table(text.encode("cp1252"), "win.csv")
    assert raw.frame["name"].iloc[0] == "café"
    assert "read as Windows-1252" in raw.notes[0] and "line 2" in raw.notes[0]
    odd = read_table(b"name,label\n\x81x,a\n\x81y,b\nz,a\nw,b\n", "odd.csv")  # 0x81 is not cp1252
    assert "Latin-1" in odd.notes[0] and odd.frame["name"].iloc[0] == "\x81x"


def test_excel_bom_and_utf16_exports():
    rows = "\n".join(f"{i},{'ab'[i % 2]}" for i in range(8))
    bom = load_table(codecs.BOM_UTF8 + f"dose,label\n{rows}".encode(), "excel.csv")
    assert bom.feature_names == ("dose",)
    utf16 = ("dose\tlabel\n" + rows.replace(",", "\t")).encode("utf-16")
    assert load_table(utf16, "unicode.txt").feature_names == ("dose",)


@pytest.mark.parametrize("sep, note", [(";", "separated by semicolons"), ("\t", "separated by tabs"),
                                       ("|", "separated by vertical bars")])
def test_the_separator_is_detected(sep, note):
    rows = "\n".join(sep.join([str(i), str(i * 2), "ab"[i % 2]]) for i in range(8))
    raw = read_table(f"a{sep}b{sep}label\n{rows}".encode(), "semi.csv")
    assert list(raw.frame.columns) == ["a", "b", "label"] and note in raw.notes[0]


def test_a_decimal_comma_with_semicolons():
    rows = "\n".join(f"{i},5;{'ab'[i % 2]}" for i in range(8))
    data = load_table(f"dose;label\n{rows}".encode(), "eu.csv")
    assert data.x[:3, 0].tolist() == [0.5, 1.5, 2.5]


def test_a_single_column_file_says_how_to_separate_columns():
    _refused(lambda: read_table(b"a\n1\n2\n", "one.csv"), "one.csv", "found only one column",
             "commas, semicolons or tabs")


def test_parquet_problems_are_said_in_words():
    _refused(lambda: read_table(b"a,b\n1,2\n", "table.parquet"), "table.parquet", "not a Parquet file")
    _refused(lambda: read_table(b"PAR1" + b"\0" * 50 + b"PAR1", "table.parquet"), "table.parquet",
             "damaged or uses a feature this reader does not support")


def test_short_and_long_rows_are_named_by_line():
    _refused(lambda: read_table(b"a,b,label\n1,2,x\n3,y\n", "rows.csv"), "rows.csv",
             "line 3 has 2 fields but the header has 3")
    _refused(lambda: read_table(b'a,b,label\n1,2,x\n"3",4,y,9\n', "rows.csv"), "rows.csv",
             "line 3 has 4 fields but the header has 3")


def test_duplicate_column_names_are_renamed_with_a_visible_note():
    rows = "\n".join(f"{i},{i + 1},{'ab'[i % 2]}" for i in range(8))
    raw = read_table(f"a,a,label\n{rows}".encode(), "dup.csv")
    assert list(raw.frame.columns) == ["a", "a.1", "label"]
    assert raw.notes == ("dup.csv: column names repeat, so the copies were renamed: 'a' → 'a.1'. Rename them in the "
                         "file if that is not what you want.",)


@pytest.mark.slow
def test_thousands_of_numeric_columns_are_not_blamed_on_text():
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(6, 2_500)).round(3),
                         columns=[f"f{i}" for i in range(2_500)])
    frame["label"] = list("ababab")
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    message = _refused(lambda: load_table(buf.getvalue().encode(), "wide.csv"), "wide.csv",
                       "2,500 feature columns is over the 2,000 limit")
    assert "text" not in message


def test_mixed_types_in_a_column():
    rows = "\n".join(f"{'unknown' if i == 3 else '<5' if i == 7 else i},{'ab'[i % 2]}" for i in range(40))
    text = f"age,label\n{rows}".encode()
    profile = profile_table(read_table(text, "mixed.csv").frame, "mixed.csv")
    age = profile.column("age")
    assert (age.role, age.unusable, age.examples) == ("numeric", 2, ("'unknown'", "'<5'"))
    assert age.reason == "numbers from 0 to 39; some cells are not numbers"
    _refused(lambda: load_table(text, "mixed.csv"), "mixed.csv", "'age' rows 5, 9 (not a number, e.g. 'unknown')")
    assert load_table(text, "mixed.csv", missing="drop").x.shape == (38, 1)


def test_label_values_with_trailing_spaces_are_one_class():
    rows = "\n".join(f"{i},{['yes', 'yes ', ' no', 'no'][i % 4]}" for i in range(12))
    assert load_table(f"a,label\n{rows}".encode(), "spaces.csv").class_names == ("no", "yes")


def test_pickled_truncated_and_broken_arrays_are_named_without_internals():
    pickled = _npz(x_train=np.array([{"a": 1}] * 6, dtype=object), y_train=np.arange(6) % 2)
    _refused(lambda: load_npz(pickled, "obj.npz"), "obj.npz", "holds Python objects, which are not loaded for safety")
    good = _npz(x_train=np.ones((12, 3)), y_train=np.arange(12) % 2)
    _refused(lambda: load_npz(good[: len(good) // 2], "cut.npz"), "cut.npz", "damaged or incomplete")
    _refused(lambda: load_npz(b"hello", "text.npz"), "text.npz", "not a readable '.npz' file")
    _refused(lambda: load_npz(_npz(x_train=np.array(["a"] * 6), y_train=np.arange(6) % 2), "str.npz"),
             "str.npz", "holds text, not numbers")


def _png(value: int = 100) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (6, 6), value).save(buf, "PNG")
    return buf.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_corrupt_images_are_listed_by_name():
    files = {f"cat/{i}.png": _png() for i in range(4)} | {f"dog/{i}.png": _png(9) for i in range(4)}
    files |= {"cat/broken.png": b"not an image", "dog/cut.png": _png()[:30], "dog/empty.jpg": b""}
    _refused(lambda: load_image_zip(_zip(files), "pets.zip"), "pets.zip",
             "'cat/broken.png', 'dog/cut.png' and 'dog/empty.jpg' are not readable images; remove or replace them")


def test_a_class_folder_nested_twice_is_still_that_class():
    files = {f"cat/cat/{i}.png": _png() for i in range(3)} | {f"dog/{i}.png": _png(9) for i in range(4)}
    files |= {f"export/cat/{i}.png": _png() for i in range(0)}
    data = load_image_zip(_zip(files), "pets.zip", size=4)
    assert data.class_names == ("dog", "cat") and np.bincount(data.y).tolist() == [4, 3]
    rooted = {f"pets/{c}/{sub}/{i}.png": _png() for c, sub in (("cat", "indoor"), ("dog", "out")) for i in range(3)}
    assert load_image_zip(_zip(rooted), "rooted.zip", size=4).class_names == ("cat", "dog")


@pytest.mark.parametrize("name, data", [
    ("empty.csv", b""),
    ("header.csv", b"a,b,label\n"),
    ("bad.zip", b"PK\x03\x04 broken"),
    ("quote.csv", b'a,label\n"1,x\n2,y\n'),
    ("loose.zip", _zip({"one.png": _png()})),
    ("noimages.zip", _zip({"a/readme.txt": b"hi"})),
])
def test_every_rejection_is_short_and_names_the_file(name, data):
    from core.data import load_upload

    _refused(lambda: load_upload(data, name), name)


# --- 4. imbalance on real tables ---------------------------------------------------------

def test_uploaded_classes_are_numbered_from_most_to_least_frequent():
    labels = ["apple"] * 3 + ["zebra"] * 12 + ["mango"] * 6
    rows = "\n".join(f"{i % 5},{lab}" for i, lab in enumerate(labels))
    data = load_table(f"a,label\n{rows}".encode(), "fruit.csv")
    assert data.class_names == ("zebra", "mango", "apple")
    assert np.bincount(data.y).tolist() == [12, 6, 3]


def test_built_ins_keep_their_class_order():
    assert load_builtin("digits").class_names == tuple(str(i) for i in range(10))
    assert load_builtin("breast_cancer").class_names == ("malignant", "benign")
    assert load_builtin("wine").class_names == ("class_0", "class_1", "class_2")


# --- 5. raw units -------------------------------------------------------------------------

def test_samples_are_shown_in_the_files_units():
    data = load_table(patients_csv(), "patients.csv", missing="drop")
    splits = split_data(data, DataConfig(source="upload:0-patients.csv", missing="drop"))
    shown = in_original_units(splits, splits.x_test[:5])
    frame = read_table(patients_csv(), "patients.csv").frame
    frame = frame[frame["cholesterol"].notna()].reset_index(drop=True)
    original = frame.set_index(["age", "admitted"])
    for row in shown.itertuples(index=False):
        match = original.loc[(int(row.age), row.admitted)]
        match = match if isinstance(match, pd.Series) else match.iloc[0]
        assert row.cholesterol == pytest.approx(match["cholesterol"], abs=0.05)
        assert row.sex == match["sex"] and row.site == match["site"]
    assert list(shown.columns) == ["age", "sex", "cholesterol", "site", "admitted"]
    table = feature_table(splits, splits.x_test[0])
    assert table["feature"].tolist() == list(data.feature_names)
    assert set(table["value"][table["feature"].str.startswith("sex=")]) == {"yes", "no"}
    width = len(data.feature_names)  # the notes' word features follow, and are not listed
    assert table["standardised"].tolist() == pytest.approx(splits.x_test[0, :width].tolist())
    assert splits.text_names == ("notes",) and splits.x_test.shape[1] > width


def test_built_in_tables_show_original_values_too():
    splits = split_data(load_builtin("wine"), DataConfig(source="wine"))
    shown = in_original_units(splits, splits.x_test[:3])
    assert list(shown.columns) == list(splits.feature_names)
    assert shown["alcohol"].between(10, 15).all(), "alcohol in % vol, not standardised scores"


# --- config, storage ---------------------------------------------------------------------

def test_data_config_validates_table_options():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="uploaded tables only"):
        DataConfig(source="wine", column_roles={"alcohol": "ignore"})
    with pytest.raises(ValidationError, match="cannot also have a role"):
        DataConfig(source="upload:x-t.csv", label_column="y", column_roles={"y": "numeric"})
    with pytest.raises(ValidationError):
        DataConfig(source="upload:x-t.csv", column_roles={"a": "weird"})
    with pytest.raises(ValidationError):
        DataConfig(source="upload:x-t.csv", missing="guess")


def test_load_data_applies_roles_and_the_gap_policy(tmp_path, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    source = save_upload(patients_csv(), "patients.csv")
    with pytest.raises(DataError, match="cannot be used"):
        load_data(DataConfig(source=source))
    data = load_data(DataConfig(source=source, missing="drop", column_roles={"site": "ignore"}))
    assert len(data.y) == 113 and "site=east" not in data.feature_names


def test_cli_lists_uploads_with_their_runs_and_removes_unused(tmp_path, monkeypatch, capsys):
    from core.cli import main
    from core.store import RunStore, write_json_atomic

    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    used = save_upload(patients_csv(), "patients.csv")
    chosen = save_upload(b"a,label\n1,x\n2,y\n3,x\n4,y\n5,x\n6,y\n", "chosen.csv")
    spare = save_upload(b"a,label\n1,x\n2,y\n3,x\n4,y\n5,x\n6,y\n7,x\n", "spare.csv")
    from core.config import RunConfig

    run_id = RunStore(tmp_path).create_run(RunConfig.model_validate({"data": {"source": used, "missing": "fill"},
                                                                     "model": {"name": "mlp"}}))
    write_json_atomic(tmp_path / "ui" / "data_config.json", {"source": chosen})
    assert main(["uploads", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    by_source = {u["source"]: u for u in listing["uploads"]}
    assert by_source[used]["runs"] == [run_id] and by_source[chosen]["data_page_choice"]
    assert by_source[spare]["runs"] == [] and listing["removed"] == []
    assert main(["uploads", "--remove-unused"]) == 0
    out = capsys.readouterr()
    assert "spare.csv" in out.out and "(removed)" in out.out and "removed 1 unused upload" in out.err
    assert sorted(p.name.split("-", 1)[1] for p in (tmp_path / "uploads").iterdir()) == ["chosen.csv", "patients.csv"]
