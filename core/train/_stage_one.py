"""A trained first stage, kept so that a two-stage run on the same settings starts from it.

cRT, LWS, tau-norm and RCAL (Kang et al. 2020) re-balance the classifier of a network trained
with plain settings: their first stage is exactly the training of the run without the stage-2
fix. A sweep that trains plain cross-entropy beside cRT on the same seeds (the standard
fixes, the decoupling lesson) would train every such network twice. Within one pool of
workers the loop's result is kept here: the selected weights, the history, and the random
state the stages after the loop draw from. A run whose stage-1 inputs are the same reads it
back instead of running the loop, with bit-identical weights on the same machine.

The key is everything the loop depends on: the config without its name and stage 2, the
training and validation rows, the weights the loop starts from (after pre-training), any
teachers' weights (MTARD) and the random state it starts in. A stage that wraps several trainings on changed rows
(pseudo-labels) therefore gets another key for each.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from core.config import RunConfig

__all__ = ["StageOneStore", "stage_one_key"]

log = logging.getLogger(__name__)
_RNG = "__rng__."  # prefix of the random-state tensors stored beside the weights


def stage_one_key(config: RunConfig, model: nn.Module, tensors: list[torch.Tensor | None]) -> str:
    """A digest of what the loop's outcome depends on (see the module's docstring)."""
    digest = hashlib.blake2b(digest_size=20)
    raw = json.loads(config.to_json())
    for section in ("name", "stage2"):
        raw.pop(section, None)
    digest.update(json.dumps(raw, sort_keys=True, default=str).encode())
    for tensor in [*tensors, *model.state_dict().values(), torch.get_rng_state()]:
        digest.update(b"-" if tensor is None else tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(np.random.get_state()[1].tobytes())
    return digest.hexdigest()


class StageOneStore:
    """Trained first stages in a folder shared by the processes of one pool: one
    `<key>.safetensors` each (weights and random state as tensors, history and selected epoch
    in its metadata), written whole before it is renamed into place, so a reader sees all of
    one training or nothing."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def save(self, key: str, model: nn.Module, history: list[dict[str, Any]], selected: int) -> None:
        from safetensors.torch import save_file

        try:
            text = json.dumps({"history": history, "selected": selected})
            self.folder.mkdir(parents=True, exist_ok=True)
            tensors = {name: value.detach().cpu().contiguous() for name, value in model.state_dict().items()}
            tensors.update(_random_state())
            _replace(self.folder / f"{key}.safetensors", lambda path: save_file(tensors, path, {"kept": text}))
        except (OSError, TypeError, ValueError):  # only a saving: the run itself goes on
            log.warning("could not keep the first stage under %s", self.folder, exc_info=True)

    def load(self, key: str, model: nn.Module) -> tuple[list[dict[str, Any]], int] | None:
        """The history and selected epoch, with the weights loaded into `model` and the random
        state restored; None when nothing (whole) is stored under `key`."""
        from safetensors import SafetensorError, safe_open

        try:
            with safe_open(str(self.folder / f"{key}.safetensors"), framework="pt") as kept_file:
                kept = json.loads(kept_file.metadata()["kept"])
                tensors = {name: kept_file.get_tensor(name) for name in kept_file.keys()}  # noqa: SIM118
        except (OSError, ValueError, KeyError, TypeError, SafetensorError):
            return None
        device = next(iter(model.state_dict().values())).device
        model.load_state_dict({k: v.to(device) for k, v in tensors.items() if not k.startswith(_RNG)})
        _restore_random_state(tensors)
        return kept["history"], int(kept["selected"])


def _random_state() -> dict[str, torch.Tensor]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {f"{_RNG}torch": torch.get_rng_state(), f"{_RNG}numpy_keys": torch.from_numpy(keys.astype(np.int64)),
             f"{_RNG}numpy_rest": torch.tensor([pos, has_gauss], dtype=torch.int64),
             f"{_RNG}numpy_gauss": torch.tensor([cached], dtype=torch.float64)}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state[f"{_RNG}cuda"] = torch.cuda.get_rng_state()
    return state


def _restore_random_state(tensors: dict[str, torch.Tensor]) -> None:
    torch.set_rng_state(tensors[f"{_RNG}torch"])
    pos, has_gauss = tensors[f"{_RNG}numpy_rest"].tolist()
    np.random.set_state(("MT19937", tensors[f"{_RNG}numpy_keys"].numpy().astype(np.uint32), pos, has_gauss,
                         float(tensors[f"{_RNG}numpy_gauss"][0])))
    if f"{_RNG}cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors[f"{_RNG}cuda"])


def _replace(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename it into place."""
    fd, scratch = tempfile.mkstemp(dir=path.parent, suffix=".part")
    os.close(fd)
    try:
        write(scratch)
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
