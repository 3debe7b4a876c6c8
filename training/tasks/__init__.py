"""Tasks by model family. A family's task module registers its class with ``register_task``."""

from __future__ import annotations

import pkgutil
from importlib import import_module

from training.tasks.base import Batch, Callback, Task

__all__ = ["Batch", "Callback", "Task", "register_task", "task_for_family"]

_TASKS: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    if cls.family in _TASKS:
        raise ValueError(f"a task for family {cls.family!r} is already registered")
    _TASKS[cls.family] = cls
    return cls


def task_for_family(family: str) -> type[Task]:
    import training.tasks as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name != "base":
            import_module(f"training.tasks.{info.name}")
    if family not in _TASKS:
        raise ValueError(f"no training task for model family {family!r}; known: {', '.join(sorted(_TASKS))}")
    return _TASKS[family]


def recipe_start(task_cls: type[Task], recipe: str | None) -> str | None:
    """The recipe whose run a task's ``recipe`` starts from (its ``start_from``), or None."""
    return getattr(getattr(task_cls, "recipes", {}).get(recipe), "start_from", None)
