"""The ``zoo`` command: the root Typer app. It mounts the sub-apps of ``training``, ``serving`` and
``benchmarks``; their modules import torch only inside commands, so ``zoo --help`` stays fast."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Annotated

import typer

from zoo import __version__
from zoo.console import console, user_errors

app = typer.Typer(
    name="zoo",
    help="Audio model zoo: turn a recording of a synth sound into a Vital preset, and the models around it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Sub-apps merged into the root (their commands appear as `zoo <command>`), mounted when present.
_SUBAPPS = ("training.cli", "serving.cli", "benchmarks.cli")


def _version(value: bool) -> None:
    if value:
        console.print(f"zoo {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Audio model zoo: audio-to-Vital-preset and research architectures."""


@app.command("list")
@user_errors
def list_cmd(
    pattern: Annotated[str | None, typer.Argument(help="Shell-style filter, e.g. '*mlp'.")] = None,
    names: Annotated[
        bool,
        typer.Option("--names", help="Only the names, one per line (the default when stdout is not a terminal)."),
    ] = False,
) -> None:
    """List the registered models."""
    from zoo.registry import list_models

    found = list_models(pattern)
    if not found:
        raise ValueError(f"no registered model matches {pattern!r}; run `zoo list` to see them all")
    if names or not console.is_terminal:  # scripts and pipes (`zoo list | grep ...`) read whole names
        for name in found:
            typer.echo(name)
        return
    _print_model_table(found)


def _print_model_table(names: list[str]) -> None:
    from rich.table import Table

    from zoo.registry import count_params, create_model, model_entry

    table = Table(title="Registered models")
    # Nothing is cut with an ellipsis: the name column is as wide as the longest name, the others fold.
    table.add_column("name", min_width=max(map(len, names)), overflow="fold")
    table.add_column("family", overflow="fold")
    table.add_column("task", overflow="fold", ratio=1)
    table.add_column("params", justify="right", no_wrap=True)
    table.add_column("export", no_wrap=True)
    for name in names:
        entry = model_entry(name)
        total, _ = count_params(create_model(name))
        table.add_row(name, entry.family, entry.task, f"{total:,}", "yes" if entry.exportable else "no")
    console.print(table)


@app.command("info")
@user_errors
def info_cmd(name: Annotated[str, typer.Argument(help="A registered model name (see `zoo list`).")]) -> None:
    """Show a model's card: task, inputs and outputs, parameter count per module."""
    from rich.table import Table

    from zoo.registry import model_card

    card = model_card(name)
    console.print(f"[bold]{card.name}[/]  family={card.family}  exportable={'yes' if card.exportable else 'no'}")
    console.print(f"task: {card.task}")
    if card.research_note:
        console.print(f"research note: {card.research_note}")
    console.print(f"parameters: {card.n_params:,} ({card.n_trainable:,} trainable)")
    from zoo.weights import describe_shipped

    for line in describe_shipped(name):
        console.print(line, highlight=False, soft_wrap=True)
    io_table = Table(title="Inputs and outputs (B = batch)")
    for col in ("", "name", "shape", "dtype"):
        io_table.add_column(col)
    for kind, specs in (("input", card.inputs), ("output", card.outputs)):
        for s in specs:
            io_table.add_row(kind, s.name, str(("B", *s.shape)).replace("'", ""), s.dtype)
    console.print(io_table)
    mod_table = Table(title="Parameters per module")
    mod_table.add_column("module")
    mod_table.add_column("params", justify="right")
    for module, n in card.params_by_module.items():
        if n:
            mod_table.add_row(module, f"{n:,}")
    console.print(mod_table)


def _mount_subapps() -> None:
    for module_name in _SUBAPPS:
        if importlib.util.find_spec(module_name) is not None:
            app.add_typer(importlib.import_module(module_name).app)


_mount_subapps()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
