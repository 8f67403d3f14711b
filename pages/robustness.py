"""Robustness: when the inputs are changed a little, on purpose, which classes break first?"""

import streamlit as st

from app.robustness_view import attack_settings, attacked_gallery, class_table, paired_words, robustness_of
from app.services import finished_runs, load_bundle
from app.widgets import explain, require_run, run_title
from core.analysis import ATTACK_WORDS, comparable, disparity_curve
from core.viz import disparity_figure, robust_by_count_figure, robustness_curve_figure

st.title("🛡️ Robustness")
st.markdown(
    "A model is **robust** when a small change to an input, one a person would barely notice, does not change "
    "its answer. Here the change is made on purpose: an **attack** moves each test case, within a budget called "
    "**epsilon**, in the direction that most confuses the model, and we count how often it is still right. "
    "On imbalanced data the question that matters is *who pays*: the rare (tail) classes often break first, "
    "because the model has seen few of them and their region is thin. Epsilon 0 is the test set as it is, so "
    "every number at 0 is the ordinary (clean) accuracy."
)

record = require_run()
bundle = load_bundle(record.id)
st.caption(f"Epsilon is in {ATTACK_WORDS[bundle.modality]}. Every test case is attacked once per size; on a CPU "
           "this takes seconds to a minute.")
attack, steps, epsilons = attack_settings(bundle.modality)
result = robustness_of(record.id, attack, steps, epsilons)
if result is None:
    st.stop()
table, predictions = result
largest = max(epsilons)

pooled = table[(table["scope"] != "class") & (table["epsilon"].isin([0.0, largest]))].set_index(["epsilon", "name"])
cols = st.columns(4)
for col, (name, words) in zip(cols, (("all classes", "Balanced accuracy"), ("head", "Head classes"),
                                     ("tail", "Tail classes"), ("head - tail", "Gap head − tail"))):
    if (largest, name) in pooled.index:
        row, clean = pooled.loc[(largest, name)], pooled.loc[(0.0, name)]
        col.metric(f"{words} at ε {largest:g}", f"{row['accuracy']:.0%}",
                   delta=f"{row['accuracy'] - clean['accuracy']:+.0%} from clean", border=True,
                   delta_color="inverse" if name == "head - tail" else "normal",
                   help=f"95 % interval {row['low']:.0%} – {row['high']:.0%}; clean {clean['accuracy']:.0%}.")
explain("Each card: accuracy on attacked test cases at the largest size chosen, and its change from the clean "
        "inputs. The gap is the head classes' accuracy minus the tail classes' (Hu et al. 2023 call it the accuracy "
        "disparity): when it grows under attack, robustness costs the rare classes more.")

left, right = st.columns(2)
with left:
    st.plotly_chart(robustness_curve_figure(table), width="stretch", key="robustness.curve")
    explain("One line per group of classes (head: many training examples, tail: few), with 95 % intervals. "
            "Lines that fall together mean every group pays alike; a tail line that drops first means the rare "
            "classes break first.")
with right:
    shown_eps = st.select_slider("Attack size for the class view", [e for e in epsilons if e > 0] or [0.0],
                                 value=largest, key="robustness.class_eps")
    st.plotly_chart(robust_by_count_figure(table, shown_eps), width="stretch", key="robustness.by_count")
    explain("Each class twice: hollow is its clean accuracy, filled its accuracy under attack, against how many "
            "training examples it had. A long line down is a class that breaks easily.")

with st.expander("Every class, with 95 % intervals"):
    class_table(table)
    explain("Accuracy of each class (its recall) at each attack size, with its Wilson interval; few test cases "
            "give wide intervals.")

st.subheader("Two runs side by side")
others = [r for r in finished_runs() if r.id != record.id]
other = st.selectbox("Compare with", [None, *others], key="robustness.other",
                     format_func=lambda r: "— choose a run —" if r is None else run_title(r),
                     help="For example plain adversarial training against re-weighted adversarial training, "
                          "trained on the same data.")
curves = {f"this run: {record.name}": disparity_curve(table)}
if other is not None:
    ok, why = comparable({record.id: bundle.config, other.id: load_bundle(other.id).config})
    result_b = robustness_of(other.id, attack, steps, epsilons) if ok else None
    if not ok:
        st.warning(f"These two runs cannot be compared: {why}")
    elif result_b is not None:
        table_b, predictions_b = result_b
        curves[f"other: {other.name}"] = disparity_curve(table_b)
        a_bal = table[(table["scope"] == "balanced")].set_index("epsilon")["accuracy"]
        b_bal = table_b[(table_b["scope"] == "balanced")].set_index("epsilon")["accuracy"]
        words = paired_words(predictions[largest], predictions_b[largest], bundle.artifacts.labels,
                             len(bundle.class_names))
        st.markdown(f"Balanced accuracy at ε {largest:g}: this run **{a_bal[largest]:.0%}**, the other "
                    f"**{b_bal[largest]:.0%}**; this run minus the other is *{words}* (paired bootstrap over the "
                    "same attacked test cases).")
st.plotly_chart(disparity_figure(curves), width="stretch", key="robustness.disparity")
explain("The gap between head and tail accuracy as the attack grows, with 95 % intervals. A rising line: the "
        "rare classes lose more than the common ones. With a second run, the lower line spreads the cost more "
        "evenly; re-weighted adversarial training aims to lower it.")

st.subheader("What an attack does to rare-class cases")
gallery_eps = st.select_slider("Attack size for the examples", [e for e in epsilons if e > 0] or [0.0],
                               value=largest, key="robustness.gallery_eps")
attacked_gallery(record.id, attack, steps, float(gallery_eps), predictions)
explain("Test cases of the tail classes, first those the attack turned from right to wrong. Pictures: the original, the change the attack made (magnified so the "
        "largest allowed change is black or white), and the attacked picture, each with the predicted class; "
        "under them, the saliency map of each prediction (which pixels drove it). Tables: the feature values the "
        "attack moved most.")
