"""Picture ZIPs with a labels.csv: each row's findings read into a label matrix counted by
hand, `?` marking the rest unknown, and each malformed archive refused in one line."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from core.data import DataError, load_multilabel_upload, zip_has_label_manifest

ROWS = [("a.png", "cat|dog"), ("b.png", "cat"), ("c.png", "cat|?"), ("d.png", "dog|bird"), ("e.png", "bird|cat")]


def _png(value: int = 0) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((4, 4), value, dtype=np.uint8), "L").save(out, format="PNG")
    return out.getvalue()


def _zip(rows=ROWS, extra=(), header="file,labels", folder="", manifest=True, absent=()) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        if manifest:
            z.writestr(f"{folder}labels.csv", "\n".join([header, *(f"{f},{lab}" for f, lab in rows)]) + "\n")
        own = {name for name, _ in extra}
        for f in dict.fromkeys(f for f, _ in rows if f not in own and f not in absent):
            z.writestr(f"{folder}{f}", _png(40))
        for name, data in extra:
            z.writestr(f"{folder}{name}", data)
    return out.getvalue()


def _load(data: bytes, **kw):
    return load_multilabel_upload(data, "photos.zip", **kw)


@pytest.mark.parametrize("folder", ["", "shots/"])
def test_rows_become_a_label_matrix_counted_by_hand(folder):
    ds = _load(_zip(folder=folder))
    assert ds.modality == "image" and ds.x.shape == (5, 1, 32, 32)  # grey pictures stay one channel
    assert ds.label_names == ("cat", "bird", "dog")  # most common first: cat 4, bird 2, dog 2 (ties by name)
    expected = np.array([[1, 0, 1], [1, 0, 0], [1, np.nan, np.nan], [0, 1, 1], [1, 1, 0]], dtype=float)
    np.testing.assert_array_equal(ds.y, expected)
    assert zip_has_label_manifest(_zip(folder=folder), "photos.zip")


def test_a_chosen_separator_is_used():
    rows = [(f, lab.replace("|", ";")) for f, lab in ROWS]
    assert _load(_zip(rows), separator=";").label_names == ("cat", "bird", "dog")


def test_a_zip_without_labels_csv_is_not_multilabel():
    assert not zip_has_label_manifest(_zip(manifest=False, rows=[("cat/a.png", "")]), "photos.zip")


@pytest.mark.parametrize(("data", "words"), [
    (_zip([*ROWS, ("z.png", "cat")], absent={"z.png"}), "row 7 names 'z.png', which is not a picture in the ZIP"),
    (_zip(extra=[("stray.png", _png())]), "'stray.png' is not listed in labels.csv"),
    (_zip([*ROWS[:4], ("e.png", "")]), "row 6 has no label at all"),
    (_zip([*ROWS[:4], ("e.png", "?")]), "row 6 has no label at all"),
    (_zip([*ROWS, ("f.png", "cat|fish")]), "label 'fish' is present in 1 row, in row 7"),
    (_zip(extra=[("broken.png", b"not a picture")], rows=[*ROWS, ("broken.png", "cat")]), "'broken.png' is not a readable image"),
    (_zip([*ROWS, ("a.png", "dog")]), "rows 2 and 7 both list 'a.png'"),
    (_zip(header="picture,labels"), "has no column 'file'"),
    (_zip(header="file,findings"), "has no column 'labels'"),
    (_zip(manifest=False), "no labels.csv found"),
    (_zip(extra=[("../evil.png", _png())]), "unsafe path"),
])
def test_malformed_picture_zips_are_refused_in_one_line(data, words):
    with pytest.raises(DataError) as err:
        _load(data)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_a_picture_zip_takes_no_label_columns():
    with pytest.raises(DataError, match="label columns apply to tables"):
        _load(_zip(), columns=["a", "b"])


def test_a_zip_config_takes_a_separator_not_columns():
    from core.config import DataConfig

    assert DataConfig(source="upload:photos.zip", multilabel_upload={"separator": "|"}).multilabel
    with pytest.raises(ValueError, match="set separator, not columns"):
        DataConfig(source="upload:photos.zip", multilabel_upload={"columns": ["a", "b"]})


def test_a_stored_picture_zip_prepares_splits_for_a_run(empty_home):
    from core.config import DataConfig
    from core.data import prepare_multilabel_run_data, save_upload

    rows = [(f"p{i}.png", ["cat", "cat|dog", "dog|bird", "bird|cat"][i % 4]) for i in range(40)]
    source = save_upload(_zip(rows), "photos.zip")
    run = prepare_multilabel_run_data(DataConfig(source=source, multilabel_upload={"separator": "|"}))
    assert run.modality == "image" and run.x_train.shape[1:] == (1, 32, 32) and run.transform is None
    assert len(run.y_train) + len(run.y_val) + len(run.y_test) == 40
    assert run.label_names == ("cat", "bird", "dog")  # cat 30, bird 20, dog 20
