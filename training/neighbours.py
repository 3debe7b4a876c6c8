"""The neighbour index of an artifact bundle: the training presets' pooled log-mels and vectors, from which
the search (``zoo.matching``) takes the presets that sound nearest to a recording as starting points.

``zoo export CKPT --neighbours DATA`` writes it; :func:`add_neighbour_index` does the same for a bundle that
exists. Only the checkpoint's training split is indexed (the same split as training: its ``val_fraction`` and
``seed``), so an evaluation on the held-out split never finds its own answer in the index.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import DataLoader

from zoo.artifact import CARD_FILE, ModelFile, load_artifact
from zoo.errors import ArtifactError
from zoo.files import atomic_path
from zoo.matching.neighbours import FILE_FORMAT, INDEX_FILE, NeighbourIndex
from zoo.vital.spec import VitalParamSpec

MAX_ITEMS = 4096  # about 11 MB of float16 features


def build_neighbour_index(
    data: str | Path, train_config: dict[str, Any], spec: VitalParamSpec, max_items: int = MAX_ITEMS, seed: int = 0
) -> NeighbourIndex:
    """Index the training split of ``data`` (an HDF5 file or a folder of shards with precomputed mels);
    at most ``max_items`` rows, chosen at random (``seed``) when the split is larger."""
    from training.data.dataset import VitalMelDataset, split_by_preset

    data = Path(data)
    paths = sorted(data.glob("*.h5")) if data.is_dir() else [data]
    train_idx, _ = split_by_preset(
        paths, val_fraction=train_config.get("val_fraction", 0.1), seed=train_config.get("seed", 0)
    )
    if len(train_idx) > max_items:
        train_idx = sorted(np.random.default_rng(seed).choice(train_idx, size=max_items, replace=False).tolist())
    dataset = VitalMelDataset(paths, train_idx)
    if dataset.spec != spec:
        raise ArtifactError(f"{data} holds presets of another parameter spec than the checkpoint's")
    mels, conts, cats, notes = [], [], [], []
    for batch in DataLoader(dataset, batch_size=128):
        mels.append(batch["mel"].numpy())
        conts.append(batch["continuous"].numpy())
        cats.append(batch["categorical"].numpy())
        notes.append(batch["note"].numpy())
    dataset.close()
    return NeighbourIndex.from_arrays(
        np.concatenate(mels), np.concatenate(conts), np.concatenate(cats), np.concatenate(notes), spec
    )


def add_neighbour_index(artifact_dir: str | Path, data: str | Path, checkpoint: str | Path) -> Path:
    """Build the index of ``checkpoint``'s training split of ``data`` into the bundle at ``artifact_dir`` and
    list it in its ``card.json`` (sha256 and size). Returns the index file."""
    from training.checkpoint import load_checkpoint

    artifact = load_artifact(artifact_dir, verify=True)
    ckpt = load_checkpoint(checkpoint)
    if not ckpt.get("spec"):
        raise ArtifactError(f"{checkpoint} has no parameter spec: a neighbour index needs one")
    spec = VitalParamSpec.from_dict(ckpt["spec"])
    index = build_neighbour_index(data, ckpt.get("train_config", {}), spec)
    path = index.save(artifact.path / INDEX_FILE)
    entry = ModelFile.of(artifact.path, INDEX_FILE, FILE_FORMAT)
    files = tuple(f for f in artifact.card.files if f.path != INDEX_FILE) + (entry,)
    with atomic_path(artifact.path / CARD_FILE) as tmp:
        tmp.write_text(json.dumps(replace(artifact.card, files=files).to_dict(), indent=2) + "\n")
    return path
