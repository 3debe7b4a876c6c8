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
    start_from: str | None = None  # the recipe whose run (runs/<model>/<that name>/best.pt) this one starts from


RECIPES: dict[str, Recipe] = {
    "default": Recipe(
        Path("data/vital-default.h5"), 800, "broad", False,
        {"epochs": 5, "batch_size": 32, "lr": 1e-3, "warmup_epochs": 1},
        "800 presets x 3 notes, 5 epochs: about 10 minutes on two CPU cores",
    ),
    "shipped": Recipe(
        Path("data/vital-shipped.h5"), 1500, "0.4,0.4,0.2", False,
        {"epochs": 4, "batch_size": 32, "lr": 1e-3, "warmup_epochs": 1, "augment": ["all"]},
        "the shipped model's: 1500 presets x 3 notes from the mixed prior, every augmentation, 4 epochs: about "
        "15 minutes on two CPU cores with the dataset",
    ),
    "large": Recipe(
        Path("data/vital-large.h5"), 7000, "0.4,0.4,0.2", False,
        {"epochs": 2, "batch_size": 32, "lr": 1e-3, "warmup_epochs": 1, "augment": ["all"],
         "model_overrides": {"freeze_early": True}},
        "7000 presets x 3 notes (21,000 clips) like the shipped recipe's, 2 epochs from the shipped recipe's run with "
        "conv1..layer2 kept as it trained them (4x faster): about an hour on two CPU cores with the dataset",
        start_from="shipped",
    ),
}  # fmt: skip


@register_task
class VitalTask(Task):
    family = "vital_resnet"
    # Adam(W) on this ResNet diverges or stalls above about 3e-3 in the notes' runs.
    max_stable_lr: ClassVar[float] = 3e-3
    # Defaults for options the user did not set (the default recipe's schedule).
    defaults: ClassVar[dict[str, Any]] = RECIPES["default"].train
    recipes: ClassVar[dict[str, Recipe]] = RECIPES
    backbone_lr_scale: ClassVar[float] = 0.3
    headline_metrics: ClassVar[tuple[str, ...]] = ("val_categorical_accuracy", "val_continuous_mse")

    @property
    def recipe(self) -> Recipe:
        return RECIPES[self.cfg.recipe or "default"]

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
                        f"{path} was generated with another prior or note variation than the {name} recipe's; "
                        "delete it to regenerate"
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
        from training.data.dataset import vital_splits

        paths, self.train_set, self.val_set = vital_splits(
            self.cfg.data or self.recipe.data, val_fraction=self.cfg.val_fraction, seed=self.cfg.seed
        )
        if self.cfg.augment:
            from training.data.augment import AugmentedAudioDataset

            self.train_set = AugmentedAudioDataset(paths, self.train_set.indices, self.cfg.augment)
        self.spec = self.train_set.spec
        self.loss_fn = VitalLoss(self.spec.continuous_gate_ids(), self.spec.categorical_gate_ids())
        return self.train_set, self.val_set

    def front_end(self) -> dict[str, Any] | None:
        """The front-end config stored in the dataset: the mels were computed with it."""
        return self.train_set.front_end or None

    def model_overrides(self) -> dict[str, Any]:
        return {"n_continuous": self.spec.n_continuous, "categorical_options": list(self.spec.categorical_n_options)}

    def _mel(self, batch: Batch) -> torch.Tensor:
        """The batch's log-mel (B, 1, 128, 173): precomputed, or computed here from augmented audio."""
        if "mel" in batch:
            return batch["mel"]
        if getattr(self, "_log_mel", None) is None:
            from zoo.audio import FrontEndConfig, LogMelFrontEnd

            self._log_mel = LogMelFrontEnd(FrontEndConfig(**self.front_end()) if self.front_end() else None)
        self._log_mel.to(batch["audio"].device)
        with torch.no_grad():
            return self._log_mel(batch["audio"])

    def loss(self, model: nn.Module, batch: Batch):
        continuous, *logits = model(self._mel(batch))
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
