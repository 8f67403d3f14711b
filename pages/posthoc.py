"""Post-hoc explorer: re-balance and re-calibrate a trained model without retraining it."""

import math

import streamlit as st

from app.classroom import CLASSROOM
from app.posthoc_view import KEY, TEMPERATURES, change_cards, reset, save, start
from app.prior_view import metrics_at, prior_cards, prior_note, prior_picker
from app.services import load_bundle
from app.widgets import explain, require_run
from core.analysis import POSTHOC_DEFAULTS, describe_posthoc, describe_prior, explore, prior_correction_warning
from core.text import md
from core.viz import posthoc_confusion_heatmap, posthoc_recall_bars, reliability_diagram

start()

st.title("🎚️ Post-hoc explorer")
st.markdown("A trained model can be re-balanced and re-calibrated **without retraining**: these fixes only change "
            "how its final scores are turned into an answer. Move a slider and every number below is recomputed "
            "from the stored test scores at once.")

record = require_run()
bundle = load_bundle(record.id)
art, names, groups = bundle.artifacts, bundle.class_names, bundle.groups
derived_from = bundle.metrics.get("posthoc")
if derived_from:
    st.info(f"This run is already a post-hoc version of **{md(derived_from.get('parent_name'))}** "
            f"({describe_posthoc({k: derived_from[k] for k in POSTHOC_DEFAULTS})}); the sliders act on top of it.")

fitted_T = bundle.metrics.get("calibration", {}).get("optimal_temperature")
has_fit = isinstance(fitted_T, float) and math.isfinite(fitted_T)
s1, s2, s3, s4 = st.columns(4)
with s1:
    st.slider("Logit adjustment τ", 0.0, 2.0, step=0.05, key=KEY + "logit_tau")
    explain("Subtracts τ × log(class frequency) from every score: it stops the model from favouring common "
            "classes just because they are common (τ = 1 is the textbook setting).")
with s2:
    st.slider("τ-normalisation of the classifier weights", 0.0, 2.0, step=0.05, key=KEY + "tau_norm",
              disabled=not art.has_features, help=None if art.has_features else "A table baseline has no network "
              "classifier layer whose weights could be normalised.")
    explain("Divides each class's final-layer weights by their length to the power τ: common classes grow "
            "long weights in training, and evening them out gives rare classes a fair say.")
with s3:
    use_fit = st.toggle(f"Use the fitted T = {fitted_T:.2f}" if has_fit else "Use a fitted T (no validation data)",
                        key=KEY + "fitted_T", disabled=not has_fit)
    st.select_slider("Temperature T", TEMPERATURES, key=KEY + "temperature", disabled=use_fit)
    explain("Divides every score by T: above 1 the model is less sure of itself, below 1 more sure. It never "
            "changes which class is predicted, only how confident it is.")
with s4:
    st.toggle("Prior-correcting threshold", key=KEY + "prior_threshold")
    explain("Divides each class's probability by how common it was in training (Buda et al. 2018); on its own "
            "it equals logit adjustment with τ = 1, so switched on the two add up.")
    st.button("Reset all", on_click=reset, key=KEY + "reset")

params = {k: st.session_state[KEY + k] for k in POSTHOC_DEFAULTS}
explain(describe_prior(art, bundle.config))
twice = prior_correction_warning(bundle.config)
if twice and (params["logit_tau"] or params["prior_threshold"]):
    st.warning(twice, icon="⚠️")
if use_fit and has_fit:
    params["temperature"] = fitted_T
original, adjusted = explore(art, groups=groups), explore(art, groups=groups, **params)

st.subheader("What changes" if describe_posthoc(params) != "no change" else "Original model (move a slider)")
change_cards(original, adjusted)
gaps = " · ".join(f"{g} {original['gap'][g]:+.3f} → {adjusted['gap'][g]:+.3f}" for g in adjusted["gap"]
                  if math.isfinite(adjusted["gap"][g]))
explain(f"Adaptive ECE {original['adaptive_ece']:.3f} → {adjusted['adaptive_ece']:.3f}. Confidence minus accuracy "
        f"per group (above zero: over-confident): {gaps}.")

choice = prior_picker(bundle, "posthoc")
if not choice.as_tested:
    st.markdown("**The adjusted model at this class mix**")
    prior_cards(metrics_at(bundle, choice, posthoc=params), metrics_at(bundle, choice),
                compared_with="vs the original model at this mix")
prior_note(choice, what="cards just above")

# Side by side while the matrix's cells stay readable; with many classes (or a projector's
# large type) the matrix gets the page's width so its cells and every label stay legible.
wide = len(names) > 5 or st.session_state.get(CLASSROOM, False)
left, right = (st.container(), st.container()) if wide else st.columns(2)
with left:
    st.plotly_chart(posthoc_recall_bars(names, original["recall"], adjusted["recall"], art.class_counts, groups),
                    width="stretch", key=KEY + "recall")
    explain("Share of each class's test cases found, before (pale) and after (solid), from the most common class "
            "on the left to the rarest on the right; colours mark head, medium and tail classes.")
with right:
    which = st.segmented_control("Confusion matrix", ["after", "before"], default="after", key=KEY + "which",
                                 help="The adjusted model's confusion matrix, or the original's, to compare.") or "after"
    shown = adjusted if which == "after" else original
    st.plotly_chart(posthoc_confusion_heatmap(shown["confusion"], names, art.class_counts), width="stretch",
                    key=KEY + "confusion")
    explain(f"{which.capitalize()} the adjustment: each row is a true class and shows where its cases went (in %). "
            "A strong diagonal is good; the left columns filling up means rare cases are being called common.")
st.plotly_chart(reliability_diagram({"original": original["reliability"], "adjusted": adjusted["reliability"]},
                                    colors={"original": "#b0b0b0", "adjusted": "#52606d"}),
                width="stretch", key=KEY + "reliability")
explain("Reliability before (grey) and after (dark): on the dashed diagonal the confidence can be taken at its "
        "word; below it the model is over-confident. Re-balancing often costs some calibration, which the "
        "temperature slider can restore.")

with st.expander("In which order are the fixes applied?"):
    st.markdown("1. τ-normalisation rebuilds the scores from the stored features with the evened-out weights.\n"
                "2. Logit adjustment and the prior threshold shift each class's score by its log frequency.\n"
                "3. Temperature divides the result, so it only changes confidence, never the answer.\n\n"
                "Together they amount to one new final layer, which is what *Save as a derived run* stores.")

st.subheader("Keep this version")
suggested = f"{record.name} + post-hoc {describe_posthoc(params)}"
st.text_input("Name of the new run", key=KEY + "name", placeholder=suggested, max_chars=200)
st.button("Save as a derived run", type="primary", key=KEY + "save", on_click=save,
          args=(record.id, params, suggested), disabled=describe_posthoc(params) == "no change",
          help="Stores the adjusted scores and final layer as a new finished run (the original stays as it is).")
if describe_posthoc(params) == "no change":
    st.caption("Move a slider first: the original run already stores these numbers.")
if error := st.session_state.pop(KEY + "error", None):
    st.error(error)
