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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.errors import ZooError
from zoo.files import atomic_path

FORMAT = "zoo-checkpoint/1"
_REQUIRED = ("format", "model_name", "model_config", "model")


class CheckpointError(ZooError, ValueError):
    """A file that is not a readable zoo checkpoint."""


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write atomically: a temporary file in the same folder, then a rename over ``path``."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)
    return Path(path)


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


@dataclass
class LoadReport:
    """What a partial load matched, and how much of the model it preserved."""

    matched: list[str]
    missing: list[str]  # in the model, not (or not shape-compatible) in the checkpoint
    unexpected: list[str]  # in the checkpoint, not in the model
    shape_mismatch: list[str]
    preserved_fraction: float  # share of the model's parameter elements loaded from the checkpoint

    def summary(self) -> str:
        return (
            f"loaded {len(self.matched)} tensors ({self.preserved_fraction:.1%} of the parameters); "
            f"{len(self.missing)} missing, {len(self.unexpected)} unexpected, "
            f"{len(self.shape_mismatch)} shape mismatches"
        )


def load_partial(model: nn.Module, state: dict[str, torch.Tensor], key_map: dict[str, str] | None = None) -> LoadReport:
    """Load what fits of ``state`` into a changed architecture.

    ``key_map`` renames checkpoint key prefixes first (``{"fc.": "continuous_head.0."}``); then every key
    present in both with the same shape is copied, and the rest is reported instead of raising.
    """
    key_map = key_map or {}
    renamed = {}
    for key, value in state.items():
        for old, new in key_map.items():
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        renamed[key] = value
    own = model.state_dict()
    matched, mismatch = [], []
    for key, value in renamed.items():
        if key in own:
            if own[key].shape == value.shape:
                own[key] = value
                matched.append(key)
            else:
                mismatch.append(f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(own[key].shape)}")
    model.load_state_dict(own)
    params = dict(model.named_parameters())
    total = sum(p.numel() for p in params.values())
    kept = sum(params[k].numel() for k in matched if k in params)
    return LoadReport(
        matched=matched,
        missing=[k for k in own if k not in matched],
        unexpected=[k for k in renamed if k not in own],
        shape_mismatch=mismatch,
        preserved_fraction=kept / max(total, 1),
    )


def model_from_checkpoint(ckpt: dict[str, Any] | str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model a checkpoint describes and load its weights (eval mode)."""
    import zoo

    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(ckpt)
    model = zoo.create_model(ckpt["model_name"], **ckpt["model_config"])
    model.load_state_dict(ckpt["model"])
    return model.eval(), ckpt
