"""Figures for the teaching playground: decision regions over 2-D points, per-class recall
bars and accuracy vs balanced accuracy. Arrays in, plotly Figure out, no Streamlit. The
captions under them (:func:`playground_notes`) are written from the same numbers, so they
never praise a fix that did worse.

The regions use one colour per class (shaded by the model's confidence); the rare classes'
points are drawn last, bigger and with a dark outline, so they are never buried under the
head class. Per-class bars follow the workbench's head/medium/tail colours, classes ordered
head to tail.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from core.data import class_groups, head_to_tail_order
from core.text import md, plotly_text
from core.viz._fit import wrap_title

__all__ = ["PLAYGROUND_CLASS_COLORS", "decision_regions_figure", "recall_bars_figure", "accuracy_bars_figure",
           "playground_notes"]

# Distinct from the group colours below, so a class is never mistaken for a group.
PLAYGROUND_CLASS_COLORS = ("#2ca02c", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f", "#393b79")
_GROUP_COLORS = {"head": "#1f77b4", "medium": "#ff7f0e", "tail": "#d62728"}
_MARKER = {  # size, outline colour, outline width, opacity
    "head": (6, "white", 0.5, 0.75),
    "medium": (9, "#1a1a1a", 1.2, 0.95),
    "tail": (12, "#1a1a1a", 1.8, 1.0),
}
# Title on top, legend on its own line under it: narrow columns never overlap the two.
_BAR_LAYOUT = dict(margin=dict(l=10, r=10, t=70, b=10), title_y=0.97, title_yanchor="top",
                   legend=dict(orientation="h", y=1.0, yanchor="bottom", x=0, xanchor="left"))
def _title_room(title: str | None, one_line: int) -> int:
    """The top margin for `title` once broken into lines (a half-width chart in classroom
    type holds about 34 characters a line): one more line of type for each extra line."""
    lines = (wrap_title(title, 34) or "").count("<br>")
    return one_line + 22 * lines


_PALE, _FULL = 0.2, 0.6  # region tint at chance-level and at full confidence


def _tint(hex_colour: str, amount: float) -> str:
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)], dtype=float)
    mixed = 255 - amount * (255 - rgb)
    return "rgb({:.0f},{:.0f},{:.0f})".format(*mixed)


def _region_colorscale(k: int) -> list[list]:
    scale = []
    for c in range(k):
        colour = PLAYGROUND_CLASS_COLORS[c % len(PLAYGROUND_CLASS_COLORS)]
        scale += [[c / k, _tint(colour, _PALE)], [(c + 1) / k, _tint(colour, _FULL)]]
    return scale


def _groups(counts: np.ndarray) -> list[str]:
    """Head/medium/tail; a balanced set is all 'head' (nothing is rare)."""
    if counts.min() == counts.max():
        return ["head"] * len(counts)
    return class_groups(counts)


def decision_regions_figure(
    grid_x: np.ndarray | None,
    grid_y: np.ndarray | None,
    grid_values: np.ndarray | None,
    points: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    counts: Sequence[int] | None = None,
    title: str | None = None,
) -> go.Figure:
    """Coloured decision regions under the training points.

    ``grid_values`` is either (G_y, G_x, K) class probabilities (the tint then deepens with
    confidence) or (G_y, G_x) predicted classes; None draws the points alone. The heatmap's
    z is ``predicted class + confidence`` with confidence rescaled from chance (0) to
    certainty (just under 1), so floor(z) is the prediction. ``counts`` (default: the
    points' own class counts) decides which classes are rare: those are drawn on top,
    bigger and outlined.
    """
    labels = np.asarray(labels)
    points = np.asarray(points)
    k = len(class_names)
    names = [plotly_text(c) for c in class_names]
    counts = np.bincount(labels, minlength=k) if counts is None else np.asarray(counts)
    groups = _groups(counts)
    traces: list[go.BaseTraceType] = []
    if grid_values is not None:
        values = np.asarray(grid_values)
        if values.ndim == 3:
            pred = values.argmax(axis=-1)
            confidence = (values.max(axis=-1) - 1 / k) / (1 - 1 / k)
        else:
            pred = values.astype(int)
            confidence = np.full(pred.shape, 0.6)
        z = pred + np.clip(confidence, 0, 1) * 0.999
        text = np.array(names, dtype=object)[pred]
        traces.append(go.Heatmap(
            x=grid_x, y=grid_y, z=z, zmin=0, zmax=k, colorscale=_region_colorscale(k), showscale=False,
            zsmooth=False, text=text, name="model predicts",
            hovertemplate="model predicts %{text}<extra></extra>",
        ))
    for c in head_to_tail_order(counts):  # the tail last, so it is drawn on top
        size, outline, width, opacity = _MARKER[groups[c]]
        mask = labels == c
        traces.append(go.Scatter(
            x=points[mask, 0], y=points[mask, 1], mode="markers",
            name=f"{names[c]} · {int(counts[c])} ({groups[c]})",
            marker=dict(size=size, color=PLAYGROUND_CLASS_COLORS[c % len(PLAYGROUND_CLASS_COLORS)], opacity=opacity,
                        line=dict(color=outline, width=width)),
            hovertemplate=f"{names[c]}<extra></extra>",
        ))
    fig = go.Figure(traces)
    fig.update_layout(
        title=wrap_title(title, 34), height=420, margin=dict(l=10, r=10, t=_title_room(title, 40) if title else 10, b=10),
        legend=dict(orientation="h", yanchor="top", y=-0.02, x=0, title_text="training points:"),
        plot_bgcolor="white",
    )
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, constrain="domain")
    fig.update_yaxes(showticklabels=False, showgrid=False, zeroline=False, scaleanchor="x", scaleratio=1)
    if grid_x is not None and grid_y is not None:
        fig.update_xaxes(range=[float(np.min(grid_x)), float(np.max(grid_x))])
        fig.update_yaxes(range=[float(np.min(grid_y)), float(np.max(grid_y))])
    return fig


def recall_bars_figure(
    class_names: Sequence[str],
    recall: Sequence[float],
    counts: Sequence[int],
    title: str | None = None,
) -> go.Figure:
    """Per-class recall, classes head to tail, each bar in its class's colour, the same as
    its points in `decision_regions_figure` (outlined as they are: the rarer, the darker the
    outline); the legend names each class with its group."""
    counts = np.asarray(counts)
    recall = np.asarray(recall, dtype=float)
    groups = _groups(counts)
    order = head_to_tail_order(counts)
    names = [plotly_text(class_names[c]) for c in order]
    fig = go.Figure()
    for c in order:
        _, outline, width, _ = _MARKER[groups[c]]
        fig.add_bar(
            x=[plotly_text(class_names[c])], y=[float(recall[c])], name=f"{plotly_text(class_names[c])} ({groups[c]})",
            marker=dict(color=PLAYGROUND_CLASS_COLORS[c % len(PLAYGROUND_CLASS_COLORS)],
                        line=dict(color="#1a1a1a" if outline != "white" else "white", width=width)),
            text=[f"{recall[c]:.0%}"], textposition="outside", customdata=[int(counts[c])],
            hovertemplate="%{x}: recall %{y:.1%} (%{customdata} training points)<extra></extra>",
        )
    fig.update_layout(title=wrap_title(title, 34), height=320, barmode="overlay", **_BAR_LAYOUT)
    fig.update_layout(margin_t=_title_room(title, 70))
    fig.update_layout(legend_title_text="colour = class, as its points:")
    fig.update_xaxes(categoryorder="array", categoryarray=names, title_text="class, commonest first")
    fig.update_yaxes(range=[0, 1.12], tickformat=".0%", title_text="recall")
    return fig


def accuracy_bars_figure(
    accuracy: float | Sequence[float],
    balanced_accuracy: float | Sequence[float],
    settings: Sequence[str] | None = None,
    title: str | None = None,
) -> go.Figure:
    """Plain accuracy (on test data mixed like the training data) next to balanced accuracy,
    one pair of bars per setting."""
    acc = np.atleast_1d(np.asarray(accuracy, dtype=float))
    bal = np.atleast_1d(np.asarray(balanced_accuracy, dtype=float))
    if acc.shape != bal.shape:
        raise ValueError("accuracy and balanced_accuracy need one value per setting each")
    settings = [""] * len(acc) if settings is None else [plotly_text(s) for s in settings]
    fig = go.Figure()
    for name, values, colour in (("accuracy (training mix)", acc, "#a6a6a6"), ("balanced accuracy", bal, "#2b2b2b")):
        fig.add_bar(x=settings, y=values.tolist(), name=name, marker_color=colour, text=[f"{v:.0%}" for v in values],
                    textposition="outside", hovertemplate=f"{name} %{{y:.1%}}<extra></extra>")
    fig.update_layout(title=wrap_title(title, 34), height=320, barmode="group", **_BAR_LAYOUT)
    fig.update_layout(margin_t=_title_room(title, 70))
    fig.update_yaxes(range=[0, 1.12], tickformat=".0%")
    return fig


def _points(a: float, b: float) -> int:
    """The difference of two shares in whole percentage points, as people read them off the bars."""
    return round(100 * a) - round(100 * b)


def _pts(n: int, signed: bool = False, unit: str = "point") -> str:
    return (f"{n:+d}" if signed else f"{n}") + f" {unit}{'' if abs(n) == 1 else 's'}"


def playground_notes(
    labels: Sequence[str],
    tail_recall: Sequence[float],
    accuracy: Sequence[float],
    balanced_accuracy: Sequence[float],
    tail_name: str,
    seed: int,
) -> list[str]:
    """Markdown sentences that read the results out: which setting finds more of the rarest
    class and by how many points, what each one's accuracy hides, and whether the second
    setting (the fix) traded accuracy for balance, won both or lost both. Differences under
    one percentage point count as a tie."""
    names = [f"**{md(label)}**" for label in labels]
    tail = md(tail_name)
    notes = []
    if len(labels) == 2:
        (a, b), (na, nb) = tail_recall, names
        diff = _points(b, a)
        if diff == 0:
            notes.append(f"Both settings find the same share of the rarest class, {tail}: {a:.0%}.")
        elif diff > 0:
            notes.append(f"{nb} finds more of the rarest class, {tail}: {b:.0%} against {a:.0%} with {na}, "
                         f"{_pts(diff, unit='percentage point')} more.")
        else:
            notes.append(f"{nb} finds *fewer* of the rarest class, {tail}, than {na}: {b:.0%} against {a:.0%}, "
                         f"{_pts(-diff, unit='percentage point')} fewer. On this data it did worse, not better.")
        d_acc, d_bal = _points(accuracy[1], accuracy[0]), _points(balanced_accuracy[1], balanced_accuracy[0])
        if d_acc < 0 < d_bal:
            notes.append(f"{nb} gives up {_pts(-d_acc)} of accuracy for {_pts(d_bal)} of balanced accuracy.")
        elif d_acc >= 0 and d_bal > 0:
            notes.append(f"{nb} scores {_pts(d_bal)} higher on balanced accuracy, with "
                         + ("the same accuracy." if d_acc == 0 else f"{_pts(d_acc)} more accuracy as well."))
        elif d_bal < 0:
            notes.append(f"{nb} is worse than {na} on balanced accuracy ({_pts(d_bal, True)}; accuracy "
                         f"{_pts(d_acc, True)}).")
        else:
            notes.append(f"Balanced accuracy is the same for both; accuracy differs by {_pts(d_acc, True)}.")
    for name, acc, bal in zip(names, accuracy, balanced_accuracy):
        gap = _points(acc, bal)
        if gap >= 3:
            notes.append(f"{name}: accuracy {acc:.0%} on fresh points mixed like the training data, but balanced "
                         f"accuracy {bal:.0%}: the common classes hide a gap of {_pts(gap)}.")
        elif gap <= -3:
            notes.append(f"{name}: balanced accuracy {bal:.0%} is above its accuracy {acc:.0%}: it now favours the "
                         "rare classes at the common classes' expense.")
        else:
            notes.append(f"{name}: accuracy {acc:.0%} and balanced accuracy {bal:.0%} agree within {_pts(abs(gap))}: "
                         "no class is neglected much.")
    if len(labels) == 2:
        notes.append(f"One draw of the data and one seed ({seed}): change the seed to see how much of this "
                     "difference is luck.")
    return notes
