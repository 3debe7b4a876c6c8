"""Deep MLPs with and without skip connections: plain, residual, dense (concatenative) and highway.

Sources: "Deep Residual Learning for Image Recognition" (He et al. 2015) for ``F(x) + x``; "Densely
Connected Convolutional Networks" (Huang et al. 2017) for ``[x, F(x)]``; "Highway Networks" (Srivastava
et al. 2015) for ``T(x) * H(x) + (1 - T(x)) * x``. Written here as MLPs on a (B, in_dim) vector, after the
project's note on skip connections.

Every variant is a stack of ``depth`` blocks at ``width`` features; the variants differ only in how a block
combines its input with its transform (``act`` is ReLU by default):

- plain:    ``h <- act(W2 act(W1 h))``, no outer ``act`` on the last block (2 matrices width x width per block)
- residual: ``h <- h + W2 act(W1 h)``                                 (2 matrices per block)
- highway:  ``h <- T * act(W_H h) + (1 - T) * h``, ``T = sigmoid(W_T h)`` (2 matrices per block)
- dense:    ``h <- [h, act(W h)]``, ``W`` maps the features so far to ``growth`` new ones (1 matrix per layer)

So plain and residual have exactly the same layers and parameters and differ only by the skip: the plain
network is a standard MLP of ``2 * depth`` linear layers with ``act`` between every two of them.

Parameter counts: the note reports, at width 32, residual 2,048 parameters (output 32), dense 3,584
(output 96) and highway 2,048 (output 32). Those are exactly bias-free layers (``bias=False``, the default
here) in this configuration:

- residual, one block: 2 x 32 x 32 = 2,048; output 32.
- highway, one block: W_H and W_T, 2 x 32 x 32 = 2,048; output 32.
- dense, four layers of growth 16: 16 x (32 + 48 + 64 + 80) = 3,584; output 32 + 4 x 16 = 96. (Two layers of
  growth 32 would also end at 96 features but have 32 x 32 + 64 x 32 = 3,072 parameters.)

Any bias adds 32 per block (16 per dense layer), so the note's figures cannot include biases. The registered
variants default to ``depth=4`` (dense at its default reproduces 3,584; residual and highway reproduce 2,048 at
``depth=1``). With ``in_dim != width`` a linear stem maps the input to ``width``; with ``out_dim`` set, a
linear readout maps the final features to ``out_dim`` (the training task uses it so that every variant,
dense included, predicts the same targets).
"""

from __future__ import annotations

import torch
from torch import nn

from zoo.registry import TensorSpec, register_model

VARIANTS = ("plain", "residual", "dense", "highway")
_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


def _activation(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {', '.join(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]()


class PlainBlock(nn.Module):
    """``act(W2 act(W1 h))``: two linear layers with no skip. The final block of a plain MLP leaves out the
    outer ``act`` so the network can output negative values (see ``SkipMLP``)."""

    def __init__(self, width: int, act: str, bias: bool, outer_act: bool) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width, bias=bias)
        self.act = _activation(act)
        self.fc2 = nn.Linear(width, width, bias=bias)
        self.outer_act = _activation(act) if outer_act else nn.Identity()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.outer_act(self.fc2(self.act(self.fc1(h))))


class ResidualBlock(nn.Module):
    """``h + W2 act(W1 h)``: the transform learns a correction to the identity."""

    def __init__(self, width: int, act: str, bias: bool) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width, bias=bias)
        self.act = _activation(act)
        self.fc2 = nn.Linear(width, width, bias=bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.fc2(self.act(self.fc1(h)))


class HighwayBlock(nn.Module):
    """``T * act(W_H h) + (1 - T) * h`` with the transform gate ``T = sigmoid(W_T h)``.

    With ``bias=True`` the gate's bias starts at ``gate_bias`` (negative: the block starts close to carrying
    its input, as the Highway Networks paper recommends); without biases the gate starts near 0.5."""

    def __init__(self, width: int, act: str, bias: bool, gate_bias: float = -1.0) -> None:
        super().__init__()
        self.transform = nn.Linear(width, width, bias=bias)
        self.act = _activation(act)
        self.gate_fc = nn.Linear(width, width, bias=bias)
        if bias:
            nn.init.constant_(self.gate_fc.bias, gate_bias)

    def gate(self, h: torch.Tensor) -> torch.Tensor:
        """The transform gate T(h) in (0, 1), (B, width): 1 transforms, 0 carries the input."""
        return torch.sigmoid(self.gate_fc(h))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        t = self.gate(h)
        return t * self.act(self.transform(h)) + (1.0 - t) * h


class DenseLayer(nn.Module):
    """``[h, act(W h)]``: appends ``growth`` new features to everything computed so far."""

    def __init__(self, in_features: int, growth: int, act: str, bias: bool) -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, growth, bias=bias)
        self.act = _activation(act)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.cat([h, self.act(self.fc(h))], dim=1)


class SkipMLP(nn.Module):
    """A deep MLP whose blocks are plain, residual, dense or highway (see the module docstring).

    Input (B, in_dim); output (B, feature_dim), or (B, out_dim) with a readout. ``feature_dim`` is ``width``,
    except for dense: ``width + depth * growth``.
    """

    def __init__(
        self,
        *,
        variant: str = "residual",
        in_dim: int = 32,
        width: int = 32,
        depth: int = 4,
        growth: int | None = None,
        out_dim: int | None = None,
        act: str = "relu",
        bias: bool = False,
        gate_bias: float = -1.0,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown skip-MLP variant {variant!r}; choose one of {', '.join(VARIANTS)}")
        for name, value in (("in_dim", in_dim), ("width", width), ("depth", depth)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        growth = width // 2 if growth is None else growth
        if variant == "dense" and growth < 1:
            raise ValueError(f"growth must be at least 1, got {growth}")
        _activation(act)  # validate the name before building anything
        self.variant = variant
        self.depth = depth
        self.width = width

        self.stem: nn.Module = nn.Identity() if in_dim == width else nn.Linear(in_dim, width, bias=bias)
        blocks: list[nn.Module] = []
        features = width
        for i in range(depth):
            if variant == "plain":
                blocks.append(PlainBlock(width, act, bias, outer_act=i < depth - 1))
            elif variant == "residual":
                blocks.append(ResidualBlock(width, act, bias))
            elif variant == "highway":
                blocks.append(HighwayBlock(width, act, bias, gate_bias))
            else:
                blocks.append(DenseLayer(features, growth, act, bias))
                features += growth
        self.blocks = nn.Sequential(*blocks)
        self.feature_dim = features
        self.head: nn.Module = nn.Identity() if out_dim is None else nn.Linear(features, out_dim)
        self.out_dim = features if out_dim is None else out_dim
        self.output_names = ["y"]

    def linear_layers(self) -> list[nn.Linear]:
        """The blocks' linear layers from input to output (stem and readout excluded); for a highway block,
        the transform before the gate."""
        return [m for m in self.blocks.modules() if isinstance(m, nn.Linear)]

    @torch.no_grad()
    def gate_means(self, x: torch.Tensor) -> torch.Tensor:
        """Mean transform-gate value of each highway block on a batch, (depth,). Highway variant only."""
        if self.variant != "highway":
            raise ValueError(f"gate_means needs the highway variant, this model is {self.variant!r}")
        h, means = self.stem(x), []
        for block in self.blocks:
            means.append(block.gate(h).mean())
            h = block(h)
        return torch.stack(means)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))  # (B, in_dim) -> (B, out_dim)


def _create_skip_mlp(variant: str, **kwargs) -> SkipMLP:
    return SkipMLP(**dict(dict(variant=variant), **kwargs))


_VECTOR_INPUT = (TensorSpec("x", (32,), description="a 32-dimensional input vector (in_dim=32)"),)
_NOTE = "skip connections: plain, residual, dense and highway MLPs"


@register_model("plain-mlp", family="skip_mlp", task="vector regression", inputs=_VECTOR_INPUT, research_note=_NOTE)
def plain_mlp(**kwargs) -> SkipMLP:
    """Plain MLP: 4 blocks of two bias-free 32x32 layers, ReLU between every two layers, no skips."""
    return _create_skip_mlp("plain", **kwargs)


@register_model("residual-mlp", family="skip_mlp", task="vector regression", inputs=_VECTOR_INPUT, research_note=_NOTE)
def residual_mlp(**kwargs) -> SkipMLP:
    """Residual MLP: 4 blocks h + W2 relu(W1 h), width 32, bias-free (depth=1 is the note's 2,048)."""
    return _create_skip_mlp("residual", **kwargs)


@register_model("dense-mlp", family="skip_mlp", task="vector regression", inputs=_VECTOR_INPUT, research_note=_NOTE)
def dense_mlp(**kwargs) -> SkipMLP:
    """Dense MLP: 4 layers appending 16 features each to 32 (output 96, 3,584 parameters as in the note)."""
    return _create_skip_mlp("dense", **kwargs)


@register_model("highway-mlp", family="skip_mlp", task="vector regression", inputs=_VECTOR_INPUT, research_note=_NOTE)
def highway_mlp(**kwargs) -> SkipMLP:
    """Highway MLP: 4 gated blocks, width 32, bias-free (depth=1 is the note's 2,048)."""
    return _create_skip_mlp("highway", **kwargs)
