"""Training task of the compositional agent: learn to compose the input's pitch with the target's sound.

Data: the Vital dataset's HDF5 file (or a folder of HDF5 shards) at ``cfg.data``, read with h5py:
``features/mel_spectrogram`` float32 (N, 1, 128, T) log1p mel, ``metadata/preset_hash`` (N,) and
``metadata/note`` (N,) int. Renders of one preset at different notes share a preset hash.

Objective (self-supervised: the labels come from how the dataset was rendered, no annotation). Each example
is a triplet of mel sequences:

    x      = preset A at note n     (the *input*: contributes its note, its harmony)
    y      = preset B at note m != n (the *target*: contributes its sound, rhythm and timbre)
    target = preset B at note n     (what composing the two should give), A != B

The agent sees only ``(x, y)`` and is trained to predict ``target``: it has to take the pitch content from
the input and the envelope and timbre from the target, which is exactly "compose the input's and the target's
components". The rendered ``target`` exists because every preset is rendered at several notes; a model that
copies ``y`` (right sound, wrong note) or ``x`` (right note, wrong sound) is logged as a baseline
(``copy_target_mse``, ``copy_input_mse``), and a useful agent beats both. The loss is

    mse(out, target) + aux_weight * factorization_loss.mean()

where the factorization loss (from the model) asks each extractor's three components to reconstruct their own
source, so that every component stays informative whatever the selector picks. The mean selector weight of
each of the six components is logged at every step and in the validation metrics of every epoch
(``val_w_in_rhythm`` ... ``val_w_tgt_timbre``); the composition above should pull weight towards
``in_harmony``, ``tgt_timbre`` and ``tgt_rhythm``.

Pairs: for each preset B rendered at two or more notes, every ordered pair of its notes (n, m) gives one
triplet, with A drawn (seeded by ``cfg.seed``) among the other presets rendered at note n. Train and validation
are split by preset with the Vital dataset's split (``training.data.dataset.split_presets``: 10 % of the
presets, at least two, go to validation), so no sound is seen in both.
Mel values are standardised with one mean and standard deviation estimated on training rows (saved in the
checkpoint extras).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from training.data import schema
from training.data.dataset import dataset_files, split_presets
from training.tasks import register_task
from training.tasks.base import Batch, Task
from zoo.models.compositional import COMPONENTS


def _plain(value: Any) -> Any:
    """A preset hash as a plain, hashable Python value (h5py gives bytes for strings, numpy scalars for ints)."""
    if isinstance(value, bytes):
        return value.decode()
    return value.item() if isinstance(value, np.generic) else value


def read_index(files: list[Path]) -> tuple[list[tuple[int, int]], list[Any], np.ndarray, int]:
    """(rows as (file, row), preset hash per row, note per row, number of mel bands) across the shards."""
    import h5py

    rows: list[tuple[int, int]] = []
    hashes: list[Any] = []
    notes: list[np.ndarray] = []
    n_mels = None
    for fi, file in enumerate(files):
        with h5py.File(file, "r") as f:
            missing = [k for k in (schema.MEL, schema.PRESET_HASH, schema.NOTE) if k not in f]
            if missing:
                raise ValueError(f"{file} lacks {', '.join(missing)}: not a Vital dataset with precomputed mels")
            shape = f[schema.MEL].shape
            if len(shape) != 4 or shape[1] != 1:
                raise ValueError(f"{file}: {schema.MEL} must be (N, 1, n_mels, T), got {shape}")
            if n_mels is not None and shape[2] != n_mels:
                raise ValueError(f"{file}: {shape[2]} mel bands, other shards have {n_mels}")
            n_mels = shape[2]
            h, n = f[schema.PRESET_HASH][:], f[schema.NOTE][:]
            if not len(h) == len(n) == shape[0]:
                raise ValueError(f"{file}: {len(h)} preset hashes and {len(n)} notes for {shape[0]} mels")
            rows += [(fi, r) for r in range(shape[0])]
            hashes += [_plain(v) for v in h]
            notes.append(np.asarray(n, dtype=np.int64))
    return rows, hashes, np.concatenate(notes), int(n_mels or 0)


def _front_end_attr(file: Path) -> dict[str, Any] | None:
    """The ``front_end`` root attribute of a dataset file (JSON), or None where the file has none."""
    import h5py

    with h5py.File(file, "r") as f:
        value = f.attrs.get("front_end")
    return json.loads(value) if isinstance(value, str) else None


def build_triplets(presets: list[Any], by_preset: dict[Any, dict[int, list[int]]], rng: np.random.Generator):
    """(x, y, target) row triplets within one split: target = B at n, y = B at m != n, x = A != B at n."""
    at_note: dict[int, list[Any]] = {}
    for p in presets:
        for note in by_preset[p]:
            at_note.setdefault(note, []).append(p)
    triplets = []
    for b in presets:
        notes = sorted(by_preset[b])
        for n in notes:
            others = [a for a in at_note[n] if a != b]
            if not others:
                continue
            for m in notes:
                if m == n:
                    continue
                a = others[rng.integers(len(others))]
                x = rng.choice(by_preset[a][n])
                triplets.append((int(x), int(rng.choice(by_preset[b][m])), int(rng.choice(by_preset[b][n]))))
    return triplets


class MelTripletDataset(Dataset):
    """Items ``{"x", "y", "target"}``, each (n_mels, T) standardised log-mel, read lazily from the shards
    (each DataLoader worker opens its own h5py handles)."""

    def __init__(
        self,
        files: list[Path],
        rows: list[tuple[int, int]],
        triplets: list[tuple[int, int, int]],
        mean: float,
        std: float,
    ) -> None:
        self.files, self.rows, self.triplets = list(files), rows, triplets
        self.mean, self.std = mean, std
        self._handles: list[Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handles": None}  # h5py handles do not cross process boundaries

    def _mel(self, row: int) -> torch.Tensor:
        if self._handles is None:
            import h5py

            self._handles = [h5py.File(f, "r") for f in self.files]
        fi, r = self.rows[row]
        mel = np.asarray(self._handles[fi][schema.MEL][r, 0], dtype=np.float32)  # (n_mels, T)
        return (torch.from_numpy(mel) - self.mean) / self.std

    def __len__(self) -> int:
        return len(self.triplets)

    def __getitem__(self, i: int) -> Batch:
        x, y, target = self.triplets[i]
        return {"x": self._mel(x), "y": self._mel(y), "target": self._mel(target)}


@register_task
class CompositionalTask(Task):
    """Predict preset B at note n from (preset A at note n, preset B at note m); see the module docstring."""

    family = "compositional"
    aux_weight: ClassVar[float] = 0.1
    val_fraction: ClassVar[float] = 0.1
    stats_rows: ClassVar[int] = 64

    def __init__(self, cfg: Any) -> None:
        super().__init__(cfg)
        self.n_mels = 0
        self._front_end: dict[str, Any] | None = None
        self.mel_mean, self.mel_std = 0.0, 1.0

    def datasets(self) -> tuple[Dataset, Dataset]:
        files = dataset_files(self.cfg.data)
        rows, hashes, notes, self.n_mels = read_index(files)
        self._front_end = _front_end_attr(files[0])
        by_preset: dict[Any, dict[int, list[int]]] = {}
        for i, (h, n) in enumerate(zip(hashes, notes.tolist(), strict=True)):
            by_preset.setdefault(h, {}).setdefault(int(n), []).append(i)
        # At least two validation presets: a triplet needs two different presets at one note.
        _, val_rows = split_presets(np.array(hashes), self.val_fraction, int(self.cfg.seed), min_val_presets=2)
        val_set = {hashes[i] for i in val_rows}
        val_presets = sorted(val_set, key=str)
        train_presets = sorted((p for p in by_preset if p not in val_set), key=str)
        rng = np.random.default_rng(int(self.cfg.seed))
        train, val = build_triplets(train_presets, by_preset, rng), build_triplets(val_presets, by_preset, rng)
        for split, triplets, n_presets in (
            ("training", train, len(train_presets)),
            ("validation", val, len(val_presets)),
        ):
            if not triplets:
                raise ValueError(
                    f"the {split} split ({n_presets} presets) has no (input, target) pair: the compositional task "
                    "needs presets rendered at two or more notes, and another preset rendered at one of those notes"
                )
        self._estimate_stats(files, rows, sorted({t[2] for t in train})[: self.stats_rows])
        return (
            MelTripletDataset(files, rows, train, self.mel_mean, self.mel_std),
            MelTripletDataset(files, rows, val, self.mel_mean, self.mel_std),
        )

    def front_end(self) -> dict[str, Any] | None:
        """The dataset's front-end config (the mels the agent composes were computed with it), if stored."""
        return self._front_end

    def _estimate_stats(self, files: list[Path], rows: list[tuple[int, int]], sample: list[int]) -> None:
        reader = MelTripletDataset(files, rows, [], 0.0, 1.0)
        mels = torch.stack([reader._mel(r) for r in sample])
        self.mel_mean, self.mel_std = float(mels.mean()), float(mels.std().clamp_min(1e-6))

    def model_overrides(self) -> dict[str, Any]:
        return {"encoding_dim": self.n_mels} if self.n_mels else {}

    def loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x, y, target = batch["x"], batch["y"], batch["target"]  # (B, n_mels, T) each
        out, factorization, weights = model(x, y, return_weights=True)
        mse = F.mse_loss(out, target)
        loss = mse + self.aux_weight * factorization.mean()
        logs = {
            "mse": mse.detach(),
            "factorization": factorization.mean().detach(),
            "copy_target_mse": F.mse_loss(y, target),
            "copy_input_mse": F.mse_loss(x, target),
        }
        logs.update({f"w_{name}": weights[:, i].mean().detach() for i, name in enumerate(COMPONENTS)})
        return loss, logs

    def checkpoint_extras(self) -> dict[str, Any]:
        return {
            "mel_mean": self.mel_mean,
            "mel_std": self.mel_std,
            "pairs": "x = preset A at note n, y = preset B at note m, target = preset B at note n",
            "aux_weight": self.aux_weight,
        }
