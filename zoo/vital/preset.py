"""Vital presets (``.vital`` JSON documents) <-> Tier-1 vectors.

A ``.vital`` file is JSON: ``author``, ``comments``, ``macro1..4``, ``preset_name``, ``preset_style``,
``synth_version`` and ``settings`` (every control by name, plus ``modulations``, ``sample``, ``wavetables``
and ``lfos``). Writing starts from Vital's init preset (shipped in ``zoo/vital/data/init.vital``, taken from
vita 0.1.0), applies the spec's fixed settings, modulations and wavetable, then overwrites the spec's
controls, clamped to their ranges: Vital does not clamp. Reading projects any preset, human-made ones with
modulations and custom wavetables included, onto the spec: controls it lacks take the init value, values
outside a range are clamped, and everything outside the spec is ignored.

None of this needs the Vital engine; loading a document into a synth is ``zoo.vital.render``'s job.
"""

from __future__ import annotations

import copy
import json
import math
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import PresetError
from zoo.vital.spec import VitalParamSpec
from zoo.vital.tier1 import tier1_spec
from zoo.vital.wavetable import basic_shapes_wavetable

MAX_PRESET_BYTES = 64 * 1024 * 1024
DEFAULT_PRESET_NAME = "Zoo Tier-1"
_N_OSCILLATORS = 3


@lru_cache(maxsize=1)
def _init_document() -> dict[str, Any]:
    text = resources.files("zoo.vital").joinpath("data/init.vital").read_text(encoding="utf-8")
    return json.loads(text)


def init_preset() -> dict[str, Any]:
    """Vital's init preset as a ``.vital`` document (a fresh copy: callers may change it)."""
    return copy.deepcopy(_init_document())


@lru_cache(maxsize=8)
def _base_document(spec_json: str) -> dict[str, Any]:
    spec = VitalParamSpec.from_dict(json.loads(spec_json))
    doc = init_preset()
    settings = doc["settings"]
    for name, value in spec.fixed.items():
        settings[name] = float(value)
    for slot, (source, destination) in enumerate(spec.modulations):
        settings["modulations"][slot] = {"source": source, "destination": destination}
    if spec.wavetable == "basic_shapes":
        settings["wavetables"] = [basic_shapes_wavetable(t) for t in settings["wavetables"][:_N_OSCILLATORS]]
    elif spec.wavetable != "init":
        raise PresetError(f"unknown wavetable {spec.wavetable!r} in the parameter spec")
    return doc


def base_preset(spec: VitalParamSpec | None = None) -> dict[str, Any]:
    """The document every preset of ``spec`` starts from: init + the spec's fixed settings, modulations and
    wavetable. Its Tier-1 controls still hold init values."""
    spec = spec or tier1_spec()
    return copy.deepcopy(_base_document(json.dumps(spec.to_dict(), sort_keys=True)))


def preset_from_vector(
    continuous: np.ndarray,
    categorical: np.ndarray,
    spec: VitalParamSpec | None = None,
    name: str = DEFAULT_PRESET_NAME,
    base: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A complete ``.vital`` document for one Tier-1 vector.

    ``continuous``: (n_continuous,) in the normalized space (clipped to [0, 1]); ``categorical``:
    (n_categorical,) option indices. ``base``: the document the vector's controls are written onto (a
    copy is made; e.g. one with a wavetable taken from a recording), :func:`base_preset` by default.
    Raises ValueError for a vector of the wrong length or an index out of range.
    """
    spec = spec or tier1_spec()
    continuous = np.asarray(continuous)
    if continuous.ndim != 1:
        raise ValueError(f"expected one continuous vector, got shape {continuous.shape}")
    if not np.all(np.isfinite(continuous)):
        raise ValueError("the continuous vector contains NaN or infinite values")
    raw = spec.denormalize(continuous)
    indices = spec.check_categorical(np.asarray(categorical).reshape(-1))
    doc = base_preset(spec) if base is None else copy.deepcopy(base)
    doc["preset_name"] = name
    settings = doc["settings"]
    for p, value in zip(spec.continuous, raw, strict=True):
        settings[p.name] = float(value)
    for p, index in zip(spec.categorical, indices, strict=True):
        settings[p.name] = float(index)
    return doc


def controls_from_vector(
    continuous: np.ndarray, categorical: np.ndarray, spec: VitalParamSpec | None = None
) -> dict[str, float]:
    """The raw control values a vector sets, by Vital name (the Tier-1 part of :func:`preset_from_vector`)."""
    spec = spec or tier1_spec()
    raw = spec.denormalize(np.asarray(continuous))
    indices = spec.check_categorical(np.asarray(categorical).reshape(-1))
    values = {p.name: float(v) for p, v in zip(spec.continuous, raw, strict=True)}
    values.update({p.name: float(i) for p, i in zip(spec.categorical, indices, strict=True)})
    return values


# ----------------------------------------------------------------------------------------------------
# Reading


def load_preset_json(text: str | bytes | bytearray, label: str = "the preset") -> dict[str, Any]:
    """Parse and check a ``.vital`` document from JSON text. Raises :class:`PresetError`."""
    if len(text) == 0:
        raise PresetError(f"{label} is empty")
    if len(text) > MAX_PRESET_BYTES:
        raise PresetError(f"{label} is larger than {MAX_PRESET_BYTES // 2**20} MiB; not a Vital preset")
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PresetError(f"{label} is not a Vital preset: not valid JSON ({e})") from None
    check_preset(doc, label)
    return doc


def load_preset_file(path: str | Path) -> dict[str, Any]:
    """Read and check a ``.vital`` file. Raises :class:`PresetError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise PresetError(f"no such preset file: {path}")
    if path.stat().st_size > MAX_PRESET_BYTES:
        raise PresetError(f"{path} is larger than {MAX_PRESET_BYTES // 2**20} MiB; not a Vital preset")
    return load_preset_json(path.read_bytes(), label=str(path))


def check_preset(doc: Any, label: str = "the preset") -> None:
    """Raise :class:`PresetError` unless ``doc`` has the shape of a ``.vital`` document."""
    if not isinstance(doc, dict):
        raise PresetError(f"{label} is not a Vital preset: expected a JSON object, got {type(doc).__name__}")
    settings = doc.get("settings")
    if not isinstance(settings, dict):
        raise PresetError(f"{label} is not a Vital preset: it has no 'settings' object")
    known = _init_document()["settings"]
    controls = [k for k in settings if k in known and not isinstance(known[k], (dict, list))]
    if not controls:
        raise PresetError(f"{label} is not a Vital preset: its settings hold no Vital control")
    for key in controls:
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise PresetError(f"{label} is not a valid Vital preset: control {key!r} is {value!r}, not a number")
    modulations = settings.get("modulations", [])
    if not isinstance(modulations, list) or not all(isinstance(m, dict) for m in modulations):
        raise PresetError(f"{label} is not a valid Vital preset: 'modulations' is not a list of objects")


def _as_document(preset: dict[str, Any] | str | Path) -> dict[str, Any]:
    if isinstance(preset, dict):
        check_preset(preset)
        return preset
    if isinstance(preset, (str, Path)):
        return load_preset_file(preset)
    raise PresetError(f"expected a .vital document (dict) or a path, got {type(preset).__name__}")


def _modulation_amount(settings: dict[str, Any], source: str, destination: str) -> float:
    for slot, mod in enumerate(settings.get("modulations", []), start=1):
        if mod.get("source") == source and mod.get("destination") == destination:
            return float(settings.get(f"modulation_{slot}_amount", 0.0))
    return 0.0


def vector_from_preset(
    preset: dict[str, Any] | str | Path, spec: VitalParamSpec | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Project a ``.vital`` document or file onto the spec -> (continuous float32 in [0, 1], categorical int64).

    A modulation-amount parameter reads the amount of the preset's modulation with the same source and
    destination, in whichever slot it sits (0 when the preset has none). Raises :class:`PresetError`.
    """
    spec = spec or tier1_spec()
    settings = _as_document(preset)["settings"]
    init = _init_document()["settings"]
    raw = np.empty(spec.n_continuous, dtype=np.float64)
    for i, p in enumerate(spec.continuous):
        if p.modulation is not None:
            raw[i] = _modulation_amount(settings, *p.modulation)
        else:
            raw[i] = float(settings.get(p.name, init.get(p.name, p.min)))
    continuous = spec.normalize(raw)
    categorical = np.empty(spec.n_categorical, dtype=np.int64)
    for i, p in enumerate(spec.categorical):
        value = float(settings.get(p.name, init.get(p.name, 0.0)))
        categorical[i] = min(max(int(round(value)), 0), len(p.options) - 1)
    return continuous, categorical
