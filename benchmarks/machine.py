"""The machine a benchmark ran on, and its limit: the peak matmul rate measured in the same run.

On a CPU the peak is the best of repeated ``torch.mm`` calls on square float32 matrices with the threads the
benchmark uses; on a GPU the same with CUDA events, per precision. Achieved rates of a model are reported as a
fraction of this figure, so results from different (or differently loaded) machines compare as ratios.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, field
from typing import Any

CPU_MATMUL_SIZE = 1024  # 2.1 GFLOP per product: long enough to time, short enough for caches to stay warm
GPU_MATMUL_SIZE = 8192


def cpu_model() -> str:
    """The processor's name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    """The SIMD extensions that decide a CPU's matmul rate (AVX2, FMA, AVX-512 ...)."""
    wanted = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "f16c")
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [flag for flag in wanted if flag in have]
    except OSError:
        pass
    return []


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages (None where the OS does not report them)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


@dataclass
class MachineInfo:
    """What a result needs beside it to be read: hardware, software, threads, load and the measured peak."""

    cpu: str
    cores: int
    cpu_flags: list[str]
    threads: int
    python: str
    torch: str
    onnxruntime: str | None
    onnxruntime_providers: list[str]
    device: str
    gpu: str | None = None
    load_average_before: list[float] | None = None
    load_average_after: list[float] | None = None
    peak_gflops: dict[str, float] = field(default_factory=dict)  # by precision: fp32, fp16, bf16

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe_machine(device: str, threads: int) -> MachineInfo:
    """Everything but the peak (see :func:`measure_peak_gflops`)."""
    import torch

    try:
        import onnxruntime as ort

        ort_version: str | None = ort.__version__
        providers = list(ort.get_available_providers())
    except ImportError:
        ort_version, providers = None, []
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else None
    return MachineInfo(
        cpu=cpu_model(),
        cores=os.cpu_count() or 1,
        cpu_flags=cpu_flags(),
        threads=threads,
        python=platform.python_version(),
        torch=torch.__version__,
        onnxruntime=ort_version,
        onnxruntime_providers=providers,
        device=device,
        gpu=gpu,
        load_average_before=load_average(),
    )


def _cpu_peak(seconds: float) -> float:
    import torch

    n = CPU_MATMUL_SIZE
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    flops = 2.0 * n**3
    torch.mm(a, b, out=out)  # first call: allocations and kernel selection
    best = float("inf")
    deadline = time.perf_counter() + seconds
    runs = 0
    while runs < 3 or (time.perf_counter() < deadline and runs < 200):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
        runs += 1
    return flops / best / 1e9


def _cuda_peak(dtype_name: str, seconds: float) -> float:
    import torch

    dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype_name]
    n = GPU_MATMUL_SIZE
    a = torch.randn(n, n, device="cuda", dtype=dtype)
    b = torch.randn(n, n, device="cuda", dtype=dtype)
    torch.mm(a, b)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    best = float("inf")
    deadline = time.perf_counter() + seconds
    runs = 0
    while runs < 3 or (time.perf_counter() < deadline and runs < 100):
        start.record()
        torch.mm(a, b)
        end.record()
        end.synchronize()
        best = min(best, start.elapsed_time(end) / 1e3)
        runs += 1
    return 2.0 * n**3 / best / 1e9


def measure_peak_gflops(device: str, precisions: tuple[str, ...] = ("fp32",), seconds: float = 2.0) -> dict[str, float]:
    """Best matmul rate in GFLOP/s per precision, with the current torch thread setting.

    On a CPU only fp32 is measured (the models run in fp32 there). On CUDA, fp32 is measured as torch
    runs it by default (TF32 tensor cores off unless the user turned them on)."""
    if device == "cuda":
        return {p: round(_cuda_peak(p, seconds), 1) for p in precisions}
    return {"fp32": round(_cpu_peak(seconds), 1)}
