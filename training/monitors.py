"""Monitors of a training run: non-finite losses and gradients, the gradient-flow report, throughput."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from zoo.errors import ZooError

NEAR_ZERO_GRAD = 1e-10


class TrainingDiverged(ZooError, RuntimeError):
    """Too many consecutive steps with a non-finite loss or gradient."""


def nonfinite_grad_report(model: nn.Module, limit: int = 10) -> list[str]:
    """Per-tensor statistics of every gradient that holds NaN or Inf (checked before clipping)."""
    rows = []
    for name, p in model.named_parameters():
        g = p.grad
        if g is None:
            continue
        finite = torch.isfinite(g)
        if not bool(finite.all()):
            n_nan = int(torch.isnan(g).sum())
            n_inf = int(torch.isinf(g).sum())
            max_finite = float(g[finite].abs().max()) if bool(finite.any()) else float("nan")
            rows.append(f"{name}: {n_nan} NaN, {n_inf} Inf of {g.numel()}, max |finite| {max_finite:.3g}")
    return rows[:limit] + ([f"... and {len(rows) - limit} more tensors"] if len(rows) > limit else [])


@dataclass
class StabilityMonitor:
    """Counts skipped steps; raises TrainingDiverged after ``max_consecutive`` bad steps in a row."""

    max_consecutive: int = 5
    skipped: int = 0
    consecutive: int = 0
    last_report: list[str] = field(default_factory=list)

    def ok(self) -> None:
        self.consecutive = 0

    def bad(self, step: int, reason: str, details: list[str]) -> None:
        self.skipped += 1
        self.consecutive += 1
        self.last_report = [f"step {step}: {reason}", *details]
        if self.consecutive >= self.max_consecutive:
            raise TrainingDiverged(
                f"training stopped: {self.consecutive} consecutive steps with a non-finite loss or gradient "
                f"({self.skipped} skipped in all). Last: "
                + "; ".join(self.last_report)
                + ". Try a lower --lr or check the data for NaN."
            )


def gradient_flow(model: nn.Module) -> tuple[list[str], dict[str, float]]:
    """(trainable parameters whose gradient norm is near zero, grad norm per parameter)."""
    norms = {}
    dead = []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        norm = float(p.grad.norm()) if p.grad is not None else 0.0
        norms[name] = norm
        if norm < NEAR_ZERO_GRAD or math.isnan(norm):
            dead.append(name)
    return dead, norms


class ThroughputMeter:
    """Samples per second over an epoch, and the share of that time spent waiting for the data loader.

    Call :meth:`batch_ready` when a batch comes out of the loader and :meth:`batch_done` when its work is
    finished (logging and callbacks included); the time in between is work, the time before is waiting.
    """

    def __init__(self) -> None:
        self.wait = self.work = 0.0
        self.samples = 0
        self._mark = time.perf_counter()

    def batch_ready(self) -> None:
        now = time.perf_counter()
        self.wait += now - self._mark
        self._mark = now

    def batch_done(self, samples: int) -> None:
        now = time.perf_counter()
        self.work += now - self._mark
        self._mark = now
        self.samples += samples

    @property
    def samples_per_s(self) -> float:
        return self.samples / max(self.wait + self.work, 1e-9)

    @property
    def data_wait_fraction(self) -> float:
        return self.wait / max(self.wait + self.work, 1e-9)
