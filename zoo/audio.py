"""The one audio front end: decoding, resampling, loudness normalisation and the log-mel spectrogram.

Dataset precompute, training, the exported graph and the server all call into this module, so the
features a model sees in training are the features it sees in production.

Log-mel: 44.1 kHz, 2.0 s (88200 samples), n_fft 2048, hop 512, Hann window, zero padding of n_fft/2 on
both sides ("centered" frames, 173 of them), power spectrum, 128 Slaney mel bands from 0 Hz to Nyquist
(Slaney area normalisation, as librosa's default), then ``log1p``. Output (B, 1, 128, 173).

Two formulations of the same STFT, held equal by tests:

- ``stft="fft"`` (default): ``torch.stft``, an FFT. Used in eager code (dataset precompute, training,
  evaluation), where it is about 70x fewer FLOPs than a dense DFT.
- ``stft="factored"``: the DFT split once, Cooley-Tukey style (n_fft = P x Q, 32 x 64 for 2048): a dense
  P-point DFT, twiddle factors, a dense Q-point DFT, each a MatMul; frames are cut by :func:`frame_signal`.
  Used inside exported graphs (``zoo.waveform_model.WaveformModel``): it exports to TorchScript and ONNX as
  plain MatMul, Mul, Slice, Concat and Transpose ops, which every ONNX Runtime execution provider runs (the CUDA
  provider has no DFT kernel, and the CPU DFT is slow for short frames), at 0.19 GFLOP per clip (mel
  projection included).

Loudness normalisation has one definition, :func:`normalize_loudness_tensor` (torch): the exported graph runs
it and :func:`normalize_loudness` (numpy, refuses silence) calls it. Silence has one threshold,
``SILENCE_RMS_DB``, and one test, :func:`is_silent`.
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
# A clip whose RMS level is under SILENCE_RMS_DB is silent: there is nothing to normalise, match or learn from.
SILENCE_RMS_DB = -70.0
# Renders kept as training or parity clips must be this far above silence (-60 dBFS).
AUDIBLE_MARGIN_DB = 10.0

STFT_FORMULATIONS = ("fft", "factored")


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


def hann_window(n_fft: int) -> np.ndarray:
    """Periodic Hann window of ``n_fft`` samples (as ``torch.hann_window``), float64: every STFT of the zoo uses it."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)


def frame_signal(waveform: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """Centred frames: (B, N) -> (B, T, n_fft) with T = N // hop + 1, frame t centred on sample t * hop (zero
    padding of n_fft / 2 on both sides, as ``torch.stft(center=True, pad_mode="constant")``).

    Frames are cut by slicing hop-sized blocks, so an exported graph holds plain Slice and Concat ops;
    ``n_fft`` must be a multiple of ``hop``. The front end's factored DFT and ``zoo.notes`` frame with it."""
    if n_fft % hop:
        raise ValueError(f"framing needs n_fft to be a multiple of the hop, got {n_fft} and {hop}")
    ratio = n_fft // hop
    n_frames = waveform.shape[-1] // hop + 1
    padded = nn.functional.pad(waveform, (n_fft // 2, n_fft // 2))
    blocks = padded[:, : (n_frames + ratio - 1) * hop].reshape(-1, n_frames + ratio - 1, hop)
    return torch.cat([blocks[:, i : i + n_frames] for i in range(ratio)], dim=-1)  # (B, T, n_fft)


class LogMelFrontEnd(nn.Module):
    """Waveform (B, n_samples) at 44.1 kHz -> log-mel (B, 1, n_mels, n_frames).

    A (n_samples,) waveform is treated as a batch of one. Shorter or longer inputs are accepted (the
    frame count follows the length); the models expect exactly ``cfg.n_samples``. ``stft`` picks the
    formulation (see the module docstring); both give the same features.
    """

    def __init__(self, cfg: FrontEndConfig | None = None, stft: str = "fft") -> None:
        super().__init__()
        if stft not in STFT_FORMULATIONS:
            raise ValueError(f"stft must be one of {', '.join(map(repr, STFT_FORMULATIONS))}, got {stft!r}")
        self.cfg = cfg or FrontEndConfig()
        self.stft = stft
        n_fft = self.cfg.n_fft
        window = hann_window(n_fft)
        self.register_buffer("window", torch.from_numpy(window).float(), persistent=False)
        self.register_buffer("mel_fb", torch.from_numpy(mel_filterbank(self.cfg)).float(), persistent=False)
        self.n_fft = n_fft
        self.n_bins = n_fft // 2 + 1
        self.hop = self.cfg.hop_length
        self.power = self.cfg.power
        if stft == "factored":
            self._init_factored(window)

    def _power_spectrum(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, N) -> (B, n_bins, T) power spectrum of centred, zero-padded Hann frames."""
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

    def _init_factored(self, window: np.ndarray) -> None:
        """Constants of the factored DFT: n = Q p + q (frame viewed as (P, Q)), k = kp + P kq, so that
        X[kp + P kq] = sum_q W_Q^(q kq) W_N^(q kp) sum_p x[p, q] W_P^(p kp)."""
        n_fft, hop = self.n_fft, self.cfg.hop_length
        if n_fft % hop:
            raise ValueError(f"stft='factored' needs n_fft to be a multiple of hop_length, got {n_fft} and {hop}")
        p = max(d for d in range(1, math.isqrt(n_fft) + 1) if n_fft % d == 0)
        q = n_fft // p
        k = (self.n_bins - 1) // p + 1  # kq values needed to reach bin n_fft / 2
        kp, qq = np.arange(p), np.arange(q)
        # Hann window in the (Q, P) layout the first stage works in.
        self.register_buffer("window_qp", torch.from_numpy(window.reshape(p, q).T.copy()).float(), persistent=False)
        angle = 2 * np.pi * np.outer(kp, kp) / p  # (p, kp)
        stage1 = np.concatenate([np.cos(angle), -np.sin(angle)], axis=1)  # (P, 2P): real input -> [re | im]
        self.register_buffer("dft_p", torch.from_numpy(stage1).float(), persistent=False)
        twiddle = -2 * np.pi * np.outer(kp, qq) / n_fft  # (P, Q): W_N^(q kp)
        self.register_buffer("twiddle_re", torch.from_numpy(np.cos(twiddle)).float(), persistent=False)
        self.register_buffer("twiddle_im", torch.from_numpy(np.sin(twiddle)).float(), persistent=False)
        angle = -2 * np.pi * np.outer(qq, np.arange(k)) / q  # (Q, K): W_Q^(q kq)
        re, im = np.cos(angle), np.sin(angle)
        stage2 = np.block([[re, im], [-im, re]])  # [z_re | z_im] (.., 2Q) @ (2Q, 2K) -> [X_re | X_im]
        self.register_buffer("dft_q", torch.from_numpy(stage2).float(), persistent=False)
        # The mel filterbank with its rows in (kp, kq) order; bins past n_fft / 2 get zero weight.
        bins = (kp[:, None] + p * np.arange(k)[None, :]).reshape(-1)  # (P * K,)
        fb = mel_filterbank(self.cfg)  # (n_mels, n_bins)
        weights = np.where((bins < self.n_bins)[:, None], fb[:, np.minimum(bins, self.n_bins - 1)].T, 0.0)
        self.register_buffer("mel_fb_factored", torch.from_numpy(weights).float(), persistent=False)
        self.factors = (p, q, k)

    def _factored_mel(self, waveform: torch.Tensor) -> torch.Tensor:
        """(B, N) -> mel power (B, n_mels, T) through the factored DFT."""
        p, q, k = self.factors
        frames = frame_signal(waveform, self.n_fft, self.hop)  # (B, T, n_fft)
        n_frames = frames.shape[1]
        x = frames.reshape(-1, n_frames, p, q).transpose(-1, -2) * self.window_qp  # (B, T, Q, P)
        y = torch.matmul(x, self.dft_p).transpose(-1, -2)  # (B, T, 2P, Q): P-point DFTs over p
        y_re, y_im = y[:, :, :p], y[:, :, p:]  # (B, T, P, Q), indexed [kp, q]
        z_re = y_re * self.twiddle_re - y_im * self.twiddle_im
        z_im = y_re * self.twiddle_im + y_im * self.twiddle_re
        spec = torch.matmul(torch.cat([z_re, z_im], dim=-1), self.dft_q)  # (B, T, P, 2K): Q-point DFTs over q
        power = spec[..., :k].square() + spec[..., k:].square()  # (B, T, P, K)
        if self.power != 2.0:
            power = power.pow(self.power / 2.0)
        mel = torch.matmul(power.flatten(-2), self.mel_fb_factored)  # (B, T, n_mels)
        return mel.transpose(1, 2)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        if waveform.dim() == 1:
            waveform = waveform.unsqueeze(0)
        if self.stft == "factored":
            return torch.log1p(self._factored_mel(waveform)).unsqueeze(1)  # (B, 1, n_mels, T)
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


def is_silent(audio: np.ndarray, margin_db: float = 0.0) -> bool:
    """True when the clip's RMS level is under ``SILENCE_RMS_DB + margin_db`` (digital silence included).

    The one silence test: requests, note windows and loudness normalisation refuse silent clips (margin 0);
    dataset and parity renders must clear ``AUDIBLE_MARGIN_DB`` more to be kept."""
    return rms_db(audio) < SILENCE_RMS_DB + margin_db


def check_not_silent(audio: np.ndarray) -> None:
    """Raise :class:`AudioDecodeError`, with the clip's level, when :func:`is_silent` says it is silent."""
    if is_silent(audio):
        raise AudioDecodeError(f"the audio is silent (RMS {rms_db(audio):.1f} dBFS, below {SILENCE_RMS_DB:.0f} dBFS)")


def normalize_loudness_tensor(
    waveform: torch.Tensor, target_db: float = TARGET_RMS_DB, peak: float = PEAK_LIMIT
) -> torch.Tensor:
    """Scale each clip of (..., N) to ``target_db`` RMS, then down so that no sample exceeds ``peak``.

    The one definition of loudness normalisation: the exported graph runs it on its input and
    :func:`normalize_loudness` calls it. It never refuses (a graph cannot): silent input stays near zero.
    Normalising a normalised clip changes it by float rounding only."""
    rms = waveform.square().mean(dim=-1, keepdim=True).sqrt().clamp_min(1e-12)  # (..., 1)
    x = waveform * (10 ** (target_db / 20) / rms)
    top = x.abs().amax(dim=-1, keepdim=True)
    return x * torch.clamp(peak / top.clamp_min(1e-12), max=1.0)


def normalize_loudness(audio: np.ndarray, target_db: float = TARGET_RMS_DB, peak: float = PEAK_LIMIT) -> np.ndarray:
    """:func:`normalize_loudness_tensor` on a numpy clip (the whole array is one clip), float32.

    Normalises stored dataset audio, previews and evaluation clips. Raises :class:`AudioDecodeError` for a
    silent clip (quieter than ``SILENCE_RMS_DB``: there is nothing to match)."""
    check_not_silent(audio)
    x = torch.from_numpy(np.array(audio, dtype=np.float32).reshape(-1))  # a copy: the caller's array stays
    return normalize_loudness_tensor(x, target_db, peak).numpy().reshape(np.shape(audio))


def fit_length(audio: np.ndarray, n_samples: int = CLIP_SAMPLES) -> np.ndarray:
    """Cut or zero-pad the end of a clip to exactly ``n_samples``."""
    if audio.shape[-1] >= n_samples:
        return audio[..., :n_samples]
    pad = [(0, 0)] * (audio.ndim - 1) + [(0, n_samples - audio.shape[-1])]
    return np.pad(audio, pad)
