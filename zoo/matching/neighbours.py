"""A small index of training presets by sound: the nearest ones to a recording are candidates of the search.

File format, ``neighbours.npz`` in an artifact bundle (listed in ``card.json`` ``files`` with format
``neighbours``), read with ``allow_pickle=False``:

- ``format``: the string ``zoo-neighbours/1``;
- ``spec_version``: the parameter spec's version the vectors belong to;
- ``features`` float16 (N, F): the log-mel spectrogram of the preset's render (``zoo.audio.LogMelFrontEnd``,
  (1, 128, 173)) average-pooled 4 x 4 and flattened (F = 32 x 43 = 1376), the space of the evaluation's
  nearest-neighbour baseline;
- ``continuous`` float32 (N, n_continuous), ``categorical`` int16 (N, n_categorical): the presets' vectors;
- ``midi`` int16 (N,): the note each render was played at.

Nearest means smallest Euclidean distance between features; a preset rendered at several notes is proposed
once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import ArtifactError
from zoo.matching.candidates import NEIGHBOUR, Candidate
from zoo.vital.spec import VitalParamSpec

INDEX_FORMAT = "zoo-neighbours/1"
INDEX_FILE = "neighbours.npz"
FILE_FORMAT = "neighbours"  # the `format` of its entry in card.json `files`
POOL = 4
MAX_BYTES = 256 * 2**20


def pooled_mel(mels: Any) -> np.ndarray:
    """Log-mel spectrograms (B, 1, 128, 173) (torch or numpy) -> pooled features (B, F) float32."""
    import torch

    mels = torch.as_tensor(np.asarray(mels, dtype=np.float32))
    return torch.nn.functional.avg_pool2d(mels, POOL).flatten(1).numpy()


def clip_features(clip: np.ndarray) -> np.ndarray:
    """The index's features of one loudness-normalised 2 s clip (cut or zero-padded to 2 s): (F,)."""
    import torch

    from zoo.audio import CLIP_SAMPLES, LogMelFrontEnd, fit_length

    with torch.no_grad():
        mel = LogMelFrontEnd()(torch.from_numpy(np.array(fit_length(clip, CLIP_SAMPLES), dtype=np.float32)))
    return pooled_mel(mel)[0]


@dataclass(frozen=True, eq=False)
class NeighbourIndex:
    """Pooled log-mel features and the vectors of N training presets (see the module docstring)."""

    features: np.ndarray  # (N, F)
    continuous: np.ndarray  # (N, n_continuous)
    categorical: np.ndarray  # (N, n_categorical)
    midi: np.ndarray  # (N,)
    spec_version: str

    def __post_init__(self) -> None:
        n = self.features.shape[0]
        if self.features.ndim != 2 or n == 0:
            raise ArtifactError(f"a neighbour index needs (N, F) features with N > 0, got {self.features.shape}")
        for name in ("continuous", "categorical", "midi"):
            if getattr(self, name).shape[0] != n:
                raise ArtifactError(f"the neighbour index's {name} has {getattr(self, name).shape[0]} rows, not {n}")
        if not np.isfinite(self.features.astype(np.float32)).all() or not np.isfinite(self.continuous).all():
            raise ArtifactError("the neighbour index holds NaN or infinite values")

    def __len__(self) -> int:
        return int(self.features.shape[0])

    def check_spec(self, spec: VitalParamSpec) -> None:
        """Raise :class:`ArtifactError` unless the vectors fit ``spec``."""
        widths = (self.continuous.shape[1], self.categorical.shape[1])
        if self.spec_version != spec.version or widths != (spec.n_continuous, spec.n_categorical):
            raise ArtifactError(
                f"the neighbour index was built for spec {self.spec_version!r} with {widths} parameters, "
                f"not {spec.version!r} with {(spec.n_continuous, spec.n_categorical)}"
            )
        n_options = np.array(spec.categorical_n_options)
        if np.any(self.categorical < 0) or np.any(self.categorical >= n_options):
            raise ArtifactError("the neighbour index holds categorical indices out of the spec's range")

    def nearest(self, clip: np.ndarray, k: int = 2, base: dict[str, Any] | None = None) -> list[Candidate]:
        """The ``k`` presets whose renders sound nearest to ``clip`` (distinct vectors), nearest first."""
        query = clip_features(clip)
        distance = np.linalg.norm(self.features.astype(np.float32) - query[None, :], axis=1)
        out: list[Candidate] = []
        for row in np.argsort(distance, kind="stable"):
            cont, cat = self.continuous[row], self.categorical[row]
            if any(np.array_equal(cont, c.continuous.astype(np.float32)) for c in out):
                continue  # the same preset at another note
            out.append(Candidate(cont, cat, f"{NEIGHBOUR} {len(out) + 1} (row {int(row)})", base))
            if len(out) == k:
                break
        return out

    # ---------------------------------------------------------------------------------------------------

    @classmethod
    def from_arrays(
        cls, mels: Any, continuous: np.ndarray, categorical: np.ndarray, midi: np.ndarray, spec: VitalParamSpec
    ) -> NeighbourIndex:
        """Build from log-mels (N, 1, 128, 173) of the presets' renders and their vectors."""
        index = cls(
            features=pooled_mel(mels).astype(np.float16),
            continuous=np.asarray(continuous, dtype=np.float32),
            categorical=np.asarray(categorical, dtype=np.int16),
            midi=np.asarray(midi, dtype=np.int16).reshape(-1),
            spec_version=spec.version,
        )
        index.check_spec(spec)
        return index

    def save(self, path: str | Path) -> Path:
        """Write ``neighbours.npz`` (uncompressed)."""
        path = Path(path)
        np.savez(
            path,
            format=np.array(INDEX_FORMAT),
            spec_version=np.array(self.spec_version),
            features=self.features,
            continuous=self.continuous,
            categorical=self.categorical,
            midi=self.midi,
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> NeighbourIndex:
        """Read an index file; an untrusted file: no pickles, shapes and values checked."""
        path = Path(path)
        if not path.is_file():
            raise ArtifactError(f"no neighbour index at {path}")
        if path.stat().st_size > MAX_BYTES:
            raise ArtifactError(f"{path} is larger than {MAX_BYTES // 2**20} MiB; not a neighbour index")
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["format"]) != INDEX_FORMAT:
                    raise ArtifactError(f"{path} has format {str(data['format'])!r}, not {INDEX_FORMAT!r}")
                return cls(
                    features=np.asarray(data["features"], dtype=np.float16),
                    continuous=np.asarray(data["continuous"], dtype=np.float32),
                    categorical=np.asarray(data["categorical"], dtype=np.int64),
                    midi=np.asarray(data["midi"], dtype=np.int64),
                    spec_version=str(data["spec_version"]),
                )
        except (KeyError, ValueError, OSError) as e:
            raise ArtifactError(f"{path} is not a readable neighbour index ({e})") from None

    @classmethod
    def from_artifact(cls, artifact: Any, spec: VitalParamSpec) -> NeighbourIndex | None:
        """The index of an artifact bundle (``zoo.artifact.Artifact``), or None when it has none."""
        entry = artifact.card.file_of_format(FILE_FORMAT)
        if entry is not None:
            index = cls.load(Path(artifact.path) / entry.path)
            index.check_spec(spec)
            return index
        return None
