"""note-onset-cnn's task: mark the frames where a note starts in phrases rendered with Vital.

The data is ``training/data/note_onsets.py``'s HDF5 file (``zoo train note-onset-cnn --data FILE``; make one
with ``zoo data onsets``). Phrases are split by phrase with a fixed seed as chorus-cnn's songs are
(:func:`training.tasks.chorus.split_songs`: 10 % test, 10 % validation). Training items are random
``crop``-frame windows shifted by up to ``band_shift`` mel bands; validation uses whole phrases.

The target is the onset frame and its two neighbours (a 35 ms window: the label's rounding to a frame and the
note's own attack make the exact frame uncertain), weighted ``ONSET_WEIGHT`` against the many frames where
nothing starts. Every epoch reports, beside the loss, the onset F-measure of the validation phrases with
``zoo.onsets.pick_onsets`` at its default threshold (50 ms tolerance, as the note-finding benchmark scores).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from training.data.frames import load_frame_file
from training.tasks import register_task
from training.tasks.base import Batch, Callback, Task
from training.tasks.chorus import SongFramesDataset, split_songs
from training.tasks.input_stats import InputStandardisation

DEFAULT_DATA = Path("data/note-onsets.h5")
ONSET_WEIGHT = 4.0
TOLERANCE_FRAMES = 4  # 46 ms at 11.6 ms a frame: the benchmark's 50 ms


def load_phrases(path: Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(features (N, F, T), labels (N, T), attributes) of a phrase file."""
    return load_frame_file(path, "phrase dataset", f"make one with `zoo data onsets --out {path}`")


def widened(labels: torch.Tensor) -> torch.Tensor:
    """(B, T) onset labels with each onset's neighbours marked too."""
    return F.max_pool1d(labels[:, None].float(), 3, stride=1, padding=1)[:, 0].long()


def onset_counts(probability: np.ndarray, labels: np.ndarray) -> tuple[int, int, int]:
    """(hits, found, played) of one phrase: peaks picked from ``probability`` matched one to one, in time
    order, to labelled onsets within ``TOLERANCE_FRAMES``."""
    from zoo.onsets import pick_onsets

    found = pick_onsets(probability)
    played = np.flatnonzero(labels).tolist()
    hits, j = 0, 0
    for t in found:
        while j < len(played) and played[j] < t - TOLERANCE_FRAMES:
            j += 1
        if j < len(played) and abs(played[j] - t) <= TOLERANCE_FRAMES:
            hits += 1
            j += 1
    return hits, len(found), len(played)


@register_task
class NoteOnsetTask(Task):
    """Frame-wise weighted cross-entropy on onset labels of rendered phrases."""

    family = "note_onsets"
    monitor = "val_onset_miss"  # 1 - onset F-measure
    headline_metrics = ("val_onset_f", "val_onset_precision", "val_onset_recall")
    defaults: ClassVar[dict[str, Any]] = {"epochs": 16, "batch_size": 16, "lr": 2e-3, "warmup_epochs": 1}
    crop: ClassVar[int] = 384
    band_shift: ClassVar[int] = 2

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.attrs: dict[str, Any] = {}
        self.splits: dict[str, SongFramesDataset] = {}

    @property
    def path(self) -> Path:
        return Path(self.cfg.data) if getattr(self.cfg, "data", None) is not None else DEFAULT_DATA

    def datasets(self) -> tuple[Dataset, Dataset]:
        features, labels, self.attrs = load_phrases(self.path)
        idx = split_songs(len(labels))
        self.splits = {
            "train": SongFramesDataset(
                features[idx["train"]], labels[idx["train"]], crop=self.crop, band_shift=self.band_shift
            ),
            "val": SongFramesDataset(features[idx["val"]], labels[idx["val"]]),
        }
        return self.splits["train"], self.splits["val"]

    def model_overrides(self) -> dict[str, Any]:
        return {"n_features": int(self.splits["train"].x.shape[1])}

    def loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = model(batch["x"])  # (B, 2, T)
        target = widened(batch["y"])
        weight = torch.tensor([1.0, ONSET_WEIGHT], device=logits.device)
        return F.cross_entropy(logits, target, weight=weight), {}

    @torch.no_grad()
    def validate(self, model: nn.Module, loader: DataLoader, device: torch.device) -> dict[str, float]:
        losses, hits, found, played = [], 0, 0, 0
        for batch in loader:
            logits = model(batch["x"].to(device)).float().cpu()
            target = widened(batch["y"])
            losses.append(float(F.cross_entropy(logits, target, weight=torch.tensor([1.0, ONSET_WEIGHT]))))
            for p, y in zip(logits.softmax(1)[:, 1].numpy(), batch["y"].numpy(), strict=True):
                h, f, n = onset_counts(p, y)
                hits, found, played = hits + h, found + f, played + n
        precision, recall = hits / max(found, 1), hits / max(played, 1)
        f_measure = 2 * precision * recall / max(precision + recall, 1e-9)
        return {
            "val_loss": float(np.mean(losses)),
            "val_onset_f": f_measure,
            "val_onset_precision": precision,
            "val_onset_recall": recall,
            "val_onset_miss": 1.0 - f_measure,
        }

    def callbacks(self) -> list[Callback]:
        return [InputStandardisation(self.splits["train"].x)]

    def front_end(self) -> dict[str, Any] | None:
        front_end = self.attrs.get("front_end")
        return json.loads(front_end) if isinstance(front_end, str) else None

    def checkpoint_extras(self) -> dict[str, Any]:
        return {"data": str(self.path), "classes": ["none", "onset"]}
