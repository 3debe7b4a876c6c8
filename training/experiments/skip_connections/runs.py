"""The skip-connection note's runs, with fixed seeds: gradient flow at initialisation, learning the identity, the
variants' sizes and the highway gate. Every network is a registered one (``zoo.create_model``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The note's figures, to print beside ours.
NOTE_RATIOS = {
    "plain": {5: 0.80, 10: 0.69, 20: 0.77, 50: 0.66, 100: 1.70},
    "residual": {5: 0.99, 10: 0.77, 20: 0.61, 50: 0.83, 100: 0.60},
}
NOTE_VARIANTS = {"residual": (2048, 32), "dense": (3584, 96), "highway": (2048, 32)}
NOTE_GATE_MEAN = 0.154


@dataclass(frozen=True)
class Settings:
    """Sizes of one run; ``quick`` shrinks seeds and steps, never the depths."""

    grad_depths: tuple[int, ...] = (5, 10, 20, 50, 100)
    grad_seeds: int = 10
    grad_batch: int = 256
    identity_depths: tuple[int, ...] = (2, 5, 10, 20)
    identity_seeds: int = 3
    steps: int = 1000
    eval_every: int = 25
    batch: int = 128
    lr: float = 1e-3
    eval_size: int = 4096
    gate_seeds: int = 3

    @classmethod
    def quick(cls) -> Settings:
        return cls(grad_seeds=2, identity_seeds=1, steps=60, eval_every=20, eval_size=512, gate_seeds=1)


# ---------------------------------------------------------------- 1. gradient flow


def gradient_flow(variant: str, depth: int, seed: int, batch: int, init: str = "default") -> dict[str, Any]:
    """One backward pass of the identity loss at initialisation: weight-gradient norm of every linear layer
    (input to output), and the norms of dL/d(input) and dL/d(output).

    ``init`` is "default" (PyTorch's Linear initialisation, as registered) or "he" (Kaiming-normal, fan-in,
    ReLU gain). Computed in float64: a plain network's gradients at depth 50 and 100 are far below float32's
    smallest number and would read as exactly zero."""
    import torch
    import torch.nn.functional as F

    import zoo

    torch.manual_seed(seed)
    model = zoo.create_model(f"{variant}-mlp", depth=depth).double()
    if init == "he":
        for layer in model.linear_layers():
            torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
    elif init != "default":
        raise ValueError(f"unknown init {init!r}; use 'default' or 'he'")
    g = torch.Generator().manual_seed(10_000 + seed)
    x = torch.randn(batch, 32, generator=g, dtype=torch.float64).requires_grad_(True)
    out = model(x)
    loss = F.mse_loss(out, x.detach())
    g_in, g_out = torch.autograd.grad(loss, [x, out], retain_graph=True)
    loss.backward()
    norms = [float(layer.weight.grad.norm()) for layer in model.linear_layers()]
    return {
        "layer_norms": norms,
        "ratio": norms[0] / norms[-1],
        "input_grad": float(g_in.norm()),
        "output_grad": float(g_out.norm()),
        "output_std": float(out.detach().std()),
    }


# ---------------------------------------------------------------- 2. learning the identity and 3. the gate


def _adam_run(model, sample, x_eval, y_eval, settings: Settings, track=None) -> dict[str, list[float]]:
    """Adam on ``sample(step) -> (x, y)`` batches; evaluation MSE (and ``track(model)``, e.g. the mean gate)
    at step 0 and every ``eval_every`` steps."""
    import torch
    import torch.nn.functional as F

    opt = torch.optim.Adam(model.parameters(), lr=settings.lr)
    curve: dict[str, list[float]] = {"step": [], "mse": [], "tracked": []}

    def evaluate(step: int) -> None:
        with torch.no_grad():
            curve["step"].append(step)
            curve["mse"].append(float(F.mse_loss(model(x_eval), y_eval)))
            if track is not None:
                curve["tracked"].append(float(track(model)))

    evaluate(0)
    for step in range(1, settings.steps + 1):
        x, y = sample(step)
        loss = F.mse_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % settings.eval_every == 0 or step == settings.steps:
            evaluate(step)
    return curve


def _identity_sampler(settings: Settings, g):
    import torch

    def sample(_step: int):
        x = torch.randn(settings.batch, 32, generator=g)
        return x, x

    return sample


def identity_run(variant: str, depth: int, seed: int, settings: Settings, bias: bool = False) -> dict[str, Any]:
    """Train ``{variant}-mlp`` to output its input; the MSE curve on a fixed evaluation set."""
    import torch

    import zoo

    torch.manual_seed(seed)
    model = zoo.create_model(f"{variant}-mlp", depth=depth, bias=bias)
    g = torch.Generator().manual_seed(20_000 + seed)
    x_eval = torch.randn(settings.eval_size, 32, generator=g)
    curve = _adam_run(model, _identity_sampler(settings, g), x_eval, x_eval, settings)
    return {"step": curve["step"], "mse": curve["mse"]}


def highway_gate_run(task: str, seed: int, settings: Settings, bias: bool = False, depth: int = 1) -> dict[str, Any]:
    """Train a highway MLP on the identity or on the skip task's random teacher (with a linear readout, as
    ``zoo train highway-mlp`` does); the mean transform gate on the evaluation set over training."""
    import torch

    import zoo
    from training.tasks.skip import make_teacher_data

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(30_000 + seed)
    if task == "identity":
        model = zoo.create_model("highway-mlp", depth=depth, bias=bias)
        x_eval = y_eval = torch.randn(settings.eval_size, 32, generator=g)
        sample = _identity_sampler(settings, g)
    else:
        model = zoo.create_model("highway-mlp", depth=depth, bias=bias, out_dim=32)
        x_tr, y_tr, x_eval, y_eval = make_teacher_data(seed, n_train=8192, n_val=settings.eval_size)

        def sample(_step: int):
            idx = torch.randint(0, len(x_tr), (settings.batch,), generator=g)
            return x_tr[idx], y_tr[idx]

    curve = _adam_run(model, sample, x_eval, y_eval, settings, track=lambda m: m.gate_means(x_eval).mean())
    return {"step": curve["step"], "mse": curve["mse"], "gate": curve["tracked"]}


def variant_table() -> list[dict[str, Any]]:
    """Parameters and output dimension: the note's configuration and the registered defaults."""
    import zoo

    rows = []
    configs = [
        ("residual", {"depth": 1}, "note: 1 block"),
        ("dense", {"depth": 4, "growth": 16}, "note: 4 layers, growth 16"),
        ("highway", {"depth": 1}, "note: 1 block"),
    ] + [(v, {}, "registered default (depth 4)") for v in ("plain", "residual", "dense", "highway")]
    for variant, overrides, label in configs:
        model = zoo.create_model(f"{variant}-mlp", **overrides)
        note = NOTE_VARIANTS.get(variant) if label.startswith("note") else None
        rows.append(
            {
                "variant": variant,
                "config": label,
                "overrides": overrides,
                "params": sum(p.numel() for p in model.parameters()),
                "out_dim": model.out_dim,
                "note_params": note[0] if note else None,
                "note_out_dim": note[1] if note else None,
            }
        )
    return rows


# ---------------------------------------------------------------- running everything


def run_all(settings: Settings, progress=None) -> dict[str, Any]:
    """Every run of the three experiments; ``progress(n)`` is called after each run (for a progress bar)."""
    tick = progress or (lambda _n=1: None)
    grad: dict[str, Any] = {}
    for init in ("default", "he"):
        for variant in ("plain", "residual"):
            for depth in settings.grad_depths:
                runs = [gradient_flow(variant, depth, s, settings.grad_batch, init) for s in range(settings.grad_seeds)]
                grad.setdefault(init, {}).setdefault(variant, {})[str(depth)] = runs
                tick(1)
    identity: dict[str, Any] = {}
    for bias in (False, True):
        for variant in ("plain", "residual"):
            for depth in settings.identity_depths:
                runs = []
                for seed in range(settings.identity_seeds):
                    runs.append(identity_run(variant, depth, seed, settings, bias=bias))
                    tick(1)
                identity.setdefault(f"bias={bias}", {}).setdefault(variant, {})[str(depth)] = runs
    gates: dict[str, Any] = {}
    for task in ("identity", "teacher"):
        for bias in (False, True):
            for depth in (1, 4):
                runs = []
                for seed in range(settings.gate_seeds):
                    runs.append(highway_gate_run(task, seed, settings, bias=bias, depth=depth))
                    tick(1)
                gates.setdefault(task, {})[f"bias={bias},depth={depth}"] = runs
    return {"gradient_flow": grad, "identity": identity, "highway_gate": gates, "variants": variant_table()}


def count_runs(settings: Settings) -> int:
    return (
        2 * 2 * len(settings.grad_depths)
        + 2 * 2 * len(settings.identity_depths) * settings.identity_seeds
        + (2 * 2 * 2 * settings.gate_seeds)
    )
