"""An uploaded table's columns and gaps in words: the rows of the roles editor, the edits a
person makes to it, which columns are left out, where the gaps are and what each way of
handling them costs. Pure text and frames over a TableProfile, so the Data page and tests
read the same words."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.data._columns import ROLE_LABELS, ColumnProfile, TableProfile, _as_text
from core.text import md

__all__ = ["MISSING_HELP", "ROLE_CHOICES", "DropCost", "apply_role_edits", "drop_cost", "gap_text", "gaps_line",
           "left_out_line", "missing_options", "roles_frame"]

ROLE_CHOICES = [ROLE_LABELS[r] for r in ("label", "numeric", "categorical", "date", "id", "text", "constant", "ignore")]
_ROLE_OF_LABEL = {label: role for role, label in ROLE_LABELS.items()}
MISSING_HELP = ("Empty cells, text in a number column, and numbers that are infinite or too large for training. "
                "Filling uses only the training rows, so nothing about the test rows leaks into training.")


def roles_frame(profile: TableProfile) -> pd.DataFrame:
    """One row per column for the roles editor: role, whether it is used, why, gaps."""
    return pd.DataFrame({
        "Column": [c.name for c in profile.columns],
        "Role": [ROLE_LABELS[c.role] for c in profile.columns],
        "Used": ["label" if c.role == "label" else "✓ feature" if c.used else "left out" for c in profile.columns],
        "Why": [c.reason for c in profile.columns],
        "Gaps": [gap_text(c) for c in profile.columns],
    })


def gap_text(column: ColumnProfile) -> str:
    """'33 empty, 1 not a number (e.g. 'n/a?')' for a used column; blank otherwise."""
    if not column.used:
        return ""
    unusable = "not a date" if column.role == "date" else "not a number"
    parts = [f"{n:,} {what}" for n, what in ((column.empty, "empty"), (column.unusable, unusable),
                                               (column.non_finite, "infinite or too large")) if n]
    example = f" (e.g. {column.examples[0]})" if column.examples else ""
    return ", ".join(parts) + example if parts else "none"


def apply_role_edits(profile: TableProfile, current: dict[str, str], edited_rows: dict) -> dict[str, str]:
    """The roles editor's cell edits (row -> {"Role": label}) on top of `current`; a role
    set back to the detected one is no longer an override; the label row is fixed."""
    overrides = dict(current)
    for row, change in edited_rows.items():
        role = _ROLE_OF_LABEL.get((change or {}).get("Role"))
        if role is None or not 0 <= int(row) < len(profile.columns):
            continue
        column = profile.columns[int(row)]
        if column.role == "label" or role == "label":
            continue
        if role == column.detected:
            overrides.pop(column.name, None)
        else:
            overrides[column.name] = role
    return overrides


def left_out_line(profile: TableProfile) -> str:
    """Which columns are not features, in one line of markdown."""
    left = profile.left_out
    if not left:
        return "Every column except the label is used as a feature."
    names = ", ".join(f"**{md(c.name)}** ({ROLE_LABELS[c.role]})" for c in left[:6]) + (
        f" and {len(left) - 6} more" if len(left) > 6 else "")
    ids = next((c.name for c in profile.columns if c.role == "id"), None)
    named = (f" **{md(ids)}** names each case wherever cases are listed (Results, Error gallery, triage and their "
             "files)." if ids is not None else "")
    return (f"Left out of the features: {names}. ID-like and constant columns cannot help tell classes apart (or "
            "only by accident); set a role to number, category or free text to use one anyway." + named)


@dataclass(frozen=True)
class DropCost:
    """What dropping the rows with a gap does to each class, before it is done: `table`
    (Class, Now, After, Lost: most rows first), the imbalance ratio (largest ÷ smallest
    class) now and after (inf when a class would lose every row)."""

    table: pd.DataFrame
    ratio_before: float
    ratio_after: float

    @property
    def rarest(self) -> pd.Series:
        return self.table.iloc[-1]

    def summary(self) -> str:
        """One sentence (markdown): the ratio before and after, and what the rarest class keeps."""
        r = self.rarest
        gone = [md(c) for c in self.table["Class"][self.table["After"] == 0]]
        if gone:
            return (f"Dropping them would remove every row of **{', '.join(gone)}**, so "
                    f"{'that class' if len(gone) == 1 else 'those classes'} could not be learned at all; fill the "
                    "gaps instead.")
        return (f"Dropping them changes the classes like this (whole table): the imbalance ratio goes from "
                f"**{self.ratio_before:.0f} : 1** to **{self.ratio_after:.0f} : 1**, and the rarest class, "
                f"**{md(r['Class'])}**, keeps {r['After']:,} of its {r['Now']:,} rows ({r['Lost']}).")


def drop_cost(profile: TableProfile, labels: pd.Series) -> DropCost:
    """Rows per class now and after dropping every row with a gap (rows without a label are
    left out of both), from the label column as the run will count it (`labels`, one value
    per row of the file)."""
    has_label = np.ones(profile.rows, dtype=bool)
    has_label[profile.label_missing_rows] = False
    names = _as_text(labels.reset_index(drop=True)).to_numpy()[has_label]
    kept = ~profile.gap_mask()[has_label]
    now = pd.Series(names).value_counts()
    after = pd.Series(names[kept]).value_counts().reindex(now.index, fill_value=0)
    order = sorted(now.index, key=lambda c: (-now[c], str(c)))
    now, after = now[order], after[order]
    lost = [f"loses {1 - a / b:.0%}" if a < b else "loses none" for a, b in zip(after, now)]
    table = pd.DataFrame({"Class": [str(c) for c in order], "Now": now.to_numpy(), "After": after.to_numpy(),
                          "Lost": lost})
    ratio_after = float(after.max() / after.min()) if after.min() > 0 else float("inf")
    return DropCost(table, float(now.max() / now.min()), ratio_after)


def missing_options(profile: TableProfile, cost: DropCost | None = None) -> dict[str, str]:
    """The three ways to handle gaps, each with the number of rows or cells it touches (and,
    given `cost`, what the rarest class loses by dropping)."""
    rows = int((profile.gap_mask() | np.isin(np.arange(profile.rows), profile.label_missing_rows)).sum())
    cells = profile.gap_cells
    no_label = len(profile.label_missing_rows)
    extra = f"; the {no_label} row{'s' if no_label != 1 else ''} without a label are left out" if no_label else ""
    return {
        "fill": f"Fill the {cells:,} gap{'s' if cells != 1 else ''}: the median for numbers, the most frequent value "
                f"for categories, learned from the training rows{extra}",
        "drop": f"Drop the {rows:,} row{'s' if rows != 1 else ''} with a gap "
                f"({rows / max(profile.rows, 1):.1%} of the table"
                + (f"; the rarest class, {cost.rarest['Class']}, {cost.rarest['Lost']} of its rows" if cost else "")
                + ")",
        "refuse": "Refuse the file: I will fix it and upload it again",
    }


def gaps_line(profile: TableProfile) -> str:
    """How many cells are missing or unusable, in which columns (markdown)."""
    bad = sorted((c for c in profile.used if c.gaps), key=lambda c: -c.gaps)
    parts = [f"{md(c.name)} {c.gaps:,}" for c in bad[:5]] + ([f"{len(bad) - 5} more columns"] if len(bad) > 5 else [])
    no_label = len(profile.label_missing_rows)
    label = f"{no_label:,} row{'s' if no_label != 1 else ''} without a label" if no_label else ""
    n = profile.gap_cells
    cells = f"{n:,} cell{'s are' if n != 1 else ' is'} empty or unusable ({', '.join(parts)})" if bad else ""
    return " and ".join(p for p in (cells, label) if p) + ". Choose what to do with them:"
