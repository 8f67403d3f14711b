"""Playground: watch class imbalance, and each fix, move a decision boundary, step by step."""

import streamlit as st

from app import playground_view as pv
from app.classroom import CLASSROOM
from app.playground_panels import regions, trained_panels, untrained_panel
from core.data import TOY_PRESETS, TOY_SHAPES, make_toy_data
from core.text import md
from core.train import ToyTrainer

K = pv.PREFIX
st.title("🎓 Playground")
st.markdown("A tiny network learns to separate coloured points while you watch. Make one class rare, press "
            "**Play** (or **Step** through it) and see where the boundary goes; then compare a fix side by side.")
unreadable = pv.restore()
hide = pv.link_hides()
if unreadable:
    st.warning(f"This link's {', '.join(unreadable)} could not be used; those controls are at their defaults.")
if hide:
    note, show_all = st.columns([4, 1], vertical_alignment="center")
    note.info("This link hides some controls: " + ", ".join(v for h, v in pv.HIDEABLE.items() if h in hide) + ".")
    show_all.button("Show all controls", key=K + "show_all", on_click=pv.show_all_controls)


def shown(name: str) -> bool:
    return name not in hide


if st.session_state.get(CLASSROOM):  # a projector: the boundary and its buttons first, the controls under them
    stage, controls = st.container(), st.container(border=True)
    data_a, data_b = controls.columns(2, gap="medium")
else:
    controls, stage = st.columns([1, 2.2], gap="large")
    data_a = data_b = controls
with data_a:
    if shown("presets"):
        st.selectbox("Start from a preset", list(TOY_PRESETS), index=None, key=K + "preset", placeholder="Choose one",
                     on_change=pv.apply_preset, help="Sets the data controls to a ready-made lesson.")
    st.subheader("Data")
    if shown("shape"):
        st.segmented_control("Shape", list(TOY_SHAPES), key=K + "shape", wrap=True, on_change=pv.shape_changed,
                             help="Changing the shape sets the noise to one at which the shape still shows.")
    if shown("classes"):
        st.slider("Classes", 2, 6, key=K + "classes")
    if shown("points"):
        st.slider("Points in the biggest class", 50, 800, step=50, key=K + "points")
with data_b:
    if shown("profile"):
        st.selectbox("Imbalance profile", list(pv.PROFILES), format_func=pv.PROFILES.get, key=K + "profile")
    if shown("ratio"):
        st.slider("Imbalance ratio", 1, 100, key=K + "ratio", disabled=st.session_state[K + "profile"] == "none",
                  help="Points in the biggest class ÷ points in the smallest.")
    if shown("noise"):
        st.slider("Noise", 0.0, 1.0, step=0.05, key=K + "noise", help="How much the classes overlap.")
    if shown("seed"):
        st.number_input("Seed", 0, 9999, key=K + "seed", help="The same seed gives the same points and training.")

bar = stage.container(horizontal=True)  # a flex row: the buttons wrap rather than squeeze on a narrow screen
play = bar.button("Play", icon=":material/play_arrow:", type="primary", key=K + "play")
pause = bar.button("Pause", icon=":material/pause:", key=K + "pause",
                   help="Stops a playing training where it is; Play or Step go on from there.")
step_by = st.session_state.get(K + "step_by", 10)
step = bar.button("Step", icon=":material/skip_next:", key=K + "step",
                  help=f"Train {step_by} more step{'s' * (step_by > 1)}, then stop.")
reset = bar.button("Reset", icon=":material/restart_alt:", key=K + "reset", help="Back to an untrained network.")
compare_col, tau_col = stage.columns([1, 1.6], vertical_alignment="bottom")
if shown("compare"):
    compare_col.toggle("Side by side", key=K + "compare", help="Train the same data with two settings, one seed.")
if shown("tau"):
    tau_col.slider("Post-hoc tau", 0.0, 2.0, step=0.1, key=K + "tau",
                   help="Moves the trained boundary toward the rare classes without retraining: subtracts tau × "
                        "log(class share) from the network's scores (logit adjustment, Menon et al. 2021). 0 leaves "
                        "the model as trained; 1 aims at equal recall for every class.")
values = pv.current_values()  # hidden controls too: restore() keeps every value in the session

with controls:
    if shown("loss"):
        st.subheader("Fix")
    fixes = [pv.fix_controls(i, values["compare"], shown("loss")) for i in range(2 if values["compare"] else 1)]
    settings, params = [f[0] for f in fixes], {k: v for f in fixes for k, v in f[1].items()}
    st.subheader("Training")
    if shown("steps"):
        st.select_slider("Training steps", pv.STEP_CHOICES, key=K + "steps")
    st.segmented_control("The step button adds", pv.STEP_BY, key=K + "step_by", default=10, required=True,
                         format_func=lambda n: f"{n} step{'s' * (n > 1)}", wrap=True)
pv.share_box(values, params, hide)  # below the controls, at the page's width: its list of controls needs room
pv.write_address(values, params)

steps, tau, seed = values["steps"], values["tau"], values["seed"]
data = make_toy_data(values["shape"], num_classes=values["classes"], samples_per_class=values["points"],
                     noise=values["noise"], profile=values["profile"], ratio=float(values["ratio"]), seed=seed)
signature = repr(({k: values[k] for k in values if k != "tau"}, settings))
columns = stage.columns(len(settings))
slots = [c.empty() for c in columns]

training = st.session_state.get(pv.TRAINING)
if reset or (training and training["signature"] != signature):
    st.session_state.pop(pv.TRAINING, None)
    training = None
if (play or step) and (training is None or (play and all(t.done for t in training["trainers"]))):
    try:
        training = dict(signature=signature, trainers=[
            ToyTrainer(data, loss=s["loss"], loss_params=s["loss_params"], sampler=s["sampler"],
                       sampler_params=s["sampler_params"], steps=steps, seed=seed) for s in settings])
    except ValueError as exc:  # a parameter the loss or sampler rejects
        stage.error(f"Could not train: {md(exc)}")
        st.stop()
    st.session_state[pv.TRAINING] = training
if training and step:
    for trainer in training["trainers"]:
        trainer.advance(step_by)
if training and play:  # Pause (or any other control) stops this loop between two chunks; the trainers keep their place
    frame = 0
    while not all(t.done for t in training["trainers"]):
        for trainer in training["trainers"]:  # all advance before any drawing: an interruption keeps them in step
            trainer.advance(max(steps // 12, 1))
        for i, trainer in enumerate(training["trainers"]):
            slots[i].plotly_chart(regions(trainer.last, settings[i]["label"], tau, data), width="stretch",
                                  key=f"{K}f{i}.{frame}")
        frame += 1

if training is None:
    untrained_panel(slots, columns, data, settings, values["compare"])
    st.stop()
trained_panels(stage, slots, columns, training["trainers"], settings, data, tau=tau, seed=seed, steps=steps, key=K)
