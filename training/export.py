"""Export a model to TorchScript and ONNX (dynamic batch axis), and check parity with eager."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn


def export_torchscript(model: nn.Module, example_inputs: tuple[torch.Tensor, ...]) -> torch.jit.ScriptModule:
    """Trace the model in eval mode. The zoo's models have no data-dependent control flow at inference
    (growing architectures are exported with their masks frozen), and tracing keeps their tuple outputs,
    which scripting cannot type."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated upstream, still supported
        return torch.jit.trace(model.eval(), example_inputs, check_trace=False)


def export_onnx(
    model: nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    path: str | Path,
    input_names: Sequence[str],
    output_names: Sequence[str],
    opset: int = 18,
) -> Path:
    """Export with torch.export (dynamo) with a dynamic batch axis on every input and output."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch", min=1, max=4096)
    dynamic_shapes = tuple({0: batch} for _ in example_inputs)
    # The exporter logs every step and warns about unrelated torchvision ops; keep the user's terminal clean.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model.eval(),
            example_inputs,
            dynamo=True,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_shapes=dynamic_shapes,
            opset_version=opset,
            verbose=False,
            external_data=False,
        )
    program.save(str(path))
    return path


def check_onnx(path: str | Path) -> None:
    """Run onnx.checker's full check (shape inference included)."""
    import onnx

    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def run_onnx(path: str | Path, inputs: dict[str, torch.Tensor]) -> list:
    """Run an ONNX file with ONNX Runtime on the CPU provider."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {k: v.numpy() for k, v in inputs.items()})
