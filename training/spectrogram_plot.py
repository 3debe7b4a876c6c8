"""The one spectrogram figure of the project (`zoo evaluate`, `zoo data inspect`): log-mels on a dB colour
scale with a colour bar, time in seconds and frequency in Hz, so a person can read what is in the sound."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from zoo.audio import FrontEndConfig, mel_filterbank

FREQUENCY_TICKS_HZ = (500, 1000, 2000, 5000, 10000, 20000)  # far enough apart on the mel axis to read


def log_mel_to_db(mel: np.ndarray, floor_db: float = -100.0) -> np.ndarray:
    """log1p(mel power), as the front end outputs it, -> mel power in dB (10 log10), floored at ``floor_db``."""
    power = np.expm1(np.asarray(mel, dtype=np.float64).clip(min=0.0))
    return 10.0 * np.log10(np.maximum(power, 10.0 ** (floor_db / 10.0)))


def mel_band_centres(cfg: FrontEndConfig) -> np.ndarray:
    """The centre frequency (Hz) of each mel band: the centroid of its filter."""
    weights = mel_filterbank(cfg)  # (n_mels, n_fft // 2 + 1)
    freqs = np.linspace(0, cfg.sample_rate / 2, weights.shape[1])
    return (weights @ freqs) / np.maximum(weights.sum(axis=1), 1e-12)


def plot_log_mels(
    mels: Sequence[np.ndarray],
    titles: Sequence[str],
    path: str | Path,
    cfg: FrontEndConfig | None = None,
    columns: int = 2,
    top_db: float = 80.0,
) -> Path:
    """Write a grid of log-mel spectrograms (each (n_mels, T) or (1, n_mels, T), the front end's log1p of mel
    power) to the PNG ``path``. One dB scale for every panel, from the loudest bin down ``top_db``, so panels
    compare; frequency ticks in Hz at the mel bands' centres; time in seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = cfg or FrontEndConfig()
    dbs = [log_mel_to_db(np.asarray(m).reshape(np.asarray(m).shape[-2:])) for m in mels]
    if not dbs:
        raise ValueError("no spectrogram to plot")
    n_mels, n_frames = dbs[0].shape
    if n_mels != cfg.n_mels:
        raise ValueError(f"the spectrograms have {n_mels} mel bands, the front end {cfg.n_mels}")
    vmax = max(float(d.max()) for d in dbs)
    rows = -(-len(dbs) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 2.8 * rows), squeeze=False, layout="constrained")
    seconds = n_frames * cfg.hop_length / cfg.sample_rate
    centres = mel_band_centres(cfg)
    ticks = [f for f in FREQUENCY_TICKS_HZ if centres[0] <= f <= centres[-1]]
    image = None
    for ax, db, title in zip(axes.ravel(), dbs, titles, strict=False):
        image = ax.imshow(
            db, origin="lower", aspect="auto", cmap="magma", vmin=vmax - top_db, vmax=vmax,
            extent=(0.0, seconds, -0.5, n_mels - 0.5), interpolation="nearest",
        )  # fmt: skip
        ax.set_yticks(np.interp(ticks, centres, np.arange(n_mels)), [_hz_label(f) for f in ticks])
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("frequency (Hz)")
    for ax in axes.ravel()[len(dbs) :]:
        ax.axis("off")
    fig.colorbar(image, ax=axes, label=f"mel power (dB, {top_db:g} dB range)", shrink=0.9)
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _hz_label(hz: float) -> str:
    return f"{hz / 1000:g}k" if hz >= 1000 else f"{hz:g}"
