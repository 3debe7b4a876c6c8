"""Vital's envelopes, and the amplitude envelope fitted to a recording.

Vital's envelope, as measured on vita 0.1.0 renders (a sine wave through ``env_1``; the model below is within
1 dB of the render on average, tests/test_vital_envelope.py holds it), with ``ps(x, p) = (e^(p x) - 1) /
(e^p - 1)`` (``x`` when ``|p| < 0.01``), Vital's power curve:

- attack: the value rises 0 -> 1 over ``attack`` seconds as ``ps(x, -attack_power)``;
- decay: it falls 1 -> ``sustain`` over ``decay`` seconds as ``sustain + (1 - sustain) (1 - ps(x, decay_power))``;
- release: from the value ``v`` at key-off to 0 over ``release`` seconds as ``v (1 - ps(x, release_power))``.

``env_1`` scales the voice's amplitude by the *square* of that value (sustain 0.5 plays 12 dB under the peak).
Times are quartic controls (seconds = control ** 4; delay and hold are left at 0 here).

:func:`fit_envelope` finds the attack, decay, sustain, release, decay curve and key-off time whose envelope is
closest, in dB, to the recording's (frame RMS over 23 ms, the model smoothed the same way; frames more
than 60 dB under the peak count as silence), with SciPy's bounded least squares from the best points of a coarse grid.
A key-off time that is known (a rendered note, a note of a phrase) should be given: it is seen in the audio
only where the sound changes at it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from zoo.audio import SAMPLE_RATE

TIME_CONTROL_MAX = 2.378420114517212  # Vital's range of attack/decay/release: 2.3784 ** 4 = 32 s
SHORT_CONTROL_MAX = 1.4142135381698608  # delay and hold: 4 s
MAX_SECONDS = TIME_CONTROL_MAX**4
POWER_RANGE = (-20.0, 20.0)
FLOOR_DB = -60.0  # frames quieter than this under the peak count as silence in the fit
RMS_WINDOW = 1024
RMS_HOP = 256
_FINE = 32  # model resolution in samples before smoothing to RMS frames
FITTED = ("attack", "decay", "sustain", "release", "decay_power")
DECAY_POWER_RANGE = (-10.0, 3.0)  # steeper positive curves hold and then drop: a release in disguise


def power_curve(x: np.ndarray, power: float) -> np.ndarray:
    """Vital's curve from 0 to 1 over ``x`` in [0, 1]: ``(e^(p x) - 1) / (e^p - 1)``, linear near p = 0."""
    x = np.clip(x, 0.0, 1.0)
    if abs(power) < 0.01:
        return x
    return np.expm1(power * x) / np.expm1(power)


def seconds_to_control(seconds: float, maximum: float = TIME_CONTROL_MAX) -> float:
    """A quartic time control's raw value for ``seconds`` (clamped to Vital's range)."""
    return float(min(max(seconds, 0.0) ** 0.25, maximum))


@dataclass(frozen=True)
class Envelope:
    """One Vital envelope (delay and hold 0). Times in seconds; ``sustain`` is the envelope's value (0..1)."""

    attack: float = 0.14949999749660492**4  # Vital's init values
    decay: float = 1.0
    sustain: float = 1.0
    release: float = 0.5475999712944031**4
    attack_power: float = 0.0
    decay_power: float = -2.0
    release_power: float = -2.0

    def value(self, t: np.ndarray, note_seconds: float) -> np.ndarray:
        """The envelope's value at times ``t`` (seconds after note-on) for a key held ``note_seconds``."""
        t = np.asarray(t, dtype=np.float64)
        return _held_value(self, t) if np.isinf(note_seconds) else _value(self, t, note_seconds)

    def controls(self, name: str = "env_1") -> dict[str, float]:
        """Raw Vital control values of envelope ``name`` (``env_1`` .. ``env_6``), clamped to Vital's ranges."""
        lo, hi = POWER_RANGE
        return {
            f"{name}_delay": 0.0,
            f"{name}_hold": 0.0,
            f"{name}_attack": seconds_to_control(self.attack),
            f"{name}_decay": seconds_to_control(self.decay),
            f"{name}_sustain": float(np.clip(self.sustain, 0.0, 1.0)),
            f"{name}_release": seconds_to_control(self.release),
            f"{name}_attack_power": float(np.clip(self.attack_power, lo, hi)),
            f"{name}_decay_power": float(np.clip(self.decay_power, lo, hi)),
            f"{name}_release_power": float(np.clip(self.release_power, lo, hi)),
        }


def _held_value(env: Envelope, t: np.ndarray) -> np.ndarray:
    rising = power_curve(t / max(env.attack, 1e-6), -env.attack_power)
    decayed = power_curve((t - env.attack) / max(env.decay, 1e-6), env.decay_power)
    falling = env.sustain + (1.0 - env.sustain) * (1.0 - decayed)
    return np.where(t < env.attack, rising, falling)


def _value(env: Envelope, t: np.ndarray, note_seconds: float) -> np.ndarray:
    held = _held_value(env, t)
    at_release = float(_held_value(env, np.array([note_seconds]))[0])
    released = at_release * (1.0 - power_curve((t - note_seconds) / max(env.release, 1e-6), env.release_power))
    return np.where(t < note_seconds, held, released)


def frame_rms(audio: np.ndarray, window: int = RMS_WINDOW, hop: int = RMS_HOP) -> np.ndarray:
    """RMS of frames of ``window`` samples, frame t starting at sample t * hop (zero-padded at the end). (T,)"""
    audio = np.asarray(audio, dtype=np.float64)
    n = max(1, int(np.ceil(len(audio) / hop)))
    power = np.concatenate([[0.0], np.cumsum(np.pad(audio, (0, n * hop + window)) ** 2)])
    starts = np.arange(n) * hop
    return np.sqrt((power[starts + window] - power[starts]) / window)


def sounding_seconds(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """How long ``audio`` sounds: the centre of its last RMS frame within 60 dB of the loudest (0 if silent)."""
    rms = frame_rms(audio)
    if rms.max() <= 0.0:
        return 0.0
    last = int(np.flatnonzero(rms > rms.max() * 10 ** (FLOOR_DB / 20))[-1])
    return (last * RMS_HOP + RMS_WINDOW / 2) / sample_rate


def _model_db(env: Envelope, note_seconds: float, gain_db: float, n_frames: int, sample_rate: int) -> np.ndarray:
    """The modelled frame RMS in dB (model amplitude = value ** 2, smoothed as :func:`frame_rms` does)."""
    n = n_frames * RMS_HOP + RMS_WINDOW
    t = np.arange(0, n, _FINE) / sample_rate
    power = env.value(t, note_seconds) ** 4  # amplitude = value ** 2
    k = RMS_WINDOW // _FINE
    cum = np.concatenate([[0.0], np.cumsum(power)])
    starts = np.arange(n_frames) * (RMS_HOP // _FINE)
    mean_power = (cum[starts + k] - cum[starts]) / k
    return gain_db + 10 * np.log10(np.maximum(mean_power, 1e-12))


# The fit is local: it starts from the best points of this coarse grid (fields not in it keep base's value).
_GRID = {
    "attack": (0.002, 0.01, 0.03, 0.1, 0.3, 1.0),
    "decay": (0.05, 0.15, 0.4, 1.0, 3.0),
    "sustain": (0.0, 0.3, 0.5, 0.7, 0.9, 1.0),
    "release": (0.05, 0.3, 1.5),
    "decay_power": (-2.0,),
}
_N_STARTS = 3


def _bounds(name: str) -> tuple[float, float]:
    if name == "sustain":
        return 0.0, 1.0
    if name.endswith("_power"):
        return DECAY_POWER_RANGE
    return 0.0, MAX_SECONDS if name != "release" else 8.0


def fit_envelope(
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    note_seconds: float | None = None,
    fitted: Sequence[str] = FITTED,
    base: Envelope | None = None,
    held_only: bool = False,
) -> tuple[Envelope, float]:
    """The Vital envelope (and key-off time) whose amplitude follows ``audio``'s, a note starting at sample 0.

    ``fitted`` names the :class:`Envelope` fields to estimate; the others keep ``base``'s values (Vital's
    init envelope by default). ``note_seconds`` fixes the key-off time when it is known; otherwise it is
    estimated too, and the envelope sounds as fitted only when the key is released at the estimated time:
    a key-off is seen only where the sound changes at it (a sound still ringing at the end of the clip fits
    a late key-off with any release; a sound that died out before it, any key-off). ``held_only`` fits the
    frames before the key-off alone (for an envelope whose release is not fitted, so the tail does not pull
    the sustain); it needs ``note_seconds``. Returns ``(envelope, note_seconds)``. Raises ValueError for
    silent audio or ``held_only`` without ``note_seconds``."""
    from scipy.optimize import least_squares

    base = base or Envelope()
    names = tuple(fitted)
    unknown = set(names) - set(Envelope.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown envelope fields {sorted(unknown)}; expected some of {FITTED}")
    if held_only and note_seconds is None:
        raise ValueError("held_only needs the key-off time (note_seconds)")
    rms = frame_rms(audio)
    if rms.max() <= 0.0:
        raise ValueError("cannot fit an envelope to silence")
    measured = np.maximum(20 * np.log10(np.maximum(rms / rms.max(), 1e-12)), FLOOR_DB)
    if held_only:  # frames that end before the key-off
        rms = rms[: max(1, int((note_seconds * sample_rate - RMS_WINDOW) // RMS_HOP) + 1)]
        measured = measured[: len(rms)]
    end = sounding_seconds(audio, sample_rate)
    free_off = note_seconds is None

    def unpack(p: np.ndarray) -> tuple[Envelope, float, float]:
        env = replace(base, **dict(zip(names, map(float, p[: len(names)]), strict=True)))
        return env, float(p[-1]) if free_off else float(note_seconds), float(p[len(names)])

    def residuals(p: np.ndarray) -> np.ndarray:
        return np.maximum(_model_db(*unpack(p), len(rms), sample_rate), FLOOR_DB) - measured

    lower = [_bounds(n)[0] for n in names] + [-30.0] + ([0.0] if free_off else [])
    upper = [_bounds(n)[1] for n in names] + [30.0] + ([max(end, 1e-3)] if free_off else [])
    axes = [_GRID.get(n, (getattr(base, n),)) for n in names] + [(0.0,)]
    axes += [tuple(end * f for f in (0.3, 0.6, 0.9))] if free_off else []
    grid = [np.clip(np.array(p, dtype=np.float64), lower, upper) for p in itertools.product(*axes)]
    costs = [float(np.sum(residuals(p) ** 2)) for p in grid]
    starts = [grid[i] for i in np.argsort(costs)[:_N_STARTS]]
    fits = [least_squares(residuals, x, bounds=(lower, upper), x_scale="jac", max_nfev=200) for x in starts]
    env, off, _ = unpack(min(fits, key=lambda r: r.cost).x)
    return env, off
