"""Commands of the training package, merged into the root ``zoo`` app: train, evaluate, export, and
the ``data`` and ``experiment`` groups. Heavy imports happen inside the commands."""

from __future__ import annotations

import importlib
import importlib.util
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


# --- zoo export ----------------------------------------------------------------------------------
@app.command("export")
@user_errors
def export_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="A checkpoint of `zoo train`, e.g. runs/<model>/<run>/best.pt.")],
    format: Annotated[str, typer.Option("--format", help="Comma-separated: onnx, torchscript.")] = "onnx,torchscript",
    out: Annotated[
        Path | None, typer.Option("--out", help="Bundle folder (default: artifacts/<model>/<run or timestamp>).")
    ] = None,
) -> None:
    """Export a checkpoint to ONNX and TorchScript (raw waveform in), check parity, write card.json."""
    from training.export import export_checkpoint

    formats = [f.strip() for f in format.split(",") if f.strip()]
    with console.status("exporting and checking parity ..."):
        result = export_checkpoint(checkpoint, out, formats=formats)
    for name, info in result.card["files"].items():
        size, digest = info["bytes"] / 1e6, info["sha256"][:12]
        console.print(f"wrote {result.out_dir / name} ({size:.1f} MB, sha256 {digest})", soft_wrap=True)
    console.print(f"wrote {result.out_dir / 'card.json'}", soft_wrap=True)
    parity = ", ".join(f"{k} {v:.2e}" for k, v in result.card["parity"]["max_abs_error"].items())
    tolerance = result.card["parity"]["tolerance"]
    console.print(f"parity vs eager, max abs error (tolerance {tolerance:g}): {parity}", soft_wrap=True)
    console.print(f"next: [bold]zoo serve {result.out_dir}[/]", soft_wrap=True)
