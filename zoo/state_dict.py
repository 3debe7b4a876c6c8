"""Weights into a model: the one path, with a report of what was loaded.

Every place that fills a model from saved weights goes through :func:`load_weights`: a checkpoint rebuilt by
``training.checkpoint.model_from_checkpoint`` (``zoo export``, ``zoo evaluate``, the tasks' evaluations),
``zoo.create_model(..., pretrained=True, weights_path=...)``, ``zoo bench`` on a bundle, and ``zoo train
--init-from`` (``strict=False``: load what fits a changed architecture). Files are read by
:func:`read_weights_file` with ``torch.load(weights_only=True)``: a weights file is untrusted input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.errors import CheckpointError, WeightsMismatchError


def read_weights_file(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU: tensors and plain data only, no code runs.

    Raises :class:`CheckpointError` in one line for a missing file, a file that is not a PyTorch file, and a
    file holding other Python objects (it is not a safe checkpoint, and is not loaded)."""
    import pickle

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no such checkpoint: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" in str(e).lower() or "weights_only" in str(e):
            raise CheckpointError(
                f"{path} is not a safe checkpoint: it holds Python objects besides tensors and plain data, "
                "which could run code when read, so it will not be loaded"
            ) from None
        raise CheckpointError(f"{path} is not a loadable checkpoint (not a PyTorch file: {e})") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for bad files; all mean "not a checkpoint"
        reason = " ".join(str(e).split())[:200]
        raise CheckpointError(
            f"{path} is not a loadable checkpoint (not a PyTorch file: {type(e).__name__}: {reason})"
        ) from None


@dataclass
class LoadReport:
    """What a load matched, and how much of the model it preserved."""

    matched: list[str]
    missing: list[str]  # in the model, not (or not shape-compatible) in the weights
    unexpected: list[str]  # in the weights, not in the model
    shape_mismatch: list[str]
    preserved_fraction: float  # share of the model's parameter elements loaded from the weights

    @property
    def complete(self) -> bool:
        """Every tensor of the model loaded and every tensor of the weights used."""
        return not (self.missing or self.unexpected or self.shape_mismatch)

    def summary(self) -> str:
        return (
            f"loaded {len(self.matched)} tensors ({self.preserved_fraction:.1%} of the parameters); "
            f"{len(self.missing)} missing, {len(self.unexpected)} unexpected, "
            f"{len(self.shape_mismatch)} shape mismatches"
        )

    def problems(self, limit: int = 3) -> str:
        """One line naming the first few missing, unexpected and reshaped tensors."""
        parts = []
        groups = (("missing", self.missing), ("unexpected", self.unexpected), ("reshaped", self.shape_mismatch))
        for label, keys in groups:
            if keys:
                more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
                parts.append(f"{len(keys)} {label} ({'; '.join(keys[:limit])}{more})")
        return ", ".join(parts)


def _rename(state: dict[str, torch.Tensor], key_map: dict[str, str]) -> dict[str, torch.Tensor]:
    renamed = {}
    for key, value in state.items():
        for old, new in key_map.items():
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        renamed[key] = value
    return renamed


def load_weights(
    model: nn.Module,
    state: Any,
    *,
    strict: bool = True,
    key_map: dict[str, str] | None = None,
    source: str = "the weights",
) -> LoadReport:
    """Copy every tensor of ``state`` whose key and shape match ``model`` into it; return what matched.

    ``key_map`` renames key prefixes of ``state`` first (``{"fc.": "continuous_head.0."}``). With ``strict``
    (the default), weights that leave any model tensor missing or reshaped, or hold tensors the model does not
    have, raise :class:`WeightsMismatchError` naming them, and the model is left untouched; with
    ``strict=False`` what fits is loaded and the rest is only reported."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{source} are not a state dict (a mapping of names to tensors)")
    renamed = _rename(state, key_map or {})
    own = model.state_dict()
    matched, mismatch = [], []
    for key, value in renamed.items():
        if key in own:
            if own[key].shape == value.shape:
                matched.append(key)
            else:
                mismatch.append(f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(own[key].shape)}")
    params = dict(model.named_parameters())
    total = sum(p.numel() for p in params.values())
    kept = sum(params[k].numel() for k in matched if k in params)
    report = LoadReport(
        matched=matched,
        missing=[k for k in own if k not in matched],
        unexpected=[k for k in renamed if k not in own],
        shape_mismatch=mismatch,
        preserved_fraction=kept / max(total, 1),
    )
    if strict and not report.complete:
        raise WeightsMismatchError(f"{source} do not fit {type(model).__name__}: {report.problems()}")
    model.load_state_dict({**own, **{k: renamed[k] for k in matched}})
    return report


def load_partial(model: nn.Module, state: dict[str, torch.Tensor], key_map: dict[str, str] | None = None) -> LoadReport:
    """Load what fits of ``state`` into a changed architecture and report the rest (``load_weights``, not strict)."""
    return load_weights(model, state, strict=False, key_map=key_map)
