"""The resampling stage (`resampler:` in the config): the training rows of a table are
resampled (SMOTE, random over- or under-sampling, a tabular GAN, ...) before any model sees
them; the synthetic rows are recorded (`MadeRows`: which rows, by which resampler, a kept
sample of them) so the run can show them apart and check them. Only the training rows are
resampled: validation and test rows never meet a resampler."""

from __future__ import annotations

import dataclasses

import numpy as np

from core.artifacts import MadeRows
from core.config import RunConfig
from core.data import Splits
from core.methods import resample
from core.train._common import Cancelled, RunHooks, Stage, TrainingRows

__all__ = ["RESAMPLING"]


class Resampling(Stage):
    name = "resampling"

    def applies(self, config: RunConfig) -> bool:
        return config.resampler is not None

    def rows(self, config: RunConfig, splits: Splits, rows: TrainingRows, run: RunHooks) -> TrainingRows:
        spec = config.resampler
        if splits.modality != "tabular":
            raise ValueError(f"resampler {spec.name!r} works on tables; for images use a "
                             "sampler, or cRT with a feature-space resampler (stage2.resampler)")
        if rows.weight is not None:
            raise ValueError("rows weighted in the loss (label_issues with action 'downweight', or pseudo-labels "
                             "with a weight other than 1) do not combine with a resampler; use action 'drop' or "
                             "weight 1")
        def stop() -> bool:  # a resampler that fits a model (the GAN) checks this every epoch
            if run.should_stop():
                raise Cancelled("cancelled while the resampler was fitting")
            return False

        out = resample(spec.name, rows.x, rows.y, spec.params, seed=config.train.seed, progress=run.progress,
                       should_stop=stop)
        made = MadeRows.of(spec.name, out.x.astype(np.float32), out.y, out.synthetic, splits.num_classes,
                           n_real=len(rows.y), seed=config.train.seed) if out.n_synthetic else None
        return dataclasses.replace(rows, x=out.x.astype(np.float32), y=out.y.astype(np.int64),
                                   synthetic=int(out.synthetic.sum()), made=made)


RESAMPLING = Resampling()
