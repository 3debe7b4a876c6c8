"""Chorus/verse CNN: a 1D convolutional sequence classifier labelling every frame of a song verse or chorus.

After the project's note on song-structure detection, with its fixes written in: unscaled residual
connections (``h + F(h)``, no 0.1 or 1/sqrt(2) factor), LayerNorm over the channels of each frame instead of
a BatchNorm applied to transposed tensors, a zero-initialised classifier bias (the model starts at 50/50 and
cannot begin collapsed onto one class), and input pre-normalisation (per-band mean and std of the training
features, held in buffers so an exported model takes raw log-mel).

With ``center=True`` (the default) each band is first centred on its mean over the input's frames: a chorus
is louder, brighter or busier *than the verse of the same song*, and centring removes what differs between
songs (key, presets, mix level) before the global standardisation. On held-out songs this raised frame
accuracy by about 10 points in our runs; it makes the prediction depend on the whole input, so give the
model whole songs (or long windows).

Input: log-mel features of a song, (B, n_features, T) (64 bands, a frame every 46 ms for the task's
songs; any T). Output: logits (B, 2, T), class 0 verse, class 1 chorus.

Layout: a 1x1 stem to ``channels``, then ``len(dilations)`` residual blocks
``h + conv2(gelu(ln2(conv1(gelu(ln1(h))))))`` with kernel ``kernel`` and dilation ``d`` (both convolutions of a
block), then a final LayerNorm and a 1x1 classifier. With the default kernel 3 and dilations 1..32 the
receptive field is 1 + 2 * 2 * (1 + 2 + 4 + 8 + 16 + 32) = 253 frames, about 11.7 s: a frame sees the
sections around it, not only its own sound. Convolutions pad with zeros ("same" length), so the output has
one prediction per input frame. Default parameters: 154,178.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zoo.registry import TensorSpec, register_model


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channels of every frame of a (B, C, T) tensor."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)  # (B, C, T) -> (B, T, C) -> (B, C, T)


class ResidualConvBlock(nn.Module):
    """``h + conv2(gelu(ln2(conv1(gelu(ln1(h))))))``: pre-norm dilated convolutions, unscaled skip."""

    def __init__(self, channels: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        pad = dilation * (kernel - 1) // 2
        self.norm1 = ChannelLayerNorm(channels)
        self.conv1 = nn.Conv1d(channels, channels, kernel, padding=pad, dilation=dilation)
        self.norm2 = ChannelLayerNorm(channels)
        self.conv2 = nn.Conv1d(channels, channels, kernel, padding=pad, dilation=dilation)
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        y = self.conv1(F.gelu(self.norm1(h)))
        y = self.conv2(self.dropout(F.gelu(self.norm2(y))))
        return h + y


class ChorusCNN(nn.Module):
    """Frame-wise verse/chorus classifier over (B, n_features, T) features (see the module docstring)."""

    def __init__(
        self,
        *,
        n_features: int = 64,
        channels: int = 64,
        kernel: int = 3,
        dilations: Sequence[int] = (1, 2, 4, 8, 16, 32),
        dropout: float = 0.3,
        n_classes: int = 2,
        center: bool = True,
    ) -> None:
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"kernel must be an odd positive integer (same-length output), got {kernel}")
        if n_features < 1 or channels < 1 or n_classes < 2:
            raise ValueError(f"need n_features >= 1, channels >= 1, n_classes >= 2; got {n_features}, {channels}, "
                             f"{n_classes}")  # fmt: skip
        if not dilations or any(d < 1 for d in dilations):
            raise ValueError(f"dilations must be positive integers, got {list(dilations)}")
        self.center = bool(center)
        self.register_buffer("input_mean", torch.zeros(n_features, 1))
        self.register_buffer("input_std", torch.ones(n_features, 1))
        self.stem = nn.Conv1d(n_features, channels, 1)
        self.blocks = nn.Sequential(*(ResidualConvBlock(channels, kernel, int(d), dropout) for d in dilations))
        self.norm = ChannelLayerNorm(channels)
        self.classifier = nn.Conv1d(channels, n_classes, 1)
        nn.init.zeros_(self.classifier.bias)
        self.receptive_field = 1 + 2 * (kernel - 1) * sum(int(d) for d in dilations)
        self.output_names = ["logits"]

    def set_input_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-band standardisation after centring: ``(x - mean) / std`` (std floored at 1e-3); (n_features,)."""
        self.input_mean.copy_(mean.reshape(-1, 1).to(self.input_mean))
        self.input_std.copy_(std.reshape(-1, 1).clamp_min(1e-3).to(self.input_std))

    @torch.no_grad()
    def fit_input_stats(self, x: torch.Tensor) -> None:
        """Set the standardisation from training features (N, n_features, T), centred as the model centres."""
        x = self._centred(x.to(self.input_mean))
        self.set_input_stats(x.mean(dim=(0, 2)), x.std(dim=(0, 2)))

    def _centred(self, x: torch.Tensor) -> torch.Tensor:
        return x - x.mean(dim=-1, keepdim=True) if self.center else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (self._centred(x) - self.input_mean) / self.input_std  # (B, F, T)
        h = self.stem(x)  # (B, F, T) -> (B, C, T)
        h = self.blocks(h)
        return self.classifier(F.gelu(self.norm(h)))  # (B, 2, T)


def _create_chorus_cnn(**kwargs) -> ChorusCNN:
    return ChorusCNN(**kwargs)


# One 24 s song of the task's data: 517 frames. The model takes any T; an exported graph (whose only dynamic
# axis is the batch) takes the T of this spec.
_SONG_FEATURES = (
    TensorSpec("features", (64, 517), description="log-mel of a 24 s song: 64 bands x 517 frames of 46 ms"),
)


@register_model(
    "chorus-cnn",
    family="chorus_cnn",
    task="frame-wise verse/chorus segmentation",
    inputs=_SONG_FEATURES,
    research_note="song structure: chorus/verse detection with a 1D CNN",
)
def chorus_cnn(**kwargs) -> ChorusCNN:
    """64 channels, 6 residual blocks, kernel 3, dilations 1..32 (receptive field 253 frames, about 11.7 s)."""
    return _create_chorus_cnn(**kwargs)
