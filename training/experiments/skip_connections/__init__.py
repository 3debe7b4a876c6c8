"""`zoo experiment skip-connections`: the skip-connection note's three experiments, with fixed seeds.

1. Gradient flow: first-layer / last-layer weight-gradient norm for plain vs residual MLPs at depths 5 to 100,
   plus the gradient that reaches the network's input, and a per-layer plot.
2. Learning the identity: MSE at initialisation and during training for plain vs residual at depths 2 to 20,
   to test the note's claim that residual networks learn the identity faster.
3. Variants: parameters and output dimension of each variant, and the highway network's mean transform gate
   after training.

All networks are the registered ones (``zoo.create_model``): width 32, ReLU, bias-free, PyTorch's default
initialisation; "depth" counts blocks, two 32x32 layers each for plain and residual. The inputs are
x ~ N(0, I_32); the identity task's loss is mean squared error between the output and x.

The package: ``runs`` (the experiments), ``report`` (tables and findings), ``plots`` (PNGs); this module is the
command.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from training.experiments.skip_connections.report import write_report
from training.experiments.skip_connections.runs import Settings, count_runs, run_all
from zoo.console import user_errors

DEFAULT_OUT = Path("benchmarks/results/skip_connections")
QUICK_OUT = Path("runs/experiments/skip-connections-quick")  # smoke runs never overwrite the committed results

__all__ = ["DEFAULT_OUT", "QUICK_OUT", "Settings", "register", "run_all", "write_report"]


def register(app: typer.Typer) -> None:
    @app.command("skip-connections")
    @user_errors
    def skip_connections(
        quick: Annotated[bool, typer.Option("--quick", help="Two seeds and 60 steps: a smoke run in seconds.")] = False,
        out: Annotated[
            Path | None,
            typer.Option(
                "--out",
                help=f"Folder for results.md, results.json and the PNGs (default: {DEFAULT_OUT}; with --quick "
                f"{QUICK_OUT}).",
            ),
        ] = None,
        report_only: Annotated[
            bool, typer.Option("--report-only", help="Rebuild results.md and the PNGs from OUT/results.json.")
        ] = False,
    ) -> None:
        """Reproduce the skip-connection note: gradient flow, learning the identity, the variants and the
        highway gate. Writes markdown tables, PNG plots and the raw numbers as JSON."""
        from zoo.console import console

        out = out or (QUICK_OUT if quick else DEFAULT_OUT)
        if report_only:
            saved = out / "results.json"
            if not saved.is_file():
                raise FileNotFoundError(f"{saved} does not exist: run the experiment first")
            console.print(f"report: {write_report(json.loads(saved.read_text()), out)}")
            return
        results = _run(quick, out)
        (out / "results.json").write_text(json.dumps(results, indent=1))
        console.print(f"report: {write_report(results, out)}")


def _run(quick: bool, out: Path) -> dict[str, Any]:
    """Every run, single-threaded (the figures must not depend on the machine's core count), with the command
    that reproduces them."""
    import torch
    from tqdm import tqdm

    torch.set_num_threads(1)
    settings = Settings.quick() if quick else Settings()
    out.mkdir(parents=True, exist_ok=True)
    command = shlex.join(["zoo", "experiment", "skip-connections", *(["--quick"] if quick else []), "--out", str(out)])
    start = time.perf_counter()
    with tqdm(total=count_runs(settings), desc="skip-connections", unit="run", file=sys.stderr) as bar:
        results = run_all(settings, progress=bar.update)
    results.update(
        command=command, settings=asdict(settings), torch=torch.__version__, seconds=time.perf_counter() - start
    )
    return results
