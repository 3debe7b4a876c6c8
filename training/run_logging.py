"""Run logs: metrics.jsonl always; TensorBoard or W&B (offline-capable) when installed and asked for;
a PNG of the curves at the end."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from training.config import TrainConfig


class RunLogger:
    """Writes a run's ``metrics.jsonl`` (and TensorBoard or W&B logs).

    ``resume``: continue an existing log. ``resumed_at``: the (epoch, step) of the checkpoint resumed from; the
    records a killed run wrote after it (steps past it, its unfinished epoch, its summary) are dropped first,
    so every step appears once in the log of a resumed run."""

    def __init__(
        self, run_dir: Path, cfg: TrainConfig, resume: bool = False, resumed_at: tuple[int, int] | None = None
    ) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / "metrics.jsonl"
        if resume and resumed_at is not None and self.path.is_file():
            truncate_metrics(self.path, *resumed_at)
        self._file = open(self.path, "a" if resume else "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        (self.run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        self._tb = self._wandb = None
        if cfg.logger == "tensorboard":
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ValueError(
                    "`--logger tensorboard` needs the tensorboard package: pip install tensorboard"
                ) from None
            self._tb = SummaryWriter(str(self.run_dir / "tensorboard"))
        elif cfg.logger == "wandb":
            try:
                import wandb
            except ImportError:
                raise ValueError("`--logger wandb` needs the wandb package: pip install wandb") from None
            os.environ.setdefault("WANDB_MODE", "offline")  # works without an account or network
            self._wandb = wandb.init(project="audio-model-zoo", dir=str(self.run_dir), config=cfg.to_dict())

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps({"time": time.time(), **record}) + "\n")
        self._file.flush()

    def step(self, logs: dict[str, Any]) -> None:
        self._write({"kind": "step", **logs})
        if self._tb is not None:
            for k, v in logs.items():
                if k not in ("step", "epoch"):
                    self._tb.add_scalar(f"train/{k}", v, logs["step"])
        if self._wandb is not None:
            self._wandb.log({f"train/{k}": v for k, v in logs.items()}, step=logs["step"])

    def epoch(self, metrics: dict[str, Any]) -> None:
        self._write({"kind": "epoch", **metrics})
        scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if self._tb is not None:
            for k, v in scalars.items():
                self._tb.add_scalar(f"val/{k}", v, metrics["step"])
        if self._wandb is not None:
            self._wandb.log({f"val/{k}": v for k, v in scalars.items()}, step=metrics["step"])

    def event(self, record: dict[str, Any]) -> None:
        self._write({"kind": "event", **record})

    def finish(self, summary: dict[str, Any]) -> None:
        self._write({"kind": "summary", **summary})
        self._file.flush()
        plot_curves(self.path, self.run_dir / "curves.png")

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def truncate_metrics(path: Path, epoch: int, step: int) -> int:
    """Keep the records of ``metrics.jsonl`` up to the checkpoint of ``epoch`` (last finished) and ``step``; drop
    later steps, epochs and events, summaries, and a line cut off by a kill. Rewritten atomically; returns the
    number of records dropped."""
    kept, dropped = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            dropped += bool(line.strip())  # a line cut off mid-write
            continue
        late = record.get("epoch", -1) > epoch or record.get("step", -1) > step or record.get("kind") == "summary"
        if late:
            dropped += 1
        else:
            kept.append(line + "\n")
    if dropped:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(kept), encoding="utf-8")
        os.replace(tmp, path)
    return dropped


def plot_curves(metrics_path: Path, out: Path) -> Path:
    """Training loss per step (raw and smoothed), validation loss per epoch, learning rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    records = read_metrics(metrics_path)
    steps = [r for r in records if r["kind"] == "step"]
    epochs = [r for r in records if r["kind"] == "epoch"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    if steps:
        x = np.array([r["step"] for r in steps])
        y = np.array([r["loss"] for r in steps])
        axes[0].plot(x, y, alpha=0.3, label="train loss")
        k = max(len(y) // 50, 1)
        if len(y) > k:
            smooth = np.convolve(y, np.ones(k) / k, mode="valid")
            axes[0].plot(x[k - 1 :], smooth, label=f"train loss (mean of {k})")
        axes[2].plot(x, [r["lr"] for r in steps])
    if epochs:
        axes[0].plot([r["step"] for r in epochs], [r["val_loss"] for r in epochs], "o-", label="val loss")
        keys = [k for k in epochs[-1] if k.startswith("val_") and k != "val_loss" and isinstance(epochs[-1][k], float)]
        for key in keys[:6]:
            axes[1].plot([r["epoch"] + 1 for r in epochs], [r.get(key, np.nan) for r in epochs], "o-", label=key)
    axes[0].set(title="loss", xlabel="optimizer step", yscale="log")
    axes[0].legend()
    axes[1].set(title="validation metrics", xlabel="epoch")
    if axes[1].lines:
        axes[1].legend(fontsize=8)
    axes[2].set(title="learning rate", xlabel="optimizer step")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
