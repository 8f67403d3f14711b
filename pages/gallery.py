"""Error gallery: the test samples a run gets wrong, rare classes first, with attribution
maps of what drove each prediction, the training cases each resembles, a reviewer's verdict
on each, and an HTML report and CSV to share them."""

import streamlit as st

from app.gallery_cards import (
    attribution_maps, case_card, neighbour_panel, review_form, review_summary, run_model, saved_reviews,
)
from app.gallery_view import class_importance_section, confused_pair_buttons, report_section
from app.label_issue_view import label_issue_review
from app.multilabel_gallery_view import multilabel_gallery
from app.text_view import text_case_panel, train_text_lookup
from app.services import get_store, load_bundle, load_splits
from app.widgets import explain, params_form, require_run
from core.analysis import (
    ATTRIBUTIONS, error_cases, list_attributions, nearest_training_cases, neighbours_unavailable, softmax,
)
from core.data import feature_table, head_to_tail_order
from core.store import RunFileDamaged
from core.registry import plugin_label
from core.text import md
from core.train import train_subset_rows

st.title("🔍 Error gallery")
st.caption("The test samples the model got wrong, rare classes first: what in each input drove its answer, which "
           "training cases it resembles, and a place to record your verdict on each.")
record = require_run(multilabel=True)
if load_bundle(record.id).multilabel:  # several findings per case: one finding at a time
    multilabel_gallery(load_bundle(record.id))
    st.stop()

b, rid, run_dir = load_bundle(record.id), record.id, get_store().run_dir(record.id)
art, names, groups, image = b.artifacts, b.class_names, b.groups, b.modality == "image"
if not art.has_features:
    st.info(f"**{md(record.name)}** is a table baseline ({md(plugin_label('model', b.config.model.name))}): the attribution methods here explain a "
            "neural network through its gradients, which a forest or a scikit-learn model does not have. Its "
            "mistakes are listed on the Results page (click a cell of the confusion matrix).")
    label_issue_review(rid, b, load_splits(b.config.data), names, groups)
    st.stop()
features = b.metrics["dataset"].get("feature_names") or [f"feature {i}" for i in range(art.features.shape[1])]
order = [int(k) for k in head_to_tail_order(art.class_counts)]
try:
    model = run_model(rid)
except FileNotFoundError as exc:
    st.warning(f"{md(exc)}. Pick another run in the sidebar.")
    st.stop()
except RunFileDamaged as exc:
    st.error(f"{md(exc)}. The Results page still works: it needs only the stored scores.")
    st.stop()
label = lambda k: f"{names[k]} ({groups[k]})"  # noqa: E731
key = lambda name: f"gallery.{name}.{rid}"  # noqa: E731
st.info("**How to read the maps.** An attribution map shows which parts of the input pushed the model towards one "
        "class: :red[red] parts pushed *towards* it, :blue[blue] parts pushed *away*, uncoloured parts hardly "
        "mattered. Each case is explained for its **true** class (what spoke for the right answer) and its "
        "**predicted** class (what misled the model).")

for name, value in {"true": [k for k in order if groups[k] == "tail"], "pred": [], "correct": "wrong",
                    "conf": (0.0, 1.0), "page": 1}.items():
    st.session_state.setdefault(key(name), value)

confused_pair_buttons(b, key)

c1, c2, c3, c4 = st.columns(4)
true_sel = c1.multiselect("True class", order, format_func=label, key=key("true"), placeholder="any class",
                          help="Starts on the rarest (tail) classes: their errors are the ones overall accuracy hides.")
pred_sel = c2.multiselect("Predicted class", order, format_func=label, key=key("pred"), placeholder="any class")
correct = c3.segmented_control("Show", ["wrong", "right", "all"], key=key("correct"), required=True,
                               format_func={"wrong": "wrong", "right": "right", "all": "both"}.get)
conf = c4.slider("Confidence of the prediction", 0.0, 1.0, step=0.05, key=key("conf"),
                 help="The probability the model gave its own answer. A confident mistake is the most misleading kind.")

m1, m2, m3 = st.columns([3, 3, 2])
methods = list_attributions(b.modality, model=model)
method = m1.selectbox("Attribution method", methods, key=key("method"),
                      format_func=lambda n: ATTRIBUTIONS.info(n).label,
                      index=methods.index("integrated_gradients") if "integrated_gradients" in methods else 0,
                      help="Different ways of asking the model which inputs mattered; they often, not always, agree.")
m1.caption(ATTRIBUTIONS.info(method).description)
towards = m2.radio("Explain towards", ["pair", "chosen"], horizontal=True, key="gallery.towards",
                   format_func={"pair": "true and predicted class", "chosen": "a class I choose"}.get)
chosen = m2.selectbox("Class to explain", order, format_func=label, key=key("chosen")) if towards == "chosen" else None
per_page = m3.selectbox("Cases per page", [4, 8, 12, 16], key="gallery.per_page",  # 4: every card draws its maps
                        help="Each case draws its own maps: more per page, a slower page.")
opacity = m3.slider("Map opacity", 0.0, 1.0, 0.6, 0.05, key="gallery.opacity") if image else None
with st.expander("Method settings"):
    params = params_form(ATTRIBUTIONS.info(method), key="gallery.params")

cases = error_cases(art, groups, true_classes=true_sel or None, pred_classes=pred_sel or None, correctness=correct,
                    confidence_range=conf)
if cases.empty:
    cases = error_cases(art, groups)
    if cases.empty:
        st.info("No test samples match these filters. Widen the confidence range or pick other classes.")
        st.stop()
    st.info(f"No test samples match these filters, so all **{len(cases)}** mistakes of this run are shown instead. "
            "Change the filters above to narrow them again.")
n_pages = -(-len(cases) // per_page)
if st.session_state[key("page")] > n_pages:
    st.session_state[key("page")] = 1
p1, p2 = st.columns([1, 4], vertical_alignment="bottom")
page = p1.number_input(f"Page (of {n_pages})", min_value=1, max_value=n_pages, key=key("page"))
shown = cases.iloc[(page - 1) * per_page: page * per_page]
p2.markdown(f"**{len(cases)}** test samples match; showing {(page - 1) * per_page + 1}–"
            f"{(page - 1) * per_page + len(shown)}, the ones the model was surest of first.")
splits = load_splits(b.config.data)
x_test = splits.x_test[art.test_index]
x, probs = x_test[shown["row"].to_numpy()], softmax(art.logits[shown["row"].to_numpy()])


def _maps(inputs, ids, targets, what):
    return attribution_maps(run_dir, model, inputs, ids, targets, method=method, params=params, what=what)


maps = _maps(x, shown["sample_id"].tolist(), {"true": shown["true"], "pred": shown["pred"]}
             | ({"chosen": [chosen] * len(shown)} if chosen is not None else {}), "attribution maps (each is saved)")
reviews, no_neighbours = saved_reviews(rid), neighbours_unavailable(art)
near = nearest_training_cases(art, shown["row"], k=3)
subset = train_subset_rows(splits.y_train, art, size=b.config.train.train_subset, seed=b.config.data.seed)
train_inputs = None if subset is None else (lambda rows: splits.x_train[subset[rows]])
ids_train = getattr(splits, "ids_train", None)  # the neighbours named as the case list names cases
train_names = None if subset is None or ids_train is None else (
    lambda rows: [f"{splits.id_name} {ids_train[subset[r]]}" for r in rows])


def _below(case, i: int) -> None:
    if splits.text_names:  # the note with its words coloured, towards the true and the predicted class
        text_case_panel(b, splits, case, {k: v[i] for k, v in maps.items()}, label=label, model=model)
    neighbour_panel(case, near[near["row"] == case.row], train_inputs, label=label, image=image, x=x[i], splits=splits,
                    reason=no_neighbours, train_names=train_names, train_texts=train_text_lookup(splits, subset))
    sample = int(case.sample_id)
    review_form(rid, sample, reviews.get(sample), key=f"gallery.review.{rid}.{sample}")


for i, case in enumerate(shown.itertuples(index=False)):
    case_card(case, x[i], probs[i], {k: v[i] for k, v in maps.items()}, label=label, names=names, features=features,
              image=image, chosen=chosen, opacity=opacity, chart_key=f"gallery.fig.{rid}",
              values=None if image else feature_table(splits, x[i]), review=reviews.get(int(case.sample_id)),
              below=lambda case=case, i=i: _below(case, i))
explain("Stronger colour (or a longer bar) means a larger effect on that class's score. Maps show what this model "
        "used, not what is right: a strong map on an irrelevant region is a reason to distrust the model there.")

if not image:
    class_importance_section(b, x_test, features, _maps, chart_key=f"gallery.fig.{rid}")

done = review_summary(rid, art, names, groups, reviews)
label_issue_review(rid, b, splits, names, groups)

report_section(record, b, cases, shown, maps, x_test, splits, features, method, done, _maps)
