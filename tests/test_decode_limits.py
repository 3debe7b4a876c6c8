"""Decoding untrusted recordings: what is accepted, what is refused from the header before decoding, what is
counted while decoding (streams without a length), and what a refusal costs (time and memory)."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from benchmarks.bad_inputs import encode, tone, unknown_length_flac
from serving.pipeline import MAX_CHANNELS, AudioLimits, decode_recording, prepare_recording
from zoo.audio import SAMPLE_RATE, DecodeLimits, load_audio
from zoo.errors import AudioDecodeError, AudioTooLargeError, AudioTooLongError


@pytest.mark.parametrize(
    ("fmt", "subtype", "sr"),
    [("MP3", None, 44100), ("AIFF", "PCM_16", 44100), ("AU", "PCM_16", 22050), ("OGG", "OPUS", 48000)],
)
def test_mp3_aiff_au_and_opus_decode(fmt, subtype, sr):
    out = load_audio(encode(tone(2.0, sr), sr, fmt, subtype))
    assert out.dtype == np.float32 and abs(len(out) - 2 * SAMPLE_RATE) < 0.06 * SAMPLE_RATE  # MP3 pads a little
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / len(out) - 220) < 3


def test_other_formats_are_refused_by_name():
    with pytest.raises(AudioDecodeError, match="is a CAF file; the accepted formats are WAV, FLAC"):
        load_audio(encode(tone(1.0), SAMPLE_RATE, "CAF"))


def test_a_flac_of_unknown_length_decodes():
    audio = tone(3.0)
    out = load_audio(unknown_length_flac(audio, SAMPLE_RATE), limits=DecodeLimits(max_seconds=30))
    np.testing.assert_allclose(out, audio, atol=1e-4)


def test_a_flac_of_unknown_length_stops_at_the_limit():
    data = unknown_length_flac(tone(12.0, 8000), 8000)
    with pytest.raises(AudioTooLongError, match="longer than the 5 s limit .its header gives no length"):
        load_audio(data, limits=DecodeLimits(max_seconds=5))


def test_header_limits_refuse_channels_rate_length_and_size():
    limits = AudioLimits(max_seconds=4)
    with pytest.raises(AudioTooLargeError, match=f"has 9 channels; the limit is {MAX_CHANNELS}"):
        decode_recording(encode(tone(0.1, channels=9), SAMPLE_RATE), limits)
    with pytest.raises(AudioTooLargeError, match="sampled at 384000 Hz; the limit is 192000 Hz"):
        decode_recording(encode(tone(0.1, 384000), 384000), limits)
    with pytest.raises(AudioTooLongError, match="is 5.0 s long; the limit is 4 s"):
        decode_recording(encode(tone(5.0, 8000), 8000), limits)
    # 8 channels at 48 kHz for 3 s: under 4 s, but 1.15 M samples against 4 x 192,000 = 0.77 M.
    with pytest.raises(
        AudioTooLargeError, match=r"decodes to 1.15 M samples \(8 channels at 48000 Hz\); the limit is 0.77 M"
    ):
        decode_recording(encode(tone(3.0, 48000, channels=8), 48000, "FLAC"), limits)
    # Stereo at 96 kHz fills the budget exactly: accepted.
    assert decode_recording(encode(tone(4.0, 96000, channels=2), 96000, "FLAC"), limits).shape == (4 * 44100,)


@pytest.mark.parametrize("peak", [3e38, 1e20, 40.0])
def test_samples_over_full_scale_are_scaled_not_overflowed(peak):
    stereo = np.stack([tone(2.0, level=peak)] * 2, axis=1)  # the float32 sum of the two channels overflows
    out = load_audio(encode(stereo, SAMPLE_RATE, "WAV", "FLOAT"))
    assert np.isfinite(out).all() and abs(float(np.max(np.abs(out))) - 1.0) < 1e-3
    prepared = prepare_recording(encode(stereo, SAMPLE_RATE, "WAV", "FLOAT"))
    assert prepared.note.midi == 57 and np.isfinite(prepared.clip).all()  # 220 Hz is A3


@pytest.mark.parametrize("n", [1, 2, 300, 511, 513, 2047])
def test_recordings_shorter_than_a_frame_are_analysed(n):
    noise = (0.3 * np.random.default_rng(n).standard_normal(n)).astype(np.float32)
    try:
        prepared = prepare_recording(encode(noise, SAMPLE_RATE, "WAV", "FLOAT"))
    except AudioDecodeError as e:
        assert "silent" in str(e)  # a handful of samples has almost no energy over a 46 ms frame
    else:
        assert prepared.clip.shape == (88200,) and np.isfinite(prepared.clip).all()


_BOMB_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from serving.pipeline import AudioLimits, decode_recording
    from zoo.errors import AudioTooLargeError

    def status_mb(key):
        for line in open("/proc/self/status"):
            if line.startswith(key):
                return int(line.split()[1]) / 1024

    data = open(sys.argv[1], "rb").read()
    try:  # imports and libsndfile warmed up on a small refusal first
        decode_recording(open(sys.argv[2], "rb").read(), AudioLimits())
    except AudioTooLargeError:
        pass
    open("/proc/self/clear_refs", "w").write("5")  # resets the peak (VmHWM) to the current RSS
    before = status_mb("VmRSS")
    t0 = time.perf_counter()
    try:
        decode_recording(data, AudioLimits())
        print("accepted")
    except AudioTooLargeError:
        seconds = time.perf_counter() - t0
        print(f"{seconds:.4f} {status_mb('VmHWM') - before:.1f}")
    """
)


@pytest.mark.parametrize("bomb", ["255 channels at 192 kHz", "8 channels at 192 kHz, no length"])
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="measures the peak RSS through /proc")
def test_decode_bombs_are_refused_cheaply(bomb, tmp_path):
    """A refusal costs under 100 ms and 50 MB, measured in a fresh process (its peak RSS over the refusal)."""
    if bomb.startswith("255"):
        data = encode(np.zeros((1920, 255), np.float32), 192000, "OGG", "VORBIS")
    else:  # 10 s of silence, 15.4 M samples if decoded in full; counted and stopped at the 5.76 M-sample budget
        data = unknown_length_flac(np.zeros((192000 * 10, 8), np.int16), 192000)
    path, warm = tmp_path / "bomb", tmp_path / "warm"
    path.write_bytes(data)
    warm.write_bytes(encode(tone(0.1, channels=9), SAMPLE_RATE))
    out = subprocess.run([sys.executable, "-c", _BOMB_SCRIPT, str(path), str(warm)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    seconds, extra_mb = map(float, out.stdout.split())
    assert seconds < 0.1 and extra_mb < 50, (bomb, seconds, extra_mb, len(data))
