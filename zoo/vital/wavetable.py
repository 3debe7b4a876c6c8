"""Wavetables written into presets: the one home of Vital's wavetable encoding.

Vital stores a wavetable as JSON: groups of components, each with keyframes ``{"position": 0..256,
"wave_data": base64 of 2048 little-endian float32 samples}``; the oscillator's ``wave_frame`` control picks
the position. Between keyframes Vital blends by the component's ``interpolation``: 0 blends the waveforms
(a linear crossfade: harmonic amplitudes move linearly when the frames share their phases), 1 blends in the
frequency domain (measured on vita 0.1.0: amplitudes dip between unlike frames, -9 dB half-way between a
sine and its octave). Vital plays a frame as written (no per-frame normalisation; measured).

Vital's init wavetable is one saw frame, which would leave ``wave_frame`` without effect; the Tier-1
wavetable makes it morph between basic shapes. :func:`harmonic_wave` and :func:`wavetable_from_frames`
build tables from analysed harmonics (``zoo.vital.resynthesis``).
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import numpy as np

WAVE_SIZE = 2048
MAX_POSITION = 256
INTERPOLATE_WAVEFORMS = 0
INTERPOLATE_SPECTRA = 1
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


def decode_wave(data: str) -> np.ndarray:
    """Vital's ``wave_data`` -> one cycle, float32 (2048,)."""
    return np.frombuffer(base64.b64decode(data), dtype="<f4").astype(np.float32)


def harmonic_wave(amplitudes: np.ndarray, phases: np.ndarray | None = None, n: int = WAVE_SIZE) -> np.ndarray:
    """One band-limited cycle: ``sum_k a_k cos(2 pi k t + phi_k)`` over harmonics k = 1..H, float32 (n,).

    ``amplitudes``: (H,), harmonic k at index k - 1, H < n / 2; ``phases`` (H,) in radians (0 by default).
    The cycle holds no energy above harmonic H and no DC."""
    amplitudes = np.asarray(amplitudes, dtype=np.float64)
    if amplitudes.ndim != 1 or not 0 < len(amplitudes) < n // 2:
        raise ValueError(f"expected 1..{n // 2 - 1} harmonic amplitudes, got shape {amplitudes.shape}")
    phases = np.zeros_like(amplitudes) if phases is None else np.asarray(phases, dtype=np.float64)
    spectrum = np.zeros(n // 2 + 1, dtype=np.complex128)
    spectrum[1 : len(amplitudes) + 1] = amplitudes * np.exp(1j * phases) * (n / 2)
    return np.fft.irfft(spectrum, n).astype(np.float32)


def wavetable_from_frames(
    template: dict[str, Any],
    frames: list[np.ndarray] | np.ndarray,
    positions: list[int] | np.ndarray,
    name: str,
    interpolation: int = INTERPOLATE_SPECTRA,
) -> dict[str, Any]:
    """A copy of ``template`` (a Vital wavetable object, e.g. the init preset's) whose single wave source
    holds ``frames`` (each (2048,)) at ``positions`` (increasing, 0..256), blended by ``interpolation``."""
    positions = [int(p) for p in positions]
    if len(frames) != len(positions) or not positions:
        raise ValueError(f"expected one position per frame, got {len(frames)} frames and {len(positions)} positions")
    if positions != sorted(set(positions)) or positions[0] < 0 or positions[-1] > MAX_POSITION:
        raise ValueError(f"keyframe positions must increase within 0..{MAX_POSITION}, got {positions}")
    if any(np.shape(f) != (WAVE_SIZE,) for f in frames):
        raise ValueError(f"every frame must hold {WAVE_SIZE} samples")
    table = copy.deepcopy(template)
    table["name"] = name
    keyframes = [{"position": p, "wave_data": encode_wave(f)} for p, f in zip(positions, frames, strict=True)]
    component = {"interpolation": interpolation, "interpolation_style": 1, "keyframes": keyframes}
    component["type"] = "Wave Source"
    table["groups"] = [{"components": [component]}]
    return table


def wavetable_keyframes(table: dict[str, Any]) -> list[tuple[int, np.ndarray]]:
    """The (position, cycle) keyframes of a wavetable object's first wave source."""
    component = table["groups"][0]["components"][0]
    return [(int(k["position"]), decode_wave(k["wave_data"])) for k in component["keyframes"]]


def basic_shapes_wavetable(template: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``template`` (a Vital wavetable object, e.g. the init preset's) whose single wave source
    morphs sine -> triangle -> saw -> square across frames 0..256."""
    frames = [basic_shape(name) for name, _ in BASIC_SHAPES]
    return wavetable_from_frames(template, frames, [pos for _, pos in BASIC_SHAPES], "Basic Shapes")
