"""Optional dependencies: which extra of the package installs each one, and the one-line message a user gets
when it is missing (never a traceback).

Library code that needs one calls :func:`import_optional`; the CLI (``zoo.console.user_errors``) turns a
``ModuleNotFoundError`` for any module listed here into the same message, wherever the import happened.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

from zoo.errors import MissingDependencyError

PACKAGE = "audio-model-zoo"

# Top-level module -> (extra that installs it, or None for a package outside the extras; what needs it).
OPTIONAL_MODULES: dict[str, tuple[str | None, str]] = {
    "onnxruntime": ("cpu", "to run ONNX models (`zoo export` parity, `zoo predict`, `zoo serve`, `zoo bench`)"),
    "requests": ("dev", "by `zoo bench --http` and the server tests"),
    "librosa": ("dev", "by the tests of the front end"),
    "tensorboard": (None, "by `--logger tensorboard`"),
    "wandb": (None, "by `--logger wandb`"),
}
_ALTERNATIVES = {"cpu": " (or the `[gpu]` extra for ONNX Runtime's CUDA build)"}


def missing_dependency_message(module: str) -> str | None:
    """The install hint for an optional module that could not be imported; None for any other module."""
    top = module.split(".")[0]
    if top not in OPTIONAL_MODULES:
        return None
    extra, needed = OPTIONAL_MODULES[top]
    how = f"pip install '{PACKAGE}[{extra}]'{_ALTERNATIVES.get(extra, '')}" if extra else f"pip install {top}"
    return f"{top} is not installed; it is needed {needed}. Install it with: {how}"


def import_optional(module: str) -> ModuleType:
    """Import an optional module, or raise :class:`MissingDependencyError` naming the extra to install."""
    try:
        return import_module(module)
    except ModuleNotFoundError as e:
        message = missing_dependency_message(e.name or module)
        if message is None:
            raise
        raise MissingDependencyError(message) from None
