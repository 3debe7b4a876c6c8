"""Commands of the training package, merged into the root ``zoo`` app: train, evaluate, export, and
the ``data`` and ``experiment`` groups. Heavy imports happen inside the commands."""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from zoo.console import console, user_errors

app = typer.Typer(no_args_is_help=True)

# Command groups mounted as `zoo <name> ...` when their module is present.
_GROUPS = {"data": "training.data.cli", "experiment": "training.experiments.cli"}

for _name, _module in _GROUPS.items():
    if importlib.util.find_spec(_module.rsplit(".", 1)[0]) and importlib.util.find_spec(_module):
        app.add_typer(importlib.import_module(_module).app, name=_name)


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Logger(str, Enum):
    csv = "csv"
    tensorboard = "tensorboard"
    wandb = "wandb"


def _torchrun(nproc: int, argv: list[str]) -> int:
    """Re-launch this command under torchrun (the standard launcher) with ``nproc`` processes."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "zoo.cli",
        *argv,
    ]
    console.print(f"launching {nproc} processes: {' '.join(cmd[2:])}")
    return subprocess.call(cmd, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})


@app.command("train")
@user_errors
def train_cmd(
    name: Annotated[str, typer.Argument(help="Registered model to train (see `zoo list`).")],
    data: Annotated[
        Path | None,
        typer.Option(
            help="HDF5 dataset file or a folder of shards. vital-resnet18 without it generates a small default set."
        ),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs (default: the model's recipe).")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many optimizer steps.")] = None,
    batch_size: Annotated[
        str | None, typer.Option(help="Global batch size, or 'auto' for the largest that fits.")
    ] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (after warmup).")] = None,
    warmup_epochs: Annotated[int | None, typer.Option(help="Epochs of linear warmup before cosine decay.")] = None,
    grad_accum: Annotated[int, typer.Option(help="Micro-batches per optimizer step.")] = 1,
    device: Annotated[Device, typer.Option(help="auto picks CUDA when available.")] = Device.auto,
    nproc: Annotated[int, typer.Option(help="Processes (DDP via torchrun): gloo on CPU, NCCL on CUDA.")] = 1,
    resume: Annotated[Path | None, typer.Option(help="Continue from a latest.pt/best.pt at the next epoch.")] = None,
    init_from: Annotated[
        Path | None,
        typer.Option(help="Start from these weights; what does not fit the architecture is reported, not loaded."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Runs go to OUT/NAME/<time>/.")] = Path("runs"),
    run_name: Annotated[str | None, typer.Option(help="Name of the run folder instead of the time.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the split, initialisation and sampling.")] = 0,
    early_stopping_patience: Annotated[
        int | None, typer.Option(help="Stop after N epochs without improvement.")
    ] = None,
    logger: Annotated[Logger, typer.Option(help="csv (metrics.jsonl), tensorboard or wandb (offline).")] = Logger.csv,
    num_workers: Annotated[int, typer.Option(help="DataLoader worker processes.")] = 0,
    recipe: Annotated[
        str | None,
        typer.Option(help="A named dataset and schedule of the task (vital-resnet18: default, shipped, large)."),
    ] = None,
    augment: Annotated[
        str | None,
        typer.Option(help="Waveform augmentations: all, none, or some of detune,onset,reverb,noise (comma-separated)."),
    ] = None,
) -> None:
    """Train a registered model with the shared engine; checkpoints, metrics and plots go to the run folder."""
    if nproc < 1:
        raise ValueError("`--nproc` must be at least 1")
    if nproc > 1 and int(os.environ.get("RANK", -1)) == -1:
        argv = [a for a in sys.argv[1:]]
        if "--nproc" in argv:
            i = argv.index("--nproc")
            del argv[i : i + 2]
        argv = [a for a in argv if not a.startswith("--nproc=")]
        raise typer.Exit(code=_torchrun(nproc, argv))

    from training.config import TrainConfig
    from training.tasks import task_for_family
    from training.trainer import Trainer
    from zoo.registry import model_entry

    task_cls = task_for_family(model_entry(name).family)
    chosen = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "warmup_epochs": warmup_epochs, "augment": augment}
    values = {**_recipe_defaults(task_cls, name, recipe), **{k: v for k, v in chosen.items() if v is not None}}
    init_from = init_from or _recipe_start(task_cls, name, recipe, out)
    if init_from is not None and not init_from.is_file():
        raise ValueError(f"`--init-from` {init_from}: no such checkpoint file")
    cfg = TrainConfig(
        model=name,
        data=data,
        max_steps=max_steps,
        grad_accum=grad_accum,
        device=device.value,
        out=out,
        run_name=run_name,
        seed=seed,
        early_stopping_patience=early_stopping_patience,
        logger=logger.value,
        num_workers=num_workers,
        init_from=init_from,
        recipe=recipe,
        **values,
    )
    trainer = Trainer(cfg)
    summary = trainer.fit(resume=resume)
    if trainer.env.master:
        run = Path(summary["run_dir"])
        console.print(
            f"[green]done[/]: {summary['stop_reason']}; best {summary['monitor']} "
            f"{summary['best_metric']:.4f}; {summary['skipped_steps']} skipped steps"
        )
        console.print(f"checkpoints: {run / 'best.pt'} and {run / 'latest.pt'}; curves: {run / 'curves.png'}")
        console.print("next:")
        if trainer.task.family == "vital_resnet":
            console.print(f"  zoo evaluate {run / 'best.pt'} --data {cfg.data or trainer.task.recipe.data}")
            console.print(f"  zoo export {run / 'best.pt'}")
            console.print("  zoo serve")
        else:
            console.print(f"  zoo export {run / 'best.pt'}")


def _recipe_start(task_cls: type, name: str, recipe: str | None, out: Path) -> Path | None:
    """The checkpoint a recipe starts from (the best of the run of the recipe it names), or None."""
    from training.tasks import recipe_start

    start = recipe_start(task_cls, recipe)
    if start is None:
        return None
    path = out / name / start / "best.pt"
    if not path.is_file():
        raise ValueError(
            f"the {recipe} recipe starts from the {start} recipe's run, {path}: train it first with "
            f"`zoo train {name} --recipe {start} --run-name {start}` (or name a checkpoint with --init-from)"
        )
    return path


def _recipe_defaults(task_cls: type, name: str, recipe: str | None) -> dict:
    """The task's defaults, overlaid with a named recipe's training options."""
    defaults = dict(getattr(task_cls, "defaults", {}))
    if recipe is None:
        return defaults
    recipes = getattr(task_cls, "recipes", {})
    if recipe not in recipes:
        known = ", ".join(recipes) or "none"
        raise ValueError(f"`--recipe` {recipe!r} is not a recipe of {name} (it has: {known})")
    return {**defaults, **recipes[recipe].train}


@app.command("evaluate")
@user_errors
def evaluate_cmd(
    checkpoint: Annotated[
        str,
        typer.Argument(
            help="A vital-resnet18 checkpoint (best.pt), an artifact folder, or a registered name (its exported or "
            "shipped bundle).",
            metavar="CHECKPOINT|ARTIFACT|NAME",
        ),
    ],
    data: Annotated[
        Path | None, typer.Option(help="The dataset it was trained on: its held-out split is used.")
    ] = None,
    presets: Annotated[
        Path | None,
        typer.Option(
            help="Presets made by people, rendered at MIDI 48, 60, 72, instead of the held-out split: a folder of "
            ".vital files or a list file such as evaluation.txt (paths relative to the list's folder)."
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Report folder (default: <run>/eval).")] = None,
    n_audio: Annotated[int, typer.Option(help="Clips rendered and scored by audio distance.")] = 48,
    seed: Annotated[int, typer.Option(help="Seed of the clip choice and the random baseline.")] = 0,
    search_seconds: Annotated[
        float,
        typer.Option(help="Seconds of preset search per clip: adds the model+search and init+search rows (0: none)."),
    ] = 0.0,
) -> None:
    """Score a model against the init, random, mean and nearest-neighbour presets by rendered audio; on human
    presets also against their own Tier-1 projection (what a perfect Tier-1 predictor reaches)."""
    if data is None and presets is None:
        raise ValueError(
            "give `--data PATH` (its held-out split) or `--presets DIR|LIST` (with `--data` for all baselines)"
        )
    if n_audio < 1:
        raise ValueError("`--n-audio` must be at least 1")
    from training import evaluate

    source = Path(checkpoint)
    if presets is None and not source.is_file():
        raise ValueError("`--data` alone needs a checkpoint (its split); score a bundle or a name with `--presets`")
    if out is None:
        base = source.parent if source.is_file() else Path("runs") / "evaluate" / source.name
        out = base / ("eval" if presets is None else "eval-presets")
    if presets is None:
        report = evaluate.evaluate_dataset(checkpoint, data, out, n_audio, seed, search_seconds=search_seconds)
    else:
        report = evaluate.evaluate_presets(checkpoint, presets, out, data, seed=seed, search_seconds=search_seconds)
    _print_audio_table(report["audio"])
    console.print(f"report: {out / 'report.json'}; spectrograms: {out / 'spectrograms.png'}; audio: {out / 'wavs'}")


def _print_audio_table(audio: dict) -> None:
    from rich.table import Table

    from training.evaluate import METHODS

    table = Table(
        title=f"{audio['metric']}: mean and median over the {audio['n_paired_clips']} of {audio['n_clips']} clips "
        "every method rendered audibly; a silent render loses the head-to-head"
    )
    for col in ("method", "mean", "median", "model closer on", "model gain [95% CI]", "silent renders"):
        if col == "method":
            table.add_column(col, min_width=len("nearest_neighbour"), no_wrap=True)
        else:
            table.add_column(col, justify="right")
    for m in [m for m in METHODS if m in audio]:
        row = audio[m]
        closer = row.get("model_closer_share")
        table.add_row(
            m,
            f"{row['mean']:.3f}" if row["mean"] is not None else "-",
            f"{row['median']:.3f}" if row["median"] is not None else "-",
            f"{closer:.0%}" if closer is not None else "",
            f"{row['model_gain']:+.3f} [{row['model_gain_ci95'][0]:+.3f}, {row['model_gain_ci95'][1]:+.3f}]"
            if "model_gain" in row
            else "",
            str(row["silent_renders"]),
        )
    console.print(table, soft_wrap=False)


# --- zoo export ----------------------------------------------------------------------------------
@app.command("export")
@user_errors
def export_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint of `zoo train`, e.g. runs/<model>/<run>/best.pt.")],
    format: Annotated[str, typer.Option("--format", help="Comma-separated: onnx, torchscript.")] = "onnx,torchscript",
    out: Annotated[
        Path | None, typer.Option("--out", help="Bundle folder (default: artifacts/<model>/<run or timestamp>).")
    ] = None,
    neighbours: Annotated[
        Path | None,
        typer.Option(
            "--neighbours",
            help="Dataset the checkpoint was trained on: its training split becomes the bundle's neighbour index "
            "(extra starting points of the preset search; measured without gain today, see "
            "benchmarks/results/search).",
        ),
    ] = None,
    ship: Annotated[
        bool,
        typer.Option(
            "--ship",
            help="Write the package's bundle (zoo/weights/<model>/ unless --out): ONNX with float16 weights, parity "
            "checked, the card saying how it was made and how it scores on the human presets.",
        ),
    ] = False,
    evaluate: Annotated[bool, typer.Option(help="With --ship: score the bundle on the human preset lists.")] = True,
) -> None:
    """Export a checkpoint to ONNX and TorchScript (raw waveform in), check parity, write card.json."""
    from training.export import export_checkpoint

    if ship:
        from training.ship import ship_checkpoint
        from zoo.artifact import load_artifact

        folder = ship_checkpoint(checkpoint, out, evaluate=evaluate)
        card = load_artifact(folder).card
        half = card.weights["parity"]
        console.print(f"wrote {folder} ({card.files[0].bytes / 2**20:.1f} MiB, {card.model.version})", soft_wrap=True)
        console.print(
            f"float16 weights vs float32: continuous max abs error {half['continuous_max_abs_error']:.2e}, "
            f"categorical agreement {half['categorical_agreement']:.1%}",
            soft_wrap=True,
        )
        return

    formats = [f.strip() for f in format.split(",") if f.strip()]
    with console.status("exporting and checking parity ..."):
        result = export_checkpoint(checkpoint, out, formats=formats)
    for file in result.card.files:
        size, digest = file.bytes / 1e6, file.sha256[:12]
        console.print(f"wrote {result.out_dir / file.path} ({size:.1f} MB, sha256 {digest})", soft_wrap=True)
    if neighbours is not None:
        from training.neighbours import add_neighbour_index

        with console.status("indexing the training presets ..."):
            index = add_neighbour_index(result.out_dir, neighbours, checkpoint)
        console.print(f"wrote {index} ({index.stat().st_size / 1e6:.1f} MB)", soft_wrap=True)
    console.print(f"wrote {result.out_dir / 'card.json'}", soft_wrap=True)
    parity = ", ".join(f"{k} {v:.2e}" for k, v in result.card.parity.max_abs_error.items())
    tolerance = result.card.parity.tolerance
    console.print(f"parity vs eager, max abs error (tolerance {tolerance:g}): {parity}", soft_wrap=True)
    console.print(f"next: [bold]zoo serve {result.out_dir}[/]", soft_wrap=True)
