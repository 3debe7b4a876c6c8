"""Random Tier-1 presets that sound like something: the prior of the synthetic dataset.

Uniform noise over every range mostly gives silence (every oscillator off, a closed filter), 30-second
attacks or a wall of 16-voice unison. The sampler draws each control from a range a sound designer
would use instead, in Vital's raw units, and then normalizes: at least one oscillator on, levels in the
upper half, cutoffs between about 110 Hz and 15 kHz, short-to-medium envelopes, each effect on with a
probability between 0.15 and 0.3. Controls a switch turns off are drawn all the same (a loss mask
ignores them). A control the prior does not know is drawn uniformly over its range.

Every preset is a pure function of ``(seed, index, attempt)``, so any subset of a dataset, any shard and
any resumed run draw the same presets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from zoo.vital.spec import VitalParamSpec
from zoo.vital.tier1 import tier1_spec

Draw = Callable[[np.random.Generator], float]


def _uniform(lo: float, hi: float) -> Draw:
    return lambda rng: float(rng.uniform(lo, hi))


def _mostly(value: float, p: float, otherwise: Draw) -> Draw:
    """``value`` with probability ``p``, else a draw from ``otherwise``."""
    return lambda rng: value if rng.random() < p else otherwise(rng)


def _short(hi: float, power: float = 1.5) -> Draw:
    """Biased towards 0: hi * u ** power (envelope attacks)."""
    return lambda rng: float(hi * rng.random() ** power)


def _normal(mean: float, std: float, lo: float, hi: float) -> Draw:
    return lambda rng: float(np.clip(rng.normal(mean, std), lo, hi))


def _choice(values: tuple[float, ...]) -> Draw:
    return lambda rng: float(values[rng.integers(len(values))])


def _integers(lo: int, hi: int) -> Draw:
    return lambda rng: float(rng.integers(lo, hi + 1))


_TRANSPOSES = (0.0,) * 6 + (-12.0, 12.0, 7.0, -5.0, 24.0, -24.0, 19.0, 5.0)

# Raw-unit priors of continuous controls, by name (osc_N_ / filter_N_ prefixes are matched per number).
_OSC_PRIOR: dict[str, Draw] = {
    "level": _uniform(0.5, 1.0),
    "pan": _normal(0.0, 0.25, -1.0, 1.0),
    "transpose": _choice(_TRANSPOSES),
    "tune": _normal(0.0, 0.1, -1.0, 1.0),
    "wave_frame": _uniform(0.0, 256.0),
    "unison_voices": _mostly(1.0, 0.5, _integers(2, 8)),
    "unison_detune": _uniform(0.5, 5.0),
    "spectral_morph_amount": _uniform(0.0, 1.0),
    "distortion_amount": _uniform(0.0, 1.0),
}
_FILTER_PRIOR: dict[str, Draw] = {
    "cutoff": _uniform(45.0, 130.0),
    "resonance": _uniform(0.0, 0.85),
    "drive": _mostly(0.0, 0.5, _uniform(0.0, 20.0)),
    "blend": _uniform(0.0, 2.0),
    "keytrack": _uniform(-0.2, 1.0),
}
_PRIOR: dict[str, Draw] = {
    "env_1_delay": _mostly(0.0, 0.85, _uniform(0.0, 0.6)),
    "env_1_attack": _short(0.85),
    "env_1_hold": _mostly(0.0, 0.8, _uniform(0.0, 0.7)),
    "env_1_decay": _uniform(0.3, 1.4),
    "env_1_sustain": _mostly(1.0, 0.2, _uniform(0.3, 1.0)),
    "env_1_release": _uniform(0.2, 1.0),
    "env_1_attack_power": _normal(0.0, 3.0, -20.0, 20.0),
    "env_1_decay_power": _normal(-2.0, 3.0, -20.0, 20.0),
    "env_1_release_power": _normal(-2.0, 3.0, -20.0, 20.0),
    "env_2_attack": _short(0.85),
    "env_2_decay": _uniform(0.3, 1.3),
    "env_2_sustain": _uniform(0.0, 1.0),
    "env_2_release": _uniform(0.2, 1.0),
    "modulation_1_amount": _uniform(-0.2, 0.6),
    "chorus_dry_wet": _uniform(0.2, 0.8),
    "chorus_mod_depth": _uniform(0.2, 1.0),
    "delay_dry_wet": _uniform(0.1, 0.5),
    "delay_feedback": _uniform(-0.7, 0.7),
    "delay_frequency": _uniform(1.0, 4.5),  # 2 .. 22 Hz: 45 .. 500 ms
    "reverb_dry_wet": _uniform(0.1, 0.6),
    "reverb_size": _uniform(0.2, 1.0),
    "reverb_decay_time": _uniform(-3.0, 2.5),
    "distortion_drive": _uniform(0.0, 24.0),
    "distortion_mix": _uniform(0.3, 1.0),
    "phaser_dry_wet": _uniform(0.3, 1.0),
    "phaser_feedback": _uniform(0.0, 0.8),
    "flanger_dry_wet": _uniform(0.1, 0.5),
    "flanger_feedback": _uniform(-0.8, 0.8),
    "compressor_mix": _uniform(0.3, 1.0),
    "eq_low_gain": _uniform(-12.0, 12.0),
    "eq_high_gain": _uniform(-12.0, 12.0),
}
# Probability that a switch is on.
_SWITCH_ON = {
    "osc_1_on": 0.9, "osc_2_on": 0.5, "osc_3_on": 0.3, "filter_1_on": 0.6, "filter_2_on": 0.4,
    "chorus_on": 0.25, "delay_on": 0.2, "reverb_on": 0.3, "distortion_on": 0.2, "phaser_on": 0.15,
    "flanger_on": 0.15, "compressor_on": 0.2, "eq_on": 0.25,
}  # fmt: skip
# Probability that an oscillator's spectral morph / distortion type is "None".
_TYPE_NONE = {"spectral_morph_type": 0.6, "distortion_type": 0.6}


def _prior(name: str) -> Draw | None:
    parts = name.split("_", 2)
    if len(parts) == 3 and parts[0] == "osc" and parts[1].isdigit():
        return _OSC_PRIOR.get(parts[2])
    if len(parts) == 3 and parts[0] == "filter" and parts[1].isdigit():
        return _FILTER_PRIOR.get(parts[2])
    return _PRIOR.get(name)


class PresetSampler:
    """Draws Tier-1 vectors: iterate for presets 0, 1, 2 ..., or call :meth:`sample` for one by index.

    Yields ``(continuous float32 (n_continuous,) in [0, 1], categorical int64 (n_categorical,))``.
    """

    def __init__(self, spec: VitalParamSpec | None = None, seed: int = 0) -> None:
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        self.spec = spec or tier1_spec()
        self.seed = int(seed)
        self._draws = [_prior(p.name) for p in self.spec.continuous]

    def sample(self, index: int, attempt: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Preset ``index`` of this seed; ``attempt`` > 0 draws a replacement for a rejected one."""
        rng = np.random.default_rng([self.seed, int(index), int(attempt)])
        spec = self.spec
        raw = np.empty(spec.n_continuous, dtype=np.float64)
        for i, (p, draw) in enumerate(zip(spec.continuous, self._draws, strict=True)):
            raw[i] = draw(rng) if draw is not None else rng.uniform(p.min, p.max)
        continuous = spec.quantize(spec.normalize(raw))

        categorical = np.zeros(spec.n_categorical, dtype=np.int64)
        for i, p in enumerate(spec.categorical):
            n = len(p.options)
            if p.is_switch:
                categorical[i] = int(rng.random() < _SWITCH_ON.get(p.name, 0.5))
                continue
            kind = p.name.split("_", 2)[-1] if p.name.startswith("osc_") else ""
            if kind in _TYPE_NONE and rng.random() < _TYPE_NONE[kind]:
                categorical[i] = 0
            else:
                categorical[i] = rng.integers(1 if kind in _TYPE_NONE else 0, n)
        self._ensure_an_oscillator(categorical, rng)
        return continuous, categorical

    def _ensure_an_oscillator(self, categorical: np.ndarray, rng: np.random.Generator) -> None:
        names = self.spec.categorical_names
        osc_switches = [i for i, n in enumerate(names) if n.startswith("osc_") and n.endswith("_on")]
        if osc_switches and not categorical[osc_switches].any():
            categorical[osc_switches[rng.integers(len(osc_switches))]] = 1

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        index = 0
        while True:
            yield self.sample(index)
            index += 1
