"""The Data page's offers about an upload's labels and rows: merge classes the file spells
several ways ("Yes" / "yes" / "YES"), and what dropping the rows with a gap costs each
class before it is chosen. The counts and words are pure and live in `core.data`."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app.widgets import table_height
from core.config import DataConfig
from core.data import UPLOAD_PREFIX, Dataset, DropCost, LabelVariants, LabelVariantsError, quoted_forms
from core.text import md

__all__ = ["MERGE_KEY", "ORDINAL_KEY", "merge_choice", "load_with_label_offer", "drop_cost_panel", "ordinal_choice"]

MERGE_KEY = "data.merge_labels"  # "merge" / "apart" / None: the person's choice for the upload shown
_CHOICES = {"merge": True, "apart": False}
ORDINAL_KEY = "data.ordinal"  # the "ordered stages" toggle; its order picker is ORDINAL_KEY + ".order"


def ordinal_choice(dataset: Dataset, saved: DataConfig) -> list[str] | None:
    """`data.ordinal` for a table: None, or the label's values as stages from first to last
    (the rarest, last stage is what the ordinal models predict best). A built-in set that is
    ordinal already says so and needs no choice."""
    if dataset.modality != "tabular":
        return None
    names = [str(n) for n in dataset.class_names]
    if dataset.ordinal:
        st.caption("The classes are ordered stages, first to last: " + " → ".join(md(n) for n in names) + ".")
        return None
    known = saved.ordinal if saved.ordinal and sorted(saved.ordinal) == sorted(names) else None
    marked = st.toggle("The classes are ordered stages (e.g. seen → clicked → bought)", key=ORDINAL_KEY,
                       value=known is not None,
                       help="Ordinal models (proportional odds, PRESTO) use the order: the common early stages "
                            "inform the rare last one.")
    if not marked:
        return None
    order = st.multiselect("Stages, first to last (pick them in order)", names, default=known or names,
                           key=f"{ORDINAL_KEY}.order")
    if len(order) != len(names):
        st.warning("Pick every class once, in stage order; until then the label is not treated as ordinal.")
        return None
    st.caption("Stages: " + " → ".join(md(n) for n in order) + f". The last, **{md(order[-1])}**, is the rare event "
               "the ordinal models predict.")
    return order


def merge_choice(source: str, saved: DataConfig) -> bool | None:
    """`data.merge_labels` for this upload: the person's choice on the page, else the saved
    one when the saved dataset is this upload, else None (not chosen)."""
    if not source.startswith(UPLOAD_PREFIX):
        return None
    if MERGE_KEY not in st.session_state and saved.source == source and saved.merge_labels is not None:
        st.session_state[MERGE_KEY] = "merge" if saved.merge_labels else "apart"
    return _CHOICES.get(st.session_state.get(MERGE_KEY))


def _variants_frame(groups: tuple[LabelVariants, ...]) -> pd.DataFrame:
    return pd.DataFrame({"Merged into": [g.name for g in groups],
                         "Written in the file as (rows)": [quoted_forms(g) for g in groups]})


def _label_offer(groups: tuple[LabelVariants, ...], merge: bool | None) -> None:
    """The groups, and one click to merge them (or keep them apart, or change one's mind)."""
    n = len(groups)
    what = (f"{n} class{'es are' if n != 1 else ' is'} written in more than one way in the file; the spellings "
            "differ only by capitals, spaces around them or how a number is written")
    if merge is None:
        st.warning(f"{what}. As they stand, each spelling would become a class of its own:",
                   icon=":material/call_merge:")
    elif merge:
        st.info(f"{what}. Each group below is counted as one class (named by its most common spelling).",
                icon=":material/call_merge:")
    else:
        st.info(f"{what}. You chose to keep every spelling as a class of its own.", icon=":material/call_split:")
    st.dataframe(_variants_frame(groups), hide_index=True, width="stretch", height=table_height(n, 200))

    def choose(value: str) -> None:
        st.session_state[MERGE_KEY] = value

    row = st.container(horizontal=True)  # buttons as wide as their words, side by side
    if merge is not True:
        row.button("Merge each group into one class", type="primary", key="offer.merge_labels",
                   on_click=choose, args=("merge",), icon=":material/call_merge:",
                   help="Saved with the dataset, so a run on this file always counts them the same way.")
    if merge is not False:
        row.button("Keep them as separate classes" + (" instead" if merge else ""), key="offer.keep_labels",
                   on_click=choose, args=("apart",), type="secondary" if merge is None else "tertiary",
                   help="Only if the capitals or number form really mark different classes.")


def load_with_label_offer(config: DataConfig, load) -> Dataset:
    """`load(config)`, showing the label-merge offer when the upload spells classes several
    ways; stops the page until the person has chosen (then the choice is in `config`)."""
    try:
        dataset = load(config)
    except LabelVariantsError as exc:
        _label_offer(exc.groups, None)
        st.stop()
    if dataset.label_variants:
        _label_offer(dataset.label_variants, config.merge_labels)
    return dataset


def drop_cost_panel(cost: DropCost) -> None:
    """Rows per class now and after dropping the rows with a gap, and the imbalance ratio,
    shown before the person chooses to drop them."""
    st.caption(cost.summary())
    st.dataframe(cost.table, hide_index=True, width="stretch", height=table_height(len(cost.table), 240),
                 column_config={"Now": st.column_config.NumberColumn("Rows now", format="%d"),
                                "After": st.column_config.NumberColumn("Rows after dropping", format="%d")})
