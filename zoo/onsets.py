"""Where notes start, by the note-onset network: its frame-wise onset probability and the peaks picked from it.

``note-onset-cnn`` (``zoo/models/note_onsets.py``) ships as an ONNX bundle in ``zoo/weights/note-onset-cnn``
(``zoo export`` of its checkpoint: the log-mel of 12 s in, the onset logits of each frame out, batch axis
dynamic). :func:`onset_probability` computes the log-mel of a loudness-normalised recording of any length
with ``FRONT_END`` (frame ``t`` centred on sample ``t * 512``, ``zoo.notes``'s frames), runs the graph on
windows of its length that overlap by ``2 * MARGIN`` frames (more than the network's receptive field, so
every frame is computed as it would be on the whole recording) in one batch, and returns the probability of
"a note starts here" per frame. :func:`pick_onsets` keeps its peaks above ``THRESHOLD`` at least
``MIN_GAP_S`` apart.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from zoo.audio import SAMPLE_RATE, FrontEndConfig, normalize_loudness
from zoo.errors import ArtifactError

MODEL = "note-onset-cnn"
HOP = 512  # zoo.notes' frames too
FRONT_END = FrontEndConfig(n_samples=int(12.0 * SAMPLE_RATE), n_fft=2048, hop_length=HOP, n_mels=80)
MARGIN = 64  # frames each side of a window that only give context (the receptive field is 125 frames)
THRESHOLD = 0.9  # onset probability a peak must exceed (chosen on the held-out calibration presets)
MIN_GAP_S = 0.05  # two onsets closer than this are one (the stronger)
PEAK_RADIUS = 2  # a peak is the largest probability within this many frames each side


@functools.cache
def _front_end() -> Any:
    from zoo.audio import LogMelFrontEnd

    return LogMelFrontEnd(FRONT_END).eval()


@functools.cache
def _session() -> tuple[Any, str, int]:
    """(ONNX Runtime session, input name, window length in frames) of the shipped bundle, loaded once."""
    from zoo.artifact import load_artifact
    from zoo.runtime import onnx_session
    from zoo.weights import shipped_artifact

    folder = shipped_artifact(MODEL)
    if folder is None:
        raise ArtifactError(f"the package ships no {MODEL} bundle (zoo/weights/{MODEL}); reinstall it")
    artifact = load_artifact(folder)
    session = onnx_session(artifact.file_for("onnx"), threads=1)
    spec = session.get_inputs()[0]
    if len(spec.shape) != 3 or spec.shape[1] != FRONT_END.n_mels or not isinstance(spec.shape[2], int):
        raise ArtifactError(f"{folder} takes {spec.shape}, not (batch, {FRONT_END.n_mels}, frames): not {MODEL}")
    return session, spec.name, int(spec.shape[2])


def log_mel(audio: np.ndarray) -> np.ndarray:
    """(80, T) log-mel of a mono 44.1 kHz recording after loudness normalisation, T = len // 512 + 1."""
    with torch.no_grad():
        mel = _front_end()(torch.from_numpy(normalize_loudness(np.asarray(audio, dtype=np.float32)))[None])
    return mel[0, 0].numpy()


def _windows(n_frames: int, length: int) -> list[int]:
    """Start frames of windows of ``length`` covering ``n_frames``, each next one ``length - 2 * MARGIN`` on."""
    step = length - 2 * MARGIN
    starts = [0]
    while starts[-1] + length < n_frames:
        starts.append(starts[-1] + step)
    return starts


def framewise(features: np.ndarray, run: Any, length: int) -> np.ndarray:
    """Apply a frame-wise network that takes exactly ``length`` frames to (F, T) features of any T.

    ``run`` maps a batch (W, F, length) to one value per frame (W, length). Windows overlap by ``2 * MARGIN``
    and each frame's value comes from a window where it has ``MARGIN`` frames of context on both sides (or
    the recording's edge): with a receptive field under ``2 * MARGIN + 1`` frames this equals running the
    network on the whole recording. Past the end the features are 0 (silence)."""
    n = features.shape[1]
    starts = _windows(n, length)
    padded = np.zeros((features.shape[0], starts[-1] + length), dtype=np.float32)
    padded[:, :n] = features
    values = run(np.stack([padded[:, s : s + length] for s in starts]))  # (W, length)
    out = np.empty(padded.shape[1], dtype=np.float32)
    for i, s in enumerate(starts):
        lo = 0 if i == 0 else MARGIN
        out[s + lo : s + length] = values[i, lo:]
    return out[:n]


def onset_probability(audio: np.ndarray) -> np.ndarray:
    """(T,) probability that a note starts at each frame of a mono 44.1 kHz recording (see the module
    docstring). Raises :class:`ArtifactError` when the shipped bundle cannot be loaded."""
    session, name, length = _session()

    def run(batch: np.ndarray) -> np.ndarray:
        logits = session.run(None, {name: batch})[0]  # (W, 2, length)
        return 1.0 / (1.0 + np.exp(logits[:, 0] - logits[:, 1]))  # the softmax's onset class

    return framewise(log_mel(audio), run, length)


def pick_onsets(probability: np.ndarray, threshold: float = THRESHOLD, min_gap_s: float = MIN_GAP_S) -> list[int]:
    """Frames where the onset probability (T,) peaks above ``threshold``; of two peaks closer than
    ``min_gap_s`` only the higher stays."""
    p = np.asarray(probability, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"expected a (T,) onset probability, got shape {p.shape}")
    padded = np.pad(p, PEAK_RADIUS, constant_values=-np.inf)
    local_max = np.lib.stride_tricks.sliding_window_view(padded, 2 * PEAK_RADIUS + 1).max(axis=1)
    candidates = np.flatnonzero((p >= local_max) & (p > threshold))
    gap = max(1, round(min_gap_s * SAMPLE_RATE / HOP))
    kept: list[int] = []
    for t in sorted(candidates, key=lambda t: -p[t]):  # strongest first
        if all(abs(t - k) >= gap for k in kept):
            kept.append(int(t))
    return sorted(kept)
