import io

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from zoo.audio import (
    AUDIBLE_MARGIN_DB,
    CLIP_SAMPLES,
    PEAK_LIMIT,
    SAMPLE_RATE,
    SILENCE_RMS_DB,
    STFT_FORMULATIONS,
    TARGET_RMS_DB,
    FrontEndConfig,
    LogMelFrontEnd,
    fit_length,
    frame_signal,
    hann_window,
    is_silent,
    load_audio,
    normalize_loudness,
    normalize_loudness_tensor,
    rms_db,
)
from zoo.errors import AudioDecodeError


def _tone(freq=440.0, seconds=2.0, sr=SAMPLE_RATE, channels=1):
    t = np.arange(int(seconds * sr)) / sr
    x = (0.3 * np.sin(2 * np.pi * freq * t) + 0.05 * np.sin(2 * np.pi * 3.1 * freq * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def _encode(audio, sr, fmt="WAV", subtype=None):
    buf = io.BytesIO()
    sf.write(buf, audio, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def test_front_end_shape():
    fe = LogMelFrontEnd()
    assert fe(torch.zeros(CLIP_SAMPLES)).shape == (1, 1, 128, 173)
    assert fe(torch.zeros(3, CLIP_SAMPLES)).shape == (3, 1, 128, 173)
    assert FrontEndConfig().output_shape == (1, 128, 173)


def test_front_end_matches_librosa_reference():
    """Independent reference: librosa's mel spectrogram (float64) with the same settings.
    Tolerance on log1p(mel): atol 2e-3 + rtol 1e-4 (float32 Conv1d DFT vs float64 FFT)."""
    rng = np.random.default_rng(0)
    audio = (_tone(220.0) + 0.01 * rng.standard_normal(CLIP_SAMPLES)).astype(np.float32)
    ref = librosa.feature.melspectrogram(
        y=audio.astype(np.float64),
        sr=SAMPLE_RATE,
        n_fft=2048,
        hop_length=512,
        n_mels=128,
        power=2.0,
        center=True,
        pad_mode="constant",
        htk=False,
        norm="slaney",
        window="hann",
    )
    ref = np.log1p(ref)
    for stft in STFT_FORMULATIONS:
        got = LogMelFrontEnd(stft=stft)(torch.from_numpy(audio))[0, 0].numpy()
        assert got.shape == ref.shape == (128, 173)
        np.testing.assert_allclose(got, ref, rtol=1e-4, atol=2e-3)


def test_exported_formulation_agrees_with_the_fft():
    """The exported graphs use the factored DFT, eager code the FFT: same features within float32 rounding."""
    rng = np.random.default_rng(1)
    x = torch.from_numpy((_tone(330.0) + 0.05 * rng.standard_normal(CLIP_SAMPLES)).astype(np.float32))
    x = torch.stack([x, 0.1 * x])
    fft, other = LogMelFrontEnd(stft="fft")(x), LogMelFrontEnd(stft="factored")(x)
    torch.testing.assert_close(other, fft, rtol=1e-4, atol=1e-3)


def test_factored_dft_follows_other_lengths_and_settings():
    """Any input length (the frame count follows it) and another n_fft / hop / power / n_mels."""
    x = 0.1 * torch.randn(2, CLIP_SAMPLES, generator=torch.Generator().manual_seed(2))
    for n in (4096, 44100, CLIP_SAMPLES + 300):
        fft, factored = LogMelFrontEnd(stft="fft")(x[:, :n]), LogMelFrontEnd(stft="factored")(x[:, :n])
        assert factored.shape == fft.shape
        torch.testing.assert_close(factored, fft, rtol=1e-4, atol=1e-4)
    cfg = FrontEndConfig(n_fft=1024, hop_length=256, n_mels=64, power=1.0)
    torch.testing.assert_close(LogMelFrontEnd(cfg, stft="factored")(x), LogMelFrontEnd(cfg)(x), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="multiple of hop_length"):
        LogMelFrontEnd(FrontEndConfig(hop_length=500), stft="factored")


def test_front_end_rejects_unknown_formulation():
    for stft in ("dft", "conv"):  # the Conv1d DFT of zoo-artifact/1 bundles is gone
        with pytest.raises(ValueError, match="stft must be one of 'fft', 'factored'"):
            LogMelFrontEnd(stft=stft)


def test_frame_signal_cuts_the_frames_of_torch_stft():
    """The one framing helper (the factored DFT and note finding use it) gives torch.stft's centred frames."""
    x = torch.randn(2, 5000, generator=torch.Generator().manual_seed(3))
    frames = frame_signal(x, 2048, 512)  # (B, T, 2048)
    assert frames.shape == (2, 5000 // 512 + 1, 2048)
    window = torch.from_numpy(hann_window(2048)).float()
    expected = torch.stft(x, 2048, 512, window=window, center=True, pad_mode="constant", return_complex=True)
    torch.testing.assert_close(torch.fft.rfft(frames * window).transpose(1, 2), expected, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(window, torch.hann_window(2048))
    with pytest.raises(ValueError, match="multiple of the hop"):
        frame_signal(x, 2048, 500)


def test_front_end_is_batch_independent():
    fe = LogMelFrontEnd()
    x = torch.randn(4, CLIP_SAMPLES) * 0.1
    torch.testing.assert_close(fe(x)[2], fe(x[2:3])[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fmt,subtype", [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", "PCM_24"), ("OGG", "VORBIS")])
def test_load_audio_formats(fmt, subtype):
    data = _encode(_tone(), SAMPLE_RATE, fmt, subtype)
    out = load_audio(data)
    assert out.dtype == np.float32 and out.ndim == 1
    assert abs(len(out) - CLIP_SAMPLES) <= 1
    assert np.corrcoef(out[: CLIP_SAMPLES - 1000], _tone()[: CLIP_SAMPLES - 1000])[0, 1] > 0.99


def test_load_audio_stereo_and_resample(tmp_path):
    path = tmp_path / "s.wav"
    sf.write(path, _tone(sr=22050, channels=2), 22050)
    out = load_audio(path)
    assert out.ndim == 1 and abs(len(out) - CLIP_SAMPLES) <= 2
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / len(out) - 440.0) < 2.0  # pitch survives resampling


@pytest.mark.parametrize(
    "payload,message",
    [
        (b"", "empty"),
        (b"this is not audio at all" * 10, "could not be decoded"),
        (_encode(_tone(), SAMPLE_RATE)[:30], "could not be decoded|no samples"),
    ],
)
def test_load_audio_rejects_bad_bytes(payload, message):
    with pytest.raises(AudioDecodeError, match=message):
        load_audio(payload)


def test_load_audio_rejects_non_finite():
    x = _tone()
    x[100] = np.nan
    with pytest.raises(AudioDecodeError, match="NaN or infinite"):
        load_audio(_encode(x, SAMPLE_RATE, "WAV", "FLOAT"))


def test_load_audio_missing_file(tmp_path):
    with pytest.raises(AudioDecodeError, match="no such audio file"):
        load_audio(tmp_path / "nope.wav")


def test_normalize_loudness_hits_target_and_limits_peak():
    quiet = _tone() * 0.01
    out = normalize_loudness(quiet)
    assert abs(rms_db(out) - TARGET_RMS_DB) < 0.1
    spiky = np.zeros(CLIP_SAMPLES, dtype=np.float32)
    spiky[::1000] = 1.0
    assert np.abs(normalize_loudness(spiky)).max() <= 0.99 + 1e-6


def test_normalize_loudness_rejects_silence():
    with pytest.raises(AudioDecodeError, match="silent"):
        normalize_loudness(np.zeros(CLIP_SAMPLES, dtype=np.float32))


def test_the_graph_and_the_numpy_path_normalise_alike():
    """normalize_loudness (numpy, the dataset and previews) and normalize_loudness_tensor (the exported graph)
    are one definition: equal results, a second pass changes nothing, the caller's array is left alone."""
    rng = np.random.default_rng(4)
    spiky = np.zeros(CLIP_SAMPLES, dtype=np.float32)
    spiky[::5000] = 3.0  # so sparse that -20 dBFS RMS would put the peaks over 0.99
    clips = [0.003 * _tone(), spiky, (0.2 * rng.standard_normal(CLIP_SAMPLES)).astype(np.float32)]
    batch = normalize_loudness_tensor(torch.from_numpy(np.stack(clips)))  # (3, N), each clip on its own
    for clip, row in zip(clips, batch, strict=True):
        kept = clip.copy()
        out = normalize_loudness(clip)
        np.testing.assert_array_equal(clip, kept)
        np.testing.assert_allclose(out, row.numpy(), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(normalize_loudness(out), out, rtol=1e-5, atol=1e-7)
    assert np.abs(batch[1].numpy()).max() == pytest.approx(PEAK_LIMIT, abs=1e-6)  # the spiky clip is held at the peak


def test_one_silence_threshold():
    """A clip at -65 dBFS is quiet but usable: it is normalised and served; a render that quiet is not kept as
    training data (it must clear the margin above silence); below -70 dBFS it is silent everywhere."""
    from training.data.render_job import check_render

    tone = _tone()
    quiet = tone * np.float32(10 ** ((-65 - rms_db(tone)) / 20))
    silent = tone * np.float32(10 ** ((-75 - rms_db(tone)) / 20))
    assert not is_silent(quiet) and is_silent(quiet, AUDIBLE_MARGIN_DB) and is_silent(silent)
    assert abs(rms_db(normalize_loudness(quiet)) - TARGET_RMS_DB) < 0.1
    assert check_render(quiet) == "silent" and check_render(tone) is None
    with pytest.raises(AudioDecodeError, match=f"below {SILENCE_RMS_DB:.0f} dBFS"):
        normalize_loudness(silent)


def test_fit_length():
    assert fit_length(np.ones(10), 4).shape == (4,)
    padded = fit_length(np.ones(3), 5)
    assert padded.tolist() == [1, 1, 1, 0, 0]
