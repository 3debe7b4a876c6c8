"""Growth of a StructureNet during training, as a callback of the shared engine (no second training loop).

Every ``check_every`` optimizer steps the callback looks at the network on the batch it just trained on and
may grow it. What it can do is defined on the model (``zoo/models/structurenet.py``); *when* and *where* is
decided here:

- **Triggers.** Patches need the share of extreme (dead or saturated) hidden units to reach
  ``extrema_trigger``; a highway skip needs one hidden layer with at least ``skip_dead_share`` dead units; a
  new layer needs a gradient-variance spike: the short-term variance of the gradient norm (what the engine
  logs as ``grad_norm`` each step) above ``spike_factor`` times its long-term variance.
- **Credit economy.** Every correct training prediction earns ``credit_per_correct`` credits (capped at
  ``max_credits``); every action costs credits (``cost_patch``, ``cost_skip``, ``cost_layer``) and is only
  taken when they are there. A network that predicts little earns slowly, so growth cannot run away; on top
  of that ``max_events`` bounds the number of growth events and pruning keeps the connection count constant.
- **Where.** A patch goes around an extreme unit (saturated units first, then dead ones): the rows are a
  window of ``patch_size`` units around it, the columns the most variable units feeding its layer (where the
  signal is), plus an outgoing patch into the next layer's units with the largest loss gradient. A new layer
  goes after the bottleneck: the hidden activation whose producing layer has the largest loss gradient per
  live connection. A highway skip is built from the dead units of the layer it bypasses.
- **After an event.** The weakest old connections are pruned back to the budget (connections younger than
  ``protect_steps`` are kept), the optimizer is rebuilt with differential learning rates (slow scaffold,
  faster patches and new components, each new component warmed up linearly over ``warmup_steps``; Adam's
  moments of unchanged tensors are carried over), the trainer's ``model_config`` records the new structure,
  and a snapshot ``growth/event-NNN.pt`` is written to the run folder.

Growth changes the model's structure, which DistributedDataParallel cannot follow: it runs in one process.
A resumed run restores the credits, the events and the spike detector (the callback's state in the checkpoint);
the warm-up of recent components and the protection of recent connections restart clean.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from training.checkpoint import save_checkpoint
from training.tasks.base import Batch, Callback
from zoo.models.structurenet import LayerExtrema, MaskedLinear, StructureNet

if TYPE_CHECKING:
    from training.trainer import Trainer


@dataclass
class GrowthConfig:
    """Knobs of the growth policy (see the module docstring). Validated on construction."""

    check_every: int = 40
    saturation_factor: float = 4.0
    extrema_trigger: float = 0.25
    patch_size: int = 8
    patches_per_event: int = 2
    skip_dead_share: float = 0.5
    spike_factor: float = 3.0
    spike_warmup: int = 50
    max_hidden_layers: int = 4
    credit_per_correct: float = 0.05
    initial_credits: float = 20.0
    max_credits: float = 100.0
    cost_patch: float = 10.0
    cost_skip: float = 30.0
    cost_layer: float = 60.0
    max_events: int = 60
    scaffold_lr_scale: float = 1.0
    patch_lr_scale: float = 3.0
    new_lr_scale: float = 3.0
    warmup_steps: int = 100
    protect_steps: int = 200
    max_event_share: float = 0.2
    actions: tuple[str, ...] = ("patch", "skip", "layer")
    snapshots: bool = True

    def __post_init__(self) -> None:
        for name in ("check_every", "patch_size", "max_hidden_layers", "warmup_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"growth `{name}` must be at least 1, got {getattr(self, name)}")
        for name in ("extrema_trigger", "skip_dead_share", "max_event_share"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"growth `{name}` must be in (0, 1], got {getattr(self, name)}")
        unknown = set(self.actions) - {"patch", "skip", "layer"}
        if unknown:
            raise ValueError(f"unknown growth actions {sorted(unknown)}; choose from patch, skip, layer")
        if self.max_events < 0 or self.patches_per_event < 0:
            raise ValueError("growth `max_events` and `patches_per_event` must be 0 or more")


class GradientSpikeDetector:
    """Flags a spike when the short-term variance of a signal exceeds ``factor`` times its long-term variance.

    Both variances are exponential moving averages of the squared deviation from the long-term mean; nothing
    is flagged during the first ``warmup`` updates (after a reset as well).
    """

    def __init__(self, factor: float, short: float = 0.8, long: float = 0.98, warmup: int = 50) -> None:
        self.factor, self.short, self.long, self.warmup = factor, short, long, warmup
        self.reset()

    def reset(self) -> None:
        self.n, self.mean, self.var_short, self.var_long = 0, 0.0, 0.0, 0.0

    def update(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        self.n += 1
        if self.n == 1:
            self.mean = value
            return False
        dev2 = (value - self.mean) ** 2
        self.mean = self.long * self.mean + (1 - self.long) * value
        self.var_short = self.short * self.var_short + (1 - self.short) * dev2
        self.var_long = self.long * self.var_long + (1 - self.long) * dev2
        return self.n > self.warmup and self.var_short > self.factor * max(self.var_long, 1e-12)

    def state_dict(self) -> dict[str, float]:
        return {"n": self.n, "mean": self.mean, "var_short": self.var_short, "var_long": self.var_long}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.n, self.mean = int(state["n"]), float(state["mean"])
        self.var_short, self.var_long = float(state["var_short"]), float(state["var_long"])


def param_groups(model: StructureNet, lr: float, cfg: GrowthConfig | None) -> list[dict[str, Any]]:
    """Optimizer groups of a StructureNet: ``scaffold`` (original layers), ``patch:layers.k`` (patch weights)
    and ``grown:<module>`` (inserted layers and skips). Names follow the structure alone, so a resumed run
    rebuilds the same groups as the checkpointed optimizer."""
    scaffold_scale = cfg.scaffold_lr_scale if cfg else 1.0
    patch_scale = cfg.patch_lr_scale if cfg else 1.0
    new_scale = cfg.new_lr_scale if cfg else 1.0
    scaffold: list[nn.Parameter] = []
    groups: list[dict[str, Any]] = []
    for name, module in model.masked_modules():
        own = [p for p in (module.weight, module.bias) if p is not None]
        grown = name.startswith("skips.") or int(name.split(".")[1]) in model.grown
        if grown:
            groups.append({"params": own, "lr": lr * new_scale, "name": f"grown:{name}"})
        else:
            scaffold.extend(own)
        if module.patch_weight is not None:
            groups.append({"params": [module.patch_weight], "lr": lr * patch_scale, "name": f"patch:{name}"})
    return [{"params": scaffold, "lr": lr * scaffold_scale, "name": "scaffold"}, *groups]


@dataclass
class _Growth:
    """One growth check: what it measured on the batch, the room left for new connections, and what its
    actions added so far."""

    model: StructureNet
    step: int
    x: torch.Tensor
    y: torch.Tensor
    extrema: list[LayerExtrema]
    variance: list[torch.Tensor]
    act_grads: list[torch.Tensor]
    pressure: list[float]
    room: int
    actions: list[dict[str, Any]] = field(default_factory=list)
    new_masks: dict[nn.Module, torch.Tensor] = field(default_factory=dict)


class GrowthCallback(Callback):
    """Grows a StructureNet during training (see the module docstring); ``events`` lists what it did."""

    def __init__(self, cfg: GrowthConfig) -> None:
        self.cfg = cfg
        self.credits = cfg.initial_credits
        self.events: list[dict[str, Any]] = []
        self.spikes = GradientSpikeDetector(cfg.spike_factor, warmup=cfg.spike_warmup)
        self.spike_seen = False
        self._quiet_until = 0
        # Growth-time bookkeeping keyed by module object (names change when a layer is inserted).
        self._born: dict[tuple[nn.Module, str], int] = {}
        self._protected: list[tuple[nn.Module, torch.Tensor, int]] = []  # (module, new connections, until step)

    # ------------------------------------------------------------- engine hooks
    def on_train_start(self, trainer: Trainer) -> None:
        if trainer.env.ddp:
            raise ValueError(
                "structurenet growth changes the model's structure, which DDP cannot follow: use --nproc 1"
            )
        if not isinstance(trainer.raw_model, StructureNet):
            raise ValueError(f"GrowthCallback needs a StructureNet, got {type(trainer.raw_model).__name__}")

    def on_step_end(self, trainer: Trainer, batch: Batch, logs: dict[str, float]) -> None:
        cfg = self.cfg
        self.credits = min(cfg.max_credits, self.credits + cfg.credit_per_correct * logs.get("correct", 0.0))
        spike = self.spikes.update(logs.get("grad_norm", float("nan")))
        self.spike_seen |= spike and trainer.step > self._quiet_until
        if trainer.step % cfg.check_every == 0 and len(self.events) < cfg.max_events:
            self.maybe_grow(trainer, batch)
        self._apply_warmup(trainer)  # after the scheduler (and any rebuild) set this step's rates

    def state_dict(self) -> dict[str, Any]:
        return {
            "credits": self.credits,
            "events": self.events,
            "spikes": self.spikes.state_dict(),
            "spike_seen": self.spike_seen,
            "config": {**asdict(self.cfg), "actions": list(self.cfg.actions)},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.credits = float(state["credits"])
        self.events = list(state["events"])
        self.spikes.load_state_dict(state["spikes"])
        self.spike_seen = bool(state["spike_seen"])

    # ------------------------------------------------------------- the policy
    def maybe_grow(self, trainer: Trainer, batch: Batch) -> dict[str, Any] | None:
        """Look at the network on ``batch`` and take the growth actions that are triggered and paid for."""
        model: StructureNet = trainer.raw_model
        cfg, step = self.cfg, trainer.step
        x, y = batch["x"], batch["y"]
        # New connections this event may add: a share of the budget that anneals to zero over training
        # (cosine, as RigL anneals its drop fraction), so the structure settles before training ends.
        progress = min(step / max(trainer.total_steps, 1), 1.0)
        room = int(cfg.max_event_share * model.budget * 0.5 * (1 + math.cos(math.pi * progress)))
        variance, act_grads, pressure = self._measure(model, x, y)
        event = _Growth(model, step, x, y, model.extrema(x, cfg.saturation_factor), variance, act_grads, pressure, room)
        credits_before = self.credits
        if "skip" in cfg.actions:
            self._grow_skip(event)
        if "layer" in cfg.actions:
            self._grow_layer(event)
        if "patch" in cfg.actions:
            self._grow_patches(event)
        if not event.actions:
            return None
        return self._settle(trainer, event, credits_before)

    def _grow_skip(self, g: _Growth) -> None:
        """A highway around the first layer whose output is mostly dead (one per event)."""
        cfg, model = self.cfg, g.model
        for ex in g.extrema:
            h = ex.activation
            if len(ex.dead) / len(ex.active_share) < cfg.skip_dead_share or f"{h - 1}_{h}" in model.skips:
                continue
            if self.credits < cfg.cost_skip:
                return
            mask = self._highway_mask(model, ex, limit=g.room // 2)
            if mask is None:
                continue
            skip = model.add_skip(h - 1, h, mask)
            self._repurpose_dead(model, ex)
            g.new_masks[skip] = skip.mask > 0
            self._born[(skip, "own")] = g.step
            self.credits -= cfg.cost_skip
            g.room -= int(mask.sum())
            g.actions.append({"action": "skip", "src": h - 1, "dst": h, "connections": int(mask.sum())})
            return

    def _grow_layer(self, g: _Growth) -> None:
        """A new layer after the bottleneck when the gradient variance spiked. Its identity must carry every live
        unit (one connection each) so the function is unchanged: only when the room allows it."""
        cfg, model = self.cfg, g.model
        if not self.spike_seen or len(model.hidden) >= cfg.max_hidden_layers:
            return
        after = 1 + int(torch.argmax(torch.tensor(g.pressure[:-1])))  # hidden activation a_after
        live = torch.nonzero(g.extrema[after - 1].active_share > 0).flatten().tolist()
        if self.credits < cfg.cost_layer or not 0 < len(live) < g.room:
            return
        index = model.insert_layer(after, units=live)
        layer = model.layers[index]
        self._seed_connections(layer, n=min(len(live), g.room - len(live)))
        g.new_masks[layer] = layer.live_mask()
        self._born[(layer, "own")] = g.step
        self.credits -= cfg.cost_layer
        added = layer.active_connections()
        g.room -= added
        self.spike_seen = False
        g.actions.append({"action": "layer", "after": after, "width": layer.out_features, "connections": added})
        g.extrema = model.extrema(g.x, cfg.saturation_factor)  # the structure changed: measure again
        g.variance, g.act_grads, _ = self._measure(model, g.x, g.y)

    def _grow_patches(self, g: _Growth) -> None:
        """Dense patches around extreme units, as large as the room left allows (2 to patch_size wide)."""
        cfg = self.cfg
        n_hidden = sum(len(ex.active_share) for ex in g.extrema)
        n_extreme = sum(ex.count for ex in g.extrema)
        if not n_hidden or n_extreme / n_hidden < cfg.extrema_trigger:
            return
        sites = self._patch_sites(g.extrema)[: cfg.patches_per_event]
        size = min(cfg.patch_size, math.isqrt(max(g.room, 0) // max(2 * len(sites), 1)))
        for h, unit, kind in sites if size >= 2 else []:
            if self.credits < cfg.cost_patch:
                return
            added = self._patch(g.model, h, unit, size, g.variance, g.act_grads, g.new_masks, g.step)
            self.credits -= cfg.cost_patch
            g.actions.append(
                {"action": "patch", "activation": h, "unit": unit, "extremum": kind, "size": size}
                | {"connections": added}
            )

    def _settle(self, trainer: Trainer, g: _Growth, credits_before: float) -> dict[str, Any]:
        """After the actions: prune back to the budget (sparing young connections), record the event, rebuild
        the optimizer."""
        cfg, model, step = self.cfg, g.model, g.step
        # Connections born in the last protect_steps are pruned only if the budget cannot be met otherwise.
        self._protected = [(m, mask, until) for m, mask, until in self._protected if until > step]
        self._protected += [(m, mask, step + cfg.protect_steps) for m, mask in g.new_masks.items()]
        protected: dict[str, torch.Tensor] = {}
        for name, module in model.masked_modules():
            for m, mask, _ in self._protected:
                if m is module:
                    protected[name] = protected.get(name, torch.zeros_like(mask)) | mask
        pruned = model.prune_to_budget(protected)
        self._quiet_until = step + cfg.check_every // 2  # the step right after a change is not a spike
        event = {
            "index": len(self.events),
            "step": step,
            "actions": g.actions,
            "credits_before": round(credits_before, 3),
            "credits_after": round(self.credits, 3),
            "extreme_units": sum(ex.count for ex in g.extrema),
            "pruned": pruned,
            "active_connections": model.active_connections(),
            "structure": model.structure_config(),
        }
        self.events.append(event)
        self._after_structure_change(trainer, event)
        return event

    # ------------------------------------------------------------- measurements
    @staticmethod
    def _measure(
        model: StructureNet, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[float]]:
        """On the batch, indexed by activation (``a_0`` input .. ``a_{L+1}`` logits): each unit's variance and
        mean |dL/da|; and per layer the loss gradient's mean magnitude per live connection. Uses
        ``autograd.grad``, so the parameters' ``.grad`` stay untouched."""
        with torch.enable_grad():
            acts = model.activations(x)
            loss = F.cross_entropy(acts[-1], y)
            weights = [layer.weight for layer in model.layers]
            grads = torch.autograd.grad(loss, acts[1:] + weights, allow_unused=True)
        n = len(acts) - 1
        variance = [a.detach().var(0) if len(a) > 1 else torch.zeros_like(a[0]) for a in acts]
        act_grads = [torch.zeros_like(acts[0][0])]
        for g, a in zip(grads[:n], acts[1:], strict=True):
            act_grads.append(g.abs().mean(0) if g is not None else torch.zeros_like(a[0]))
        pressure = []
        for layer, g in zip(model.layers, grads[n:], strict=True):
            live = layer.mask > 0
            pressure.append(float(g[live].abs().mean()) if g is not None and bool(live.any()) else 0.0)
        return variance, act_grads, pressure

    @staticmethod
    def _patch_sites(extrema: list[LayerExtrema]) -> list[tuple[int, int, str]]:
        """(activation, unit, kind) of the extreme units: saturated first, then dead ones in random order with
        the layers interleaved, so one layer does not take every patch."""
        saturated = [(ex.activation, u, "saturated") for ex in extrema for u in ex.saturated]
        shuffled = [[ex.dead[i] for i in torch.randperm(len(ex.dead)).tolist()] for ex in extrema]
        dead = []
        for i in range(max((len(units) for units in shuffled), default=0)):
            dead += [(ex.activation, u[i], "dead") for ex, u in zip(extrema, shuffled, strict=True) if i < len(u)]
        return saturated + dead

    # ------------------------------------------------------------- actions
    def _patch(
        self,
        model: StructureNet,
        h: int,
        unit: int,
        size: int,
        variance: list[torch.Tensor],
        act_grads: list[torch.Tensor],
        new_masks: dict[nn.Module, torch.Tensor],
        step: int,
    ) -> int:
        """A dense ``size x size`` incoming patch on ``layers[h-1]`` around ``unit`` and an outgoing one on
        ``layers[h]``.

        Incoming: rows are a window of ``size`` units around ``unit``, columns are units of ``a_{h-1}``
        drawn with probability proportional to their variance on the batch (where the signal is). Outgoing:
        rows are units of the next activation drawn in proportion to their loss gradient (where the loss
        needs change), columns the window.
        """
        p = size
        layer_in, layer_out = model.layers[h - 1], model.layers[h]
        rows = _window(unit, p, layer_in.out_features)
        cols = _draw(variance[h - 1], p)
        new_in = model.embed_patch(h - 1, rows, cols, math.sqrt(2.0 / len(cols)) * 0.5)
        out_rows = _draw(act_grads[h + 1], p)
        new_out = model.embed_patch(h, out_rows, rows, math.sqrt(1.0 / len(rows)) * 0.5)
        for module, new in ((layer_in, new_in), (layer_out, new_out)):
            new_masks[module] = new_masks.get(module, torch.zeros_like(new)) | new
            self._born[(module, "patch")] = step
        return int(new_in.sum() + new_out.sum())

    @staticmethod
    def _highway_mask(model: StructureNet, ex: LayerExtrema, limit: int) -> torch.Tensor | None:
        """Mask (width of a_h's consumer, width of a_{h-1}) routing each dead unit's fan-in to its fan-out, with
        at most ``limit`` connections (dead units are taken in order until the next one would not fit)."""
        h = ex.activation
        producer, consumer = model.layers[h - 1], model.layers[h]
        fan_in, fan_out = producer.live_mask(), consumer.live_mask()
        mask = torch.zeros(consumer.out_features, producer.in_features, dtype=torch.bool, device=fan_in.device)
        for unit in ex.dead:
            sources, targets = fan_in[unit], fan_out[:, unit]
            if not bool(sources.any()) or not bool(targets.any()):
                continue
            grown = mask | (targets.view(-1, 1) & sources.view(1, -1))
            if int(grown.sum()) > limit:
                break
            mask = grown
        return mask.float() if bool(mask.any()) else None

    @staticmethod
    @torch.no_grad()
    def _repurpose_dead(model: StructureNet, ex: LayerExtrema) -> None:
        """Remove the dead units' own connections: the highway has taken over their role."""
        h = ex.activation
        dead = torch.as_tensor(ex.dead, dtype=torch.long)
        for layer, axis in ((model.layers[h - 1], 0), (model.layers[h], 1)):
            for mask in (layer.mask, getattr(layer, "patch_mask", None)):
                if mask is not None:
                    mask.index_fill_(axis, dead.to(mask.device), 0.0)

    @staticmethod
    @torch.no_grad()
    def _seed_connections(layer: MaskedLinear, n: int) -> None:
        """Random extra connections of a new layer beside its identity, small so the function barely moves."""
        free = torch.nonzero(layer.mask.flatten() == 0).flatten()
        pick = free[torch.randperm(len(free), device=free.device)[:n]]
        layer.mask.view(-1)[pick] = 1.0
        layer.weight.view(-1)[pick] = torch.randn(len(pick), device=pick.device) * 0.01

    # ------------------------------------------------------------- bookkeeping
    def _after_structure_change(self, trainer: Trainer, event: dict[str, Any]) -> None:
        """New optimizer (keeping Adam's moments of unchanged tensors), recorded config, snapshot, log."""
        old = trainer.optimizer
        with warnings.catch_warnings():
            # The rebuilt schedule is fast-forwarded before the new optimizer's first step; that is intended.
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
            trainer.rebuild_optimizer()
        for group in trainer.optimizer.param_groups:
            for p in group["params"]:
                if p in old.state:
                    trainer.optimizer.state[p] = old.state[p]
        trainer.model_config = {**trainer.model_config, **trainer.raw_model.structure_config()}
        if trainer.logger is not None:
            trainer.logger.event({"kind_detail": "growth", **event})
        if self.cfg.snapshots and trainer.run_dir is not None:
            save_checkpoint(
                trainer.run_dir / "growth" / f"event-{event['index']:03d}.pt",
                {
                    "model_name": trainer.cfg.model,
                    "model_config": trainer.model_config,
                    "model": trainer.raw_model.state_dict(),
                    "step": trainer.step,
                    "event": event,
                },
            )

    def _apply_warmup(self, trainer: Trainer) -> None:
        """Scale the learning rate of components younger than ``warmup_steps`` linearly from 0 to their rate."""
        model: StructureNet = trainer.raw_model
        for group in trainer.optimizer.param_groups:
            kind, _, name = group.get("name", "").partition(":")
            if kind not in ("grown", "patch"):
                continue
            born = self._born.get((model.get_submodule(name), "own" if kind == "grown" else "patch"))
            if born is not None:
                group["lr"] *= min(1.0, (trainer.step - born + 1) / self.cfg.warmup_steps)


def _window(center: int, size: int, length: int) -> list[int]:
    """``size`` consecutive indices around ``center``, shifted to stay inside ``range(length)``."""
    size = min(size, length)
    start = min(max(center - size // 2, 0), length - size)
    return list(range(start, start + size))


def _draw(weights: torch.Tensor, k: int) -> list[int]:
    """``k`` distinct indices drawn with probability proportional to ``weights`` (uniform where all are 0)."""
    w = weights.detach().float().clamp_min(0) + 1e-8
    return torch.multinomial(w, min(k, len(w)), replacement=False).tolist()
