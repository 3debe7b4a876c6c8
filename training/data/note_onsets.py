"""Phrases with known onsets for the note-onset network, rendered with Vital and labelled per frame.

Nothing is downloaded. Each phrase is a melody of :func:`benchmarks.phrase_set.plan_phrase` (4-12 notes at
80-140 BPM, legato, staccato or mixed, velocities 0.55-1.0) played by one preset, rendered note by note with
:func:`zoo.vital.phrase.render_phrase` (3 s of release at most) and cut or padded to ``PHRASE_SECONDS``.
Presets come from two sources, in turn:

- the Tier-1 sampler (:class:`zoo.vital.sampler.PresetSampler`, the ``mixture`` prior the shipped network
  was trained with): phrase ``i`` of this kind plays sampler preset ``i`` (the first audible attempt);
- human-made presets given by path (``--presets``: for this project the calibration list of
  ``../shared/presets/`` minus the presets kept back to decide on the note finder, see
  :data:`HELD_OUT_EVERY`): phrase ``i`` plays preset ``i mod n`` with its own melody. These bring what the
  Tier-1 space cannot make: presets that gate, sequence or echo themselves, slow pads, layered octaves.

The melodies are drawn with the generation's seed, which must differ from the note-finding benchmark's (0).
The scores and presets are the same for a seed; the audio is not bit for bit (Vital's random phases depend on
what its process rendered before, and phrases go to the workers as they free up).

Features are :func:`zoo.onsets.log_mel` (the project's log-mel front end on the loudness-normalised phrase,
``zoo.onsets.FRONT_END``): 80 mel bands, n_fft 2048, hop 512, so frame ``t`` is centred on sample ``t * 512``
exactly as ``zoo.notes`` frames a recording. Frame ``t`` is labelled 1 when a note starts nearest to it.

The HDF5 file (written to a temporary name, renamed when complete): ``features`` (N, 80, T) float16,
``labels`` (N, T) uint8, ``phrases`` (N,) JSON text (source, preset, style, notes); attributes ``seed``,
``n_phrases``, ``front_end`` (JSON), ``frame_seconds``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from training.data.frames import create_frame_datasets
from zoo.audio import AUDIBLE_MARGIN_DB, SAMPLE_RATE, is_silent
from zoo.files import atomic_path
from zoo.onsets import FRONT_END, log_mel
from zoo.workers import process_pool

PHRASE_SECONDS = FRONT_END.n_samples / SAMPLE_RATE  # 12 s
PHRASE_SAMPLES = FRONT_END.n_samples
N_FRAMES = FRONT_END.n_frames  # 1034
RELEASE_SECONDS = 3.0
HUMAN_SHARE = 0.5  # share of phrases played by the human-made presets, when any are given
HELD_OUT_EVERY = 3  # calibration presets i with i % 3 == 2 are kept out of training: the note finder's decisions
_SAMPLER_PRIOR = "mixture"
_MAX_ATTEMPTS = 8


def held_out(names: list[str]) -> list[str]:
    """The presets of a list kept back from training (every third, from the third on)."""
    return [n for i, n in enumerate(names) if i % HELD_OUT_EVERY == HELD_OUT_EVERY - 1]


def preset_files(source: str | Path, hold_out: bool = True) -> list[Path]:
    """The ``.vital`` files of a folder (sorted), or of a list file (one path per line, relative to its folder,
    ``#`` comments); with ``hold_out``, without :func:`held_out`'s presets."""
    source = Path(source)
    if source.is_dir():
        files = sorted(source.rglob("*.vital"))
    elif source.is_file():
        lines = [line.strip() for line in source.read_text().splitlines()]
        files = [source.parent / line for line in lines if line and not line.startswith("#")]
    else:
        raise FileNotFoundError(f"no preset folder or list at {source}")
    if not files:
        raise ValueError(f"{source} names no .vital presets")
    return [f for f in files if f not in set(held_out(files))] if hold_out else files


def onset_labels(onsets_seconds: list[float], n_frames: int = N_FRAMES, hop: int = FRONT_END.hop_length) -> np.ndarray:
    """(n_frames,) uint8: 1 at the frame whose centre is nearest each onset inside the phrase."""
    labels = np.zeros(n_frames, dtype=np.uint8)
    for t in onsets_seconds:
        frame = int(round(t * SAMPLE_RATE / hop))
        if 0 <= frame < n_frames:
            labels[frame] = 1
    return labels


class PhraseRenderer:
    """Renders the training phrases of one generation: one Vital synth, the sampler, the human presets."""

    def __init__(self, seed: int, presets: list[str]) -> None:
        from zoo.vital.render import VitalRenderer
        from zoo.vital.sampler import PresetSampler

        self.seed = seed
        self.renderer = VitalRenderer()
        self.sampler = PresetSampler(seed=seed, prior=_SAMPLER_PRIOR)
        self.presets = [(p, json.loads(Path(p).read_text())) for p in presets]

    def source(self, index: int) -> tuple[str, int]:
        """(``"human"`` or ``"sampler"``, the preset's index) of phrase ``index``."""
        if self.presets and np.random.default_rng([self.seed, index, 3]).random() < HUMAN_SHARE:
            return "human", index % len(self.presets)
        return "sampler", index

    def render(self, index: int) -> tuple[np.ndarray, dict[str, Any]]:
        """The phrase (PHRASE_SAMPLES,), not normalised, and what it plays. A human-made preset silent at the
        phrase's notes leaves the phrase to the sampler, whose first audible attempt plays it."""
        from benchmarks.phrase_set import plan_phrase
        from zoo.vital.phrase import render_phrase

        kind, k = self.source(index)
        name = Path(self.presets[k][0]).name if kind == "human" else f"sampler-{k}"
        style, notes, _ = plan_phrase(self.seed, name, index)
        notes = tuple(n for n in notes if n.onset_seconds < PHRASE_SECONDS - 0.1)
        meta = {
            "source": kind,
            "preset": name,
            "attempt": 0,
            "style": style,
            "notes": [[n.midi, n.onset_seconds, n.duration_seconds, n.velocity] for n in notes],
        }
        if kind == "human":
            preset = self.presets[k][1]
            audio = render_phrase(self.renderer, notes, PHRASE_SECONDS, preset=preset, release_seconds=RELEASE_SECONDS)
            if _audible(audio):
                return audio, meta
        for attempt in range(_MAX_ATTEMPTS):
            vector = self.sampler.sample(index, attempt)
            audio = render_phrase(self.renderer, notes, PHRASE_SECONDS, vector=vector, release_seconds=RELEASE_SECONDS)
            if _audible(audio):
                return audio, meta | {"source": "sampler", "preset": f"sampler-{index}", "attempt": attempt}
        raise RuntimeError(f"phrase {index}: no audible sampler preset in {_MAX_ATTEMPTS} attempts")


def _audible(audio: np.ndarray) -> bool:
    return bool(np.isfinite(audio).all()) and not is_silent(audio, AUDIBLE_MARGIN_DB)


_worker: PhraseRenderer | None = None


def _init_worker(seed: int, presets: list[str]) -> None:
    global _worker
    import torch

    torch.set_num_threads(1)
    _worker = PhraseRenderer(seed, presets)


def _make_phrase(index: int) -> tuple[int, np.ndarray, np.ndarray, str]:
    if _worker is None:
        raise RuntimeError("phrase workers are created by _init_worker")
    audio, meta = _worker.render(index)
    labels = onset_labels([onset for _, onset, _, _ in meta["notes"]])
    return index, log_mel(audio), labels, json.dumps(meta)


def generate_phrases(
    out: str | Path, n_phrases: int, seed: int = 1, presets: list[str] | None = None, workers: int = 2,
    progress: bool = True,
) -> Path:  # fmt: skip
    """Render ``n_phrases`` labelled phrases into the HDF5 file ``out`` (see the module docstring)."""
    import h5py
    from tqdm.auto import tqdm

    if n_phrases < 1:
        raise ValueError(f"n_phrases must be at least 1, got {n_phrases}")
    if seed == 0:
        raise ValueError("seed 0 draws the note-finding benchmark's melodies; train on another seed")
    presets = [str(p) for p in presets or []]
    for p in presets:
        if not Path(p).is_file():
            raise FileNotFoundError(f"no preset at {p}")
    out = Path(out)
    with (
        atomic_path(out) as tmp,
        process_pool(workers, initializer=_init_worker, initargs=(seed, presets)) as pool,
        h5py.File(tmp, "w") as f,
    ):
        features, labels, phrases = create_frame_datasets(
            f, "phrases", n_phrases, FRONT_END, ["none", "onset"], dtype="float16",
            attrs={"seed": seed, "presets": json.dumps([Path(p).name for p in presets])},
        )  # fmt: skip
        done = pool.imap_unordered(_make_phrase, range(n_phrases), chunksize=4)
        for index, feats, labs, meta in tqdm(done, total=n_phrases, desc="phrases", disable=not progress):
            features[index], labels[index], phrases[index] = feats, labs, meta
    return out
