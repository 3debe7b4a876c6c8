"""Checkpoints: one file that rebuilds the exact model and resumes training.

Contents (plain data and tensors only, so they load with ``torch.load(weights_only=True)``; a checkpoint
is untrusted input):

- ``format``: ``"zoo-checkpoint/1"``
- ``model_name``, ``model_config`` (the overrides passed to ``zoo.create_model``), ``model`` (state dict)
- ``spec`` (the parameter spec as a dict, or None), ``front_end`` (``FrontEndConfig.to_dict()``)
- ``train_config``, ``optimizer``, ``scheduler``, ``epoch`` (last finished, 0-based), ``step``,
  ``best_metric``, ``metrics`` (last validation metrics), ``rng``, ``callbacks``

Weights go into models through ``zoo.state_dict.load_weights`` (strict here; ``load_partial`` for
``--init-from``), whose :class:`~zoo.state_dict.LoadReport` says what was loaded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.errors import CheckpointError, ZooError
from zoo.files import atomic_path
from zoo.state_dict import LoadReport, load_partial, load_weights, read_weights_file

FORMAT = "zoo-checkpoint/1"
_REQUIRED = ("format", "model_name", "model_config", "model")
# Imported from here by training code: the model-loading path of zoo.state_dict, and its error.
__all__ = [
    "CheckpointError",
    "LoadReport",
    "load_checkpoint",
    "load_partial",
    "model_from_checkpoint",
    "save_checkpoint",
]


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write atomically: a temporary file in the same folder, then a rename over ``path``."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)
    return Path(path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load safely (``weights_only=True``: no arbitrary code) and check it is a zoo checkpoint."""
    path = Path(path)
    ckpt = read_weights_file(path)
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in _REQUIRED):
        raise CheckpointError(f"{path} is not a zoo checkpoint (missing {', '.join(k for k in _REQUIRED)})")
    if ckpt["format"] != FORMAT:
        raise CheckpointError(f"{path} has checkpoint format {ckpt['format']!r}; this version reads {FORMAT!r}")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any] | str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model a checkpoint describes and load its weights (eval mode). Strict: a missing or
    reshaped tensor is a :class:`CheckpointError`, never a silently fresh layer."""
    import zoo

    source = "the checkpoint"
    if not isinstance(ckpt, dict):
        source = str(ckpt)
        ckpt = load_checkpoint(ckpt)
    name, config = ckpt["model_name"], ckpt["model_config"]
    if not isinstance(name, str) or not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise CheckpointError(f"{source} has a malformed model_name or model_config (a name and a mapping expected)")
    try:
        model = zoo.create_model(name, **config)
    except ZooError:  # an unknown name: its own message names close matches
        raise
    except (TypeError, ValueError) as e:
        reason = " ".join(str(e).split())[:200]
        raise CheckpointError(f"{source}: its model_config does not build {name} ({reason})") from None
    load_weights(model, ckpt["model"], source=f"the weights of {source}")
    return model.eval(), ckpt
