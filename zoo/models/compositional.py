"""The compositional agent: split an input and a target encoding into rhythm, harmony and timbre components,
weigh the six components with a learned selector, and compose a new encoding from them.

Source: the project's note on a compositional agent for sound design. Inputs are encodings of shape
(B, encoding_dim, T), e.g. log-mel frames (B, 128, 173). The architecture, top to bottom:

1. Two component extractors (input and target, not weight-shared), each with a rhythm, a harmony and a timbre
   branch. Every branch is a *gradient highway*: main path conv(k3) -> GELU -> conv(k5) -> GELU, plus a
   1x1-conv projection of the branch input, summed, then GroupNorm. The branches differ in their temporal
   dilation (rhythm 4, timbre 2, harmony 1: long envelopes, medium texture, per-frame spectra); the names say
   what each branch is meant to carry, the training objective decides what it does carry.
2. The component selector: time-pooled components -> MLP -> softmax weights over the six components
   (in_rhythm, in_harmony, in_timbre, tgt_rhythm, tgt_harmony, tgt_timbre), (B, 6).
3. The composer: the components scaled by ``6 * weight`` (uniform weights scale by 1), concatenated on the
   channel axis, conv(k3) -> GELU -> GroupNorm to ``model_dim`` channels.
4. Cascade stages: residual refinement blocks conv(k3) -> GELU -> conv(k3), each added to the running state
   and normalised, then a 1x1 conv head back to ``encoding_dim``: the composed encoding.

``forward(x, y)`` returns ``(out, loss)``: ``out`` (B, encoding_dim, T) and ``loss`` (B,), the per-sample
*factorization loss*: each extractor's three components must together reconstruct its own source (a 1x1-conv
decoder per extractor, mean squared error on x and on y, summed). It keeps every component informative,
and, like the selector (which reads every component), it gives every branch gradient even when the selector
weighs a component at ~0. ``forward(x, y, return_weights=True)`` also returns the selector weights (B, 6).

Why a component the selector ignores still learns: its weight scales the composer's path to ~0, but the
selector's logits are a function of all six components, and the factorization loss reads all three of each
extractor; the 1x1 projection in every branch then carries that gradient to the branch's input and
parameters even where the main path's activations are saturated.
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.registry import TensorSpec, register_model

COMPONENTS = ("in_rhythm", "in_harmony", "in_timbre", "tgt_rhythm", "tgt_harmony", "tgt_timbre")
# Temporal dilation of each branch: rhythm looks furthest along the time axis, harmony frame by frame.
BRANCH_DILATIONS = {"rhythm": 4, "harmony": 1, "timbre": 2}


def _groups(channels: int, max_groups: int = 8) -> int:
    """Largest group count <= max_groups that divides channels (GroupNorm needs a divisor)."""
    return next(g for g in range(min(max_groups, channels), 0, -1) if channels % g == 0)


class GradientHighwayBranch(nn.Module):
    """``GroupNorm(act(conv_k5(act(conv_k3(x)))) + conv_1x1(x))``, length-preserving on (B, C, T)."""

    def __init__(self, in_ch: int, hidden: int, out_ch: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(in_ch, hidden, kernel_size=3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv1d(hidden, out_ch, kernel_size=5, padding=2 * dilation, dilation=dilation)
        self.act = nn.GELU()
        self.proj = nn.Conv1d(in_ch, out_ch, kernel_size=1)  # the highway: a linear path around the main one
        self.norm = nn.GroupNorm(_groups(out_ch), out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        main = self.act(self.conv2(self.act(self.conv1(x))))
        return self.norm(main + self.proj(x))


class ComponentExtractor(nn.Module):
    """Rhythm, harmony and timbre branches over one encoding: (B, C, T) -> 3 x (B, component_dim, T)."""

    def __init__(self, in_ch: int, hidden: int, component_dim: int) -> None:
        super().__init__()
        self.rhythm = GradientHighwayBranch(in_ch, hidden, component_dim, BRANCH_DILATIONS["rhythm"])
        self.harmony = GradientHighwayBranch(in_ch, hidden, component_dim, BRANCH_DILATIONS["harmony"])
        self.timbre = GradientHighwayBranch(in_ch, hidden, component_dim, BRANCH_DILATIONS["timbre"])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.rhythm(x), self.harmony(x), self.timbre(x)


class ComponentSelector(nn.Module):
    """Softmax weights over the components from their time-averaged features: (B, n * D, T) -> (B, n)."""

    def __init__(self, n_components: int, component_dim: int, hidden: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(n_components * component_dim, hidden), nn.GELU(), nn.Linear(hidden, n_components)
        )

    def forward(self, components: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.mlp(components.mean(dim=2)), dim=1)


class CascadeStage(nn.Module):
    """One refinement stage: ``GroupNorm(h + conv_k3(act(conv_k3(h))))``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, kernel_size=3, padding=1)
        self.act = nn.GELU()
        self.conv2 = nn.Conv1d(channels, channels, kernel_size=3, padding=1)
        self.norm = nn.GroupNorm(_groups(channels), channels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.norm(h + self.conv2(self.act(self.conv1(h))))


class CompositionalAgent(nn.Module):
    """Compose an output encoding from the rhythm/harmony/timbre components of an input and a target."""

    def __init__(
        self,
        *,
        encoding_dim: int = 128,
        component_dim: int = 256,
        branch_hidden: int = 352,
        model_dim: int = 512,
        selector_hidden: int = 256,
        n_stages: int = 5,
    ) -> None:
        super().__init__()
        for name, value in (
            ("encoding_dim", encoding_dim),
            ("component_dim", component_dim),
            ("branch_hidden", branch_hidden),
            ("model_dim", model_dim),
            ("selector_hidden", selector_hidden),
            ("n_stages", n_stages),
        ):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        n = len(COMPONENTS)
        self.encoding_dim = encoding_dim
        self.input_extractor = ComponentExtractor(encoding_dim, branch_hidden, component_dim)
        self.target_extractor = ComponentExtractor(encoding_dim, branch_hidden, component_dim)
        self.selector = ComponentSelector(n, component_dim, selector_hidden)
        self.composer = nn.Sequential(
            nn.Conv1d(n * component_dim, model_dim, kernel_size=3, padding=1),
            nn.GELU(),
            nn.GroupNorm(_groups(model_dim), model_dim),
        )
        self.cascade = nn.Sequential(*[CascadeStage(model_dim) for _ in range(n_stages)])
        self.head = nn.Conv1d(model_dim, encoding_dim, kernel_size=1)
        # Factorization decoders: each extractor's three components -> its own source encoding.
        self.input_decoder = nn.Conv1d(3 * component_dim, encoding_dim, kernel_size=1)
        self.target_decoder = nn.Conv1d(3 * component_dim, encoding_dim, kernel_size=1)
        self.component_names = list(COMPONENTS)
        self.output_names = ["composed", "factorization_loss"]

    def forward(self, x: torch.Tensor, y: torch.Tensor, return_weights: bool = False) -> tuple[torch.Tensor, ...]:
        src = torch.cat(self.input_extractor(x), dim=1)  # (B, 3D, T)
        tgt = torch.cat(self.target_extractor(y), dim=1)  # (B, 3D, T)
        components = torch.cat([src, tgt], dim=1)  # (B, 6D, T), in COMPONENTS order
        weights = self.selector(components)  # (B, 6)
        d = components.shape[1] // len(COMPONENTS)
        # Scale each component's D channels by 6 * its weight: uniform weights leave the features unchanged.
        scale = torch.repeat_interleave(weights * len(COMPONENTS), d, dim=1).unsqueeze(-1)  # (B, 6D, 1)
        h = self.cascade(self.composer(components * scale))  # (B, model_dim, T)
        out = self.head(h)  # (B, encoding_dim, T)
        src_error = (self.input_decoder(src) - x).pow(2).mean(dim=(1, 2))  # (B,)
        tgt_error = (self.target_decoder(tgt) - y).pow(2).mean(dim=(1, 2))  # (B,)
        factorization = src_error + tgt_error
        if return_weights:
            return out, factorization, weights
        return out, factorization


def _create_compositional_agent(**kwargs) -> CompositionalAgent:
    return CompositionalAgent(**kwargs)


# The project's log-mel front end gives 128 bands x 173 frames; the agent accepts any T.
_ENCODING_PAIR = (
    TensorSpec("x", (128, 173), description="input encoding (log-mel frames, encoding_dim x T)"),
    TensorSpec("y", (128, 173), description="target encoding (log-mel frames, encoding_dim x T)"),
)


@register_model(
    "compositional-agent",
    family="compositional",
    task="compose an encoding from the rhythm/harmony/timbre components of an input and a target",
    inputs=_ENCODING_PAIR,
    research_note="compositional agent for sound design (component extractors, selector, composer, cascade)",
)
def compositional_agent(**kwargs) -> CompositionalAgent:
    """Compositional agent at encoding_dim 128: components 256, composer 512, five cascade stages."""
    return _create_compositional_agent(**kwargs)
