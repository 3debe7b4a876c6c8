"""Playing a phrase with a preset: every note where, how long and how loud the score says."""

from dataclasses import dataclass

import numpy as np
import pytest

from zoo.audio import SAMPLE_RATE
from zoo.notes import find_notes
from zoo.vital.preset import init_preset, vector_from_preset

pytest.importorskip("vita")

from zoo.vital.phrase import release_seconds_of, render_phrase  # noqa: E402
from zoo.vital.render import VitalRenderer  # noqa: E402

SR = SAMPLE_RATE


@dataclass(frozen=True)
class Played:
    midi: int
    onset_seconds: float
    duration_seconds: float
    velocity: float = 0.8


SCORE = [Played(57, 0.25, 0.4), Played(64, 0.75, 0.2), Played(60, 1.1, 0.6), Played(67, 1.9, 0.3, 0.5)]


@pytest.fixture(scope="module")
def renderer():
    return VitalRenderer()


@pytest.mark.parametrize("how", ["preset", "vector"])
def test_each_note_sounds_at_its_onset_and_pitch(renderer, how):
    source = {"preset": init_preset()} if how == "preset" else {"vector": vector_from_preset(init_preset())}
    audio = render_phrase(renderer, SCORE, 3.0, **source)
    assert audio.shape == (3 * SR,) and audio.dtype == np.float32
    assert not audio[: int(0.24 * SR)].any()  # nothing before the first note
    found = find_notes(audio)
    assert [n.midi for n in found] == [n.midi for n in SCORE]
    for note, played in zip(found, SCORE, strict=True):
        assert abs(note.onset_seconds - played.onset_seconds) < 0.02
        assert abs(note.duration_seconds - played.duration_seconds) < 0.15


def test_transpose_and_the_end_of_the_phrase(renderer):
    late = [*SCORE, Played(72, 2.95, 0.5), Played(74, 3.2, 0.5)]  # the last one starts after the end
    audio = render_phrase(renderer, late, 3.0, preset=init_preset(), transpose=-12, release_seconds=0.5)
    assert audio.shape == (3 * SR,)
    found = find_notes(audio)
    assert [n.midi for n in found][:4] == [n.midi - 12 for n in SCORE]
    # Each note's tail stops release_seconds after its end: silence between 2.2 + 0.5 s and 2.95 s.
    assert np.abs(audio[int(2.75 * SR) : int(2.94 * SR)]).max() < 1e-4


def test_louder_velocity_is_louder_with_velocity_tracking(renderer):
    preset = init_preset()
    preset["settings"]["velocity_track"] = 1.0
    soft, loud = Played(60, 0.1, 0.5, 0.3), Played(60, 0.1, 0.5, 0.9)
    a = render_phrase(renderer, [soft], 1.0, preset=preset)
    b = render_phrase(renderer, [loud], 1.0, preset=preset)
    assert np.sqrt(np.mean(b**2)) > 4 * np.sqrt(np.mean(a**2))  # Vital: level ~ velocity**2 -> 9x


def test_preset_or_vector_not_both(renderer):
    with pytest.raises(ValueError, match="not both"):
        render_phrase(renderer, SCORE, 1.0, preset=init_preset(), vector=vector_from_preset(init_preset()))


def test_release_is_measured_from_a_one_note_render(renderer):
    short = init_preset()
    long = init_preset()
    long["settings"]["env_1_release"] = 1.0  # quartic: 1 s
    tails = [release_seconds_of(renderer.render(p, 60, 0.8, 0.5, 2.5), 0.5) for p in (short, long)]
    assert tails[0] < 0.4 and 0.6 < tails[1] <= 2.0
