"""Waveform augmentations: what a recording has and a clean Vital render lacks.

Each is applied to a training clip with probability ``AUGMENT_PROBABILITY``, in this order, and the clip is
loudness-normalised again afterwards (``zoo.audio.normalize_loudness``, as every clip a model sees):

- ``detune``: the clip resampled by up to +-20 cents (a recording is rarely at an exact MIDI pitch);
- ``onset``: the 2 s window starts up to 20 ms early or late (onset detection is not sample-exact);
- ``reverb``: a little room (``pedalboard.Reverb``: small room, 5-25 % wet);
- ``noise``: white noise 30-55 dB under the clip's level.

Gain is not among them: training and serving both normalise loudness first, so a gain change never reaches
the model. Velocity and note length vary in the data itself (``zoo data generate --vary-notes``).

:class:`AugmentedAudioDataset` reads the stored audio instead of the precomputed mels and applies the
augmentations, so each epoch sees fresh ones; the task computes the log-mel of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from training.data import schema
from training.data.dataset import VitalMelDataset
from zoo.audio import SAMPLE_RATE, fit_length, normalize_loudness
from zoo.errors import AudioDecodeError

AUGMENTATIONS = ("detune", "onset", "reverb", "noise")
AUGMENT_PROBABILITY = 0.5
DETUNE_CENTS = 20.0
ONSET_JITTER_S = 0.02
SNR_DB = (30.0, 55.0)
REVERB_ROOM = (0.05, 0.35)
REVERB_WET = (0.05, 0.25)


def parse_augmentations(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"detune,noise"``, ``"all"``, ``"none"`` or a sequence of names -> the names, in application order."""
    if text is None:
        return ()
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if names == ["all"]:
        return AUGMENTATIONS
    if names in ([], ["none"]):
        return ()
    unknown = [n for n in names if n not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"`--augment` takes all, none or some of {', '.join(AUGMENTATIONS)}; got {', '.join(unknown)}")
    return tuple(n for n in AUGMENTATIONS if n in names)


def _detune(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    import soxr

    ratio = 2.0 ** (rng.uniform(-DETUNE_CENTS, DETUNE_CENTS) / 1200.0)  # > 1: higher pitch, shorter clip
    return fit_length(soxr.resample(x, SAMPLE_RATE * ratio, SAMPLE_RATE, quality="MQ").astype(np.float32), len(x))


def _onset(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    shift = int(round(rng.uniform(-ONSET_JITTER_S, ONSET_JITTER_S) * SAMPLE_RATE))
    if shift >= 0:  # the window starts early: silence before the note
        return np.concatenate([np.zeros(shift, np.float32), x[: len(x) - shift]])
    return fit_length(x[-shift:], len(x))  # late: the attack's first milliseconds are cut


def _reverb(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    import pedalboard

    wet = rng.uniform(*REVERB_WET)
    room = pedalboard.Reverb(room_size=rng.uniform(*REVERB_ROOM), damping=0.5, wet_level=wet, dry_level=1.0 - wet)
    return room(x[None, :], SAMPLE_RATE, reset=True)[0].astype(np.float32)


def _noise(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    level = rms * 10.0 ** (-rng.uniform(*SNR_DB) / 20.0)
    return x + rng.normal(0.0, level, len(x)).astype(np.float32)


_APPLY = {"detune": _detune, "onset": _onset, "reverb": _reverb, "noise": _noise}


def augment_waveform(audio: np.ndarray, names: Sequence[str], rng: np.random.Generator) -> np.ndarray:
    """Apply each named augmentation with probability ``AUGMENT_PROBABILITY``; loudness-normalised float32 out.

    ``audio`` is one mono clip (n,) at 44.1 kHz; the length is kept."""
    x = np.asarray(audio, dtype=np.float32)
    for name in names:
        if rng.random() < AUGMENT_PROBABILITY:
            x = _APPLY[name](x, rng)
    try:
        return normalize_loudness(x)
    except AudioDecodeError:  # cut to silence by the onset shift (a clip that was almost silent): keep it clean
        return np.asarray(audio, dtype=np.float32)


class AugmentedAudioDataset(VitalMelDataset):
    """:class:`VitalMelDataset` whose items carry ``audio`` float32 (88200,), augmented, instead of ``mel``.

    The augmentations' randomness comes from torch's generator (one draw per item), so a seeded run, and a
    resumed one, sees the same augmentations."""

    def __init__(self, paths: Any, indices: Sequence[int] | None = None, augment: Sequence[str] = AUGMENTATIONS):
        super().__init__(paths, indices)
        self.augment = tuple(augment)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = super().__getitem__(i)
        del item["mel"]  # (a clean mel: this item's features are computed from the augmented audio instead)
        file_no, row = self.locate(int(item["index"]))
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
        audio = augment_waveform(self._handles()[file_no][schema.AUDIO][row], self.augment, rng)
        return {"audio": torch.from_numpy(audio), **item}  # audio (88200,)
