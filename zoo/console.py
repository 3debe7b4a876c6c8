"""Terminal output shared by every CLI command: consoles, and turning user errors into one red line."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from zoo.errors import ZooError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> typer.Exit:
    """Print a one-line red error and return the Exit to raise (``raise fail(...) from None``)."""
    err_console.print(f"[bold red]Error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def user_errors(fn: F) -> F:
    """Decorate a CLI command so that a ZooError (or a ValueError/FileNotFoundError from validation)
    becomes a one-line message and exit code 1 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ZooError, ValueError, FileNotFoundError, PermissionError) as e:
            raise fail(str(e)) from None

    return wrapper  # type: ignore[return-value]
