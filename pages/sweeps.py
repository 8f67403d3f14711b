"""Sweeps: every combination of a few settings, each trained over several seeds: where does a fix help?"""

import streamlit as st

from app import sweep_view as sv
from app.sweep_builder import sweep_builder
from app.services import get_store, load_sweep_summary
from app.fit_tables import wrapping_table
from app.widgets import explain
from core.safe_csv import csv_bytes
from core.text import md
from core.viz import axis_title, sweep_heatmap_figure, sweep_lines_figure, sweep_tail_head_figure


def show(fig, name: str, width="stretch", **kwargs):
    return st.plotly_chart(fig, width=width, key=f"sweeps.{name}.{record.id}.{metric}", config={
        "toImageButtonOptions": {"filename": f"{record.id}-{name}"}}, **kwargs)


st.title("🧪 Sweeps")
sweeps = get_store().list_sweeps()
if not sweeps:
    st.info(sv.EMPTY)
    st.page_link("../pages/train.py", label="Open the Train page", icon="🏋️")
    with st.expander("Build a sweep here", expanded=True, icon=":material/construction:"):
        sweep_builder()
    st.stop()
with st.expander("Build a new sweep", icon=":material/construction:"):
    sweep_builder()

st.markdown(sv.INTRO)
record = sv.select_sweep(sweeps)  # the page's width: a sweep's name is long, and a picker cannot wrap it
measures = sv.measures(record)
metric = st.selectbox("Measure", measures, index=measures.index("balanced_accuracy"),
                      format_func=sv.metric_name, key="sweeps.metric",
                      help="Which number the map, the lines and the comparisons use. Balanced accuracy counts every "
                           "class the same however rare; plain accuracy is dominated by the common classes.")
sv.progress_panel(record.id, metric)
summary = load_sweep_summary(record.id, metric)
table = sv.cells_table(summary)
if table.empty:
    st.info("This sweep has no cells yet.")
    st.stop()
table, axes, reference = sv.plugin_names_in_words(table, summary["axes"], summary["reference"])
label = sv.metric_name(metric)
rows, columns, fixed = sv.choose_axes(axes, reference)
shown = sv.hold_fixed(table, fixed)
notes = sv.variant_notes(record.spec)
if fixed or notes:
    with st.expander("What the settings mean" + (" (and what is held fixed)" if fixed else "")):
        st.markdown("\n".join(notes + [f"- {md(axis_title(a))} = **{md(v)}** throughout"
                                       for a, v in fixed.items()]))

# --- the map ------------------------------------------------------------------------------
st.subheader(f"{label}: every combination at a glance")
run_ids = sv.first_finished_runs(record)
event = show(sweep_heatmap_figure(shown, rows, columns, metric, metric_label=label, reference=reference,
                                  higher_is_better=sv.higher_is_better(metric), row_order=axes[rows],
                                  column_order=axes[columns] if columns else None, run_ids=run_ids),
             "map", width="stretch" if columns else "content", on_select="rerun", selection_mode="points")
clicked = sv.selected_run(event)
if clicked:
    st.switch_page("../pages/results.py", query_params={"run": clicked})
sv.explain_marks(reference, metric)
caveat = sv.seeds_caveat(summary)
if caveat:
    st.info(caveat, icon=":material/info:")
openable = {r["experiment"]: " · ".join(f"{sv.short_title(a)} {r[a]}" for a in (rows, columns) if a)
            for r in shown.to_dict("records") if r["experiment"] in run_ids}
if openable:
    a, b = st.columns([2, 1], vertical_alignment="bottom")
    chosen = a.selectbox("Open a square's results", list(openable), format_func=openable.get, key="sweeps.open",
                         help="The Results page of the square's first finished run, showing the mean over all of "
                              "its runs (the same as clicking the square).")
    b.page_link("../pages/results.py", label="Open its results", icon="📊", query_params={"run": run_ids[chosen]})

# --- lines and the head/tail trade-off ----------------------------------------------------
x, series = sv.line_axes(axes, rows, columns)
if x is not None:
    st.subheader(sv.lines_title(label, x, axes))
    show(sweep_lines_figure(shown, x, metric, series=series, metric_label=label, reference=reference,
                            x_order=axes[x], series_order=axes[series] if series else None), "lines")
    explain(sv.lines_caption(label, x, series, axes))
st.subheader("Rare classes against common ones")
if shown["head_recall"].notna().any() and shown["tail_recall"].notna().any():
    show(sweep_tail_head_figure(shown, rows, label_by=columns, reference=reference), "tail-head")
    explain("Each dot is one square of the map: across, how many cases of the common (head) classes the model "
            "finds; up, how many of the rare (tail) classes. On the dotted diagonal the rare classes do as well as "
            "the common ones. Most fixes move dots up (more rare cases found) and a little left (a few common "
            "cases lost): the question is whether the trade is worth it. Bars: 95 % intervals over the seeds"
            + (f"; the small numbers are the {md(sv.short_title(columns))}." if columns else "."))
else:
    explain("Not available for this data: its training split has no head classes or no tail classes (head: more "
            "than 100 training samples, tail: fewer than 20; set on the Data page), so there is no head-against-tail "
            "trade-off to draw.")

# --- every cell ---------------------------------------------------------------------------
st.subheader("Every square as a table")
# An HTML table whose cells wrap: every column in view at 1024 px, the verdict's whole sentence.
squares = sv.squares_table(table, [a for a in axes if a in table], metric, reference)
wrapping_table(squares.set_index(squares.columns[0]))
st.download_button("All squares, every measure (CSV)", csv_bytes(sv.cells_table(summary)),
                   file_name=f"{record.id}.csv",
                   mime="text/csv", key="sweeps.csv", on_click="ignore", icon=":material/download:",
                   help="One row per square: its settings, every measure's mean and 95 % interval, head and tail "
                        "recall, and the comparison with the reference.")
explain("Every square of the sweep (all values of every setting), with the measure chosen above, its 95 % interval "
        "over the square's runs, and its difference from the reference with the verdict. The CSV holds every measure "
        "and head and tail recall, for a spreadsheet or a report.")
