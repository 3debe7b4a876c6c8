"""Multi-scale spectral distance: the project's headline measure of how alike two sounds are.

Mean over FFT sizes 2048, 1024, 512, 256, 128, 64 (Hann window, 75 % overlap) of the mean absolute
difference between log(|STFT| + 1e-5) of the two clips, computed on the mono mix after both clips are
loudness-normalised by ``zoo.audio.normalize_loudness``. 0 means identical spectra; larger is further.
"""

from __future__ import annotations

import numpy as np
import torch

from zoo.audio import normalize_loudness

FFT_SIZES = (2048, 1024, 512, 256, 128, 64)
LOG_EPS = 1e-5


def _log_mag(x: torch.Tensor, n_fft: int) -> torch.Tensor:
    window = torch.hann_window(n_fft, dtype=x.dtype)
    spec = torch.stft(x, n_fft, hop_length=n_fft // 4, window=window, center=True, return_complex=True)
    return torch.log(spec.abs() + LOG_EPS)


def multiscale_spectral_distance(a: np.ndarray, b: np.ndarray, normalize: bool = True) -> float:
    """Distance between two clips at the same sample rate; mono (n,) or (channels, n) arrays.

    The clips are cut to the shorter length. With ``normalize`` both are loudness-normalised first
    (a silent clip raises ``AudioDecodeError``)."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    a = a.mean(axis=0) if a.ndim == 2 else a
    b = b.mean(axis=0) if b.ndim == 2 else b
    n = min(a.shape[-1], b.shape[-1])
    a, b = a[:n], b[:n]
    if normalize:
        a, b = normalize_loudness(a), normalize_loudness(b)
    ta, tb = torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(np.ascontiguousarray(b))
    dists = [(_log_mag(ta, s) - _log_mag(tb, s)).abs().mean() for s in FFT_SIZES]
    return float(torch.stack(dists).mean())
