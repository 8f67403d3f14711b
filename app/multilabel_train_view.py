"""The Train page for multi-label data (several findings per case): a model, one of the
multi-label losses and samplers or a training scheme (their registries' display words), the
training settings and the seeds, and the Start button. The settings multi-label training does not take (two
stages, resamplers, folds, ...) are not offered."""

from __future__ import annotations

import streamlit as st

from app.live_runs import watch
from app.multilabel_data_view import load_multilabel_dataset
from app.services import queue_run
from app.starting_points import remember_made
from app.train_forms import build_run_config, plugin_picker, train_settings_form
from app.widgets import starting_value
from core.config import DataConfig
from core.data import DataError, source_label
from core.models import MODELS, is_baseline
from core.text import md
from core.train import compatible_models

__all__ = ["multilabel_train_form"]


MULTILABEL_EXPLAINER = """
**Several findings per case: where the rare ones get lost**

- **Loss**: each finding is its own yes-or-no question. With plain binary cross-entropy the many
  "absent" answers of a rare finding drown its few "present" ones. Class-balanced BCE weighs a
  finding by how few cases carry it; the asymmetric loss (ASL) turns down the easy "absent"
  answers; the distribution-balanced loss (DB) re-weighs each answer for how findings come
  together and is lenient on easy "absent" answers.
- **Sampler**: how often each case is shown. Repeat-factor sampling repeats cases that carry a
  rare finding; class-aware sampling picks a finding first, then a case that has it.
- **Unknown entries** (not checked, not reported) are left out of every loss, never read as
  "absent".
- **Training scheme** (optional): PLT-MLC's three networks, each shown the cases in its own
  order, the last one learning from all three.

Results shows each finding's average precision against how common it is, and the rare
findings' mean (tail mAP); train two methods over several seeds to get a verdict.
"""

def _data_words(data: DataConfig, num_labels: int, modality: str) -> str:
    profile = data.imbalance
    shape = f"{profile.profile} profile, ratio {profile.ratio:g}" if profile.profile != "none" else "as given"
    hidden = f", {data.hide_labels:.0%} of training entries hidden" if data.hide_labels else ""
    return (f"**Data:** {md(source_label(data.source))} ({shape}{hidden}): {num_labels} findings per case at most, "
            f"multi-label {modality} data")


def _method_pickers(a, b, baseline: bool) -> tuple[dict, dict, dict | None]:
    """The loss, the sampler and the training scheme, in the form's two columns."""
    if baseline:  # a fitted baseline takes no loss and no sampler: the config's own defaults
        b.caption("A baseline is fitted once on the training cases: no loss or sampler, and the epochs below do not apply.")
        return {"name": "bce"}, {"name": "instance"}, None
    with b:
        scheme = plugin_picker("Training scheme", "multilabel_scheme", "train.ml_scheme", optional=True,
                               help="None: one network with the loss and sampler below. The three-branch scheme "
                                    "trains three networks, each on its own choice of cases, and keeps the one "
                                    "trained on every finding equally often: two to three times the training time.")
    if scheme is not None:  # the scheme chooses each branch's loss and sampler
        a.caption("The three branches choose their own losses and samplers, so none is picked here.")
        return {"name": "bce"}, {"name": "instance"}, scheme
    with a:
        sampler = plugin_picker("Sampler", "multilabel_sampler", "train.ml_sampler", default="instance",
                                help="Which cases each epoch draws: every case once, or rare findings more often.")
    with b:
        loss = plugin_picker("Loss", "multilabel_loss", "train.ml_loss", default="bce",
                             help="Each finding is a yes/no question; the re-balanced losses weigh the rare "
                                  "findings up. Unknown entries are left out of every loss.")
    return loss, sampler, None


def multilabel_train_form(data: DataConfig) -> None:
    """Draw the form; queue the run or experiment when Start is pressed."""
    try:
        ds = load_multilabel_dataset(data)
    except (DataError, ValueError) as exc:
        st.error(f"The chosen dataset cannot be loaded: {md(exc)}")
        st.page_link("../pages/data.py", label="Choose data", icon="📦")
        st.stop()
    c1, c2 = st.columns([4, 1])
    c1.info(_data_words(data, ds.num_labels, ds.modality), icon="🏷️")
    c2.page_link("../pages/data.py", label="Change data", icon="📦")
    with st.expander("What the losses, samplers and scheme do, in plain words"):
        st.markdown(MULTILABEL_EXPLAINER)
    form = st.container()  # the whole width: beside the explainer, a 1280-px laptop cut the choices' names
    with form:
        a, b = st.columns(2)
        with a:
            models = [m for m in compatible_models(ds.modality) if not is_baseline(m)] + [
                i.name for i in MODELS.infos()
                if i.capabilities.get("multilabel") and ds.modality in i.capabilities.get("modality", ())]
            model = plugin_picker("Model", "model", f"train.ml_model.{ds.modality}", options=models,  # one choice per kind of data
                                  default="small_cnn" if ds.modality == "image" else "mlp",
                                  help="Networks with one output per finding, or a scikit-learn baseline for tables "
                                       "(one class-weighted logistic regression per finding, or a chain of them).")
        loss, sampler, scheme = _method_pickers(a, b, is_baseline(model["name"]))
        st.markdown("**Training**")
        settings = train_settings_form("train.settings")
        seeds = int(st.number_input("Repeat over seeds", 1, 10, key=starting_value("train.ml_seeds", 1),
                                    help="Train again with other random starts; a claim that a method helps needs "
                                         "several, so its interval and verdict can tell it from noise."))
        name = st.text_input("Run name", key="train.ml_name", placeholder="automatic: data · model · method")
    seed = settings["seed"]
    raw = {"name": name.strip(), "data": data.model_dump(mode="json"), "model": model, "loss": loss,
           "sampler": sampler, "train": settings, **({"scheme": scheme} if scheme else {}),
           "evaluation": {"seeds": list(range(seed, seed + seeds)) if seeds > 1 else []}}
    config, error = build_run_config(raw, ds)
    if error:
        st.error(f"**This combination cannot run:** {md(error)}")
    else:
        runs = len(config.experiment_runs())
        cost = " Each trains three networks: two to three times as long." if scheme else ""
        st.caption(f"{runs} training{'s' if runs > 1 else ''} of {config.train.epochs} epochs, kept at the epoch with "
                   f"the best validation mAP.{cost}")
    if st.button("Start training", type="primary", key="train.start", disabled=config is None):
        watch(made := queue_run(config))
        remember_made(made)
        st.success(f"Queued **{md(config.name)}**. It starts as soon as the worker is free; follow it below.")
