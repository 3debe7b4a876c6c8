"""Note-onset CNN: the frame-wise classifier of ``chorus_cnn`` trained to mark where notes start.

The same residual stack of dilated 1D convolutions (:class:`zoo.models.chorus_cnn.ChorusCNN`), here over the
log-mel of a phrase at ``zoo.notes``'s frame rate (80 bands, a frame every 512 samples, 11.6 ms), without
centring each band on its mean (a phrase's loudness is normalised before the features are taken, and a long
silence would move the mean). Dilations 1..16 give a receptive field of 125 frames (1.45 s): a frame sees
enough of the notes around it to tell a new note from a preset's own gate, echo or tremolo.

Input: log-mel (B, 80, T), any T. Output: logits (B, 2, T); class 1 is "a note starts at this frame".
``zoo.notes`` reads the shipped weights (``zoo/weights/note-onset-cnn``) and picks the peaks of the onset
probability. Trained by ``zoo train note-onset-cnn`` on ``training/data/note_onsets.py``'s phrases.
"""

from __future__ import annotations

from zoo.models.chorus_cnn import ChorusCNN
from zoo.registry import TensorSpec, register_model

ONSET_DEFAULTS = {"n_features": 80, "channels": 64, "dilations": (1, 2, 4, 8, 16), "dropout": 0.1, "center": False}


@register_model(
    "note-onset-cnn",
    family="note_onsets",
    task="frame-wise note onsets of a phrase",
    inputs=(
        TensorSpec("features", (80, 1034), description="log-mel of a 12 s phrase: 80 bands x 1034 frames of 11.6 ms"),
    ),
    research_note="onset detection with a dilated CNN over log-mel frames",
)
def note_onset_cnn(**kwargs) -> ChorusCNN:
    """64 channels, 5 residual blocks, kernel 3, dilations 1..16 (receptive field 125 frames, 1.45 s)."""
    return ChorusCNN(**(ONSET_DEFAULTS | kwargs))
