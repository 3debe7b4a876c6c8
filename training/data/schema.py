"""The layout of a Vital dataset file (HDF5), in one place.

One row per render (a preset played at one note)::

    audio                    (N, 88200) float32   loudness-normalized mono, 44.1 kHz; shuffle + gzip,
                                                  one chunk per row
    params/continuous        (N, n_continuous) float32   normalized [0, 1] (see zoo.vital.spec)
    params/categorical       (N, n_categorical) int64    option indices
    metadata/preset_hash     (N,) bytes (16 hex chars)   same preset -> same hash, in every shard
    metadata/preset_index    (N,) int64                  index of the preset in the seed's stream
    metadata/note            (N,) int64                  MIDI note
    metadata/rms_db          (N,) float32                level of the render before normalization
    metadata/peak            (N,) float32                peak of the render before normalization
    metadata/velocity        (N,) float32                MIDI velocity of the render, in (0, 1]
    metadata/note_seconds    (N,) float32                how long the note was held (of 2 s rendered)
    features/mel_spectrogram (N, 1, 128, 173) float32    written by `zoo data precompute-mels`;
                                                  uncompressed, chunks (1, 1, 128, 173)

Root attributes hold the schema (the spec as JSON in ``spec``, parameter names, ranges, scales,
``categorical_n_options``, sample rate, front-end config, vita version, seed, notes, shard) and the
generation counters (renders, rejections). ``complete`` is true once every preset of the shard is written.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from zoo.audio import FrontEndConfig
from zoo.errors import DatasetError
from zoo.vital.spec import VitalParamSpec

FORMAT_VERSION = 1
AUDIO = "audio"
CONTINUOUS = "params/continuous"
CATEGORICAL = "params/categorical"
PRESET_HASH = "metadata/preset_hash"
PRESET_INDEX = "metadata/preset_index"
NOTE = "metadata/note"
RMS_DB = "metadata/rms_db"
PEAK = "metadata/peak"
VELOCITY = "metadata/velocity"
NOTE_SECONDS = "metadata/note_seconds"
MEL = "features/mel_spectrogram"

ROW_DATASETS = (AUDIO, CONTINUOUS, CATEGORICAL, PRESET_HASH, PRESET_INDEX, NOTE, RMS_DB, PEAK, VELOCITY, NOTE_SECONDS)
COUNTERS = (
    "n_presets_done",
    "n_presets_failed",
    "n_rows",
    "n_renders_total",
    "n_rejected_silent",
    "n_rejected_non_finite",
    "n_rejected_clipped",
)
# Attributes that must match for a run to resume a file, and for shards to be read together.
RUN_KEYS = (
    "seed", "n_presets", "notes", "shard_count", "shard_index", "velocity", "note_seconds", "render_seconds", "prior",
    "vary_notes",
)  # fmt: skip
AUDIO_GZIP_LEVEL = 1  # float audio barely compresses; level 1 is as good as 9 here and several times faster


def create_layout(f: Any, spec: VitalParamSpec, n_samples: int, attrs: dict[str, Any]) -> None:
    """Create the empty, resizable row datasets and write the schema attributes."""
    import h5py

    f.create_dataset(
        AUDIO,
        shape=(0, n_samples),
        maxshape=(None, n_samples),
        dtype=np.float32,
        chunks=(1, n_samples),
        shuffle=True,
        compression="gzip",
        compression_opts=AUDIO_GZIP_LEVEL,
    )
    rows = 256
    f.create_dataset(CONTINUOUS, (0, spec.n_continuous), np.float32, maxshape=(None, spec.n_continuous),
                     chunks=(rows, spec.n_continuous))  # fmt: skip
    f.create_dataset(CATEGORICAL, (0, spec.n_categorical), np.int64, maxshape=(None, spec.n_categorical),
                     chunks=(rows, spec.n_categorical))  # fmt: skip
    f.create_dataset(PRESET_HASH, (0,), "S16", maxshape=(None,), chunks=(rows,))
    row_metadata = ((PRESET_INDEX, np.int64), (NOTE, np.int64), (RMS_DB, np.float32), (PEAK, np.float32),
                    (VELOCITY, np.float32), (NOTE_SECONDS, np.float32))  # fmt: skip
    for name, dtype in row_metadata:
        f.create_dataset(name, (0,), dtype, maxshape=(None,), chunks=(rows,))

    strings = h5py.string_dtype()
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["spec"] = json.dumps(spec.to_dict())
    f.attrs.create("continuous_names", np.array(spec.continuous_names, dtype=object), dtype=strings)
    f.attrs.create("categorical_names", np.array(spec.categorical_names, dtype=object), dtype=strings)
    f.attrs["continuous_min"] = spec.mins
    f.attrs["continuous_max"] = spec.maxs
    f.attrs.create("continuous_scale", np.array([p.scale for p in spec.continuous], dtype=object), dtype=strings)
    f.attrs["categorical_n_options"] = np.array(spec.categorical_n_options, dtype=np.int64)
    f.attrs["front_end"] = json.dumps(FrontEndConfig().to_dict())
    for key, value in attrs.items():
        f.attrs[key] = value
    for key in COUNTERS:
        f.attrs[key] = 0
    f.attrs["complete"] = False


def open_file(path: Any, mode: str = "r") -> Any:
    """Open a dataset file with h5py; a missing or non-HDF5 file is a :class:`DatasetError`."""
    import h5py

    if not path.is_file():
        raise DatasetError(f"no such dataset file: {path}")
    try:
        return h5py.File(path, mode)
    except OSError as e:
        what = "is not an HDF5 file" if mode == "r" else "cannot be opened for writing"
        raise DatasetError(f"{path} {what} ({e})") from None


def read_spec(f: Any, label: str) -> VitalParamSpec:
    """The parameter spec stored in an open dataset file."""
    if "spec" not in f.attrs:
        raise DatasetError(f"{label} is not a Vital dataset (no 'spec' attribute); make one with `zoo data generate`")
    return VitalParamSpec.from_dict(json.loads(f.attrs["spec"]))


def counters(f: Any) -> dict[str, int]:
    return {key: int(f.attrs.get(key, 0)) for key in COUNTERS}


def run_attrs(f: Any) -> dict[str, Any]:
    """The attributes that identify a generation run (for resume and for reading shards together)."""
    out: dict[str, Any] = {}
    for key in RUN_KEYS:
        value = f.attrs.get(key)
        out[key] = value.tolist() if isinstance(value, (np.ndarray, np.generic)) else value
    return out
