"""StructureNet: a sparse scaffold MLP that grows structure where its neurons fail.

After the project's StructureNet note. The network starts as a *scaffold*: masked linear layers that keep a
random share ``density`` of their connections (the note calls this figure the "sparsity": "2 % sparsity"
means 2 % of the connections are kept). During training a growth policy (``training/growth.py``) reads the
network's *extrema* on a batch and changes its structure with four actions, all defined here:

- **dense patches** (:meth:`StructureNet.embed_patch`): a dense block embedded into a layer's mask around an
  extreme neuron. Patch connections live in a separate ``patch_weight`` tensor of the layer, so the optimizer
  can train them faster than the scaffold;
- **layer insertion** (:meth:`StructureNet.insert_layer`): a new sparse layer after a bottleneck. It starts as
  the identity on the live units, so inserting it leaves the function unchanged (``relu(a) == a`` for ``a >= 0``);
- **skip connections** (:meth:`StructureNet.add_skip`): a sparse linear map from an earlier activation into a
  later layer's pre-activation, bypassing the layers between. The policy builds one from the dead neurons of
  the bypassed layer: their fan-in and fan-out become a linear highway around the ReLU that silenced them;
- **pruning** (:meth:`StructureNet.prune_to_budget`): remove the weakest connections until the network holds
  ``budget`` connections again, so growth redistributes connections and never adds to their number.

Conventions. ``layers[k]`` maps activation ``a_k`` to ``a_{k+1}``: ``a_0`` is the input, ``a_1 .. a_L`` the
hidden activations (ReLU), ``layers[L]`` gives the logits. A skip ``(src, dst)`` adds a masked linear map of
``a_src`` to the pre-activation of ``layers[dst]`` (``dst > src``), bypassing ``layers[src .. dst-1]``.

The grown structure is plain data, :meth:`StructureNet.structure_config`, which the trainer stores as the
checkpoint's ``model_config``: ``zoo.create_model("structurenet", **model_config)`` rebuilds the grown network
and ``load_state_dict`` fills in weights and masks. Masks are buffers and the forward pass has no
data-dependent control flow, so a grown network traces and exports with its masks frozen as constants.

Parameter count: weights are stored dense (the mask selects the live share), so the registered default
(64 -> 256 -> 256 -> 10) holds 85,002 parameters of which about ``density`` of the 84,480 weights are live;
:meth:`StructureNet.active_connections` counts them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zoo.registry import TensorSpec, register_model


def _random_mask(out_features: int, in_features: int, density: float) -> torch.Tensor:
    """A {0, 1} mask with exactly ``round(density * n)`` ones (at least one), placed uniformly at random."""
    n = out_features * in_features
    k = min(n, max(1, round(density * n)))
    mask = torch.zeros(n)
    mask[torch.randperm(n)[:k]] = 1.0
    return mask.view(out_features, in_features)


class MaskedLinear(nn.Module):
    """``y = x (W * M + P * Q)^T + b``: a linear layer whose live connections are the ones in the mask ``M``.

    ``W`` is the scaffold weight and ``M`` its mask (a buffer). A layer that received dense patches also has a
    patch weight ``P`` with its own mask ``Q`` (disjoint from ``M``), a separate parameter so that patches can
    be trained at their own learning rate. Masked-out weights get zero gradient and never affect the output.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        density: float,
        *,
        bias: bool = True,
        gain: float = math.sqrt(2.0),
        patched: bool = False,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("mask", _random_mask(out_features, in_features, density))
        # He initialisation over the *live* fan-in, so a sparse layer keeps its activations' scale.
        fan_in = max(1.0, density * in_features)
        self.weight = nn.Parameter(torch.randn(out_features, in_features) * (gain / math.sqrt(fan_in)))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.register_parameter("patch_weight", None)
        if patched:
            self.enable_patches()

    @property
    def patched(self) -> bool:
        return self.patch_weight is not None

    def enable_patches(self) -> None:
        """Add the (empty) patch weight and mask; a no-op when they exist."""
        if self.patch_weight is None:
            device = self.weight.device
            self.patch_weight = nn.Parameter(torch.zeros(self.out_features, self.in_features, device=device))
            self.register_buffer("patch_mask", torch.zeros(self.out_features, self.in_features, device=device))

    def effective_weight(self) -> torch.Tensor:
        """The weight the layer applies, (out, in): masked scaffold plus masked patches."""
        w = self.weight * self.mask
        if self.patch_weight is not None:
            w = w + self.patch_weight * self.patch_mask
        return w

    def live_mask(self) -> torch.Tensor:
        """Where the layer has a connection (scaffold or patch), (out, in) bool."""
        live = self.mask > 0
        if self.patch_weight is not None:
            live = live | (self.patch_mask > 0)
        return live

    def active_connections(self) -> int:
        return int(self.live_mask().sum())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.effective_weight(), self.bias)  # (B, in) -> (B, out)


@dataclass
class LayerExtrema:
    """Extreme neurons of one hidden activation ``a_h`` measured on a batch."""

    activation: int  # h: the hidden activation, 1..L
    dead: list[int]  # never active on the batch
    saturated: list[int]  # active on (almost) every sample and far above the layer's typical level
    active_share: torch.Tensor  # (width,) share of samples on which each unit is > 0
    mean_activation: torch.Tensor  # (width,)

    @property
    def count(self) -> int:
        return len(self.dead) + len(self.saturated)


class StructureNet(nn.Module):
    """A masked MLP ``in_dim -> hidden... -> out_dim`` with ReLU, skips and patches (see the module docstring).

    The keyword arguments are the structure: ``hidden`` (widths), ``skips`` (``[src, dst]`` pairs), ``patched``
    (indices of layers holding patch weights), ``grown`` (indices of layers inserted during training) and
    ``budget`` (the number of connections the network keeps; by default ``density`` times the dense count of
    the scaffold). Input ``x`` (B, in_dim) is standardised inside the model with the buffers ``input_mean`` and
    ``input_std`` (set from the training data by the task), so an exported model takes raw features.
    """

    def __init__(
        self,
        *,
        in_dim: int = 64,
        out_dim: int = 10,
        hidden: Sequence[int] = (256, 256),
        density: float = 0.02,
        budget: int | None = None,
        skips: Sequence[Sequence[int]] = (),
        patched: Sequence[int] = (),
        grown: Sequence[int] = (),
    ) -> None:
        super().__init__()
        if not 0.0 < density <= 1.0:
            raise ValueError(f"density must be in (0, 1], got {density}")
        hidden = [int(w) for w in hidden]
        if in_dim < 1 or out_dim < 1 or any(w < 1 for w in hidden):
            raise ValueError(f"in_dim, out_dim and hidden widths must be at least 1, got {in_dim}, {out_dim}, {hidden}")
        widths = [in_dim, *hidden, out_dim]
        n_layers = len(widths) - 1
        for idx in (*patched, *grown):
            if not 0 <= idx < n_layers:
                raise ValueError(f"layer index {idx} out of range for {n_layers} layers")
        self.in_dim, self.out_dim, self.density = in_dim, out_dim, float(density)
        self.layers = nn.ModuleList(
            MaskedLinear(
                widths[k],
                widths[k + 1],
                density,
                gain=math.sqrt(2.0) if k < n_layers - 1 else 1.0,
                patched=k in patched,
            )
            for k in range(n_layers)
        )
        self.grown = sorted(int(k) for k in grown)
        self.skips = nn.ModuleDict()
        for src, dst in skips:
            self._new_skip(int(src), int(dst))
        dense = sum(widths[k] * widths[k + 1] for k in range(n_layers))
        self.budget = int(budget) if budget is not None else self.active_connections()
        if self.budget < 1 or self.budget > dense + sum(s.in_features * s.out_features for s in self.skips.values()):
            raise ValueError(f"budget must be between 1 and the dense connection count, got {self.budget}")
        self.register_buffer("input_mean", torch.zeros(in_dim))
        self.register_buffer("input_std", torch.ones(in_dim))
        self.output_names = ["logits"]

    # ---------------------------------------------------------------- structure
    @property
    def hidden(self) -> list[int]:
        return [layer.out_features for layer in self.layers[:-1]]

    def skip_pairs(self) -> list[tuple[int, int]]:
        return sorted(tuple(int(i) for i in key.split("_")) for key in self.skips)  # type: ignore[misc]

    def _width(self, activation: int) -> int:
        return self.in_dim if activation == 0 else self.layers[activation - 1].out_features

    def _new_skip(self, src: int, dst: int) -> MaskedLinear:
        if not 0 <= src < dst < len(self.layers):
            raise ValueError(f"a skip goes from activation src to layer dst > src; got ({src}, {dst})")
        if f"{src}_{dst}" in self.skips:
            raise ValueError(f"skip ({src}, {dst}) exists already")
        skip = MaskedLinear(self._width(src), self.layers[dst].out_features, 0.0, bias=False)
        skip.to(self.layers[0].weight.device)
        skip.mask.zero_()
        nn.init.zeros_(skip.weight)
        self.skips[f"{src}_{dst}"] = skip
        return skip

    def structure_config(self) -> dict:
        """The keyword arguments that rebuild this structure (plain data; stored as the checkpoint's config)."""
        return {
            "in_dim": self.in_dim,
            "out_dim": self.out_dim,
            "hidden": self.hidden,
            "density": self.density,
            "budget": self.budget,
            "skips": [list(p) for p in self.skip_pairs()],
            "patched": [k for k, layer in enumerate(self.layers) if layer.patched],
            "grown": list(self.grown),
        }

    def masked_modules(self) -> Iterator[tuple[str, MaskedLinear]]:
        """Every masked matrix: ``layers.k`` and ``skips.src_dst``."""
        for k, layer in enumerate(self.layers):
            yield f"layers.{k}", layer
        for key, skip in self.skips.items():
            yield f"skips.{key}", skip

    def active_connections(self) -> int:
        return sum(m.active_connections() for _, m in self.masked_modules())

    def dense_connections(self) -> int:
        """Connections of the current layers if they were dense (skips excluded)."""
        return sum(layer.in_features * layer.out_features for layer in self.layers)

    def set_input_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Standardisation of the raw input: ``(x - mean) / std`` per feature (std floored at 1e-3)."""
        self.input_mean.copy_(mean.to(self.input_mean))
        self.input_std.copy_(std.clamp_min(1e-3).to(self.input_std))

    @torch.no_grad()
    def fit_input_stats(self, x: torch.Tensor) -> None:
        """Set the standardisation from training inputs (N, in_dim)."""
        self.set_input_stats(x.mean(0), x.std(0))

    # ---------------------------------------------------------------- forward
    def activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[a_0, a_1, ..., a_L, logits]``: the standardised input, every hidden activation and the output."""
        acts = [(x - self.input_mean) / self.input_std]  # (B, in_dim)
        into: dict[int, list[tuple[int, MaskedLinear]]] = {}
        for key, skip in self.skips.items():
            src, dst = (int(i) for i in key.split("_"))
            into.setdefault(dst, []).append((src, skip))
        last = len(self.layers) - 1
        for k, layer in enumerate(self.layers):
            z = layer(acts[k])
            for src, skip in into.get(k, []):
                z = z + skip(acts[src])
            acts.append(z if k == last else F.relu(z))
        return acts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activations(x)[-1]  # (B, in_dim) -> (B, out_dim)

    # ---------------------------------------------------------------- extrema
    @torch.no_grad()
    def extrema(self, x: torch.Tensor, saturation_factor: float = 4.0) -> list[LayerExtrema]:
        """Dead and saturated neurons of every hidden activation on the batch ``x``.

        Dead: the unit is zero on every sample of the batch (ReLU never fires). Saturated: the unit fires on at
        least 99 % of the samples and its mean activation exceeds ``saturation_factor`` times the mean over the
        layer's live units: an always-on unit carrying far more than its share, the ReLU analogue of a
        saturated sigmoid.
        """
        acts = self.activations(x)
        found = []
        for h in range(1, len(self.layers)):
            a = acts[h]  # (B, width)
            share = (a > 0).float().mean(0)
            mean = a.mean(0)
            alive = share > 0
            typical = mean[alive].mean() if bool(alive.any()) else mean.new_tensor(0.0)
            saturated = (share >= 0.99) & (mean > saturation_factor * typical) & alive
            found.append(
                LayerExtrema(
                    activation=h,
                    dead=torch.nonzero(~alive).flatten().tolist(),
                    saturated=torch.nonzero(saturated).flatten().tolist(),
                    active_share=share,
                    mean_activation=mean,
                )
            )
        return found

    # ---------------------------------------------------------------- growth actions
    @torch.no_grad()
    def embed_patch(self, layer: int, rows: Sequence[int], cols: Sequence[int], init_std: float) -> torch.Tensor:
        """Make ``layers[layer]`` dense on the block ``rows x cols``; returns the new connections' mask.

        Connections the scaffold already has are left alone; the new ones go to the patch weight, initialised
        ``N(0, init_std^2)``.
        """
        target = self.layers[layer]
        target.enable_patches()
        block = torch.zeros_like(target.mask, dtype=torch.bool)
        block[torch.as_tensor(list(rows)).view(-1, 1), torch.as_tensor(list(cols)).view(1, -1)] = True
        new = block & ~target.live_mask()
        target.patch_mask[new] = 1.0
        target.patch_weight[new] = torch.randn(int(new.sum()), device=new.device) * init_std
        return new

    @torch.no_grad()
    def insert_layer(self, after: int, units: Sequence[int] | None = None) -> int:
        """Insert a sparse layer after hidden activation ``a_after`` (1..L); returns its index (``after``).

        The new layer has the width of ``a_after`` and starts as the identity on ``units`` (default: all), with
        zero bias: since ``a_after >= 0``, ``relu(I a) = a`` and the network computes the same function. Skips,
        patched and grown indices are renumbered.
        """
        if not 1 <= after <= len(self.layers) - 1:
            raise ValueError(f"insert after a hidden activation 1..{len(self.layers) - 1}, got {after}")
        width = self._width(after)
        units = list(range(width)) if units is None else list(units)
        new = MaskedLinear(width, width, 0.0).to(self.layers[0].weight.device)
        new.mask.zero_()
        new.weight.zero_()
        idx = torch.as_tensor(units, dtype=torch.long)
        new.mask[idx, idx] = 1.0
        new.weight[idx, idx] = 1.0
        layers = list(self.layers)
        layers.insert(after, new)
        self.layers = nn.ModuleList(layers)
        skips = {}
        for key, skip in self.skips.items():
            src, dst = (int(i) for i in key.split("_"))
            skips[f"{src + 1 if src > after else src}_{dst + 1 if dst >= after else dst}"] = skip
        self.skips = nn.ModuleDict(skips)
        self.grown = sorted([k + 1 if k >= after else k for k in self.grown] + [after])
        return after

    @torch.no_grad()
    def add_skip(self, src: int, dst: int, mask: torch.Tensor) -> MaskedLinear:
        """A skip from activation ``a_src`` into ``layers[dst]``'s pre-activation on the connections in ``mask``
        (out, in), zero-initialised so the function is unchanged until training moves it."""
        skip = self._new_skip(src, dst)
        skip.mask.copy_(mask.to(skip.mask).float())
        return skip

    @torch.no_grad()
    def prune_to_budget(self, protected: dict[str, torch.Tensor] | None = None, max_share: float = 0.3) -> int:
        """Remove the weakest connections until at most ``budget`` remain; returns how many were removed.

        Strength is ``|w|`` over the root-mean-square of the live weights of the same matrix, so matrices at
        different scales compete fairly. Three passes, each only if the budget is still exceeded: (1) among the
        connections not in ``protected`` (name -> bool mask, as :meth:`masked_modules` names them), at most
        ``max_share`` of any one matrix; (2) the same cap, protected connections included; (3) no cap. The cap
        keeps a small matrix (the readout of a very sparse network) from being wiped out by one event; no
        matrix ever loses its last connection, so the budget holds whenever it is at least the number of
        matrices.
        """
        removed = 0
        for keep_protected, share in ((True, max_share), (False, max_share), (False, 1.0)):
            excess = self.active_connections() - self.budget
            if excess <= 0:
                break
            removed += self._prune_weakest(excess, protected if keep_protected else None, share)
        return removed

    def _prune_weakest(self, n: int, protected: dict[str, torch.Tensor] | None, share: float) -> int:
        """Remove up to ``n`` of the weakest unprotected connections, at most ``share`` of each matrix."""
        protected = protected or {}
        candidates: list[tuple[float, int, int]] = []  # (score, matrix, flat position)
        modules = []
        allowance = []
        for j, (name, module) in enumerate(self.masked_modules()):
            live = module.live_mask()
            count = int(live.sum())
            modules.append(module)
            allowance.append(min(count - 1, math.floor(share * count)) if share < 1.0 else count - 1)
            w = module.effective_weight().abs()
            rms = w[live].pow(2).mean().sqrt().clamp_min(1e-12) if count else w.new_tensor(1.0)
            usable = live & ~protected[name].to(live.device) if name in protected else live
            positions = torch.nonzero(usable.flatten()).flatten()
            scores = (w.flatten()[positions] / rms).tolist()
            candidates += zip(scores, [j] * len(positions), positions.tolist(), strict=True)
        candidates.sort()
        removed = 0
        for _, j, pos in candidates:
            if removed >= n:
                break
            if allowance[j] <= 0:
                continue
            module = modules[j]
            r, c = divmod(pos, module.in_features)
            module.mask[r, c] = 0.0
            if module.patch_weight is not None:
                module.patch_mask[r, c] = 0.0
            allowance[j] -= 1
            removed += 1
        return removed


def _create_structurenet(**kwargs) -> StructureNet:
    return StructureNet(**kwargs)


_DIGITS_INPUT = (TensorSpec("x", (64,), description="an 8x8 grey-level image (0..16), flattened"),)


@register_model(
    "structurenet",
    family="structurenet",
    task="image classification (8x8 digits)",
    inputs=_DIGITS_INPUT,
    research_note="StructureNet: growing sparse networks (extrema, patches, layers, skips, credits)",
)
def structurenet(**kwargs) -> StructureNet:
    """Sparse scaffold 64 -> 256 -> 256 -> 10 keeping 2 % of its connections, grown during training."""
    return _create_structurenet(**kwargs)
