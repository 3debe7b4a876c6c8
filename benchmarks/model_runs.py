"""Latency and throughput of a model on every backend: eager PyTorch, TorchScript and ONNX Runtime.

What is timed (``scope``):

- ``end-to-end``: a batch of raw 44.1 kHz waveforms (B, 88200) through loudness normalisation, the log-mel front
  end and the model, outputs back on the host as numpy. Eager PyTorch uses the FFT front end (what eager code
  runs: ``WaveformModel(stft="fft")``); TorchScript and ONNX Runtime run the exported graphs, whose front end is
  the formulation their card names (``factored``), through the serving backends (``serving.backends``) exactly
  as ``zoo serve`` calls them.
- ``model``: the model alone on the log-mel (B, 1, 128, 173): the eager module, the bundle's TorchScript
  submodule, and the model's subgraph cut out of the bundle's ONNX file at its ``mel`` tensor.

The subject is an artifact folder (its files; eager loads the same weights from its TorchScript file through
``zoo.state_dict.load_weights``, strict) or a
registry name, exported on the fly into a temporary folder with ``training.export.export_model`` (untrained
weights: latency does not depend on their values). Backends are timed in interleaved rounds, so a change in the
load of a shared machine hits all of them alike; each row carries the counted FLOPs and the fraction of the
machine's peak matmul rate measured in the same run.
"""

from __future__ import annotations

import copy
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from benchmarks.flops import count_flops
from benchmarks.latency import Timer

BACKENDS = ("eager", "torchscript", "onnx")
SCOPES = ("end-to-end", "model")
DEVICES = ("cpu", "cuda")
REDUCED_PRECISIONS = ("fp16", "bf16")
# Largest difference from fp32 eager (on any output but the mel) at which an fp16/bf16 run still counts as the
# same model; above it the row is skipped and the skip reported.
REDUCED_PRECISION_TOLERANCE = 2e-2
SECONDS_PER_CONFIGURATION = 60.0  # a runner stops collecting iterations of one batch size after this long


@dataclass
class ModelBenchConfig:
    """``zoo bench NAME|ARTIFACT_DIR``'s options, validated so the error names the flag."""

    target: str
    backends: tuple[str, ...] = BACKENDS
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    scopes: tuple[str, ...] = SCOPES
    device: str = "cpu"
    warmup: int = 3
    iters: int = 20
    threads: int | None = None
    rounds: int = 5
    seconds_per_configuration: float = SECONDS_PER_CONFIGURATION

    def __post_init__(self) -> None:
        unknown = [b for b in self.backends if b not in BACKENDS]
        if unknown or not self.backends:
            raise ValueError(
                f"`--backend` takes {', '.join(BACKENDS)} (comma separated), got {', '.join(unknown) or 'none'}"
            )
        unknown = [s for s in self.scopes if s not in SCOPES]
        if unknown or not self.scopes:
            raise ValueError(
                f"`--scope` takes {', '.join(SCOPES)} (comma separated), got {', '.join(unknown) or 'none'}"
            )
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            raise ValueError(f"`--batch-sizes` must be positive integers, got {','.join(map(str, self.batch_sizes))}")
        if self.device not in DEVICES:
            raise ValueError(f"`--device` must be cpu or cuda, got {self.device!r}")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("`--device cuda` was asked for but torch sees no CUDA device; use `--device cpu`")
        if self.warmup < 0:
            raise ValueError(f"`--warmup` must be 0 or more, got {self.warmup}")
        if self.iters < 1:
            raise ValueError(f"`--iters` must be at least 1, got {self.iters}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"`--threads` must be at least 1, got {self.threads}")
        self.batch_sizes = tuple(sorted(set(self.batch_sizes)))
        self.rounds = max(1, min(self.rounds, self.iters))


@dataclass
class Subject:
    """What is benchmarked: the registered model, its eager module and (when a backend needs one) a bundle."""

    name: str
    model: nn.Module  # eager, on the CPU, eval mode
    weights: str  # where the eager weights come from
    takes_waveform: bool
    artifact: Any | None  # zoo.artifact.Artifact
    exported_here: bool
    front_end: Any | None  # zoo.audio.FrontEndConfig of a waveform model
    graph_stft: str = "factored"  # the front end formulation inside the exported graph


@dataclass
class Runner:
    """One timed configuration: ``fn(inputs)`` runs a batch and returns the outputs on the host."""

    backend: str
    scope: str
    precision: str
    front_end: str  # "fft", "factored", or "" for the model alone
    fn: Callable[[tuple[np.ndarray, ...]], object]
    flops_per_sample: int
    note: str = ""


@dataclass
class BenchRow:
    """One line of the results: a runner at a batch size."""

    backend: str
    scope: str
    front_end: str
    device: str
    precision: str
    batch_size: int
    iters: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    samples_per_s: float
    gflops: float  # GFLOP of one pass at this batch size (counted)
    gflop_per_s: float  # achieved, at the median latency
    peak_fraction: float  # gflop_per_s / the machine's peak matmul GFLOP/s in this precision
    speedup_vs_eager: float | None = None  # eager p50 / this p50, same scope, precision and batch size
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ModelBenchResult:
    subject: dict[str, Any]
    rows: list[BenchRow]
    skipped: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------
# The subject: a bundle folder or a registry name


def _eager_from_artifact(artifact: Any) -> tuple[nn.Module, str]:
    """Rebuild the bundle's architecture and load its weights from its TorchScript file when it has one (strict:
    a tensor the eager model lacks or misses is an error, not a silently fresh layer)."""
    from zoo.registry import create_model
    from zoo.state_dict import load_weights

    card = artifact.card
    model = create_model(artifact.model_name, **(card.checkpoint.model_config if card.checkpoint else {})).eval()
    if not any(f.format == "torchscript" for f in card.files):
        return model, "fresh initialisation (the bundle has no TorchScript file to take weights from)"
    path = artifact.file_for("torchscript")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated upstream, still supported
        scripted = torch.jit.load(str(path), map_location="cpu")
    source = scripted.model if artifact.takes_waveform else scripted
    load_weights(model, dict(source.state_dict()), source=f"the weights of {path}")
    return model, f"the bundle's ({path.name})"


def resolve_subject(target: str, backends: Sequence[str], work_dir: Path) -> Subject:
    """An artifact folder (``card.json`` inside) or a registry name, exported into ``work_dir`` for the
    exported backends."""
    from training.export import export_model, takes_log_mel
    from zoo.artifact import CARD_FILE, load_artifact
    from zoo.audio import FrontEndConfig
    from zoo.registry import create_model, model_entry

    path = Path(target)
    if path.is_dir() or (path.exists() and path.name == CARD_FILE):
        artifact = load_artifact(path if path.is_dir() else path.parent, verify=True)
        model, weights = _eager_from_artifact(artifact)
        graph_input = artifact.card.input
        return Subject(
            artifact.model_name,
            model,
            weights,
            artifact.takes_waveform,
            artifact,
            False,
            graph_input.front_end,
            graph_input.stft or "factored",
        )
    if path.exists():
        raise ValueError(f"{target} is a file; give a registered model name (`zoo list`) or an artifact folder")
    entry = model_entry(target)  # unknown names raise with close matches
    if not entry.exportable and any(b != "eager" for b in backends):
        raise ValueError(f"{target} is not exportable; benchmark it with `--backend eager`")
    torch.manual_seed(0)
    model = create_model(target).eval()
    waveform = takes_log_mel(target)
    front_end = FrontEndConfig() if waveform else None
    formats = [f for f in ("torchscript", "onnx") if f in backends]
    artifact = None
    if formats:
        result = export_model(model, target, work_dir / target, formats=formats)
        artifact = load_artifact(result.out_dir, verify=False)
    return Subject(
        target, model, "untrained (fresh initialisation, seed 0)", waveform, artifact, bool(formats), front_end
    )


# --------------------------------------------------------------------------------------------------
# Inputs


def make_inputs(subject: Subject, scope: str, batch_size: int) -> tuple[np.ndarray, ...]:
    """Deterministic inputs of a scope: noise waveforms for end to end, their log-mels for the model alone
    (inputs of a non-audio model: the registry card's example inputs)."""
    from zoo.audio import LogMelFrontEnd
    from zoo.registry import model_card

    if subject.takes_waveform:
        rng = np.random.default_rng(batch_size)
        waveform = (0.1 * rng.standard_normal((batch_size, subject.front_end.n_samples))).astype(np.float32)
        if scope == "end-to-end":
            return (waveform,)
        with torch.no_grad():
            mel = LogMelFrontEnd(subject.front_end, stft="fft")(torch.from_numpy(waveform))
        return (mel.numpy(),)
    return tuple(t.numpy() for t in model_card(subject.name).example_inputs(batch_size, seed=0))


def _host(out: Any) -> list[np.ndarray]:
    outs = out if isinstance(out, (tuple, list)) else (out,)
    return [t.float().cpu().numpy() for t in outs]


# --------------------------------------------------------------------------------------------------
# Runners


class _ReducedPrecision(nn.Module):
    """The model in fp16/bf16 behind an fp32 interface: float inputs cast down, outputs cast back up. The
    front end stays fp32 around it (its power spectrum reaches 1e6, beyond fp16's range)."""

    def __init__(self, model: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).to(dtype)
        self.dtype = dtype

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(*(x.to(self.dtype) if x.is_floating_point() else x for x in inputs))
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return tuple(o.float() for o in outs)


def _eager_fn(module: nn.Module, device: str, move: bool = True) -> Callable[[tuple[np.ndarray, ...]], object]:
    """Run ``module`` on ``device`` (a copy is moved there, the CPU original stays; ``move=False``: the module is
    already there, e.g. a TorchScript module loaded onto the device)."""
    if move and device != "cpu":
        module = copy.deepcopy(module).to(device)
    module = module.eval()

    def run(inputs: tuple[np.ndarray, ...]) -> object:
        with torch.inference_mode():
            return _host(module(*(torch.from_numpy(x).to(device) for x in inputs)))

    return run


def _waveform_fn(backend: Any) -> Callable[[tuple[np.ndarray, ...]], object]:
    """A ``serving.backends`` backend as ``zoo serve`` calls it: ``run`` on the (B, n_samples) waveforms."""

    def run(inputs: tuple[np.ndarray, ...]) -> object:
        return backend.run(inputs[0])

    return run


def _ort_fn(session: Any) -> Callable[[tuple[np.ndarray, ...]], object]:
    names = [i.name for i in session.get_inputs()]

    def run(inputs: tuple[np.ndarray, ...]) -> object:
        return session.run(None, dict(zip(names, inputs, strict=True)))

    return run


def _model_subgraph(artifact: Any, work_dir: Path) -> Path:
    """The bundle's ONNX graph from its ``mel`` tensor to the model's outputs (the model alone)."""
    import onnx.utils

    from zoo.errors import ArtifactError

    out = work_dir / f"{artifact.model_name}-model-only.onnx"
    outputs = [name for name in artifact.output_names if name != "mel"]
    try:
        onnx.utils.extract_model(str(artifact.file_for("onnx")), str(out), ["mel"], outputs)
    except Exception as e:  # noqa: BLE001 - onnx raises plain Exceptions for tensors it cannot find
        raise ArtifactError(
            f"cannot cut the model out of {artifact.file_for('onnx')} at its `mel` tensor ({e}); "
            "use `--scope end-to-end`"
        ) from None
    return out


def _flops_of(subject: Subject, scope: str, front_end: str) -> int:
    """Counted FLOPs of one sample through what a runner executes (its eager fp32 equivalent, on the CPU)."""
    from zoo.waveform_model import WaveformModel

    inputs = tuple(torch.from_numpy(x) for x in make_inputs(subject, scope, 1))
    if scope == "end-to-end":
        return count_flops(WaveformModel(subject.model, subject.front_end, stft=front_end).eval(), inputs)
    return count_flops(subject.model, inputs)


def _parity_error(reference: list[np.ndarray], got: list[np.ndarray], skip_last: bool) -> float:
    pairs = list(zip(reference, got, strict=True))
    if skip_last:  # the diagnostic mel
        pairs = pairs[:-1]
    return max(float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) for a, b in pairs)


def build_runners(
    subject: Subject, config: ModelBenchConfig, threads: int, work_dir: Path
) -> tuple[list[Runner], list[str]]:
    """Every (backend, scope, precision) runner the config asks for, and why others were skipped."""
    from serving.backends import OnnxRuntimeBackend, TorchScriptBackend
    from zoo.runtime import onnx_cuda_available, onnx_session
    from zoo.waveform_model import WaveformModel

    device = config.device
    runners: list[Runner] = []
    skipped: list[str] = []
    scopes = [s for s in config.scopes if s == "model" or subject.takes_waveform]
    if "end-to-end" in config.scopes and not subject.takes_waveform:
        skipped.append(f"end-to-end: {subject.name} does not take audio; only the model alone is timed")
    flops = {
        (scope, fe): _flops_of(subject, scope, fe)
        for scope in scopes
        for fe in (("fft", subject.graph_stft) if scope == "end-to-end" else ("",))
    }
    precisions = device_precisions(device)
    ort_cuda = device != "cuda" or onnx_cuda_available()
    loaded_ts = None
    for scope in scopes:
        for backend in config.backends:
            if backend == "onnx" and not ort_cuda:
                skipped.append(f"onnx {scope}: this onnxruntime has no CUDA execution provider (onnxruntime-gpu)")
                continue
            for precision in precisions:
                if precision != "fp32" and backend == "onnx":
                    continue  # ONNX Runtime runs the exported fp32 graph
                front_end = ("fft" if backend == "eager" else subject.graph_stft) if scope == "end-to-end" else ""
                note = "FFT front end (eager code)" if front_end == "fft" else ""
                note = f"{front_end} front end (exported graph)" if front_end not in ("", "fft") else note
                if backend == "eager" or precision != "fp32":
                    model = (
                        subject.model if precision == "fp32" else _ReducedPrecision(subject.model, _dtype(precision))
                    )
                    module = WaveformModel(model, subject.front_end, stft=front_end) if scope == "end-to-end" else model
                    if backend == "torchscript":  # reduced precision: trace the wrapped module on the device
                        from training.export import export_torchscript

                        example = tuple(torch.from_numpy(x).to(device) for x in make_inputs(subject, scope, 2))
                        module = export_torchscript(copy.deepcopy(module).to(device), example)
                    fn = _eager_fn(module, device, move=backend == "eager")
                elif backend == "torchscript":
                    if scope == "end-to-end":
                        fn = _waveform_fn(TorchScriptBackend(subject.artifact, device, threads))
                    else:
                        if loaded_ts is None:
                            with warnings.catch_warnings():
                                warnings.simplefilter("ignore", DeprecationWarning)
                                loaded_ts = torch.jit.load(
                                    str(subject.artifact.file_for("torchscript")), map_location=device
                                )
                        fn = _eager_fn(loaded_ts.model if subject.takes_waveform else loaded_ts, device, move=False)
                else:  # onnx
                    if scope == "end-to-end":
                        fn = _waveform_fn(OnnxRuntimeBackend(subject.artifact, device, threads))
                    else:
                        path = _model_subgraph(subject.artifact, work_dir) if subject.takes_waveform else None
                        fn = _ort_fn(onnx_session(path or subject.artifact.file_for("onnx"), device, threads))
                runners.append(Runner(backend, scope, precision, front_end, fn, flops[(scope, front_end)], note))
    return _check_reduced_precision(subject, runners, skipped)


def device_precisions(device: str) -> tuple[str, ...]:
    """fp32 everywhere; on CUDA also fp16, and bf16 where the GPU has it (Ampere and later)."""
    if device != "cuda":
        return ("fp32",)
    return tuple(p for p in ("fp32", *REDUCED_PRECISIONS) if p != "bf16" or torch.cuda.is_bf16_supported())


def _dtype(precision: str) -> torch.dtype:
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def _check_reduced_precision(
    subject: Subject, runners: list[Runner], skipped: list[str]
) -> tuple[list[Runner], list[str]]:
    """Keep fp16/bf16 runners only where their outputs stay within tolerance of fp32 eager."""
    kept: list[Runner] = []
    references: dict[str, list[np.ndarray]] = {}
    for runner in runners:
        if runner.precision == "fp32":
            kept.append(runner)
            continue
        inputs = make_inputs(subject, runner.scope, 2)
        if runner.scope not in references:
            module = subject.model
            if runner.scope == "end-to-end":
                from zoo.waveform_model import WaveformModel

                module = WaveformModel(subject.model, subject.front_end, stft="fft")
            references[runner.scope] = _eager_fn(copy.deepcopy(module), "cpu")(inputs)
        error = _parity_error(references[runner.scope], runner.fn(inputs), runner.scope == "end-to-end")
        if error <= REDUCED_PRECISION_TOLERANCE:
            runner.note = f"{runner.note}; max |diff| to fp32 {error:.2g}".lstrip("; ")
            kept.append(runner)
        else:
            skipped.append(
                f"{runner.backend} {runner.scope} {runner.precision}: outputs differ from fp32 by {error:.3g} "
                f"(> {REDUCED_PRECISION_TOLERANCE:g})"
            )
    return kept, skipped


# --------------------------------------------------------------------------------------------------
# Timing


def time_runners(
    runners: list[Runner],
    subject: Subject,
    config: ModelBenchConfig,
    peak_gflops: dict[str, float],
    progress: Callable[[str], None] | None = None,
) -> list[BenchRow]:
    """Every runner at every batch size; within a batch size, runners take turns in ``config.rounds`` rounds."""
    rows: list[BenchRow] = []
    for batch_size in config.batch_sizes:
        inputs = {scope: make_inputs(subject, scope, batch_size) for scope in {r.scope for r in runners}}
        timers = [Timer(lambda r=r, x=inputs[r.scope]: r.fn(x)) for r in runners]
        for runner, timer in zip(runners, timers, strict=True):
            if progress:
                progress(f"batch {batch_size}: warming up {runner.backend} {runner.scope} {runner.precision}")
            timer.warmup(config.warmup)
        chunks = [len(c) for c in np.array_split(np.arange(config.iters), config.rounds)]
        for round_index, chunk in enumerate(chunks):
            if progress:
                progress(f"batch {batch_size}: round {round_index + 1}/{len(chunks)}")
            for timer in timers:
                timer.measure(chunk, config.seconds_per_configuration)
        for runner, timer in zip(runners, timers, strict=True):
            rows.append(_row(runner, timer, batch_size, config.device, peak_gflops))
    _speedups(rows)
    return rows


def _row(runner: Runner, timer: Timer, batch_size: int, device: str, peak_gflops: dict[str, float]) -> BenchRow:
    stats = timer.stats()
    gflops = runner.flops_per_sample * batch_size / 1e9
    rate = gflops / (stats.p50_ms / 1e3) if stats.p50_ms > 0 else float("nan")
    peak = peak_gflops.get(runner.precision) or peak_gflops.get("fp32") or float("nan")
    total_s = sum(timer.samples)
    return BenchRow(
        backend=runner.backend,
        scope=runner.scope,
        front_end=runner.front_end,
        device=device,
        precision=runner.precision,
        batch_size=batch_size,
        iters=stats.count,
        p50_ms=_sig(stats.p50_ms),
        p90_ms=_sig(stats.p90_ms),
        p99_ms=_sig(stats.p99_ms),
        mean_ms=_sig(stats.mean_ms),
        samples_per_s=_sig(batch_size * stats.count / total_s) if total_s > 0 else float("nan"),
        gflops=_sig(gflops),
        gflop_per_s=_sig(rate),
        peak_fraction=_sig(rate / peak) if math.isfinite(peak) and peak > 0 else float("nan"),
        note=runner.note,
    )


def _sig(value: float, digits: int = 4) -> float:
    """``value`` rounded to ``digits`` significant digits (tiny models keep their FLOPs, large ones no noise)."""
    return float(f"{value:.{digits}g}")


def _speedups(rows: list[BenchRow]) -> None:
    eager = {(r.scope, r.precision, r.batch_size): r.p50_ms for r in rows if r.backend == "eager"}
    for row in rows:
        base = eager.get((row.scope, row.precision, row.batch_size))
        row.speedup_vs_eager = _sig(base / row.p50_ms) if base and row.p50_ms > 0 else None


def default_threads(config: ModelBenchConfig) -> int:
    """``--threads``, else torch's default (the physical cores)."""
    return config.threads or torch.get_num_threads() or os.cpu_count() or 1
