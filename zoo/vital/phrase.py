"""Playing a whole phrase with one preset: each note at its onset, held for its duration, at its velocity.

vita renders one note per call and starts from silence every time, so a phrase is rendered note by note
and mixed: note ``i`` is rendered held for its duration, then for up to ``release_seconds`` more (its
release tail), and added to the output from its onset. Tails that reach the end of the phrase, or the
``release_seconds`` cap, are faded out over 20 ms so that no note ends in a click. The notes overlap the
way they would on a polyphonic synth (a mono preset's glide between legato notes is not reproduced).

Any object with ``midi``, ``onset_seconds``, ``duration_seconds`` and ``velocity`` is a note here: the
notes found in a recording (:class:`zoo.notes.Note`) and a benchmark's score alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from zoo.audio import SAMPLE_RATE
from zoo.vital.render import VitalRenderer

RELEASE_SECONDS = 2.0  # the longest release tail rendered after a note's end
_FADE_SECONDS = 0.02
_MIN_NOTE_SECONDS = 0.005


class PlayedNote(Protocol):
    """What :func:`render_phrase` needs of a note."""

    @property
    def midi(self) -> int: ...

    @property
    def onset_seconds(self) -> float: ...

    @property
    def duration_seconds(self) -> float: ...

    @property
    def velocity(self) -> float: ...


def release_seconds_of(audio: np.ndarray, note_seconds: float, range_db: float = 60.0) -> float:
    """How long a one-note render keeps sounding after its note-off at ``note_seconds``: until its level
    stays ``range_db`` under the render's peak (5.8 ms RMS frames). The render's end when it never does:
    pass it as ``release_seconds`` to :func:`render_phrase` to render no longer than needed."""
    frame = 256
    n = len(audio) // frame
    if n == 0:
        return 0.0
    rms = np.sqrt(np.mean(np.square(audio[: n * frame].reshape(n, frame), dtype=np.float64), axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (-range_db / 20))
    end = (int(loud[-1]) + 1) * frame / SAMPLE_RATE if len(loud) else 0.0
    return max(0.0, end - note_seconds)


def render_phrase(
    renderer: VitalRenderer,
    notes: Sequence[PlayedNote],
    seconds: float,
    *,
    preset: dict[str, Any] | None = None,
    vector: tuple[np.ndarray, np.ndarray] | None = None,
    transpose: int = 0,
    release_seconds: float = RELEASE_SECONDS,
) -> np.ndarray:
    """Render ``notes`` with one preset into a mono float32 mix of ``round(seconds * 44100)`` samples.

    The preset is a ``.vital`` document (``preset``), a spec vector ``(continuous, categorical)``
    (``vector``, the faster path), or, with neither, whatever ``renderer`` has loaded now. ``transpose``
    (semitones) is added to every note, clamped to 0..127: a preset whose oscillators are transposed sounds
    at the recording's pitch when played shifted. The mix is not loudness-normalised; notes that start at
    or after ``seconds`` are skipped. Raises :class:`zoo.errors.PresetError` for a preset Vital refuses."""
    if preset is not None and vector is not None:
        raise ValueError("give a preset or a vector, not both")
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    if release_seconds < 0:
        raise ValueError(f"release_seconds must be >= 0, got {release_seconds}")
    out = np.zeros(int(round(seconds * SAMPLE_RATE)), dtype=np.float32)
    fade = int(_FADE_SECONDS * SAMPLE_RATE)
    loaded = preset is None and vector is None
    for note in sorted(notes, key=lambda n: n.onset_seconds):
        start = int(round(note.onset_seconds * SAMPLE_RATE))
        if start >= len(out):
            continue
        room = (len(out) - start) / SAMPLE_RATE
        held = min(max(float(note.duration_seconds), _MIN_NOTE_SECONDS), room)
        length = min(held + release_seconds, room)
        midi = int(np.clip(int(note.midi) + transpose, 0, 127))
        velocity = float(np.clip(note.velocity, 0.01, 1.0))
        if not loaded:  # load once; later notes reuse the synth's state
            if preset is not None:
                audio = renderer.render(preset, midi, velocity, held, length)
            else:
                audio = renderer.render_vector(vector[0], vector[1], midi, velocity, held, length)
            loaded = True
        else:
            audio = renderer.render_current(midi, velocity, held, length)
        audio = audio[: len(out) - start]
        if len(audio) >= 2 * fade:
            audio = audio.copy()
            audio[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
        out[start : start + len(audio)] += audio
    return out
