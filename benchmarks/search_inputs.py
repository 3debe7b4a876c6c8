"""Inputs of the search benchmarks: human-made presets of ``../shared/presets`` rendered by Vital, as
``zoo evaluate --presets`` renders them (a 1 s note in a 2 s render, velocity 0.8)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import AudioDecodeError, PresetError
from zoo.matching import Target
from zoo.vital.preset import load_preset_file
from zoo.vital.render import NOTE_SECONDS, VitalRenderer

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class PresetTarget:
    preset: str  # path relative to the presets folder
    note: int
    target: Target


def presets_dir() -> Path:
    """``$ZOO_PRESETS_DIR``, else ``<repo>/../shared/presets``."""
    return Path(os.environ.get("ZOO_PRESETS_DIR") or ROOT.parent / "shared" / "presets")


def preset_targets(list_name: str, notes: tuple[int, ...] = (48, 60, 72), rotate: bool = False) -> list[PresetTarget]:
    """Every preset of the list file at every note (``rotate``: one note per preset, cycling through
    ``notes``). Presets Vital refuses and silent renders are left out."""
    root = presets_dir()
    names = [line.strip() for line in (root / list_name).read_text().splitlines() if line.strip()]
    renderer = VitalRenderer()
    out = []
    for i, name in enumerate(names):
        try:
            doc = load_preset_file(root / name)
        except PresetError:
            continue
        for note in (notes[i % len(notes)],) if rotate else notes:
            try:
                audio = renderer.render(doc, note)
                out.append(PresetTarget(name, note, Target.from_clip(audio, note, note_seconds=NOTE_SECONDS)))
            except (AudioDecodeError, PresetError):
                continue
    return out


def load_network(checkpoint: str | Path):
    """A vital-resnet18 checkpoint, loaded safely, in eval mode."""
    from training.checkpoint import model_from_checkpoint

    model, _ = model_from_checkpoint(checkpoint)
    return model.eval()


def network_outputs(model, clip) -> tuple:
    """(continuous (n_continuous,), [logits (n_options,) per head]) of the network for a 2 s clip."""
    import numpy as np
    import torch

    from zoo.audio import LogMelFrontEnd

    with torch.no_grad():
        continuous, *logits = model(LogMelFrontEnd()(torch.from_numpy(np.array(clip, dtype=np.float32))))
    return continuous[0].numpy(), [lg[0].numpy() for lg in logits]
