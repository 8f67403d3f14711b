"""Pure figure builders: arrays / DataFrames in, plotly Figures out. No Streamlit."""

from core.viz import _attribution_figs, _report
from core.viz._attribution_figs import *  # noqa: F403
from core.viz._report import *  # noqa: F403

__all__ = [*_attribution_figs.__all__, *_report.__all__]
