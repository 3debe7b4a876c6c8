"""ResNet-18 for inverse synthesis: log-mel of a Vital render -> the Tier-1 parameters of its preset.

Backbone: "Deep Residual Learning for Image Recognition", He et al. 2015 (BasicBlock, layers 2-2-2-2),
written here with a 1-channel stem for a (B, 1, 128, 173) log-mel input. Heads follow the project's
inverse-synthesis note: a continuous head with a Sigmoid (targets are normalised to [0, 1]) and one
classifier per categorical parameter.

Outputs are a tuple ``(continuous, logits_0, ..., logits_{k-1})`` so TorchScript and ONNX export it as
plain named tensors: ``continuous`` (B, n_continuous) in [0, 1], then ``cat_i`` (B, n_options_i).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from zoo.audio import FrontEndConfig
from zoo.errors import WeightsNotFoundError
from zoo.registry import TensorSpec, register_model
from zoo.state_dict import load_weights, read_weights_file
from zoo.vital.tier1 import tier1_spec

# The Vital Tier-1 spec's counts (pure data: importing it creates no synth).
DEFAULT_N_CONTINUOUS = tier1_spec().n_continuous
DEFAULT_CATEGORICAL_OPTIONS: tuple[int, ...] = tuple(tier1_spec().categorical_n_options)


def _conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_ch, out_ch, stride)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(out_ch, out_ch)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_ch, out_ch, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.downsample(x))


class VitalResNet(nn.Module):
    """ResNet backbone with a continuous head and one classifier per categorical parameter.

    Everything trains by default. ``freeze_early=True`` stops gradients into conv1..layer2, which only makes
    sense for a backbone that comes pretrained (the zoo has none: frozen random filters never learn).
    """

    def __init__(
        self,
        *,
        layers: Sequence[int] = (2, 2, 2, 2),
        in_chans: int = 1,
        n_continuous: int = DEFAULT_N_CONTINUOUS,
        categorical_options: Sequence[int] = DEFAULT_CATEGORICAL_OPTIONS,
        simple_cat_heads: bool = True,
        freeze_early: bool = False,
        head_dim: int = 512,
    ) -> None:
        super().__init__()
        if n_continuous < 1:
            raise ValueError(f"n_continuous must be positive, got {n_continuous}")
        if any(int(n) < 2 for n in categorical_options):
            raise ValueError(f"every categorical parameter needs at least 2 options, got {list(categorical_options)}")
        self.n_continuous = n_continuous
        self.categorical_options = [int(n) for n in categorical_options]

        self.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        widths = (64, 128, 256, 512)
        in_ch = 64
        stages = []
        for i, (width, depth) in enumerate(zip(widths, layers, strict=True)):
            blocks = [BasicBlock(in_ch, width, stride=1 if i == 0 else 2)]
            blocks += [BasicBlock(width, width) for _ in range(depth - 1)]
            stages.append(nn.Sequential(*blocks))
            in_ch = width
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        feat = widths[-1]

        self.continuous_head = nn.Sequential(
            nn.Linear(feat, head_dim),
            nn.ReLU(inplace=True),
            nn.Linear(head_dim, head_dim),
            nn.ReLU(inplace=True),
            nn.Linear(head_dim, n_continuous),
            nn.Sigmoid(),
        )
        if simple_cat_heads:
            cat_heads = [nn.Linear(feat, n) for n in self.categorical_options]
        else:
            cat_heads = [
                nn.Sequential(nn.Linear(feat, head_dim), nn.ReLU(inplace=True), nn.Linear(head_dim, n))
                for n in self.categorical_options
            ]
        self.categorical_heads = nn.ModuleList(cat_heads)
        self.output_names = ["continuous"] + [f"cat_{i}" for i in range(len(self.categorical_options))]
        self._init_weights()
        if freeze_early:
            self.freeze_early()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                # Zero biases: every class starts equally likely, every continuous output at 0.5.
                nn.init.zeros_(m.bias)

    def freeze_early(self) -> None:
        """Stop gradients into conv1..layer2; layer3, layer4 and the heads stay trainable."""
        for module in (self.conv1, self.bn1, self.layer1, self.layer2):
            for p in module.parameters():
                p.requires_grad_(False)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, 32, 44)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 512, 4, 6)
        return torch.flatten(self.avgpool(x), 1)  # (B, 512)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = self.forward_features(mel)
        outputs = [self.continuous_head(feats)]
        for head in self.categorical_heads:
            outputs.append(head(feats))
        return tuple(outputs)


def _create_vital_resnet(pretrained: bool, weights_path: str | Path | None, **kwargs) -> VitalResNet:
    model = VitalResNet(**kwargs)
    if pretrained:
        if weights_path is None or not Path(weights_path).is_file():
            raise WeightsNotFoundError(
                "pretrained=True needs a local weights file (weights_path=...): the zoo downloads nothing, "
                f"and {weights_path or 'no path'} was given"
            )
        state = read_weights_file(weights_path)  # a state dict, or a checkpoint holding one under "model"
        state = state["model"] if isinstance(state, dict) and isinstance(state.get("model"), dict) else state
        load_weights(model, state, source=f"the weights of {weights_path}")  # strict: nothing missing passes
    return model


_MEL = FrontEndConfig()
_MEL_INPUT = (TensorSpec("mel", _MEL.output_shape, description="log1p mel spectrogram from zoo.audio"),)


@register_model(
    "vital-resnet18",
    family="vital_resnet",
    task="inverse synthesis: log-mel -> Vital Tier-1 parameters",
    inputs=_MEL_INPUT,
    research_note="inverse synthesis with ResNet-18 (Vital preset estimation)",
)
def vital_resnet18(pretrained: bool = False, weights_path: str | Path | None = None, **kwargs) -> VitalResNet:
    """ResNet-18: BasicBlock, layers (2, 2, 2, 2), 1-channel stem."""
    return _create_vital_resnet(pretrained, weights_path, **dict(dict(layers=(2, 2, 2, 2)), **kwargs))
