"""Pieces of the Robustness page: the attack settings, one run's robustness table (computed
once per run and settings), the per-class table, and the gallery of attacked rare-class cases."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import streamlit as st

from app.gallery_cards import DEVICE, run_model
from app.services import get_store, load_bundle, load_splits
from app.widgets import explain, table_height
from core.analysis import (
    ATTACK_WORDS, DEFAULT_EPSILONS, adversarial_examples, attribute, compare_attacked, display_image,
    robust_predictions, robustness_table,
)
from core.methods import ATTACKS
from core.text import md
from core.viz import image_with_attribution

__all__ = ["attack_settings", "robustness_of", "paired_words", "class_table", "attacked_gallery"]


def attack_settings(modality: str, key: str = "robustness") -> tuple[str, int, tuple[float, ...]]:
    """The attack, its steps and the budgets to try (0, the clean inputs, always among them)."""
    c1, c2, c3 = st.columns([1.4, 0.8, 2])
    attack = c1.selectbox("Attack", ATTACKS.names(), index=ATTACKS.names().index("pgd"), key=f"{key}.attack",
                          format_func=lambda n: ATTACKS.info(n).label, help="; ".join(
                              f"{i.label}: {i.description}" for i in ATTACKS.infos()))
    iterative = ATTACKS.info(attack).capabilities["iterative"]
    steps = int(c2.number_input("Steps", 1, 50, 5, key=f"{key}.steps", disabled=not iterative,
                                help="Gradient steps of the attack (more: a stronger attack, and slower)."))
    defaults = DEFAULT_EPSILONS[modality]
    choices = sorted({*defaults, 0.003, 0.2, 0.5, 1.0} - {0.0})
    chosen = c3.multiselect("Attack sizes (epsilon)", choices, [e for e in defaults if e > 0], key=f"{key}.eps",
                            help=f"How far each input may be moved, in {ATTACK_WORDS[modality]}. "
                                 "0 (the clean inputs) is always included.")
    return attack, steps, tuple(sorted({0.0, *chosen}))


@st.cache_data(show_spinner="Attacking the test cases…", max_entries=16)
def _robustness(home: str, run_id: str, updated: float, attack: str, steps: int,
                epsilons: tuple[float, ...]) -> tuple[pd.DataFrame, dict[float, np.ndarray]]:
    bundle = load_bundle(run_id)
    x = load_splits(bundle.config.data).x_test[bundle.artifacts.test_index]
    y = bundle.artifacts.labels
    params = {"steps": steps} if ATTACKS.info(attack).capabilities["iterative"] else {}
    predictions = robust_predictions(run_model(run_id), x, y, attack=attack, params=params, epsilons=epsilons,
                                     modality=bundle.modality, device=DEVICE)
    return robustness_table(y, predictions, bundle.groups, bundle.class_names,
                            bundle.artifacts.class_counts), predictions


def robustness_of(run_id: str, attack: str, steps: int,
                  epsilons: tuple[float, ...]) -> tuple[pd.DataFrame, dict[float, np.ndarray]] | None:
    """The run's robustness table and its predictions on attacked copies per epsilon, or None
    (with a note) for a run without a network."""
    store = get_store()
    try:
        run_model(run_id)
    except FileNotFoundError:
        st.info("This run is a table baseline: it has no network whose gradient an attack could follow. Pick a "
                "run with a network (mlp, small_cnn, resnet32).")
        return None
    return _robustness(str(store.home), run_id, store.get(run_id).updated, attack, steps, epsilons)


def paired_words(pred_a: np.ndarray, pred_b: np.ndarray, labels: np.ndarray, num_classes: int) -> str:
    """The project's paired verdict (paired bootstrap of balanced accuracy) on attacked copies."""
    return compare_attacked(pred_a, pred_b, labels, num_classes, n_resamples=1000)[0].verdict


def class_table(table: pd.DataFrame) -> None:
    """Per class: clean and attacked accuracy at each epsilon, as "acc [low, high]"."""
    rows = table[table["scope"] == "class"]
    cells = rows.assign(text=[f"{a:.0%} [{lo:.0%}, {hi:.0%}]" if np.isfinite(a) else "no test cases"
                              for a, lo, hi in zip(rows["accuracy"], rows["low"], rows["high"])])
    wide = cells.pivot_table(index=["name", "group", "count_train", "n_test"], columns="epsilon", values="text",
                             aggfunc="first", sort=False).reset_index()
    wide.columns = ["class", "group", "training examples", "test cases",
                    *[f"epsilon {e:g}" + (" (clean)" if e == 0 else "") for e in wide.columns[4:]]]
    wide = wide.sort_values("training examples", ascending=False)
    st.dataframe(wide, hide_index=True, width="stretch", height=table_height(len(wide), 420))


def _tail_cases(labels: np.ndarray, groups: Sequence[str], n: int, clean: np.ndarray | None,
                attacked: np.ndarray | None) -> np.ndarray:
    """Tail-class test cases, those the attack turned from right to wrong first, spread over the classes."""
    tail = [c for c, g in enumerate(groups) if g == "tail"] or [int(np.argmin(np.bincount(labels)))]
    rows = np.flatnonzero(np.isin(labels, tail))
    flipped = np.zeros(len(rows), bool) if clean is None or attacked is None else \
        (clean[rows] == labels[rows]) & (attacked[rows] != labels[rows])
    order = np.lexsort((labels[rows], ~flipped))
    chosen = [rows[i] for i in order if flipped[i]][:n]
    rest = [rows[i] for i in order if not flipped[i]]
    return np.asarray(chosen + rest[:: max(len(rest) // max(n - len(chosen), 1), 1)][: n - len(chosen)], dtype=int)


def attacked_gallery(run_id: str, attack: str, steps: int, epsilon: float, predictions: dict[float, np.ndarray],
                     n: int = 4) -> None:
    """Rare-class test cases before and after the attack: pictures with the change magnified and
    a saliency map of each; tables with the feature values the attack moved most."""
    bundle = load_bundle(run_id)
    names, model = bundle.class_names, run_model(run_id)
    x_all = load_splits(bundle.config.data).x_test[bundle.artifacts.test_index]
    rows = _tail_cases(bundle.artifacts.labels, bundle.groups, n, predictions.get(0.0), predictions.get(epsilon))
    params = {"steps": steps} if ATTACKS.info(attack).capabilities["iterative"] else {}
    ex = adversarial_examples(model, x_all[rows], bundle.artifacts.labels[rows], attack=attack, params=params,
                              epsilon=epsilon, modality=bundle.modality, device=DEVICE)
    for i, row in enumerate(rows):
        true, before, after = (names[int(v)] for v in (bundle.artifacts.labels[row], ex["pred_clean"][i],
                                                         ex["pred_adv"][i]))
        flipped = "**flipped by the attack**" if ex["pred_clean"][i] != ex["pred_adv"][i] else "unchanged"
        st.markdown(f"**Test case {int(row)}**, a *{md(true)}*: predicted *{md(before)}* before, *{md(after)}* after "
                    f"({flipped})")
        if bundle.modality == "image":
            _image_case(model, ex, i, epsilon, (before, after), f"robustness.gallery.{i}")
        else:
            _table_case(ex, i, bundle.metrics["dataset"].get("feature_names"))


def _image_case(model, ex: dict, i: int, epsilon: float, preds: tuple[str, str], key: str) -> None:
    both = np.stack([ex["original"][i], ex["adversarial"][i]]).astype(np.float32)
    maps = attribute(model, both, method="saliency", targets=[int(ex["pred_clean"][i]), int(ex["pred_adv"][i])],
                     device=DEVICE)
    change = ex["change"][i] / (2 * max(epsilon, 1e-12)) + 0.5  # magnified: -eps black, 0 grey, +eps white
    c1, c2, c3 = st.columns(3)
    c1.image(display_image(ex["original"][i]), caption=f"original: {preds[0]}", clamp=True)
    c2.image(display_image(np.clip(change, 0, 1)), caption="the change, magnified (grey: none)", clamp=True)
    c3.image(display_image(ex["adversarial"][i]), caption=f"attacked: {preds[1]}", clamp=True)
    m1, m2 = st.columns(2)
    m1.plotly_chart(image_with_attribution(ex["original"][i], maps[0], title=f"why '{preds[0]}'"), key=f"{key}.a")
    m2.plotly_chart(image_with_attribution(ex["adversarial"][i], maps[1], title=f"why '{preds[1]}'"), key=f"{key}.b")


def _table_case(ex: dict, i: int, features: Sequence[str] | None) -> None:
    change = ex["change"][i]
    names = list(features or [f"feature {j}" for j in range(len(change))])
    frame = pd.DataFrame({"feature": names, "before": ex["original"][i], "after": ex["adversarial"][i],
                          "moved by (standard deviations)": change})
    order = np.argsort(-np.abs(change), kind="stable")[:8]
    st.dataframe(frame.iloc[order], hide_index=True, width="stretch")
    explain("The features the attack moved most, in standard deviations of each feature over the training rows.")
