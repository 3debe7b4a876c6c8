"""A song-structure dataset synthesized with Vital: songs of verse and chorus sections, labelled per frame.

Nothing is downloaded: every song is drawn from ``(seed, index)`` and rendered with the Vital engine through
``zoo.vital`` (random Tier-1 presets from :class:`~zoo.vital.sampler.PresetSampler`, notes rendered with
:class:`~zoo.vital.render.VitalRenderer`), then mixed into a timeline here.

A song is ``BARS`` bars of 4/4 at 120 BPM (2 s a bar, 24 s in all) in a random key (major or minor). It is
cut into sections of 2 to 4 bars; the first is a verse with probability 0.75, and each next section changes
type with probability 0.8. Verse and chorus differ the way they tend to in pop music, each cue drawn at random
so that no single one decides:

- a lead melody on a two-bar pattern (over four scale degrees) repeated through every section of that type:
  quarter notes in the
  verse; eighth notes in the chorus with probability 0.75, played 3 to 12 semitones higher; a different
  lead preset in the chorus with probability 0.7;
- a bass on the chord roots (half notes) from one bass preset, with a different two-chord progression per
  section type;
- a sustained pad on each chord in the chorus with probability 0.8 (in the verse with probability 0.25);
- velocities around 0.6 in the verse and 0.85 in the chorus, and the chorus mixed 0 to 4 dB louder.

Every distinct (preset, note, length, velocity) is rendered once per song and reused, so a song costs about
fifteen short renders (about 12 s of audio). Each layer is scaled by the RMS of its first note, so a preset's
own loudness does not leak into the labels, and the mix is loudness-normalized as a whole (the same
``normalize_loudness`` as everywhere), which keeps the chorus/verse contrast.

Features are the project's log-mel front end (:class:`~zoo.audio.LogMelFrontEnd`) configured for songs:
``FRONT_END`` = 64 mel bands, n_fft 2048, hop 2048 (a frame every 46 ms, 517 frames per song). Frame ``t``
is labelled with the section sounding at ``t * hop`` samples: 0 verse, 1 chorus.

The HDF5 file (written to a temporary name, renamed when complete, so an interrupted run leaves no broken
file): ``features`` (N, 64, 517) float32, ``labels`` (N, 517) uint8, ``songs`` (N,) JSON text per song
(sections, key, presets, cues); attributes ``seed``, ``n_songs``, ``front_end`` (JSON), ``frame_seconds``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.data.frames import create_frame_datasets
from zoo.audio import AUDIBLE_MARGIN_DB, SAMPLE_RATE, FrontEndConfig, is_silent, normalize_loudness
from zoo.files import atomic_path
from zoo.workers import process_pool

BARS = 12
BAR_SECONDS = 2.0
BEAT_SECONDS = BAR_SECONDS / 4
SONG_SAMPLES = int(BARS * BAR_SECONDS * SAMPLE_RATE)  # 1,058,400
FRONT_END = FrontEndConfig(n_samples=SONG_SAMPLES, n_fft=2048, hop_length=2048, n_mels=64)
N_FRAMES = FRONT_END.n_frames  # 517
VERSE, CHORUS = 0, 1
KINDS = ("verse", "chorus")
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
# Two-bar progressions as scale degrees (0 = tonic): the verse and the chorus draw different ones.
_PROGRESSIONS = ((0, 5), (0, 3), (5, 3), (3, 4), (0, 4), (5, 4))
_TAIL_SECONDS = 0.25  # rendered after each note's release, for the envelope's tail
_LAYER_LEVEL = {"lead": 0.30, "bass": 0.25, "pad": 0.15}


@dataclass(frozen=True)
class Note:
    """One note of a song: which layer and preset, pitch, onset, length and velocity."""

    layer: str
    preset: int  # index into the song's presets
    pitch: int
    onset: float  # seconds
    seconds: float
    velocity: float
    section: int  # index of its section


def _scale_pitch(root: int, scale: tuple[int, ...], degree: int) -> int:
    octave, step = divmod(degree, len(scale))
    return root + 12 * octave + scale[step]


def plan_song(seed: int, index: int) -> dict[str, Any]:
    """The score of song ``index``: sections, presets, cues and every note (plain data, JSON-able)."""
    rng = np.random.default_rng([seed, index, 7])
    sections: list[dict[str, int]] = []
    kind = VERSE if rng.random() < 0.75 else CHORUS
    bar = 0
    while bar < BARS:
        length = min(int(rng.integers(2, 5)), BARS - bar)
        sections.append({"kind": kind, "start_bar": bar, "bars": length})
        bar += length
        kind = 1 - kind if rng.random() < 0.8 else kind
    root = int(rng.integers(40, 52))
    scale = _MAJOR if rng.random() < 0.5 else _MINOR
    verse_prog, chorus_prog = (_PROGRESSIONS[i] for i in rng.choice(len(_PROGRESSIONS), 2, replace=False))
    cues = {
        "chorus_eighths": bool(rng.random() < 0.75),
        "chorus_shift": int(rng.integers(3, 13)),
        "chorus_new_lead": bool(rng.random() < 0.7),
        "pad": {"verse": bool(rng.random() < 0.25), "chorus": bool(rng.random() < 0.8)},
        "velocity": {"verse": float(rng.uniform(0.5, 0.7)), "chorus": float(rng.uniform(0.75, 0.95))},
        "chorus_gain_db": float(rng.uniform(0.0, 4.0)),
    }
    # Presets: 0 verse lead, 1 chorus lead (or 0 again), 2 bass, 3 pad.
    lead = {VERSE: 0, CHORUS: 1 if cues["chorus_new_lead"] else 0}
    # Two-bar lead patterns over four scale degrees each, an octave above the root.
    patterns = {}
    for kind, n in ((VERSE, 8), (CHORUS, 16 if cues["chorus_eighths"] else 8)):
        degrees = rng.choice(np.arange(7, 15), size=4, replace=False)
        patterns[kind] = [int(d) for d in rng.choice(degrees, size=n)]
    notes: list[Note] = []
    for s, section in enumerate(sections):
        kind = section["kind"]
        progression = verse_prog if kind == VERSE else chorus_prog
        velocity = cues["velocity"][KINDS[kind]]
        shift = cues["chorus_shift"] if kind == CHORUS else 0
        pattern = patterns[kind]
        step = 2 * BAR_SECONDS / len(pattern)
        for b in range(section["bars"]):
            t0 = (section["start_bar"] + b) * BAR_SECONDS
            chord = progression[(section["start_bar"] + b) % 2]
            half = pattern[(b % 2) * len(pattern) // 2 : (b % 2 + 1) * len(pattern) // 2]
            for i, degree in enumerate(half):
                pitch = _scale_pitch(root, scale, degree) + shift
                notes.append(Note("lead", lead[kind], pitch, t0 + i * step, 0.8 * step, velocity, s))
            bass = _scale_pitch(root, scale, chord) - 12
            for i in range(2):
                notes.append(Note("bass", 2, bass, t0 + i * 2 * BEAT_SECONDS, 1.6 * BEAT_SECONDS, velocity, s))
            if cues["pad"][KINDS[kind]]:
                pad = _scale_pitch(root, scale, chord + 2) + 12  # the chord's third, an octave up
                notes.append(Note("pad", 3, pad, t0, 0.5 * BAR_SECONDS, 0.8 * velocity, s))
    return {
        "index": index,
        "sections": sections,
        "root": root,
        "scale": "major" if scale == _MAJOR else "minor",
        "progressions": {"verse": list(verse_prog), "chorus": list(chorus_prog)},
        "cues": cues,
        "notes": [asdict(n) for n in notes],
    }


def frame_labels(sections: list[dict[str, int]], n_frames: int = N_FRAMES, hop: int = FRONT_END.hop_length):
    """(n_frames,) uint8: the kind of the section sounding at each frame's centre (``t * hop`` samples)."""
    labels = np.zeros(n_frames, dtype=np.uint8)
    times = np.arange(n_frames) * hop / SAMPLE_RATE
    for section in sections:
        start = section["start_bar"] * BAR_SECONDS
        end = (section["start_bar"] + section["bars"]) * BAR_SECONDS
        labels[(times >= start) & (times < end)] = section["kind"]
    if times[-1] >= BARS * BAR_SECONDS:  # the last centred frame sits on the song's end: the last section
        labels[times >= BARS * BAR_SECONDS] = sections[-1]["kind"]
    return labels


class SongRenderer:
    """Renders planned songs with one Vital synth; presets are drawn from ``PresetSampler(seed)``."""

    max_attempts = 8

    def __init__(self, seed: int) -> None:
        import torch

        from zoo.audio import LogMelFrontEnd
        from zoo.vital.render import VitalRenderer
        from zoo.vital.sampler import PresetSampler

        self.seed = seed
        self.renderer = VitalRenderer()
        self.sampler = PresetSampler(seed=seed)
        self.front_end = LogMelFrontEnd(FRONT_END).eval()
        self._torch = torch

    def _render_note(self, pitch: int, seconds: float, velocity: float) -> np.ndarray:
        return self.renderer.render_current(int(pitch), float(velocity), float(seconds), seconds + _TAIL_SECONDS)

    def _load(self, preset_index: int, first: Note) -> tuple[int, float, np.ndarray]:
        """Load the first attempt of preset ``preset_index`` whose first note is audible; (attempt, its RMS,
        its render)."""
        for attempt in range(self.max_attempts):
            self.renderer.set_vector(*self.sampler.sample(preset_index, attempt))
            audio = self._render_note(first.pitch, first.seconds, first.velocity)
            if np.isfinite(audio).all() and not is_silent(audio, AUDIBLE_MARGIN_DB):
                return attempt, float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))), audio
        raise RuntimeError(f"no audible preset for index {preset_index} in {self.max_attempts} attempts")

    def render(self, plan: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
        """The mixed song (SONG_SAMPLES,) float32, loudness-normalized, and what was drawn for it."""
        song = np.zeros(SONG_SAMPLES + int(4 * SAMPLE_RATE), dtype=np.float32)
        notes = [Note(**n) for n in plan["notes"]]
        drawn: dict[str, Any] = {}
        gain_chorus = 10 ** (plan["cues"]["chorus_gain_db"] / 20)
        for preset in sorted({n.preset for n in notes}):
            mine = [n for n in notes if n.preset == preset]
            index = 4 * plan["index"] + preset  # song-specific presets from the sampler's stream
            attempt, reference, first = self._load(index, mine[0])
            drawn[str(preset)] = {"sampler_index": index, "attempt": attempt}
            cache: dict[tuple[int, float, float], np.ndarray] = {self._key(mine[0]): first}
            for n in mine:
                key = self._key(n)
                if key not in cache:
                    cache[key] = self._render_note(*key)
                audio = cache[key] * (_LAYER_LEVEL[n.layer] / reference)
                if plan["sections"][n.section]["kind"] == CHORUS:
                    audio = audio * gain_chorus
                start = int(round(n.onset * SAMPLE_RATE))
                song[start : start + len(audio)] += audio
        return normalize_loudness(song[:SONG_SAMPLES]), drawn

    @staticmethod
    def _key(note: Note) -> tuple[int, float, float]:
        return note.pitch, round(note.seconds, 4), round(note.velocity, 4)

    def features(self, audio: np.ndarray) -> np.ndarray:
        """Log-mel of a song, (n_mels, n_frames) float32."""
        with self._torch.no_grad():
            mel = self.front_end(self._torch.from_numpy(audio).unsqueeze(0))  # (1, 1, 64, 517)
        return mel[0, 0].numpy().astype(np.float32)


_worker: SongRenderer | None = None


def _init_worker(seed: int) -> None:
    global _worker
    import torch

    torch.set_num_threads(1)
    _worker = SongRenderer(seed)


def _make_song(args: tuple[int, int]) -> tuple[int, np.ndarray, np.ndarray, str]:
    seed, index = args
    if _worker is None:
        raise RuntimeError("song workers are created by _init_worker")
    plan = plan_song(seed, index)
    audio, drawn = _worker.render(plan)
    meta = {k: v for k, v in plan.items() if k != "notes"} | {"presets": drawn, "n_notes": len(plan["notes"])}
    return index, _worker.features(audio), frame_labels(plan["sections"]), json.dumps(meta)


def generate_songs(out: str | Path, n_songs: int, seed: int = 0, workers: int = 2, progress: bool = True) -> Path:
    """Render ``n_songs`` songs into the HDF5 file ``out`` (see the module docstring); returns its path."""
    import h5py
    from tqdm.auto import tqdm

    if n_songs < 1:
        raise ValueError(f"n_songs must be at least 1, got {n_songs}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    out = Path(out)
    # The workers start before the file is opened, so they inherit no HDF5 handle.
    with (
        atomic_path(out) as tmp,
        process_pool(workers, initializer=_init_worker, initargs=(seed,)) as pool,
        h5py.File(tmp, "w") as f,
    ):
        features, labels, songs = create_frame_datasets(
            f, "songs", n_songs, FRONT_END, list(KINDS), attrs={"seed": seed}
        )
        done = pool.imap(_make_song, [(seed, i) for i in range(n_songs)], chunksize=1)
        for index, feats, labs, meta in tqdm(done, total=n_songs, desc="songs", disable=not progress):
            features[index], labels[index], songs[index] = feats, labs, meta
    return out
