"""Audio model zoo: the registry of architectures, the Vital domain and the audio front end.

The public API is imported lazily so that ``zoo --help`` does not pay for importing torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "create_model": "zoo.registry",
    "list_models": "zoo.registry",
    "model_card": "zoo.registry",
    "model_entry": "zoo.registry",
    "register_model": "zoo.registry",
    "ModelCard": "zoo.registry",
    "TensorSpec": "zoo.registry",
    "ZooError": "zoo.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
