"""Finding the notes of a recording: every note of a phrase, the main note, and the clips cut from them.

A real recording is rarely one clean note starting at sample 0: it is a phrase of several notes, with
silence, overlapping release tails and legato changes. The training clips are single notes that start
at sample 0 and last 2 s, so before a model sees a recording:

1. **Onsets.** The note-onset network (``zoo.onsets``: a dilated CNN over the log-mel of the recording at
   frames of 512 samples, ~11.6 ms, trained on phrases rendered with Vital, ``note-onset-cnn``) gives the
   probability that a note starts at each frame; its peaks above ``zoo.onsets.THRESHOLD``, at least 50 ms
   apart, are onsets, and so is every frame where the level rises out of silence (a peak up to
   ``RISE_WINDOW_S`` after such a rise is the same note). Each onset is refined to a sample by the rise of a
   5.8 ms RMS envelope around it. A legato change between slow-attack notes can escape the network, so a
   frame-wise harmonic-sum pitch (4096-point spectrum) adds an onset where it moves to another semitone and
   holds it for 100 ms with no onset between, placed where the salience of the new pitch began to rise.
2. **Segments.** A note lasts from its onset to the next onset (or to where it falls 40 dB below its
   peak). A segment that repeats an earlier note quieter, one to three times the delay of an echo effect
   later, continues the note before it; the network, trained on presets that gate, sequence and echo
   themselves, leaves most such events unmarked on its own. A note's prominence is its summed frame RMS over
   its first 2 s: longer and louder notes win; the most prominent is the main note.
3. **Pitch.** YIN (de Cheveigné & Kawahara 2002: cumulative mean normalised difference, absolute
   threshold 0.15, parabolic interpolation) on 46 ms frames of the sustained part of each note
   (after a 30 ms attack, up to 1 s): the semitone most voiced frames fall in is the note (a pitch bend
   at the attack or a slide does not move it), refined by the median of those frames. Under the tail of
   the previous note YIN hears a mix (the previous pitch, or a sub-harmonic of both), so there the pitch
   of what the onset added to a 4096-point spectrum (harmonic sum) decides which frames count; a note
   found by its change of pitch takes that pitch when YIN hears another. Unpitched
   sounds (noise, drums) are reported as ``pitched=False`` with the nearest MIDI note of the best guess.
4. **Held length and velocity.** A note is held (``off_sample``, ``duration_seconds``) until its last frame
   within ``HELD_RANGE_DB`` (3 dB) of its own peak level (the previous note's tail discounted), or until
   the next note starts. Its loudness is the energy its onset added to the spectrum (the bins that grew
   since just before it, at its loudest frame): the tail of the note before does not count. Velocity maps
   that loudness, relative to the phrase's loudest note, through the inverse of Vital's velocity curve:
   with ``velocity_track`` at 100 % Vital's output level goes as velocity squared (40 dB per decade:
   measured with vita 0.1.0, 0.5 -> -12 dB, 0.1 -> -40 dB against velocity 1). So a note ``d`` dB under
   the loudest gets ``0.8 * 10 ** (-d / 40)`` (at least 0.05): the loudest note plays at 0.8, the
   velocity the training data and single-note renders use.
5. **Window.** The model's input is 2 s of the main note from its onset; when another note starts inside
   the window, the clip is faded out over 10 ms there and the rest is zeroed (training clips hold one
   note).

:func:`find_phrase` does 1-4 once; :func:`cut_phrase_clip` adds 5 and refuses a silent window: the server
and ``zoo predict`` call it and feed the clip to the exported graph, which normalises its loudness
(``zoo.audio.normalize_loudness_tensor``). :func:`prepare_phrase` / :func:`prepare_note_clip` also normalise
it (``zoo.audio.normalize_loudness``), for eager models and training-side tools; :func:`note_clips` cuts the
most prominent notes' clips for matching a preset note by note.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
import torch

from zoo.audio import (
    CLIP_SAMPLES,
    SAMPLE_RATE,
    SILENCE_RMS_DB,
    check_not_silent,
    fit_length,
    frame_signal,
    normalize_loudness,
)
from zoo.errors import AudioDecodeError
from zoo.onsets import HOP, onset_probability, pick_onsets
from zoo.vital.render import DEFAULT_VELOCITY

N_FFT = 2048
MIN_ONSET_GAP_S = 0.05
RISE_WINDOW_S = 0.1
ACTIVE_RANGE_DB = 40.0  # a frame counts as sounding within this range of the loudest frame
ATTACK_SKIP_S = 0.03
PITCH_SPAN_S = 1.0
YIN_WINDOW = 2048
YIN_THRESHOLD = 0.15
F_MIN, F_MAX = 30.0, 4200.0
ISOLATION_FADE_S = 0.01
HELD_RANGE_DB = 3.0  # a note is held until its last frame within this range of its peak
VELOCITY_DB_PER_DECADE = 40.0  # Vital: level ~ velocity**2 with velocity_track at 100 %
MIN_VELOCITY = 0.05
PROMINENT_NOTES = 4
CLIP_TAIL_SECONDS = 1.0  # release kept after a note's held part in its matching clip
CLIP_MAX_SECONDS = 4.0
ONSET_FFT = 4096  # spectra compared across an onset (10.8 Hz bins: harmonics of MIDI 24 stay apart)
HARMONIC_MIDI = np.arange(24 * 4, 108 * 4 + 1) / 4  # harmonic-sum pitch candidates, a quarter semitone apart
HARMONICS = 20
HARMONIC_BINS = round(8000 * ONSET_FFT / SAMPLE_RATE)  # harmonics up to 8 kHz count in the harmonic sum
ATTACK_FRAGMENT_S = 0.1
PITCH_RUN_S = 0.1  # a pitch held this long after another one is a note (see _pitch_changes)
PITCH_SETTLE_S = 0.15  # a pitch change this soon after an onset is the attack settling
PITCH_REACH_S = 0.6  # how far before a pitch change its note may start
ECHO_DROP_DB = 3.0  # an echo is at least this much quieter than the note it repeats
MIN_ECHO_S = 0.08
UNDER_RANGE_DB = 20.0  # a sound this close to a new note's level at its onset makes YIN read a mix
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@dataclass(frozen=True)
class Note:
    """One note of a recording. Samples are at the recording's rate (44.1 kHz after ``load_audio``)."""

    onset_sample: int
    end_sample: int  # where the next note starts, or where this one falls 40 dB under its peak
    midi: int
    frequency_hz: float
    pitched: bool
    confidence: float  # 0..1: share of voiced frames times their periodicity
    notes_found: int  # notes in the whole recording
    sample_rate: int = SAMPLE_RATE
    velocity: float = DEFAULT_VELOCITY  # from loudness, see the module docstring
    off_sample: int = -1  # where the note is released (estimated); -1: at end_sample
    prominence: float = 0.0  # summed frame RMS over its first 2 s

    @property
    def name(self) -> str:
        """Scientific pitch name with middle C = C4 (MIDI 60)."""
        return f"{NOTE_NAMES[self.midi % 12]}{self.midi // 12 - 1}"

    @property
    def onset_seconds(self) -> float:
        return self.onset_sample / self.sample_rate

    @property
    def duration_seconds(self) -> float:
        """How long the note is held: from its onset to its (estimated) release."""
        off = self.off_sample if self.off_sample >= 0 else self.end_sample
        return (off - self.onset_sample) / self.sample_rate

    def to_dict(self) -> dict:
        """Every field, rounded, plus ``name``, ``onset_seconds`` and ``duration_seconds`` (the held length)."""
        d = asdict(self)
        d.update(
            name=self.name,
            onset_seconds=round(self.onset_seconds, 4),
            duration_seconds=round(self.duration_seconds, 4),
            frequency_hz=round(self.frequency_hz, 3),
            confidence=round(self.confidence, 3),
            prominence=round(self.prominence, 3),
        )
        return d

    def summary(self) -> dict:
        """The note as a phrase lists it: onset, held length, pitch, velocity."""
        return {
            "onset_seconds": round(self.onset_seconds, 4),
            "duration_seconds": round(self.duration_seconds, 4),
            "midi": self.midi,
            "name": self.name,
            "velocity": round(self.velocity, 3),
            "pitched": self.pitched,
            "confidence": round(self.confidence, 3),
        }


@dataclass(frozen=True)
class Phrase:
    """Every note found in a recording, in time order, and which one is the main note."""

    notes: tuple[Note, ...]
    main_index: int
    n_samples: int  # length of the recording
    sample_rate: int = SAMPLE_RATE

    @property
    def main(self) -> Note:
        """The most prominent note: the one the model sees."""
        return self.notes[self.main_index]

    @property
    def seconds(self) -> float:
        return self.n_samples / self.sample_rate


@dataclass(frozen=True)
class NoteClip:
    """One note's clip for matching: render a preset at ``midi`` held ``note_seconds`` at ``velocity`` for
    ``len(clip) / 44100`` s and compare."""

    clip: np.ndarray  # (n,) float32, loudness-normalised, from the note's onset
    midi: int
    note_seconds: float
    velocity: float
    note: Note


class _Heard(NamedTuple):
    """What one segment's analysis heard: its pitch, and its loudness against what sounded before it."""

    hz: float
    pitched: bool
    confidence: float
    own_db: float  # energy the onset added (relative dB)
    under_db: float  # energy already sounding just before the onset
    share: float  # share of the added magnitude on the harmonics of its own pitch


def hz_to_midi(hz: float) -> int:
    """Nearest MIDI note of a frequency, clamped to 0..127."""
    return int(min(127, max(0, round(_midi(hz)))))


def _midi(hz: float) -> float:
    """A frequency as a fractional MIDI pitch (A4 = 440 Hz = 69)."""
    return 69 + 12 * math.log2(hz / 440.0)


def _hz(midi):
    """A (fractional) MIDI pitch, or an array of them, in Hz."""
    return 440.0 * 2 ** ((midi - 69) / 12)


# --------------------------------------------------------------------------------------------------
# Frames, onsets, segments


def _frame_level(audio: np.ndarray) -> np.ndarray:
    """Frame RMS in dBFS (T,) of centred 2048/512 frames (``zoo.audio.frame_signal``), T = len // 512 + 1."""
    frames = frame_signal(torch.from_numpy(np.array(audio, dtype=np.float32))[None], N_FFT, HOP)[0].numpy()  # (T, 2048)
    return 10 * np.log10(np.mean(np.square(frames, dtype=np.float64), axis=1) + 1e-20)


def _onsets(probability: np.ndarray, level: np.ndarray) -> list[int]:
    """Onset frames: the peaks of the note-onset network's ``probability`` (``zoo.onsets``) where something
    sounds, and every frame that rises out of silence (a sound after silence starts a note, whatever the
    network says); a peak up to ``RISE_WINDOW_S`` after a rise is the same note (its attack grew out of the
    silence)."""
    active = level > max(level.max() - ACTIVE_RANGE_DB, SILENCE_RMS_DB)
    gap = round(MIN_ONSET_GAP_S * SAMPLE_RATE / HOP)  # a note may start just before its sound is measurable
    window = round(RISE_WINDOW_S * SAMPLE_RATE / HOP)
    rises = np.flatnonzero(active & ~np.concatenate([[False], active[:-1]])).tolist()
    peaks = [t for t in pick_onsets(probability) if active[t : t + gap + 1].any()]
    return sorted(rises + [t for t in peaks if all(not -gap < t - r <= window for r in rises)])


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


def _voiced_pitch(f: np.ndarray, voiced: np.ndarray) -> float:
    """The pitch of a note's voiced frames: the semitone most of them fall in (so a pitch bend at the attack,
    a slide or a few octave errors do not move it), then the median in log frequency of the frames within
    half a semitone of it."""
    midi = 69 + 12 * np.log2(f[voiced] / 440.0)
    semitones, counts = np.unique(np.rint(midi), return_counts=True)
    mode = semitones[np.argmax(counts)]
    return float(_hz(np.median(midi[np.abs(midi - mode) <= 0.5])))


def _segment_pitch(f0: np.ndarray, aperiodicity: np.ndarray, start: int, end: int) -> tuple[float, bool, float]:
    """(f0, pitched, confidence) over the sustained part of a segment: after the attack, at most 1 s."""
    lo = min(start + round(ATTACK_SKIP_S * SAMPLE_RATE / HOP), max(start, end - 1))
    hi = max(lo + 1, min(end, lo + round(PITCH_SPAN_S * SAMPLE_RATE / HOP)))
    f, ap = f0[lo:hi], aperiodicity[lo:hi]
    voiced = ap < YIN_THRESHOLD
    if not voiced.any():
        return float(f[int(np.argmin(ap))]), False, 0.0
    return _voiced_pitch(f, voiced), bool(voiced.mean() >= 0.3), float(voiced.mean() * (1.0 - np.median(ap[voiced])))


def _echoes(segments: list[tuple[int, int]], heard: list[_Heard]) -> set[int]:
    """Segments that are echoes of an earlier one (a delay effect): the same pitch, at least
    ``ECHO_DROP_DB`` quieter, one to three times a fixed delay later. The delay is the gap between such a pair
    that the most pairs share (within two hops of it or of its double or triple: a repeat of a repeat), and
    counts only when at least three pairs share it."""
    pairs = [
        (j, segments[j][0] - segments[i][0])
        for j in range(len(segments))
        for i in range(j)
        if heard[i].pitched
        and abs(12 * math.log2(heard[i].hz / heard[j].hz)) < 0.5
        and heard[j].own_db < heard[i].own_db - ECHO_DROP_DB
        and segments[j][0] - segments[i][0] >= round(MIN_ECHO_S * SAMPLE_RATE / HOP)
    ]
    if len(pairs) < 3:
        return set()
    gaps = np.array([g for _, g in pairs])
    multiples = np.array([1, 2, 3])

    def repeats(delay: int) -> np.ndarray:
        return np.any(np.abs(gaps[:, None] - delay * multiples[None, :]) <= 2, axis=1)

    support = [int(repeats(g).sum()) for g in gaps]
    if max(support) < 3:
        return set()
    shared = repeats(int(gaps[int(np.argmax(support))]))
    return {j for (j, _), echo in zip(pairs, shared, strict=True) if echo}


def _without_echoes(segments: list[tuple[int, int]], heard: list[_Heard]) -> tuple[list[tuple[int, int]], list[_Heard]]:
    """Each echo (:func:`_echoes`) joined to the note sounding before it: a delay effect's repeats are not
    notes played."""
    echoes = _echoes(segments, heard)
    notes: list[tuple[int, int]] = []
    kept: list[_Heard] = []
    for i, (segment, h) in enumerate(zip(segments, heard, strict=True)):
        if i in echoes and notes:
            notes[-1] = (notes[-1][0], segment[1])
        else:
            notes.append(segment)
            kept.append(h)
    return notes, kept


# --------------------------------------------------------------------------------------------------
# What each onset adds: a note's own loudness and pitch under the tail of the one before


def _frame_magnitude(audio: np.ndarray, frame: int, n_fft: int = ONSET_FFT) -> np.ndarray:
    """|rfft| of the Hann-windowed ``n_fft`` samples centred on frame ``frame`` (zero outside the recording)."""
    centre = frame * HOP
    lo, hi = centre - n_fft // 2, centre + n_fft // 2
    x = np.zeros(n_fft, dtype=np.float64)
    if lo < len(audio) and hi > 0:
        x[max(0, -lo) : n_fft - max(0, hi - len(audio))] = audio[max(0, lo) : min(len(audio), hi)]
    return np.abs(np.fft.rfft(x * np.hanning(n_fft)))


def _grown_spectrum(audio: np.ndarray, level: np.ndarray, start: int, end: int) -> tuple[np.ndarray, float, float]:
    """(magnitude that grew since just before the onset, its energy in dB, the energy sounding before in dB).

    Taken at the segment's loudest frame in its first second (at least two frames past the onset, and with
    a window that ends before the next segment) against the frame three hops before the onset. The previous
    note's tail goes on sounding (and decaying) under a legato note: its partials do not grow, so what grew
    is this note alone."""
    lo = min(start + 2, end - 1)
    hi = min(end - ONSET_FFT // 2 // HOP, start + round(PITCH_SPAN_S * SAMPLE_RATE / HOP))
    peak = lo + int(np.argmax(level[lo : max(lo + 1, hi)]))
    after = _frame_magnitude(audio, peak)
    before = _frame_magnitude(audio, start - 3) if start >= 3 else np.zeros_like(after)
    grown = np.maximum(after - before, 0.0)
    db = lambda m: 10 * math.log10(float(np.sum(m**2)) + 1e-20)  # noqa: E731
    return grown, db(grown), db(before)


def _harmonic_pitch(magnitude: np.ndarray) -> tuple[float, float]:
    """(f0 in Hz, share of the magnitude within a bin of its harmonics) of the candidate whose harmonics
    collect the most of ``magnitude`` (an ONSET_FFT-point spectrum; the harmonic sum of
    :func:`_harmonic_weights`). The decaying weights make the true f0 beat its sub-octave, which collects
    only every other harmonic."""
    best = int(np.argmax(_harmonic_weights() @ magnitude[:HARMONIC_BINS]))
    f0 = float(_hz(HARMONIC_MIDI[best]))
    position = f0 * np.arange(1, HARMONICS + 1) * ONSET_FFT / SAMPLE_RATE
    on = np.rint(position[position < len(magnitude) - 1]).astype(int)
    near = np.unique(np.clip(np.concatenate([on - 1, on, on + 1]), 0, len(magnitude) - 1))
    return f0, float(np.sum(magnitude[near])) / (float(np.sum(magnitude)) + 1e-20)


def _reads_a_mix(hz: float, added: float, previous_hz: float | None) -> bool:
    """Whether YIN's ``hz`` is what a mix of the previous note and the added one would read: the previous
    note itself (its tail dominates), or a common sub-harmonic of both (their sum repeats at it)."""
    if previous_hz is None or abs(12 * math.log2(added / hz)) < 0.5:
        return False
    ratio = previous_hz / hz
    held_over = abs(12 * math.log2(ratio)) < 0.5
    sub_harmonic = added > hz and round(ratio) >= 2 and abs(ratio / round(ratio) - 1) < 0.03
    return held_over or sub_harmonic


def _note_pitch(
    audio: np.ndarray,
    level: np.ndarray,
    yin_track: tuple[np.ndarray, np.ndarray],
    start: int,
    end: int,
    previous_hz: float | None,
) -> _Heard:
    """Pitch and loudness of the note starting at segment ``start``..``end``.

    YIN over the segment decides, unless another sound was already within ``UNDER_RANGE_DB`` of this note at
    its onset and YIN's answer differs from the pitch of what the onset added (:func:`_harmonic_pitch`).
    Then the YIN frames that agree with the added pitch decide (later in the note, once the tail has
    faded), if there are some; else YIN stands unless its answer looks like a mix (unvoiced, the previous
    note's pitch, or a common sub-harmonic of the previous note and the added one), and the added pitch
    stands alone."""
    f0, aperiodicity = yin_track
    hz, pitched, confidence = _segment_pitch(f0, aperiodicity, start, end)
    grown, own_db, under_db = _grown_spectrum(audio, level, start, end)
    added, share = _harmonic_pitch(grown)
    heard = _Heard(hz, pitched, confidence, own_db, under_db, share)
    if under_db < own_db - UNDER_RANGE_DB or (pitched and abs(12 * math.log2(added / hz)) < 0.5):
        return heard
    lo = min(start + round(ATTACK_SKIP_S * SAMPLE_RATE / HOP), max(start, end - 1))
    hi = max(lo + 1, min(end, lo + round(PITCH_SPAN_S * SAMPLE_RATE / HOP)))
    f, ap = f0[lo:hi], aperiodicity[lo:hi]
    near = (ap < YIN_THRESHOLD) & (np.abs(12 * np.log2(np.maximum(f, 1e-9) / added)) < 0.5)
    if near.sum() >= 3:
        confidence = float(near.mean() * (1.0 - np.median(ap[near])))
        return heard._replace(hz=_voiced_pitch(f, near), pitched=True, confidence=confidence)
    if pitched and not _reads_a_mix(hz, added, previous_hz):
        return heard
    return heard._replace(hz=added, pitched=share >= 0.4, confidence=share * 0.5)


@functools.lru_cache(maxsize=1)
def _harmonic_weights() -> np.ndarray:
    """(C, ONSET_FFT // 2 + 1) harmonic-sum weights: candidate c (``HARMONIC_MIDI``: a quarter semitone apart,
    MIDI 24 to 108) collects its harmonics h = 1..20 below the top bin with weight 0.84^(h-1), each read
    between bins by linear interpolation."""
    bins = HARMONIC_BINS
    hz = _hz(HARMONIC_MIDI)
    position = hz[:, None] * np.arange(1, HARMONICS + 1)[None, :] * ONSET_FFT / SAMPLE_RATE  # (C, H) bins
    weight = np.broadcast_to(0.84 ** np.arange(HARMONICS), position.shape)
    rows = np.broadcast_to(np.arange(len(hz))[:, None], position.shape)
    keep = position < bins - 1
    lo = np.floor(position[keep]).astype(int)
    frac = position[keep] - lo
    w = np.zeros((len(hz), bins))
    np.add.at(w, (rows[keep], lo), weight[keep] * (1 - frac))
    np.add.at(w, (rows[keep], lo + 1), weight[keep] * frac)
    return w


def _harmonic_track(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frame-wise harmonic-sum pitch on the note-finding frames (frame t centred on sample t * HOP): (the MIDI
    pitch of the candidate whose harmonics collect the most of the square-rooted magnitude of an
    ``ONSET_FFT``-point spectrum (T,), every candidate's salience (T, C))."""
    n_frames = len(audio) // HOP + 1
    x = np.pad(np.asarray(audio, dtype=np.float32), (ONSET_FFT // 2, ONSET_FFT // 2 + HOP))
    window = np.hanning(ONSET_FFT).astype(np.float32)
    weights = torch.from_numpy(_harmonic_weights().T.astype(np.float32))
    salience = np.empty((n_frames, weights.shape[1]), dtype=np.float32)
    for b in range(0, n_frames, 256):
        frames = np.lib.stride_tricks.sliding_window_view(x, ONSET_FFT)[::HOP][b : min(n_frames, b + 256)]
        spectrum = np.sqrt(np.abs(np.fft.rfft(frames * window, axis=1)[:, :HARMONIC_BINS])).astype(np.float32)
        # torch's matmul: numpy's BLAS threads would spin against torch's pool in the STFT that follows
        salience[b : b + len(frames)] = (torch.from_numpy(spectrum) @ weights).numpy()
    return HARMONIC_MIDI[np.argmax(salience, axis=1)], salience


def _pitch_runs(track: np.ndarray, level: np.ndarray, min_run: int) -> list[tuple[int, int, int]]:
    """(start, end, semitone) of the runs of sounding frames where the harmonic-sum pitch holds one semitone for
    at least ``min_run`` frames. A short run (under twice ``min_run``) between two at one semitone is absorbed
    into them: vibrato, a trill, or the previous note's release showing through a slow attack."""
    sounding = level > max(level.max() - ACTIVE_RANGE_DB, SILENCE_RMS_DB)
    semis = np.where(sounding, np.rint(track), -1).astype(int)
    edges = np.flatnonzero(np.diff(semis) != 0) + 1
    runs: list[tuple[int, int, int]] = []
    for a, b in zip(np.r_[0, edges], np.r_[edges, len(semis)], strict=True):
        run = (int(a), int(b), int(semis[a]))
        if run[2] < 0 or b - a < min_run:
            continue
        if len(runs) >= 2 and runs[-2][2] == run[2] and runs[-1][1] - runs[-1][0] < 2 * min_run:
            runs.pop()
        if runs and runs[-1][2] == run[2]:
            run = (runs.pop()[0], run[1], run[2])
        runs.append(run)
    return runs


def _pitch_changes(track: np.ndarray, salience: np.ndarray, level: np.ndarray, onsets: list[int]) -> dict[int, int]:
    """Onsets the network missed: where the harmonic-sum pitch moves to another semitone and holds it.

    A legato change between slow-attack notes (a pad, strings) barely moves the level or the spectrum. A run of at
    least ``PITCH_RUN_S`` at one semitone (:func:`_pitch_runs`) after a run at another, with no onset between
    them nor just before (``PITCH_SETTLE_S``: a note's pitch settling after its attack), starts a note. It starts
    where the salience of its pitch last sat near its floor before rising to the run, at most ``PITCH_REACH_S``
    before the run and not before the run before it. Returns {onset frame: the run's semitone}."""
    min_run = max(2, round(PITCH_RUN_S * SAMPLE_RATE / HOP))
    gap = max(1, round(MIN_ONSET_GAP_S * SAMPLE_RATE / HOP))
    settle, reach = round(PITCH_SETTLE_S * SAMPLE_RATE / HOP), round(PITCH_REACH_S * SAMPLE_RATE / HOP)
    marks = np.asarray(onsets, dtype=int)
    runs = _pitch_runs(track, level, min_run)
    out: dict[int, int] = {}
    for (a0, b0, _), (a1, _, s1) in itertools.pairwise(runs):  # consecutive runs differ in pitch
        if len(marks) and np.any((marks >= b0 - gap) & (marks <= a1 + gap)):
            continue  # an onset marks this change
        if len(marks) and np.any((marks <= a1) & (marks > a1 - settle)):
            continue
        lo = max(a0 + 1, a1 - reach, int(marks[marks < a1].max()) + gap if np.any(marks < a1) else 0)
        column = int(np.argmin(np.abs(HARMONIC_MIDI - s1)))
        rising = np.convolve(salience[:, column], np.ones(3) / 3, mode="same")[lo : a1 + 1]
        if len(rising) == 0:
            continue
        floor = float(rising.min())
        t = lo + int(np.flatnonzero(rising <= floor + 0.1 * (float(rising[-1]) - floor))[-1])
        if (not out or t - max(out) >= gap) and not (len(marks) and np.min(np.abs(marks - t)) < gap):
            out[t] = s1
    return out


def _velocity(own_db: float, loudest_db: float) -> float:
    """Velocity of a note ``loudest_db - own_db`` dB under the phrase's loudest: Vital's curve inverted."""
    return float(max(MIN_VELOCITY, DEFAULT_VELOCITY * 10 ** ((own_db - loudest_db) / VELOCITY_DB_PER_DECADE)))


# --------------------------------------------------------------------------------------------------
# Every note of a phrase


def _analyse(audio: np.ndarray) -> tuple[list[tuple[int, int]], list[_Heard], np.ndarray]:
    """(notes as (start, end) frames, their pitch and loudness, frame level in dBFS)."""
    level = _frame_level(audio)
    if level.max() < SILENCE_RMS_DB:
        raise AudioDecodeError(f"the audio is silent (loudest frame {level.max():.1f} dBFS)")
    f0, aperiodicity = yin(audio)
    onsets = _onsets(onset_probability(audio), level)
    track, salience = _harmonic_track(audio)
    changes = _pitch_changes(track, salience, level, onsets)
    segments = _segments(sorted(set(onsets) | set(changes)), level)
    heard: list[_Heard] = []
    for s, e in segments:
        previous = heard[-1].hz if heard and heard[-1].pitched else None
        h = _note_pitch(audio, level, (f0, aperiodicity), s, e, previous)
        semitone = changes.get(s, -1)
        if semitone >= 0 and not (h.pitched and abs(_midi(h.hz) - semitone) < 0.5):
            # A new note rising under the last one: YIN reads the mix, the change of pitch found the note.
            h = h._replace(hz=_hz(semitone), pitched=True, confidence=0.5)
        heard.append(h)
    return _join_attacks(*_without_echoes(segments, heard)) + (level,)


def _join_attacks(notes: list[tuple[int, int]], heard: list[_Heard]) -> tuple[list[tuple[int, int]], list[_Heard]]:
    """Join an unpitched note shorter than ``ATTACK_FRAGMENT_S`` to the pitched note that follows it with no
    silence between: the noise of an attack (a breath, a pluck's click, a pitch envelope's sweep) whose onset
    comes before the tone's. The note starts at the fragment's onset, with the tone's pitch."""
    out_notes, out_heard = [], []
    i = 0
    while i < len(notes):
        (start, end), h = notes[i], heard[i]
        short = end - start <= round(ATTACK_FRAGMENT_S * SAMPLE_RATE / HOP)
        if short and not h.pitched and i + 1 < len(notes) and heard[i + 1].pitched and end >= notes[i + 1][0]:
            out_notes.append((start, notes[i + 1][1]))
            out_heard.append(heard[i + 1])
            i += 2
            continue
        out_notes.append((start, end))
        out_heard.append(h)
        i += 1
    return out_notes, out_heard


def find_phrase(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Phrase:
    """Every note of a mono 44.1 kHz recording, in time order, and which one is the main note.

    Raises :class:`AudioDecodeError` when the recording is silent or not a mono waveform."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1 or audio.size == 0:
        raise AudioDecodeError(f"expected a non-empty mono waveform, got shape {audio.shape}")
    if sample_rate != SAMPLE_RATE:
        raise ValueError(f"note finding works at {SAMPLE_RATE} Hz (zoo.audio.load_audio resamples), got {sample_rate}")
    segments, pitches, level = _analyse(audio)
    onsets: list[int] = []
    for start, _ in segments:
        onset = _refine_onset(audio, start, level)
        if onsets and onset <= onsets[-1]:  # refined onto the previous note's start: keep the frame's position
            onset = max(start * HOP, onsets[-1] + 1)
        onsets.append(onset)
    rms = np.power(10.0, level / 20)
    max_frames = round(CLIP_SAMPLES / HOP)
    loudest = max(p.own_db for p in pitches)
    notes = []
    for i, (start, end_frame) in enumerate(segments):
        onset = onsets[i]
        # The main note's window is cut where the next note starts, silence or not.
        end = max(onset + 1, onsets[i + 1]) if i + 1 < len(segments) else min(len(audio), end_frame * HOP + HOP // 2)
        hz, pitched, confidence, own_db, under_db, _ = pitches[i]
        # The segment's peak may be the previous note's tail: count only this note's share of it.
        own_peak = level[start:end_frame].max() - 10 * math.log10(1 + 10 ** ((under_db - own_db) / 10))
        held = np.flatnonzero(level[start:end_frame] >= own_peak - HELD_RANGE_DB)
        off = min(end, max(onset + 1, (start + int(held[-1]) + 1) * HOP))
        notes.append(
            Note(
                onset_sample=int(onset),
                end_sample=int(end),
                midi=hz_to_midi(hz),
                frequency_hz=hz,
                pitched=pitched,
                confidence=confidence,
                notes_found=len(segments),
                sample_rate=SAMPLE_RATE,
                velocity=round(_velocity(own_db, loudest), 3),
                off_sample=int(off),
                prominence=float(rms[start : min(end_frame, start + max_frames)].sum()),
            )
        )
    return Phrase(tuple(notes), int(np.argmax([n.prominence for n in notes])), len(audio), SAMPLE_RATE)


def find_notes(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> list[Note]:
    """Every note of a recording, in time order (:func:`find_phrase`)."""
    return list(find_phrase(audio, sample_rate).notes)


def find_main_note(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Note:
    """The most prominent note of a recording (:func:`find_phrase`'s ``main``).

    Raises :class:`AudioDecodeError` when the recording is silent."""
    return find_phrase(audio, sample_rate).main


# --------------------------------------------------------------------------------------------------
# Clips: the main note's 2 s model input, and each prominent note's clip for a search objective


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


def cut_phrase_clip(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, Phrase]:
    """A mono 44.1 kHz recording -> (the 2 s clip of its main note at its recorded level, every note found).

    What the server and ``zoo predict`` feed an exported graph, which normalises the loudness itself (so the
    clip is normalised once). Raises :class:`AudioDecodeError` for a silent recording or a silent window."""
    phrase = find_phrase(audio, sample_rate)
    clip = note_window(audio, phrase.main)
    check_not_silent(clip)
    return clip, phrase


def prepare_phrase(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, Phrase]:
    """A mono 44.1 kHz recording -> (the loudness-normalised 2 s clip of its main note, every note found): the
    clip the training data holds, for eager models and tools. Raises :class:`AudioDecodeError` for a silent
    recording."""
    clip, phrase = cut_phrase_clip(audio, sample_rate)
    return normalize_loudness(clip), phrase


def prepare_note_clip(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[np.ndarray, Note]:
    """:func:`prepare_phrase` keeping only the main note: (its normalised 2 s model input clip, the note)."""
    clip, phrase = prepare_phrase(audio, sample_rate)
    return clip, phrase.main


def prominent_notes(phrase: Phrase, n: int = PROMINENT_NOTES) -> list[Note]:
    """The ``n`` most prominent notes of a phrase (summed level over their first 2 s), in time order."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    ranked = sorted(range(len(phrase.notes)), key=lambda i: -phrase.notes[i].prominence)
    return [phrase.notes[i] for i in sorted(ranked[:n])]


def note_clips(
    audio: np.ndarray,
    phrase: Phrase,
    n: int = PROMINENT_NOTES,
    tail_seconds: float = CLIP_TAIL_SECONDS,
    max_seconds: float = CLIP_MAX_SECONDS,
) -> list[NoteClip]:
    """Clips of the ``n`` most prominent notes, for matching a preset note by note (in time order).

    Each clip starts at its note's onset and lasts the note's held length plus ``tail_seconds`` of release,
    at most ``max_seconds``, and never reaches into the next note (it stops where that one starts) nor past
    the recording; then it is loudness-normalised (``zoo.audio.normalize_loudness``). Render a candidate
    preset at ``midi`` held ``note_seconds`` at ``velocity`` for ``len(clip) / 44100`` s to compare with it.
    Notes too quiet to normalise are left out."""
    audio = np.asarray(audio, dtype=np.float32)
    out = []
    for note in prominent_notes(phrase, n):
        stop = min(note.end_sample, note.off_sample + round(tail_seconds * note.sample_rate), len(audio))
        stop = min(stop, note.onset_sample + round(max_seconds * note.sample_rate))
        clip = audio[note.onset_sample : max(stop, note.onset_sample + 1)]
        try:
            clip = normalize_loudness(clip)
        except AudioDecodeError:
            continue
        seconds = min(note.duration_seconds, len(clip) / note.sample_rate)
        out.append(NoteClip(clip, note.midi, seconds, note.velocity, note))
    return out
