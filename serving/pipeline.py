"""From a recording (bytes or a file) to the model's input: decode, check, find the main note, window.

The server's ``decode_request`` and ``zoo predict`` both call :func:`prepare_recording`, so a file predicted
offline and the same file sent over HTTP give the same clip.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from zoo.audio import SAMPLE_RATE, load_audio
from zoo.errors import AudioDecodeError, AudioTooLongError
from zoo.notes import Note, cut_note_clip

DEFAULT_MAX_SECONDS = 30.0
DEFAULT_MAX_PAYLOAD_MB = 32.0


@dataclass(frozen=True)
class AudioLimits:
    """What a request may contain. ``max_seconds``: the longest recording accepted."""

    max_seconds: float = DEFAULT_MAX_SECONDS

    def __post_init__(self) -> None:
        if not self.max_seconds > 0:
            raise ValueError(f"`--max-seconds` must be positive, got {self.max_seconds}")


@dataclass
class PreparedClip:
    """A recording ready for the model: the 2 s clip of its main note, the note, and how long each step took."""

    clip: np.ndarray  # (88200,) float32 at its recorded level: the exported graph normalises the loudness
    note: Note
    seconds: float  # length of the whole recording
    timings_ms: dict[str, float] = field(default_factory=dict)


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
    """Bytes of a WAV, FLAC or OGG file -> mono float32 at 44.1 kHz, refusing truncated, too long, empty,
    corrupt or non-finite audio with an :class:`AudioDecodeError` that says which."""
    import soundfile as sf

    if not data:
        raise AudioDecodeError(f"{label} is empty (0 bytes)")
    truncated = wav_truncation(data)
    if truncated:
        raise AudioDecodeError(truncated)
    try:
        info = sf.info(io.BytesIO(data))
    except sf.LibsndfileError as e:
        reason = e.error_string.strip().rstrip(".") or "unreadable"
        raise AudioDecodeError(f"{label} could not be decoded as WAV, FLAC or OGG ({reason})") from None
    except (RuntimeError, TypeError, ValueError):
        info = None  # load_audio says what is wrong with it
    if info is not None and info.samplerate > 0 and info.frames / info.samplerate > limits.max_seconds:
        raise AudioTooLongError(
            f"{label} is {info.frames / info.samplerate:.1f} s long; the limit is {limits.max_seconds:g} s "
            "(send the part with the note, or raise `--max-seconds`)"
        )
    audio = load_audio(bytes(data))
    if len(audio) / SAMPLE_RATE > limits.max_seconds:  # formats whose header does not give the length
        seconds = len(audio) / SAMPLE_RATE
        raise AudioTooLongError(f"{label} is {seconds:.1f} s long; the limit is {limits.max_seconds:g} s")
    return audio


def prepare_recording(source: bytes | str | Path, limits: AudioLimits = AudioLimits()) -> PreparedClip:
    """Decode a recording (bytes or a path) and cut the clip of its main note (``zoo.notes.cut_note_clip``)."""
    t0 = time.perf_counter()
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise AudioDecodeError(f"no such audio file: {path}")
        audio = decode_recording(path.read_bytes(), limits, label=str(path))
    else:
        audio = decode_recording(source, limits)
    t1 = time.perf_counter()
    clip, note = cut_note_clip(audio)
    t2 = time.perf_counter()
    timings = {"decode": (t1 - t0) * 1e3, "note": (t2 - t1) * 1e3}
    return PreparedClip(clip=clip, note=note, seconds=len(audio) / SAMPLE_RATE, timings_ms=timings)
