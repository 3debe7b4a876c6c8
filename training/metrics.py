"""Parameter metrics of Vital models, in one place for validation during training and for `zoo evaluate`:
masked squared error per module group and accuracy per categorical parameter, summed over batches.

The mask is the loss's (``VitalLoss.continuous_mask``): a parameter whose module is switched off in the
target cannot be heard, so it is not scored.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from training.losses import VitalLoss
from zoo.vital.spec import VitalParamSpec


class ParameterMetrics:
    """Accumulate with :meth:`update` batch by batch, then read the figures."""

    def __init__(self, spec: VitalParamSpec) -> None:
        self.spec = spec
        self._mask = VitalLoss(spec.continuous_gate_ids(), spec.categorical_gate_ids()).continuous_mask
        self._group_ids = torch.tensor(spec.continuous_group_ids())
        self.sq = torch.zeros(len(spec.groups))  # summed masked squared error per group
        self.count = torch.zeros(len(spec.groups))  # scored (unmasked) entries per group
        self.correct = torch.zeros(len(spec.categorical))
        self.n = 0

    @torch.no_grad()
    def update(
        self,
        continuous: torch.Tensor,
        logits: Sequence[torch.Tensor],
        cont_target: torch.Tensor,
        cat_target: torch.Tensor,
    ) -> None:
        """One batch: predictions (B, n_continuous) and one (B, n_options) logit tensor per categorical
        parameter, against the targets; any device."""
        cat_target = cat_target.cpu()
        mask = self._mask(cat_target)  # (B, n_continuous)
        err = (continuous.detach().float().cpu() - cont_target.float().cpu()) ** 2 * mask
        self.sq.index_add_(0, self._group_ids, err.sum(0))
        self.count.index_add_(0, self._group_ids, mask.sum(0))
        for i, lg in enumerate(logits):
            self.correct[i] += float((lg.detach().argmax(-1).cpu() == cat_target[:, i]).sum())
        self.n += int(cat_target.shape[0])

    def group_mse(self) -> dict[str, float]:
        """Masked MSE of each module group that had a scored entry."""
        return {g: float(self.sq[i] / self.count[i]) for i, g in enumerate(self.spec.groups) if self.count[i] > 0}

    def continuous_mse(self) -> float:
        """Masked MSE over every continuous parameter."""
        return float(self.sq.sum() / self.count.sum().clamp(min=1))

    def categorical_accuracy(self) -> dict[str, float]:
        return {name: float(self.correct[i]) / max(self.n, 1) for i, name in enumerate(self.spec.categorical_names)}

    def mean_categorical_accuracy(self) -> float:
        return float(self.correct.mean()) / max(self.n, 1)
