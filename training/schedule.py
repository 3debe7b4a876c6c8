"""Learning-rate schedule: linear warmup, then cosine decay to about zero."""

from __future__ import annotations

import math

import torch


def warmup_cosine(total_steps: int, warmup_steps: int, final_fraction: float = 0.0):
    """Multiplier of the base learning rate at each optimizer step (for ``LambdaLR``)."""
    total_steps = max(total_steps, 1)
    warmup_steps = min(max(warmup_steps, 0), total_steps - 1)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
        return final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(total_steps, warmup_steps))
