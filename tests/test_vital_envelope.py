import numpy as np
import pytest

from zoo.vital.envelope import Envelope, fit_envelope, frame_rms, power_curve
from zoo.vital.preset import init_preset
from zoo.vital.wavetable import basic_shape, wavetable_from_frames

pytest.importorskip("vita")

from zoo.vital.render import VitalRenderer  # noqa: E402

SR = 44100


@pytest.fixture(scope="module")
def renderer():
    return VitalRenderer()


def _sine_with(envelope: Envelope) -> dict:
    doc = init_preset()
    settings = doc["settings"]
    settings["wavetables"][0] = wavetable_from_frames(settings["wavetables"][0], [basic_shape("sine")], [0], "Sine")
    settings.update(envelope.controls("env_1"))
    return doc


def _db(audio: np.ndarray) -> np.ndarray:
    rms = frame_rms(audio)
    return 20 * np.log10(np.maximum(rms / rms.max(), 1e-6))


def test_power_curve_is_vitals_shape():
    x = np.linspace(0, 1, 11)
    assert np.allclose(power_curve(x, 0.0), x)
    assert power_curve(np.array([0.5]), 4.0)[0] < 0.5 < power_curve(np.array([0.5]), -4.0)[0]
    assert power_curve(np.array([0.0, 1.0]), 7.0).tolist() == [0.0, 1.0]


@pytest.mark.parametrize(
    "envelope",
    [Envelope(0.1, 0.3, 0.5, 0.2), Envelope(0.2, 0.2, 0.8, 0.5, attack_power=2.0, decay_power=4.0, release_power=0.0)],
)
def test_the_model_plays_like_vital(renderer, envelope):
    """The modelled amplitude (value squared) follows Vital's render within 1 dB on average while it sounds."""
    audio = renderer.render(_sine_with(envelope), note=69)
    t = np.arange(len(audio)) / SR
    model = _db(envelope.value(t, note_seconds=1.0) ** 2 * np.sin(2 * np.pi * 440 * t))
    measured = _db(audio)
    sounding = model > -40
    assert np.abs(measured[sounding] - model[sounding]).mean() < 1.0


def test_fit_recovers_a_rendered_envelope(renderer):
    truth = Envelope(attack=0.1, decay=0.3, sustain=0.5, release=0.2)
    audio = renderer.render(_sine_with(truth), note=69)
    fitted, note_seconds = fit_envelope(audio)
    assert note_seconds == pytest.approx(1.0, abs=0.02)
    assert fitted.attack == pytest.approx(0.1, abs=0.01)
    assert fitted.decay == pytest.approx(0.3, rel=0.15)
    assert fitted.sustain == pytest.approx(0.5, abs=0.05)
    assert fitted.release == pytest.approx(0.2, rel=0.15)


def test_fit_keeps_what_it_is_not_asked_to_fit():
    t = np.arange(SR) / SR
    audio = np.sin(2 * np.pi * 440 * t) * np.minimum(t / 0.05, 1.0)
    fitted, note_seconds = fit_envelope(audio, note_seconds=0.8, fitted=("attack",))
    assert note_seconds == 0.8
    assert (fitted.decay, fitted.sustain, fitted.release) == (Envelope().decay, 1.0, Envelope().release)
    with pytest.raises(ValueError, match="unknown envelope fields"):
        fit_envelope(audio, fitted=("attack", "loudness"))
    with pytest.raises(ValueError, match="silence"):
        fit_envelope(np.zeros(SR))
