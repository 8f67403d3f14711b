"""Pure figure builders: arrays / DataFrames in, plotly Figures out. No Streamlit.

Every name a builder draws (classes, runs, features, titles) is escaped for plotly's markup
with `core.text.plotly_text` inside the builder, so callers pass plain text and never markup.
"""

import plotly.io as _pio

# Every chart in one look, set once where the builders live: a template named in each figure
# is validated and deep-copied for each (about 13 ms a figure, paid by a page of six charts
# on every rerun), and the builders that named none were drawn in another look.
_pio.templates.default = "plotly_white"

from core.viz import (  # noqa: E402
    _attribution_figs, _calibration_figs, _data_figs, _geometry_figs, _lesson_figs, _playground_figs, _report,
    _results_figs, _robustness_figs, _sweep_figs, _text_figs, _training_figs, _triage_figs,
)
from core.viz._attribution_figs import *  # noqa: F403
from core.viz._calibration_figs import *  # noqa: F403
from core.viz._data_figs import *  # noqa: F403
from core.viz._geometry_figs import *  # noqa: F403
from core.viz._lesson_figs import *  # noqa: F403
from core.viz import _labels_figs
from core.viz._labels_figs import *  # noqa: F403
from core.viz import _label_issue_figs
from core.viz._label_issue_figs import *  # noqa: F403
from core.viz._playground_figs import *  # noqa: F403
from core.viz._report import *  # noqa: F403
from core.viz._results_figs import *  # noqa: F403
from core.viz._robustness_figs import *  # noqa: F403
from core.viz._text_figs import *  # noqa: F403
from core.viz._sweep_figs import *  # noqa: F403
from core.viz._training_figs import *  # noqa: F403
from core.viz._triage_figs import *  # noqa: F403
from core.viz import _multilabel_figs
from core.viz._multilabel_figs import *  # noqa: F403
from core.viz import _multilabel_view_figs
from core.viz._multilabel_view_figs import *  # noqa: F403

__all__ = [
    *_attribution_figs.__all__, *_calibration_figs.__all__, *_data_figs.__all__, *_geometry_figs.__all__, *_lesson_figs.__all__,
    *_playground_figs.__all__, *_report.__all__, *_results_figs.__all__, *_sweep_figs.__all__,
    *_training_figs.__all__, *_triage_figs.__all__, *_labels_figs.__all__, *_label_issue_figs.__all__,
    *_robustness_figs.__all__, *_text_figs.__all__, *_multilabel_figs.__all__,
    *_multilabel_view_figs.__all__,
]
