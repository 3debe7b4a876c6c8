"""`zoo data inspect`: what a dataset file holds, as numbers and as pictures.

Prints counts, the schema and the rejection rate; writes ``params.png`` (the histogram of every
parameter, one row each, in the normalized space) and ``spectrograms.png`` (a few stored clips'
log-mels) into an output folder.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from training.data import schema


@dataclass
class DatasetSummary:
    """Counts and schema of one dataset file."""

    path: Path
    complete: bool
    n_rows: int
    n_presets: int
    notes: list[int]
    n_continuous: int
    n_categorical: int
    has_mels: bool
    counters: dict[str, int]
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def rejection_rate(self) -> float:
        c = self.counters
        rejected = c["n_rejected_silent"] + c["n_rejected_non_finite"] + c["n_rejected_clipped"]
        return rejected / c["n_renders_total"] if c["n_renders_total"] else 0.0


def summarize(path: Path) -> DatasetSummary:
    """Read the counts and schema of a dataset (or ``.partial``) file."""
    path = Path(path)
    with schema.open_file(path) as f:
        spec = schema.read_spec(f, str(path))
        mel = f.get(schema.MEL)
        n_rows = int(f[schema.CONTINUOUS].shape[0])
        keep = ("seed", "n_presets", "shard_index", "shard_count", "sample_rate", "n_samples", "velocity",
                "note_seconds", "render_seconds", "loudness_target_db", "vita_version", "format_version")  # fmt: skip
        attrs = {k: _plain(f.attrs[k]) for k in keep if k in f.attrs}
        attrs["front_end"] = json.loads(f.attrs["front_end"])
        return DatasetSummary(
            path=path,
            complete=bool(f.attrs.get("complete", False)),
            n_rows=n_rows,
            n_presets=int(np.unique(f[schema.PRESET_HASH][:]).size),
            notes=[int(n) for n in np.unique(f[schema.NOTE][:])],
            n_continuous=spec.n_continuous,
            n_categorical=spec.n_categorical,
            has_mels=mel is not None and int(mel.attrs.get("n_done", 0)) >= n_rows,
            counters=schema.counters(f),
            attrs=attrs,
        )


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def plot_parameters(path: Path, out_png: Path, bins: int = 20) -> None:
    """Per-parameter histograms, one row each, as two heat maps: continuous parameters over [0, 1] in ``bins``
    bins, categorical ones over their options (counted once per preset; each row scaled to its largest bin)."""
    import h5py
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with h5py.File(path, "r") as f:
        spec = schema.read_spec(f, str(path))
        first = np.sort(np.unique(f[schema.PRESET_HASH][:], return_index=True)[1])  # one row per preset
        cont = f[schema.CONTINUOUS][:][first]
        cat = f[schema.CATEGORICAL][:][first]
    cont_hist = np.stack([np.histogram(cont[:, i], bins=bins, range=(0, 1))[0] for i in range(spec.n_continuous)])
    width = max(spec.categorical_n_options)
    cat_hist = np.full((spec.n_categorical, width), np.nan)
    for j, n in enumerate(spec.categorical_n_options):
        cat_hist[j, :n] = np.bincount(cat[:, j], minlength=n)[:n]

    def scaled(h: np.ndarray) -> np.ndarray:
        return h / np.maximum(np.nanmax(h, axis=1, keepdims=True), 1)

    height = 0.16 * (spec.n_continuous + spec.n_categorical) + 1.5
    fig, (ax_c, ax_k) = plt.subplots(
        2, 1, figsize=(9, height), height_ratios=[spec.n_continuous, spec.n_categorical], layout="constrained"
    )
    ax_c.imshow(scaled(cont_hist), aspect="auto", cmap="viridis", extent=(0, 1, spec.n_continuous - 0.5, -0.5))
    ax_c.set_yticks(range(spec.n_continuous), spec.continuous_names, fontsize=6)
    ax_c.set_xlabel("normalized value")
    ax_c.set_title(f"{path.name}: {cont.shape[0]} presets, continuous parameters ({bins} bins)", fontsize=9)
    ax_k.imshow(scaled(cat_hist), aspect="auto", cmap="viridis", interpolation="nearest")
    ax_k.set_yticks(range(spec.n_categorical), spec.categorical_names, fontsize=6)
    ax_k.set_xticks(range(width))
    ax_k.set_xlabel("option index")
    ax_k.set_title("categorical parameters", fontsize=9)
    fig.savefig(out_png, dpi=100)
    plt.close(fig)


def plot_spectrograms(path: Path, out_png: Path, n: int = 6, seed: int = 0) -> None:
    """Log-mels of ``n`` random rows (the stored ones if precomputed, else computed from the audio), drawn by
    ``training.spectrogram_plot`` with the file's front-end config."""
    import h5py
    import torch

    from training.spectrogram_plot import plot_log_mels
    from zoo.audio import FrontEndConfig, LogMelFrontEnd

    with h5py.File(path, "r") as f:
        total = int(f[schema.CONTINUOUS].shape[0])
        if total == 0:
            return
        cfg = FrontEndConfig(**json.loads(f.attrs["front_end"])) if "front_end" in f.attrs else FrontEndConfig()
        rows = np.sort(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False))
        mel_ds = f.get(schema.MEL)
        if mel_ds is not None and int(mel_ds.attrs.get("n_done", 0)) >= total:
            mels = np.stack([mel_ds[r] for r in rows])
        else:
            with torch.inference_mode():
                audio = torch.from_numpy(np.stack([f[schema.AUDIO][r] for r in rows]))
                mels = LogMelFrontEnd(cfg)(audio).numpy()
        notes = [int(f[schema.NOTE][r]) for r in rows]
        hashes = [f[schema.PRESET_HASH][r].decode() for r in rows]
    titles = [f"row {row}, note {note}, preset {h[:8]}" for row, note, h in zip(rows, notes, hashes, strict=True)]
    plot_log_mels(list(mels), titles, out_png, cfg, columns=math.ceil(len(rows) / 2))
