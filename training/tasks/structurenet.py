"""StructureNet's task: classify scikit-learn's 8x8 handwritten digits, growing the network as it trains.

The data is the UCI optical digits test set that scikit-learn ships inside its package (1,797 images of
8x8 grey levels 0..16, ten classes): nothing is downloaded. It is split once, stratified by class, with a
fixed seed (``SPLIT_SEED``) whatever the training seed: 20 % test (reported by the experiments, never used
for choices), then ``val_fraction`` of the rest for validation (best checkpoint), the rest for training.

The model standardises its input with the training set's per-pixel mean and std, which a callback writes
into the model's buffers at the start of training, so a checkpoint or export takes raw pixels.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from training.growth import GrowthCallback, GrowthConfig, param_groups
from training.tasks import register_task
from training.tasks.base import Batch, Callback, Task
from training.tasks.input_stats import InputStandardisation

SPLIT_SEED = 0
TEST_FRACTION = 0.2


class DigitsDataset(Dataset):
    """Items ``{"x": (64,) float32 pixels 0..16, "y": () int64 class}``."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x = torch.as_tensor(x, dtype=torch.float32)
        self.y = torch.as_tensor(y, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> Batch:
        return {"x": self.x[i], "y": self.y[i]}


def digits_splits(val_fraction: float = 0.1) -> dict[str, DigitsDataset]:
    """``{"train", "val", "test"}`` splits of scikit-learn's digits, stratified, with ``SPLIT_SEED``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=TEST_FRACTION, stratify=y, random_state=SPLIT_SEED
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_fraction, stratify=y_rest, random_state=SPLIT_SEED
    )
    return {
        "train": DigitsDataset(x_train, y_train),
        "val": DigitsDataset(x_val, y_val),
        "test": DigitsDataset(x_test, y_test),
    }


@torch.no_grad()
def accuracy(model: nn.Module, dataset: DigitsDataset, device: torch.device | str = "cpu") -> float:
    """Share of ``dataset`` classified correctly."""
    model.eval()
    logits = model(dataset.x.to(device))
    return float((logits.argmax(1).cpu() == dataset.y).float().mean())


@register_task
class StructureNetTask(Task):
    """Cross-entropy on the digits; growth (``training/growth.py``) runs as a callback unless turned off.
    ``val_accuracy``, the live connection count and the dead share are logged every epoch."""

    family = "structurenet"
    headline_metrics: ClassVar[tuple[str, ...]] = ("val_accuracy",)
    defaults: ClassVar[dict[str, Any]] = {"epochs": 60, "batch_size": 64, "lr": 3e-3, "warmup_epochs": 1}

    def __init__(self, cfg: Any, growth: GrowthConfig | bool = True) -> None:
        """``growth``: True for the default policy, False for none (a static sparse network), or a config."""
        super().__init__(cfg)
        self.growth_config = growth if isinstance(growth, GrowthConfig) else (GrowthConfig() if growth else None)
        self.growth = GrowthCallback(self.growth_config) if self.growth_config is not None else None
        self.splits: dict[str, DigitsDataset] | None = None

    def datasets(self) -> tuple[Dataset, Dataset]:
        self.splits = digits_splits(getattr(self.cfg, "val_fraction", 0.1))
        return self.splits["train"], self.splits["val"]

    def loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = model(batch["x"])  # (B, 10)
        loss = F.cross_entropy(logits, batch["y"])
        correct = (logits.detach().argmax(1) == batch["y"]).sum()
        return loss, {"accuracy": correct.float() / len(batch["y"]), "correct": correct.float()}

    @torch.no_grad()
    def validate(self, model: nn.Module, loader: DataLoader, device: torch.device) -> dict[str, float]:
        metrics = super().validate(model, loader, device)
        metrics.pop("val_correct", None)
        raw = getattr(model, "module", model)
        x = torch.cat([b["x"] for b in loader]).to(device)
        extrema = raw.extrema(x)
        width = sum(len(ex.active_share) for ex in extrema)
        metrics["val_dead_share"] = sum(len(ex.dead) for ex in extrema) / max(width, 1)
        metrics["val_active_connections"] = float(raw.active_connections())
        metrics["val_hidden_layers"] = float(len(raw.hidden))
        if self.growth is not None:
            metrics["val_growth_events"] = float(len(self.growth.events))
            metrics["val_credits"] = float(self.growth.credits)
        return metrics

    def param_groups(self, model: nn.Module) -> list[dict[str, Any]]:
        return param_groups(getattr(model, "module", model), self.cfg.lr, self.growth_config)

    def callbacks(self) -> list[Callback]:
        if self.splits is None:
            raise RuntimeError("callbacks() needs datasets() first")
        standardise = InputStandardisation(self.splits["train"].x)
        return [standardise] if self.growth is None else [standardise, self.growth]

    def checkpoint_extras(self) -> dict[str, Any]:
        return {
            "data": "scikit-learn digits (8x8), stratified split",
            "split_seed": SPLIT_SEED,
            "growth_events": list(self.growth.events) if self.growth is not None else [],
        }
