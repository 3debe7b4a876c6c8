"""vital-resnet18's task: log-mel of a Vital render -> its Tier-1 parameters.

Without ``--data`` the recipe's dataset (``RECIPES``; ``--recipe default`` unless another is named) is
generated with Vita and cached under ``data/``. With ``--augment`` the training clips are read as audio,
augmented (``training.data.augment``) and turned into log-mels batch by batch; validation always reads the
clean precomputed mels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.utils.data import DataLoader

from training.losses import VitalLoss
from training.tasks import Task, register_task
from training.tasks.base import Batch
from zoo.errors import DatasetError

DEFAULT_NOTES = (48, 60, 72)


@dataclass(frozen=True)
class Recipe:
    """A named dataset (generated when missing) and the training options that go with it."""

    data: Path
    n_presets: int
    prior: str  # a sampler prior: a name of zoo.vital.sampler.PRIORS or weights broad,human,simple
    vary_notes: bool
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig values (epochs, batch_size, lr, augment ...)
    about: str = ""


RECIPES: dict[str, Recipe] = {
    "default": Recipe(
        Path("data/vital-default.h5"), 800, "broad", False,
        {"epochs": 5, "batch_size": 32, "lr": 1e-3, "warmup_epochs": 1},
        "800 presets x 3 notes, 5 epochs: about 10 minutes on two CPU cores",
    ),
}  # fmt: skip


def _importance_weights(paths: list[Path]) -> torch.Tensor | None:
    """Per-parameter weights stored as ``params/importance_weights`` in the first file, if any."""
    import h5py

    with h5py.File(paths[0], "r") as f:
        if "params/importance_weights" in f:
            return torch.from_numpy(f["params/importance_weights"][()]).float()
    return None


@register_task
class VitalTask(Task):
    family = "vital_resnet"
    # Adam(W) on this ResNet diverges or stalls above about 3e-3 in the notes' runs.
    max_stable_lr: ClassVar[float] = 3e-3
    # Defaults for options the user did not set (the default recipe's schedule).
    defaults: ClassVar[dict[str, Any]] = RECIPES["default"].train
    recipes: ClassVar[dict[str, Recipe]] = RECIPES
    backbone_lr_scale: ClassVar[float] = 0.3

    @property
    def recipe(self) -> Recipe:
        return RECIPES[self.cfg.recipe or "default"]

    def _paths(self) -> list[Path]:
        data = self.cfg.data or self.recipe.data
        paths = sorted(data.glob("*.h5")) if data.is_dir() else [data]
        if not paths or not all(p.is_file() for p in paths):
            raise FileNotFoundError(f"no dataset at {data}; create one with `zoo data generate --out {data}`")
        return paths

    def prepare_data(self) -> None:
        if self.cfg.data is not None:
            return
        from training.data.generate import generate_dataset
        from training.data.precompute import precompute_mels
        from zoo.vital.sampler import PriorMix

        recipe, name = self.recipe, self.cfg.recipe or "default"
        path, prior = recipe.data, PriorMix.parse(recipe.prior)
        if path.is_file():
            import h5py

            with h5py.File(path, "r") as f:
                made = json.loads(f.attrs.get("prior", '{"broad": 1.0, "human": 0.0, "simple": 0.0}'))
                if made != prior.to_dict() or bool(f.attrs.get("vary_notes", False)) != recipe.vary_notes:
                    raise DatasetError(
                        f"{path} was generated with another prior than the {name} recipe's; delete it to regenerate"
                    )
                if "features/mel_spectrogram" in f:
                    print(f"using the cached dataset of the {name} recipe, {path}")
                    return
        else:
            print(
                f"generating the {name} recipe's dataset ({recipe.n_presets} presets x {len(DEFAULT_NOTES)} notes, "
                f"prior {recipe.prior}) with Vita into {path}; it is cached for the next run"
            )
            workers = max(torch.get_num_threads(), 1)
            generate_dataset(
                path, recipe.n_presets, workers=workers, seed=0, notes=DEFAULT_NOTES, prior=prior,
                vary_notes=recipe.vary_notes,
            )  # fmt: skip
        precompute_mels(path)

    def datasets(self):
        from training.data.dataset import VitalMelDataset, split_by_preset

        paths = self._paths()
        train_idx, val_idx = split_by_preset(paths, val_fraction=self.cfg.val_fraction, seed=self.cfg.seed)
        if self.cfg.augment:
            from training.data.augment import AugmentedAudioDataset

            self.train_set = AugmentedAudioDataset(paths, train_idx, self.cfg.augment)
        else:
            self.train_set = VitalMelDataset(paths, train_idx)
        self.val_set = VitalMelDataset(paths, val_idx)
        self.spec = self.train_set.spec
        self.loss_fn = VitalLoss(
            self.spec.continuous_gate_ids(), self.spec.categorical_gate_ids(), importance=_importance_weights(paths)
        )
        self.group_ids = torch.tensor(self.spec.continuous_group_ids())
        return self.train_set, self.val_set

    def model_overrides(self) -> dict[str, Any]:
        return {"n_continuous": self.spec.n_continuous, "categorical_options": list(self.spec.categorical_n_options)}

    def _mel(self, batch: Batch) -> torch.Tensor:
        """The batch's log-mel (B, 1, 128, 173): precomputed, or computed here from augmented audio."""
        if "mel" in batch:
            return batch["mel"]
        if getattr(self, "front_end", None) is None:
            from zoo.audio import LogMelFrontEnd

            self.front_end = LogMelFrontEnd()
        self.front_end.to(batch["audio"].device)
        with torch.no_grad():
            return self.front_end(batch["audio"])

    def loss(self, model: nn.Module, batch: Batch):
        continuous, *logits = model(self._mel(batch))
        self.loss_fn.to(continuous.device)
        return self.loss_fn(continuous, logits, batch["continuous"], batch["categorical"])

    @torch.no_grad()
    def validate(self, model: nn.Module, loader: DataLoader, device: torch.device) -> dict[str, float]:
        """val_loss, masked MSE per module group, and mean categorical accuracy."""
        groups = self.spec.groups
        sq = torch.zeros(len(groups))
        cnt = torch.zeros(len(groups))
        correct = torch.zeros(len(self.spec.categorical))
        total_loss, n_total = 0.0, 0
        for batch in loader:
            batch = {k: v.to(device) for k, v in batch.items()}
            continuous, *logits = model(batch["mel"])
            self.loss_fn.to(device)
            loss, _ = self.loss_fn(continuous, logits, batch["continuous"], batch["categorical"])
            n = batch["mel"].shape[0]
            total_loss += float(loss) * n
            n_total += n
            mask = self.loss_fn.continuous_mask(batch["categorical"]).cpu()
            err = ((continuous.float() - batch["continuous"]) ** 2).cpu() * mask
            sq.index_add_(0, self.group_ids, err.sum(0))
            cnt.index_add_(0, self.group_ids, mask.sum(0))
            for i, lg in enumerate(logits):
                correct[i] += float((lg.argmax(-1) == batch["categorical"][:, i]).sum())
        metrics = {"val_loss": total_loss / max(n_total, 1)}
        metrics["val_categorical_accuracy"] = float(correct.mean()) / max(n_total, 1)
        metrics["val_continuous_mse"] = float(sq.sum() / cnt.sum().clamp(min=1))
        for g, name in enumerate(groups):
            if cnt[g] > 0:
                metrics[f"val_mse_{name}"] = float(sq[g] / cnt[g])
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
