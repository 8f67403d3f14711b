"""The rare-last-stage lesson (PRESTO) on a person's uploaded ordinal table: picked on the
Lessons page from the stored uploads whose label is marked as ordered stages, refused in
plain words for the others, trained, and its verdict read from its own runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.config import DataConfig

STAGES = ["seen", "clicked", "cart", "bought"]


def _table(rows: int = 200, seed: int = 0) -> bytes:
    """A visit table: four measurements push a visit through the stages, the last one rare."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 4))
    score = x @ np.array([1.0, 0.8, 0.6, 0.4]) + rng.logistic(size=rows)
    stage = np.digitize(score, np.quantile(score, [0.5, 0.8, 0.94]))
    lines = ["width,depth,height,weight,stage"] + [",".join(f"{v:.4f}" for v in row) + f",{STAGES[s]}"
                                                   for row, s in zip(x, stage)]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def uploads(empty_home):
    from core.data import save_upload

    ordinal = save_upload(_table(), "visits.csv")
    plain = save_upload(_table(seed=1).replace(b"bought", b"left"), "other.csv")
    data = DataConfig(source=ordinal, label_column="stage", ordinal=STAGES)
    return {"home": empty_home, "data": data, "plain": plain}


def test_only_an_upload_with_ordered_stages_and_enough_last_stage_rows_is_accepted(uploads):
    from core.lessons import create_lesson, own_data_problem

    data = uploads["data"]
    assert own_data_problem("rare_last_stage", data) is None
    assert "not marked as ordered stages" in own_data_problem("rare_last_stage", data.model_copy(update={"ordinal": None}))
    two = DataConfig(source=uploads["plain"], label_column="stage", ordinal=["seen", "clicked", "cart", "left"])
    assert own_data_problem("rare_last_stage", two) is None
    wrong = two.model_copy(update={"ordinal": ["seen", "clicked", "cart", "bought"]})
    assert "cannot be read" in own_data_problem("rare_last_stage", wrong) and "'left'" in own_data_problem(
        "rare_last_stage", wrong)
    assert "runs only on its built-in data" in own_data_problem("smote_vs_random", data)
    with pytest.raises(ValueError, match="not marked as ordered stages"):
        create_lesson("rare_last_stage", "tiny", data.model_copy(update={"ordinal": None}))
    lesson = create_lesson("rare_last_stage", "tiny", data)
    assert lesson.spec.base["data"]["source"] == data.source and lesson.spec.base["data"]["ordinal"] == STAGES
    assert "visits.csv" in lesson.setup and "seen → clicked → cart → bought" in lesson.setup
    assert lesson.spec.spec_hash != create_lesson("rare_last_stage", "tiny").spec.spec_hash  # a sweep of its own


@pytest.mark.slow  # six real fits, PRESTO's penalty chosen by cross-validation in each: about 4 s here
def test_the_lesson_runs_on_the_upload_and_reads_its_verdict_from_those_runs(uploads):
    from test_lessons import InlineExecutor

    from core.lessons import create_lesson, lesson_runs, lesson_verdict, run_lesson
    from core.store import RunStore

    store = RunStore(uploads["home"])
    lesson = create_lesson("rare_last_stage", "tiny", uploads["data"])
    counts = run_lesson(store, lesson, InlineExecutor())
    assert counts["failed"] == 0 and counts["done"] == lesson.n_runs == 6
    runs = lesson_runs(store, lesson)
    assert {r.config.data.source for r in runs} == {uploads["data"].source}
    assert all(r.artifacts.num_classes == 4 for r in runs)
    verdict = lesson_verdict(store, lesson)
    assert verdict.n_runs == 6 and len(verdict.findings) == 4
    first = verdict.findings[0]
    assert first.n == 2 and math.isfinite(first.estimate), first.to_dict()  # PRESTO vs separate, paired by fold
    from core.lessons._stages import last_stage_brier

    by_fold = {m: {r.config.data.fold.index: last_stage_brier(r) for r in runs if r.cell["method"] == m}
               for m in ("presto", "separate")}
    assert first.estimate == pytest.approx(np.mean([by_fold["presto"][f] - by_fold["separate"][f] for f in (0, 1)]))


def test_the_lessons_page_offers_the_marked_upload_and_says_why_not_the_other(uploads, open_page):
    from app import state

    at = open_page()
    at.session_state[state.DATA_CONFIG] = uploads["data"].model_dump(mode="json")
    at.switch_page("../pages/lessons.py").run()
    at.selectbox(key="lessons.name").set_value("rare_last_stage").run()
    radio = at.radio(key="lessons.data.rare_last_stage")
    from conftest import shown

    assert len(radio.options) == 2 and shown(radio.options[1]) == "visits.csv · label stage · stages seen → clicked → " \
        "cart → bought"
    radio.set_value(uploads["data"].model_dump_json()).run()
    assert not at.exception, [e.value for e in at.exception]
    setup = shown(" ".join(c.value for c in at.caption))
    assert "visits.csv" in setup and "Your uploaded table" in setup
    assert any("other.csv" in shown(m.value) and "ordered stages" in m.value for m in at.markdown)
    assert any("trainings" in m.value for m in at.markdown), "its own sweep, not run yet"


def test_the_command_runs_the_lesson_on_a_runs_upload_or_says_why_not(uploads, capsys):
    import json

    from core.cli import main
    from core.config import RunConfig
    from core.store import RunStore

    store = RunStore(uploads["home"])
    ordinal = store.create_run(RunConfig(data=uploads["data"], model={"name": "proportional_odds"}))
    assert main(["lesson", "rare_last_stage", "--size", "tiny", "--data-from", ordinal, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"]["status"] == "not run" and "visits.csv" in shown["lesson"]["setup"]
    plain = store.create_run(RunConfig(data=DataConfig(source=uploads["plain"], label_column="stage")))
    assert main(["lesson", "rare_last_stage", "--data-from", plain]) == 2
    err = capsys.readouterr().err
    assert "cannot use the data of run" in err and "not marked as ordered stages" in err and err.count("\n") == 1
