"""Training task of the skip-connection MLPs (plain, residual, dense, highway): a synthetic regression.

The data is a fixed random *teacher* network, generated in memory from ``cfg.seed``, so ``zoo train
residual-mlp`` needs no dataset:

    x ~ N(0, I_32),    teacher(x) = W2 tanh(W1 x),    W1 (64 x 32) ~ N(0, 1/32),  W2 (32 x 64) ~ N(0, 1/64)

W1's scale puts the tanh's inputs at unit variance, in its curved range, so the target is a smooth nonlinear
function that no linear model fits. Targets are standardised per output with the training set's statistics,
so an MSE of 1.0 is what predicting the mean scores and ``1 - val_mse`` is roughly the R^2. Every variant gets
a linear readout to the 32 targets (``out_dim=32``), so dense networks, whose features also contain their
input, are trained on the same problem as the others. For highway networks the validation metrics also
report the mean transform-gate value (``val_gate_mean``: 0 carries the input, 1 transforms it).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from training.tasks import register_task
from training.tasks.base import Batch, Task


class TensorPairDataset(Dataset):
    """Items ``{"x": x[i], "y": y[i]}`` from two in-memory tensors with the same first axis."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if len(x) != len(y):
            raise ValueError(f"x and y must have the same length, got {len(x)} and {len(y)}")
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> Batch:
        return {"x": self.x[i], "y": self.y[i]}


def make_teacher_data(seed: int, n_train: int, n_val: int, in_dim: int = 32, hidden: int = 64, out_dim: int = 32):
    """(x_train, y_train, x_val, y_val) from the random teacher above; targets standardised with train stats."""
    g = torch.Generator().manual_seed(seed)
    w1 = torch.randn(hidden, in_dim, generator=g) / in_dim**0.5
    w2 = torch.randn(out_dim, hidden, generator=g) / hidden**0.5
    x = torch.randn(n_train + n_val, in_dim, generator=g)
    y = torch.tanh(x @ w1.T) @ w2.T  # (N, out_dim)
    mean, std = y[:n_train].mean(0), y[:n_train].std(0)
    y = (y - mean) / std
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


@register_task
class SkipMLPTask(Task):
    """Regress the fixed random teacher (see the module docstring) with mean squared error."""

    family = "skip_mlp"
    in_dim: ClassVar[int] = 32
    out_dim: ClassVar[int] = 32
    n_train: ClassVar[int] = 8192
    n_val: ClassVar[int] = 1024

    def datasets(self) -> tuple[Dataset, Dataset]:
        x_tr, y_tr, x_va, y_va = make_teacher_data(int(self.cfg.seed), self.n_train, self.n_val, self.in_dim)
        return TensorPairDataset(x_tr, y_tr), TensorPairDataset(x_va, y_va)

    def model_overrides(self) -> dict[str, Any]:
        return {"in_dim": self.in_dim, "out_dim": self.out_dim}

    def loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        mse = F.mse_loss(model(batch["x"]), batch["y"])
        return mse, {"mse": mse.detach()}

    @torch.no_grad()
    def validate(self, model: nn.Module, loader: DataLoader, device: torch.device) -> dict[str, float]:
        metrics = super().validate(model, loader, device)
        raw = getattr(model, "module", model)  # unwrap DistributedDataParallel
        if getattr(raw, "variant", None) == "highway":
            x = next(iter(loader))["x"].to(device)
            metrics["val_gate_mean"] = float(raw.gate_means(x).mean())
        return metrics

    def checkpoint_extras(self) -> dict[str, Any]:
        return {"data": "random teacher W2 tanh(W1 x)", "seed": int(self.cfg.seed)}
