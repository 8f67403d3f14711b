"""What the Playground draws: the decision regions of a trainer's last snapshot (moved by
the post-hoc tau), the training points before anything trains, and, once trained, the
recall bars, the accuracy comparison and the notes on the rarest class. The controls and
the shared address are in `app.playground_view`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from app.widgets import explain
from core.methods import LOSSES
from core.train import apply_tau
from core.viz import accuracy_bars_figure, decision_regions_figure, playground_notes, recall_bars_figure

__all__ = ["regions", "untrained_panel", "trained_panels", "corrects_twice_note"]


def corrects_twice_note(loss: str, tau: float) -> str | None:
    """Why a post-hoc tau on a loss that already corrects for class frequency corrects twice."""
    if not tau or not LOSSES.info(loss).capabilities.get("corrects_prior"):
        return None
    return (f"**Corrects twice:** {LOSSES.info(loss).label} already shifts the boundary toward the rare classes "
            f"while training; tau {tau:g} adds the same correction again, so the rare classes are now favoured "
            "beyond equal recall. Set tau to 0 for this side, or use tau with plain cross-entropy.")


def regions(snap, label: str, tau: float, data):
    """The decision regions of a snapshot at tau, titled with its step."""
    shown = apply_tau(snap, tau)
    title = f"{label} · step {snap.step}/{snap.total_steps}" + (f" · tau {tau:g}" if tau else "")
    return decision_regions_figure(shown.grid_x, shown.grid_y, shown.grid_probs, data.x_train, data.y_train,
                                   data.class_names, data.class_counts, title=title)


def untrained_panel(slots: Sequence[Any], columns: Sequence[Any], data, settings: Sequence[dict],
                    compare: bool) -> None:
    """The training points alone, with what to press and (side by side) what to watch."""
    slots[0].plotly_chart(decision_regions_figure(None, None, None, data.x_train, data.y_train, data.class_names,
                                                  data.class_counts, title="The training points"), width="stretch")
    counts = ", ".join(f"{n}: {c}" for n, c in zip(data.class_names, data.class_counts))
    with columns[0]:
        explain(f"Training points per class: {counts}. Rare classes are drawn bigger, with a dark outline. "
                "Press **Play** to watch the network learn, or the step button to go a few steps at a time.")
    if compare:
        columns[1].info(f"**What to watch.** Press **Play**: this side then shows the same points learned with "
                        f"**{settings[1]['label']}**, the other side with **{settings[0]['label']}**. The coloured "
                        "background is the class the network would predict there. Look at where the boundary "
                        "lands around the big outlined points of the rare class.")


def trained_panels(stage, slots: Sequence[Any], columns: Sequence[Any], trainers: Sequence[Any],
                   settings: Sequence[dict], data, *, tau: float, seed: int, steps: int, key: str) -> None:
    """Each trainer's regions and recall per class, then the notes on the rarest class and
    accuracy against balanced accuracy for every setting."""
    snaps = [t.last for t in trainers]
    shown_snaps = [apply_tau(s, tau) for s in snaps]
    labels = [s["label"] for s in settings]
    tail = int(data.class_counts.argmin())
    for i, (slot, col, snap) in enumerate(zip(slots, columns, snaps)):
        slot.plotly_chart(regions(snap, labels[i], tau, data), width="stretch", key=f"{key}final{i}")
        with col:
            explain(f"Background: the class the network predicts there (deeper colour: more sure). After {snap.step} "
                    f"steps it finds {shown_snaps[i].recall[tail]:.0%} of the rarest class, {data.class_names[tail]}.")
            st.plotly_chart(recall_bars_figure(data.class_names, shown_snaps[i].recall, data.class_counts,
                                               title=f"Recall per class · {labels[i]}"), width="stretch",
                            key=f"{key}recall{i}")
            explain("Recall: the share of each class's fresh test points the network gets right, "
                    "most common class on the left; each bar has its class's colour, as its points above.")
            if note := corrects_twice_note(settings[i]["loss"], tau):
                st.warning(note, icon="⚠️")
    with stage:
        for note in playground_notes(labels, [s.recall[tail] for s in shown_snaps], [s.accuracy for s in shown_snaps],
                                     [s.balanced_accuracy for s in shown_snaps], data.class_names[tail], seed):
            explain(note)
        acc_col, note_col = st.columns([2, 1])
        acc_col.plotly_chart(accuracy_bars_figure([s.accuracy for s in shown_snaps],
                                                  [s.balanced_accuracy for s in shown_snaps], labels,
                                                  title="Accuracy vs balanced accuracy"), width="stretch")
        with acc_col:
            explain(f"Accuracy is measured on {len(data.y_mix)} fresh points mixed like the training data, so the "
                    "common class dominates it. Balanced accuracy averages the classes' recall on a balanced test "
                    "set, so a neglected rare class pulls it down.")
        note_col.metric("Step", f"{snaps[0].step} / {steps}")
        note_col.metric("Training time", f"{max(s.elapsed_s for s in snaps):.2f} s",
                        help="Time spent training the small network on the CPU so far, drawing left out.")
        with note_col:
            explain("Move the tau slider: the boundary shifts at once, reusing the trained network's stored scores.")
