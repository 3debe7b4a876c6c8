"""`zoo experiment proposal-ablation`: which data and training changes make vital-resnet18 propose presets
closer to sounds people made, judged by rendered audio, never by training loss.

Each configuration generates (once) a small dataset with its sampler prior, trains vital-resnet18 on it,
and scores the best checkpoint on the calibration presets (``calibration.txt``, rendered at MIDI 48, 60
and 72) with ``training.evaluate.evaluate_presets``: the multi-scale spectral distance of the model's
rendered proposal to each target, beside the baselines of the same clips. Decisions are taken on these
figures; the evaluation presets are only scored once the decisions are made (``zoo evaluate``).

Run one configuration per command, each under the machine's CPU lock::

    flock /tmp/zoo-cpu.lock zoo experiment proposal-ablation today
    zoo experiment proposal-ablation --table     # the Markdown table of every finished configuration
    # once every decision is taken: the same checkpoints on the evaluation presets
    flock /tmp/zoo-cpu.lock zoo experiment proposal-ablation today ... --score-only \
        --presets ../shared/presets/evaluation.txt --out benchmarks/results/proposal/ablation-evaluation
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from benchmarks.stats import paired_interval
from zoo.console import console, user_errors

DEFAULT_OUT = Path("benchmarks/results/proposal/ablation")
N_PRESETS = 1500
EPOCHS = 4


@dataclass(frozen=True)
class Ablation:
    """One configuration: the dataset's sampler prior and note variation, and how the network trains."""

    prior: str
    vary_notes: bool = False
    freeze_early: bool = False
    augment: tuple[str, ...] = ()
    about: str = ""
    recipe: str | None = None  # trained by `zoo train vital-resnet18 --recipe <recipe>` (its dataset), only scored here

    @property
    def dataset(self) -> str:
        return self.prior.replace(",", "-") + ("-vary" if self.vary_notes else "")


ALL_AUGMENTATIONS = ("detune", "onset", "reverb", "noise")
CONFIGS: dict[str, Ablation] = {
    "today": Ablation("broad", freeze_early=True, about="broad sampler, conv1..layer2 frozen (before)"),
    "unfrozen": Ablation("broad", about="every layer trains"),
    "prior-human": Ablation("human", freeze_early=True, about="human prior alone"),
    "prior-mixture": Ablation("0.4,0.4,0.2", freeze_early=True, about="prior broad 0.4, human 0.4, simple 0.2"),
    "augment": Ablation("broad", freeze_early=True, augment=ALL_AUGMENTATIONS, about="waveform augmentations"),
    "vary-notes": Ablation("broad", vary_notes=True, freeze_early=True, about="velocity and note length drawn"),
    "all": Ablation("0.4,0.4,0.2", vary_notes=True, augment=ALL_AUGMENTATIONS, about="every change together (after)"),
    "all-held-notes": Ablation(
        "0.4,0.4,0.2",
        augment=ALL_AUGMENTATIONS,
        about="every change but varied notes (every clip at velocity 0.8, held 1 s)",
    ),
    "human-heavy": Ablation(
        "0.2,0.6,0.2", augment=ALL_AUGMENTATIONS, about="all-held-notes with the prior broad 0.2, human 0.6, simple 0.2"
    ),
    "broad-heavy": Ablation(
        "0.6,0.2,0.2", augment=ALL_AUGMENTATIONS, about="all-held-notes with the prior broad 0.6, human 0.2, simple 0.2"
    ),
    "large": Ablation(
        "0.4,0.4,0.2",
        freeze_early=True,
        augment=ALL_AUGMENTATIONS,
        about="the large recipe: 7000 presets x 3 notes, 2 epochs from `all-held-notes`' run, conv1..layer2 kept",
        recipe="large",
    ),
    "all-frozen": Ablation(
        "0.4,0.4,0.2",
        vary_notes=True,
        freeze_early=True,
        augment=ALL_AUGMENTATIONS,
        about="every change but conv1..layer2 frozen (what training every layer adds on top)",
    ),
}


@dataclass
class AblationResult:
    name: str
    config: dict[str, Any]
    n_presets: int
    epochs: int
    seconds: dict[str, float] = field(default_factory=dict)
    samples_per_s: float | None = None
    audio: dict[str, Any] = field(default_factory=dict)


def _dataset(ab: Ablation, n_presets: int, data_dir: Path) -> tuple[Path, float]:
    """The configuration's dataset (generated and its mels precomputed when missing) and the seconds it took."""
    from training.data.generate import generate_dataset
    from training.data.precompute import precompute_mels
    from training.tasks.vital import DEFAULT_NOTES

    path = data_dir / f"{ab.dataset}-{n_presets}.h5"
    start = time.perf_counter()
    if not path.is_file():
        generate_dataset(
            path, n_presets, workers=2, seed=0, notes=DEFAULT_NOTES, prior=ab.prior, vary_notes=ab.vary_notes,
            progress=False,
        )  # fmt: skip
    if not _has_mels(path):  # (a finished file may still be open for reading in this process)
        precompute_mels(path, progress=False)
    return path, time.perf_counter() - start


def _has_mels(path: Path) -> bool:
    import h5py

    from training.data import schema

    with h5py.File(path, "r") as f:
        return schema.MEL in f and int(f[schema.MEL].attrs.get("n_done", 0)) >= f[schema.AUDIO].shape[0]


def run_ablation(
    name: str, n_presets: int, epochs: int, data_dir: Path, runs: Path, presets: Path, score_only: bool = False
) -> AblationResult:
    """Generate (if needed), train and score one configuration on ``presets``; with ``score_only``, score the
    configuration's finished run again (e.g. on the evaluation presets, once every decision is taken)."""
    from training.evaluate import evaluate_presets
    from training.tasks.vital import RECIPES

    ab = CONFIGS[name]
    if ab.recipe:  # trained elsewhere: its recipe's dataset and size
        n_presets, epochs = RECIPES[ab.recipe].n_presets, RECIPES[ab.recipe].train["epochs"]
    result = AblationResult(name, asdict(ab), n_presets, epochs)
    data = RECIPES[ab.recipe].data if ab.recipe else data_dir / f"{ab.dataset}-{n_presets}.h5"
    run_dir = runs / "vital-resnet18" / name
    if ab.recipe and not score_only:
        raise ValueError(
            f"{name} is trained by `zoo train vital-resnet18 --recipe {ab.recipe} --run-name {name} --out {runs}`; "
            "score it here with --score-only"
        )
    if not score_only:
        data, result.seconds["dataset"] = _dataset(ab, n_presets, data_dir)
        run_dir = _train(name, ab, data, epochs, runs, result)
    elif not (run_dir / "best.pt").is_file():
        raise FileNotFoundError(f"no finished run of {name} at {run_dir}; run the configuration first")
    start = time.perf_counter()
    report = evaluate_presets(run_dir / "best.pt", presets, run_dir / f"eval-{presets.stem}", data=data, progress=False)
    result.seconds["evaluate"] = time.perf_counter() - start
    result.audio = report["audio"]
    return result


def _train(name: str, ab: Ablation, data: Path, epochs: int, runs: Path, result: AblationResult) -> Path:
    from training.config import TrainConfig
    from training.trainer import Trainer

    cfg = TrainConfig(
        model="vital-resnet18", data=data, epochs=epochs, batch_size=32, lr=1e-3, warmup_epochs=1, device="cpu",
        out=runs, run_name=name, seed=0, augment=list(ab.augment), model_overrides={"freeze_early": ab.freeze_early},
    )  # fmt: skip
    start = time.perf_counter()
    summary = Trainer(cfg).fit()
    result.seconds["train"] = time.perf_counter() - start
    run_dir = Path(summary["run_dir"])
    epoch_rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rates = [r["samples_per_s"] for r in epoch_rows if "samples_per_s" in r]
    result.samples_per_s = float(np.median(rates)) if rates else None
    return run_dir


def _paired_gain(a: list, b: list, seed: int = 0) -> tuple[float, float, float]:
    """Mean of b - a over clips where both rendered, with a bootstrap 95 % interval (> 0: a is closer)."""
    x = np.array([np.nan if v is None else v for v in a], dtype=np.float64)
    y = np.array([np.nan if v is None else v for v in b], dtype=np.float64)
    both = ~(np.isnan(x) | np.isnan(y))
    mean, lo, hi = paired_interval(y[both] - x[both], n_boot=2000, seed=seed)
    return float(mean), float(lo), float(hi)


def ablation_table(out: Path) -> str:
    """Markdown: per configuration, the model's and the nearest neighbour's distance on the calibration clips,
    its gain over ``today`` (paired), throughput; then the baselines that do not depend on training."""
    results = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}
    order = [n for n in CONFIGS if n in results] + sorted(n for n in results if n not in CONFIGS)
    reference = results.get("today")
    lines = [
        "| configuration | what changes | model mean | model median | nearest neighbour mean / median | "
        "closer than today (paired mean, 95 % CI) | train samples/s | train min |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name in order:
        r = results[name]
        audio = r["audio"]
        m, nn = audio["model"], audio.get("nearest_neighbour", {})
        gain = ""
        if reference is not None and name != "today":
            g, lo, hi = _paired_gain(audio["distances"]["model"], reference["audio"]["distances"]["model"])
            gain = f"{g:+.3f} [{lo:+.3f}, {hi:+.3f}]"
        nn_text = f"{nn['mean']:.3f} / {nn['median']:.3f}" if nn.get("mean") is not None else ""
        rate = f"{r['samples_per_s']:.1f}" if r.get("samples_per_s") else ""
        minutes = f"{r['seconds']['train'] / 60:.1f}" if "train" in r["seconds"] else ""
        lines.append(
            f"| {name} | {r['config'].get('about', '')} | {m['mean']:.3f} | {m['median']:.3f} | {nn_text} | {gain} | "
            f"{rate} | {minutes} |"
        )
    if reference is not None:
        lines += ["", "Baselines on the same clips (from the `today` run):", "", "| baseline | mean | median |"]
        lines.append("| --- | --- | --- |")
        for method in ("tier1_projection", "mean_preset", "random_preset", "init_preset", "single_cycle"):
            row = reference["audio"].get(method)
            if row and row.get("mean") is not None:
                lines.append(f"| {method} | {row['mean']:.3f} | {row['median']:.3f} |")
    return "\n".join(lines) + "\n"


def register(app: typer.Typer) -> None:
    @app.command("proposal-ablation")
    @user_errors
    def proposal_ablation(
        configs: Annotated[list[str] | None, typer.Argument(help=f"Configurations: {', '.join(CONFIGS)}.")] = None,
        table: Annotated[bool, typer.Option("--table", help="Only rewrite the table of finished runs.")] = False,
        n_presets: Annotated[int, typer.Option(help="Presets per dataset (x 3 notes).")] = N_PRESETS,
        epochs: Annotated[int, typer.Option(help="Training epochs.")] = EPOCHS,
        presets: Annotated[
            Path | None, typer.Option(help="Preset list to score on (default: the shared calibration.txt).")
        ] = None,
        data_dir: Annotated[Path, typer.Option(help="Where the datasets go.")] = Path("data/ablation"),
        runs: Annotated[Path, typer.Option(help="Where the training runs go.")] = Path("runs/ablation"),
        out: Annotated[Path, typer.Option(help="Folder of the JSON results and the table.")] = DEFAULT_OUT,
        score_only: Annotated[
            bool, typer.Option("--score-only", help="Score finished runs on --presets again (no training).")
        ] = False,
    ) -> None:
        """Train and score configurations of data and training on the calibration presets."""
        import torch

        from zoo.vital.preset_sets import CALIBRATION_LIST, human_preset_list

        unknown = [c for c in configs or [] if c not in CONFIGS]
        if unknown:
            raise ValueError(f"unknown configuration {', '.join(unknown)}; known: {', '.join(CONFIGS)}")
        presets = presets or human_preset_list(CALIBRATION_LIST)
        if presets is None and not table:
            raise ValueError("no calibration presets found: pass --presets or set ZOO_PRESETS_DIR")
        torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
        out.mkdir(parents=True, exist_ok=True)
        for name in [] if table else configs or []:
            result = run_ablation(name, n_presets, epochs, data_dir, runs, presets, score_only)
            (out / f"{name}.json").write_text(json.dumps(asdict(result), indent=1) + "\n")
            console.print(f"{name}: model mean {result.audio['model']['mean']:.3f}", highlight=False)
        (out / "table.md").write_text(ablation_table(out))
        console.print(ablation_table(out), highlight=False, soft_wrap=True)
