"""A wavetable taken from a recording: the harmonics of one note, frame by frame, as oscillator 1's table.

Analysis (:func:`analyse_note`), on a mono 44.1 kHz recording:

1. **The note.** ``zoo.notes.find_main_note`` (or a given :class:`~zoo.notes.Note`): onset, end, YIN pitch,
   pitched or not. With ``midi`` given, YIN's f0 is kept when it lies within half a semitone of it (a
   recording a few cents off plays at its own pitch through ``osc_1_tune``), else the MIDI note's frequency.
2. **The amplitude envelope.** ``zoo.vital.envelope.fit_envelope`` on the note: attack, decay, sustain,
   release, decay curve and key-off time, as Vital's ``env_1`` plays them.
3. **Harmonics, frame by frame.** YIN's f0 is refined from the first harmonics' spectral peaks (YIN's lag
   resolution costs high notes several cents). At K times (``n_keyframes``, 8 by default) the amplitude and
   phase of every harmonic below the Nyquist frequency (at most 1023: a 2048-sample cycle) are measured
   (``zoo.vital.harmonics``: 8-period Blackman-Harris frames). The frames are band-limited by construction.
   Each frame is scaled to the same RMS (loudness is ``env_1``'s job); every frame takes the phases of the
   frame nearest the sustained part, relative to its fundamental, so Vital's waveform crossfade between two
   keyframes moves each harmonic's amplitude linearly.
4. **Times.** Keyframe k sits at ``t_0 + (T - t_0) (k / (K - 1))^2`` after the onset: dense early, where
   timbre moves fastest. ``t_0`` is half a window (the first window starts at the onset); ``T`` is the key-off
   time, the end of the sound (60 dB under its peak) less half a window, or 4 s, whichever comes first.

Preset (:func:`wavetable_base_preset`): the Tier-1 base preset with oscillator 1's table replaced (first
keyframe at position 256, last at 0, blended by waveform) and one modulation outside Tier 1, in slot 2
(slot 1 is Tier 1's env_2 -> filter_1_cutoff): ``env_3 -> osc_1_wave_frame`` at amount 1, with ``env_3``
jumping to 1, holding for ``t_0`` and falling linearly to 0 at ``T``. So ``wave_frame`` (Tier 1's
``osc_1_wave_frame``, 0 in :func:`wavetable_vector`) runs 256 -> 0 through the keyframes at their times and
stays on the last one, after key-off too. Tier-1 vectors apply on top unchanged: oscillators 2 and 3 keep
the basic shapes, and ``osc_1_wave_frame`` offsets the sweep.

**Unpitched or noisy sounds** fall back to noise: when ``find_main_note`` finds no pitch (YIN voiced in
under 30 % of the note's frames) and the harmonics at its best guess (or at ``midi``) stand less than 10 dB
over the spectrum half-way between them (``zoo.vital.harmonics.harmonic_to_noise_db``: white noise reads
~3 dB, a saw with as much noise as tone 8 dB, a five-voice supersaw 23 dB). Then the base preset plays the
init preset's white-noise sample (``sample_on``) into filter 1, and :func:`wavetable_vector` turns the
oscillators off and filter 1 on as a 12 dB low pass at the cutoff whose response best fits the note's
average spectrum, with the fitted ``env_1``. A pitched sound's
noise (breath, bow) is not modelled.

Controls outside Tier 1 the analysis sets (:func:`sweep_controls`): ``env_3_*`` (the sweep's hold and
time) and ``modulation_2_amount`` (its depth). What the analysis cannot know exactly and a search should
adjust, and how to expose it:

- the sweep time and depth: two extra continuous dimensions, set by name on the loaded base like Tier-1
  controls, over :func:`extra_control_ranges` (``env_3_decay`` 0.5x..2x the analysed time, quartic;
  ``modulation_2_amount`` 0..1);
- brightness: ``tilt_db_per_octave`` of :func:`wavetable_base_preset` rewrites the table, so a few base
  variants (e.g. -6, -3, 0, +3 dB/octave) rather than a continuous dimension; within one base, Tier 1's
  filter 1 and ``osc_1_spectral_morph_*`` do it without a reload;
- the mix with a Tier-1 oscillator, the filters and the envelopes: Tier-1 dimensions already
  (``osc_2_on``/``osc_2_level``/``osc_2_wave_frame``, ``filter_1_*``, ``env_1_*``, ``env_2_*``);
- with and without the wavetable: candidates with this base and with the Tier-1 base.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from zoo.audio import SAMPLE_RATE
from zoo.notes import Note, find_main_note, hz_to_midi
from zoo.vital.envelope import SHORT_CONTROL_MAX, Envelope, fit_envelope, seconds_to_control, sounding_seconds
from zoo.vital.harmonics import MIN_WINDOW, WINDOW_PERIODS, harmonic_to_noise_db, harmonics_at, refine_f0
from zoo.vital.preset import base_preset, preset_from_vector, vector_from_preset
from zoo.vital.spec import VitalParamSpec
from zoo.vital.tier1 import tier1_spec
from zoo.vital.wavetable import INTERPOLATE_WAVEFORMS, MAX_POSITION, harmonic_wave, wavetable_from_frames

N_KEYFRAMES = 8
MIN_HARMONIC_TO_NOISE_DB = 10.0  # pitched enough for a wavetable, whatever YIN says (white noise: ~3 dB)
MAX_SWEEP_SECONDS = 4.0
MIN_SWEEP_SECONDS = 0.02
SWEEP_ENVELOPE = "env_3"
SWEEP_SLOT = 2  # 1-based modulation slot; Tier 1 uses slot 1
WAVETABLE_NAME = "From audio"


@dataclass(frozen=True)
class NoteAnalysis:
    """What :func:`analyse_note` measured. Times are seconds after the note's onset."""

    pitched: bool  # False: the noise fallback
    f0_hz: float
    midi: int  # the MIDI note the preset is played at
    tune: float  # semitones from ``midi`` to ``f0_hz`` (``osc_1_tune``)
    onset_sample: int
    envelope: Envelope
    note_seconds: float  # estimated key-off time
    times: np.ndarray  # (K,) keyframe times
    amplitudes: np.ndarray  # (K, H) harmonic amplitudes, each frame at unit RMS
    phases: np.ndarray  # (H,) shared phases, fundamental at 0
    noise_cutoff: float  # filter_1_cutoff (semitones) of the noise fallback
    harmonic_to_noise_db: float  # zoo.vital.harmonics.harmonic_to_noise_db at f0 over the keyframes

    @property
    def n_harmonics(self) -> int:
        return int(self.amplitudes.shape[1])

    @property
    def positions(self) -> np.ndarray:
        """Keyframe positions (K,): 256 at the first time, 0 at the last (one frame: 0)."""
        t0, t1 = float(self.times[0]), float(self.times[-1])
        if len(self.times) == 1 or t1 - t0 < MIN_SWEEP_SECONDS:
            return np.zeros(len(self.times), dtype=np.int64)
        return np.round(MAX_POSITION * (t1 - self.times) / (t1 - t0)).astype(np.int64)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (no arrays)."""
        return {
            "pitched": self.pitched,
            "harmonic_to_noise_db": round(self.harmonic_to_noise_db, 2),
            "f0_hz": round(self.f0_hz, 3),
            "midi": self.midi,
            "tune_semitones": round(self.tune, 4),
            "keyframes": len(self.times),
            "harmonics": self.n_harmonics,
            "sweep_seconds": round(float(self.times[-1]), 4),
            "note_seconds": round(self.note_seconds, 4),
            "envelope": {k: round(v, 4) for k, v in vars(self.envelope).items()},
        }


# --------------------------------------------------------------------------------------------------
# Analysis


def note_pitch(note: Note, midi: int | None = None) -> tuple[float, int]:
    """(f0 in Hz, MIDI note) of a note: YIN's f0 and its nearest note, or, with ``midi`` given, that note and
    YIN's f0 when it lies within half a semitone of it (else the note's own frequency)."""
    f0 = float(note.frequency_hz)
    if midi is not None:
        if not 0 <= int(midi) <= 127:
            raise ValueError(f"MIDI note must be in 0..127, got {midi}")
        reference = 440.0 * 2 ** ((int(midi) - 69) / 12)
        if not f0 > 0 or abs(12 * math.log2(f0 / reference)) > 0.5:
            f0 = reference
        return f0, int(midi)
    return f0, hz_to_midi(f0)


def _keyframe_times(n_keyframes: int, t0: float, end: float) -> np.ndarray:
    if n_keyframes == 1 or end - t0 < MIN_SWEEP_SECONDS:
        return np.array([max(t0, end)])
    return t0 + (end - t0) * (np.arange(n_keyframes) / (n_keyframes - 1)) ** 2


def sustain_time(envelope: Envelope, note_seconds: float) -> float:
    """A time in the note's sustained part: the middle of the span, between the end of the attack and the
    key-off, where the envelope plays within 6 dB of its peak (a pad: the middle of the held note; a pluck:
    early in its decay)."""
    t = np.linspace(min(envelope.attack, note_seconds), note_seconds, 200)
    loud = t[envelope.value(t, note_seconds) ** 2 >= 0.5]  # amplitude = value ** 2
    return float(0.5 * (loud[0] + loud[-1])) if len(loud) else float(t[0])


def note_segment(
    audio: np.ndarray, note: Note | None, note_seconds: float | None, sample_rate: int = SAMPLE_RATE
) -> tuple[Note, np.ndarray]:
    """The note to analyse and its audio, from its onset: ``note`` up to its end (the next note's onset, or
    where it fades 40 dB under its peak); without ``note``, the recording's main note, and when
    ``note_seconds`` is known the recording is that one note held so long: everything from its onset (the
    note finder may split one note with a gate or a wah into several)."""
    if note is not None:
        return note, audio[note.onset_sample : max(note.end_sample, note.onset_sample + 1)]
    note = find_main_note(audio, sample_rate)
    end = len(audio) if note_seconds is not None else max(note.end_sample, note.onset_sample + 1)
    return note, audio[note.onset_sample : end]


def _shared_phases(phases: np.ndarray, reference: int) -> np.ndarray:
    """Phases of one frame relative to its fundamental, (H,): phi_k - k phi_1."""
    row = phases[reference]
    return np.angle(np.exp(1j * (row - np.arange(1, len(row) + 1) * row[0])))


def _unit_rms(amplitudes: np.ndarray) -> np.ndarray:
    """Each frame scaled to RMS 1 (sum of a_k^2 / 2 = 1); near-silent frames copy their loudest neighbour."""
    energy = np.sum(amplitudes**2, axis=1) / 2  # (K,)
    quiet = energy < 1e-6 * energy.max()
    out = amplitudes / np.sqrt(np.maximum(energy, 1e-30))[:, None]
    if quiet.any():
        out[quiet] = out[int(np.argmax(energy))]
    return out


def noise_cutoff(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """The ``filter_*_cutoff`` (semitones, 8..136) whose 12 dB low pass best fits ``audio``'s average
    spectrum in third-octave bands from 63 Hz to 16 kHz (L1 in dB, gain free)."""
    n = 4096
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(audio, (0, n)), n)[:: n // 2]
    power = np.mean(np.abs(np.fft.rfft(frames * np.hanning(n), axis=1)) ** 2, axis=0)
    freqs = np.fft.rfftfreq(n, 1 / sample_rate)
    centres = 63.0 * 2 ** (np.arange(25) / 3)  # 63 Hz .. 16 kHz
    band = [power[(freqs >= f * 2 ** (-1 / 6)) & (freqs < f * 2 ** (1 / 6))].mean() for f in centres]
    measured = 10 * np.log10(np.asarray(band) + 1e-20)
    cutoffs = np.arange(8.0, 137.0)
    fc = 440.0 * 2 ** ((cutoffs - 69) / 12)
    model = -10 * np.log10(1 + (centres[None, :] / fc[:, None]) ** 4)  # (C, B)
    diff = measured[None, :] - model
    cost = np.abs(diff - np.median(diff, axis=1, keepdims=True)).mean(axis=1)
    return float(cutoffs[int(np.argmin(cost))])


def analyse_note(
    audio: np.ndarray,
    midi: int | None = None,
    note: Note | None = None,
    n_keyframes: int = N_KEYFRAMES,
    note_seconds: float | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> NoteAnalysis:
    """Analyse one note of a mono 44.1 kHz recording (its main note unless ``note`` is given).

    ``midi``: the note's MIDI pitch when known (see the module docstring). ``note_seconds``: how long the key
    was held, when known (a rendered target, a note of a phrase); otherwise it is estimated with the envelope,
    and the preset sounds as analysed when played for ``analysis.note_seconds``. Which audio is the note:
    :func:`note_segment`. Raises ``AudioDecodeError`` for silent audio and ValueError for a bad argument."""
    if not 1 <= n_keyframes <= 64:
        raise ValueError(f"n_keyframes must be in 1..64, got {n_keyframes}")
    audio = np.asarray(audio, dtype=np.float32)
    note, segment = note_segment(audio, note, note_seconds, sample_rate)
    f0, midi = note_pitch(note, midi)
    envelope, note_seconds = fit_envelope(segment, sample_rate, note_seconds=note_seconds)
    half_window = max(MIN_WINDOW, WINDOW_PERIODS * sample_rate / f0) / 2 / sample_rate
    end = min(note_seconds, sounding_seconds(segment, sample_rate) - half_window, MAX_SWEEP_SECONDS)
    times = _keyframe_times(n_keyframes, half_window, end)
    centres = note.onset_sample + np.round(times * sample_rate).astype(np.int64)
    f0 = refine_f0(audio, f0, centres, sample_rate=sample_rate)
    amplitudes, phases = harmonics_at(audio, f0, centres, sample_rate=sample_rate)
    reference = int(np.argmin(np.abs(times - sustain_time(envelope, note_seconds))))
    hnr = harmonic_to_noise_db(audio, f0, centres, sample_rate)
    return NoteAnalysis(
        pitched=bool(note.pitched) or hnr >= MIN_HARMONIC_TO_NOISE_DB,
        f0_hz=f0,
        midi=midi,
        tune=float(12 * math.log2(f0 / 440.0) + 69 - midi),
        onset_sample=int(note.onset_sample),
        envelope=envelope,
        note_seconds=note_seconds,
        times=times,
        amplitudes=_unit_rms(amplitudes),
        phases=_shared_phases(phases, reference),
        noise_cutoff=noise_cutoff(segment, sample_rate),
        harmonic_to_noise_db=hnr,
    )


# --------------------------------------------------------------------------------------------------
# Presets


def wavetable_frames(analysis: NoteAnalysis, tilt_db_per_octave: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The table's cycles and positions in Vital's order: (frames (K, 2048) float32, positions (K,) increasing).

    ``tilt_db_per_octave`` brightens (> 0) or darkens (< 0) every frame: harmonic k gains
    ``tilt * log2(k)`` dB. The loudest frame peaks at 1."""
    gain = 10 ** (tilt_db_per_octave * np.log2(np.arange(1, analysis.n_harmonics + 1)) / 20)
    frames = np.stack([harmonic_wave(a * gain, analysis.phases) for a in analysis.amplitudes])
    frames /= max(float(np.abs(frames).max()), 1e-12)
    positions = analysis.positions
    order = np.argsort(positions, kind="stable")
    _, first = np.unique(positions[order], return_index=True)  # one frame per position
    keep = order[first]
    return frames[keep].astype(np.float32), positions[keep]


def sweep_controls(analysis: NoteAnalysis) -> dict[str, float]:
    """Raw values of the controls outside Tier 1 that play the keyframes at their times: ``env_3_*`` and
    modulation slot 2's amount (0 when the table has one frame)."""
    t0, t1 = float(analysis.times[0]), float(analysis.times[-1])
    sweep = Envelope(
        attack=0.0, decay=max(t1 - t0, 1e-3), sustain=0.0, release=analysis.envelope.release, decay_power=0.0
    ).controls(SWEEP_ENVELOPE)
    sweep[f"{SWEEP_ENVELOPE}_hold"] = seconds_to_control(t0, SHORT_CONTROL_MAX)
    moving = len(np.unique(analysis.positions)) > 1
    sweep[f"modulation_{SWEEP_SLOT}_amount"] = 1.0 if moving else 0.0
    for key in ("bipolar", "bypass", "power", "stereo"):
        sweep[f"modulation_{SWEEP_SLOT}_{key}"] = 0.0
    return sweep


def extra_control_ranges(analysis: NoteAnalysis) -> dict[str, tuple[float, float]]:
    """Raw (low, high) values of the controls outside Tier 1 a search may move on :func:`wavetable_base_preset`:
    the sweep time (``env_3_decay``, quartic: 0.5x..2x the analysed time) and depth (``modulation_2_amount``,
    0..1). Empty for an unpitched note (no sweep)."""
    if not analysis.pitched:
        return {}
    seconds = max(float(analysis.times[-1] - analysis.times[0]), 1e-3)
    decay = (seconds_to_control(0.5 * seconds), seconds_to_control(2.0 * seconds))
    return {f"{SWEEP_ENVELOPE}_decay": decay, f"modulation_{SWEEP_SLOT}_amount": (0.0, 1.0)}


def wavetable_base_preset(
    analysis: NoteAnalysis, spec: VitalParamSpec | None = None, tilt_db_per_octave: float = 0.0
) -> dict[str, Any]:
    """The document a Tier-1 vector is applied onto: ``base_preset(spec)`` with oscillator 1 playing the
    analysed wavetable swept by ``env_3`` (modulation slot 2), or, for an unpitched note, with the white-noise
    sample on into filter 1. Raises ValueError when ``spec`` uses modulation slot 2 itself."""
    spec = spec or tier1_spec()
    if len(spec.modulations) >= SWEEP_SLOT:
        raise ValueError(f"the spec uses modulation slot {SWEEP_SLOT}, which the wavetable sweep needs")
    doc = base_preset(spec)
    settings = doc["settings"]
    if not analysis.pitched:
        settings.update(sample_on=1.0, sample_destination=0.0, sample_keytrack=0.0, sample_random_phase=1.0)
        return doc
    frames, positions = wavetable_frames(analysis, tilt_db_per_octave)
    table = wavetable_from_frames(
        settings["wavetables"][0], frames, positions, WAVETABLE_NAME, interpolation=INTERPOLATE_WAVEFORMS
    )
    settings["wavetables"][0] = table
    settings["modulations"][SWEEP_SLOT - 1] = {"source": SWEEP_ENVELOPE, "destination": "osc_1_wave_frame"}
    settings.update(sweep_controls(analysis))
    return doc


def _suggested_controls(analysis: NoteAnalysis) -> dict[str, float]:
    controls = {f"osc_{i}_on": 0.0 for i in (1, 2, 3)} | {"filter_1_on": 0.0, "filter_2_on": 0.0}
    controls |= {"modulation_1_amount": 0.0, **analysis.envelope.controls("env_1")}
    if analysis.pitched:
        controls |= {
            "osc_1_on": 1.0, "osc_1_level": 1.0, "osc_1_wave_frame": 0.0, "osc_1_transpose": 0.0,
            "osc_1_tune": float(np.clip(analysis.tune, -1.0, 1.0)), "osc_1_unison_voices": 1.0,
            "osc_1_spectral_morph_amount": 0.0, "osc_1_distortion_amount": 0.0, "osc_1_pan": 0.0,
        }  # fmt: skip
    else:
        controls |= {
            "filter_1_on": 1.0, "filter_1_model": 0.0, "filter_1_style": 0.0, "filter_1_blend": 0.0,
            "filter_1_cutoff": analysis.noise_cutoff, "filter_1_resonance": 0.0, "filter_1_drive": 0.0,
            "filter_1_keytrack": 0.0,
        }  # fmt: skip
    return controls


def wavetable_vector(analysis: NoteAnalysis, spec: VitalParamSpec | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The Tier-1 vector that goes with :func:`wavetable_base_preset`: (continuous in [0, 1], categorical).

    Pitched: oscillator 1 on at full level at ``osc_1_wave_frame`` 0 and the analysed tune, oscillators 2-3
    and the filters off. Unpitched: the oscillators off, filter 1 a 12 dB low pass at the fitted cutoff.
    Both: ``env_1`` as fitted, effects as in the init preset (off)."""
    spec = spec or tier1_spec()
    doc = base_preset(spec)
    doc["settings"].update(_suggested_controls(analysis))
    return vector_from_preset(doc, spec)


def analysis_preset(
    analysis: NoteAnalysis, spec: VitalParamSpec | None = None, tilt_db_per_octave: float = 0.0
) -> dict[str, Any]:
    """The complete ``.vital`` document of an analysis (no search): :func:`wavetable_vector` written onto
    :func:`wavetable_base_preset`. Play it at ``analysis.midi``."""
    continuous, categorical = wavetable_vector(analysis, spec)
    base = wavetable_base_preset(analysis, spec, tilt_db_per_octave)
    return preset_from_vector(continuous, categorical, spec, name="Wavetable from audio", base=base)


def wavetable_preset(
    audio: np.ndarray, midi: int | None = None, n_keyframes: int = N_KEYFRAMES, note_seconds: float | None = None
) -> dict[str, Any]:
    """The ``.vital`` document that resynthesises the main note of a mono 44.1 kHz recording (no search):
    :func:`analysis_preset` of :func:`analyse_note`. Play it at ``midi`` (when given; else the detected note)."""
    return analysis_preset(analyse_note(audio, midi=midi, n_keyframes=n_keyframes, note_seconds=note_seconds))
