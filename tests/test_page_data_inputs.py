"""The Data page on inputs that used to be misread: labels spelled several ways, what dropping
rows costs each class, free text, the role picker and the last-profile offer."""

from __future__ import annotations

from app import state
from conftest import shown


def _no_exceptions(at) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _upload(at, name: str, data: bytes, mime: str = "text/csv"):
    at.radio(key="data.kind").set_value("Upload a file").run()
    at.file_uploader(key="data.upload").set_value((name, data, mime)).run()
    return at


def _spelled_csv(rows: int = 60) -> bytes:
    spellings = ["Yes", "yes ", "YES", "no", "No", "no"]
    lines = ["age,score,outcome"] + [f"{20 + i},{i % 5},{spellings[i % len(spellings)]}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def _class_names_in_chart(at) -> set[str]:
    import json

    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if spec["data"] and spec["data"][0].get("name") == "available (before)":
            return set(spec["data"][0]["x"])
    raise AssertionError("no class-counts chart")


def test_spelled_labels_are_offered_as_one_merge_click(empty_home, open_page):
    at = _upload(open_page("data"), "survey.csv", _spelled_csv())
    _no_exceptions(at)
    warning = next(w.value for w in at.warning if "more than one way" in w.value)
    assert warning.startswith("2 classes are written in more than one way")
    groups = next(d.value for d in at.dataframe if "Merged into" in d.value.columns)
    assert sorted(groups["Merged into"]) == ["YES", "no"], "most common spelling; ties by character order"
    assert any("'yes' (10)" in cell for cell in groups["Written in the file as (rows)"])
    assert not at.get("plotly_chart"), "nothing is counted until the person chooses"
    at.button(key="offer.merge_labels").click().run()
    _no_exceptions(at)
    assert len(_class_names_in_chart(at)) == 2
    assert any("counted as one class" in i.value for i in at.info)
    at.button(key="data.save").click().run()
    assert at.session_state[state.DATA_CONFIG]["merge_labels"] is True
    at.button(key="offer.keep_labels").click().run()
    _no_exceptions(at)
    assert _class_names_in_chart(at) == {"Yes", "yes", "YES", "no", "No"}


def _clinic_csv(rows: int = 600, phrases: int = 72) -> bytes:
    """A lab value with gaps mostly in the rare class, a ward, a free-text note from `phrases`
    phrases, and a diagnosis from common to rare."""
    notes = [f"patient reports {w} pain since day {k}" for k in range(phrases // 4)
             for w in ("mild", "severe", "no", "recurring")][:phrases]
    dx = ["benign"] * 16 + ["cyst"] * 3 + ["malignant"]
    lines = ["ldl,ward,note,diagnosis"]
    for i in range(rows):
        d = dx[i % len(dx)]
        gap = (d == "malignant" and i % 3 == 0) or i % 29 == 0
        lines.append(f"{'' if gap else 2 + (i * 7) % 30 / 10},{['north', 'south', 'east'][i % 3]},"
                     f"{notes[i % phrases]},{d}")
    return ("\n".join(lines) + "\n").encode()


def _roles(at) -> dict[str, str]:
    table = next(d.value for d in at.dataframe if "Role" in d.value.columns)
    return dict(zip(table["Column"], table["Role"]))


def test_free_text_is_proposed_as_text_and_a_role_changes_in_one_click(empty_home, open_page):
    at = _upload(open_page("data"), "clinic.csv", _clinic_csv())
    _no_exceptions(at)
    assert _roles(at)["note"] == "free text"
    table = next(d.value for d in at.dataframe if "Role" in d.value.columns).set_index("Column")
    # used through a text encoder (words as features), not as 72 one-hot categories
    assert "72 different phrases" in table.loc["note", "Why"] and table.loc["note", "Used"] == "✓ feature"
    assert any("click its new role" in shown(c.value) for c in at.caption)
    at.selectbox(key="data.role_column").set_value("ward").run()
    pills = next(p for p in at.get("button_group") if p.proto.label == "Role of ward")
    pills.set_value("left out").run()
    _no_exceptions(at)
    assert _roles(at)["ward"] == "left out"
    at.button(key="data.save").click().run()
    assert at.session_state[state.DATA_CONFIG]["column_roles"] == {"ward": "ignore"}
    pills = next(p for p in at.get("button_group") if p.proto.label == "Role of ward")
    pills.set_value("category").run()
    assert _roles(at)["ward"] == "category"
    at.button(key="data.save").click().run()
    assert at.session_state[state.DATA_CONFIG]["column_roles"] == {}, "back to the detected role: no override"


def _class_loss(data: bytes) -> dict[str, tuple[int, int]]:
    """(rows, rows without a gap) per class, counted straight from the file's text."""
    import csv
    import io

    out: dict[str, list[int]] = {}
    for row in csv.DictReader(io.StringIO(data.decode())):
        now_after = out.setdefault(row["diagnosis"], [0, 0])
        now_after[0] += 1
        now_after[1] += row["ldl"] != ""
    return {k: (v[0], v[1]) for k, v in out.items()}


def test_dropping_gaps_shows_what_each_class_loses_before_it_is_chosen(empty_home, open_page):
    data = _clinic_csv()
    at = _upload(open_page("data"), "clinic.csv", data)
    _no_exceptions(at)
    loss = _class_loss(data)
    rare_now, rare_after = loss["malignant"]
    assert rare_after < rare_now and min(n for n, _ in loss.values()) == rare_now
    gaps = at.radio(key="data.missing")
    assert gaps.value == "fill", "nothing is dropped yet"
    lost = f"{1 - rare_after / rare_now:.0%}"
    assert f"the rarest class, malignant, loses {lost} of its rows" in gaps.options[1]
    table = next(d.value for d in at.dataframe if "Lost" in d.value.columns).set_index("Class")
    assert {c: (int(r.Now), int(r.After)) for c, r in table.iterrows()} == loss
    before = max(n for n, _ in loss.values()) / rare_now
    after = max(a for _, a in loss.values()) / min(a for _, a in loss.values())
    summary = next(shown(c.value) for c in at.caption if "imbalance ratio goes from" in c.value)
    assert f"from **{before:.0f} : 1** to **{after:.0f} : 1**" in summary
    assert f"keeps {rare_after} of its {rare_now} rows" in summary
