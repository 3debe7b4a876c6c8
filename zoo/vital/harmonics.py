"""Harmonic amplitudes and phases of a pitched sound, frame by frame, and a fine f0.

A frame is 8 periods of the sound (at least 1024 samples) under a 4-term Blackman-Harris window (sidelobes
92 dB down; its main lobe, 4 bins either side, stays clear of the next harmonic 8 bins away), rotated so
the window's centre is time 0 (zero phase) and zero-padded 4x. Harmonic k is the largest spectral peak
within 0.3 f0 of k f0, so slightly stretched partials (strings) are still found; the amplitude of a
sinusoid reads as itself (the spectrum is scaled by 2 / sum(window)).
"""

from __future__ import annotations

import math

import numpy as np

from zoo.audio import SAMPLE_RATE
from zoo.vital.wavetable import WAVE_SIZE

WINDOW_PERIODS = 8
MIN_WINDOW = 1024
SEARCH_WIDTH = 0.3  # of f0, either side of each harmonic


def harmonic_limit(f0_hz: float, sample_rate: int = SAMPLE_RATE) -> int:
    """How many harmonics of ``f0_hz`` lie below the Nyquist frequency (at most 1023, a 2048-sample cycle)."""
    return int(max(1, min(WAVE_SIZE // 2 - 1, math.floor((sample_rate / 2 - 1e-6) / f0_hz))))


def _harmonic_peaks(
    audio: np.ndarray, f0_hz: float, centres: np.ndarray, n_harmonics: int, sample_rate: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(spectra (K, n_fft/2 + 1), peak bins (K, H), their values (K, H), Hz per bin) of frames of 8 periods."""
    from scipy.signal.windows import blackmanharris

    audio = np.asarray(audio, dtype=np.float64)
    centres = np.atleast_1d(np.asarray(centres, dtype=np.int64))
    length = max(MIN_WINDOW, 2 * round(WINDOW_PERIODS * sample_rate / f0_hz / 2))
    n_fft = 4 << (length - 1).bit_length()
    window = blackmanharris(length, sym=False)
    half = length // 2
    padded = np.pad(audio, (half, half))
    frames = np.stack([padded[c : c + length] for c in np.clip(centres, 0, len(audio))]) * window  # (K, L)
    rotated = np.zeros((len(centres), n_fft))
    rotated[:, : length - half] = frames[:, half:]  # zero phase: the window's centre at index 0
    rotated[:, n_fft - half :] = frames[:, :half]
    spectra = np.fft.rfft(rotated, axis=1) * (2.0 / window.sum())  # (K, n_fft/2 + 1)
    per_bin = sample_rate / n_fft
    width = max(1, int(SEARCH_WIDTH * f0_hz / per_bin))
    expected = np.round(np.arange(1, n_harmonics + 1) * f0_hz / per_bin).astype(np.int64)
    bins = np.clip(expected[:, None] + np.arange(-width, width + 1), 1, n_fft // 2 - 1)  # (H, W)
    best = np.abs(spectra[:, bins]).argmax(axis=2)  # (K, H)
    peak_bins = bins[np.arange(n_harmonics)[None, :], best]
    return spectra, peak_bins, np.take_along_axis(spectra, peak_bins, axis=1), per_bin


def harmonics_at(
    audio: np.ndarray,
    f0_hz: float,
    centres: np.ndarray,
    n_harmonics: int | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> tuple[np.ndarray, np.ndarray]:
    """Amplitudes and phases of harmonics 1..H of ``f0_hz`` in frames centred on samples ``centres``.

    Returns (amplitudes (K, H), phases (K, H)): a sinusoid ``a cos(2 pi f t + phi)`` with ``t = 0`` at a
    frame's centre reads ``a`` and ``phi``. H defaults to :func:`harmonic_limit`."""
    n_harmonics = n_harmonics or harmonic_limit(f0_hz, sample_rate)
    _, _, peaks, _ = _harmonic_peaks(audio, f0_hz, centres, n_harmonics, sample_rate)
    return np.abs(peaks), np.angle(peaks)


def refine_f0(
    audio: np.ndarray, f0_hz: float, centres: np.ndarray, n_harmonics: int = 8, sample_rate: int = SAMPLE_RATE
) -> float:
    """A finer f0 than YIN's (whose lag resolution costs high notes several cents): the power-weighted fit
    ``f_k = k f0`` to the first harmonics' spectral peaks (parabolic interpolation of log magnitude) in
    frames centred on ``centres``."""
    n_harmonics = min(n_harmonics, harmonic_limit(f0_hz, sample_rate))
    spectra, bins, peaks, per_bin = _harmonic_peaks(audio, f0_hz, centres, n_harmonics, sample_rate)
    rows = np.arange(len(spectra))[:, None]
    lo, mid, hi = (np.log(np.abs(spectra[rows, bins + d]) + 1e-20) for d in (-1, 0, 1))
    denom = lo - 2 * mid + hi
    shift = np.where(denom < 0, 0.5 * (lo - hi) / np.where(denom < 0, denom, -1.0), 0.0)
    freqs = (bins + np.clip(shift, -0.5, 0.5)) * per_bin  # (K, H)
    k = np.arange(1, n_harmonics + 1)[None, :]
    weight = np.abs(peaks) ** 2
    refined = float((weight * freqs * k).sum() / max(float((weight * k * k).sum()), 1e-30))
    return refined if abs(12 * math.log2(refined / f0_hz)) < 0.5 else f0_hz


def harmonic_to_noise_db(audio: np.ndarray, f0_hz: float, centres: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """How harmonic the frames centred on ``centres`` are at ``f0_hz``: the power at the harmonics' peaks
    over the power half-way between them, in dB, the median over the frames. White noise reads about 3 dB
    (each peak is the largest of several bins), a held synth tone 30 dB and more."""
    n_harmonics = harmonic_limit(f0_hz, sample_rate)
    if n_harmonics < 2:
        return 0.0
    spectra, _, peaks, per_bin = _harmonic_peaks(audio, f0_hz, centres, n_harmonics, sample_rate)
    between = np.round((np.arange(1, n_harmonics) + 0.5) * f0_hz / per_bin).astype(np.int64)
    valleys = np.abs(spectra[:, between]) ** 2  # (K, H - 1)
    ratio = (np.abs(peaks[:, :-1]) ** 2).sum(axis=1) / np.maximum(valleys.sum(axis=1), 1e-30)
    return float(np.median(10 * np.log10(np.maximum(ratio, 1e-30))))
