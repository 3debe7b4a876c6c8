"""Starting points of a search: the network's prediction and its variants, a wavetable taken from the
recording, the init preset, and the nearest training presets by sound.

A :class:`Candidate` is a Tier-1 vector (continuous in [0, 1], categorical option indices) and, optionally,
the ``.vital`` document it is applied onto (``base``; None: the spec's base preset, see
``zoo.vital.preset.base_preset``). A base carries what the vector does not: e.g. a wavetable cut from the
recording. :func:`document_for` writes the complete preset of a candidate.

With an analysis of the recording's main note (``zoo.vital.resynthesis.analyse_note``),
:func:`wavetable_candidates` adds two starts on the analysis's base preset (oscillator 1 playing the
wavetable taken from the note): ``model+wavetable``, the network's vector with oscillator 1's parameters set
as the analysis found them (the table at its pitch, swept as analysed), and ``wavetable``, the analysis's own
preset (``analysis_preset``). The network's vector on the Tier-1 base stays the ``model`` start: candidates
with and without the wavetable are scored alike and the closest wins. Both wavetable starts carry
:class:`ExtraControls`: the sweep's time and depth, controls outside the spec that the analysis cannot know
exactly (``zoo.vital.resynthesis.extra_control_ranges``), which the search can move as extra dimensions
(``SearchConfig.extra_controls``).

Every proposal is scored by rendering it (``zoo.matching.objective``) and the search starts from the best.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from zoo.vital.preset import DEFAULT_PRESET_NAME, check_preset, controls_from_vector, preset_from_vector
from zoo.vital.spec import VitalParamSpec
from zoo.vital.tier1 import tier1_spec

MODEL = "model"
MODEL_WAVETABLE = "model+wavetable"
WAVETABLE = "wavetable"
INIT = "init"
NEIGHBOUR = "neighbour"


@dataclass(frozen=True, eq=False)
class ExtraControls:
    """Controls outside the spec a candidate sets by name on its base: ``values`` (n,) in [0, 1] (clipped
    here) within each control's raw range ``low[i] .. high[i]``."""

    names: tuple[str, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    values: np.ndarray

    def __post_init__(self) -> None:
        values = np.clip(np.asarray(self.values, dtype=np.float64).reshape(-1), 0.0, 1.0)
        if not len(self.names) == len(self.low) == len(self.high) == values.size:
            raise ValueError("extra controls need one range and one value per name")
        object.__setattr__(self, "values", values)

    @classmethod
    def from_raw(cls, ranges: dict[str, tuple[float, float]], raw: dict[str, float]) -> ExtraControls:
        """Controls with raw ``ranges`` (name -> (low, high)) at the raw values ``raw``."""
        names = tuple(ranges)
        low, high = (tuple(float(ranges[n][i]) for n in names) for i in (0, 1))
        values = [(raw[n] - lo) / (hi - lo) if hi > lo else 0.0 for n, lo, hi in zip(names, low, high, strict=True)]
        return cls(names, low, high, np.array(values))

    def with_values(self, values: np.ndarray) -> ExtraControls:
        return ExtraControls(self.names, self.low, self.high, values)

    def raw(self) -> dict[str, float]:
        """Raw values by control name, as written in the ``.vital`` document."""
        rows = zip(self.names, self.low, self.high, self.values, strict=True)
        return {n: float(lo + v * (hi - lo)) for n, lo, hi, v in rows}


@dataclass(frozen=True, eq=False)
class Candidate:
    """A Tier-1 vector to render: ``continuous`` (n_continuous,) in [0, 1] (clipped here), ``categorical``
    (n_categorical,) option indices, a ``label`` saying where it came from, the optional ``base``
    document the vector is applied onto, and the optional ``extra`` controls set on that base after it."""

    continuous: np.ndarray
    categorical: np.ndarray
    label: str
    base: dict[str, Any] | None = None
    extra: ExtraControls | None = None

    def __post_init__(self) -> None:
        continuous = np.asarray(self.continuous, dtype=np.float64).reshape(-1)
        if not np.isfinite(continuous).all():
            raise ValueError(f"candidate {self.label!r} has NaN or infinite continuous values")
        categorical = np.asarray(self.categorical).reshape(-1)
        if categorical.size and (not np.isfinite(categorical).all() or np.any(categorical != np.round(categorical))):
            raise ValueError(f"candidate {self.label!r} has categorical indices that are not whole numbers")
        object.__setattr__(self, "continuous", np.clip(continuous, 0.0, 1.0))
        object.__setattr__(self, "categorical", categorical.astype(np.int64))

    def replace(self, **changes: Any) -> Candidate:
        """A copy with some fields changed (the base document is shared, not copied)."""
        fields = {"continuous": self.continuous, "categorical": self.categorical, "label": self.label}
        return Candidate(**{**fields, "base": self.base, "extra": self.extra, **changes})

    @property
    def controls(self) -> dict[str, float] | None:
        """The raw values of the extra controls by name (None without)."""
        return None if self.extra is None else self.extra.raw()


def document_for(candidate: Candidate, spec: VitalParamSpec | None = None, name: str = DEFAULT_PRESET_NAME) -> dict:
    """The complete ``.vital`` document of a candidate: ``preset_from_vector`` for the spec's base, else a
    copy of the candidate's base with the vector's controls written over it; then its extra controls."""
    spec = spec or tier1_spec()
    if candidate.base is None:
        doc = preset_from_vector(candidate.continuous, candidate.categorical, spec, name=name)
    else:
        check_preset(candidate.base, "the base preset")
        doc = copy.deepcopy(candidate.base)
        doc["preset_name"] = name
        doc["settings"].update(controls_from_vector(candidate.continuous, candidate.categorical, spec))
    doc["settings"].update(candidate.controls or {})
    return doc


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities of one categorical head's logits (n_options,)."""
    z = np.exp(np.asarray(logits, dtype=np.float64) - np.max(logits))
    return z / z.sum()


def _audible_heads(categorical: np.ndarray, spec: VitalParamSpec) -> list[int]:
    """Heads whose choice can change the sound: switches, and options whose module switch is on."""
    gates = spec.categorical_gate_ids()
    return [i for i, g in enumerate(gates) if g < 0 or categorical[g] == 1]


def model_candidates(
    continuous: np.ndarray,
    logits: Sequence[np.ndarray],
    spec: VitalParamSpec | None = None,
    n_variants: int = 3,
    base: dict[str, Any] | None = None,
) -> list[Candidate]:
    """The network's prediction (argmax of every head), then ``n_variants`` copies of it, each with one of
    the least confident audible heads (smallest margin between its two most likely options) set to its
    second choice. ``logits``: one (n_options,) array per categorical head, in spec order."""
    spec = spec or tier1_spec()
    probabilities = [softmax(lg) for lg in logits]
    if len(probabilities) != spec.n_categorical:
        raise ValueError(f"expected {spec.n_categorical} categorical heads, got {len(probabilities)}")
    ranked = [np.argsort(-p, kind="stable") for p in probabilities]
    categorical = np.array([r[0] for r in ranked], dtype=np.int64)
    out = [Candidate(continuous, categorical, MODEL, base)]
    heads = _audible_heads(categorical, spec)
    margins = {i: probabilities[i][ranked[i][0]] - probabilities[i][ranked[i][1]] for i in heads}
    for i in sorted(margins, key=lambda i: (margins[i], i))[: max(0, n_variants)]:
        variant = categorical.copy()
        variant[i] = ranked[i][1]
        p = spec.categorical[i]
        out.append(Candidate(continuous, variant, f"{MODEL}, {p.name}={p.options[variant[i]]}", base))
    return out


def wavetable_candidates(
    analysis,
    spec: VitalParamSpec | None = None,
    continuous: np.ndarray | None = None,
    categorical: np.ndarray | None = None,
) -> list[Candidate]:
    """The starts a wavetable analysis (``zoo.vital.resynthesis.NoteAnalysis``) proposes, both on its base
    preset (``wavetable_base_preset``): ``model+wavetable`` (when the network's ``continuous`` and
    ``categorical`` vector is given: that vector with every ``osc_1_*`` parameter of ``wavetable_vector``;
    an unpitched analysis's base adds its noise to the network's sound unchanged), then ``wavetable``. Both
    carry the sweep's time and depth as :class:`ExtraControls` at the analysed values (none when unpitched)."""
    from zoo.vital.resynthesis import extra_control_ranges, sweep_controls, wavetable_base_preset, wavetable_vector

    spec = spec or tier1_spec()
    base = wavetable_base_preset(analysis, spec)
    table_continuous, table_categorical = wavetable_vector(analysis, spec)
    ranges = extra_control_ranges(analysis)
    extra = ExtraControls.from_raw(ranges, sweep_controls(analysis)) if ranges else None
    out = []
    if continuous is not None and categorical is not None:
        mixed_continuous = np.array(continuous, dtype=np.float64, copy=True)
        mixed_categorical = np.array(categorical, dtype=np.int64, copy=True)
        if analysis.pitched:
            for i, p in enumerate(spec.continuous):
                if p.name.startswith("osc_1_"):
                    mixed_continuous[i] = table_continuous[i]
            for i, p in enumerate(spec.categorical):
                if p.name.startswith("osc_1_"):
                    mixed_categorical[i] = table_categorical[i]
        out.append(Candidate(mixed_continuous, mixed_categorical, MODEL_WAVETABLE, base, extra))
    out.append(Candidate(table_continuous, table_categorical, WAVETABLE, base, extra))
    return out


def init_candidate(spec: VitalParamSpec | None = None, base: dict[str, Any] | None = None) -> Candidate:
    """Vital's init preset projected onto the spec (``vector_from_preset(init_preset())``)."""
    from zoo.vital.preset import init_preset, vector_from_preset

    continuous, categorical = vector_from_preset(init_preset(), spec or tier1_spec())
    return Candidate(continuous, categorical, INIT, base)


def propose(
    spec: VitalParamSpec | None = None,
    continuous: np.ndarray | None = None,
    logits: Sequence[np.ndarray] | None = None,
    neighbours: Sequence[Candidate] = (),
    n_variants: int = 3,
    include_init: bool = True,
    base: dict[str, Any] | None = None,
    analysis=None,
) -> list[Candidate]:
    """Every starting point, most trusted first: the network's prediction (when given), the starts of a
    wavetable ``analysis`` (when given, :func:`wavetable_candidates`), the network's variants, the init
    preset, then ``neighbours`` (``NeighbourIndex.nearest``)."""
    out: list[Candidate] = []
    model = []
    if continuous is not None and logits is not None:
        model = model_candidates(continuous, logits, spec, n_variants, base)
        out.append(model[0])
    if analysis is not None:
        first = model[0] if model else None
        out += wavetable_candidates(analysis, spec, *((first.continuous, first.categorical) if first else ()))
    out += model[1:]
    if include_init:
        out.append(init_candidate(spec, base))
    out += list(neighbours)
    if not out:
        raise ValueError("no candidate to start from: give the network's prediction or include the init preset")
    return out
