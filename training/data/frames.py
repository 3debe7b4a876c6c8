"""HDF5 files of features labelled frame by frame: chorus-cnn's songs and note-onset-cnn's phrases.

One layout for both: ``features`` (N, n_mels, T), ``labels`` (N, T) uint8, one JSON text per item (``songs``
or ``phrases``), and attributes ``seed``, ``n_<items>``, ``front_end`` (JSON), ``frame_seconds`` and
``classes`` (JSON), plus what a generator adds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from zoo.audio import SAMPLE_RATE, FrontEndConfig


def create_frame_datasets(
    f: Any,
    items: str,
    n: int,
    front_end: FrontEndConfig,
    classes: list[str],
    *,
    dtype: str = "float32",
    attrs: dict[str, Any] | None = None,
) -> tuple[Any, Any, Any]:
    """Create the datasets of ``n`` items in the open HDF5 file ``f`` and set its attributes; returns
    (features, labels, items) to fill item by item."""
    import h5py

    shape = (front_end.n_mels, front_end.n_frames)
    features = f.create_dataset("features", (n, *shape), dtype=dtype, chunks=(1, *shape))
    labels = f.create_dataset("labels", (n, front_end.n_frames), dtype="uint8")
    texts = f.create_dataset(items, (n,), dtype=h5py.string_dtype())
    f.attrs.update(
        {
            f"n_{items}": n,
            "front_end": json.dumps(front_end.to_dict()),
            "frame_seconds": front_end.hop_length / SAMPLE_RATE,
            "classes": json.dumps(classes),
            **(attrs or {}),
        }
    )
    return features, labels, texts


def load_frame_file(path: Path, what: str, make: str) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(features (N, F, T), labels (N, T), attributes) of a file of this layout, or of every ``*.h5`` file of a
    folder, concatenated in name order (their front ends must agree; the attributes are the first file's).
    ``what`` names the data in errors (``song dataset``); ``make`` says how to make one when none is there."""
    import h5py

    files = sorted(path.glob("*.h5")) if path.is_dir() else [path]
    if not files or not files[0].is_file():
        raise FileNotFoundError(f"no {what} at {path}; {make}")
    features, labels, attrs = [], [], []
    for file in files:
        with h5py.File(file, "r") as f:
            if "features" not in f or "labels" not in f:
                raise ValueError(f"{file} is not a {what} (it needs 'features' and 'labels')")
            features.append(f["features"][()])
            labels.append(f["labels"][()])
            attrs.append(dict(f.attrs))
    if any(a.get("front_end") != attrs[0].get("front_end") for a in attrs):
        raise ValueError(f"the files of {path} were made with different front ends; give them one at a time")
    return np.concatenate(features), np.concatenate(labels), attrs[0]
