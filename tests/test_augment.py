"""Waveform augmentations of training clips."""

import numpy as np
import pytest

from training.data.augment import AUGMENTATIONS, augment_waveform, parse_augmentations
from zoo.audio import SAMPLE_RATE, rms_db


def _tone(freq=440.0, onset=0.1):
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    x = (0.3 * np.sin(2 * np.pi * freq * t) * (t >= onset)).astype(np.float32)
    return x


def _peak_hz(x):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spectrum) * SAMPLE_RATE / len(x)


class _Always:
    """A generator whose first draw of each augmentation always applies it."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)

    def random(self):
        return 0.0

    def __getattr__(self, name):
        return getattr(self.rng, name)


def test_each_augmentation_does_what_a_recording_does():
    x = _tone()
    detuned = augment_waveform(x, ["detune"], _Always(3))  # draws -16.6 cents
    cents = 1200 * np.log2(_peak_hz(detuned) / _peak_hz(x))
    assert 10 < abs(cents) <= 20.5
    shifted = augment_waveform(x, ["onset"], _Always(2))
    onset = np.argmax(np.abs(shifted) > 1e-3) / SAMPLE_RATE
    assert onset != pytest.approx(0.1, abs=1e-4) and abs(onset - 0.1) <= 0.0201
    noisy = augment_waveform(x, ["noise"], _Always(1))
    silence = noisy[: int(0.09 * SAMPLE_RATE)]
    assert -85 < rms_db(silence) < -45  # noise 30-55 dB under the tone, where there was none
    wet = augment_waveform(x, ["reverb"], _Always(4))
    assert rms_db(wet[int(1.995 * SAMPLE_RATE) :]) > rms_db(x[int(1.995 * SAMPLE_RATE) :]) - 40


def test_augmented_clips_keep_length_and_loudness():
    rng = np.random.default_rng(0)
    for _ in range(5):
        out = augment_waveform(_tone(), AUGMENTATIONS, rng)
        assert out.shape == (2 * SAMPLE_RATE,) and out.dtype == np.float32
        assert rms_db(out) == pytest.approx(-20.0, abs=0.5)


def test_augmentation_names_are_checked():
    assert parse_augmentations("all") == AUGMENTATIONS
    assert parse_augmentations("noise,detune") == ("detune", "noise")
    assert parse_augmentations("none") == ()
    with pytest.raises(ValueError, match="--augment"):
        parse_augmentations("gain")
