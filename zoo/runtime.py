"""ONNX Runtime sessions: the one place that sets up providers, threads and spinning.

Serving (``serving.backends``), export parity (``training.parity``) and the benchmarks all open their
sessions here, so a bundle runs the same way everywhere. ONNX Runtime is an optional extra (``cpu`` or
``gpu``); without it every entry point says so in one line (``zoo.optional``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from zoo.errors import ArtifactError
from zoo.optional import import_optional

ORT_SPINNING_KEY = "session.intra_op.allow_spinning"
ORT_DEVICES = ("cpu", "cuda")


def import_onnxruntime() -> ModuleType:
    """The ``onnxruntime`` module, quiet (errors only); without it, ``zoo.optional``'s one-line
    :class:`~zoo.errors.MissingDependencyError` naming the extra to install."""
    ort = import_optional("onnxruntime")
    ort.set_default_logger_severity(3)  # provider probing must not print a wall of warnings
    return ort


def onnx_cuda_available() -> bool:
    """Whether this onnxruntime build has the CUDA execution provider (onnxruntime-gpu)."""
    return "CUDAExecutionProvider" in import_onnxruntime().get_available_providers()


def onnx_providers(device: str = "cpu") -> list[Any]:
    """Execution providers for ``cpu`` or ``cuda[:index]`` (CUDA first, the CPU behind it for unsupported ops)."""
    kind, _, index = device.partition(":")
    if kind not in ORT_DEVICES:
        raise ValueError(f"an ONNX Runtime device is cpu or cuda[:index], got {device!r}")
    if kind == "cuda":
        return [("CUDAExecutionProvider", {"device_id": int(index or 0)}), "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def onnx_session(path: str | Path, device: str = "cpu", threads: int | None = None, spinning: bool = False) -> Any:
    """An ``onnxruntime.InferenceSession`` for the ONNX file at ``path``.

    ``threads``: intra-op threads (one inter-op thread); None leaves ONNX Runtime's default (the cores).
    ``spinning``: whether idle intra-op threads spin. Off by default: in a server, the next request's decoding
    and note finding run on the same cores right after a forward pass, and spinning threads made them about
    1.6x slower (78 against 50 ms, interleaved runs on a shared 2-core machine; see benchmarks/results).
    Raises :class:`ArtifactError` in one line when ONNX Runtime cannot load the file (not ONNX, truncated,
    unsupported ops). With ``cuda``, check ``session.get_providers()``: ONNX Runtime falls back to the CPU
    when the CUDA provider cannot start."""
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if not spinning:
        options.add_session_config_entry(ORT_SPINNING_KEY, "0")
    providers = onnx_providers(device)
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as e:  # noqa: BLE001 - ORT raises its own exception types for unreadable models
        reason = " ".join(str(e).split())[:300] or type(e).__name__
        raise ArtifactError(f"ONNX Runtime cannot load {path}: {reason}") from None
    return session


def run_onnx(path: str | Path, inputs: Mapping[str, Any], threads: int | None = None) -> list[np.ndarray]:
    """Run an ONNX file once on the CPU provider: ``inputs`` by input name (numpy arrays or CPU tensors)."""
    session = onnx_session(path, "cpu", threads)
    return session.run(None, {name: np.ascontiguousarray(np.asarray(value)) for name, value in inputs.items()})
