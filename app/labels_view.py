"""The Results page's section for runs that learned from unlabelled rows: the pseudo-labels a
first model gave (how many per class, how many right, how skewed to the common classes)
and the loss of self-supervised pre-training. Shown only for runs that used them."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from app.widgets import explain, table_height
from core.text import md
from core.train import PRETRAIN
from core.viz import pretrain_loss_figure, pseudo_label_figure, pseudo_label_table

__all__ = ["labels_section"]

TABLE_COLUMNS = {"class": "class", "labelled": "labelled rows", "unlabelled": "unlabelled rows of the class",
                 "pseudo_labels": "pseudo-labels", "correct": "right", "precision": "precision",
                 "precision_low": "precision, 95 % low", "precision_high": "precision, 95 % high",
                 "recall": "share of the class found"}


def _ratio_text(ratio: float | None, without: int, what: str) -> str:
    if without:
        return f"{without} class{'es' if without > 1 else ''} got no {what} at all"
    return f"the class with the most {what} has {ratio:.1f} times as many as the class with the fewest"


def _chosen_text(semi: dict) -> str:
    """Which unlabelled rows got a pseudo-label, and how much each counted in the loss."""
    weight = float(semi.get("weight") or 1.0)
    counted = "" if weight == 1 else f" Each counted {weight:g} times as much as a labelled row in the loss."
    if semi.get("threshold") is None:
        return ("Every unlabelled row, labelled with the first model's most likely class however unsure (Yang & "
                f"Xu 2020); they joined the labelled rows to train the final model.{counted}")
    return (f"Unlabelled rows the first model was at least {semi['threshold']:.0%} sure about; they joined the "
            f"labelled rows to train the final model.{counted}")


def _pseudo_labels(semi: dict, class_names: list[str], show: Callable[..., None]) -> None:
    st.markdown("**Pseudo-labels**")
    n, pool = semi["n_pseudo"], semi["n_unlabeled"]
    precision = semi.get("precision")
    c1, c2, c3 = st.columns(3)
    c1.metric("Pseudo-labelled rows", f"{n} of {pool}", border=True, help=_chosen_text(semi))
    c2.metric("Right", "n/a" if precision is None else f"{precision:.0%}", border=True,
              help="Share of the pseudo-labels that match the row's true class (hidden from training, kept to "
                   "measure this). n/a where the true classes are unknown (uploaded rows).")
    ratio = semi.get("imbalance_ratio")
    c3.metric("Most / fewest per class", "∞" if ratio is None else f"{ratio:.1f}×", border=True,
              help="Pseudo-labels of the class that got the most, divided by those of the class that got the fewest "
                   f"(∞: a class got none). The labelled rows' own ratio: "
                   f"{semi['labelled_imbalance_ratio'] or float('inf'):.1f}×.")
    which = "every unlabelled row" if semi.get("threshold") is None else "the unlabelled rows it was sure about"
    explain(f"A first model, trained on the labelled rows only, labelled {which}; "
            f"{_ratio_text(ratio, semi['classes_without'], 'pseudo-labels')}. Pseudo-labels help the rare classes "
            "only if they reach them and are right there: a first model trained on imbalanced labels gives most of "
            "its answers, and most of its confident ones, to the common classes.")
    table = pseudo_label_table(semi, class_names)
    show(pseudo_label_figure(table, semi.get("threshold")), "pseudo-labels",
         "Left: pseudo-labels each class received (green right, red wrong) and, as a grey dash, how many unlabelled "
         "rows truly belong to it; classes run from most to fewest labelled rows. Right: the share of each class's "
         "pseudo-labels that are right, with a 95 % interval (Wilson); a class with few pseudo-labels has a long bar.")
    shown = table[[c for c in TABLE_COLUMNS if c in table]].rename(columns=TABLE_COLUMNS)
    st.dataframe(shown, hide_index=True, height=table_height(len(shown)),
                 column_config={name: st.column_config.NumberColumn(format="%.2f") for name in
                                ("precision", "precision, 95 % low", "precision, 95 % high",
                                 "share of the class found")})
    first = (semi.get("first_model") or {}).get("val_balanced_accuracy")
    if first is not None:
        explain(f"The first model reached a validation balanced accuracy of {first:.3f}; the cards at the top are "
                "the final model's. Compare this run with one trained on the labelled rows alone (Compare page, "
                "over several seeds) before concluding that the pseudo-labels helped.")


def _pretraining(pretrain: dict, show: Callable[..., None]) -> None:
    st.markdown("**Self-supervised pre-training**")
    name = pretrain["name"]
    label = PRETRAIN.info(name).label if name in PRETRAIN else name
    loss = pretrain.get("loss") or []
    show(pretrain_loss_figure(loss, label), "pretrain",
         f"Before learning from labels, the network practised on all {pretrain['inputs']} training inputs, labelled or "
         f"not ({md(label)}), for {len(loss)} epochs; test rows were never used. A falling line means it learned "
         "something about the inputs' structure; whether that helps the rare classes shows only in a comparison "
         "with a run without pre-training, over several seeds.")


def labels_section(bundle, show: Callable[..., None]) -> None:
    """Pseudo-labels and pre-training of the run, when it used them; nothing otherwise.
    `show(fig, name, caption)` is the page's chart renderer."""
    training = bundle.metrics.get("training") or {}
    semi, pretrain = training.get("semi"), training.get("pretrain")
    if not semi and not pretrain:
        return
    st.subheader("What the unlabelled rows added")
    if semi:
        _pseudo_labels(semi, list(bundle.class_names), show)
    if pretrain:
        _pretraining(pretrain, show)
