"""Counting a model's floating-point operations with ``torch.utils.flop_counter``.

The counter knows matmuls and convolutions (2 FLOPs per multiply-accumulate), which is where nearly all of the
zoo's work is. It has no formula for FFTs: the eager front end's ``torch.stft`` is counted with the usual
estimate for a real-input FFT of length N, 2.5 N log2 N. Elementwise work (loudness normalisation, power,
log1p) is not counted by either formulation.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def _real_fft_flops(input_shape: Any, dim: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """aten._fft_r2c: every transform along ``dim`` of a real input costs about 2.5 N log2 N."""
    dims = list(dim) if isinstance(dim, (list, tuple)) else [dim]
    n = math.prod(int(input_shape[d]) for d in dims)
    transforms = math.prod(int(s) for s in input_shape) // max(n, 1)
    return int(round(2.5 * n * math.log2(n))) * transforms if n > 1 else 0


def count_flops(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> int:
    """FLOPs of one forward pass of ``module`` on ``inputs`` (run on the CPU, no grad)."""
    from torch.utils.flop_counter import FlopCounterMode

    mapping = {torch.ops.aten._fft_r2c: _real_fft_flops}  # keyed by op packet, as the counter looks them up
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter, torch.no_grad():
        module(*inputs)
    return int(counter.get_total_flops())
