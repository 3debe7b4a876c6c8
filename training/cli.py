"""Commands of the training package, merged into the root ``zoo`` app: train, evaluate, export, and
the ``data`` and ``experiment`` groups. Heavy imports happen inside the commands."""

from __future__ import annotations

import importlib
import importlib.util

import typer

app = typer.Typer(no_args_is_help=True)

# Command groups mounted as `zoo <name> ...` when their module is present.
_GROUPS = {"data": "training.data.cli", "experiment": "training.experiments.cli"}

for _name, _module in _GROUPS.items():
    if importlib.util.find_spec(_module.rsplit(".", 1)[0]) and importlib.util.find_spec(_module):
        app.add_typer(importlib.import_module(_module).app, name=_name)
