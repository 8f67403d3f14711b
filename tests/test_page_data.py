"""The Data page: built-ins, imbalance controls and the live counts chart, uploads, saving."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

from app import data_forms, state
from conftest import shown
from core.data import DataError, describe_profile, load_builtin, load_source, prepare_splits, profile_counts


def _no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _counts_chart(at) -> dict:
    """(before, kept) per class from the class-counts chart's JSON."""
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        names = [t.get("name") for t in spec["data"]]
        if names and names[0] == "available (before)":
            kept = {}
            for trace in spec["data"][1:]:
                kept.update(zip(trace["x"], trace["y"]))
            before = dict(zip(spec["data"][0]["x"], spec["data"][0]["y"]))
            return {"before": before, "kept": kept, "order": spec["data"][0]["x"], "layout": spec["layout"]}
    raise AssertionError("no class-counts chart on the page")


def _builtin_before(name: str, params: dict | None = None) -> np.ndarray:
    return prepare_splits(load_builtin(name, params)).counts_before


@pytest.mark.parametrize("home", ["empty_home", "stored_home"])
def test_renders_with_the_default_dataset(home, request, open_page):
    request.getfixturevalue(home)
    at = open_page("data")
    _no_exceptions(at)
    chart = _counts_chart(at)
    before = _builtin_before("digits")
    expected = profile_counts(before, "exp", 50)
    assert [chart["kept"][str(c)] for c in range(10)] == expected.tolist()
    assert [chart["before"][str(c)] for c in range(10)] == before.tolist()
    assert chart["order"] == [str(c) for c in np.argsort(-expected, kind="stable")]
    assert len(at.get("plotly_chart")) == 2, "image grid and counts chart"
    assert any("Exponential" in m.value for m in at.markdown)


def test_profile_ratio_and_order_update_the_chart(empty_home, open_page):
    at = open_page("data")
    before = _builtin_before("digits")
    at.radio(key="data.profile").set_value("step").run()
    at.slider(key="data.ratio").set_value(10.0).run()
    at.slider(key="data.mu").set_value(0.3).run()
    _no_exceptions(at)
    kept = _counts_chart(at)["kept"]
    assert [kept[str(c)] for c in range(10)] == profile_counts(before, "step", 10, 0.3).tolist()

    at.selectbox(key="data.order").set_value("reversed").run()
    kept = _counts_chart(at)["kept"]
    reversed_order = list(range(10))[::-1]
    assert [kept[str(c)] for c in range(10)] == profile_counts(before, "step", 10, 0.3, reversed_order).tolist()

    at.radio(key="data.profile").set_value("none").run()
    kept = _counts_chart(at)["kept"]
    assert [kept[str(c)] for c in range(10)] == before.tolist()
    ratio_metric = next(m for m in at.metric if m.label == "Imbalance ratio")
    assert float(ratio_metric.value) == pytest.approx(before.max() / before.min(), abs=0.05)


def test_custom_class_order_puts_chosen_classes_first(empty_home, open_page):
    at = open_page("data")
    at.selectbox(key="data.order").set_value("custom").run()
    at.multiselect(key="data.custom_order").set_value([9, 3]).run()
    _no_exceptions(at)
    chart = _counts_chart(at)
    assert chart["order"][:2] == ["9", "3"]


def test_log_scale_toggle(empty_home, open_page):
    at = open_page("data")
    at.toggle(key="data.log_y").set_value(True).run()
    assert _counts_chart(at)["layout"]["yaxis"]["type"] == "log"


def test_builtin_table_with_parameters(empty_home, open_page):
    at = open_page("data")
    at.selectbox(key="data.builtin").set_value("blobs2d").run()
    at.number_input(key="data.params.blobs2d.num_classes").set_value(5).run()
    _no_exceptions(at)
    chart = _counts_chart(at)
    before = _builtin_before("blobs2d", {"num_classes": 5})
    assert len(chart["kept"]) == 5
    assert sorted(chart["kept"].values(), reverse=True) == sorted(profile_counts(before, "exp", 50).tolist(), reverse=True)
    assert at.dataframe, "a table preview"
    assert list(at.dataframe[0].value.columns)[:3] == ["label", "x1", "x2"]


def test_save_dataset_for_training(empty_home, open_page):
    at = open_page("data")
    at.selectbox(key="data.builtin").set_value("wine").run()
    at.slider(key="data.ratio").set_value(5.0).run()
    at.button(key="data.save").click().run()
    _no_exceptions(at)
    saved = at.session_state[state.DATA_CONFIG]
    assert saved["source"] == "wine"
    assert saved["imbalance"] == {"profile": "exp", "ratio": 5.0, "mu": 0.5, "class_order": None}
    assert any("Train page" in s.value for s in at.success)
    assert not [b for b in at.button if b.key == "data.save"], "nothing left to save"

    fresh = open_page("train")  # a new session (a reload, another tab) starts from the saved choice
    assert fresh.session_state[state.DATA_CONFIG] == saved
    assert "Wine cultivars" in fresh.info[0].value and "the default" not in fresh.info[0].value
    (empty_home / "ui" / "data_config.json").write_text("{not json")
    broken = open_page("train")  # an unreadable file: the default dataset, no crash
    assert not broken.exception and "the default" in broken.info[0].value


# --- uploads ------------------------------------------------------------------------------

GOOD_CSV = "a,b,colour,target\n" + "".join(
    f"{i},{i % 7 * 0.5},{'red' if i % 2 else 'blue'},{'yes' if i % 3 else 'no'}\n" for i in range(60))
BAD_CSV = "a,b,target\n1,2,x\n3,4,y\n5,oops,x\n" + "".join(f"{i},{i},{'xy'[i % 2]}\n" for i in range(20))


def _image_zip() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for cls, shade in (("cat", 40), ("dog", 200)):
            for i in range(4):
                img = io.BytesIO()
                Image.new("L", (10, 10), shade + i).save(img, format="PNG")
                archive.writestr(f"pets/{cls}/{i}.png", img.getvalue())
    return buf.getvalue()


def _npz() -> bytes:
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    np.savez(buf, x_train=rng.random((30, 6, 6)).astype(np.float32), y_train=np.arange(30) % 3,
             x_test=rng.random((9, 6, 6)).astype(np.float32), y_test=np.arange(9) % 3)
    return buf.getvalue()


def test_upload_helpers_store_and_load_each_kind(empty_home):
    source = data_forms.store_upload(GOOD_CSV.encode(), "patients.csv")
    assert source.startswith("upload:") and data_forms.is_table_upload(source)
    assert data_forms.table_columns(source) == ["a", "b", "colour", "target"]
    assert len(data_forms.table_preview(source, rows=5)) == 5
    table = load_source(source, label_column="target")
    assert table.class_names == ("yes", "no") and table.modality == "tabular", "most frequent class first"
    assert data_forms.store_upload(GOOD_CSV.encode(), "patients.csv") == source, "content-addressed, stored once"

    images = load_source(data_forms.store_upload(_image_zip(), "pets.zip"))
    assert images.modality == "image" and images.class_names == ("cat", "dog") and images.x.shape[1] == 1

    arrays = load_source(data_forms.store_upload(_npz(), "organs.npz"))
    assert arrays.modality == "image" and arrays.y_test is not None and arrays.num_classes == 3


def test_upload_helpers_reject_bad_files(empty_home):
    source = data_forms.store_upload(BAD_CSV.encode(), "bad.csv")
    with pytest.raises(DataError) as err:
        load_source(source, label_column="target")
    assert "row 4" in str(err.value) and "'b'" in str(err.value) and "bad.csv" in str(err.value)
    with pytest.raises(DataError, match="unsupported file type"):
        data_forms.store_upload(b"hello", "notes.docx")
    with pytest.raises(DataError, match="empty"):
        data_forms.store_upload(b"", "empty.csv")


def _preview(at):
    """The first rows of the uploaded file, as written (the preview table, not the roles table)."""
    return next(d.value for d in at.dataframe if "Role" not in d.value.columns)


def _upload(at, name: str, data: bytes, mime: str = "application/octet-stream"):
    at.radio(key="data.kind").set_value("Upload a file").run()
    at.file_uploader(key="data.upload").set_value((name, data, mime)).run()
    return at


def test_upload_a_table_and_pick_its_label(empty_home, open_page):
    at = _upload(open_page("data"), "patients.csv", GOOD_CSV.encode(), "text/csv")
    _no_exceptions(at)
    label = at.selectbox(key="data.label_column")
    assert label.value == "target", "guessed from the column name"
    assert list(_preview(at).columns) == ["a", "b", "colour", "target"]
    assert set(_counts_chart(at)["kept"]) == {"no", "yes"}
    label.set_value("colour").run()
    _no_exceptions(at)
    assert set(_counts_chart(at)["kept"]) == {"blue", "red"}
    at.button(key="data.save").click().run()
    saved = at.session_state[state.DATA_CONFIG]
    assert saved["source"].startswith("upload:") and saved["label_column"] == "colour"


def test_upload_a_bad_table_shows_where_the_problem_is(empty_home, open_page):
    at = _upload(open_page("data"), "bad.csv", BAD_CSV.encode(), "text/csv")
    _no_exceptions(at)
    assert at.warning[0].value == "1 cell is empty or unusable (b 1). Choose what to do with them:"
    at.radio(key="data.missing").set_value("refuse").run()
    message = " ".join(shown(e.value) for e in at.error)
    assert "bad.csv" in message and "row 4" in message and "'b'" in message
    assert not at.get("plotly_chart")


def test_upload_images_and_arrays(empty_home, open_page):
    at = _upload(open_page("data"), "pets.zip", _image_zip(), "application/zip")
    _no_exceptions(at)
    assert set(_counts_chart(at)["kept"]) == {"cat", "dog"}
    assert len(at.get("plotly_chart")) == 2, "image grid and counts chart"
    at.file_uploader(key="data.upload").set_value(("organs.npz", _npz(), "application/octet-stream")).run()
    _no_exceptions(at)
    assert set(_counts_chart(at)["kept"]) == {"0", "1", "2"}
    assert any("own test split" in e.proto.label for e in at.get("expander"))


def test_sample_table_is_offered_and_loads(empty_home, open_page):
    from app.data_forms import SAMPLE_TABLE
    from core.data import load_table

    at = open_page("data")
    at.radio(key="data.kind").set_value("Upload a file").run()
    assert not at.exception
    assert any("sample table" in b.proto.label for b in at.get("download_button"))
    dataset = load_table(SAMPLE_TABLE.read_bytes(), SAMPLE_TABLE.name)
    counts = dict(zip(dataset.class_names, np.bincount(dataset.y), strict=True))
    assert counts == {"common": 240, "frequent": 110, "rare": 14, "uncommon": 40}


# --- real tables: roles, gaps, natural imbalance, stored uploads ---------------------------

def patients_csv(rows: int = 200) -> bytes:
    """An export with an ID, a number with gaps, a category, free text, a constant column and a
    diagnosis from common to rare (names sort differently from frequencies)."""
    dx = (["benign"] * 30 + ["cyst"] * 12 + ["atypia"] * 5 + ["malignant"] * 3)
    lines = ["patient_id,cholesterol,site,notes,diagnosis,export"]
    for i in range(rows):
        chol = "" if i % 25 == 7 else f"{150 + (i * 37) % 120}"
        note = f"visit {i}: seen on ward {i % 7} for {i % 11} days"
        lines.append(f"P{i:05d},{chol},{['north', 'south'][i % 2]},{note},{dx[i % len(dx)]},v3")
    return ("\n".join(lines) + "\n").encode()


def _roles(at) -> dict[str, str]:
    table = next(d.value for d in at.dataframe if "Role" in d.value.columns)
    return dict(zip(table["Column"], table["Role"]))


def test_an_upload_shows_column_roles_gaps_and_its_real_imbalance(empty_home, open_page):
    at = _upload(open_page("data"), "patients.csv", patients_csv(), "text/csv")
    _no_exceptions(at)
    assert _roles(at) == {"patient_id": "ID-like", "cholesterol": "number", "site": "category", "notes": "free text",
                          "diagnosis": "label", "export": "constant"}
    assert any(e.proto.label == "Columns: 3 used as features, 2 left out" for e in at.get("expander"))
    assert any("Left out of the features: **patient_id** (ID-like), **export** (constant)"
               in shown(c.value) for c in at.caption), "free text is a feature, through the text encoder"
    assert any("Guessed **diagnosis**: named like a label, with 4 classes" in c.value for c in at.caption)
    assert at.warning[0].value == "8 cells are empty or unusable (cholesterol 8). Choose what to do with them:"
    gaps = at.radio(key="data.missing")
    assert gaps.value == "fill" and "Drop the 8 rows with a gap (4.0% of the table; the rarest class" in gaps.options[1]
    # uploads start at their real class sizes, most frequent first; the old profile is only offered
    assert at.radio(key="data.profile").value == "none"
    chart = _counts_chart(at)
    assert chart["order"] == ["benign", "cyst", "atypia", "malignant"]
    assert any("**10 times** as many" in m.value for m in at.markdown)
    assert not any(b.key == "offer.apply_profile" for b in at.button), "the built-in default is nobody's last profile"
    at.button(key="data.save").click().run()
    assert at.session_state[state.DATA_CONFIG]["missing"] == "fill"
    assert any("patients.csv (10 : 1, natural)" in shown(s.value) for s in at.success)


def test_changing_a_role_in_the_table_changes_the_features(empty_home, open_page):
    at = _upload(open_page("data"), "patients.csv", patients_csv(), "text/csv")
    editor = next(d for d in at.data_editor if "Role" in d.value.columns)
    at.session_state[editor.key] = {"edited_rows": {2: {"Role": "left out"}, 5: {"Role": "category"}},
                                    "added_rows": [], "deleted_rows": []}
    at.run()
    _no_exceptions(at)
    assert _roles(at)["site"] == "left out" and _roles(at)["export"] == "category"
    assert any(e.proto.label == "Columns: 3 used as features, 2 left out" for e in at.get("expander"))
    at.button(key="data.save").click().run()
    assert at.session_state[state.DATA_CONFIG]["column_roles"] == {"site": "ignore", "export": "categorical"}


def test_choosing_to_refuse_gaps_names_them(empty_home, open_page):
    at = _upload(open_page("data"), "patients.csv", patients_csv(), "text/csv")
    at.radio(key="data.missing").set_value("refuse").run()
    message = shown(at.error[0].value)
    assert message.startswith("patients.csv: 8 cells cannot be used: 'cholesterol' rows 9, 34 and 6 more (empty)")
    at.radio(key="data.missing").set_value("drop").run()
    assert not at.error and _counts_chart(at)


def test_the_ratio_text_agrees_with_the_numbers(empty_home, open_page):
    at = _upload(open_page("data"), "patients.csv", patients_csv(), "text/csv")
    at.radio(key="data.profile").set_value("exp").run()
    at.slider(key="data.ratio").set_value(71.0).run()
    _no_exceptions(at)
    ratio = float(next(m for m in at.metric if m.label == "Imbalance ratio").value)
    text = next(m.value for m in at.markdown if "Exponential" in m.value)
    assert ratio != 71 and f"about 1/{ratio:.0f} as many" in text and "you asked for 1/71" in text
    assert "about 1/50 as many" in describe_profile("exp", 50, 0.5, 10, achieved=50.2)


def test_a_rejected_upload_is_not_kept(empty_home, open_page):
    at = _upload(open_page("data"), "broken.zip", b"PK\x03\x04 not really a zip", "application/zip")
    assert shown(at.error[0].value).startswith("broken.zip: not a readable ZIP archive")
    assert not list((empty_home / "uploads").glob("*broken*"))
    with pytest.raises(DataError):
        data_forms.open_upload(b"a\n1\n2\n", "one.csv")
    assert not list((empty_home / "uploads").glob("*one.csv"))
    assert data_forms.open_upload(GOOD_CSV.encode(), "good.csv").endswith("good.csv")


def test_uploads_no_run_uses_can_be_removed(empty_home, open_page):
    from core.data import list_uploads, save_upload

    save_upload(GOOD_CSV.encode(), "old.csv")
    at = _upload(open_page("data"), "patients.csv", patients_csv(), "text/csv")
    assert any(e.proto.label.startswith("Stored uploads: 2 files") for e in at.get("expander"))
    at.button(key="uploads.remove_unused").click().run()
    _no_exceptions(at)
    assert [u.name for u in list_uploads()] == ["patients.csv"], "the upload in use stays"


def test_the_old_profile_stays_on_offer_across_uploads(empty_home, open_page):
    at = open_page("data")
    at.slider(key="data.ratio").set_value(20.0).run()  # the person's own profile, not the default
    at = _upload(at, "first.csv", GOOD_CSV.encode(), "text/csv")
    offer = next(b for b in at.button if b.key == "offer.apply_profile")
    assert offer.proto.label == "Use my last profile (exp, ratio 20)"
    assert at.radio(key="data.profile").value == "none"
    at.file_uploader(key="data.upload").set_value(("patients.csv", patients_csv(), "text/csv")).run()
    _no_exceptions(at)
    assert at.radio(key="data.profile").value == "none"
    assert any(b.key == "offer.apply_profile" for b in at.button)
    assert at.selectbox(key="data.label_column").value == "diagnosis", "each file gets its own label guess"
    next(b for b in at.button if b.key == "offer.apply_profile").click().run()
    assert at.radio(key="data.profile").value == "exp" and at.slider(key="data.ratio").value == 20.0


def test_a_table_label_is_marked_ordinal_and_its_stages_ordered(empty_home, open_page):
    at = open_page("data")
    at.selectbox(key="data.builtin").set_value("blobs2d").run()
    at.toggle(key="data.ordinal").set_value(True).run()
    at.multiselect(key="data.ordinal.order").set_value(["class 2", "class 0"]).run()
    _no_exceptions(at)
    assert any("Pick every class once" in w.value for w in at.warning)
    at.multiselect(key="data.ordinal.order").set_value(["class 2", "class 0", "class 1"]).run()
    _no_exceptions(at)
    assert any("The last, **class 1**, is the rare event" in c.value for c in at.caption)
    at.button(key="data.save").click().run()
    assert at.session_state[state.DATA_CONFIG]["ordinal"] == ["class 2", "class 0", "class 1"]


def test_the_built_in_ordered_stages_need_no_choice(empty_home, open_page):
    at = open_page("data")
    at.selectbox(key="data.builtin").set_value("ordinal_stages").run()
    _no_exceptions(at)
    assert any("seen → clicked → added to cart → bought" in c.value for c in at.caption)
    assert not at.get("toggle") or all(t.key != "data.ordinal" for t in at.toggle)
