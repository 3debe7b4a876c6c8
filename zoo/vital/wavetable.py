"""Wavetables written into Tier-1 presets.

Vital stores a wavetable as JSON: groups of components, each with keyframes ``{"position": 0..256,
"wave_data": base64 of 2048 little-endian float32 samples}``; Vital blends linearly between keyframes,
and the oscillator's ``wave_frame`` control picks the position. Vital's init wavetable is one saw frame,
which would leave ``wave_frame`` without effect; the Tier-1 wavetable makes it morph between basic shapes.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import numpy as np

WAVE_SIZE = 2048
# Position of each shape in the table (0..256).
BASIC_SHAPES = (("sine", 0), ("triangle", 85), ("saw", 170), ("square", 256))


def basic_shape(name: str, n: int = WAVE_SIZE) -> np.ndarray:
    """One cycle of a basic shape in [-1, 1], float32 (n,)."""
    t = np.arange(n, dtype=np.float64) / n
    if name == "sine":
        wave = np.sin(2 * np.pi * t)
    elif name == "triangle":
        wave = 1.0 - 4.0 * np.abs((t + 0.25) % 1.0 - 0.5)
    elif name == "saw":
        wave = 2.0 * t - 1.0
    elif name == "square":
        wave = np.where(t < 0.5, 1.0, -1.0)
    else:
        raise ValueError(f"unknown basic shape {name!r}; expected one of {[s for s, _ in BASIC_SHAPES]}")
    return wave.astype(np.float32)


def encode_wave(wave: np.ndarray) -> str:
    """A cycle as Vital's ``wave_data``: base64 of little-endian float32."""
    return base64.b64encode(np.asarray(wave, dtype="<f4").tobytes()).decode("ascii")


def basic_shapes_wavetable(template: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``template`` (a Vital wavetable object, e.g. the init preset's) whose single wave source
    morphs sine -> triangle -> saw -> square across frames 0..256."""
    table = copy.deepcopy(template)
    table["name"] = "Basic Shapes"
    keyframes = [{"position": pos, "wave_data": encode_wave(basic_shape(name))} for name, pos in BASIC_SHAPES]
    component = {"interpolation": 1, "interpolation_style": 1, "keyframes": keyframes, "type": "Wave Source"}
    table["groups"] = [{"components": [component]}]
    return table
