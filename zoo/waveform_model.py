"""The served graph: a log-mel model behind the waveform-in front of ``zoo.audio``.

``zoo export`` traces :class:`WaveformModel` into TorchScript and ONNX, so an exported bundle takes the raw
44.1 kHz waveform and no runtime reproduces preprocessing; ``zoo bench`` times the same module eagerly.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.audio import FrontEndConfig, LogMelFrontEnd, normalize_loudness_tensor


class WaveformModel(nn.Module):
    """Raw waveform (B, n_samples) at 44.1 kHz -> the model's outputs, then the log-mel it saw.

    Loudness normalisation (:func:`zoo.audio.normalize_loudness_tensor`: -20 dBFS RMS, then down to a 0.99
    peak) and :class:`~zoo.audio.LogMelFrontEnd` run inside the graph, so a runtime feeds the recorded clip as
    it is. Exported graphs use the factored-DFT formulation of the front end (``stft="factored"``, the
    default): plain MatMuls that every ONNX Runtime provider runs, equal to the eager FFT one; ``stft="fft"``
    gives the eager variant (what ``zoo bench`` times as eager end to end). The last output, ``mel``
    (B, 1, 128, 173), lets a runtime check its features against training's."""

    def __init__(self, model: nn.Module, front_end: FrontEndConfig | None = None, stft: str = "factored") -> None:
        super().__init__()
        self.front_end = LogMelFrontEnd(front_end, stft=stft)
        self.model = model

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, ...]:
        mel = self.front_end(normalize_loudness_tensor(waveform))  # (B, 1, 128, 173)
        out = self.model(mel)
        outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        return (*outs, mel)
