"""The training configuration: one dataclass, validated on construction, saved in every checkpoint."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

LOGGERS = ("csv", "tensorboard", "wandb")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class TrainConfig:
    """Options of `zoo train`. Errors name the flag a user would change."""

    model: str
    data: Path | None = None
    epochs: int = 10
    max_steps: int | None = None
    batch_size: int | str = 32  # or "auto"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 1
    grad_accum: int = 1
    clip_grad_norm: float = 1.0
    max_bad_steps: int = 5  # consecutive non-finite steps before training stops with a report
    early_stopping_patience: int | None = None
    device: str = "auto"
    out: Path = Path("runs")
    run_name: str | None = None
    seed: int = 0
    logger: str = "csv"
    num_workers: int = 0
    val_fraction: float = 0.1
    init_from: Path | None = None  # weights to start from (partial load into a changed architecture)
    model_overrides: dict[str, Any] = field(default_factory=dict)
    recipe: str | None = None  # a task's named dataset and schedule (`--recipe`), e.g. vital-resnet18's "full"
    augment: list[str] = field(default_factory=list)  # waveform augmentations (training.data.augment)

    def __post_init__(self) -> None:
        self.data = Path(self.data) if self.data is not None else None
        self.out = Path(self.out)
        self.init_from = Path(self.init_from) if self.init_from is not None else None
        if self.epochs < 1:
            raise ValueError("`--epochs` must be at least 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError("`--max-steps` must be at least 1")
        if isinstance(self.batch_size, str):
            if self.batch_size != "auto":
                try:
                    self.batch_size = int(self.batch_size)
                except ValueError:
                    raise ValueError(
                        f"`--batch-size` must be a positive integer or 'auto', got {self.batch_size!r}"
                    ) from None
        if isinstance(self.batch_size, int) and self.batch_size < 1:
            raise ValueError("`--batch-size` must be a positive integer or 'auto'")
        if not self.lr > 0:
            raise ValueError("`--lr` must be positive")
        if self.warmup_epochs < 0:
            raise ValueError("`--warmup-epochs` must be 0 or more")
        if self.warmup_epochs >= self.epochs and self.epochs > 1:
            raise ValueError("`--warmup-epochs` must be below `--epochs`")
        if self.grad_accum < 1:
            raise ValueError("`--grad-accum` must be at least 1")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ValueError("`--early-stopping-patience` must be at least 1")
        if self.device not in DEVICES:
            raise ValueError(f"`--device` must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.logger not in LOGGERS:
            raise ValueError(f"`--logger` must be one of {', '.join(LOGGERS)}, got {self.logger!r}")
        if not 0 < self.val_fraction < 1:
            raise ValueError("`--val-fraction` must be between 0 and 1")
        if self.num_workers < 0:
            raise ValueError("`--num-workers` must be 0 or more")
        from training.data.augment import parse_augmentations

        self.augment = list(parse_augmentations(self.augment))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["data"] = str(self.data) if self.data is not None else None
        d["out"] = str(self.out)
        d["init_from"] = str(self.init_from) if self.init_from is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        return cls(**d)
