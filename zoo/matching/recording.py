"""What a search needs from a recording: the notes to match and the wavetable its main note proposes.

The one place the server, ``zoo predict`` and the benchmarks turn a recording and its notes
(``zoo.notes.find_phrase``) into a search's inputs: :meth:`Target.from_phrase` (the most prominent notes,
each at its pitch, held length and velocity) and, for the wavetable starts
(``zoo.matching.candidates.wavetable_candidates``), ``zoo.vital.resynthesis.analyse_note`` of the main note
at its MIDI pitch and held length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from zoo.matching.target import Target
from zoo.notes import PROMINENT_NOTES, Phrase


@dataclass(frozen=True, eq=False)
class SearchInputs:
    """A recording's target and the analysis of its main note (None: no wavetable starts)."""

    target: Target
    analysis: Any | None  # zoo.vital.resynthesis.NoteAnalysis


def analyse_main_note(audio: np.ndarray, phrase: Phrase) -> Any:
    """``analyse_note`` of the phrase's main note: its audio up to the next note, at its MIDI note, held as
    long as the note finder says."""
    from zoo.vital.resynthesis import analyse_note

    main = phrase.main
    return analyse_note(audio, midi=main.midi, note=main, note_seconds=max(main.duration_seconds, 0.05))


def search_inputs(
    audio: np.ndarray, phrase: Phrase, n_notes: int = PROMINENT_NOTES, wavetable: bool = True
) -> SearchInputs:
    """The search inputs of a mono 44.1 kHz recording whose notes are ``phrase``: the target of its
    ``n_notes`` most prominent notes and, with ``wavetable``, the analysis of its main note. Raises
    ``AudioDecodeError`` when no note can be matched."""
    audio = np.asarray(audio, dtype=np.float32)
    target = Target.from_phrase(audio, phrase, n_notes)
    return SearchInputs(target, analyse_main_note(audio, phrase) if wavetable else None)
