"""The ``single_cycle`` baseline: what the one public audio-to-Vital tool does, written in this project.

One waveform cycle of the sustained part of the recording becomes oscillator 1's whole wavetable, and
``env_1``'s attack, decay and sustain come from the recording's amplitude envelope; everything else is Vital's
init preset (release and curve shapes included), so attack, decay and sustain are fitted to the held part of
the note alone. The cycle is cut as such a tool cuts it: from a rising zero crossing near the middle of the
sustained part (``zoo.vital.resynthesis.sustain_time``), one period at the detected pitch (YIN,
``zoo.notes``), read at 2048 evenly spaced points by linear interpolation. It is not band-limited beyond what
Vital does when it plays a table, and a waveform that changes within the cycle leaves a step where the cycle
wraps. An unpitched sound is cut the same way at YIN's best guess: the tool has no other mode.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from zoo.audio import SAMPLE_RATE
from zoo.vital.envelope import fit_envelope
from zoo.vital.preset import init_preset, vector_from_preset
from zoo.vital.resynthesis import note_pitch, note_segment, sustain_time
from zoo.vital.wavetable import WAVE_SIZE, wavetable_from_frames

PRESET_NAME = "Single cycle"


def cut_cycle(audio: np.ndarray, f0_hz: float, centre: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """One period of ``audio`` near sample ``centre``, from the rising zero crossing closest to it, resampled
    to 2048 points (linear interpolation), DC removed and scaled to peak 1. float32 (2048,)."""
    audio = np.asarray(audio, dtype=np.float64)
    period = sample_rate / f0_hz
    lo = int(max(0, centre - period))
    hi = int(min(len(audio) - period - 2, centre + period))
    if hi <= lo:
        raise ValueError(f"the audio is shorter than one period ({period:.1f} samples) around sample {centre}")
    segment = audio[lo : hi + 1]
    rising = np.flatnonzero((segment[:-1] <= 0.0) & (segment[1:] > 0.0))
    if len(rising):
        i = int(rising[np.argmin(np.abs(rising + lo - centre))])
        start = lo + i + segment[i] / (segment[i] - segment[i + 1])  # where the line crosses zero
    else:
        start = float(centre)
    positions = start + period * np.arange(WAVE_SIZE) / WAVE_SIZE
    cycle = np.interp(positions, np.arange(len(audio)), audio)
    cycle -= cycle.mean()
    return (cycle / max(float(np.abs(cycle).max()), 1e-12)).astype(np.float32)


def single_cycle_preset(
    audio: np.ndarray, midi: int | None = None, note_seconds: float | None = None, sample_rate: int = SAMPLE_RATE
) -> dict[str, Any]:
    """The ``single_cycle`` baseline's ``.vital`` document for the main note of a mono 44.1 kHz recording.

    ``midi``: the note's pitch when known (YIN's f0 is kept within half a semitone of it); play the document
    at that note. ``note_seconds``: how long the key was held, when known (estimated otherwise). Raises
    ``AudioDecodeError`` for silent audio."""
    audio = np.asarray(audio, dtype=np.float32)
    note, segment = note_segment(audio, None, note_seconds, sample_rate)
    f0, _ = note_pitch(note, midi)
    if note_seconds is None:  # the key-off, from the whole envelope
        _, note_seconds = fit_envelope(segment, sample_rate)
    fitted = ("attack", "decay", "sustain")
    envelope, _ = fit_envelope(segment, sample_rate, note_seconds=note_seconds, fitted=fitted, held_only=True)
    centre = note.onset_sample + int(sustain_time(envelope, note_seconds) * sample_rate)
    cycle = cut_cycle(audio, f0, centre, sample_rate)
    doc = init_preset()
    doc["preset_name"] = PRESET_NAME
    settings = doc["settings"]
    settings["wavetables"][0] = wavetable_from_frames(settings["wavetables"][0], [cycle], [0], PRESET_NAME)
    controls = envelope.controls("env_1")
    for name in ("env_1_attack", "env_1_decay", "env_1_sustain"):
        settings[name] = controls[name]
    return doc


def single_cycle_candidate(
    audio: np.ndarray, midi: int | None = None, note_seconds: float | None = None
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """``single_cycle`` in the (base document, Tier-1 vector) form of search candidates and vector renderers:
    the document and its own Tier-1 projection, which applied onto it changes nothing audible."""
    doc = single_cycle_preset(audio, midi=midi, note_seconds=note_seconds)
    continuous, categorical = vector_from_preset(doc)
    return doc, continuous, categorical
