"""Playground: watch class imbalance, and each fix, move a decision boundary in seconds."""

import time

import streamlit as st

from app.widgets import explain, params_form
from core.data import TOY_SHAPES, make_toy_data
from core.methods import LOSSES, SAMPLERS
from core.text import md
from core.train import apply_tau, train_toy
from core.viz import accuracy_bars_figure, decision_regions_figure, recall_bars_figure

RESULT = "playground.result"  # the last training: its settings, final snapshots and timings
PROFILES = {"exp": "exponential", "step": "step", "linear": "linear", "none": "none (balanced)"}
DEFAULT_LOSSES = ("ce", "logit_adjusted")

st.title("🎓 Playground")
st.markdown("A tiny network learns to separate coloured points while you watch. Make one class rare, press "
            "**Train** and see where the boundary goes; then compare a fix side by side.")

controls, stage = st.columns([1, 2.2], gap="large")
go_col, compare_col, tau_col = stage.columns([1, 1, 1.4], vertical_alignment="bottom")
train = go_col.button("▶ Train", type="primary", key="playground.train", width="stretch")
compare = compare_col.toggle("Side by side", value=True, key="playground.compare",
                             help="Train the same data with two settings and the same seed.")
tau = tau_col.slider("Post-hoc tau", 0.0, 2.0, 0.0, step=0.1, key="playground.tau",
                     disabled=RESULT not in st.session_state and not train,
                     help="Moves the trained boundary toward the rare classes without retraining: subtracts "
                          "tau × log(class share) from the network's scores (logit adjustment, Menon et al. "
                          "2021). 0 leaves the model as trained; 1 aims at equal recall for every class.")

with controls:
    st.subheader("Data")
    shape = st.segmented_control("Shape", list(TOY_SHAPES), default="blobs", key="playground.shape") or "blobs"
    a, b = st.columns(2)
    n_classes = a.slider("Classes", 2, 6, 3, key="playground.classes")
    per_class = b.slider("Points, biggest class", 50, 800, 500, step=50, key="playground.points")
    profile = a.selectbox("Imbalance profile", list(PROFILES), format_func=PROFILES.get, key="playground.profile")
    ratio = b.slider("Imbalance ratio", 1, 100, 50, key="playground.ratio", disabled=profile == "none",
                     help="Points in the biggest class ÷ points in the smallest.")
    noise = a.slider("Noise", 0.0, 1.0, 0.6, step=0.05, key="playground.noise", help="How much the classes overlap.")
    seed = int(b.number_input("Seed", 0, 9999, 0, key="playground.seed",
                              help="The same seed gives the same points and the same training."))
    st.subheader("Fix")
    settings = []
    for i in range(2 if compare else 1):
        with st.container(border=True):
            loss = st.selectbox(f"Loss {'AB'[i]}" if compare else "Loss", LOSSES.names(),
                                index=LOSSES.names().index(DEFAULT_LOSSES[i]), key=f"playground.loss{i}")
            st.caption(LOSSES.info(loss).description)
            sampler = st.selectbox("Sampler", SAMPLERS.names(), index=SAMPLERS.names().index("instance"),
                                   key=f"playground.sampler{i}")
            st.caption(SAMPLERS.info(sampler).description)
            with st.expander("Parameters"):
                loss_params = params_form(LOSSES.info(loss), key=f"playground.lossp{i}")
                sampler_params = params_form(SAMPLERS.info(sampler), key=f"playground.samplerp{i}")
        label = loss if sampler == "instance" else f"{loss} + {sampler}"
        settings.append(dict(label=label, loss=loss, loss_params=loss_params, sampler=sampler,
                             sampler_params=sampler_params))
    steps = st.select_slider("Training steps", [100, 200, 400, 600, 1000, 1500], value=400, key="playground.steps")

data = make_toy_data(shape, num_classes=n_classes, samples_per_class=per_class, noise=noise, profile=profile,
                     ratio=float(ratio), seed=seed)
signature = repr((shape, n_classes, per_class, profile, ratio, noise, seed, steps, settings))
columns = stage.columns(len(settings))
placeholders = [c.empty() for c in columns]


def regions(snapshot, label):
    shown = apply_tau(snapshot, tau)
    title = f"{label} · step {snapshot.step}/{snapshot.total_steps}" + (f" · tau {tau:g}" if tau else "")
    return decision_regions_figure(shown.grid_x, shown.grid_y, shown.grid_probs, data.x_train, data.y_train,
                                   data.class_names, data.class_counts, title=title)


if train:
    runs = [train_toy(data, loss=s["loss"], loss_params=s["loss_params"], sampler=s["sampler"],
                      sampler_params=s["sampler_params"], steps=steps, snapshot_every=max(steps // 12, 1),
                      seed=seed) for s in settings]
    started, first = time.perf_counter(), None
    try:
        for frame, snapshots in enumerate(zip(*runs)):
            for i, (slot, snap) in enumerate(zip(placeholders, snapshots)):
                slot.plotly_chart(regions(snap, settings[i]["label"]), width="stretch", key=f"playground.f{i}.{frame}")
            first = first or time.perf_counter() - started
            finals = snapshots
    except ValueError as exc:  # a parameter the loss or sampler rejects
        stage.error(f"Could not train: {md(exc)}")
    else:
        st.session_state[RESULT] = dict(signature=signature, snapshots=finals, first_s=first,
                                        total_s=time.perf_counter() - started)

result = st.session_state.get(RESULT)
if not result or result["signature"] != signature:
    placeholders[0].plotly_chart(decision_regions_figure(None, None, None, data.x_train, data.y_train,
                                                         data.class_names, data.class_counts,
                                                         title="The training points"), width="stretch")
    counts = ", ".join(f"{n}: {c}" for n, c in zip(data.class_names, data.class_counts))
    with columns[0]:
        explain(f"Training points per class: {counts}. Rare classes are drawn bigger, with a dark outline. "
                "Press **Train** to watch the network learn.")
    if compare:
        columns[1].info(f"**What to watch.** Press **Train**: this side then shows the same points learned with "
                        f"**{settings[1]['label']}**, the other side with **{settings[0]['label']}**. The coloured "
                        "background is the class the network would predict there. Look at where the boundary "
                        "lands around the big outlined points of the rare class.")
    st.stop()

shown = [apply_tau(s, tau) for s in result["snapshots"]]
labels = [s["label"] for s in settings]
tail = int(data.class_counts.argmin())
for i, (slot, col, snap) in enumerate(zip(placeholders, columns, result["snapshots"])):
    slot.plotly_chart(regions(snap, labels[i]), width="stretch", key=f"playground.final{i}")
    with col:
        explain(f"Background: the class the network predicts there (deeper colour: more sure). It finds "
                f"{shown[i].recall[tail]:.0%} of the rarest class, {data.class_names[tail]}.")
        st.plotly_chart(recall_bars_figure(data.class_names, shown[i].recall, data.class_counts,
                                           title=f"Recall per class · {labels[i]}"), width="stretch")
        explain("Recall: the share of each class's fresh test points the network gets right, "
                "most common class on the left.")

with stage:
    if compare:
        explain("With plain cross-entropy the boundary hugs the rare class: the model wins accuracy by giving "
                "up the tail. Logit adjustment (and the other fixes) push it back. Same data, same seed: only "
                "the setting differs.")
    acc_col, note_col = st.columns([2, 1])
    acc_col.plotly_chart(accuracy_bars_figure([s.accuracy for s in shown], [s.balanced_accuracy for s in shown],
                                              labels, title="Accuracy vs balanced accuracy"), width="stretch")
    with acc_col:
        explain("Accuracy counts every point, so the common class dominates it (measured as if the test data were "
                "as imbalanced as the training data). Balanced accuracy averages the classes, so a neglected rare "
                "class pulls it down.")
    note_col.metric("First boundary after", f"{result['first_s']:.2f} s")
    note_col.metric("All done after", f"{result['total_s']:.2f} s",
                    help=f"From pressing Train: {steps} steps of a small network on the CPU for each setting, "
                         "drawn as it learns.")
    with note_col:
        explain("Move the tau slider: the boundary shifts at once, reusing the trained network's stored scores.")
