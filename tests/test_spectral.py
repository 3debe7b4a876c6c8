import numpy as np
import pytest

from zoo.errors import AudioDecodeError
from zoo.spectral import multiscale_spectral_distance

SR = 44100


def _tone(freq, seconds=1.0):
    t = np.arange(int(SR * seconds)) / SR
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_identical_is_zero_and_gain_does_not_matter():
    x = _tone(440)
    assert multiscale_spectral_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    assert multiscale_spectral_distance(x, 0.1 * x) < 0.02  # float32 rounding in near-empty bins only


def test_further_pitch_is_further_away():
    near = multiscale_spectral_distance(_tone(440), _tone(445))
    far = multiscale_spectral_distance(_tone(440), _tone(1200))
    assert 0 < near < far


def test_stereo_is_mixed_to_mono():
    x = _tone(440)
    assert multiscale_spectral_distance(np.stack([x, x]), x) == pytest.approx(0.0, abs=1e-6)


def test_silence_is_rejected():
    with pytest.raises(AudioDecodeError, match="silent"):
        multiscale_spectral_distance(np.zeros(SR, dtype=np.float32), _tone(440))


def test_mfcc_matches_librosa_and_orders_like_a_distance():
    import librosa
    import torch

    from zoo.spectral import mfcc, mfcc_distance

    rng = np.random.default_rng(0)
    x = (_tone(330) + 0.05 * rng.standard_normal(SR)).astype(np.float32)
    ref = librosa.feature.mfcc(y=x.astype(np.float64), sr=SR, n_mfcc=20)
    np.testing.assert_allclose(mfcc(torch.from_numpy(x)).numpy(), ref, atol=1e-3 * np.abs(ref).max())
    assert mfcc_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    assert 0 < mfcc_distance(_tone(440), _tone(450)) < mfcc_distance(_tone(440), _tone(2000))


def test_a_precomputed_reference_gives_the_same_distance():
    from zoo.spectral import SpectralReference

    a, b = _tone(440), _tone(660)
    reference = SpectralReference(a)
    assert reference.distance(b) == pytest.approx(multiscale_spectral_distance(a, b), abs=1e-5)
    assert reference.distance(b[: SR // 2]) == pytest.approx(multiscale_spectral_distance(a, b[: SR // 2]), rel=1e-4)
    with pytest.raises(AudioDecodeError):
        reference.distance(np.zeros(SR, dtype=np.float32))
