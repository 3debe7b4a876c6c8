"""What a model family supplies to the training engine: data, loss, validation metrics, parameter
groups and callbacks. The loop in ``training.trainer`` is written once and calls only this interface."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

if TYPE_CHECKING:
    from training.config import TrainConfig
    from training.trainer import Trainer

Batch = dict[str, torch.Tensor]


class Callback:
    """Hooks into the loop. A callback that changes the model's parameters (growth, pruning) calls
    ``trainer.rebuild_optimizer()`` so the optimizer and parameter groups follow."""

    def on_train_start(self, trainer: Trainer) -> None:
        pass

    def on_step_end(self, trainer: Trainer, batch: Batch, logs: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class Task:
    """Base class of a model family's task. Subclasses set ``family`` and implement ``datasets`` and
    ``loss``; everything else has a sensible default."""

    family: ClassVar[str]
    # The validation metric that picks best.pt and drives early stopping; lower is better.
    monitor: ClassVar[str] = "val_loss"
    # Validation metrics printed after every epoch beside the monitored one (all go to metrics.jsonl).
    headline_metrics: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg

    def prepare_data(self) -> None:
        """Create or download-free generate the data if missing. Runs on rank 0 only, before datasets()."""

    def datasets(self) -> tuple[Dataset, Dataset]:
        """(train, validation). Items are dicts of tensors (see ``Batch``)."""
        raise NotImplementedError

    def model_overrides(self) -> dict[str, Any]:
        """Architecture arguments that follow from the data (e.g. head sizes); called after datasets()."""
        return {}

    def loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(scalar training loss averaged over the batch, scalars to log)."""
        raise NotImplementedError

    @torch.no_grad()
    def validate(self, model: nn.Module, loader: DataLoader, device: torch.device) -> dict[str, float]:
        """Metrics on the validation set; must contain ``val_loss``. Default: batch-weighted mean loss."""
        total, count, sums = 0.0, 0, {}
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            loss, logs = self.loss(model, batch)
            n = next(iter(batch.values())).shape[0]
            total += float(loss) * n
            count += n
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + float(v) * n
        metrics = {f"val_{k}": v / max(count, 1) for k, v in sums.items()}
        metrics["val_loss"] = total / max(count, 1)
        return metrics

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        """Optimizer parameter groups; each may set its own ``lr``. Default: every trainable parameter."""
        return [{"params": [p for p in model.parameters() if p.requires_grad], "lr": self.cfg.lr, "name": "all"}]

    def callbacks(self) -> list[Callback]:
        return []

    def front_end(self) -> dict[str, Any] | None:
        """The audio front end that made the model's input features (``FrontEndConfig.to_dict()``), read from
        the data; None for a model that takes no audio features. Saved in checkpoints as ``front_end``."""
        return None

    def checkpoint_extras(self) -> dict[str, Any]:
        """Extra plain data saved in checkpoints (e.g. the parameter spec), loadable with weights_only."""
        return {}
