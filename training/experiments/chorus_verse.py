"""``zoo experiment chorus-verse``: train chorus-cnn on the Vital song set and score it on held-out songs.

Training goes through the shared engine (``Trainer(cfg).fit()``, the same as ``zoo train chorus-cnn``); the
best checkpoint (lowest validation loss) is then scored on the test songs, which no choice has seen. Writes
``chorus-verse.md`` (the exact command on top), ``chorus-verse.png`` (per-epoch loss, gradient norm and
chorus%, and predictions against the truth on test songs) and ``chorus-verse.json``.
"""

from __future__ import annotations

import contextlib
import io
import json
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from zoo.console import console, user_errors

DEFAULT_OUT = Path("benchmarks/results/chorus_cnn")
QUICK_OUT = Path("runs/experiments/chorus-verse-quick")  # smoke tests never overwrite the committed results


def _command_line() -> str:
    return "zoo " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "zoo experiment chorus-verse"


def _epochs(metrics_path: Path) -> list[dict[str, Any]]:
    from training.run_logging import read_metrics

    return [r for r in read_metrics(metrics_path) if r["kind"] == "epoch"]


def chorus_markdown(report: dict[str, Any], epochs: list[dict[str, Any]], command: str, info: dict[str, Any]) -> str:
    accs = report["per_song_acc"]
    best = min(epochs, key=lambda r: r["val_loss"])
    lines = [
        "# chorus-cnn: verse/chorus frame labels on held-out synthesized songs",
        "",
        "```bash",
        command,
        "```",
        "",
        f"Data: `{report['data']}` ({info['n_songs']} Vital-rendered songs of 24 s, split by song: "
        f"{info['n_train']} train, {info['n_val']} validation, {len(accs)} test). Model: chorus-cnn "
        f"({info['n_params']:,} parameters), {info['epochs']} epochs through the shared engine "
        f"({info['train_seconds']:.0f} s); the checkpoint with the lowest validation loss (epoch {best['epoch'] + 1}) "
        "is scored on the test songs.",
        "",
        "| held-out test songs | frames | frame accuracy | chorus predicted | chorus true | chorus precision "
        "| chorus recall | worst song | median song | best song |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {len(accs)} | {report['n_frames']:,} | **{100 * report['frame_acc']:.1f} %** "
        f"| {report['chorus_pct']:.1f} % | {report['true_chorus_pct']:.1f} % "
        f"| {100 * report['chorus_precision']:.1f} % | {100 * report['chorus_recall']:.1f} % "
        f"| {100 * min(accs):.1f} % | {100 * statistics.median(accs):.1f} % | {100 * max(accs):.1f} % |",
        "",
        "Always answering the majority class would score "
        f"{max(report['true_chorus_pct'], 100 - report['true_chorus_pct']):.1f} %. "
        f"{sum(a < 0.8 for a in accs)} of {len(accs)} test songs score below 80 %: the figure shows the worst.",
        "",
        "## Per epoch (as logged by the engine)",
        "",
        "| epoch | train loss | train grad norm | train chorus % | val loss | val frame acc | val chorus % |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in epochs:
        train = [r.get(k, float("nan")) for k in ("train_loss", "train_grad_norm", "train_chorus_pct")]
        lines.append(
            f"| {r['epoch'] + 1} | {train[0]:.4f} | {train[1]:.3f} | {train[2]:.1f} | {r['val_loss']:.4f} "
            f"| {100 * r['val_frame_acc']:.1f} % | {r['val_chorus_pct']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def chorus_plot(report: dict[str, Any], epochs: list[dict[str, Any]], path: Path, frame_seconds: float) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    # Songs across the range of accuracy, not only good ones: the worst, the first quartile, the median, the best.
    order = np.argsort(report["per_song_acc"])
    picks = list(dict.fromkeys(int(order[round(q * (len(order) - 1))]) for q in (0.0, 0.25, 0.5, 1.0)))
    n_songs = len(picks)
    fig = plt.figure(figsize=(14, 3 + 1.6 * n_songs))
    grid = fig.add_gridspec(1 + n_songs, 3, height_ratios=[2.2] + [1] * n_songs)
    x = [r["epoch"] + 1 for r in epochs]
    ax = fig.add_subplot(grid[0, 0])
    ax.plot(x, [r.get("train_loss", np.nan) for r in epochs], "o-", label="train")
    ax.plot(x, [r["val_loss"] for r in epochs], "o-", label="validation")
    ax.set(title="loss", xlabel="epoch")
    ax.legend()
    ax = fig.add_subplot(grid[0, 1])
    ax.plot(x, [r.get("train_grad_norm", np.nan) for r in epochs], "o-")
    ax.set(title="gradient norm (mean over the epoch, before clipping)", xlabel="epoch")
    ax = fig.add_subplot(grid[0, 2])
    ax.plot(x, [r.get("train_chorus_pct", np.nan) for r in epochs], "o-", label="train, predicted")
    ax.plot(x, [r["val_chorus_pct"] for r in epochs], "o-", label="validation, predicted")
    ax.axhline(epochs[-1]["val_true_chorus_pct"], color="black", ls=":", label="validation, true")
    ax.set(title="chorus % (share of frames)", xlabel="epoch", ylim=(0, 100))
    ax.legend(fontsize=8)
    for row, i in enumerate(picks):
        ax = fig.add_subplot(grid[1 + row, :])
        t = np.arange(report["labels"].shape[1]) * frame_seconds
        ax.fill_between(t, 0, report["labels"][i], step="mid", color="tab:orange", alpha=0.3, label="chorus (truth)")
        ax.plot(t, report["predictions"][i], color="tab:blue", lw=1, label="P(chorus)")
        ax.set(ylim=(-0.05, 1.05), ylabel=f"song {report['test_songs'][i]}")
        ax.set_title(f"song {report['test_songs'][i]}: frame accuracy {100 * report['per_song_acc'][i]:.1f} %",
                     loc="right", fontsize=9)  # fmt: skip
        if row == 0:
            ax.legend(loc="upper left", fontsize=8)
        if row == n_songs - 1:
            ax.set_xlabel("time (s)")
    fig.suptitle("chorus-cnn on held-out Vital songs (test songs: worst, first quartile, median, best)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def register(app: typer.Typer) -> None:
    @app.command("chorus-verse")
    @user_errors
    def chorus_verse(
        quick: Annotated[
            bool, typer.Option(help=f"24 songs of its own, 2 epochs (a smoke test, into {QUICK_OUT}).")
        ] = False,
        out: Annotated[
            Path | None, typer.Option(help=f"Folder for the Markdown, PNG and JSON [default: {DEFAULT_OUT}].")
        ] = None,
        data: Annotated[
            Path | None, typer.Option(help="A song file (default: the task's default set, generated if missing).")
        ] = None,
        epochs: Annotated[int | None, typer.Option(help="Epochs (default: the task's recipe).")] = None,
        seed: Annotated[int, typer.Option(help="Training seed (the split by song is fixed).")] = 0,
        runs: Annotated[Path, typer.Option(help="Where the training run goes.")] = Path("runs"),
    ) -> None:
        """Train chorus-cnn with the shared engine and report its frame accuracy on held-out songs."""
        import tempfile

        import torch

        from training.config import TrainConfig
        from training.data.songs import FRONT_END
        from training.tasks.chorus import ChorusTask, evaluate_checkpoint
        from training.trainer import Trainer
        from zoo.registry import count_params

        torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
        out = out or (QUICK_OUT if quick else DEFAULT_OUT)
        with contextlib.ExitStack() as stack:
            if quick:
                from training.data.songs import generate_songs

                tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="songs-")))
                data = generate_songs(tmp / "songs.h5", 24, seed=0, workers=2, progress=False)
                epochs, runs = 2, tmp / "runs"
            values = {**ChorusTask.defaults, **({"epochs": epochs} if epochs is not None else {})}
            cfg = TrainConfig(model="chorus-cnn", data=data, seed=seed, out=runs, **values)
            trainer = Trainer(cfg)
            start = time.perf_counter()
            summary = trainer.fit()
            train_seconds = time.perf_counter() - start
            run = Path(summary["run_dir"])
            with contextlib.redirect_stdout(io.StringIO()):
                report = evaluate_checkpoint(run / "best.pt", data)
            task = trainer.task
            info = {
                "n_songs": sum(len(task.splits[k]) for k in ("train", "val", "test")),
                "n_train": len(task.splits["train"]),
                "n_val": len(task.splits["val"]),
                "n_params": count_params(trainer.raw_model)[0],
                "epochs": cfg.epochs,
                "train_seconds": train_seconds,
            }
            history = _epochs(run / "metrics.jsonl")
            out.mkdir(parents=True, exist_ok=True)
            (out / "chorus-verse.md").write_text(chorus_markdown(report, history, _command_line(), info))
            chorus_plot(report, history, out / "chorus-verse.png", FRONT_END.hop_length / FRONT_END.sample_rate)
            plain = {k: v for k, v in report.items() if k not in ("predictions", "labels")}
            payload = {"report": plain, "info": info, "epochs": history}
            (out / "chorus-verse.json").write_text(json.dumps(payload, indent=1))
        console.print((out / "chorus-verse.md").read_text())
        where = "the run was temporary (--quick)" if quick else f"run: {run}"
        console.print(f"written: {out / 'chorus-verse.md'}, {out / 'chorus-verse.png'}, .json; {where}")
