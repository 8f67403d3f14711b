"""Free text on the pages: the Data page's look at a text column and its choice of text
encoder, and the Error gallery's note with each word coloured by what it did to the answer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from app.widgets import explain, params_form, starting_value
from core.analysis import case_word_attributions
from core.config import DataConfig
from core.data import TEXT_ENCODERS, TUNING_SECONDS_PER_1000_CPU, Dataset, distinctive_words, gpu_available, \
    text_statistics
from core.text import md, number
from core.viz import escape_text, highlighted_text_html, text_length_figure

__all__ = ["text_data_panel", "text_case_panel", "train_text_lookup", "report_text_html"]

# Notes coloured through the language model on the page, kept for the HTML report (each costs
# seconds): {(run id, sample id, text column): [(class, spans, attribution), (class, ...)]}.
LANGUAGE_MODEL_WORDS = "gallery.language_model_words"


def text_data_panel(dataset: Dataset, saved: DataConfig) -> dict[str, Any]:
    """For data with free text: per-class lengths, vocabulary and telling words of each
    text column, and the encoder choice; returns `{"text_encoder": ...}` for the config
    (empty without free text)."""
    if not dataset.text_names:
        return {}
    st.subheader("Free text")
    for t, column in enumerate(dataset.text_names):
        texts = dataset.texts[:, t]
        stats = text_statistics(texts, dataset.y, dataset.class_names)
        telling = distinctive_words(texts, dataset.y, dataset.class_names)
        # the six most telling: a longer list is cut off in the table at a laptop's width
        stats["telling words"] = [", ".join(w for w, _ in telling[c][:6]) or "(too few texts)" for c in stats["class"]]
        st.markdown(f"**{md(column)}**: {len(texts):,} texts")
        # one under the other: beside the chart the telling words were cut at a laptop's width
        st.plotly_chart(text_length_figure(stats), width="stretch", key=f"data.text.lengths.{t}")
        st.dataframe(stats[["class", "texts", "median words", "different words", "telling words"]],
                     hide_index=True, width="stretch")
    explain("Telling words, the six most telling: found in a class's texts more often than in the others' "
            "(log-odds, at least two texts). A rare class with few telling words, or the same ones as a common "
            "class, will be hard to learn.")
    names = TEXT_ENCODERS.names()
    current = saved.text_encoder.name if saved.text_encoder is not None else "tfidf"
    name = st.selectbox("How the text becomes numbers", names, format_func=lambda n: TEXT_ENCODERS.info(n).label,
                        key=starting_value("data.text_encoder", current if current in names else "tfidf"))
    info = TEXT_ENCODERS.info(name)
    learns = info.capabilities.get("supervised")
    st.caption(info.description + (" Fitted on the training texts and their labels only." if learns
                                   else " Fitted on the training texts only."))
    if learns and not gpu_available():
        st.info("This machine has no GPU, so tuning runs on its processor: about "
                f"{TUNING_SECONDS_PER_1000_CPU} s per 1,000 training texts and pass here, again for every seed or "
                "fold; a run over the same texts, labels and settings reuses the tuning.")
    with st.expander("Text encoder settings"):
        params = params_form(TEXT_ENCODERS.info(name), key="data.text_encoder.params")
    return {"text_encoder": {"name": name, **params}}


def train_text_lookup(splits: Any, subset: np.ndarray | None) -> Callable[[np.ndarray], list[str]] | None:
    """The free text of stored training cases (rows of the run's train subset), or None."""
    if subset is None or getattr(splits, "texts_train", None) is None:
        return None
    return lambda rows: [" · ".join(splits.texts_train[subset[r]]) for r in rows]


def text_case_panel(bundle: Any, splits: Any, case: Any, row_maps: Mapping[str, np.ndarray], *,
                    label: Callable[[int], str], model: Any = None) -> None:
    """The case's note(s) twice: words coloured by their pull towards the true class and
    towards the predicted one. Exact for the linear model; else the chosen method's maps."""
    exact = bundle.config.model.name == "linear"
    if case.true == case.pred:
        return
    maps = None if exact else (row_maps["true"], row_maps["pred"])
    attributions = case_word_attributions(splits, bundle.artifacts, int(case.row), int(case.true), int(case.pred),
                                          exact=exact, maps=maps)
    with st.expander("The text, word by word", expanded=True):
        for column, words in attributions:
            if not words.words:
                st.caption(f"{md(column)}: empty.")
                continue
            scale = float(np.max(np.abs(np.concatenate([words.towards_target, words.towards_other])), initial=0.0))
            if scale == 0:
                _through_the_language_model(bundle, splits, case, column, model, label=label)
                continue
            for scores, k in ((words.towards_target, case.true), (words.towards_other, case.pred)):
                title = f"{column} · towards {label(k)}"
                st.html(highlighted_text_html(" ".join(words.words), _joined_spans(words.words), scores,
                                              title=title, scale=scale))
            if exact:
                st.caption(f"Exact for this linear model: the words add up to {number(words.difference.sum(), 3, True)} "
                           f"and everything else (other columns, the bias) to "
                           f"{number(words.rest_target - words.rest_other, 3, True)}, together "
                           f"{number(words.explained(), 3, True)}: the gap between the true and the predicted "
                           f"class's scores ({number(words.gap, 3, True)}).")
        explain(":red[Red] words pushed the model towards that class, :blue[blue] ones away; hover a word for its "
                "number. Words that push towards the predicted class more than towards the true one are what "
                "misled the model.")


def _through_the_language_model(bundle: Any, splits: Any, case: Any, column: str, model: Any, *,
                                label: Callable[[int], str]) -> None:
    """For sentence embeddings: the note as written and, on request, integrated gradients
    through MiniLM and the classifier (a few seconds a class on a CPU)."""
    t = list(splits.text_names).index(column)
    block = [b for b in splits.columns if b.role == "text"][t]
    text = str(splits.texts_test[int(bundle.artifacts.test_index[int(case.row)]), t])
    key = f"gallery.words.{bundle.record.id}.{case.sample_id}.{t}"
    if model is None or not st.toggle("Colour the words through the language model (a few seconds)", key=key,
                                      help="Integrated gradients from a note of padding to this note, through "
                                           "MiniLM and the classifier, summed per word."):
        st.caption(f"{md(column)}: the model reads this note's meaning (384 numbers), not its words.")
        st.html(f"<div>{escape_text(text)}</div>")
        return
    from core.analysis import transformer_word_attribution

    row = splits.x_test[int(bundle.artifacts.test_index[int(case.row)])]
    device = str(next(model.parameters()).device)
    scaling = splits.feature_mean[block.start:block.stop], splits.feature_std[block.start:block.stop]
    with st.spinner("Integrating through the language model…"):
        sides = [(k, transformer_word_attribution(splits.text_encoders[t], model, text, row, (block.start, block.stop),
                                                  *scaling, int(k), device=device)) for k in (case.true, case.pred)]
    st.session_state.setdefault(LANGUAGE_MODEL_WORDS, {})[(bundle.record.id, str(case.sample_id), t)] = [
        (int(k), words.spans, words.attribution) for k, words in sides]
    scale = max(float(np.max(np.abs(w.attribution), initial=0.0)) for _, w in sides)
    for k, words in sides:
        st.html(highlighted_text_html(text, words.spans, words.attribution, title=f"{column} · towards {label(k)}",
                                      scale=scale))
    through = " through this run's fine-tuned MiniLM" if splits.text_encoders[t].supervised else ""
    st.caption(f"Integrated gradients{through}; the words add up to the change of each class's score from a note of "
               f"padding to this one, to within {max(w.relative_error for _, w in sides):.1%}.")


def _joined_spans(words: list[str]) -> list[tuple[int, int]]:
    spans, at = [], 0
    for w in words:
        spans.append((at, at + len(w)))
        at += len(w) + 1
    return spans


def report_text_html(bundle: Any, splits: Any, cases: pd.DataFrame, maps: Mapping[str, np.ndarray]) -> list[str]:
    """Each case's coloured note(s) for the HTML report (escaped HTML), aligned with `cases`.
    A note read through sentence embeddings is coloured when its words were coloured through
    the language model on the page (this session); otherwise it says how to colour it."""
    exact = bundle.config.model.name == "linear"
    through = st.session_state.get(LANGUAGE_MODEL_WORDS, {})
    out = []
    for i, case in enumerate(cases.itertuples(index=False)):
        other = int(case.pred)
        pair = None if exact else (maps["true"][i], maps["pred"][i])
        parts = []
        for t, (column, words) in enumerate(case_word_attributions(splits, bundle.artifacts, int(case.row),
                                                                    int(case.true), other, exact=exact, maps=pair)):
            text, spans = " ".join(words.words), _joined_spans(words.words)
            if np.any(words.difference):
                parts.append(highlighted_text_html(
                    text, spans, words.difference,
                    title=f"{column}: red towards the true class, blue towards the predicted one"))
                continue
            sides = through.get((bundle.record.id, str(case.sample_id), t))
            if not sides:  # sentence embeddings place nothing on words by themselves
                parts.append(highlighted_text_html(
                    text, spans, words.difference,
                    title=f"{column} (read as its meaning, not word by word; to colour its words here, turn on "
                          "\"Colour the words through the language model\" on its card, then download again)"))
                continue
            note = str(splits.texts_test[int(bundle.artifacts.test_index[int(case.row)]), t])
            scale = max(float(np.max(np.abs(a), initial=0.0)) for _, _, a in sides)
            for k, word_spans, attribution in sides:
                side = "true" if k == int(case.true) else "predicted"
                parts.append(highlighted_text_html(
                    note, word_spans, attribution, scale=scale,
                    title=f"{column} · towards the {side} class, through the language model (red towards, "
                          "blue away)"))
        out.append("".join(parts))
    return out
