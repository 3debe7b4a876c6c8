"""From a recording (bytes or a file) to the model's input: decode, check, find the main note, window.

The server's ``decode_request`` and ``zoo predict`` both call :func:`prepare_recording`, so a file predicted
offline and the same file sent over HTTP give the same clip.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.audio import SAMPLE_RATE, DecodeLimits, load_audio
from zoo.errors import AudioDecodeError
from zoo.notes import Note, Phrase, cut_phrase_clip

DEFAULT_MAX_SECONDS = 30.0
DEFAULT_MAX_PAYLOAD_MB = 32.0
MAX_CHANNELS = 8
MAX_SAMPLE_RATE = 192_000
# The decoded-size budget per second of the length limit: stereo at 96 kHz (30 s -> 5.76 M samples, 23 MB of
# float32 decoded block by block). More channels or a higher rate shorten the length accepted.
DECODED_SAMPLES_PER_SECOND = 2 * 96_000


@dataclass(frozen=True)
class AudioLimits:
    """What a recording may contain. ``max_seconds``: the longest accepted; at most ``MAX_CHANNELS`` channels,
    ``MAX_SAMPLE_RATE`` Hz, and ``max_seconds x DECODED_SAMPLES_PER_SECOND`` decoded samples (channels x rate x
    seconds). Every bound is checked on the file's header before decoding, and counted while decoding."""

    max_seconds: float = DEFAULT_MAX_SECONDS

    def __post_init__(self) -> None:
        if not self.max_seconds > 0:
            raise ValueError(f"`--max-seconds` must be positive, got {self.max_seconds}")

    @property
    def decode(self) -> DecodeLimits:
        """The same limits in the terms of ``zoo.audio.load_audio``."""
        return DecodeLimits(
            max_seconds=self.max_seconds,
            max_channels=MAX_CHANNELS,
            max_sample_rate=MAX_SAMPLE_RATE,
            max_samples=int(self.max_seconds * DECODED_SAMPLES_PER_SECOND),
        )


@dataclass
class PreparedClip:
    """A recording ready for the model: the 2 s clip of its main note, the note, and how long each step took."""

    clip: np.ndarray  # (88200,) float32 at its recorded level: the exported graph normalises the loudness
    note: Note
    seconds: float  # length of the whole recording
    timings_ms: dict[str, float] = field(default_factory=dict)
    phrase: Phrase | None = None  # every note of the recording (``note`` is its main note)
    audio: np.ndarray | None = None  # the whole recording, mono float32 at 44.1 kHz (a search's target)


def wav_truncation(data: bytes) -> str | None:
    """A message when ``data`` is a RIFF/WAVE file whose ``data`` chunk is shorter than its header says.

    libsndfile silently decodes what is there, so a cut-off upload would otherwise pass as shorter audio."""
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RIFX") or data[8:12] != b"WAVE":
        return None
    order = "little" if data[:4] == b"RIFF" else "big"
    pos = 12
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], order)
        if chunk == b"data":
            have = len(data) - pos - 8
            if size not in (0, 0xFFFFFFFF) and have < size:  # 0 / 0xFFFFFFFF: written by a streaming encoder
                return f"the WAV file is truncated: its header announces {size} bytes of samples, it holds {have}"
            return None
        pos += 8 + size + (size & 1)
    return "the WAV file is truncated: it ends before its sample data (no complete `data` chunk)"


def decode_recording(data: bytes, limits: AudioLimits = AudioLimits(), label: str = "the uploaded audio") -> np.ndarray:
    """Bytes of a recording (``zoo.audio.ACCEPTED_FORMATS_TEXT``) -> mono float32 at 44.1 kHz, refusing truncated,
    too large, empty, corrupt or non-finite audio with an :class:`AudioDecodeError` that says which. Oversized
    files are refused from their header, before decoding; streams without a length stop at the limit."""
    if not data:
        raise AudioDecodeError(f"{label} is empty (0 bytes)")
    truncated = wav_truncation(data)
    if truncated:
        raise AudioDecodeError(truncated)
    return load_audio(data, limits=limits.decode, label=label)


def prepare_recording(source: bytes | str | Path, limits: AudioLimits = AudioLimits()) -> PreparedClip:
    """Decode a recording (bytes or a path), find its notes and cut the clip of the main one at its recorded
    level (``zoo.notes.cut_phrase_clip``)."""
    t0 = time.perf_counter()
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise AudioDecodeError(f"no such audio file: {path}")
        audio = decode_recording(path.read_bytes(), limits, label=str(path))
    else:
        audio = decode_recording(source, limits)
    t1 = time.perf_counter()
    clip, phrase = cut_phrase_clip(audio)
    t2 = time.perf_counter()
    timings = {"decode": (t1 - t0) * 1e3, "note": (t2 - t1) * 1e3}
    seconds = len(audio) / SAMPLE_RATE
    return PreparedClip(clip=clip, note=phrase.main, seconds=seconds, timings_ms=timings, phrase=phrase, audio=audio)
