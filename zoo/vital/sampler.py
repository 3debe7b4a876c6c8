"""Random Tier-1 presets that sound like something: the prior of the synthetic dataset.

Each preset comes from one of three components, picked per preset with the weights of a :class:`PriorMix`:

- **broad**: each control from a range a sound designer would use, in Vital's raw units. Uniform noise
  over every range mostly gives silence (every oscillator off, a closed filter), 30-second attacks or a
  wall of 16-voice unison; this draws at least one oscillator, levels in the upper half, cutoffs between
  about 110 Hz and 15 kHz, short-to-medium envelopes, each effect on with a probability between 0.15 and
  0.3. A control it does not know is drawn uniformly over its range.
- **human**: the marginals of people's presets (``zoo/vital/data/human_prior.json``, estimated by
  ``zoo.vital.prior_study`` from the calibration presets, never the evaluation ones): how often each module
  is on, which options they pick, and each control's values, Vital's defaults included (people leave many
  knobs where they are). A control without an estimate (too rarely on, or ``wave_frame``) is drawn broadly.
- **simple**: what people start from, drawn like *human* and then cut down: oscillator 1 alone at a
  clear level, plain (no spectral morph, no distortion, mostly one unison voice), filter 1 on or off,
  filter 2 off, the amplitude envelope, and few effects (reverb, chorus, delay, each sometimes).

Controls a switch turns off are drawn all the same (a loss mask ignores them). ``PRIORS`` names the mixes;
``broad`` alone draws exactly the presets the sampler drew before the other components existed.

Every preset is a pure function of ``(seed, index, attempt)``, so any subset of a dataset, any shard and
any resumed run draw the same presets.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

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


# The simple component: osc 1 alone; filter 1 on with this probability; effects on with these (others off).
_SIMPLE_FILTER_ON = 0.6
_SIMPLE_EFFECTS_ON = {"reverb_on": 0.3, "chorus_on": 0.15, "delay_on": 0.15}
_SIMPLE_ONE_VOICE = 0.7


def _prior(name: str) -> Draw | None:
    parts = name.split("_", 2)
    if len(parts) == 3 and parts[0] == "osc" and parts[1].isdigit():
        return _OSC_PRIOR.get(parts[2])
    if len(parts) == 3 and parts[0] == "filter" and parts[1].isdigit():
        return _FILTER_PRIOR.get(parts[2])
    return _PRIOR.get(name)


@lru_cache(maxsize=1)
def human_prior() -> dict[str, Any]:
    """The packaged human prior (``zoo/vital/data/human_prior.json``, see ``zoo.vital.prior_study``)."""
    return json.loads(resources.files("zoo.vital").joinpath("data/human_prior.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class PriorMix:
    """Weights of the broad, human and simple components (normalized to sum to 1 when drawing)."""

    broad: float = 1.0
    human: float = 0.0
    simple: float = 0.0

    def __post_init__(self) -> None:
        weights = (self.broad, self.human, self.simple)
        if any(not w >= 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"prior weights must be non-negative and not all zero, got {weights}")

    @property
    def weights(self) -> np.ndarray:
        w = np.array([self.broad, self.human, self.simple], dtype=np.float64)
        return w / w.sum()

    @classmethod
    def parse(cls, text: str) -> PriorMix:
        """A name of :data:`PRIORS` or three weights ``broad,human,simple`` (e.g. ``0.4,0.4,0.2``)."""
        if text in PRIORS:
            return PRIORS[text]
        try:
            broad, human, simple = (float(w) for w in text.split(","))
        except ValueError:
            raise ValueError(
                f"a prior is one of {', '.join(PRIORS)} or three weights broad,human,simple, got {text!r}"
            ) from None
        return cls(broad, human, simple)

    def to_dict(self) -> dict[str, float]:
        return {"broad": self.broad, "human": self.human, "simple": self.simple}


PRIORS = {
    "broad": PriorMix(1.0, 0.0, 0.0),
    "human": PriorMix(0.0, 1.0, 0.0),
    "simple": PriorMix(0.0, 0.0, 1.0),
    "mixture": PriorMix(0.4, 0.4, 0.2),
}
DEFAULT_PRIOR = "broad"


def switch_probabilities(spec: VitalParamSpec | None = None) -> dict[str, dict[str, float]]:
    """P(on) of every switch in each component's draw (before the at-least-one-oscillator rule)."""
    spec = spec or tier1_spec()
    human = human_prior()["switches"]
    simple = {"osc_1_on": 1.0, "filter_1_on": _SIMPLE_FILTER_ON, **_SIMPLE_EFFECTS_ON}
    return {
        p.name: {
            "broad": _SWITCH_ON.get(p.name, 0.5),
            "human": human.get(p.name, _SWITCH_ON.get(p.name, 0.5)),
            "simple": simple.get(p.name, 0.0),
        }
        for p in spec.categorical
        if p.is_switch
    }


def _marginal(entry: dict[str, Any], rng: np.random.Generator) -> float:
    """One draw of a human-prior continuous entry: an atom, or the inverse CDF of its quantiles."""
    u = rng.random()
    for value, p in entry["atoms"]:
        if u < p:
            return float(value)
        u -= p
    q = entry["quantiles"]
    if not q:
        return float(entry["atoms"][-1][0])
    t = rng.random() * (len(q) - 1)
    k = min(int(t), len(q) - 2) if len(q) > 1 else 0
    return float(q[k] + (t - k) * (q[min(k + 1, len(q) - 1)] - q[k]))


class PresetSampler:
    """Draws Tier-1 vectors: iterate for presets 0, 1, 2 ..., or call :meth:`sample` for one by index.

    ``prior`` is a :class:`PriorMix` or a name of :data:`PRIORS`. Yields ``(continuous float32
    (n_continuous,) in [0, 1], categorical int64 (n_categorical,))``.
    """

    def __init__(
        self, spec: VitalParamSpec | None = None, seed: int = 0, prior: PriorMix | str = DEFAULT_PRIOR
    ) -> None:
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}")
        self.spec = spec or tier1_spec()
        self.seed = int(seed)
        self.prior = PriorMix.parse(prior) if isinstance(prior, str) else prior
        self._draws = [_prior(p.name) for p in self.spec.continuous]
        table = human_prior() if self.prior.broad < 1.0 or self.prior.human + self.prior.simple > 0 else {}
        self._human_cont = [(table.get("continuous") or {}).get(p.name) for p in self.spec.continuous]
        self._human_cat = [
            table.get("switches", {}).get(p.name) if p.is_switch else table.get("categorical", {}).get(p.name)
            for p in self.spec.categorical
        ]
        self._cat_index = {name: i for i, name in enumerate(self.spec.categorical_names)}
        self._cont_index = {name: i for i, name in enumerate(self.spec.continuous_names)}

    def component(self, index: int, attempt: int = 0) -> str:
        """Which component draws preset ``index`` (``"broad"``, ``"human"`` or ``"simple"``)."""
        weights = self.prior.weights
        if weights[0] == 1.0:
            return "broad"
        u = np.random.default_rng([self.seed, int(index), int(attempt), 1]).random()
        return ("broad", "human", "simple")[min(int(np.searchsorted(np.cumsum(weights), u, side="right")), 2)]

    def sample(self, index: int, attempt: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Preset ``index`` of this seed; ``attempt`` > 0 draws a replacement for a rejected one."""
        rng = np.random.default_rng([self.seed, int(index), int(attempt)])
        component = self.component(index, attempt)
        if component == "broad":
            continuous, categorical = self._broad(rng)
        else:
            continuous, categorical = self._human(rng)
            if component == "simple":
                self._simplify(continuous, categorical, rng)
        self._ensure_an_oscillator(categorical, rng)
        return self.spec.quantize(continuous), categorical

    def _broad(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        spec = self.spec
        raw = np.empty(spec.n_continuous, dtype=np.float64)
        for i, (p, draw) in enumerate(zip(spec.continuous, self._draws, strict=True)):
            raw[i] = draw(rng) if draw is not None else rng.uniform(p.min, p.max)
        continuous = spec.normalize(raw)
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
        return continuous, categorical

    def _human(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        spec = self.spec
        continuous = np.empty(spec.n_continuous, dtype=np.float32)
        for i, (p, entry, draw) in enumerate(zip(spec.continuous, self._human_cont, self._draws, strict=True)):
            if entry is not None:
                continuous[i] = _marginal(entry, rng)
            else:
                raw = draw(rng) if draw is not None else rng.uniform(p.min, p.max)
                continuous[i] = np.clip((raw - p.min) / (p.max - p.min), 0.0, 1.0)
        categorical = np.zeros(spec.n_categorical, dtype=np.int64)
        for i, (p, entry) in enumerate(zip(spec.categorical, self._human_cat, strict=True)):
            if p.is_switch:
                categorical[i] = int(rng.random() < (entry if entry is not None else _SWITCH_ON.get(p.name, 0.5)))
            elif entry is not None:
                categorical[i] = int(rng.choice(len(p.options), p=np.asarray(entry) / np.sum(entry)))
            else:
                categorical[i] = int(rng.integers(len(p.options)))
        return continuous, categorical

    def _simplify(self, continuous: np.ndarray, categorical: np.ndarray, rng: np.random.Generator) -> None:
        """Cut a human draw down to a starting patch (in place): see the module docstring."""
        cat, cont = self._cat_index, self._cont_index
        for p in self.spec.categorical:
            if p.is_switch and not p.name.startswith("osc_1"):
                categorical[cat[p.name]] = int(rng.random() < _SIMPLE_EFFECTS_ON.get(p.name, 0.0))
        categorical[cat["osc_1_on"]] = 1
        categorical[cat["filter_1_on"]] = int(rng.random() < _SIMPLE_FILTER_ON)
        categorical[cat["osc_1_spectral_morph_type"]] = 0
        categorical[cat["osc_1_distortion_type"]] = 0
        continuous[cont["osc_1_level"]] = rng.uniform(0.5, 1.0)
        if rng.random() < _SIMPLE_ONE_VOICE:
            continuous[cont["osc_1_unison_voices"]] = 0.0

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
