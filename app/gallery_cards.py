"""Pieces of the Error gallery page: the run's model on the device, attribution maps with a
progress bar, and one card per case."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from app.services import get_store
from app.widgets import table_height
from core.analysis import case_attributions, display_image, load_run_model
from core.store import RunStore
from core.text import md
from core.train import resolve_device
from core.viz import attribution_pair_figure, feature_attribution_bars, image_with_attribution

__all__ = ["DEVICE", "run_model", "attribution_maps", "case_card"]

DEVICE = str(resolve_device("auto"))  # the GPU when there is one


@st.cache_resource(show_spinner="Loading the trained model…", max_entries=4)
def _model(home: str, run_id: str):
    return load_run_model(RunStore(home), run_id, device=DEVICE)


def run_model(run_id: str):
    """The run's trained model on DEVICE, loaded once per run; FileNotFoundError without one."""
    return _model(str(get_store().home), run_id)


def attribution_maps(run_dir: Path, model, inputs: np.ndarray, sample_ids: Sequence[int],
                     targets: Mapping[str, Sequence[int]], *, method: str, params: dict, what: str) -> dict:
    """`case_attributions` with a progress bar; bad method settings stop the page with the reason."""
    bar = st.progress(0.0, text=f"Computing {what}…")
    try:
        return case_attributions(run_dir, model, inputs, list(sample_ids), method=method, targets=targets,
                                 params=params, device=DEVICE,
                                 progress=lambda d, t: bar.progress(d / max(t, 1), text=f"Computing {what}… {d}/{t}"))
    except ValueError as exc:
        st.error(f"These method settings do not work here: {md(exc)}")
        st.stop()
    finally:
        bar.empty()


def case_card(case: Any, x: np.ndarray, probs: np.ndarray, maps: Mapping[str, np.ndarray], *,
              label: Callable[[int], str], names: Sequence[str], features: Sequence[str], image: bool,
              chosen: int | None, opacity: float | None, chart_key: str,
              values: pd.DataFrame | None = None) -> None:
    """One case: the input, true vs predicted with the top-3 probabilities, and the maps for the
    true and the predicted class (or the chosen one) side by side. `values` (a table's
    `feature_table`) shows the row in the file's units beside the standardised values."""

    def chart(fig, name: str) -> None:
        st.plotly_chart(fig, width="stretch", key=f"{chart_key}.{case.sample_id}.{name}")

    with st.container(border=True):
        left, right = st.columns([1, 3] if image else [1, 2])
        top3 = ", ".join(f"{md(names[k])} ({probs[k]:.0%})" for k in np.argsort(-probs)[:3])
        left.markdown(f"**Sample {case.sample_id}** · {'✅ right' if case.correct else '❌ wrong'}  \n"
                      f"True: **{md(label(case.true))}**  \nPredicted: **{md(label(case.pred))}**  \nMost likely: {top3}")
        if image:
            left.image(display_image(x), caption="the input", width=160)
        else:
            table = values if values is not None else pd.DataFrame({"feature": features, "standardised": x})
            left.dataframe(table, hide_index=True, height=table_height(len(table), 250),
                           column_config={"value": st.column_config.TextColumn(
                               "value", help="As in the data file (yes / no: whether the row has that category)."),
                               "standardised": st.column_config.NumberColumn(
                               "standardised", format="%.2f",
                               help="What the model saw: 0 is the training average, ±1 one typical spread away.")})
        panels = ([("chosen", "towards", chosen)] if chosen is not None else
                  [("true", "true:", case.true)] + ([("pred", "predicted:", case.pred)] if not case.correct else []))
        with right:
            if image and len(panels) == 2:
                chart(attribution_pair_figure(x, maps["true"], maps["pred"], label(case.true), label(case.pred),
                                              opacity=opacity).update_layout(height=300), "pair")
                return
            for col, (which, word, k) in zip(st.columns(2), panels):
                title = f"{word} {label(k)}"
                with col:
                    chart(image_with_attribution(x, maps[which], opacity, title=title).update_layout(
                        height=300, margin=dict(l=10, r=10, t=40, b=10)) if image else
                          feature_attribution_bars(maps[which], features, top=8, title=title), which)
