"""The one definition of how far a candidate preset sounds from a target.

A candidate's distance is the mean, over the target's notes, of ``zoo.spectral.multiscale_spectral_distance``
between Vital's render of the candidate at that note (the note held ``note_seconds``, rendered exactly as
long as the clip, velocity as played) and the note's clip. A render that raises, that is silent (it cannot
be loudness-matched) or that gives a non-finite distance scores :data:`FAILED_DISTANCE`: a finite value
above any real distance, so an optimizer ranks it last, and reported with the reason in :attr:`Score.error`.

Renders of one patch are not bit-identical in Vital (random oscillator phases, free-running effect LFOs), so
the distance of one candidate varies a little from render to render; ``benchmarks/results/search`` gives
the measured spread.

The search scores candidates through an :class:`Objective`: :class:`~zoo.matching.pool.RenderPool` provides
one that renders in worker processes; tests inject deterministic ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from zoo.errors import AudioDecodeError
from zoo.matching.candidates import Candidate
from zoo.matching.target import Target, TargetNote

# The log-magnitude L1 of a -20 dBFS clip against digital silence is about 12: 100 is above any real distance.
FAILED_DISTANCE = 100.0


@dataclass(frozen=True)
class Score:
    """A candidate's distance to the target; ``error`` says why it scored :data:`FAILED_DISTANCE`."""

    distance: float
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None


def failed(reason: str) -> Score:
    """The score of a candidate that could not be rendered or compared."""
    return Score(FAILED_DISTANCE, reason)


class Objective(Protocol):
    """Scores candidates against one target (lower is closer).

    ``deadline`` (``time.monotonic()`` seconds): candidates not started by then are not scored (None in
    the answer); the ones already rendering finish. ``renders_per_candidate``: Vital renders one score costs.
    """

    renders_per_candidate: int

    def __call__(self, candidates: Sequence[Candidate], deadline: float | None = None) -> list[Score | None]: ...


def note_distance(note: TargetNote, audio: np.ndarray) -> Score:
    """The distance of a render of ``note`` (as long as its clip) to the clip:
    ``multiscale_spectral_distance(note.clip, audio)``, with the clip's side computed once."""
    try:
        distance = note.reference.distance(audio)
    except AudioDecodeError:
        return failed(f"silent render at MIDI {note.midi}")
    if not math.isfinite(distance):
        return failed(f"non-finite distance at MIDI {note.midi}")
    return Score(min(distance, FAILED_DISTANCE))


def render_note(renderer, note: TargetNote) -> np.ndarray:
    """Render the synth's current state (``VitalRenderer``) at ``note``: held ``note_seconds``, as long as
    the clip. Mono float32 (clip length,)."""
    return renderer.render_current(note.midi, note.velocity, note.note_seconds, note.render_seconds)


def score_candidate(renderer, candidate: Candidate, target: Target) -> Score:
    """Put ``candidate`` on ``renderer`` (a ``zoo.vital.render.VitalRenderer``) and score it: the mean
    distance over the target's notes. Never raises for a bad render: that scores :data:`FAILED_DISTANCE`."""
    try:
        renderer.set_base(candidate.base)
        renderer.set_vector(candidate.continuous, candidate.categorical, candidate.controls)
        distances = []
        for note in target.notes:
            score = note_distance(note, render_note(renderer, note))
            if score.failed:
                return score
            distances.append(score.distance)
    except Exception as e:  # noqa: BLE001 - any failure of the engine on a candidate is that candidate's score
        return failed(f"render failed ({type(e).__name__}: {e})")
    return Score(float(np.mean(distances)))
