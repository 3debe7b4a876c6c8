"""Model outputs -> a Vital preset: parameter values by Vital name and the complete ``.vital`` document."""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from zoo.artifact import ArtifactCard
from zoo.errors import ArtifactError


@dataclass
class PresetPrediction:
    """One predicted preset."""

    parameters: dict[str, float]  # every Tier-1 parameter by Vital name, the value written in the preset
    categorical: dict[str, dict[str, Any]]  # categorical ones: option name, index, probability
    continuous: np.ndarray  # (n_continuous,) normalised [0, 1]
    indices: np.ndarray  # (n_categorical,) option indices
    document: dict[str, Any]  # the complete .vital JSON document


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max())
    return z / z.sum()


class PresetDecoder:
    """Turns one item's outputs (in the card's order) into a preset, following the card's parameter spec."""

    def __init__(self, card: ArtifactCard) -> None:
        from zoo.vital.spec import VitalParamSpec

        if not card.spec:
            raise ArtifactError(
                f"{card.model.name} was exported without a parameter spec, so its outputs cannot be written "
                "as a Vital preset; export a checkpoint that stores its spec"
            )
        try:
            self.spec = VitalParamSpec.from_dict(card.spec)
        except (KeyError, TypeError, ValueError) as e:
            raise ArtifactError(f"the parameter spec of {card.model.name}'s card cannot be read ({e})") from None
        names = card.output_names
        widths = {o.name: o.shape[-1] for o in card.outputs}
        n_cat = len(self.spec.categorical)
        expected = {"continuous": len(self.spec.continuous)}
        expected.update({f"cat_{i}": n for i, n in enumerate(self.spec.categorical_n_options)})
        for name, width in expected.items():
            if widths.get(name) != width:
                raise ArtifactError(
                    f"the model's output {name!r} does not match the parameter spec (width "
                    f"{widths.get(name, 'missing')} against {width}); the card and model disagree"
                )
        self.continuous_index = names.index("continuous")
        self.categorical_index = [names.index(f"cat_{i}") for i in range(n_cat)]

    def decode(self, outputs: list[np.ndarray], name: str = "Predicted") -> PresetPrediction:
        """``outputs``: one item's arrays (batch axis removed), in the card's output order."""
        from zoo.vital.preset import preset_from_vector

        continuous = np.clip(np.asarray(outputs[self.continuous_index], dtype=np.float64), 0.0, 1.0)
        probabilities = [_softmax(np.asarray(outputs[i], dtype=np.float64)) for i in self.categorical_index]
        indices = np.array([int(np.argmax(p)) for p in probabilities], dtype=np.int64)
        document = preset_from_vector(continuous, indices, spec=self.spec, name=name)
        settings = document["settings"]
        parameters = {p.name: float(settings[p.name]) for p in self.spec.continuous}
        parameters.update({p.name: float(settings[p.name]) for p in self.spec.categorical})
        categorical = {
            p.name: {"option": p.options[k], "index": int(k), "probability": round(float(prob[k]), 4)}
            for p, k, prob in zip(self.spec.categorical, indices, probabilities, strict=True)
        }
        return PresetPrediction(parameters, categorical, continuous, indices, document)


def wav_base64(audio: np.ndarray, sample_rate: int) -> str:
    """16-bit PCM WAV of a mono clip, base64 encoded."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.clip(audio, -1.0, 1.0), sample_rate, format="WAV", subtype="PCM_16")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


class PreviewRenderer:
    """Renders predicted presets with Vital at the detected notes and measures how close they sound."""

    def __init__(self, spec: Any) -> None:
        from zoo.vital.render import VitalRenderer

        self.renderer = VitalRenderer(spec)

    def preview(
        self, prediction: PresetPrediction, midi_note: int, reference: np.ndarray, phrase: Any | None = None
    ) -> dict[str, Any]:
        """:meth:`play` of a predicted preset (on the spec's base preset)."""
        return self.play(prediction.continuous, prediction.indices, midi_note, reference, phrase)

    def play(
        self,
        continuous: np.ndarray,
        categorical: np.ndarray,
        midi_note: int,
        reference: np.ndarray,
        phrase: Any | None = None,
        base: dict[str, Any] | None = None,
        controls: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        """Render the preset of a spec vector (on ``base``, a ``.vital`` document: a searched candidate's
        base, such as a wavetable taken from the recording; None: the spec's base preset; ``controls``: raw
        values of controls outside the spec set on it, such as that wavetable's sweep) so that it sounds
        at ``midi_note`` (the detected pitch) and compare it with ``reference``, the 2 s input clip; with
        ``phrase`` (a :class:`zoo.notes.Phrase`), the WAV plays every note of the phrase at its onset, length
        and velocity, as long as the recording.

        A predicted preset may transpose its oscillators, so the note that sounds at ``midi_note`` is not
        always ``midi_note``: the first render's pitch is measured and, when it is off, the preset is played
        shifted by the difference (every note of the phrase too). Returns the played note, the shift, the
        release rendered after each note of the phrase, the render as WAV base64 and the multi-scale
        spectral distance of the main note's render to the input clip (None when the preset renders
        silence)."""
        from zoo.audio import SAMPLE_RATE, normalize_loudness
        from zoo.errors import AudioDecodeError
        from zoo.notes import find_main_note
        from zoo.spectral import multiscale_spectral_distance
        from zoo.vital.phrase import RELEASE_SECONDS, release_seconds_of, render_phrase
        from zoo.vital.render import NOTE_SECONDS

        played = int(midi_note)
        # The synth state of the vector's document, set on the loaded base preset: the same sound as loading
        # the document, at less than half the cost.
        self.renderer.set_base(base)
        self.renderer.set_vector(continuous, categorical, controls)
        audio = self.renderer.render_current(played)
        try:
            sounding = find_main_note(audio)
            if sounding.pitched and sounding.midi != played:
                played = int(np.clip(played - (sounding.midi - int(midi_note)), 0, 127))
                audio = self.renderer.render_current(played)
            distance: float | None = round(multiscale_spectral_distance(audio, reference), 5)
        except AudioDecodeError:  # the predicted preset is silent at this note
            distance = None
        tail = None
        if phrase is not None:
            # Each note gets as much release as the preset needs (measured on the one-note render), at most 2 s.
            tail = round(min(RELEASE_SECONDS, release_seconds_of(audio, NOTE_SECONDS) + 0.05), 3)
            shift = played - int(midi_note)  # the synth keeps the state set above
            audio = render_phrase(self.renderer, phrase.notes, phrase.seconds, transpose=shift, release_seconds=tail)
        try:
            audio = normalize_loudness(audio)
        except AudioDecodeError:
            pass  # silence stays silence
        return {
            "note": played,
            "transpose": played - int(midi_note),
            "notes_played": len(phrase.notes) if phrase is not None else 1,
            "release_seconds": tail,  # each note's release tail in the phrase render (None: one note)
            "sample_rate": SAMPLE_RATE,
            "wav_base64": wav_base64(audio, SAMPLE_RATE),
            "spectral_distance": distance,
            "silent": distance is None,
        }
