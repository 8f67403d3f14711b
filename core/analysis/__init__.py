"""Pure analyses over stored run arrays: metrics, calibration, geometry, embeddings,
attributions, run comparison, the error gallery, the post-hoc explorer, metrics at another
class prior, the class mix of an unlabelled batch, robustness per class under attack, the rare last stage of an ordered label, and
experiments and sweeps read back from the store with their paired comparisons."""

from core.analysis import (
    _attribution, _attribution_cache, _calibration, _compare, _embedding, _experiments, _feature_importance,
    _gallery, _geometry, _label_issues, _label_shift, _metrics, _multilabel, _multilabel_stats,
    _multilabel_views, _paired,
    _posthoc_explorer, _prior, _rare_stage, _resampling, _review, _robustness, _starting_points, _sweeps,
    _synthetic_rows, _text_attribution, _transformer_attribution, _uncertainty, _verdict,
)
from core.analysis._attribution import *  # noqa: F403
from core.analysis._attribution_cache import *  # noqa: F403
from core.analysis._calibration import *  # noqa: F403
from core.analysis._compare import *  # noqa: F403
from core.analysis._embedding import *  # noqa: F403
from core.analysis._experiments import *  # noqa: F403
from core.analysis._feature_importance import *  # noqa: F403
from core.analysis._gallery import *  # noqa: F403
from core.analysis._geometry import *  # noqa: F403
from core.analysis._label_issues import *  # noqa: F403
from core.analysis._label_shift import *  # noqa: F403
from core.analysis._metrics import *  # noqa: F403
from core.analysis._multilabel import *  # noqa: F403
from core.analysis._multilabel_stats import *  # noqa: F403
from core.analysis._multilabel_views import *  # noqa: F403
from core.analysis._paired import *  # noqa: F403
from core.analysis._posthoc_explorer import *  # noqa: F403
from core.analysis._prior import *  # noqa: F403
from core.analysis._rare_stage import *  # noqa: F403
from core.analysis._resampling import *  # noqa: F403
from core.analysis._review import *  # noqa: F403
from core.analysis._robustness import *  # noqa: F403
from core.analysis._starting_points import *  # noqa: F403
from core.analysis._sweeps import *  # noqa: F403
from core.analysis._synthetic_rows import *  # noqa: F403
from core.analysis._text_attribution import *  # noqa: F403
from core.analysis._transformer_attribution import *  # noqa: F403
from core.analysis._uncertainty import *  # noqa: F403
from core.analysis._verdict import *  # noqa: F403

__all__ = [
    *_metrics.__all__,
    *_calibration.__all__,
    *_geometry.__all__,
    *_label_issues.__all__,
    *_embedding.__all__,
    *_attribution.__all__,
    *_attribution_cache.__all__,
    *_feature_importance.__all__,
    *_compare.__all__,
    *_gallery.__all__,
    *_posthoc_explorer.__all__,
    *_resampling.__all__,
    *_review.__all__,
    *_text_attribution.__all__,
    *_transformer_attribution.__all__,
    *_robustness.__all__,
    *_uncertainty.__all__,
    *_paired.__all__,
    *_verdict.__all__,
    *_prior.__all__,
    *_rare_stage.__all__,
    *_experiments.__all__,
    *_sweeps.__all__,
    *_synthetic_rows.__all__,
    *_starting_points.__all__,
    *_label_shift.__all__,
    *_multilabel.__all__,
    *_multilabel_stats.__all__,
    *_multilabel_views.__all__,
]
