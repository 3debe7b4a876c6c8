"""Runtimes for an exported bundle: ONNX Runtime (CUDA or CPU execution provider) and TorchScript.

Both take a batch of waveforms (B, 88200) float32 and return the card's outputs in order as numpy arrays.
"""

from __future__ import annotations

import warnings
from typing import Protocol

import numpy as np

from zoo.artifact import Artifact
from zoo.errors import ArtifactError, ZooError
from zoo.runtime import import_onnxruntime, onnx_session

BACKENDS = ("onnx", "torchscript")


class DeviceError(ZooError, ValueError):
    """A device that the chosen backend cannot use here."""


class Backend(Protocol):
    name: str
    device: str

    def run(self, inputs: np.ndarray) -> list[np.ndarray]: ...


def _nvidia_gpu_count() -> int:
    from litserve.connector import check_cuda_with_nvidia_smi

    return check_cuda_with_nvidia_smi()


def resolve_device(backend: str, device: str) -> tuple[str, str]:
    """(``"cpu"`` or ``"cuda"``, one line saying why) for ``--device auto|cpu|cuda``.

    ``auto`` takes CUDA when the backend can use it (ONNX Runtime: the onnxruntime-gpu build and an NVIDIA
    GPU; TorchScript: a CUDA build of torch with a GPU), else the CPU; ``cuda`` raises when it cannot."""
    if backend not in BACKENDS:
        raise ValueError(f"`--backend` must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"`--device` must be auto, cpu or cuda, got {device!r}")
    if device == "cpu":
        return "cpu", f"{backend}: running on the CPU (--device cpu)"
    if backend == "onnx":
        has_provider = "CUDAExecutionProvider" in import_onnxruntime().get_available_providers()
        gpus = _nvidia_gpu_count() if has_provider else 0
        if has_provider and gpus:
            return "cuda", f"ONNX Runtime: CUDA execution provider on {gpus} GPU(s)"
        why = "no NVIDIA GPU found" if has_provider else "this onnxruntime build has no CUDA provider (onnxruntime-gpu)"
    else:
        import torch

        if torch.cuda.is_available():
            return "cuda", f"TorchScript: CUDA on {torch.cuda.device_count()} GPU(s)"
        why = "torch sees no CUDA device"
    if device == "cuda":
        raise DeviceError(f"`--device cuda` was asked for but {why}; use `--device cpu` or `--device auto`")
    return "cpu", f"{'ONNX Runtime' if backend == 'onnx' else 'TorchScript'}: CPU ({why})"


class OnnxRuntimeBackend:
    """An ONNX Runtime session; ``device`` is ``cpu`` or ``cuda[:index]``."""

    name = "onnxruntime"

    def __init__(self, artifact: Artifact, device: str = "cpu", threads: int | None = None) -> None:
        # Idle intra-op threads sleep (zoo.runtime's default): the next request's decoding and note finding
        # run on the same cores right after a forward pass.
        self.session = onnx_session(artifact.file_for("onnx"), device, threads)
        if device.startswith("cuda") and "CUDAExecutionProvider" not in self.session.get_providers():
            raise DeviceError(f"ONNX Runtime could not start the CUDA execution provider on {device}")
        self.device = device
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = artifact.output_names

    def run(self, inputs: np.ndarray) -> list[np.ndarray]:
        return self.session.run(self.output_names, {self.input_name: np.ascontiguousarray(inputs, dtype=np.float32)})


class TorchScriptBackend:
    """A TorchScript module on ``cpu`` or ``cuda[:index]``."""

    name = "torchscript"

    def __init__(self, artifact: Artifact, device: str = "cpu", threads: int | None = None) -> None:
        import torch

        if threads and device == "cpu":
            torch.set_num_threads(threads)
        path = artifact.file_for("torchscript")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated upstream, still works
                self.module = torch.jit.load(str(path), map_location=device).eval()
        except Exception as e:  # noqa: BLE001 - torch.jit raises RuntimeError subclasses and others
            reason = " ".join(str(e).split())[:300] or type(e).__name__
            raise ArtifactError(f"TorchScript cannot load {path}: {reason}") from None
        self.device = device
        self._torch = torch

    def run(self, inputs: np.ndarray) -> list[np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            out = self.module(torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32)).to(self.device))
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return [t.float().cpu().numpy() for t in outs]


def check_loadable(artifact: Artifact, backend: str) -> None:
    """Load the backend's model file once on the CPU and drop it: a file the runtime cannot read (not ONNX, not
    TorchScript, truncated) is refused here in one line, before any worker starts, with an ArtifactError."""
    create_backend(artifact, backend, "cpu", threads=1 if backend == "onnx" else None)


def create_backend(artifact: Artifact, backend: str, device: str = "cpu", threads: int | None = None) -> Backend:
    if backend == "onnx":
        return OnnxRuntimeBackend(artifact, device, threads)
    if backend == "torchscript":
        return TorchScriptBackend(artifact, device, threads)
    raise ValueError(f"`--backend` must be one of {', '.join(BACKENDS)}, got {backend!r}")
