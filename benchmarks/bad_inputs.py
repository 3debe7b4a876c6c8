"""Bad, careless and hostile request bodies for ``POST /predict``, one per class, with the answer each must get.

Shared by the reliability tests (tests/test_reliability.py) and the soak benchmark (benchmarks/soak.py): every
class is a 4xx with a JSON ``detail`` that says what was wrong, answered quickly, never a 5xx or a hang.
Everything is generated here (numpy + soundfile), nothing is read from disk.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

SR = 44100


def encode(audio: np.ndarray, sr: int, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    """``audio`` ((n,) or (n, channels)) as the bytes of an audio file."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, audio, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def tone(seconds: float, sr: int = SR, channels: int = 1, level: float = 0.3, hz: float = 220.0) -> np.ndarray:
    """A decaying sine (float32, (n,) or (n, channels))."""
    t = np.arange(int(seconds * sr)) / sr
    x = (level * np.sin(2 * np.pi * hz * t) * np.exp(-t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def unknown_length_flac(audio: np.ndarray, sr: int) -> bytes:
    """A FLAC whose STREAMINFO gives no length (total samples 0), as a streaming encoder writes it."""
    data = bytearray(encode(audio, sr, "FLAC"))
    if data[:4] != b"fLaC":
        raise ValueError("not a FLAC stream")
    data[21] &= 0xF0  # total samples: the low 4 bits of byte 21 and bytes 22..25
    data[22:26] = b"\0\0\0\0"
    return bytes(data)


def decode_bombs() -> dict[str, bytes]:
    """Small files that decode to far more than they weigh: refused from the header, or counted and stopped."""
    return {
        "255 channels at 192 kHz (OGG)": encode(np.zeros((1920, 255), np.float32), 192_000, "OGG", "VORBIS"),
        "8 channels at 192 kHz, 10 s, no length (FLAC)": unknown_length_flac(
            np.zeros((192_000 * 10, 8), np.int16), 192_000
        ),
    }


@dataclass
class BadRequest:
    """One bad request: ``requests.post(url, **kwargs)``, the statuses it may get and a phrase of its detail."""

    name: str
    kwargs: dict[str, Any]
    statuses: tuple[int, ...]
    detail: str = ""
    needs_key: bool = True  # send the API key with it (the server under test may require one)


def _upload(data: bytes, name: str = "x.wav") -> dict[str, Any]:
    return {"files": {"audio": (name, data)}}


def _json_body(text: str) -> dict[str, Any]:
    return {"data": text.encode(), "headers": {"Content-Type": "application/json"}}


def bad_requests(max_seconds: float, max_payload_mb: float) -> list[BadRequest]:
    """Every class of bad request, for a server started with ``--max-seconds`` and ``--max-payload-mb``."""
    good = encode(tone(2.0), SR)
    nan, inf = tone(2.0), tone(2.0)
    nan[100:110], inf[200] = np.nan, np.inf
    long_rate = 8000
    too_long = encode(np.zeros(int((max_seconds + 2) * long_rate), np.float32) + 0.1, long_rate)
    b64 = base64.b64encode(good).decode()
    deep = '{"audio_base64": "' + b64 + '", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    bombs = decode_bombs()
    requests = [
        BadRequest("empty body", {}, (400,), "empty"),
        BadRequest("text body", {"data": b"hello", "headers": {"Content-Type": "text/plain"}}, (415,), "content type"),
        BadRequest("not audio", _upload(b"this is not a sound file " * 40), (400,), "could not be decoded"),
        BadRequest("truncated WAV", _upload(good[: len(good) // 2]), (400,), "truncated"),
        BadRequest("truncated FLAC", _upload(encode(tone(2.0), SR, "FLAC")[:3000]), (400,), ""),
        BadRequest("NaN samples", _upload(encode(nan, SR, "WAV", "FLOAT")), (400,), "NaN"),
        BadRequest("infinite samples", _upload(encode(inf, SR, "WAV", "FLOAT")), (400,), "infinite"),
        BadRequest("silence", _upload(encode(np.zeros(2 * SR, np.float32), SR)), (400,), "silent"),
        BadRequest("too long", _upload(too_long), (413,), "long"),
        BadRequest("empty upload", _upload(b""), (400,), "empty"),
        BadRequest("CAF container", _upload(encode(tone(1.0), SR, "CAF")), (400,), "accepted formats"),
        BadRequest("9 channels", _upload(encode(tone(0.5, channels=9), SR)), (413,), "channels"),
        BadRequest("384 kHz", _upload(encode(tone(0.2, 384_000), 384_000)), (413,), "Hz"),
        *(BadRequest(f"decode bomb: {k}", _upload(v), (413,), "limit") for k, v in bombs.items()),
        BadRequest(
            "over the payload limit",
            {"data": b"\0" * (int(max_payload_mb * 2**20) + 1), "headers": {"Content-Type": "audio/wav"}},
            (413,),
            "MB limit",
        ),
        BadRequest("no audio field", {"files": {"sound": ("a.wav", good)}}, (400,), "`audio` field"),
        BadRequest(
            "malformed multipart",
            {"data": b"--xyz\r\nContent-Disposition: form-data", "headers": {"Content-Type": "multipart/form-data"}},
            (400,),
            "",
        ),
        BadRequest("malformed JSON", _json_body("{not json"), (400,), "not valid JSON"),
        BadRequest("JSON without audio_base64", {"json": {"audio": "x"}}, (400,), "audio_base64"),
        BadRequest("bad base64", {"json": {"audio_base64": "%%%"}}, (400,), "base64"),
        BadRequest("JSON nested 100,000 deep", _json_body(deep), (400,), "too many"),
        BadRequest("JSON of 200,000 objects", _json_body("[" + ",".join(["{}"] * 200_000) + "]"), (400,), "too many"),
        BadRequest("JSON nested 9 deep", {"json": {"audio_base64": b64, "x": [[[[[[[[[]]]]]]]]]}}, (400,), "deep"),
        BadRequest(
            "JSON integer of 10,000 digits",
            _json_body('{"audio_base64": "", "n": ' + "9" * 10_000 + "}"),
            (400,),
            "not valid JSON",
        ),  # fmt: skip
        BadRequest(
            "JSON not UTF-8",
            {"data": b'{"audio_base64": "\xff\xfe"}', "headers": {"Content-Type": "application/json"}},
            (400,),
            "JSON",
        ),
        BadRequest("missing API key", {"files": {"audio": ("a.wav", good)}}, (401,), "API key", needs_key=False),
    ]
    return requests


def odd_but_valid() -> dict[str, bytes]:
    """Recordings that are strange but usable: each must get a 200 (a preset), never an internal error."""
    rng = np.random.default_rng(0)
    return {
        "300 samples": encode((0.3 * rng.standard_normal(300)).astype(np.float32), SR, "WAV", "FLOAT"),
        "samples near 3e38 (float WAV)": encode(np.stack([tone(1.0, level=3e38)] * 2, axis=1), SR, "WAV", "FLOAT"),
        "FLAC without a length": unknown_length_flac(tone(2.0), SR),
        "MP3": encode(tone(2.0), SR, "MP3"),
        "AIFF": encode(tone(2.0), SR, "AIFF"),
        "AU": encode(tone(2.0), SR, "AU"),
    }
