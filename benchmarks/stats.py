"""Paired comparisons of two methods on the same targets: the mean difference and its bootstrap interval."""

from __future__ import annotations

import numpy as np


def paired_interval(diff: np.ndarray, n_boot: int = 4000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of the paired differences ``diff`` (targets, ...) over targets and its 95 % bootstrap interval
    (targets resampled with replacement ``n_boot`` times): (mean, low, high), each of shape ``diff.shape[1:]``."""
    diff = np.asarray(diff, dtype=np.float64)
    if diff.shape[0] == 0:
        raise ValueError("a paired comparison needs at least one target both methods scored")
    means = diff[np.random.default_rng(seed).choice(len(diff), size=(n_boot, len(diff)))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975], axis=0)
    return diff.mean(axis=0), low, high
