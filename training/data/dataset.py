"""Where a Vital dataset is (a file or a folder of shards), the split by preset, and a torch ``Dataset``
over its precomputed mels and Tier-1 parameters: every task and `zoo evaluate` resolve data here.

Several files (the shards of one run, or of several) read as one dataset: global index = position in
the concatenation of the files' rows, in the order given. The HDF5 files are opened lazily, once per
process, so the dataset can be handed to ``DataLoader(num_workers > 0)``: every worker opens its own
handles on first use (h5py handles must not cross a fork).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from training.data import schema
from zoo.errors import DatasetError
from zoo.vital.spec import VitalParamSpec


def _as_paths(paths: Path | str | Sequence[Path | str]) -> list[Path]:
    if isinstance(paths, (str, Path)):
        paths = [paths]
    out = [Path(p) for p in paths]
    if not out:
        raise DatasetError("no dataset file given")
    return out


def _read_header(path: Path, need_mels: bool) -> tuple[VitalParamSpec, int, str]:
    with schema.open_file(path) as f:
        spec = schema.read_spec(f, str(path))
        if not bool(f.attrs.get("complete", False)):
            raise DatasetError(f"{path} is not complete; finish it with `zoo data generate ... --resume`")
        n = int(f[schema.CONTINUOUS].shape[0])
        front_end = str(f.attrs.get("front_end", ""))
        if need_mels:
            mel = f.get(schema.MEL)
            if mel is None or int(mel.attrs.get("n_done", 0)) < n:
                raise DatasetError(f"{path} has no precomputed mel spectrograms; run `zoo data precompute-mels {path}`")
    return spec, n, front_end


class VitalMelDataset(Dataset):
    """Items: ``mel`` float32 (1, 128, 173), ``continuous`` float32 (n_continuous,), ``categorical`` int64
    (n_categorical,), ``note`` int64 (), ``index`` int64 () (the global row index).

    ``indices`` restricts the dataset to those global rows (e.g. one side of :func:`split_by_preset`).
    """

    def __init__(self, paths: Path | Sequence[Path], indices: Sequence[int] | None = None) -> None:
        self.paths = _as_paths(paths)
        headers = [_read_header(p, need_mels=True) for p in self.paths]
        self._spec = headers[0][0]
        for path, (spec, _, front_end) in zip(self.paths, headers, strict=True):
            if spec != self._spec:
                raise DatasetError(f"{path} has another parameter spec than {self.paths[0]}; they cannot be mixed")
            if front_end != headers[0][2]:
                raise DatasetError(f"{path} has another front-end config than {self.paths[0]}")
        self.front_end = json.loads(headers[0][2]) if headers[0][2] else {}
        self._sizes = np.array([n for _, n, _ in headers], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(self._sizes)])
        total = int(self._offsets[-1])
        if indices is None:
            self.indices = np.arange(total, dtype=np.int64)
        else:
            self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)
            if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= total):
                raise DatasetError(f"indices must be in 0..{total - 1}")
        self._files: list[Any] | None = None
        self._pid: int | None = None

    @property
    def spec(self) -> VitalParamSpec:
        """The parameter spec stored in the file(s)."""
        return self._spec

    @property
    def n_rows(self) -> int:
        """Rows in all files together (ignoring ``indices``)."""
        return int(self._offsets[-1])

    def __len__(self) -> int:
        return int(self.indices.size)

    def _handles(self) -> list[Any]:
        import h5py

        if self._files is None or self._pid != os.getpid():
            # A handle inherited from another process is not used, only replaced.
            self._files = [h5py.File(p, "r") for p in self.paths]
            self._pid = os.getpid()
        return self._files

    def locate(self, index: int) -> tuple[int, int]:
        """Global row -> (file number, row in that file)."""
        file_no = int(np.searchsorted(self._offsets, index, side="right") - 1)
        return file_no, int(index - self._offsets[file_no])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a dataset of {len(self)}")
        index = int(self.indices[i])
        file_no, row = self.locate(index)
        f = self._handles()[file_no]
        return {
            "mel": torch.from_numpy(f[schema.MEL][row]),  # (1, 128, 173)
            "continuous": torch.from_numpy(f[schema.CONTINUOUS][row]),
            "categorical": torch.from_numpy(f[schema.CATEGORICAL][row].astype(np.int64)),
            "note": torch.tensor(int(f[schema.NOTE][row]), dtype=torch.int64),
            "index": torch.tensor(index, dtype=torch.int64),
        }

    def close(self) -> None:
        for f in self._files or []:
            f.close()
        self._files = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_files"], state["_pid"] = None, None  # open handles never travel to another process
        return state


def preset_hashes(paths: Path | Sequence[Path]) -> np.ndarray:
    """The preset hash of every global row of the files, in order (bytes)."""
    import h5py

    out = []
    for path in _as_paths(paths):
        _read_header(path, need_mels=False)
        with h5py.File(path, "r") as f:
            out.append(f[schema.PRESET_HASH][:])
    return np.concatenate(out) if out else np.array([], dtype="S16")


def dataset_files(data: str | Path) -> list[Path]:
    """The HDF5 file at ``data``, or the ``*.h5`` / ``*.hdf5`` shards in the folder ``data``, sorted."""
    path = Path(data)
    if path.is_dir():
        files = sorted([*path.glob("*.h5"), *path.glob("*.hdf5")])
        if not files:
            raise FileNotFoundError(f"no .h5 or .hdf5 files in {path}")
        return files
    if not path.is_file():
        raise FileNotFoundError(f"dataset {path} does not exist; create one with `zoo data generate --out {path}`")
    return [path]


def split_presets(
    hashes: np.ndarray, val_fraction: float = 0.1, seed: int = 0, min_val_presets: int = 1
) -> tuple[list[int], list[int]]:
    """Row indices (train, validation) of rows labelled by preset ``hashes``: every row of one preset falls
    on the same side.

    ``round(val_fraction * n_presets)`` presets go to validation, at least ``min_val_presets`` when
    ``val_fraction`` > 0 and that leaves a training preset, chosen by a permutation of the sorted preset
    hashes seeded by ``seed`` (so the split does not depend on row or file order).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise DatasetError(f"val_fraction must be in [0, 1), got {val_fraction}")
    hashes = np.asarray(hashes)
    unique = np.unique(hashes)  # sorted: independent of file order
    n_val = int(round(val_fraction * unique.size))
    if val_fraction > 0 and n_val < min_val_presets:
        n_val = min(min_val_presets, unique.size - 1)
    perm = np.random.default_rng(seed).permutation(unique.size)
    val_hashes = unique[perm[: max(n_val, 0)]]
    is_val = np.isin(hashes, val_hashes)
    return np.nonzero(~is_val)[0].tolist(), np.nonzero(is_val)[0].tolist()


def split_by_preset(
    paths: Path | Sequence[Path], val_fraction: float = 0.1, seed: int = 0
) -> tuple[list[int], list[int]]:
    """Global row indices (train, validation) of the files: :func:`split_presets` of their preset hashes."""
    return split_presets(preset_hashes(paths), val_fraction, seed)


def vital_splits(
    data: str | Path, val_fraction: float = 0.1, seed: int = 0
) -> tuple[list[Path], VitalMelDataset, VitalMelDataset]:
    """(files, training set, validation set) of the dataset at ``data``: what `zoo train` trains on and the
    held-out split `zoo evaluate` scores, for the same ``val_fraction`` and ``seed``."""
    paths = dataset_files(data)
    train_idx, val_idx = split_by_preset(paths, val_fraction=val_fraction, seed=seed)
    return paths, VitalMelDataset(paths, train_idx), VitalMelDataset(paths, val_idx)
