"""The one audio front end: decoding, resampling, loudness normalisation and the log-mel spectrogram.

Dataset precompute, training, the exported graph and the server all call into this module, so the
features a model sees in training are the features it sees in production.

Log-mel: 44.1 kHz, 2.0 s (88200 samples), n_fft 2048, hop 512, Hann window, zero padding of n_fft/2 on
both sides ("centered" frames, 173 of them), power spectrum, 128 Slaney mel bands from 0 Hz to Nyquist
(Slaney area normalisation, as librosa's default), then ``log1p``. Output (B, 1, 128, 173).

Two formulations of the same STFT, held equal by a test:

- ``stft="fft"`` (default): ``torch.stft``, an FFT. Used in eager code (dataset precompute, training,
  ``zoo predict``), where it is about 70x fewer FLOPs than the dense DFT.
- ``stft="conv"``: a Conv1d over a windowed Fourier basis. Used inside exported graphs: it exports to
  TorchScript and ONNX as a plain Conv, which every ONNX Runtime execution provider runs (the CUDA
  provider has no DFT kernel, and the CPU DFT is slow for short frames).
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from torch import nn

from zoo.errors import AudioDecodeError

SAMPLE_RATE = 44100
CLIP_SECONDS = 2.0
CLIP_SAMPLES = int(SAMPLE_RATE * CLIP_SECONDS)  # 88200

# Loudness target of every clip a model sees (stored dataset audio and requests alike).
TARGET_RMS_DB = -20.0
PEAK_LIMIT = 0.99
SILENCE_RMS_DB = -70.0


@dataclass(frozen=True)
class FrontEndConfig:
    """Everything that defines the features; stored in checkpoints, HDF5 files and artifact cards."""

    sample_rate: int = SAMPLE_RATE
    n_samples: int = CLIP_SAMPLES
    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float | None = None  # None: Nyquist
    power: float = 2.0
    log: str = "log1p"

    @property
    def n_frames(self) -> int:
        return self.n_samples // self.hop_length + 1  # centered frames: 173

    @property
    def output_shape(self) -> tuple[int, int, int]:
        return (1, self.n_mels, self.n_frames)

    def to_dict(self) -> dict:
        return asdict(self)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    mel = hz / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    log_region = hz >= min_log_hz
    mel[log_region] = min_log_mel + np.log(hz[log_region] / min_log_hz) / logstep
    return mel


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp = 200.0 / 3
    hz = f_sp * mel
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    log_region = mel >= min_log_mel
    hz[log_region] = min_log_hz * np.exp(logstep * (mel[log_region] - min_log_mel))
    return hz


def mel_filterbank(cfg: FrontEndConfig) -> np.ndarray:
    """Triangular Slaney-normalised mel filters, shape (n_mels, n_fft // 2 + 1)."""
    f_max = cfg.f_max if cfg.f_max is not None else cfg.sample_rate / 2
    fft_freqs = np.linspace(0, cfg.sample_rate / 2, cfg.n_fft // 2 + 1)
    mel_pts = np.linspace(_hz_to_mel(np.array([cfg.f_min]))[0], _hz_to_mel(np.array([f_max]))[0], cfg.n_mels + 2)
    hz_pts = _mel_to_hz(mel_pts)
    widths = np.diff(hz_pts)
    ramps = hz_pts[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (hz_pts[2:] - hz_pts[:-2]))[:, None]  # equal area per filter
    return weights


class LogMelFrontEnd(nn.Module):
    """Waveform (B, n_samples) at 44.1 kHz -> log-mel (B, 1, n_mels, n_frames).

    A (n_samples,) waveform is treated as a batch of one. Shorter or longer inputs are accepted (the
    frame count follows the length); the models expect exactly ``cfg.n_samples``. ``stft`` picks the
    formulation (see the module docstring); both give the same features.
    """

    def __init__(self, cfg: FrontEndConfig | None = None, stft: str = "fft") -> None:
        super().__init__()
        if stft not in ("fft", "conv"):
            raise ValueError(f"stft must be 'fft' or 'conv', got {stft!r}")
        self.cfg = cfg or FrontEndConfig()
        self.stft = stft
        n_fft = self.cfg.n_fft
        n_bins = n_fft // 2 + 1
        # Periodic Hann window, as torch.hann_window / scipy.signal.get_window("hann").
        window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
        self.register_buffer("window", torch.from_numpy(window).float(), persistent=False)
        if stft == "conv":
            k = np.arange(n_bins)[:, None] * np.arange(n_fft)[None, :]
            angle = 2 * np.pi * k / n_fft
            basis = np.concatenate([np.cos(angle) * window, -np.sin(angle) * window])  # (2 * n_bins, n_fft)
            self.register_buffer("fourier_basis", torch.from_numpy(basis[:, None, :]).float(), persistent=False)
        self.register_buffer("mel_fb", torch.from_numpy(mel_filterbank(self.cfg)).float(), persistent=False)
        self.n_fft = n_fft
        self.n_bins = n_bins
        self.pad = n_fft // 2
        self.hop = self.cfg.hop_length
        self.power = self.cfg.power

    def _power_spectrum(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, N) -> (B, n_bins, T) power spectrum of centred, zero-padded Hann frames."""
        if self.stft == "conv":
            spec = nn.functional.conv1d(waveform.unsqueeze(1), self.fourier_basis, stride=self.hop, padding=self.pad)
            real, imag = spec[:, : self.n_bins], spec[:, self.n_bins :]
            return real * real + imag * imag
        spec = torch.stft(
            waveform,
            self.n_fft,
            hop_length=self.hop,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        return spec.real.square() + spec.imag.square()

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if waveform.dim() == 1:
            waveform = waveform.unsqueeze(0)
        power = self._power_spectrum(waveform)  # (B, K, T)
        if self.power != 2.0:
            power = power.pow(self.power / 2.0)
        mel = torch.matmul(self.mel_fb, power)  # (B, n_mels, T)
        return torch.log1p(mel).unsqueeze(1)  # (B, 1, n_mels, T)


# --------------------------------------------------------------------------------------------------
# Decoding and loudness


AudioSource = bytes | bytearray | str | Path | BinaryIO


def load_audio(source: AudioSource, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode WAV, FLAC or OGG from bytes, a path or a file object -> mono float32 at ``sample_rate``.

    Channels are averaged; any input rate is resampled with libsoxr (high quality).
    Raises :class:`AudioDecodeError` for empty, corrupt, non-audio or non-finite input.
    """
    import soundfile as sf
    import soxr

    if isinstance(source, (bytes, bytearray)):
        if len(source) == 0:
            raise AudioDecodeError("the audio is empty (0 bytes)")
        handle: str | BinaryIO = io.BytesIO(bytes(source))
        label = "the uploaded audio"
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise AudioDecodeError(f"no such audio file: {path}")
        if path.stat().st_size == 0:
            raise AudioDecodeError(f"the audio file is empty (0 bytes): {path}")
        handle, label = str(path), str(path)
    else:
        handle, label = source, "the audio"
    try:
        data, rate = sf.read(handle, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise AudioDecodeError(
            f"{label} could not be decoded as WAV, FLAC or OGG ({str(e).strip() or type(e).__name__})"
        ) from None
    if data.shape[0] == 0:
        raise AudioDecodeError(f"{label} contains no samples")
    if not np.isfinite(data).all():
        raise AudioDecodeError(f"{label} contains NaN or infinite samples")
    mono = data.mean(axis=1, dtype=np.float32)
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ").astype(np.float32, copy=False)
    return np.ascontiguousarray(mono, dtype=np.float32)


def rms_db(audio: np.ndarray) -> float:
    """Root-mean-square level in dBFS (-inf for digital silence)."""
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))) if audio.size else 0.0
    return 20 * math.log10(rms) if rms > 0 else -math.inf


def normalize_loudness(audio: np.ndarray, target_db: float = TARGET_RMS_DB, peak: float = PEAK_LIMIT) -> np.ndarray:
    """Scale a clip to ``target_db`` RMS, then down so no sample exceeds ``peak``.

    The same function normalises stored dataset audio and incoming requests. Raises
    :class:`AudioDecodeError` for a clip quieter than ``SILENCE_RMS_DB`` (there is nothing to match).
    """
    level = rms_db(audio)
    if level < SILENCE_RMS_DB:
        raise AudioDecodeError(f"the audio is silent (RMS {level:.1f} dBFS, below {SILENCE_RMS_DB:.0f} dBFS)")
    out = audio * np.float32(10 ** ((target_db - level) / 20))
    top = float(np.max(np.abs(out)))
    if top > peak:
        out = out * np.float32(peak / top)
    return out.astype(np.float32, copy=False)


def fit_length(audio: np.ndarray, n_samples: int = CLIP_SAMPLES) -> np.ndarray:
    """Cut or zero-pad the end of a clip to exactly ``n_samples``."""
    if audio.shape[-1] >= n_samples:
        return audio[..., :n_samples]
    pad = [(0, 0)] * (audio.ndim - 1) + [(0, n_samples - audio.shape[-1])]
    return np.pad(audio, pad)
