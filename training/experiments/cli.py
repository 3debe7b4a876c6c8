"""`zoo experiment ...`: every module in this package that defines ``register(app)`` adds its command.
Modules import torch and friends inside their commands, so listing the commands stays fast."""

from __future__ import annotations

import pkgutil
from importlib import import_module

import typer

import training.experiments as _pkg

app = typer.Typer(help="Reproduce the research notes' experiments (tables and plots).", no_args_is_help=True)

for _info in pkgutil.iter_modules(_pkg.__path__):
    if _info.name == "cli":
        continue
    _module = import_module(f"training.experiments.{_info.name}")
    if hasattr(_module, "register"):
        _module.register(app)
