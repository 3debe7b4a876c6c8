"""Checkpoints: one file that rebuilds the exact model and resumes training.

Contents (plain data and tensors only, so they load with ``torch.load(weights_only=True)``; a checkpoint
is untrusted input):

- ``format``: ``"zoo-checkpoint/1"``
- ``model_name``, ``model_config`` (the overrides passed to ``zoo.create_model``), ``model`` (state dict)
- ``spec`` (the parameter spec as a dict, or None), ``front_end`` (``FrontEndConfig.to_dict()``)
- ``train_config``, ``optimizer``, ``scheduler``, ``epoch`` (last finished, 0-based), ``step``,
  ``best_metric``, ``metrics`` (last validation metrics), ``rng``, ``callbacks``
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.errors import ZooError

FORMAT = "zoo-checkpoint/1"
_REQUIRED = ("format", "model_name", "model_config", "model")


class CheckpointError(ZooError, ValueError):
    """A file that is not a readable zoo checkpoint."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write atomically: a temporary file in the same folder, then a rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load safely (``weights_only=True``: no arbitrary code) and check it is a zoo checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no such checkpoint: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for bad files; all mean "not a checkpoint"
        raise CheckpointError(f"{path} is not a loadable checkpoint ({type(e).__name__}: {str(e)[:200]})") from None
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in _REQUIRED):
        raise CheckpointError(f"{path} is not a zoo checkpoint (missing {', '.join(k for k in _REQUIRED)})")
    if ckpt["format"] != FORMAT:
        raise CheckpointError(f"{path} has checkpoint format {ckpt['format']!r}; this version reads {FORMAT!r}")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any] | str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model a checkpoint describes and load its weights (eval mode)."""
    import zoo

    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt)
    model = zoo.create_model(ckpt["model_name"], **ckpt["model_config"])
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt
