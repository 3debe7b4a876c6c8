import json
import math

import numpy as np
import pytest

from zoo.notes import find_main_note
from zoo.vital import tier1_spec
from zoo.vital.envelope import frame_rms
from zoo.vital.harmonics import harmonics_at
from zoo.vital.preset import controls_from_vector, init_preset
from zoo.vital.resynthesis import (
    SWEEP_SLOT,
    analyse_note,
    analysis_preset,
    extra_control_ranges,
    noise_cutoff,
    sweep_controls,
    wavetable_base_preset,
    wavetable_frames,
    wavetable_vector,
)
from zoo.vital.spec import VitalParamSpec
from zoo.vital.wavetable import wavetable_keyframes

vita = pytest.importorskip("vita")

from zoo.vital.render import VitalRenderer  # noqa: E402

SR = 44100
F0 = 220.0 * 2 ** (0.2 / 12)  # A3, 20 cents sharp


def _additive(f0: float = F0, harmonics: int = 40, seconds: float = 2.0, note: float = 1.0) -> np.ndarray:
    """A note whose upper harmonics fade over the first second (a brightness sweep Vital must reproduce),
    10 ms attack, held 1 s, 0.1 s release."""
    t = np.arange(int(seconds * SR)) / SR
    k = np.arange(1, harmonics + 1)[:, None]
    amplitudes = np.exp(-(k - 1) * t[None] / 3.2) / k  # (H, n)
    tone = (amplitudes * np.sin(2 * np.pi * k * f0 * t[None] + 0.3 * k)).sum(axis=0)
    envelope = np.minimum(t / 0.01, 1.0) * np.where(t < note, 1.0, np.exp(-(t - note) / 0.1))
    return (0.3 * tone * envelope).astype(np.float32)


def _noise_burst(cutoff_hz: float = 2000.0) -> np.ndarray:
    from scipy.signal import butter, lfilter

    t = np.arange(2 * SR) / SR
    noise = lfilter(*butter(2, cutoff_hz / (SR / 2)), np.random.default_rng(0).standard_normal(len(t)))
    envelope = np.where(t < 1.0, np.minimum(t / 0.005, 1.0), np.exp(-(t - 1.0) / 0.1))
    return (0.3 * noise / np.abs(noise).max() * envelope).astype(np.float32)


@pytest.fixture(scope="module")
def renderer():
    return VitalRenderer()


@pytest.fixture(scope="module")
def tone():
    audio = _additive()
    return audio, analyse_note(audio, note_seconds=1.0)


def _unit(amplitudes: np.ndarray) -> np.ndarray:
    return amplitudes / np.sqrt((amplitudes**2).sum(axis=-1, keepdims=True) / 2)


def test_the_written_document_loads_in_vita(tone):
    _, analysis = tone
    doc = analysis_preset(analysis)
    synth = vita.Synth()
    assert synth.load_json(json.dumps(doc))
    loaded = json.loads(synth.to_json())["settings"]
    assert loaded["wavetables"][0]["name"] == "From audio"
    assert loaded["modulations"][SWEEP_SLOT - 1] == {"source": "env_3", "destination": "osc_1_wave_frame"}
    assert loaded["modulations"][0] == {"source": "env_2", "destination": "filter_1_cutoff"}  # Tier 1's slot


def test_it_plays_at_the_detected_pitch(renderer, tone):
    _, analysis = tone
    assert analysis.pitched and analysis.midi == 57 and analysis.tune == pytest.approx(0.2, abs=0.02)
    rendered = renderer.render(analysis_preset(analysis), analysis.midi)
    heard = find_main_note(rendered)
    assert abs(1200 * math.log2(heard.frequency_hz / F0)) < 5  # cents, tune included


def test_vital_plays_the_wavetable_that_was_written(renderer, tone):
    """At each keyframe's time the rendered harmonics are the analysed ones (measured: 0.4 dB mean error at
    the worst keyframe), and they differ from the first keyframe's where the sound has changed."""
    _, analysis = tone
    rendered = renderer.render(analysis_preset(analysis), analysis.midi)
    onset = find_main_note(rendered).onset_sample
    heard, _ = harmonics_at(rendered, analysis.f0_hz, onset + np.round(analysis.times * SR).astype(int))
    heard, written = _unit(heard), analysis.amplitudes
    for k in range(len(analysis.times)):
        audible = written[k] > written[k].max() * 0.01  # within 40 dB of the strongest harmonic
        error_db = np.abs(20 * np.log10(heard[k, audible] / written[k, audible]))
        assert error_db.mean() < 1.0, f"keyframe {k}"
    audible = written[-1] > written[-1].max() * 0.01
    assert np.abs(20 * np.log10(heard[-1, audible] / written[0, audible])).mean() > 6.0


def test_frames_are_band_limited():
    """A naive (aliased) sawtooth at 2 kHz still gives frames with nothing above its 11th harmonic."""
    t = np.arange(2 * SR) / SR
    saw = (2 * ((2000.0 * t) % 1.0) - 1) * np.minimum(t / 0.01, 1) * (t < 1.0)
    analysis = analyse_note(saw.astype(np.float32), midi=95, note_seconds=1.0)
    assert analysis.n_harmonics == 11
    frames, _ = wavetable_frames(analysis)
    power = np.abs(np.fft.rfft(frames.astype(np.float64), axis=1)) ** 2
    assert power[:, 12:].sum() < 1e-9 * power.sum()
    assert power[:, 11].min() > 1e-4 * power[:, 1].max()  # the 11th harmonic is there


def test_unpitched_input_falls_back_to_filtered_noise(renderer):
    noise = _noise_burst(2000.0)
    analysis = analyse_note(noise)
    assert not analysis.pitched
    base = wavetable_base_preset(analysis)
    assert base["settings"]["sample_on"] == 1.0 and base["settings"]["sample_destination"] == 0.0
    values = controls_from_vector(*wavetable_vector(analysis))
    assert values["osc_1_on"] == 0 and values["filter_1_on"] == 1
    rendered = renderer.render(analysis_preset(analysis), analysis.midi)
    assert not find_main_note(rendered).pitched
    assert abs(noise_cutoff(rendered) - noise_cutoff(noise)) <= 3  # semitones


def test_a_tier1_vector_applied_on_the_base_keeps_working(tone):
    """Setting a Tier-1 vector's controls by name on the loaded base (as the search does) sounds like the
    written preset; turning oscillator 2 on as a saw changes the sound."""
    _, analysis = tone
    spec = tier1_spec()
    base = wavetable_base_preset(analysis)
    cont, cat = wavetable_vector(analysis)
    synth = vita.Synth()
    assert synth.load_json(json.dumps(base))
    controls = synth.get_controls()

    def render(c: np.ndarray, k: np.ndarray) -> np.ndarray:
        for name, value in controls_from_vector(c, k).items():
            controls[name].set(value)
        audio = synth.render(analysis.midi, 0.8, 1.0, 2.0).mean(axis=0)
        return harmonics_at(audio, analysis.f0_hz, [int(1.5 * SR / 2)])[0][0, :20]

    reference = VitalRenderer().render(analysis_preset(analysis), analysis.midi)
    expected = harmonics_at(reference, analysis.f0_hz, [int(1.5 * SR / 2)])[0][0, :20]
    same = render(cont, cat)
    assert np.abs(20 * np.log10(_unit(same) / _unit(expected))).mean() < 1.0
    cont2, cat2 = cont.copy(), cat.copy()
    cat2[spec.categorical_names.index("osc_2_on")] = 1
    cont2[spec.continuous_names.index("osc_2_wave_frame")] = 170 / 256  # saw
    cont2[spec.continuous_names.index("osc_2_level")] = 1.0
    assert np.abs(20 * np.log10(_unit(render(cont2, cat2)) / _unit(expected))).mean() > 3.0


def test_the_sweep_needs_its_own_modulation_slot(tone):
    _, analysis = tone
    ranges = extra_control_ranges(analysis)
    sweep = sweep_controls(analysis)
    for name, (low, high) in ranges.items():
        assert low <= sweep[name] <= high
    spec = tier1_spec().to_dict()
    spec["modulations"] = [["env_2", "filter_1_cutoff"], ["lfo_1", "osc_2_tune"]]
    with pytest.raises(ValueError, match="modulation slot 2"):
        wavetable_base_preset(analysis, spec=VitalParamSpec.from_dict(spec))
    positions = [p for p, _ in wavetable_keyframes(wavetable_base_preset(analysis)["settings"]["wavetables"][0])]
    assert positions[0] == 0 and positions[-1] == 256 and len(positions) == len(analysis.times)


def test_single_cycle_envelope_follows_the_target(renderer):
    """A target with a slow attack, a decay to a lower sustain and a short release: single_cycle's render
    follows its level within 3 dB on average while the key is held; the init preset's envelope does not."""
    from zoo.vital.single_cycle import single_cycle_preset

    t = np.arange(2 * SR) / SR
    level = np.where(t < 0.25, t / 0.25, 0.35 + 0.65 * np.exp(-(t - 0.25) / 0.15))
    level *= np.where(t < 1.0, 1.0, np.exp(-(t - 1.0) / 0.05))  # released at 1 s
    target = (level * np.sin(2 * np.pi * 261.63 * t)).astype(np.float32)
    doc = single_cycle_preset(target, midi=60, note_seconds=1.0)
    assert doc["settings"]["env_1_release"] == init_preset()["settings"]["env_1_release"]

    def db(audio: np.ndarray) -> np.ndarray:
        rms = frame_rms(audio)[: int(0.95 * SR / 256)]  # while the key is held
        return 20 * np.log10(np.maximum(rms / rms.max(), 1e-6))

    assert np.abs(db(renderer.render(doc, 60)) - db(target)).mean() < 3.0
    assert np.abs(db(renderer.render(init_preset(), 60)) - db(target)).mean() > 3.0


def test_single_cycle_as_base_and_vector_sounds_like_its_document(renderer, tone):
    from zoo.vital.single_cycle import single_cycle_candidate

    audio, analysis = tone
    base, cont, cat = single_cycle_candidate(audio, midi=analysis.midi, note_seconds=1.0)
    synth = vita.Synth()
    assert synth.load_json(json.dumps(base))
    controls = synth.get_controls()
    for name, value in controls_from_vector(cont, cat).items():
        controls[name].set(value)
    centre = [int(0.5 * SR)]
    applied = harmonics_at(synth.render(analysis.midi, 0.8, 1.0, 2.0).mean(axis=0), analysis.f0_hz, centre)[0]
    direct = harmonics_at(renderer.render(base, analysis.midi), analysis.f0_hz, centre)[0]
    audible = direct[0] > direct[0].max() * 0.01
    assert np.abs(20 * np.log10(applied[0, audible] / direct[0, audible])).mean() < 0.5
