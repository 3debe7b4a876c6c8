"""Losses of the model families' tasks."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


class VitalLoss(nn.Module):
    """continuous_weight x masked mean(importance x mask x (pred - target)^2)
    + categorical_weight x mean over categorical parameters of their (masked) cross-entropy.

    Masks: a static mask (1 for parameters the model should learn; all of Tier 1 by default) times, with
    ``conditional_mask``, a per-sample mask that is 0 where the parameter's module is switched off in the
    target (its ``*_on`` switch, given by ``gate_ids``: index into the categorical parameters, option 1 = on,
    -1 = ungated): a filter's cutoff cannot be heard, so it cannot be learned, when the filter is off. The
    same gating applies to categorical parameters (a switch never gates itself). The continuous mean is
    taken over unmasked entries, so the loss scale does not drift with how many modules are on.
    """

    def __init__(
        self,
        continuous_gate_ids: Sequence[int],
        categorical_gate_ids: Sequence[int],
        importance: torch.Tensor | None = None,
        static_mask: torch.Tensor | None = None,
        continuous_weight: float = 1.0,
        categorical_weight: float = 0.5,
        conditional_mask: bool = True,
    ) -> None:
        super().__init__()
        n = len(continuous_gate_ids)
        self.register_buffer("cont_gates", torch.tensor(list(continuous_gate_ids), dtype=torch.long))
        self.register_buffer("cat_gates", torch.tensor(list(categorical_gate_ids), dtype=torch.long))
        self.register_buffer("importance", importance.float() if importance is not None else torch.ones(n))
        self.register_buffer("static_mask", static_mask.float() if static_mask is not None else torch.ones(n))
        self.continuous_weight = continuous_weight
        self.categorical_weight = categorical_weight
        self.conditional_mask = conditional_mask

    def _gate_mask(self, gates: torch.Tensor, cat_target: torch.Tensor) -> torch.Tensor:
        """(B, len(gates)) float mask: 1 where ungated or the gating switch is on in the target."""
        if not self.conditional_mask:
            return torch.ones(cat_target.shape[0], len(gates), device=cat_target.device)
        on = cat_target[:, gates.clamp(min=0)] == 1  # (B, P)
        return torch.where(gates >= 0, on, torch.ones_like(on)).float()

    def continuous_mask(self, cat_target: torch.Tensor) -> torch.Tensor:
        return self.static_mask * self._gate_mask(self.cont_gates, cat_target)

    def forward(
        self,
        continuous: torch.Tensor,
        logits: Sequence[torch.Tensor],
        cont_target: torch.Tensor,
        cat_target: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        mask = self.continuous_mask(cat_target)  # (B, n_continuous)
        sq = (continuous.float() - cont_target) ** 2
        cont_loss = (self.importance * mask * sq).sum() / mask.sum().clamp(min=1.0)
        cat_mask = self._gate_mask(self.cat_gates, cat_target)  # (B, n_categorical)
        ces = []
        for i, lg in enumerate(logits):
            ce = F.cross_entropy(lg.float(), cat_target[:, i], reduction="none")  # (B,)
            ces.append((ce * cat_mask[:, i]).sum() / cat_mask[:, i].sum().clamp(min=1.0))
        cat_loss = torch.stack(ces).mean() if ces else continuous.new_zeros(())
        loss = self.continuous_weight * cont_loss + self.categorical_weight * cat_loss
        return loss, {"continuous_mse": cont_loss.detach(), "categorical_ce": cat_loss.detach()}
