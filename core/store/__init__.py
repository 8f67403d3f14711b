"""The run store: SQLite index + per-run artefact folders; also the job queue."""

from core.store._annotations import ANNOTATIONS, REVIEW_MARKS, TRAIN_REVIEW_MARKS, AnnotationDamaged
from core.store._files import RUN_FILES, RunFileDamaged, RunFolder, read_json, write_bytes_atomic, write_json_atomic
from core.store._records import (
    EXPERIMENT_PREFIX, FINISHED, STATUSES, SWEEP_PREFIX, ExperimentRecord, RunNotFound, RunRecord, SweepRecord, pid_alive,
)
from core.store._store import RunStore

__all__ = ["read_json", "write_bytes_atomic", "write_json_atomic", "RunFolder", "RUN_FILES", "FINISHED", "STATUSES", "RunNotFound",
           "RunRecord", "RunStore", "ExperimentRecord", "EXPERIMENT_PREFIX", "RunFileDamaged", "pid_alive",
           "SWEEP_PREFIX", "SweepRecord", "ANNOTATIONS", "AnnotationDamaged", "REVIEW_MARKS", "TRAIN_REVIEW_MARKS"]
