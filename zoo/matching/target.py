"""What a preset must sound like: one or more notes of a recording, each a clip and how it was played.

A :class:`TargetNote` is a loudness-normalised clip (``zoo.audio.normalize_loudness``) that starts at the
note's onset, the MIDI note that was played, how long the key was held and the velocity. A candidate preset
is rendered at that note, held that long, for exactly as long as the clip lasts, and compared with the clip
(``zoo.matching.objective``). A :class:`Target` is a sequence of such notes: a recording gives its
``n_notes`` most prominent notes (:meth:`Target.from_phrase`, ``zoo.notes.note_clips``), each at its pitch,
held length and velocity, its clip as long as the note plus 1 s of release (at most 4 s, never into the next
note): the one way the server, ``zoo predict`` and the benchmarks build the target of a recording.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from zoo.audio import SAMPLE_RATE, normalize_loudness
from zoo.notes import PROMINENT_NOTES
from zoo.spectral import SpectralReference

DEFAULT_VELOCITY = 0.8
MIN_NOTE_SECONDS = 0.05  # a note detected shorter than this is held this long
MIN_CLIP_SAMPLES = 2048  # the largest FFT of the distance: shorter note clips are padded with silence
MIN_CLIP_SECONDS = 0.1  # a shorter note (a click the note finder split off) is left out when a longer one exists


@dataclass(frozen=True, eq=False)
class TargetNote:
    """One note to match: ``clip`` float32 mono at 44.1 kHz, loudness-normalised, starting at the onset."""

    clip: np.ndarray
    midi: int
    note_seconds: float
    velocity: float = DEFAULT_VELOCITY

    def __post_init__(self) -> None:
        clip = np.ascontiguousarray(self.clip, dtype=np.float32)
        if clip.ndim != 1 or clip.size < 2048:
            raise ValueError(f"a target clip must be mono with at least 2048 samples, got shape {clip.shape}")
        if not np.isfinite(clip).all():
            raise ValueError("a target clip contains NaN or infinite samples")
        if not 0 <= int(self.midi) <= 127:
            raise ValueError(f"a target's MIDI note must be in 0..127, got {self.midi}")
        if not 0.0 < self.velocity <= 1.0:
            raise ValueError(f"a target's velocity must be in (0, 1], got {self.velocity}")
        if not 0.0 < self.note_seconds:
            raise ValueError(f"a target's note must be held for a positive time, got {self.note_seconds} s")
        clip.setflags(write=False)
        object.__setattr__(self, "clip", clip)
        object.__setattr__(self, "midi", int(self.midi))
        object.__setattr__(self, "note_seconds", float(min(self.note_seconds, self.render_seconds)))
        object.__setattr__(self, "velocity", float(self.velocity))

    @property
    def render_seconds(self) -> float:
        """How long a candidate is rendered: as long as the clip, no longer."""
        return self.clip.size / SAMPLE_RATE

    @cached_property
    def reference(self) -> SpectralReference:
        """The clip's spectra, computed once per process: each candidate's distance costs half the STFTs."""
        return SpectralReference(self.clip)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "reference"}  # recomputed where it is needed

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


@dataclass(frozen=True, eq=False)
class Target:
    """The notes a preset must match; its distance is the mean over them (``zoo.matching.objective``)."""

    notes: tuple[TargetNote, ...]

    def __post_init__(self) -> None:
        notes = tuple(self.notes)
        if not notes or not all(isinstance(n, TargetNote) for n in notes):
            raise ValueError("a target needs at least one TargetNote")
        object.__setattr__(self, "notes", notes)

    @cached_property
    def key(self) -> str:
        """A digest of the notes: render workers cache a target under it."""
        digest = hashlib.sha1()
        for n in self.notes:
            digest.update(np.array([n.midi, n.note_seconds, n.velocity, n.clip.size], dtype=np.float64).tobytes())
            digest.update(n.clip.tobytes())
        return digest.hexdigest()

    @property
    def renders_per_candidate(self) -> int:
        """Vital renders one candidate costs (one per note)."""
        return len(self.notes)

    @classmethod
    def from_clip(
        cls,
        clip: np.ndarray,
        midi: int,
        note_seconds: float | None = None,
        velocity: float = DEFAULT_VELOCITY,
    ) -> Target:
        """A one-note target from a clip that starts at the onset (normalised here; the clip may be raw).

        ``note_seconds``: how long the key was held (default: the whole clip). Raises
        :class:`~zoo.errors.AudioDecodeError` for a silent clip."""
        clip = normalize_loudness(np.asarray(clip, dtype=np.float32))
        seconds = clip.shape[-1] / SAMPLE_RATE if note_seconds is None else note_seconds
        return cls((TargetNote(clip, midi, seconds, velocity),))

    @classmethod
    def from_phrase(cls, audio: np.ndarray, phrase, n_notes: int = PROMINENT_NOTES) -> Target:
        """The ``n_notes`` most prominent notes of a mono 44.1 kHz recording whose notes ``zoo.notes`` found
        (``phrase``, a :class:`~zoo.notes.Phrase`): ``zoo.notes.note_clips``, in time order, each played at its
        MIDI note, held length and velocity. Notes whose clip lasts under ``MIN_CLIP_SECONDS`` are left out when
        a longer one exists; a clip shorter than 2048 samples is padded with silence. Raises
        :class:`~zoo.errors.AudioDecodeError` when every note is too quiet to normalise."""
        from zoo.errors import AudioDecodeError
        from zoo.notes import note_clips

        clips = note_clips(audio, phrase, n_notes)
        long_enough = [c for c in clips if c.clip.size >= MIN_CLIP_SECONDS * SAMPLE_RATE]
        notes = []
        for c in long_enough or clips:
            clip = np.pad(c.clip, (0, max(0, MIN_CLIP_SAMPLES - c.clip.size)))
            notes.append(TargetNote(clip, c.midi, max(MIN_NOTE_SECONDS, c.note_seconds), c.velocity))
        if not notes:
            raise AudioDecodeError("every note of the recording is too quiet to match")
        return cls(tuple(notes))

    @classmethod
    def from_recording(cls, audio: np.ndarray, n_notes: int = PROMINENT_NOTES) -> Target:
        """:meth:`from_phrase` of the notes ``zoo.notes.find_phrase`` finds in a mono 44.1 kHz recording.
        Raises :class:`~zoo.errors.AudioDecodeError` for a silent recording."""
        from zoo.notes import find_phrase

        audio = np.asarray(audio, dtype=np.float32)
        return cls.from_phrase(audio, find_phrase(audio), n_notes)
