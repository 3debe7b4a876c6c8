"""The spectrogram figure of `zoo evaluate` and `zoo data inspect`: dB colours a person can read, Hz on the axis."""

import matplotlib.image
import numpy as np
import pytest

from training.spectrogram_plot import log_mel_to_db, mel_band_centres, plot_log_mels
from zoo.audio import FrontEndConfig


def test_log1p_mel_power_becomes_decibels():
    db = np.array([-40.0, 0.0, 30.0])
    assert log_mel_to_db(np.log1p(10 ** (db / 10))) == pytest.approx(db)
    assert log_mel_to_db(np.zeros(1))[0] == -100.0  # silence sits on the floor, not at -inf


def test_band_centres_rise_from_low_to_high_frequencies():
    centres = mel_band_centres(FrontEndConfig())
    assert centres.shape == (128,) and np.all(np.diff(centres) > 0)
    assert centres[0] < 100 and 15_000 < centres[-1] < 22_050
    assert 900 < centres[np.argmin(np.abs(centres - 1000))] < 1100


def _dark_share(png) -> float:
    rgb = matplotlib.image.imread(png)[..., :3]
    luminance = rgb @ np.array([0.2126, 0.7152, 0.0722])
    return float(np.mean(luminance < 0.08))


def test_quiet_partials_are_visible_not_black(tmp_path):
    """One loud partial over a spectrum 40 dB lower: on a linear scale of log1p values (the old figure) the quiet
    part is almost black; on the dB scale it is mid-colour."""
    cfg = FrontEndConfig()
    power = np.full((cfg.n_mels, cfg.n_frames), 1.0)  # 0 dB everywhere ...
    power[40:43] = 1e4  # ... and a partial at +40 dB
    png = plot_log_mels([np.log1p(power)], ["test"], tmp_path / "s.png", cfg, columns=1)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _dark_share(png) < 0.05

    import matplotlib.pyplot as plt  # the old rendering, for contrast

    fig, ax = plt.subplots(figsize=(4.6, 2.8))
    ax.imshow(np.log1p(power), origin="lower", aspect="auto", cmap="magma")
    fig.savefig(tmp_path / "old.png", dpi=100)
    plt.close(fig)
    assert _dark_share(tmp_path / "old.png") > 0.3


def test_the_band_count_must_match_the_front_end(tmp_path):
    with pytest.raises(ValueError, match="64 mel bands"):
        plot_log_mels([np.zeros((64, 10))], ["x"], tmp_path / "x.png", FrontEndConfig())
