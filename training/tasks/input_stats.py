"""A callback that fits a model's input standardisation to the training data before training starts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from training.tasks.base import Callback

if TYPE_CHECKING:
    from training.trainer import Trainer


class InputStandardisation(Callback):
    """Calls ``model.fit_input_stats(x)`` with the training inputs at the start of training, so the model
    standardises its raw input itself (and a checkpoint or an export carries the statistics in its buffers).
    Each model knows how it normalises (per feature, per band after centring ...)."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def on_train_start(self, trainer: Trainer) -> None:
        trainer.raw_model.fit_input_stats(self.x)
