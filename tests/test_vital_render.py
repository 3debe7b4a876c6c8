import numpy as np
import pytest

from zoo.audio import CLIP_SAMPLES, rms_db
from zoo.errors import PresetError
from zoo.vital import tier1_spec
from zoo.vital.preset import init_preset, preset_from_vector, vector_from_preset

pytest.importorskip("vita")

from zoo.vital.render import VitalRenderer  # noqa: E402


@pytest.fixture(scope="module")
def renderer():
    return VitalRenderer()


def _log_spectrum(audio: np.ndarray) -> np.ndarray:
    frames = audio[: len(audio) // 2048 * 2048].reshape(-1, 2048)
    spectrum = np.log(np.abs(np.fft.rfft(frames, axis=1)).mean(axis=0) + 1e-5)
    return spectrum - spectrum.mean()  # shape of the spectrum, not its level


def _audible_vector():
    """Init's plain saw changed in many Tier-1 controls, no unison or modulated effects (little render noise)."""
    spec = tier1_spec()
    cont, cat = vector_from_preset(init_preset())
    c, k = spec.continuous_names.index, spec.categorical_names.index
    cont[c("osc_1_wave_frame")] = 0.6
    cont[c("osc_1_transpose")] = 0.625  # +12 semitones
    cont[c("filter_1_cutoff")] = 0.55
    cont[c("filter_1_resonance")] = 0.7
    cont[c("env_1_decay")] = 0.4
    cont[c("env_1_sustain")] = 0.3
    cont[c("distortion_drive")] = 0.8
    cat[k("filter_1_on")] = 1
    cat[k("filter_1_model")] = 2
    cat[k("distortion_on")] = 1
    cat[k("osc_1_spectral_morph_type")] = 7  # one oscillator: no level change from two random phases
    return cont, cat


def test_render_shape_and_level(renderer):
    audio = renderer.render(init_preset(), note=60)
    assert audio.shape == (CLIP_SAMPLES,) and audio.dtype == np.float32
    assert np.isfinite(audio).all() and rms_db(audio) > -40
    quiet_tail = audio[-4410:]  # note off at 1 s, init release ~0.1 s: silence by 1.9 s
    assert rms_db(quiet_tail) < rms_db(audio) - 40


def test_render_vector_sounds_like_the_written_preset(renderer):
    cont, cat = _audible_vector()
    fast = renderer.render_vector(cont, cat, note=60)
    loaded = renderer.render(preset_from_vector(cont, cat), note=60)
    assert rms_db(fast) > -60
    assert np.abs(_log_spectrum(fast) - _log_spectrum(loaded)).mean() < 0.1
    again = renderer.render_vector(cont, cat, note=60)  # back from a loaded preset to the base
    assert np.abs(_log_spectrum(fast) - _log_spectrum(again)).mean() < 0.1
    other = renderer.render(init_preset(), note=60)
    assert np.abs(_log_spectrum(fast) - _log_spectrum(other)).mean() > 0.3


def test_wave_frame_changes_the_timbre(renderer):
    spec = tier1_spec()
    cont, cat = vector_from_preset(init_preset())
    frame = spec.continuous_names.index("osc_1_wave_frame")
    spectra = []
    for x in (0.0, 1.0):  # sine, square
        cont[frame] = x
        spectra.append(_log_spectrum(renderer.render_vector(cont, cat, note=60)))
    assert np.abs(spectra[0] - spectra[1]).mean() > 0.5


def test_a_rejected_preset_is_a_clear_error_and_the_renderer_recovers(renderer):
    doc = init_preset()
    doc["synth_version"] = "100000.0.0"  # newer than the engine: vita's loader returns False
    with pytest.raises(PresetError, match="Vital rejected"):
        renderer.render(doc, note=60)
    with pytest.raises(PresetError, match="not a Vital preset"):
        renderer.render({"settings": {}}, note=60)
    assert rms_db(renderer.render(init_preset(), note=60)) > -40
    with pytest.raises(ValueError, match="MIDI note"):
        renderer.render(init_preset(), note=200)
