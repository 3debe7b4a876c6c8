import numpy as np
import pytest

from zoo.vital.preset import base_preset, init_preset
from zoo.vital.wavetable import (
    BASIC_SHAPES,
    decode_wave,
    encode_wave,
    harmonic_wave,
    wavetable_from_frames,
    wavetable_keyframes,
)


def test_wave_data_round_trips_as_float32():
    wave = np.random.default_rng(0).uniform(-1, 1, 2048).astype(np.float32)
    assert np.array_equal(decode_wave(encode_wave(wave)), wave)


def test_harmonic_wave_holds_exactly_the_given_harmonics():
    amplitudes = np.array([1.0, 0.0, 0.5, 0.25])
    wave = harmonic_wave(amplitudes, phases=np.array([0.0, 0.0, np.pi / 2, 1.0]))
    spectrum = np.fft.rfft(wave.astype(np.float64)) / (len(wave) / 2)
    assert np.allclose(np.abs(spectrum[1:5]), amplitudes, atol=1e-6)
    assert np.angle(spectrum[3]) == pytest.approx(np.pi / 2, abs=1e-5)
    assert np.abs(spectrum[0]) < 1e-6 and np.abs(spectrum[5:]).max() < 1e-6
    with pytest.raises(ValueError, match="harmonic amplitudes"):
        harmonic_wave(np.ones(1024))


def test_wavetable_from_frames_writes_keyframes_vital_reads_back():
    template = init_preset()["settings"]["wavetables"][0]
    frames = [harmonic_wave(np.array([1.0])), harmonic_wave(np.array([0.0, 1.0]))]
    table = wavetable_from_frames(template, frames, [0, 256], "Two", interpolation=0)
    assert table["name"] == "Two" and table["groups"][0]["components"][0]["interpolation"] == 0
    read = wavetable_keyframes(table)
    assert [p for p, _ in read] == [0, 256]
    assert np.array_equal(read[1][1], frames[1])
    with pytest.raises(ValueError, match="increase"):
        wavetable_from_frames(template, frames, [256, 0], "Backwards")
    with pytest.raises(ValueError, match="one position per frame"):
        wavetable_from_frames(template, frames, [0], "Short")


def test_tier1_tables_still_morph_between_the_basic_shapes():
    for table in base_preset()["settings"]["wavetables"]:
        assert [p for p, _ in wavetable_keyframes(table)] == [pos for _, pos in BASIC_SHAPES]
