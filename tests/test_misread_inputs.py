"""Inputs that used to be misread without a word: each test builds its own small bad file."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from core.cli import main
from core.config import DataConfig
from core.data import (
    DataError, LabelVariantsError, find_label_variants, label_key, load_data, load_image_zip, load_table,
    save_upload,
)


# --- labels spelled several ways -----------------------------------------------------------

def _spelled_csv(rows: int = 60) -> bytes:
    """'Yes' / 'yes ' / 'YES' for one class, 'no' / 'No' for another, '1' / '1.0' for a third."""
    spellings = ["Yes", "yes ", "YES", "no", "No", "1", "1.0", "no"]
    lines = ["age,score,outcome"] + [f"{20 + i},{i % 5},{spellings[i % len(spellings)]}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def test_label_key_ignores_case_spaces_and_number_form():
    assert label_key(" Yes ") == label_key("YES") == label_key("yes")
    assert label_key("1") == label_key("1.0") == label_key(" 01 ")
    assert label_key("1.5") == label_key("1.50") != label_key("1")
    assert label_key("nan") == "nan" and label_key("a_1") != label_key("a1")


def test_spelled_labels_are_refused_until_chosen_then_merged_or_kept(tmp_path):
    data = _spelled_csv()
    with pytest.raises(LabelVariantsError) as caught:
        load_table(data, "survey.csv")
    message = str(caught.value)
    assert message.count("\n") == 0
    for part in ("survey.csv", "label column 'outcome'", "'Yes'", "'yes'", "'YES'", "'1'", "'1.0'",
                 "data.merge_labels: true"):
        assert part in message
    merged = load_table(data, "survey.csv", merge_labels=True)
    counts = dict(zip(merged.class_names, np.bincount(merged.y).tolist()))
    # independent count: the spellings' rows per group, straight from the generator's cycle
    cycle = ["Yes", "yes ", "YES", "no", "No", "1", "1.0", "no"]
    rows = [cycle[i % len(cycle)].strip() for i in range(60)]
    expected = {"yes": sum(r.lower() == "yes" for r in rows), "no": sum(r.lower() == "no" for r in rows),
                "1": sum(r in ("1", "1.0") for r in rows)}
    assert sorted(counts.values()) == sorted(expected.values()) and len(counts) == 3
    assert "no" in counts, "a group is named by its most common spelling"
    assert {g.name for g in merged.label_variants} == set(merged.class_names)
    kept = load_table(data, "survey.csv", merge_labels=False)
    assert set(kept.class_names) == {"Yes", "yes", "YES", "no", "No", "1", "1.0"}


def test_a_numeric_label_column_has_no_variants():
    assert find_label_variants(np.array([1.0, 1.0, 2.0, 2.0])) == ()
    assert find_label_variants(["a", "b", "a"]) == ()


def _pictures_zip(folders: dict[str, int]) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for folder, n in folders.items():
            for i in range(n):
                png = io.BytesIO()
                Image.new("RGB", (8, 8), (10 * i, 50, 90)).save(png, format="PNG")
                zf.writestr(f"{folder}/{i:03d}.png", png.getvalue())
    return buf.getvalue()


def test_class_folders_that_differ_by_case_are_one_class_when_merged():
    data = _pictures_zip({"Cat": 5, "cat": 3, "dog": 6})
    with pytest.raises(LabelVariantsError, match=r"class folders .*'Cat', 'cat'"):
        load_image_zip(data, "pets.zip")
    merged = load_image_zip(data, "pets.zip", merge_labels=True)
    assert dict(zip(merged.class_names, np.bincount(merged.y).tolist())) == {"Cat": 8, "dog": 6}
    assert len(load_image_zip(data, "pets.zip", merge_labels=False).class_names) == 3


def test_merge_labels_is_checked_by_the_config_and_read_by_load_data(tmp_path, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    with pytest.raises(ValueError, match="merge_labels applies to uploaded files only"):
        DataConfig(source="digits", merge_labels=True)
    source = save_upload(_spelled_csv(), "survey.csv")
    with pytest.raises(DataError, match="spells the same class"):
        load_data(DataConfig(source=source))
    assert load_data(DataConfig(source=source, merge_labels=True)).num_classes == 3


def test_the_cli_refuses_spelled_labels_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TAILSCOPE_HOME", str(tmp_path))
    (tmp_path / "survey.csv").write_bytes(_spelled_csv())
    config = tmp_path / "run.yaml"
    config.write_text("data: {source: survey.csv, label_column: outcome}\nmodel: {name: mlp}\n")
    assert main(["train", str(config), "--no-worker"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "survey.csv" in err and "'outcome'" in err and "'YES'" in err and "data.merge_labels" in err
    config.write_text("data: {source: survey.csv, label_column: outcome, merge_labels: true}\nmodel: {name: mlp}\n")
    assert main(["train", str(config), "--no-worker"]) == 0


# --- 16-bit pictures -------------------------------------------------------------------------

def _png(rows: np.ndarray, colour: bool) -> bytes:
    """A 16-bit PNG written by hand (grey: colour type 0; RGB: colour type 2), so the test
    does not depend on how PIL writes one."""
    import struct
    import zlib

    height, width = rows.shape[0], rows.shape[1] // (3 if colour else 1)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, 2 if colour else 0, 0, 0, 0)
    raw = b"".join(b"\x00" + rows[r].astype(">u2").tobytes() for r in range(height))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _zip_of(pictures: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in pictures.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_a_16_bit_grey_gradient_keeps_its_values():
    size = 32
    gradient = np.tile(np.linspace(0, 65535, size).round().astype(np.uint16), (size, 1))  # left dark, right white
    flat = np.full((size, size), 16384, dtype=np.uint16)  # a quarter of full range
    pictures = {f"{c}/{i}.png": _png(gradient if c == "ramp" else flat, colour=False)
                for c in ("ramp", "flat") for i in range(3)}
    dataset = load_image_zip(_zip_of(pictures), "scans.zip", size=size)
    assert dataset.x.shape[1] == 1, "grey pictures stay one channel"
    ramp = dataset.x[dataset.y == dataset.class_names.index("ramp")][0, 0]
    expected = gradient.astype(np.float64) / 65535.0  # the real range, not 255
    assert np.abs(ramp - expected).max() <= 1 / 255 + 1e-6
    assert ramp.min() == 0 and ramp.max() == 1 and 0.45 < ramp.mean() < 0.55
    plain = dataset.x[dataset.y == dataset.class_names.index("flat")][0, 0]
    assert np.allclose(plain, round(16384 / 65535 * 255) / 255)


def test_a_16_bit_colour_picture_reads_in_its_range():
    size = 16
    pixels = np.zeros((size, size, 3), dtype=np.uint16)
    pixels[..., 0] = 65535  # full red
    pixels[..., 1] = 32768  # half green
    pictures = {f"{c}/{i}.png": _png(pixels.reshape(size, size * 3), colour=True) for c in ("a", "b") for i in range(3)}
    dataset = load_image_zip(_zip_of(pictures), "colour.zip", size=size)
    assert dataset.x.shape[1] == 3
    red, green, blue = (dataset.x[0, ch].mean() for ch in range(3))
    assert red == pytest.approx(1.0) and green == pytest.approx(32768 / 65535, abs=1 / 255) and blue == 0


# --- NUL bytes -------------------------------------------------------------------------------

@pytest.mark.parametrize("rows", [40, 6000])  # inside and beyond the first 64 KB the reader samples
def test_stray_nul_bytes_are_removed_with_a_note_and_never_name_a_category(rows):
    from core.data import read_table

    lines = ["age,site,diagnosis"]
    for i in range(rows):
        site = ["north", "south"][i % 2]
        if i in (rows - 3, rows - 1):
            site = site[:2] + "\x00" + site[2:]
        lines.append(f"{20 + i % 7},{site},{['a', 'b', 'c'][i % 3]}")
    data = ("\n".join(lines) + "\n").encode()
    dataset = load_table(data, "export.csv")
    assert dataset.feature_names == ("age", "site=north", "site=south")
    assert not any("\x00" in name for name in dataset.class_names + dataset.feature_names)
    [note] = [n for n in read_table(data, "export.csv").notes if "NUL" in n]
    assert f"line {rows - 1} ('site')" in note and f"line {rows + 1} ('site')" in note and "2 invisible" in note


def test_a_file_mostly_of_nul_bytes_is_still_binary():
    with pytest.raises(DataError, match="binary data"):
        load_table(b"a,b\n" + b"\x00" * 500 + b"\n1,2\n", "blob.csv")


# --- numbers with thousands separators -------------------------------------------------------

def _european(value: float) -> str:
    return f"{value:,.1f}".replace(",", " ").replace(".", ",").replace(" ", ".")


def _lab_table(sep: str, write) -> tuple[bytes, np.ndarray]:
    """patient_id, income (written by `write`), an age, and a 2-class label."""
    rng = np.random.default_rng(3)
    income = rng.uniform(900, 90_000, 200).round(1)
    lines = [sep.join(["patient_id", "income", "age", "diagnosis"])]
    for i, v in enumerate(income):
        lines.append(sep.join([f"P{i:04d}", write(v), str(30 + i % 40), ["benign", "malignant"][i % 2]]))
    return ("\n".join(lines) + "\n").encode(), income


@pytest.mark.parametrize("sep, write, way", [
    (";", _european, "1.234,5"),
    ("\t", _european, "1.234,5"),
    (",", lambda v: f'"{v:,.1f}"', "1,234.5"),
])
def test_numbers_with_thousands_separators_are_read_as_numbers(sep, write, way):
    from core.data import profile_table, read_table

    data, income = _lab_table(sep, write)
    assert any("." in write(v) and "," in write(v) for v in income), "the file really uses both marks"
    raw = read_table(data, "labs.csv")
    assert any(f"'income' writes numbers as {way}" in note for note in raw.notes)
    profile = profile_table(raw.frame, raw.filename, "diagnosis")
    assert profile.column("income").role == "numeric", profile.column("income").reason
    dataset = load_table(data, "labs.csv")
    column = dataset.feature_names.index("income")
    assert np.allclose(dataset.x[:, column], income.astype(np.float32))


def test_a_column_that_mixes_conventions_is_named_not_guessed():
    from core.data import read_table

    cells = ["1.234,5", "2,234.5"] * 20
    lines = ["a;b;label"] + [f"{c};{i % 4};{'xy'[i % 2]}" for i, c in enumerate(cells)]
    raw = read_table(("\n".join(lines) + "\n").encode(), "mixed.csv")
    assert any("'a' writes numbers both as 1.234,5 and as 1,234.5" in note for note in raw.notes)
    assert raw.frame["a"].tolist() == cells, "left as written"


# --- free text ---------------------------------------------------------------------------------

def _clinic_notes_csv(rows: int = 3000, phrases: int = 72) -> bytes:
    """A clinic export: a lab value, a 3-level ward, a note drawn from `phrases` distinct
    phrases of several words, and a diagnosis."""
    rng = np.random.default_rng(5)
    notes = [f"patient reports {w} pain since day {k}" for k in range(phrases // 4)
             for w in ("mild", "severe", "no", "recurring")][:phrases]
    lines = ["ldl,ward,note,diagnosis"]
    for i in range(rows):
        lines.append(f"{rng.normal(3, 1):.2f},{['north', 'south', 'east'][i % 3]},{notes[i % phrases]},"
                     f"{['benign', 'cyst', 'malignant'][i % 3]}")
    return ("\n".join(lines) + "\n").encode()


def test_a_free_text_column_is_read_as_text_with_its_reason_not_made_a_category():
    from core.data import profile_table, read_table, roles_frame

    data = _clinic_notes_csv()
    raw = read_table(data, "clinic.csv")
    assert raw.frame["note"].nunique() == 72
    profile = profile_table(raw.frame, raw.filename, "diagnosis")
    note = profile.column("note")
    assert note.role == "text" and note.used
    assert "72 different phrases" in note.reason and "72 separate features" in note.reason
    assert profile.column("ward").role == "categorical", "a few one-word groups stay a category"
    roles = roles_frame(profile).set_index("Column")
    assert roles.loc["note", "Role"] == "free text" and roles.loc["note", "Used"] == "✓ feature"
    dataset = load_table(data, "clinic.csv")
    assert not any(name.startswith("note") for name in dataset.feature_names), "not one feature per phrase"
    assert dataset.text_names == ("note",) and dataset.texts.shape == (len(dataset.y), 1)


# --- what dropping rows with a gap costs each class ---------------------------------------------

def test_drop_cost_counts_each_class_before_and_after():
    import pandas as pd

    from core.data import drop_cost, missing_options, profile_table

    frame = pd.DataFrame({"x": [1.0, None, 3.0, 4.0, None, 6.0, 7.0, 8.0, None, 10.0],
                          "y": ["a", "a", "a", "a", "a", "a", "b", "b", "b", None]})
    profile = profile_table(frame, "t.csv", "y")
    cost = drop_cost(profile, frame["y"])
    # by hand: a has 6 rows, 2 with a gap; b has 3 rows, 1 with a gap; the unlabelled row counts in neither
    assert cost.table.to_dict("list") == {"Class": ["a", "b"], "Now": [6, 3], "After": [4, 2],
                                          "Lost": ["loses 33%", "loses 33%"]}
    assert cost.ratio_before == 2.0 and cost.ratio_after == 2.0
    assert "the rarest class, **b**, keeps 2 of its 3 rows" in cost.summary()
    assert missing_options(profile, cost)["drop"].endswith("; the rarest class, b, loses 33% of its rows)")
    frame.loc[[6, 7, 8], "x"] = None
    gone = drop_cost(profile_table(frame, "t.csv", "y"), frame["y"])
    assert gone.ratio_after == float("inf") and "would remove every row of **b**" in gone.summary()


# --- office files renamed .csv -------------------------------------------------------------------

def _office_zip(part: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        zf.writestr(part, "<x/>")
    return buf.getvalue()


@pytest.mark.parametrize("data, said", [
    (_office_zip("xl/workbook.xml"), "this is an Excel file (.xlsx), renamed, not a text table; save it as CSV"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "this is an Excel file (.xls, the older kind), renamed"),
    (_office_zip("content.xml"), "this is an OpenDocument file (.ods, .odt), renamed"),
    (_office_zip("other/thing.txt"), "a spreadsheet workbook (.xlsx, .ods) or a ZIP archive, renamed"),
])
def test_office_files_renamed_csv_are_named_for_what_they_are(data, said):
    with pytest.raises(DataError) as caught:
        load_table(data, "results.csv")
    assert str(caught.value).startswith("results.csv: ") and said in str(caught.value)


def test_random_bytes_with_a_few_nuls_are_still_binary_not_a_table():
    blob = np.random.default_rng(2).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    assert 0 < blob.count(b"\x00") <= 100
    with pytest.raises(DataError, match="binary data"):
        load_table(b"a,b\n" + blob, "noise.csv")
