"""Phrases with known notes, rendered from the human-made Vital presets of ``../shared/presets/``.

The ground truth of note finding (``benchmarks.note_finding``) and of resynthesising a whole phrase: each
preset plays melodies drawn deterministically from ``(seed, preset file name, phrase index)``:

- 4 to 12 notes at 80-140 BPM; inter-onset intervals of 1/4 to 2 beats (sixteenths are rare);
- a walk over a major or minor scale from a register between MIDI 48 and 66, mostly steps of one to three
  degrees, sometimes a leap, now and then the same note again (turning back at MIDI 36 and 84);
- a style per phrase: phrase 0 ``legato`` (each note held until the next starts, 95-105 % of the interval,
  so releases overlap the next note), phrase 1 ``staccato`` (held 25-50 % of the interval), later phrases
  ``mixed`` (each note either way);
- velocities 0.55-1.0; 0.1-0.5 s of silence before the first note, 1.5 s after the last note's end.

Notes are rendered with :func:`zoo.vital.phrase.render_phrase` (each note at its onset, mixed, 3 s of
release at most). A preset's oscillators may be transposed, so the pitch a listener hears is not always the
MIDI note played: :func:`sounding_transpose` measures it once per preset with librosa's pYIN (an estimator
independent of ``zoo.notes``) on a held C4, and is ``None`` when that note has no steady pitch.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.audio import SAMPLE_RATE

PRESET_LISTS = ("evaluation", "calibration")
STYLES = ("legato", "staccato", "mixed")
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
_BEATS = (0.25, 0.5, 1.0, 1.5, 2.0)
_BEAT_WEIGHTS = (0.05, 0.35, 0.35, 0.1, 0.15)
_STEPS = (-7, -4, -3, -2, -1, 0, 1, 2, 3, 4, 7)
_STEP_WEIGHTS = (0.03, 0.05, 0.08, 0.15, 0.18, 0.06, 0.18, 0.15, 0.07, 0.03, 0.02)
_RELEASE_SECONDS = 3.0
_TAIL_SECONDS = 1.5


@dataclass(frozen=True)
class ScoreNote:
    """One note as played: MIDI note sent to the synth, onset and held length in seconds, velocity."""

    midi: int
    onset_seconds: float
    duration_seconds: float
    velocity: float


@dataclass
class RenderedPhrase:
    """A phrase of one preset: mono float32 audio at 44.1 kHz (not normalised) and the notes played.

    ``transpose`` is the preset's sounding pitch minus the MIDI note played (semitones), ``None`` for a preset
    without a steady pitch; the pitch a listener hears is ``note.midi + transpose``."""

    preset: str  # path relative to the presets folder
    index: int
    style: str
    seconds: float
    notes: tuple[ScoreNote, ...]
    transpose: int | None
    audio: np.ndarray

    def score(self) -> dict[str, Any]:
        """Everything but the audio, as plain data (JSON-able)."""
        return {
            "preset": self.preset,
            "index": self.index,
            "style": self.style,
            "seconds": self.seconds,
            "transpose": self.transpose,
            "notes": [asdict(n) for n in self.notes],
        }


def presets_dir() -> Path:
    """``$ZOO_PRESETS_DIR`` if set, else ``<repository>/../shared/presets``."""
    env = os.environ.get("ZOO_PRESETS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "presets"


def preset_paths(list_name: str = "evaluation", root: Path | None = None) -> list[str]:
    """The presets of ``evaluation.txt`` or ``calibration.txt``, relative to the presets folder."""
    if list_name not in PRESET_LISTS:
        raise ValueError(f"preset list must be one of {PRESET_LISTS}, got {list_name!r}")
    listing = (root or presets_dir()) / f"{list_name}.txt"
    if not listing.is_file():
        raise FileNotFoundError(f"no preset list at {listing} (set ZOO_PRESETS_DIR to the presets folder)")
    return [line.strip() for line in listing.read_text().splitlines() if line.strip() and not line.startswith("#")]


def plan_phrase(seed: int, preset: str, index: int) -> tuple[str, tuple[ScoreNote, ...], float]:
    """(style, notes, seconds) of phrase ``index`` of ``preset``, drawn from ``(seed, file name, index)``."""
    rng = np.random.default_rng([seed, zlib.crc32(Path(preset).name.encode()), index])
    style = STYLES[min(index, 2)]
    beat = 60.0 / float(rng.uniform(80, 140))
    scale = _MAJOR if rng.random() < 0.5 else _MINOR
    root = int(rng.integers(48, 67))
    degree, t = 0, float(rng.uniform(0.1, 0.5))
    notes = []
    for _ in range(int(rng.integers(4, 13))):
        octave, step = divmod(degree, len(scale))
        midi = root + 12 * octave + scale[step]
        interval = beat * float(rng.choice(_BEATS, p=_BEAT_WEIGHTS))
        legato = style == "legato" or (style == "mixed" and rng.random() < 0.5)
        held = interval * float(rng.uniform(0.95, 1.05) if legato else rng.uniform(0.25, 0.5))
        notes.append(ScoreNote(midi, round(t, 4), round(held, 4), round(float(rng.uniform(0.55, 1.0)), 3)))
        t += interval
        step = int(rng.choice(_STEPS, p=_STEP_WEIGHTS))
        octave, rest = divmod(degree + step, len(scale))
        if not 36 <= root + 12 * octave + scale[rest] <= 84:
            step = -step  # turn back at the edges of the range
        degree += step
    end = max(n.onset_seconds + n.duration_seconds for n in notes)
    return style, tuple(notes), round(end + _TAIL_SECONDS, 3)


def sounding_transpose(renderer: Any, preset: dict[str, Any]) -> int | None:
    """Semitones between the pitch ``preset`` sounds at and the MIDI note played (C4 held 1 s), by pYIN;
    ``None`` when under half the frames are voiced or the voiced pitch wanders over a semitone."""
    from zoo.optional import import_optional

    librosa = import_optional("librosa")
    audio = renderer.render(preset, 60, 0.8, 1.0, 1.2)[int(0.05 * SAMPLE_RATE) : int(1.0 * SAMPLE_RATE)]
    f0, voiced, _ = librosa.pyin(audio, fmin=30.0, fmax=4000.0, sr=SAMPLE_RATE, frame_length=4096)
    if np.mean(voiced) < 0.5:
        return None
    midi = librosa.hz_to_midi(f0[voiced])
    if np.percentile(midi, 90) - np.percentile(midi, 10) > 1.0:
        return None
    return int(round(float(np.median(midi)) - 60))


def preset_phrases(
    renderer: Any,
    name: str,
    seed: int = 0,
    phrases_per_preset: int = 2,
    root: Path | None = None,
    indices: Sequence[int] | None = None,
) -> list[RenderedPhrase]:
    """The phrases of one preset (``name`` relative to the presets folder), rendered with ``renderer``
    (a :class:`zoo.vital.render.VitalRenderer`): phrases ``0 .. phrases_per_preset - 1``, or ``indices``."""
    from zoo.vital.phrase import render_phrase

    preset = json.loads(((root or presets_dir()) / name).read_text())
    transpose = sounding_transpose(renderer, preset)
    out = []
    for index in range(phrases_per_preset) if indices is None else indices:
        style, notes, seconds = plan_phrase(seed, name, index)
        audio = render_phrase(renderer, notes, seconds, preset=preset, release_seconds=_RELEASE_SECONDS)
        out.append(RenderedPhrase(name, index, style, seconds, notes, transpose, audio))
    return out


def phrase_set(
    list_name: str = "evaluation", seed: int = 0, phrases_per_preset: int = 2, root: Path | None = None
) -> Iterator[RenderedPhrase]:
    """Render ``phrases_per_preset`` phrases of every preset of a list (see the module docstring), preset by
    preset in the list's order. Needs vita, librosa and the presets folder."""
    from zoo.vital.render import VitalRenderer

    renderer = VitalRenderer()
    for name in preset_paths(list_name, root):
        yield from preset_phrases(renderer, name, seed, phrases_per_preset, root)


# --------------------------------------------------------------------------------------------------
# Inputs that are not Vital at all


def _plucked_string(midi: int, seconds: float, rng: np.random.Generator, decay: float = 0.996) -> np.ndarray:
    """Karplus-Strong: a burst of noise through a delay line of one period with a two-point average."""
    from scipy.signal import lfilter

    period = 440.0 * 2 ** ((midi - 69) / 12)
    delay = max(2, int(round(SAMPLE_RATE / period - 0.5)))  # the averaging filter adds half a sample
    n = int(seconds * SAMPLE_RATE)
    excitation = np.zeros(n)
    excitation[:delay] = rng.uniform(-1, 1, delay)
    a = np.zeros(delay + 2)
    a[0], a[delay], a[delay + 1] = 1.0, -decay / 2, -decay / 2
    return lfilter([1.0], a, excitation).astype(np.float32)


def non_vital_phrases(seed: int = 0) -> list[RenderedPhrase]:
    """Three recordings no synth made, with what was played: a plucked-string melody (Karplus-Strong, 6 notes),
    a sine sweep (one tone gliding 110 Hz -> 1760 Hz over 2 s: one onset, no single pitch) and three bursts of
    white noise (onsets, no pitch). ``transpose`` is 0 for the string, ``None`` for the others."""
    rng = np.random.default_rng([seed, 99])
    score = tuple(
        ScoreNote(m, t, d, 0.8) for m, t, d in ((55, 0.2, 0.5), (59, 0.7, 0.3), (62, 1.0, 0.6), (67, 1.6, 0.3),
                                                (64, 1.9, 0.3), (60, 2.2, 1.0))
    )  # fmt: skip
    string = np.zeros(int(3.5 * SAMPLE_RATE), dtype=np.float32)
    for note in score:
        start = int(note.onset_seconds * SAMPLE_RATE)
        tone = _plucked_string(note.midi, 3.5 - note.onset_seconds, rng)
        # A player damps the string when the next note starts (and lets the last one ring).
        held = int(note.duration_seconds * SAMPLE_RATE) if note is not score[-1] else len(tone)
        tone[held:] *= np.exp(-np.arange(len(tone) - held) / (0.01 * SAMPLE_RATE)).astype(np.float32)
        string[start : start + len(tone)] += 0.3 * tone
    t = np.arange(int(2.0 * SAMPLE_RATE)) / SAMPLE_RATE
    sweep_tone = 0.3 * np.sin(2 * np.pi * 110.0 * 2.0 / np.log(16.0) * (16.0 ** (t / 2.0) - 1))
    sweep = np.concatenate([np.zeros(int(0.3 * SAMPLE_RATE)), sweep_tone, np.zeros(int(0.5 * SAMPLE_RATE))])
    noise = np.zeros(int(2.5 * SAMPLE_RATE), dtype=np.float32)
    bursts = tuple(ScoreNote(60, t0, 0.3, 0.8) for t0 in (0.2, 0.9, 1.6))
    for b in bursts:
        start = int(b.onset_seconds * SAMPLE_RATE)
        noise[start : start + int(0.3 * SAMPLE_RATE)] = 0.2 * rng.standard_normal(int(0.3 * SAMPLE_RATE))
    return [
        RenderedPhrase("numpy/plucked_string", 0, "staccato", 3.5, score, 0, string),
        RenderedPhrase("numpy/sine_sweep", 0, "legato", 2.8, (ScoreNote(45, 0.3, 2.0, 0.8),), None,
                       sweep.astype(np.float32)),
        RenderedPhrase("numpy/noise_bursts", 0, "staccato", 2.5, bursts, None, noise),
    ]  # fmt: skip
