"""The plots of the skip-connection experiments (PNG): per-layer gradient norms, the gradient-norm ratio against
the note, the identity-learning curves and the highway gate during training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.experiments.skip_connections.runs import NOTE_GATE_MEAN, NOTE_RATIOS, Settings


def plot_gradient_flow(results: dict[str, Any], settings: Settings, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grad = results["gradient_flow"]
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(settings.grad_depths)))
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5), constrained_layout=True)
    for row, init in enumerate(("default", "he")):
        for col, variant in enumerate(("plain", "residual")):
            ax = axes[row, col]
            for color, d in zip(colors, settings.grad_depths, strict=True):
                norms = np.median([r["layer_norms"] for r in grad[init][variant][str(d)]], axis=0)
                ax.semilogy(np.arange(1, len(norms) + 1), norms, color=color, lw=1.6, label=f"depth {d}")
            ax.set_title(f"{variant}, {'PyTorch default' if init == 'default' else 'He (Kaiming)'} init")
            ax.set_xlabel("linear layer (input -> output), 2 per block")
            ax.set_ylabel("weight-gradient norm (median over seeds)")
            ax.grid(True, which="major", alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle("Per-layer gradient norms at initialisation, identity loss, width 32 (float64)")
    per_layer = out / "gradient_flow_per_layer.png"
    fig.savefig(per_layer, dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 5), constrained_layout=True)
    depths = np.array(settings.grad_depths)
    for variant, color in (("plain", "tab:red"), ("residual", "tab:blue")):
        for init, style, shift in (("default", "-", 0.97), ("he", ":", 1.03)):
            ratios = [[r["ratio"] for r in grad[init][variant][str(d)]] for d in depths]
            med = np.array([np.median(r) for r in ratios])
            err = np.array([[m - np.min(r), np.max(r) - m] for m, r in zip(med, ratios, strict=True)]).T
            label = f"{variant}, {'default' if init == 'default' else 'He'} init (median, min-max)"
            ax.errorbar(
                depths * shift,
                med,
                yerr=err,
                fmt="o" + style,
                color=color,
                capsize=3,
                label=label,
                alpha=1.0 if init == "default" else 0.5,
            )
        ax.plot(
            depths,
            [NOTE_RATIOS[variant][d] for d in depths],
            "x",
            color=color,
            ms=10,
            mew=2.5,
            label=f"{variant}, the note",
        )
    ax.axhline(1.0, color="gray", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")  # ratios are multiplicative: 0.5 and 2 sit equally far from 1
    ticks = [0.25, 0.5, 1, 2, 4, 8, 16, 32]
    ax.set_yticks(ticks, [str(t) for t in ticks])
    ax.minorticks_off()
    ax.set_xticks(depths, [str(d) for d in depths])
    ax.set_xlabel("depth (blocks)")
    ax.set_ylabel("first-layer / last-layer gradient norm")
    ax.set_title("Gradient-norm ratio: ours vs the note")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    ratio = out / "gradient_flow_ratio.png"
    fig.savefig(ratio, dpi=110)
    plt.close(fig)
    return [per_layer, ratio]


def _band(ax, curves: list[dict[str, list[float]]], key: str, color: str, style: str, label: str) -> None:
    import numpy as np

    steps = curves[0]["step"]
    values = np.array([c[key] for c in curves])
    ax.plot(steps, np.median(values, axis=0), style, color=color, lw=1.6, label=label)
    if len(curves) > 1:
        ax.fill_between(steps, values.min(axis=0), values.max(axis=0), color=color, alpha=0.15)


def plot_identity(results: dict[str, Any], settings: Settings, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    depths = settings.identity_depths
    fig, axes = plt.subplots(1, len(depths), figsize=(4 * len(depths), 4.2), sharey=True, constrained_layout=True)
    for ax, d in zip(axes, depths, strict=True):
        for bias, style in ((False, "-"), (True, "--")):
            block = results["identity"][f"bias={bias}"]
            for variant, color in (("plain", "tab:red"), ("residual", "tab:blue")):
                label = f"{variant}{', biases' if bias else ''}"
                _band(ax, block[variant][str(d)], "mse", color, style, label)
        ax.set_yscale("log")
        ax.set_title(f"depth {d} ({2 * d} layers)")
        ax.set_xlabel("Adam step")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("evaluation MSE to the identity")
    axes[0].legend(fontsize=8)
    fig.suptitle("Learning the identity, width 32 (median and min-max over seeds)")
    path = out / "identity_learning.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_gates(results: dict[str, Any], out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True, constrained_layout=True)
    styles = {
        "bias=False,depth=1": ("tab:gray", "-"),
        "bias=False,depth=4": ("tab:green", "-"),
        "bias=True,depth=1": ("tab:gray", "--"),
        "bias=True,depth=4": ("tab:green", "--"),
    }
    for ax, (task, configs) in zip(axes, results["highway_gate"].items(), strict=True):
        for key, runs in configs.items():
            color, style = styles[key]
            bias, depth = key.split(",")
            label = f"depth {depth.split('=')[1]}, {'gate bias -1' if bias.endswith('True') else 'bias-free'}"
            _band(ax, runs, "gate", color, style, label)
        ax.axhline(NOTE_GATE_MEAN, color="black", lw=1, ls=":", label=f"the note: {NOTE_GATE_MEAN}")
        ax.set_title(f"highway MLP on the {'identity' if task == 'identity' else 'random teacher (zoo train task)'}")
        ax.set_xlabel("Adam step")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("mean transform gate T (0 = carry, 1 = transform)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=5, fontsize=9)
    path = out / "highway_gate.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
