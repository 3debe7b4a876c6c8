"""Multi-scale spectral distance: the project's headline measure of how alike two sounds are.

Mean over FFT sizes 2048, 1024, 512, 256, 128, 64 (Hann window, 75 % overlap) of the mean absolute
difference between log(|STFT| + 1e-5) of the two clips, computed on the mono mix after both clips are
loudness-normalised by ``zoo.audio.normalize_loudness``. 0 means identical spectra; larger is further.

:func:`mfcc_distance` is a second, independent measure for what optimises the first (the preset search):
the mean Euclidean distance between the frames' 20 MFCCs (librosa's defaults: 2048-point frames, hop 512,
128 Slaney mel bands, power in dB clipped 80 dB under the peak, orthonormal DCT-II), after the same
loudness normalisation.
"""

from __future__ import annotations

import numpy as np
import torch

from zoo.audio import FrontEndConfig, mel_filterbank, normalize_loudness

FFT_SIZES = (2048, 1024, 512, 256, 128, 64)
LOG_EPS = 1e-5


def _log_mag(x: torch.Tensor, n_fft: int) -> np.ndarray:
    """log(|STFT| + 1e-5) (bins, frames), float32. The magnitude and log run in numpy: torch's complex ``abs``
    on the STFT's strided output is several times slower on a CPU."""
    window = torch.hann_window(n_fft, dtype=x.dtype)
    spec = torch.stft(x, n_fft, hop_length=n_fft // 4, window=window, center=True, return_complex=True).numpy()
    mag = np.abs(spec)
    mag += LOG_EPS
    return np.log(mag, out=mag)


def _mono(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x.mean(axis=0) if x.ndim == 2 else x


def _matched_pair(a: np.ndarray, b: np.ndarray, normalize: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Mono mixes cut to the shorter length, loudness-normalised when asked: two 1-D tensors."""
    a, b = _mono(a), _mono(b)
    n = min(a.shape[-1], b.shape[-1])
    a, b = a[:n], b[:n]
    if normalize:
        a, b = normalize_loudness(a), normalize_loudness(b)
    return torch.from_numpy(np.ascontiguousarray(a)), torch.from_numpy(np.ascontiguousarray(b))


def multiscale_spectral_distance(a: np.ndarray, b: np.ndarray, normalize: bool = True) -> float:
    """Distance between two clips at the same sample rate; mono (n,) or (channels, n) arrays.

    The clips are cut to the shorter length. With ``normalize`` both are loudness-normalised first
    (a silent clip raises ``AudioDecodeError``)."""
    ta, tb = _matched_pair(a, b, normalize)
    return _distance([_log_mag(ta, s) for s in FFT_SIZES], tb)


def _distance(reference: list[np.ndarray], tb: torch.Tensor) -> float:
    dists = []
    for ref, size in zip(reference, FFT_SIZES, strict=True):
        diff = _log_mag(tb, size)
        diff -= ref
        dists.append(np.abs(diff, out=diff).mean(dtype=np.float64))
    return float(np.mean(dists))


class SpectralReference:
    """One clip's side of :func:`multiscale_spectral_distance`, computed once, for a clip compared with many
    others (a search's target): ``SpectralReference(a).distance(b) == multiscale_spectral_distance(a, b)``
    at half the STFTs. Raises ``AudioDecodeError`` for a silent clip when ``normalize``."""

    def __init__(self, clip: np.ndarray, normalize: bool = True) -> None:
        clip = _mono(clip)
        self.clip = normalize_loudness(clip) if normalize else clip
        self.normalize = normalize
        t = torch.from_numpy(np.array(self.clip, dtype=np.float32))
        self._log_mags = [_log_mag(t, s) for s in FFT_SIZES]

    def distance(self, other: np.ndarray) -> float:
        """The distance of ``other`` to this clip (see :func:`multiscale_spectral_distance`)."""
        b = _mono(other)
        if b.shape[-1] != self.clip.shape[-1]:  # cut to the shorter one: the reference does not apply
            return multiscale_spectral_distance(self.clip, b, self.normalize)
        b = normalize_loudness(b) if self.normalize else b
        return _distance(self._log_mags, torch.from_numpy(np.ascontiguousarray(b)))


N_MFCC = 20


def mfcc(audio: torch.Tensor, n_mfcc: int = N_MFCC) -> torch.Tensor:
    """MFCCs of a 44.1 kHz mono clip, as ``librosa.feature.mfcc`` computes them by default: (n_mfcc, frames)."""
    cfg = FrontEndConfig()
    window = torch.hann_window(cfg.n_fft, dtype=torch.float64)
    spec = torch.stft(
        audio.double(), cfg.n_fft, cfg.hop_length, window=window, center=True, pad_mode="constant", return_complex=True
    )
    mel = torch.from_numpy(mel_filterbank(cfg)) @ spec.abs().square()  # (128, frames)
    db = 10.0 * torch.log10(mel.clamp_min(1e-10))
    db = torch.maximum(db, db.max() - 80.0)
    n = db.shape[0]
    k = torch.arange(n, dtype=torch.float64)
    dct = torch.cos(torch.pi / n * (k[None, :] + 0.5) * k[:n_mfcc, None]) * (2.0 / n) ** 0.5  # orthonormal DCT-II
    dct[0] /= 2.0**0.5
    return dct @ db


def mfcc_distance(a: np.ndarray, b: np.ndarray, normalize: bool = True) -> float:
    """Mean over frames of the Euclidean distance between the two clips' MFCC vectors (see the module doc);
    same conventions as :func:`multiscale_spectral_distance`."""
    ta, tb = _matched_pair(a, b, normalize)
    return float((mfcc(ta) - mfcc(tb)).norm(dim=0).mean())
