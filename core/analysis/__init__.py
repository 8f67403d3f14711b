"""Pure analyses over stored run arrays: metrics, calibration, geometry, embeddings,
attributions, run comparison, the error gallery, the post-hoc explorer, metrics at another
class prior, and the class mix of an unlabelled batch."""

from core.analysis import (
    _attribution, _calibration, _compare, _embedding, _gallery, _geometry, _label_issues, _label_shift, _metrics,
    _paired, _posthoc_explorer, _prior, _resampling, _review, _uncertainty,
)
from core.analysis._attribution import *  # noqa: F403
from core.analysis._calibration import *  # noqa: F403
from core.analysis._compare import *  # noqa: F403
from core.analysis._embedding import *  # noqa: F403
from core.analysis._gallery import *  # noqa: F403
from core.analysis._geometry import *  # noqa: F403
from core.analysis._label_issues import *  # noqa: F403
from core.analysis._label_shift import *  # noqa: F403
from core.analysis._metrics import *  # noqa: F403
from core.analysis._paired import *  # noqa: F403
from core.analysis._posthoc_explorer import *  # noqa: F403
from core.analysis._prior import *  # noqa: F403
from core.analysis._resampling import *  # noqa: F403
from core.analysis._review import *  # noqa: F403
from core.analysis._uncertainty import *  # noqa: F403

__all__ = [
    *_metrics.__all__,
    *_calibration.__all__,
    *_geometry.__all__,
    *_label_issues.__all__,
    *_embedding.__all__,
    *_attribution.__all__,
    *_compare.__all__,
    *_gallery.__all__,
    *_posthoc_explorer.__all__,
    *_resampling.__all__,
    *_review.__all__,
    *_uncertainty.__all__,
    *_paired.__all__,
    *_prior.__all__,
    *_label_shift.__all__,
]
