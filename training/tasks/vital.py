"""vital-resnet18's task: log-mel of a Vital render -> its Tier-1 parameters.

Without ``--data`` a small default dataset is generated with Vita and cached under ``data/``; it is
sized so that `zoo train vital-resnet18` finishes in about ten minutes on two CPU cores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader

from training.losses import VitalLoss
from training.tasks import Task, register_task
from training.tasks.base import Batch

DEFAULT_DATA = Path("data/vital-default.h5")
DEFAULT_N_PRESETS = 800
DEFAULT_NOTES = (48, 60, 72)


@register_task
class VitalTask(Task):
    family = "vital_resnet"
    # Adam(W) on this ResNet diverges or stalls above about 3e-3 in the notes' runs.
    max_stable_lr: ClassVar[float] = 3e-3
    # Defaults for options the user did not set (the 10-minute CPU recipe).
    defaults: ClassVar[dict[str, Any]] = {"epochs": 5, "batch_size": 32, "lr": 1e-3, "warmup_epochs": 1}
    backbone_lr_scale: ClassVar[float] = 0.3
    headline_metrics: ClassVar[tuple[str, ...]] = ("val_categorical_accuracy", "val_continuous_mse")

    def prepare_data(self) -> None:
        if self.cfg.data is not None:
            return
        from training.data.generate import generate_dataset
        from training.data.precompute import precompute_mels

        path = DEFAULT_DATA
        if path.is_file():
            import h5py

            with h5py.File(path, "r") as f:
                if "features/mel_spectrogram" in f:
                    print(f"using the cached default dataset {path}")
                    return
        else:
            print(
                f"generating the default dataset ({DEFAULT_N_PRESETS} presets x {len(DEFAULT_NOTES)} notes) "
                f"with Vita into {path}; it is cached for the next run"
            )
            generate_dataset(
                path, DEFAULT_N_PRESETS, workers=max(torch.get_num_threads(), 1), seed=0, notes=DEFAULT_NOTES
            )
        precompute_mels(path)

    def datasets(self):
        from training.data.dataset import vital_splits

        _, self.train_set, self.val_set = vital_splits(
            self.cfg.data or DEFAULT_DATA, val_fraction=self.cfg.val_fraction, seed=self.cfg.seed
        )
        self.spec = self.train_set.spec
        self.loss_fn = VitalLoss(self.spec.continuous_gate_ids(), self.spec.categorical_gate_ids())
        return self.train_set, self.val_set

    def front_end(self) -> dict[str, Any] | None:
        """The front-end config stored in the dataset: the mels were computed with it."""
        return self.train_set.front_end or None

    def model_overrides(self) -> dict[str, Any]:
        return {"n_continuous": self.spec.n_continuous, "categorical_options": list(self.spec.categorical_n_options)}

    def loss(self, model: nn.Module, batch: Batch):
        continuous, *logits = model(batch["mel"])
        self.loss_fn.to(continuous.device)
        return self.loss_fn(continuous, logits, batch["continuous"], batch["categorical"])

    @torch.no_grad()
    def validate(self, model: nn.Module, loader: DataLoader, device: torch.device) -> dict[str, float]:
        """val_loss, masked MSE per module group, and mean categorical accuracy."""
        from training.metrics import ParameterMetrics

        scores = ParameterMetrics(self.spec)
        total_loss, n_total = 0.0, 0
        self.loss_fn.to(device)
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            continuous, *logits = model(batch["mel"])
            loss, _ = self.loss_fn(continuous, logits, batch["continuous"], batch["categorical"])
            n = batch["mel"].shape[0]
            total_loss += float(loss) * n
            n_total += n
            scores.update(continuous, logits, batch["continuous"], batch["categorical"])
        metrics = {"val_loss": total_loss / max(n_total, 1)}
        metrics["val_categorical_accuracy"] = scores.mean_categorical_accuracy()
        metrics["val_continuous_mse"] = scores.continuous_mse()
        metrics |= {f"val_mse_{name}": v for name, v in scores.group_mse().items()}
        return metrics

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        """Slow backbone (the trainable part of it), faster heads."""
        backbone, heads = [], []
        for name, p in model.named_parameters():
            if p.requires_grad:
                (heads if "head" in name else backbone).append(p)
        lr = self.cfg.lr
        return [
            {"params": backbone, "lr": lr * self.backbone_lr_scale, "name": "backbone"},
            {"params": heads, "lr": lr, "name": "heads"},
        ]

    def checkpoint_extras(self) -> dict[str, Any]:
        return {"spec": self.spec.to_dict()}
