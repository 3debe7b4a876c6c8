"""The parameter spec: which Vital controls a model predicts, their ranges, and the [0, 1] space it predicts in.

A spec is plain data (no synth is created to build or use one). Every consumer reads the same object: the
HDF5 schema, the model heads, the loss masks and the ``.vital`` writer.

The normalized space
--------------------
For every continuous parameter the network predicts ``x = (raw - min) / (max - min)`` in [0, 1], where
``raw`` is the value Vital stores for the control (the number in the ``.vital`` file) and ``min``/``max``
are the control's range as Vital reports it. Vital's stored value is already the knob's position on its
own curve, so this space moves like the knob does; the displayed quantity is a function of ``raw``:

- ``linear``: displayed = raw (cutoff in semitones, gain in dB, mix, feedback, pan ...);
- ``quadratic``: displayed = raw ** 2 (oscillator level as amplitude, unison detune);
- ``quartic``: displayed = raw ** 4 seconds (envelope times; an envelope knob at 0.5 is 62.5 ms);
- ``exponential``: displayed = 2 ** raw (delay rate in Hz, reverb decay in seconds);
- ``indexed``: a whole number (transpose in semitones, unison voices); ``denormalize`` rounds it.

``denormalize`` clips to [0, 1] first, so any network output maps to a value inside the control's range.
Categorical parameters are option indices (raw value = index); an ``*_on`` switch has options
``("Off", "On")``: index 1 is on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SCALES = ("linear", "quadratic", "quartic", "exponential", "indexed")


@dataclass(frozen=True)
class ContinuousParam:
    """One continuous Vital control.

    ``gate`` names the categorical ``*_on`` switch without which the control has no effect on the sound
    (None: always heard). ``modulation`` is set for a modulation amount: the (source, destination) pair of the
    modulation whose ``modulation_<k>_amount`` control this is.
    """

    name: str
    group: str
    min: float
    max: float
    scale: str = "linear"
    gate: str | None = None
    unit: str = ""
    modulation: tuple[str, str] | None = None

    def __post_init__(self) -> None:
        if not self.max > self.min:
            raise ValueError(f"{self.name}: max ({self.max}) must be above min ({self.min})")
        if self.scale not in SCALES:
            raise ValueError(f"{self.name}: unknown scale {self.scale!r}; expected one of {SCALES}")
        if self.modulation is not None:
            object.__setattr__(self, "modulation", tuple(self.modulation))

    @property
    def integer(self) -> bool:
        """Whether the control only takes whole values (rounded when denormalized)."""
        return self.scale == "indexed"

    def display(self, raw: float) -> float:
        """The quantity Vital displays for a stored value (seconds, amplitude, Hz ...), see the module doc."""
        if self.scale == "quadratic":
            return raw * raw
        if self.scale == "quartic":
            return raw**4
        if self.scale == "exponential":
            return 2.0**raw
        return raw


@dataclass(frozen=True)
class CategoricalParam:
    """One categorical Vital control; its stored value is the index into ``options``."""

    name: str
    group: str
    options: tuple[str, ...]
    gate: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple(self.options))
        if len(self.options) < 2:
            raise ValueError(f"{self.name}: a categorical parameter needs at least 2 options")

    @property
    def is_switch(self) -> bool:
        """An on/off switch (options Off, On)."""
        return self.options == ("Off", "On")


@dataclass(frozen=True)
class VitalParamSpec:
    """An ordered set of continuous and categorical Vital parameters, plus the settings the writer fixes.

    ``fixed`` are controls every written preset sets to the same value (they make some Tier-1 control
    audible, e.g. the delay set to free-running seconds so its rate knob counts); ``modulations`` are the
    (source, destination) connections every written preset has, in slot order; ``wavetable`` names the
    wavetable written into the three oscillators.
    """

    continuous: tuple[ContinuousParam, ...]
    categorical: tuple[CategoricalParam, ...]
    fixed: Mapping[str, float] = field(default_factory=dict)
    modulations: tuple[tuple[str, str], ...] = ()
    wavetable: str = "init"
    version: str = "1"

    def __post_init__(self) -> None:
        object.__setattr__(self, "continuous", tuple(self.continuous))
        object.__setattr__(self, "categorical", tuple(self.categorical))
        object.__setattr__(self, "fixed", dict(self.fixed))
        object.__setattr__(self, "modulations", tuple(tuple(m) for m in self.modulations))
        names = [p.name for p in (*self.continuous, *self.categorical)]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"parameter names appear twice in the spec: {duplicates}")
        switches = {p.name for p in self.categorical if p.is_switch}
        for p in (*self.continuous, *self.categorical):
            if p.gate is not None and p.gate not in switches:
                raise ValueError(f"{p.name}: its gate {p.gate!r} is not an on/off switch of the spec")
        overlap = sorted(set(self.fixed) & set(names))
        if overlap:
            raise ValueError(f"controls both fixed and predicted: {overlap}")

    # ------------------------------------------------------------------------------------------------
    # Shapes and names

    @property
    def n_continuous(self) -> int:
        return len(self.continuous)

    @property
    def n_categorical(self) -> int:
        return len(self.categorical)

    @property
    def continuous_names(self) -> list[str]:
        return [p.name for p in self.continuous]

    @property
    def categorical_names(self) -> list[str]:
        return [p.name for p in self.categorical]

    @property
    def categorical_n_options(self) -> list[int]:
        return [len(p.options) for p in self.categorical]

    @property
    def groups(self) -> list[str]:
        """Module groups (osc_1, filter_1, env_1, chorus ...) in order of first appearance."""
        seen: dict[str, None] = {}
        for p in (*self.continuous, *self.categorical):
            seen.setdefault(p.group, None)
        return list(seen)

    def continuous_group_ids(self) -> list[int]:
        """Per continuous parameter, its group's index into :attr:`groups`."""
        index = {g: i for i, g in enumerate(self.groups)}
        return [index[p.group] for p in self.continuous]

    def continuous_gate_ids(self) -> list[int]:
        """Per continuous parameter, the index into :attr:`categorical` of its on/off switch, or -1."""
        index = {p.name: i for i, p in enumerate(self.categorical)}
        return [index[p.gate] if p.gate is not None else -1 for p in self.continuous]

    def categorical_gate_ids(self) -> list[int]:
        """Per categorical parameter, the index into :attr:`categorical` of its on/off switch, or -1."""
        index = {p.name: i for i, p in enumerate(self.categorical)}
        return [index[p.gate] if p.gate is not None else -1 for p in self.categorical]

    # ------------------------------------------------------------------------------------------------
    # The normalized space

    @property
    def mins(self) -> np.ndarray:
        return np.array([p.min for p in self.continuous], dtype=np.float64)

    @property
    def maxs(self) -> np.ndarray:
        return np.array([p.max for p in self.continuous], dtype=np.float64)

    def denormalize(self, continuous: np.ndarray) -> np.ndarray:
        """[0, 1] vector(s) (..., n_continuous) -> raw Vital values (float64), clipped and rounded where whole."""
        x = np.clip(np.asarray(continuous, dtype=np.float64), 0.0, 1.0)
        self._check_width(x)
        raw = self.mins + x * (self.maxs - self.mins)
        integer = np.array([p.integer for p in self.continuous])
        return np.where(integer, np.round(raw), raw)

    def normalize(self, raw: np.ndarray) -> np.ndarray:
        """Raw Vital values (..., n_continuous) -> [0, 1] (float32); values outside a range are clamped."""
        raw = np.asarray(raw, dtype=np.float64)
        self._check_width(raw)
        x = (raw - self.mins) / (self.maxs - self.mins)
        return np.clip(x, 0.0, 1.0).astype(np.float32)

    def quantize(self, continuous: np.ndarray) -> np.ndarray:
        """Snap a [0, 1] vector to what survives a round trip through a preset (whole-valued controls)."""
        return self.normalize(self.denormalize(continuous))

    def _check_width(self, x: np.ndarray) -> None:
        if x.shape[-1:] != (self.n_continuous,):
            raise ValueError(f"expected a continuous vector of {self.n_continuous} values, got shape {x.shape}")

    def check_categorical(self, categorical: np.ndarray) -> np.ndarray:
        """Validate option indices (..., n_categorical) -> int64; out-of-range indices raise ValueError."""
        idx = np.asarray(categorical)
        if idx.shape[-1:] != (self.n_categorical,):
            raise ValueError(f"expected {self.n_categorical} categorical indices, got shape {idx.shape}")
        if not np.all(np.isfinite(idx)) or np.any(idx != np.round(idx)):
            raise ValueError("categorical indices must be whole numbers")
        idx = idx.astype(np.int64)
        n = np.array(self.categorical_n_options)
        bad = np.nonzero(np.any((idx < 0) | (idx >= n), axis=tuple(range(idx.ndim - 1))))[0]
        if bad.size:
            names = [self.categorical[i].name for i in bad]
            raise ValueError(f"categorical index out of range for {names}")
        return idx

    # ------------------------------------------------------------------------------------------------
    # Serialization

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data; :meth:`from_dict` rebuilds an equal spec."""
        return {
            "version": self.version,
            "wavetable": self.wavetable,
            "fixed": dict(self.fixed),
            "modulations": [list(m) for m in self.modulations],
            "continuous": [
                {
                    "name": p.name,
                    "group": p.group,
                    "min": p.min,
                    "max": p.max,
                    "scale": p.scale,
                    "gate": p.gate,
                    "unit": p.unit,
                    "modulation": list(p.modulation) if p.modulation else None,
                }
                for p in self.continuous
            ],
            "categorical": [
                {"name": p.name, "group": p.group, "options": list(p.options), "gate": p.gate} for p in self.categorical
            ],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VitalParamSpec:
        """Rebuild a spec from :meth:`to_dict` output (e.g. read from an HDF5 file or a checkpoint)."""
        try:
            continuous = [
                ContinuousParam(**{**p, "modulation": tuple(p["modulation"]) if p.get("modulation") else None})
                for p in d["continuous"]
            ]
            categorical = [CategoricalParam(**{**p, "options": tuple(p["options"])}) for p in d["categorical"]]
            return cls(
                continuous=tuple(continuous),
                categorical=tuple(categorical),
                fixed=dict(d.get("fixed", {})),
                modulations=tuple(tuple(m) for m in d.get("modulations", ())),
                wavetable=d.get("wavetable", "init"),
                version=str(d.get("version", "1")),
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"not a parameter spec: {e}") from None
