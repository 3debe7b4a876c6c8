"""The model registry: the one place that knows how to build every architecture.

A model family registers each variant with :func:`register_model`; everything else builds models with
:func:`create_model`. Registration records the metadata that :func:`model_card` reports.
"""

from __future__ import annotations

import difflib
import fnmatch
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

import torch
from torch import nn

from zoo.errors import DuplicateModelError, UnknownModelError


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor, without the batch axis (``shape`` excludes it)."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    description: str = ""

    def example(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """A random tensor of this spec with a leading batch axis."""
        shape = (batch_size, *self.shape)
        if self.dtype.startswith("int"):
            return torch.randint(0, 2, shape, generator=generator)
        return torch.randn(shape, generator=generator)


@dataclass(frozen=True)
class ModelEntry:
    """What registration recorded about a model, without building it (cheap: no weights are created)."""

    name: str
    builder: Callable[..., nn.Module]
    family: str
    task: str
    inputs: tuple[TensorSpec, ...]
    research_note: str
    exportable: bool


@dataclass(frozen=True)
class ModelCard:
    """What a user needs to know about a registered model before building it."""

    name: str
    family: str
    task: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    n_params: int
    n_trainable: int
    exportable: bool
    research_note: str
    params_by_module: dict[str, int] = field(default_factory=dict)

    def example_inputs(self, batch_size: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
        g = torch.Generator().manual_seed(seed)
        return tuple(spec.example(batch_size, g) for spec in self.inputs)


_REGISTRY: dict[str, ModelEntry] = {}
_loaded = False


def register_model(
    name: str,
    *,
    family: str,
    task: str,
    inputs: tuple[TensorSpec, ...],
    research_note: str = "",
    exportable: bool = True,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register a builder ``fn(**kwargs) -> nn.Module`` under ``name``.

    ``inputs`` describes the forward arguments (batch axis excluded), so tests and benchmarks can
    build example inputs for any model; ``research_note`` names the note the architecture comes from.
    """

    def decorator(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise DuplicateModelError(f"model {name!r} is already registered (by {_REGISTRY[name].builder})")
        _REGISTRY[name] = ModelEntry(name, fn, family, task, tuple(inputs), research_note, exportable)
        return fn

    return decorator


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        import zoo.models

        # Every module in zoo/models/ registers its variants on import.
        for info in pkgutil.iter_modules(zoo.models.__path__):
            import_module(f"zoo.models.{info.name}")


def model_entry(name: str) -> ModelEntry:
    """The registration record of ``name`` (family, task, inputs, exportable); unknown names raise
    :class:`UnknownModelError` naming close matches."""
    _ensure_loaded()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known models: {', '.join(sorted(_REGISTRY))}"
        raise UnknownModelError(f"unknown model {name!r}{hint}") from None


def list_models(pattern: str | None = None) -> list[str]:
    """Sorted registered names, optionally filtered by a shell-style pattern (``"*mlp"``)."""
    _ensure_loaded()
    names = sorted(_REGISTRY)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def create_model(name: str, **overrides: Any) -> nn.Module:
    """Build a registered model. Overrides that are ``None`` are dropped, so unset CLI options keep
    the model's own defaults."""
    entry = model_entry(name)
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    return entry.builder(**kwargs)


def count_params(model: nn.Module) -> tuple[int, int]:
    """(all parameters, trainable parameters)."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


def model_card(name: str, **overrides: Any) -> ModelCard:
    """Build the model once (on CPU) and describe it: parameters per top-level module, output shapes."""
    entry = model_entry(name)
    model = create_model(name, **overrides).eval()
    total, trainable = count_params(model)
    by_module = {child: sum(p.numel() for p in module.parameters()) for child, module in model.named_children()}
    inputs = tuple(s.example(1) for s in entry.inputs)
    with torch.no_grad():
        out = model(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    names = getattr(model, "output_names", None) or [f"output_{i}" for i in range(len(outs))]
    outputs = tuple(
        TensorSpec(n, tuple(t.shape[1:]), str(t.dtype).removeprefix("torch.")) for n, t in zip(names, outs, strict=True)
    )
    return ModelCard(
        name=entry.name,
        family=entry.family,
        task=entry.task,
        inputs=entry.inputs,
        outputs=outputs,
        n_params=total,
        n_trainable=trainable,
        exportable=entry.exportable,
        research_note=entry.research_note,
        params_by_module=by_module,
    )
