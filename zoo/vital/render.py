"""Rendering presets with the Vital engine (vita).

One :class:`VitalRenderer` owns one ``vita.Synth``; give each worker process its own (the engine releases
the GIL while rendering, but a synth is not shared). Facts about vita 0.1.0 this module relies on:
``render`` returns float32 (2, n) at 44.1 kHz and starts from silence every call (no tail of the previous
render); ``load_json`` returns False instead of raising, and a failed load can leave the synth half-loaded,
so the renderer replaces its synth after one; control ``set`` does not clamp.

Two ways in: :meth:`VitalRenderer.render` loads any ``.vital`` document (about 15 ms per load), and
:meth:`VitalRenderer.render_vector` keeps the spec's base preset loaded and only sets the spec's controls
(microseconds), which is what dataset generation uses. Both give the same sound for the same vector.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from zoo.audio import SAMPLE_RATE
from zoo.errors import PresetError
from zoo.vital.preset import base_preset, check_preset, controls_from_vector
from zoo.vital.spec import VitalParamSpec
from zoo.vital.tier1 import tier1_spec

DEFAULT_VELOCITY = 0.8
NOTE_SECONDS = 1.0
RENDER_SECONDS = 2.0


def _new_synth() -> Any:
    import vita

    return vita.Synth()


def vita_version() -> str:
    import vita

    return str(getattr(vita, "__version__", "unknown"))


class VitalRenderer:
    """Renders presets or Tier-1 vectors to mono float32 audio at 44.1 kHz (not loudness-normalized)."""

    def __init__(self, spec: VitalParamSpec | None = None) -> None:
        self.spec = spec or tier1_spec()
        self._base_json = json.dumps(base_preset(self.spec))
        self._base_source: dict[str, Any] | None = None  # the document set_base was last given
        self._synth = _new_synth()
        self._controls: dict[str, Any] = {}
        self._base_loaded = False
        self._extra_set: set[str] = set()  # controls outside the spec set on the loaded base

    @property
    def synth(self) -> Any:
        """The ``vita.Synth`` this renderer owns (replaced after a failed load)."""
        return self._synth

    # ------------------------------------------------------------------------------------------------

    def _load(self, text: str, label: str) -> None:
        if not self._synth.load_json(text):
            # A failed load can leave the synth half-loaded: never render with it again.
            self._synth = _new_synth()
            self._base_loaded = False
            raise PresetError(f"Vital rejected {label} (malformed, or made by a newer Vital)")
        self._controls = self._synth.get_controls()

    def _ensure_base(self) -> None:
        if not self._base_loaded:
            self._load(self._base_json, "the base preset")
            self._base_loaded = True
            self._extra_set = set()

    def _render(self, note: int, velocity: float, note_seconds: float, render_seconds: float) -> np.ndarray:
        if not 0 <= int(note) <= 127:
            raise ValueError(f"MIDI note must be in 0..127, got {note}")
        if not 0.0 < velocity <= 1.0:
            raise ValueError(f"velocity must be in (0, 1], got {velocity}")
        if not 0.0 < note_seconds <= render_seconds:
            raise ValueError(f"note_seconds must be in (0, render_seconds], got {note_seconds}")
        stereo = self._synth.render(int(note), float(velocity), float(note_seconds), float(render_seconds))
        mono = stereo.mean(axis=0, dtype=np.float32)  # (n,)
        n = int(round(render_seconds * SAMPLE_RATE))
        return np.ascontiguousarray(mono[:n], dtype=np.float32)

    # ------------------------------------------------------------------------------------------------

    def render(
        self,
        preset: dict[str, Any],
        note: int,
        velocity: float = DEFAULT_VELOCITY,
        note_seconds: float = NOTE_SECONDS,
        render_seconds: float = RENDER_SECONDS,
    ) -> np.ndarray:
        """Load a ``.vital`` document and render ``note`` held ``note_seconds`` within ``render_seconds``.

        Returns the mono mix, float32 (render_seconds * 44100,) = (88200,) by default. Raises
        :class:`PresetError` when the document is not a preset or Vital refuses it.
        """
        check_preset(preset)
        self._load(json.dumps(preset), "the preset")
        self._base_loaded = False
        return self._render(note, velocity, note_seconds, render_seconds)

    def load_base(self) -> None:
        """Load the spec's base preset now (``set_vector`` does it on first use): a process that forks renderers
        from this one gives them a synth that is ready and has rendered nothing."""
        self._ensure_base()

    def set_base(self, preset: dict[str, Any] | None) -> None:
        """Apply vectors onto ``preset`` from now on (None: the spec's base preset). It is loaded by the next
        :meth:`set_vector`, and only when it differs from the current base; the same document object given
        again is taken as unchanged (do not edit a document after giving it). Raises :class:`PresetError`
        when ``preset`` is not a ``.vital`` document."""
        if preset is self._base_source:
            return
        if preset is not None:
            check_preset(preset, "the base preset")
        text = json.dumps(base_preset(self.spec) if preset is None else preset)
        if text != self._base_json:
            self._base_json = text
            self._base_loaded = False
        self._base_source = preset

    def set_vector(
        self, continuous: np.ndarray, categorical: np.ndarray, extra: dict[str, float] | None = None
    ) -> None:
        """Put the synth in the state of ``preset_from_vector(continuous, categorical)`` on the current base;
        ``extra``: raw values of controls outside the spec to set too (by Vital name). Extra controls an
        earlier call set and this one does not are put back to the base's values."""
        values = controls_from_vector(continuous, categorical, self.spec)
        self._ensure_base()
        if self._extra_set - set(extra or ()):
            settings = json.loads(self._base_json)["settings"]
            values |= {n: float(settings[n]) for n in self._extra_set - set(extra or ())}
        values |= extra or {}
        self._extra_set |= set(extra or ())  # tracked before setting: a failed set is put back next time
        for name, value in values.items():
            self._controls[name].set(value)
        self._extra_set = set(extra or ())

    def render_vector(
        self,
        continuous: np.ndarray,
        categorical: np.ndarray,
        note: int,
        velocity: float = DEFAULT_VELOCITY,
        note_seconds: float = NOTE_SECONDS,
        render_seconds: float = RENDER_SECONDS,
    ) -> np.ndarray:
        """Render a spec vector at ``note``: the same sound as rendering ``preset_from_vector(...)``."""
        self.set_vector(continuous, categorical)
        return self._render(note, velocity, note_seconds, render_seconds)

    def render_current(
        self,
        note: int,
        velocity: float = DEFAULT_VELOCITY,
        note_seconds: float = NOTE_SECONDS,
        render_seconds: float = RENDER_SECONDS,
    ) -> np.ndarray:
        """Render the synth's current state again (after :meth:`set_vector`), e.g. at another note."""
        return self._render(note, velocity, note_seconds, render_seconds)

    def to_preset(self) -> dict[str, Any]:
        """The synth's current state as a ``.vital`` document (vita's ``to_json``)."""
        return json.loads(self._synth.to_json())
