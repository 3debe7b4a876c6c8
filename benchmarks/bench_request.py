"""A request's audio work before the model: decoding and resampling, then finding the note and cutting the clip."""

from serving.pipeline import AudioLimits, decode_recording, prepare_recording
from zoo.audio import SAMPLE_RATE


def test_decode_and_resample(benchmark, recording):
    """48 kHz stereo 16-bit WAV bytes -> mono float32 at 44.1 kHz (libsndfile, then libsoxr)."""
    audio = benchmark(decode_recording, recording.data, AudioLimits())
    assert abs(len(audio) / SAMPLE_RATE - 2.5) < 0.01


def test_prepare_recording(benchmark, recording):
    """Decode, resample, find the main note (onsets, YIN pitch) and cut its normalised 2 s clip."""
    prepared = benchmark(prepare_recording, recording.data)
    assert prepared.note.midi == 57 and prepared.clip.shape == (88200,)
