"""Config files and the data they name: one readable line per problem, the size and text
checks of a config file, the check of every source-like field, and the hash that says two
configs compute the same run. Kept apart from `core.config` (which re-exports them) so the
config's models stay one screen of rules."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from core.registry import registry_for

__all__ = ["ConfigError", "MAX_CONFIG_BYTES", "format_validation_error", "read_config_file", "config_hash",
           "UPLOAD_PREFIX", "SOURCE_FIELDS", "check_source", "source_values", "is_multilabel_source",
           "is_multilabel_data", "multilabel_upload_problem", "scheme_refusals", "data_refusal",
           "with_training_seed"]

MAX_CONFIG_BYTES = 1024**2  # a config file is a page of YAML, not a data file
UPLOAD_PREFIX = "upload:"  # core.data's prefix of a stored upload's source (config sits below data)
SOURCE_FIELDS = ("data.source", "data.unlabeled.source")  # every field naming data to read: one check for all
_STORED_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,199}")  # a stored upload's file name: no folders


class ConfigError(ValueError):
    """A config that cannot run; the message is one line a person can act on."""


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: `loss.gamma: Input should be ...`."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "finite_number":
            msg = "not a number (NaN or infinity); give a finite number"
        elif loc.endswith("seed") or ".seeds." in f"{loc}.":
            msg = f"a seed is a whole number from 0 to {2**32 - 1}, got {str(err.get('input'))[:40]}"
        lines.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(lines)


def read_config_file(path: str | Path, expected: str = "a mapping of sections (data, model, loss, ...)") -> dict:
    """A YAML/JSON config file as a dict; ConfigError with one readable line (too large, not
    readable, not UTF-8, not YAML, not a mapping). Shared by run and sweep files."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: {size / 1024**2:.1f} MB is too large for a config (at most "
                              f"{MAX_CONFIG_BYTES // 1024**2} MB); is it a data file? Point data.source at it instead")
        raw = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}); save the config as UTF-8 YAML or JSON") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected {expected}")
    return raw


def config_hash(config: Any) -> str:
    """What a run computes, without its name: equal hashes, equal runs (a resumed sweep skips
    those already done)."""
    import hashlib

    raw = json.loads(config.to_json()) if not isinstance(config, dict) else dict(config)
    raw.pop("name", None)
    return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()[:16]


def _is_file(source: str) -> bool:
    """An upload, or a path the CLI stores as one; anything else names a built-in dataset."""
    return source.startswith(UPLOAD_PREFIX) or any(c in source for c in "./\\")


def is_multilabel_source(source: str) -> bool:
    """Whether `data.source` names a multi-label built-in (several findings per case)."""
    return not _is_file(source) and source in registry_for("multilabel_dataset")


def baseline_refusals(model: str, loss: str, sampler: str, *, multilabel: bool) -> list[str]:
    """What a table baseline cannot take, as config words: a single-label one on multi-label
    data (or the reverse), and a multi-label one with a loss or sampler (it weights findings
    itself). Empty for networks."""
    capabilities = registry_for("model").info(model).capabilities
    if capabilities.get("family") != "baseline":
        return []
    if not multilabel:
        return [f"model.name {model!r} (a multi-label baseline; data with one class per case takes "
                "logistic_regression)"] if capabilities.get("multilabel") else []
    if not capabilities.get("multilabel"):
        return [f"model.name {model!r} (a single-label table baseline: choose ovr_logistic_regression or "
                "classifier_chain)"]
    return [f"loss {loss!r} or sampler {sampler!r} with a table baseline (it weights findings itself)"] * (
        (loss, sampler) != ("bce", "instance"))


def data_refusal(data: Any) -> str | None:
    """Why a `DataConfig`'s options do not go together, in one line, or None: options of
    single-label data on multi-label data, and label noise with a text encoder that learns
    from the training labels (noise changes them after the texts are encoded)."""
    if data.multilabel:
        extra = [k for k in ("label_noise", "unlabeled", "ordinal", "text_encoder") if getattr(data, k) is not None]
        extra += ["imbalance.class_order"] if data.imbalance.class_order is not None else []
        if extra:
            return (f"{', '.join(extra)} apply to single-label data only; remove them for the multi-label data "
                    f"{data.source!r}")
    encoder = data.text_encoder
    if data.label_noise and encoder and encoder.supervised:
        return (f"data.text_encoder {encoder.name!r} learns from the training labels, which label_noise changes after "
                "the texts are encoded: with label noise choose 'minilm' or 'tfidf'")
    return None


def with_training_seed(data: Any, seed: int) -> Any:
    """`data` (a `DataConfig`) for the training of seed `seed`: a text encoder that learns from
    labels is seeded with it, as `train.seed` is (tuning is training); otherwise unchanged."""
    encoder = data.text_encoder
    if encoder is None or not encoder.supervised:
        return data
    seeded = type(encoder).model_validate({"name": encoder.name, **encoder.params, "seed": seed})
    return data.model_copy(update={"text_encoder": seeded})


def scheme_refusals(scheme: Any, model: str, loss: str, sampler: str, *, multilabel: bool) -> list[str]:
    """What a multi-label training scheme (`scheme`, a spec or None) cannot take, as config
    words: data with one class per case, a table baseline (no network to train in branches),
    and a loss or sampler of its own (the scheme picks each branch's loss and sampler)."""
    if scheme is None:
        return []
    if not multilabel:
        return [f"scheme {scheme.name!r} (a multi-label training scheme; remove it)"]
    if registry_for("model").info(model).capabilities.get("family") == "baseline":
        return [f"scheme {scheme.name!r} with the table baseline {model!r} (the scheme trains networks)"]
    return [f"loss {loss!r} or sampler {sampler!r} with scheme {scheme.name!r} (it picks each branch's loss and "
            "sampler; leave them at bce and every case once)"] * ((loss, sampler) != ("bce", "instance"))


def is_multilabel_data(data: Any) -> bool:
    """Whether a run's `data` (a `DataConfig` or its dict, as saved) is multi-label: a
    multi-label built-in, or an upload read as multi-label (`multilabel_upload`)."""
    if not isinstance(data, dict):
        return bool(getattr(data, "multilabel", False))
    source = data.get("source", "digits")
    return (isinstance(source, str) and is_multilabel_source(source)) or data.get("multilabel_upload") is not None


def multilabel_upload_problem(source: str, is_file: bool, separator: str | None, columns: list[str] | None,
                              label_column: str | None, roles: dict, merge_labels: bool | None) -> str | None:
    """What is wrong with `data.multilabel_upload` beside the rest of `data`, in one line."""
    if not is_file:
        return "multilabel_upload applies to uploaded files only; a built-in names its own labels"
    is_npz = source.lower().endswith(".npz")
    if is_npz and (separator is not None or columns is not None):
        return "multilabel_upload: an .npz file carries its labels as a 2-D y; remove separator and columns"
    if source.lower().endswith(".zip") and columns is not None:
        return "multilabel_upload: a picture ZIP carries its labels in labels.csv; set separator, not columns"
    if not is_npz and (separator is None) == (columns is None):
        return ("multilabel_upload: set separator (the label column lists several labels) or columns (one 0/1 "
                "column per label), one of the two")
    if columns is not None and label_column is not None:
        return "multilabel_upload.columns names the label columns; remove label_column"
    taken = [c for c in columns or () if c in roles]
    if taken:
        return f"column {taken[0]!r} is a label column; it cannot also have a role"
    if merge_labels is not None:
        return "merge_labels applies to single-label uploads; remove it for multi-label data"
    return None


def check_source(source: str, *, builtin: bool) -> str:
    """The one check of every source-like field (`SOURCE_FIELDS`), made when a config is
    validated, so a bad value is refused before anything is queued, whichever field holds
    it: an upload reference is `upload:` and a stored file's name, never a path out of the
    uploads folder; a path names a file that `tailscope train` stores as an upload and
    reads before queueing; a name is a built-in dataset where `builtin` allows one.
    Whether the file is there and readable is checked with the data (`core.data`)."""
    if not source.strip():
        raise ValueError("is empty; name " + ("a built-in dataset or " if builtin else "") + "an uploaded file")
    if source.startswith(UPLOAD_PREFIX):
        if not _STORED_NAME.fullmatch(source[len(UPLOAD_PREFIX):]):
            raise ValueError(f"{source[:80]!r} is not a valid upload reference (upload: and the stored file's name, "
                             "without folders); upload the file again")
        return source
    if _is_file(source):
        return source
    if not builtin:
        raise ValueError(f"{source[:80]!r} is not a file; unlabelled rows come from an uploaded file (the Data page, "
                         "or the file's path in a config for tailscope train)")
    if is_multilabel_source(source):
        return source
    registry_for("dataset").info(source)  # unknown: fails listing the built-in datasets
    return source


def source_values(config: Any) -> list[tuple[str, str]]:
    """(field, value) of every source-like field a run config sets, as a model or as saved
    (a dict), in `SOURCE_FIELDS` order."""
    raw = config if isinstance(config, dict) else json.loads(config.to_json())
    out = []
    for field in SOURCE_FIELDS:
        value: Any = raw
        for part in field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str) and value:
            out.append((field, value))
    return out
