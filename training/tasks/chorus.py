"""chorus-cnn's task: label every frame of a synthesized song verse or chorus.

The data is the song-structure set of ``training/data/songs.py``, rendered with Vital on demand: without
``--data`` the default set (``DEFAULT_N_SONGS`` songs, a little over a minute on two free cores) is generated
into ``DEFAULT_DATA`` the first time and reused after. Songs are split by song with a fixed seed
(``SPLIT_SEED``): 10 % test (never used for any choice; see :func:`evaluate_checkpoint`), 10 % validation,
the rest training. Training items are random ``crop``-frame windows of a song, shifted by up to
``band_shift`` mel bands (augmentation); validation and test use whole songs.

Every epoch logs, beside the engine's per-step loss and gradient norm: ``train_loss``, ``train_grad_norm`` and
``train_chorus_pct`` (means over the epoch's steps), and on the validation songs ``val_frame_acc``,
``val_chorus_pct`` (the share of frames predicted chorus) and ``val_true_chorus_pct``. A chorus% stuck at 0
or 100 is the collapse onto one class that the model's zero classifier bias and input normalisation guard
against.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from training.data.frames import load_frame_file
from training.tasks import register_task
from training.tasks.base import Batch, Callback, Task
from training.tasks.input_stats import InputStandardisation

if TYPE_CHECKING:
    from training.trainer import Trainer

DEFAULT_DATA = Path("data/chorus-verse-default.h5")
DEFAULT_N_SONGS = 192
SPLIT_SEED = 0
TEST_FRACTION = VAL_FRACTION = 0.1


class SongFramesDataset(Dataset):
    """Items ``{"x": (n_features, T) float32, "y": (T,) int64}``. With ``crop``: a random window of that many
    frames, shifted by up to ``band_shift`` mel bands (edge bands repeated; a small change of pitch and
    brightness) for training; without: the whole song, as is."""

    def __init__(self, features: np.ndarray, labels: np.ndarray, crop: int | None = None, band_shift: int = 0) -> None:
        self.x = torch.as_tensor(features, dtype=torch.float32)  # (N, F, T)
        self.y = torch.as_tensor(labels, dtype=torch.long)  # (N, T)
        if crop is not None and not 1 <= crop <= self.x.shape[-1]:
            raise ValueError(f"crop must be between 1 and the song length {self.x.shape[-1]}, got {crop}")
        self.crop = crop
        self.band_shift = band_shift

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> Batch:
        x, y = self.x[i], self.y[i]
        if self.crop is not None and self.crop < x.shape[-1]:
            start = int(torch.randint(0, x.shape[-1] - self.crop + 1, ()))
            x, y = x[:, start : start + self.crop], y[start : start + self.crop]
        if self.band_shift:
            shift = int(torch.randint(-self.band_shift, self.band_shift + 1, ()))
            index = (torch.arange(x.shape[0]) - shift).clamp(0, x.shape[0] - 1)
            x = x[index]
        return {"x": x, "y": y}


def split_songs(n_songs: int) -> dict[str, np.ndarray]:
    """Song indices of the ``train``, ``val`` and ``test`` splits: a fixed permutation, cut by song."""
    order = np.random.default_rng(SPLIT_SEED).permutation(n_songs)
    n_test, n_val = max(1, round(TEST_FRACTION * n_songs)), max(1, round(VAL_FRACTION * n_songs))
    if n_songs < n_test + n_val + 1:
        raise ValueError(f"a song dataset needs at least 3 songs to split by song, got {n_songs}")
    return {
        "test": np.sort(order[:n_test]),
        "val": np.sort(order[n_test : n_test + n_val]),
        "train": np.sort(order[n_test + n_val :]),
    }


def load_songs(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(features (N, F, T), labels (N, T), attributes) of a song file."""
    return load_frame_file(path, "song dataset", "`zoo train chorus-cnn` without --data generates one")


class EpochStats(Callback):
    """Means of the training steps' loss, gradient norm and predicted chorus share since the last read (the
    task's validation reports them); prints them with the validation chorus% after every epoch."""

    logged: ClassVar[tuple[tuple[str, str], ...]] = (
        ("loss", "train_loss"),
        ("grad_norm", "train_grad_norm"),
        ("chorus_pred", "train_chorus_pct"),
    )

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._n = 0

    def on_step_end(self, trainer: Trainer, batch: Batch, logs: dict[str, float]) -> None:
        for key, name in self.logged:
            scale = 100.0 if name.endswith("_pct") else 1.0
            self._sums[name] = self._sums.get(name, 0.0) + scale * float(logs.get(key, float("nan")))
        self._n += 1

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, float]) -> None:
        if trainer.env.master and "val_chorus_pct" in metrics:
            print(
                f"epoch {epoch + 1}: train loss {metrics.get('train_loss', float('nan')):.4f}, "
                f"grad norm {metrics.get('train_grad_norm', float('nan')):.3f}, "
                f"chorus% train {metrics.get('train_chorus_pct', float('nan')):.1f} / "
                f"val {metrics['val_chorus_pct']:.1f} (true {metrics['val_true_chorus_pct']:.1f}), "
                f"val frame acc {100 * metrics['val_frame_acc']:.1f} %",
                flush=True,
            )

    def read(self) -> dict[str, float]:
        """The epoch's means (empty before the first step); resets the sums."""
        means = {k: v / self._n for k, v in self._sums.items()} if self._n else {}
        self._sums, self._n = {}, 0
        return means


@torch.no_grad()
def frame_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Frame accuracy, predicted and true chorus share (%), and chorus precision/recall for (B, 2, T) logits."""
    pred = logits.argmax(1)
    chorus, true = pred == 1, labels == 1
    tp = float((chorus & true).sum())
    return {
        "frame_acc": float((pred == labels).float().mean()),
        "chorus_pct": 100.0 * float(chorus.float().mean()),
        "true_chorus_pct": 100.0 * float(true.float().mean()),
        "chorus_precision": tp / max(float(chorus.sum()), 1.0),
        "chorus_recall": tp / max(float(true.sum()), 1.0),
    }


@register_task
class ChorusTask(Task):
    """Frame-wise cross-entropy on verse/chorus labels of synthesized songs."""

    family = "chorus_cnn"
    defaults: ClassVar[dict[str, Any]] = {"epochs": 30, "batch_size": 16, "lr": 2e-3, "warmup_epochs": 1}
    crop: ClassVar[int] = 384
    band_shift: ClassVar[int] = 3

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.stats = EpochStats()
        self.attrs: dict[str, Any] = {}
        self.splits: dict[str, SongFramesDataset] = {}

    @property
    def path(self) -> Path:
        return Path(self.cfg.data) if getattr(self.cfg, "data", None) is not None else DEFAULT_DATA

    def prepare_data(self) -> None:
        if getattr(self.cfg, "data", None) is None and not DEFAULT_DATA.is_file():
            from training.data.songs import generate_songs

            print(f"generating {DEFAULT_N_SONGS} songs with Vital into {DEFAULT_DATA} (once; reused after)")
            generate_songs(DEFAULT_DATA, DEFAULT_N_SONGS, seed=0, workers=2)

    def datasets(self) -> tuple[Dataset, Dataset]:
        features, labels, self.attrs = load_songs(self.path)
        idx = split_songs(len(labels))
        self.splits = {
            "train": SongFramesDataset(
                features[idx["train"]], labels[idx["train"]], crop=self.crop, band_shift=self.band_shift
            ),
            "val": SongFramesDataset(features[idx["val"]], labels[idx["val"]]),
            "test": SongFramesDataset(features[idx["test"]], labels[idx["test"]]),
        }
        return self.splits["train"], self.splits["val"]

    def model_overrides(self) -> dict[str, Any]:
        return {"n_features": int(self.splits["train"].x.shape[1])}

    def loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = model(batch["x"])  # (B, 2, T)
        loss = F.cross_entropy(logits, batch["y"])
        pred = logits.detach().argmax(1)
        return loss, {
            "frame_acc": (pred == batch["y"]).float().mean(),
            "chorus_pred": (pred == 1).float().mean(),
        }

    @torch.no_grad()
    def validate(self, model: nn.Module, loader: DataLoader, device: torch.device) -> dict[str, float]:
        logits, labels = [], []
        for batch in loader:
            logits.append(model(batch["x"].to(device)).float().cpu())
            labels.append(batch["y"])
        logits_all, labels_all = torch.cat(logits), torch.cat(labels)
        metrics = {"val_loss": float(F.cross_entropy(logits_all, labels_all))}
        metrics |= {f"val_{k}": v for k, v in frame_metrics(logits_all, labels_all).items()}
        return metrics | self.stats.read()

    def callbacks(self) -> list[Callback]:
        return [InputStandardisation(self.splits["train"].x), self.stats]

    def front_end(self) -> dict[str, Any] | None:
        front_end = self.attrs.get("front_end")
        return json.loads(front_end) if isinstance(front_end, str) else None

    def checkpoint_extras(self) -> dict[str, Any]:
        return {
            "data": str(self.path),
            "split_seed": SPLIT_SEED,
            "classes": ["verse", "chorus"],
        }


@torch.no_grad()
def evaluate_checkpoint(checkpoint: str | Path, data: str | Path | None = None) -> dict[str, Any]:
    """Frame metrics of a chorus-cnn checkpoint on the held-out test songs of its dataset, overall and per
    song, plus the predictions (for plots)."""
    from training.checkpoint import load_checkpoint, model_from_checkpoint

    ckpt = load_checkpoint(checkpoint)
    if ckpt["model_name"] != "chorus-cnn":
        raise ValueError(f"{checkpoint} is a {ckpt['model_name']!r} checkpoint, not chorus-cnn")
    path = Path(data) if data is not None else Path(ckpt.get("data") or DEFAULT_DATA)
    features, labels, _ = load_songs(path)
    test = split_songs(len(labels))["test"]
    model, _ = model_from_checkpoint(ckpt)
    x = torch.as_tensor(features[test], dtype=torch.float32)
    y = torch.as_tensor(labels[test], dtype=torch.long)
    logits = model(x)
    per_song = [float((logits[i].argmax(0) == y[i]).float().mean()) for i in range(len(test))]
    return {
        "checkpoint": str(checkpoint),
        "data": str(path),
        "test_songs": test.tolist(),
        "n_frames": int(y.numel()),
        **frame_metrics(logits, y),
        "per_song_acc": per_song,
        "predictions": logits.softmax(1)[:, 1].numpy(),  # (songs, T) chorus probability
        "labels": y.numpy(),
    }
