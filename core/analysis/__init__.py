"""Pure analyses over stored run arrays: metrics, calibration, geometry, embeddings,
attributions."""

from core.analysis import _attribution, _calibration, _embedding, _geometry, _metrics
from core.analysis._attribution import *  # noqa: F403
from core.analysis._calibration import *  # noqa: F403
from core.analysis._embedding import *  # noqa: F403
from core.analysis._geometry import *  # noqa: F403
from core.analysis._metrics import *  # noqa: F403

__all__ = [
    *_metrics.__all__,
    *_calibration.__all__,
    *_geometry.__all__,
    *_embedding.__all__,
    *_attribution.__all__,
]
