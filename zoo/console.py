"""Terminal output shared by every CLI command: consoles, turning user errors into one red line, and the
help panels' display of flags."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
import typer.core
from rich.console import Console
from rich.markup import escape

from zoo.errors import ZooError
from zoo.optional import missing_dependency_message

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> typer.Exit:
    """Print a one-line red error and return the Exit to raise (``raise fail(...) from None``). The message is
    printed as it is (``[cpu]`` is text, not Rich markup)."""
    err_console.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code=1)


def user_errors(fn: F) -> F:
    """Decorate a CLI command so that a ZooError (or a ValueError/FileNotFoundError from validation), or a
    missing optional dependency, becomes a one-line message and exit code 1 instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (ZooError, ValueError, FileNotFoundError, PermissionError) as e:
            raise fail(str(e)) from None
        except ModuleNotFoundError as e:
            message = missing_dependency_message(e.name or "")
            if message is None:  # not an optional dependency: a broken install or a bug, keep the traceback
                raise
            raise fail(message) from None

    return wrapper  # type: ignore[return-value]


def _flags_take_no_value_type() -> None:
    """Typer 0.29 added a value-type column to the rich help panel and fills it for flags too
    (``--preview <bool>``, ``--help <bool>``), although a flag takes no value; its plain-text help formatter
    leaves the type out for flags and counters. Make the rich panel follow the same rule. Typer versions
    without the column (before 0.29) have nothing to change."""
    option = getattr(typer.core, "TyperOption", None)
    shown = getattr(option, "display_type_rich", None)
    if shown is None or getattr(shown, "flags_take_no_value", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        return shown(self, ctx)

    display_type_rich.flags_take_no_value = True  # type: ignore[attr-defined]
    option.display_type_rich = display_type_rich  # type: ignore[union-attr]


_flags_take_no_value_type()
