"""Latency samples and their summary: percentiles the way perf_analyzer and pytest-benchmark report them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LatencyStats:
    """Percentiles (ms) of a list of latencies in seconds."""

    count: int
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: list[float] | np.ndarray) -> LatencyStats:
        if len(seconds) == 0:
            nan = float("nan")
            return cls(0, nan, nan, nan, nan, nan, nan, nan)
        ms = np.asarray(seconds, dtype=np.float64) * 1e3
        p50, p90, p95, p99 = np.percentile(ms, [50, 90, 95, 99])
        return cls(
            len(ms), float(ms.mean()), float(p50), float(p90), float(p95), float(p99), float(ms.min()), float(ms.max())
        )


@dataclass
class Timer:
    """Collects the latency of repeated calls of one function, possibly over several interleaved rounds.

    ``sync`` runs after each call inside the timed region (``torch.cuda.synchronize`` on a GPU), so an
    asynchronous device is timed to the end of its work."""

    fn: Callable[[], object]
    sync: Callable[[], None] | None = None
    samples: list[float] = field(default_factory=list)

    def warmup(self, calls: int) -> None:
        for _ in range(calls):
            self.fn()
        if self.sync is not None:
            self.sync()

    def measure(self, calls: int, budget_s: float | None = None) -> int:
        """Time up to ``calls`` more calls, fewer once the samples collected so far add up to ``budget_s``
        (at least one call is timed overall). Returns how many were timed."""
        done = 0
        while done < calls and (budget_s is None or not self.samples or sum(self.samples) < budget_s):
            t0 = time.perf_counter()
            self.fn()
            if self.sync is not None:
                self.sync()
            self.samples.append(time.perf_counter() - t0)
            done += 1
        return done

    def stats(self) -> LatencyStats:
        return LatencyStats.of(self.samples)
