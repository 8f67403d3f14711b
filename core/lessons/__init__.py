"""Lessons: a published claim about imbalance, a small sweep that tests it on built-in data,
and a verdict computed from the runs ("holds here", "does not hold here", "within noise")."""

from core.lessons import _base, _catalog, _runs
from core.lessons._base import *  # noqa: F403
from core.lessons._catalog import *  # noqa: F403
from core.lessons._runs import *  # noqa: F403

__all__ = [*_base.__all__, *_catalog.__all__, *_runs.__all__]
