"""A callback that writes the training data's input statistics into a model before training starts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from training.tasks.base import Callback

if TYPE_CHECKING:
    from training.trainer import Trainer


class InputStandardisation(Callback):
    """Calls ``model.set_input_stats(mean, std)`` at the start of training, so the model standardises its raw
    input itself (and a checkpoint or an export carries the statistics in its buffers)."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean, self.std = mean, std

    def on_train_start(self, trainer: Trainer) -> None:
        trainer.raw_model.set_input_stats(self.mean, self.std)
