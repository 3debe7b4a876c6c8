"""Finding the main note of a recording and cutting the 2 s clip a model sees.

A real recording is rarely one clean note starting at sample 0: it is a phrase of several notes, with
silence, overlapping release tails and legato changes. The training clips are single notes that start
at sample 0 and last 2 s, so before a model sees a recording:

1. **Onsets.** A 2048-point STFT (hop 512, ~11.6 ms) gives the spectral flux (sum of the positive change of
   the log-compressed magnitude between frames). Peaks of the flux above a moving median threshold are
   onsets, at least 50 ms apart; the first frame where the level rises out of silence is one too.
   Each onset is refined to a sample by the rise of a 5.8 ms RMS envelope around it.
2. **Segments.** A note lasts from its onset to the next onset (or to where it falls 40 dB below its
   peak). Consecutive segments at the same pitch with no silence between them are one note (tremolo and
   wobble make flux peaks too). A note's prominence is its summed frame RMS over its first 2 s: longer
   and louder notes win.
3. **Pitch.** YIN (de Cheveigné & Kawahara 2002: cumulative mean normalised difference, absolute
   threshold 0.15, parabolic interpolation) on 46 ms frames of the sustained part of the chosen note
   (after a 30 ms attack, up to 1 s); the median of the voiced frames' f0 is the note. Unpitched sounds
   (noise, drums) are reported as ``pitched=False`` with the nearest MIDI note of the best guess.
4. **Window.** 2 s starting at the onset; when another note starts inside the window, the clip is faded
   out over 10 ms there and the rest is zeroed (training clips hold one note).

:func:`cut_note_clip` does all four and refuses a silent window; the server and ``zoo predict`` call it and
feed the clip to the exported graph, which normalises its loudness (``zoo.audio.normalize_loudness_tensor``).
:func:`prepare_note_clip` also normalises it, for eager models and training-side tools.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from zoo.audio import (
    CLIP_SAMPLES,
    SAMPLE_RATE,
    SILENCE_RMS_DB,
    check_not_silent,
    fit_length,
    frame_signal,
    hann_window,
    normalize_loudness,
)
from zoo.errors import AudioDecodeError

N_FFT = 2048
HOP = 512
FLUX_LAG = 2
MIN_ONSET_GAP_S = 0.05
ACTIVE_RANGE_DB = 40.0  # a frame counts as sounding within this range of the loudest frame
ATTACK_SKIP_S = 0.03
PITCH_SPAN_S = 1.0
YIN_WINDOW = 2048
YIN_THRESHOLD = 0.15
F_MIN, F_MAX = 30.0, 4200.0
ISOLATION_FADE_S = 0.01
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@dataclass(frozen=True)
class Note:
    """The main note of a recording. Samples are at the recording's rate (44.1 kHz after ``load_audio``)."""

    onset_sample: int
    end_sample: int
    midi: int
    frequency_hz: float
    pitched: bool
    confidence: float  # 0..1: share of voiced frames times their periodicity
    notes_found: int
    sample_rate: int = SAMPLE_RATE

    @property
    def name(self) -> str:
        """Scientific pitch name with middle C = C4 (MIDI 60)."""
        return f"{NOTE_NAMES[self.midi % 12]}{self.midi // 12 - 1}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(
            name=self.name,
            onset_seconds=round(self.onset_sample / self.sample_rate, 4),
            duration_seconds=round((self.end_sample - self.onset_sample) / self.sample_rate, 4),
            frequency_hz=round(self.frequency_hz, 3),
            confidence=round(self.confidence, 3),
        )
        return d


def hz_to_midi(hz: float) -> int:
    """Nearest MIDI note of a frequency, clamped to 0..127."""
    return int(min(127, max(0, round(69 + 12 * math.log2(hz / 440.0)))))


# --------------------------------------------------------------------------------------------------
# Frames, onsets, segments


def _spectral_flux_and_level(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flux (T,), frame RMS in dBFS (T,)) for centred 2048/512 frames (``zoo.audio.frame_signal``)."""
    frames = frame_signal(torch.from_numpy(np.array(audio, dtype=np.float32))[None], N_FFT, HOP)[0].numpy()  # (T, 2048)
    level = 10 * np.log10(np.mean(np.square(frames, dtype=np.float64), axis=1) + 1e-20)
    peak = float(np.max(np.abs(audio))) or 1.0
    window = (hann_window(N_FFT) / peak).astype(np.float32)
    mag = np.abs(np.fft.rfft(frames * window, axis=1))  # (T, 1025)
    logmag = np.log1p(100.0 * mag)
    # SuperFlux (Boeck & Widmer 2013): compare with the frame two hops back, max-filtered over 3 bins, so
    # vibrato and the beating of low notes do not read as onsets.
    ref = np.maximum(logmag, np.maximum(np.roll(logmag, 1, axis=1), np.roll(logmag, -1, axis=1)))
    ref = np.concatenate([np.zeros((FLUX_LAG, ref.shape[1])), ref[:-FLUX_LAG]])
    return np.maximum(0.0, logmag - ref).sum(axis=1), level


def _pick_onsets(flux: np.ndarray, level: np.ndarray) -> list[int]:
    """Onset frames: flux peaks over a moving-median threshold, plus rises out of silence."""
    n = len(flux)
    gap = max(1, round(MIN_ONSET_GAP_S * SAMPLE_RATE / HOP))
    active = level > max(level.max() - ACTIVE_RANGE_DB, SILENCE_RMS_DB)
    # Floor: well above the flux of a steady note, and not so high that the burst out of silence (the
    # largest flux of all) hides the softer onsets of legato notes.
    floor = max(3.0 * float(np.median(flux[active])), 0.02 * float(flux[active].max())) if active.any() else 0.0
    half = 16  # ~190 ms each side for the moving median
    padded = np.pad(flux, half, mode="edge")
    median = np.median(np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1), axis=1)
    candidates = []
    for t in range(n):
        lo, hi = max(0, t - 3), min(n, t + 4)
        if flux[t] < flux[lo:hi].max() or flux[t] <= 1.5 * median[t] + floor:
            continue
        if not active[t : min(n, t + 4)].any():
            continue  # a flux peak in silence is noise
        candidates.append((t, flux[t]))
    # Rises out of silence are onsets even where the flux peak is weak (slow attacks).
    rises = np.flatnonzero(active & ~np.concatenate([[False], active[:-1]]))
    candidates += [(int(t), math.inf) for t in rises]
    # One onset per group of candidates closer than the gap: the rise out of silence if there is one
    # (it marks the true start), else the strongest flux peak.
    onsets: list[int] = []
    group: list[tuple[int, float]] = []
    for t, s in sorted(candidates) + [(n + gap, 0.0)]:
        if group and t - group[0][0] >= gap:
            rise = [g for g, strength in group if strength == math.inf]
            onsets.append(min(rise) if rise else max(group, key=lambda c: c[1])[0])
            group = []
        group.append((t, s))
    return onsets


def _refine_onset(audio: np.ndarray, frame: int, level: np.ndarray) -> int:
    """The sample where a note starts, near its onset frame.

    A slow attack crosses the activity threshold well after it starts, so first walk back over the frames
    where the level still falls going backwards and stays 10 dB over the floor before it. Then take the
    last point of a 5.8 ms RMS envelope under its floor plus 1 % of the way to the local peak. At a legato change
    the level barely moves: the frame's own position is kept."""
    start_frame = frame
    floor = max(float(level[max(0, frame - 86) : frame + 1].min()) + 10.0, float(level[frame]) - 60.0)
    while start_frame > 0 and level[start_frame - 1] < level[start_frame] - 0.5 and level[start_frame - 1] > floor:
        start_frame -= 1
    guess = frame * HOP
    lo, hi = max(0, start_frame * HOP - N_FFT // 2 - HOP), min(len(audio), frame * HOP + N_FFT // 2 + HOP)
    win, step = 256, 32
    region = audio[lo:hi]
    if len(region) < 2 * win:
        return guess
    env = np.sqrt(np.mean(np.lib.stride_tricks.sliding_window_view(region**2, win)[::step], axis=1))
    top = int(np.argmax(env))
    base = float(env[: top + 1].min())
    if env[top] < 2.0 * base + 1e-9:
        return guess
    below = np.flatnonzero(env[: top + 1] <= base + 0.01 * (env[top] - base))
    start = int(below[-1]) if len(below) else 0
    return lo + start * step + win // 2


def _segments(onsets: list[int], level: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) frames of every note; a note ends at the next onset or 40 dB under its peak."""
    out = []
    n = len(level)
    for i, start in enumerate(onsets):
        end = onsets[i + 1] if i + 1 < len(onsets) else n
        seg = level[start:end]
        sounding = np.flatnonzero(seg > seg.max() - ACTIVE_RANGE_DB)
        out.append((start, start + int(sounding[-1]) + 1 if len(sounding) else start + 1))
    return out


# --------------------------------------------------------------------------------------------------
# Pitch (YIN)


def yin(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, hop: int = HOP) -> tuple[np.ndarray, np.ndarray]:
    """Frame-wise YIN, frame t centred on sample t*hop: (f0 in Hz (T,), aperiodicity (T,)), T = len // hop + 1.

    Runs at half the sample rate (libsoxr), which keeps every f0 up to ``F_MAX`` and quarters the cost. The
    aperiodicity is the cumulative mean normalised difference at the chosen lag (0: perfectly periodic)."""
    import soxr

    n_frames = len(audio) // hop + 1
    rate = sample_rate // 2
    x = soxr.resample(np.asarray(audio, dtype=np.float32), sample_rate, rate).astype(np.float64)
    hop, window = hop // 2, YIN_WINDOW // 2
    tau_min, tau_max = max(2, int(rate / F_MAX)), int(math.ceil(rate / F_MIN))
    span = window + tau_max
    padded = np.pad(x, (window // 2, span + hop * n_frames))
    frames = np.lib.stride_tricks.sliding_window_view(padded, span)[::hop][:n_frames]  # (T, span)
    n_fft = 1 << (span + window - 1).bit_length()
    taus = np.arange(tau_max + 1)
    f0 = np.zeros(n_frames)
    aperiodicity = np.ones(n_frames)
    for b in range(0, n_frames, 256):
        x = frames[b : b + 256]
        # d(tau) = e(0) + e(tau) - 2 r(tau), r by FFT cross-correlation over the first `window` samples.
        cross = np.fft.irfft(np.conj(np.fft.rfft(x[:, :window], n_fft)) * np.fft.rfft(x, n_fft), n_fft)
        sq = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(x * x, axis=1)], axis=1)
        e_tau = sq[:, taus + window] - sq[:, taus]
        diff = np.maximum(sq[:, window : window + 1] + e_tau - 2 * cross[:, : tau_max + 1], 0.0)
        cmndf = np.ones_like(diff)
        cmndf[:, 1:] = diff[:, 1:] * taus[1:] / np.maximum(np.cumsum(diff[:, 1:], axis=1), 1e-12)
        d = cmndf[:, tau_min:]  # lags from tau_min
        rows = np.arange(len(d))
        below = d < YIN_THRESHOLD
        # The first dip under the threshold, followed down to its minimum; else the global minimum.
        tau = np.where(below.any(axis=1), below.argmax(axis=1), d.argmin(axis=1))
        for _ in range(d.shape[1]):
            step = (tau + 1 < d.shape[1]) & below.any(axis=1)
            step &= d[rows, np.minimum(tau + 1, d.shape[1] - 1)] < d[rows, tau]
            if not step.any():
                break
            tau = tau + step
        # Parabolic interpolation of the minimum.
        inner = (tau > 0) & (tau < d.shape[1] - 1)
        lo = d[rows, np.maximum(tau - 1, 0)]
        mid = d[rows, tau]
        hi = d[rows, np.minimum(tau + 1, d.shape[1] - 1)]
        denom = lo - 2 * mid + hi
        shift = np.where(inner & (denom > 0), 0.5 * (lo - hi) / np.where(denom > 0, denom, 1.0), 0.0)
        f0[b : b + len(d)] = rate / (tau + tau_min + shift)
        aperiodicity[b : b + len(d)] = mid
    return f0, aperiodicity


def _segment_pitch(f0: np.ndarray, aperiodicity: np.ndarray, start: int, end: int) -> tuple[float, bool, float]:
    """(f0, pitched, confidence) over the sustained part of a segment: after the attack, at most 1 s."""
    lo = min(start + round(ATTACK_SKIP_S * SAMPLE_RATE / HOP), max(start, end - 1))
    hi = max(lo + 1, min(end, lo + round(PITCH_SPAN_S * SAMPLE_RATE / HOP)))
    f, ap = f0[lo:hi], aperiodicity[lo:hi]
    voiced = ap < YIN_THRESHOLD
    if not voiced.any():
        return float(f[int(np.argmin(ap))]), False, 0.0
    hz = float(np.exp(np.median(np.log(f[voiced]))))  # median in log frequency
    return hz, bool(voiced.mean() >= 0.3), float(voiced.mean() * (1.0 - np.median(ap[voiced])))


def _merge_repeats(segments: list[tuple[int, int]], f0: np.ndarray, aperiodicity: np.ndarray) -> list[tuple[int, int]]:
    """Join a segment to the previous one when it goes on at the same pitch (within half a semitone) with no
    silence between them. Amplitude LFOs (tremolo, gating, wobble) and filter sweeps make flux peaks that
    look like onsets; cutting such a sound at one of them would leave the model a fragment. The price: a
    note re-struck at the same pitch stays part of the first strike's window."""
    merged = [segments[0]]
    for start, end in segments[1:]:
        prev_start, prev_end = merged[-1]
        a, a_pitched, _ = _segment_pitch(f0, aperiodicity, prev_start, prev_end)
        b, b_pitched, _ = _segment_pitch(f0, aperiodicity, start, end)
        same_pitch = a_pitched and b_pitched and abs(12 * math.log2(a / b)) < 0.5
        if same_pitch and prev_end >= start:
            merged[-1] = (prev_start, end)
        else:
            merged.append((start, end))
    return merged


# --------------------------------------------------------------------------------------------------
# The main note and its clip


def find_main_note(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Note:
    """Segment a mono 44.1 kHz recording into notes and return the most prominent one with its pitch.

    Raises :class:`AudioDecodeError` when the recording is silent."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or audio.size == 0:
        raise AudioDecodeError(f"expected a non-empty mono waveform, got shape {audio.shape}")
    if sample_rate != SAMPLE_RATE:
        raise ValueError(
            f"find_main_note works at {SAMPLE_RATE} Hz (zoo.audio.load_audio resamples), got {sample_rate}"
        )
    flux, level = _spectral_flux_and_level(audio)
    if level.max() < SILENCE_RMS_DB:
        raise AudioDecodeError(f"the audio is silent (loudest frame {level.max():.1f} dBFS)")
    f0, aperiodicity = yin(audio)
    segments = _merge_repeats(_segments(_pick_onsets(flux, level), level), f0, aperiodicity)
    max_frames = round(CLIP_SAMPLES / HOP)
    rms = np.power(10.0, level / 20)
    scores = [float(rms[s : min(e, s + max_frames)].sum()) for s, e in segments]
    best = int(np.argmax(scores))
    start_frame, end_frame = segments[best]

    onset = _refine_onset(audio, start_frame, level)
    if best + 1 < len(segments):
        end = max(onset + 1, _refine_onset(audio, segments[best + 1][0], level))
    else:
        end = min(len(audio), end_frame * HOP + HOP // 2)
    hz, pitched, confidence = _segment_pitch(f0, aperiodicity, start_frame, end_frame)
    return Note(
        onset_sample=int(onset),
        end_sample=int(end),
        midi=hz_to_midi(hz),
        frequency_hz=hz,
        pitched=pitched,
        confidence=confidence,
        notes_found=len(segments),
        sample_rate=sample_rate,
    )


def note_window(audio: np.ndarray, note: Note, n_samples: int = CLIP_SAMPLES, isolate: bool = True) -> np.ndarray:
    """``n_samples`` from the note's onset; with ``isolate``, silence from where the next note starts
    (10 ms fade). Zero-padded at the end when the recording is shorter."""
    clip = fit_length(np.asarray(audio[note.onset_sample : note.onset_sample + n_samples], dtype=np.float32), n_samples)
    clip = clip.copy()
    cut = note.end_sample - note.onset_sample
    if isolate and note.end_sample < len(audio) and cut < n_samples:
        fade = min(int(ISOLATION_FADE_S * note.sample_rate), cut)
        clip[cut - fade : cut] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
        clip[cut:] = 0.0
    return clip


def cut_note_clip(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, Note]:
    """A mono 44.1 kHz recording -> (the 2 s clip of its main note at its recorded level, the note).

    What the server and ``zoo predict`` feed an exported graph, which normalises the loudness itself (so the
    clip is normalised once). Raises :class:`AudioDecodeError` for a silent recording or a silent window."""
    note = find_main_note(audio, sample_rate)
    clip = note_window(audio, note)
    check_not_silent(clip)
    return clip, note


def prepare_note_clip(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, Note]:
    """A mono 44.1 kHz recording -> (the loudness-normalised 2 s clip of its main note, the note): the clip
    the training data holds, for eager models and tools (``cut_note_clip``, then ``normalize_loudness``).
    Raises :class:`AudioDecodeError` for a silent recording."""
    clip, note = cut_note_clip(audio, sample_rate)
    return normalize_loudness(clip), note
