"""The default recording of ``zoo bench --http``: a note rendered with Vital, nothing downloaded.

The base preset of the Tier-1 spec plays A3 (MIDI 57) held 1 s; 0.25 s of silence before and after; the file
is 48 kHz stereo 16-bit WAV, so every request pays for decoding, down-mixing and resampling to 44.1 kHz as a
typical upload does.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from benchmarks.http_load import CONTENT_TYPES, Recording

DEFAULT_NOTE = 57
DEFAULT_RATE = 48_000
PAD_SECONDS = 0.25


def synth_recording(note: int = DEFAULT_NOTE, sample_rate: int = DEFAULT_RATE) -> Recording:
    """Render the default recording (about 0.1 s of work with vita)."""
    import soundfile as sf
    import soxr

    from zoo.audio import SAMPLE_RATE
    from zoo.vital.preset import base_preset
    from zoo.vital.render import VitalRenderer

    mono = VitalRenderer().render(base_preset(), note)  # (88200,) at 44.1 kHz
    pad = np.zeros(int(PAD_SECONDS * SAMPLE_RATE), dtype=np.float32)
    mono = np.concatenate([pad, mono, pad])
    mono = soxr.resample(mono, SAMPLE_RATE, sample_rate, quality="HQ").astype(np.float32)
    mono *= np.float32(0.5 / max(float(np.max(np.abs(mono))), 1e-9))
    stereo = np.stack([mono, 0.9 * mono], axis=1)
    buffer = io.BytesIO()
    sf.write(buffer, stereo, sample_rate, format="WAV", subtype="PCM_16")
    seconds = len(mono) / sample_rate
    return Recording(
        buffer.getvalue(),
        "audio/wav",
        f"Vital base preset, MIDI {note}, {seconds:.2f} s, {sample_rate} Hz stereo 16-bit WAV (synthesized)",
    )


def read_recording(path: Path) -> Recording:
    """A WAV, FLAC or OGG file as the request body."""
    return Recording(
        path.read_bytes(), CONTENT_TYPES[path.suffix.lower()], f"{path.name} ({path.stat().st_size} bytes)"
    )
