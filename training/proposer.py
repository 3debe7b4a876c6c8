"""What ``zoo evaluate`` scores: a checkpoint, an exported bundle, or a registered name's default bundle.

A :class:`Proposer` turns loudness-normalised 2 s clips (and their log-mels) into Tier-1 vectors. A
checkpoint runs its PyTorch model on the mels; a bundle runs its ONNX graph on the waveform with ONNX Runtime
(the graph holds the front end); a registered name (``vital-resnet18``) means its default bundle: the newest
exported under ``artifacts/``, else the one the package ships (``zoo.weights``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.errors import ArtifactError
from zoo.vital.spec import VitalParamSpec

Propose = Callable[[np.ndarray, torch.Tensor], tuple[np.ndarray, list[np.ndarray]]]


@dataclass
class Proposer:
    """A model that proposes presets: ``propose(clips (B, 88200), mels (B, 1, 128, 173))`` ->
    (continuous (B, n_continuous) in [0, 1], one (B, n_options) logit array per categorical head); the chosen
    options are :func:`option_indices` of the logits."""

    label: str
    model_name: str
    spec: VitalParamSpec
    propose: Propose
    train_config: dict[str, Any] = field(default_factory=dict)  # a checkpoint's (its split); empty for a bundle


def option_indices(logits: list) -> np.ndarray:
    """Each categorical head's most likely option: (B, n_categorical) int64."""
    return np.stack([np.asarray(lg).argmax(-1) for lg in logits], axis=1).astype(np.int64)


def _from_checkpoint(path: Path) -> Proposer:
    from training.checkpoint import model_from_checkpoint

    model, ckpt = model_from_checkpoint(path)
    if ckpt.get("spec") is None:
        raise ValueError(f"{path} has no parameter spec: `zoo evaluate` is for vital-resnet18 checkpoints")

    def propose(clips: np.ndarray, mels: torch.Tensor) -> tuple[np.ndarray, list[np.ndarray]]:
        with torch.no_grad():
            continuous, *logits = model(mels)
        return continuous.numpy(), [lg.numpy() for lg in logits]

    spec = VitalParamSpec.from_dict(ckpt["spec"])
    return Proposer(str(path), ckpt["model_name"], spec, propose, ckpt.get("train_config", {}))


def _from_artifact(path: Path) -> Proposer:
    from zoo.artifact import load_artifact
    from zoo.runtime import onnx_session

    bundle = load_artifact(path, verify=True)
    if not bundle.card.spec or not bundle.takes_waveform:
        raise ArtifactError(f"{path} is not a vital-resnet18 bundle (no parameter spec or no waveform input)")
    spec = VitalParamSpec.from_dict(bundle.card.spec)
    session = onnx_session(bundle.file_for("onnx"), "cpu", threads=max(1, min(2, torch.get_num_threads())))
    input_name = session.get_inputs()[0].name
    n_cat = spec.n_categorical

    def propose(clips: np.ndarray, mels: torch.Tensor) -> tuple[np.ndarray, list[np.ndarray]]:
        outputs = session.run(None, {input_name: np.ascontiguousarray(clips, dtype=np.float32)})
        return np.asarray(outputs[0]), [np.asarray(o) for o in outputs[1 : 1 + n_cat]]

    # A shipped bundle's card records its training configuration: its split gives the data baselines.
    train_config = (bundle.card.provenance or {}).get("train_config", {})
    return Proposer(f"{path} ({bundle.version})", bundle.model_name, spec, propose, train_config)


def load_proposer(source: str | Path) -> Proposer:
    """A checkpoint file, an artifact folder, or a registered model name (its default bundle)."""
    path = Path(source)
    if path.is_file():
        return _from_checkpoint(path)
    if path.is_dir():
        return _from_artifact(path)
    from zoo.artifact import default_artifact
    from zoo.registry import list_models

    if str(source) in list_models():
        return _from_artifact(default_artifact(str(source)))
    raise ValueError(f"{source} is not a checkpoint, an artifact folder or a registered model name (see `zoo list`)")
