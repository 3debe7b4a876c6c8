import numpy as np
import pytest

from zoo.vital.harmonics import harmonic_limit, harmonic_to_noise_db, harmonics_at, refine_f0

SR = 44100
T = np.arange(SR) / SR


def test_harmonics_read_amplitude_and_phase_at_the_frame_centre():
    f0, centre = 196.0, 20000
    amplitudes = np.array([0.5, 0.0, 0.25, 0.1, 0.01])
    phases = np.array([0.3, 0.0, -1.0, 2.0, 0.5])
    t = T - centre / SR
    k = np.arange(1, 6)[:, None]
    x = (amplitudes[:, None] * np.cos(2 * np.pi * k * f0 * t[None] + phases[:, None])).sum(axis=0)
    got_a, got_p = harmonics_at(x, f0, [centre], n_harmonics=6)
    assert np.allclose(got_a[0, :5], amplitudes, atol=2e-3)
    assert got_a[0, 5] < 1e-4  # nothing at the 6th
    strong = amplitudes > 0.05
    assert np.allclose(np.angle(np.exp(1j * (got_p[0, :5][strong] - phases[strong]))), 0.0, atol=0.02)


def test_harmonic_limit_is_nyquist_or_the_cycle():
    assert harmonic_limit(2000.0) == 11
    assert harmonic_limit(20.0) == 1023


def test_refine_f0_beats_a_few_cents_of_error():
    f0 = 1864.66  # A#6
    x = sum(np.sin(2 * np.pi * k * f0 * T) / k for k in range(1, 11))
    guess = f0 * 2 ** (8 / 1200)  # 8 cents sharp
    refined = refine_f0(x, guess, np.array([10000, 20000, 30000]))
    assert abs(1200 * np.log2(refined / f0)) < 0.5


@pytest.mark.parametrize(("kind", "low", "high"), [("noise", -np.inf, 6.0), ("saw", 30.0, np.inf)])
def test_harmonic_to_noise_tells_noise_from_a_tone(kind, low, high):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(SR) if kind == "noise" else sum(np.sin(2 * np.pi * k * 220 * T) / k for k in range(1, 60))
    assert low < harmonic_to_noise_db(x, 220.0, np.array([10000, 20000, 30000])) < high
