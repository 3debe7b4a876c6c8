"""Export a model to TorchScript and ONNX (dynamic batch axis), and check parity with eager.

``export_checkpoint`` writes an artifact bundle (``zoo export``): ``model.onnx`` and/or ``model.ts`` and a
``card.json`` that says everything a runtime needs. For a model whose input is the log-mel, the exported
graph takes the raw 44.1 kHz waveform (B, 88200) and contains the loudness normalisation and the log-mel
front end (:class:`WaveformModel`), so no client reproduces preprocessing. Parity between eager, TorchScript
and ONNX Runtime is measured at export on audio rendered with Vital, and export fails above tolerance.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from zoo.artifact import ARTIFACT_FORMAT, CARD_FILE, sha256_file
from zoo.audio import (
    PEAK_LIMIT,
    SILENCE_RMS_DB,
    TARGET_RMS_DB,
    FrontEndConfig,
    LogMelFrontEnd,
    fit_length,
    normalize_loudness,
    rms_db,
)
from zoo.errors import ExportError, ParityError
from zoo.files import replace_atomically


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
    _rename_clashing_values(program.model.graph)
    program.save(str(path))
    return path


def _rename_clashing_values(graph: Any) -> None:
    """Give intermediate values that carry an output's name a name of their own.

    The exporter names values after their op (``cat``, ``cat_1``, ...) and then renames the graph outputs as
    asked; an output called ``cat_1`` next to the second ``torch.cat`` of the graph leaves two values named
    ``cat_1``, which breaks single assignment (``onnx.checker`` refuses the file)."""
    outputs = {value.name: value for value in graph.outputs}
    taken = {value.name for node in graph for value in node.outputs} | {value.name for value in graph.inputs}
    for node in graph:
        for value in node.outputs:
            if value.name in outputs and value is not outputs[value.name]:
                index = 0
                while f"{value.name}_{index}_" in taken:
                    index += 1
                value.name = f"{value.name}_{index}_"
                taken.add(value.name)


def check_onnx(path: str | Path) -> None:
    """Run onnx.checker's full check (shape inference included)."""
    import onnx

    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def run_onnx(path: str | Path, inputs: dict[str, torch.Tensor]) -> list:
    """Run an ONNX file with ONNX Runtime on the CPU provider."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {k: v.numpy() for k, v in inputs.items()})


# --------------------------------------------------------------------------------------------------
# Artifact bundles: waveform-in graphs, parity on rendered audio, card.json

FILES = {"onnx": "model.onnx", "torchscript": "model.ts"}
PARITY_NOTES = (36, 48, 60, 72, 84)
# Max absolute difference allowed between eager and an exported runtime, on every output (continuous values
# in [0, 1], logits, and the log1p mel). Float32 reassociation in the DFT matmuls and the ResNet
# stays about two orders of magnitude below this.
PARITY_TOLERANCE = 1e-3


class WaveformModel(nn.Module):
    """Raw waveform (B, n_samples) at 44.1 kHz -> the model's outputs, then the log-mel it saw.

    Loudness normalisation (the arithmetic of ``zoo.audio.normalize_loudness``: -20 dBFS RMS, then down to
    a 0.99 peak) and :class:`~zoo.audio.LogMelFrontEnd` run inside the graph. Normalising an already
    normalised clip is the identity, so clips prepared by ``zoo.notes.prepare_note_clip`` pass unchanged.
    Exported graphs use the factored-DFT formulation of the front end (``stft="factored"``, the default): plain
    MatMuls that every ONNX Runtime provider runs, equal to the eager FFT one. ``stft="fft"`` gives the eager
    variant (what ``zoo bench`` times as eager end to end), ``stft="conv"`` the Conv1d DFT of earlier bundles.
    The last output, ``mel`` (B, 1, 128, 173), lets a runtime check its features against training's."""

    def __init__(self, model: nn.Module, front_end: FrontEndConfig | None = None, stft: str = "factored") -> None:
        super().__init__()
        self.front_end = LogMelFrontEnd(front_end, stft=stft)
        self.model = model
        self.target_rms = 10 ** (TARGET_RMS_DB / 20)
        self.peak = PEAK_LIMIT

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, ...]:
        rms = waveform.pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(1e-12)  # (B, 1)
        x = waveform * (self.target_rms / rms)
        top = x.abs().amax(dim=1, keepdim=True)
        x = x * torch.clamp(self.peak / top.clamp_min(1e-12), max=1.0)
        mel = self.front_end(x)  # (B, 1, 128, 173)
        out = self.model(mel)
        outs = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        return (*outs, mel)


@dataclass
class ExportResult:
    """What ``export_checkpoint`` wrote: the bundle folder, its files by format, and the card."""

    out_dir: Path
    files: dict[str, Path]
    card: dict[str, Any]


def takes_log_mel(model_name: str) -> bool:
    """True for registered models whose single input is the log-mel of ``zoo.audio`` (these are exported
    with the waveform front end in the graph)."""
    from zoo.registry import model_entry

    inputs = model_entry(model_name).inputs
    return len(inputs) == 1 and tuple(inputs[0].shape) == FrontEndConfig().output_shape


def render_parity_audio(notes: Sequence[int] = PARITY_NOTES, seed: int = 0) -> np.ndarray:
    """Real synth audio for parity checks: one random Tier-1 preset per note (the dataset's sampler),
    rendered with Vital and loudness-normalised like the training clips. (len(notes), 88200) float32.
    Presets that render silence are replaced by the sampler's next attempt."""
    from zoo.vital import tier1_spec
    from zoo.vital.render import VitalRenderer
    from zoo.vital.sampler import PresetSampler

    spec = tier1_spec()
    sampler, renderer = PresetSampler(spec, seed=seed), VitalRenderer(spec)
    clips = []
    for index, note in enumerate(notes):
        for attempt in range(20):
            continuous, categorical = sampler.sample(index, attempt)
            audio = fit_length(renderer.render_vector(continuous, categorical, int(note)))
            if np.isfinite(audio).all() and rms_db(audio) > SILENCE_RMS_DB + 10:
                clips.append(normalize_loudness(audio))
                break
        else:
            raise ExportError(f"no audible parity preset at note {note} in 20 draws (seed {seed})")
    return np.stack(clips)


def _as_tuple(out: Any) -> tuple[torch.Tensor, ...]:
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _max_errors(
    reference: Sequence[torch.Tensor], got: Sequence[np.ndarray | torch.Tensor], names: Sequence[str]
) -> dict[str, float]:
    errors = {}
    for name, ref, value in zip(names, reference, got, strict=True):
        value = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value))
        if value.shape != ref.shape:
            raise ParityError(f"output {name!r} has shape {tuple(value.shape)}, eager gives {tuple(ref.shape)}")
        errors[name] = float((value.float() - ref.float()).abs().max())
    return errors


def default_artifact_dir(checkpoint: str | Path, model_name: str, root: str | Path = "artifacts") -> Path:
    """``artifacts/<model>/<run>`` for a checkpoint under ``runs/<model>/<run>/``, else
    ``artifacts/<model>/<timestamp>``."""
    path = Path(checkpoint).resolve()
    run = path.parent.name if path.parent.parent.name == model_name else time.strftime("%Y%m%d-%H%M%S")
    return Path(root) / model_name / run


def export_model(
    model: nn.Module,
    model_name: str,
    out_dir: str | Path,
    *,
    formats: Sequence[str] = tuple(FILES),
    front_end: FrontEndConfig | None = None,
    spec: dict | None = None,
    version: str | None = None,
    tolerance: float = PARITY_TOLERANCE,
    parity_audio: np.ndarray | None = None,
    metadata: dict[str, Any] | None = None,
) -> ExportResult:
    """Export ``model`` (a registered ``model_name``) into ``out_dir`` and write its card.

    Log-mel models are wrapped in :class:`WaveformModel`; others are exported with their own inputs (the
    registry's example inputs serve for parity). Every runtime's outputs on the parity inputs are compared
    with eager; above ``tolerance`` a :class:`ParityError` is raised and nothing is left in ``out_dir``.
    The bundle is written to a temporary sibling folder and renamed into place when complete."""
    from zoo.registry import model_card

    unknown = [f for f in formats if f not in FILES]
    if unknown or not formats:
        raise ValueError(f"`--format` takes {', '.join(FILES)} (comma separated), got {', '.join(formats) or 'none'}")
    card_info = model_card(model_name)
    if not card_info.exportable:
        raise ExportError(f"{model_name} is not exportable (its registry card says so)")
    out_dir = Path(out_dir)
    if (out_dir / CARD_FILE).exists():
        raise ExportError(f"{out_dir} already holds an artifact; choose another `--out`")
    front_end = front_end or FrontEndConfig()
    model = model.eval()
    base_names = list(getattr(model, "output_names", None) or [f"output_{i}" for i in range(len(card_info.outputs))])

    if takes_log_mel(model_name):
        module: nn.Module = WaveformModel(model, front_end).eval()
        input_names, output_names = ["waveform"], [*base_names, "mel"]
        audio = parity_audio if parity_audio is not None else render_parity_audio()
        parity_inputs: tuple[torch.Tensor, ...] = (torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)),)
        example = (parity_inputs[0][:2],)
        input_card = {
            "name": "waveform",
            "shape": ["batch", front_end.n_samples],
            "dtype": "float32",
            "kind": "waveform",
            "sample_rate": front_end.sample_rate,
            "seconds": front_end.n_samples / front_end.sample_rate,
            "channels": 1,
            "preprocessing": (
                "none required: loudness normalisation (-20 dBFS RMS, 0.99 peak) and the log-mel front end are "
                "in the graph; the server cuts the main note's 2 s window with zoo.notes.prepare_note_clip"
            ),
            "loudness": {"target_rms_db": TARGET_RMS_DB, "peak": PEAK_LIMIT},
            "front_end": front_end.to_dict(),
            "stft": module.front_end.stft,  # the graph's formulation (bundles without this key: "conv")
        }
        parity_source = (
            f"random Tier-1 presets rendered by Vital at MIDI notes {list(PARITY_NOTES)}"
            if parity_audio is None
            else "given audio"
        )
    else:
        module = model
        input_names = [s.name for s in card_info.inputs]
        output_names = base_names
        parity_inputs = card_info.example_inputs(batch_size=3, seed=1)
        example = card_info.example_inputs(batch_size=2, seed=0)
        input_card = {
            "name": input_names[0] if len(input_names) == 1 else input_names,
            "inputs": [{"name": s.name, "shape": ["batch", *s.shape], "dtype": s.dtype} for s in card_info.inputs],
            "kind": "tensor",
        }
        parity_source = "random inputs of the registry card (seed 1)"

    with torch.no_grad():
        reference = _as_tuple(module(*parity_inputs))
    if len(reference) != len(output_names):
        raise ExportError(f"{model_name} returns {len(reference)} outputs but names {len(output_names)}")

    tmp_dir = out_dir.parent / f".{out_dir.name}.partial"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    try:
        errors: dict[str, dict[str, float]] = {}
        if "torchscript" in formats:
            path = tmp_dir / FILES["torchscript"]
            export_torchscript(module, example).save(str(path))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated upstream, still supported
                loaded = torch.jit.load(str(path), map_location="cpu")
            with torch.no_grad():
                errors["torchscript"] = _max_errors(reference, _as_tuple(loaded(*parity_inputs)), output_names)
        if "onnx" in formats:
            path = export_onnx(module, example, tmp_dir / FILES["onnx"], input_names, output_names)
            check_onnx(path)
            got = run_onnx(path, dict(zip(input_names, parity_inputs, strict=True)))
            errors["onnxruntime"] = _max_errors(reference, got, output_names)
        worst = {runtime: max(errs.values()) for runtime, errs in errors.items()}
        parity = {
            "reference": "eager PyTorch (float32, CPU)",
            "inputs": parity_source,
            "batch_size": int(parity_inputs[0].shape[0]),
            "tolerance": tolerance,
            "max_abs_error": worst,
            "max_abs_error_by_output": errors,
        }
        failed = {runtime: err for runtime, err in worst.items() if not err <= tolerance}
        if failed:
            detail = ", ".join(f"{runtime} {err:.3g}" for runtime, err in failed.items())
            raise ParityError(f"exported {model_name} differs from eager above tolerance {tolerance:g}: {detail}")

        files = {fmt: tmp_dir / FILES[fmt] for fmt in formats}
        with torch.no_grad():
            out_shapes = [tuple(t.shape[1:]) for t in reference]
        card = {
            "format": ARTIFACT_FORMAT,
            "model": {
                "name": model_name,
                "version": version or out_dir.name,
                "family": card_info.family,
                "task": card_info.task,
                "n_params": card_info.n_params,
            },
            "input": input_card,
            "outputs": [
                {"name": name, "shape": ["batch", *shape], "dtype": "float32", "role": _output_role(name)}
                for name, shape in zip(output_names, out_shapes, strict=True)
            ],
            "spec": spec,
            "files": {
                FILES[fmt]: {"format": fmt, "sha256": sha256_file(path), "bytes": path.stat().st_size}
                for fmt, path in files.items()
            },
            "onnx": {"opset": 18, "dynamic_axes": {"batch": [1, 4096]}} if "onnx" in formats else None,
            "parity": parity,
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": _runtime_versions(),
            **(metadata or {}),
        }
        (tmp_dir / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
        replace_atomically(tmp_dir, out_dir)  # an empty folder at out_dir is replaced, a non-empty one refused
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return ExportResult(out_dir, {fmt: out_dir / FILES[fmt] for fmt in formats}, card)


def _output_role(name: str) -> str:
    if name == "continuous":
        return "continuous parameters, normalised to [0, 1], in the order of spec.continuous"
    if name.startswith("cat_"):
        return f"logits of categorical parameter {name[4:]} (spec.categorical order)"
    if name == "mel":
        return "the log1p mel spectrogram the model saw (diagnostic)"
    return "model output"


def _runtime_versions() -> dict[str, str]:
    import onnx

    versions = {"torch": torch.__version__, "onnx": onnx.__version__}
    try:
        import onnxruntime

        versions["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return versions


def export_checkpoint(
    checkpoint: str | Path,
    out: str | Path | None = None,
    *,
    formats: Sequence[str] = tuple(FILES),
    tolerance: float = PARITY_TOLERANCE,
    artifacts_root: str | Path = "artifacts",
) -> ExportResult:
    """``zoo export``: rebuild the model of a checkpoint (loaded safely) and export it as a bundle."""
    from training.checkpoint import model_from_checkpoint

    checkpoint = Path(checkpoint)
    model, ckpt = model_from_checkpoint(checkpoint)
    name = ckpt["model_name"]
    out_dir = Path(out) if out is not None else default_artifact_dir(checkpoint, name, artifacts_root)
    digest = sha256_file(checkpoint)
    front_end = FrontEndConfig(**ckpt["front_end"]) if ckpt.get("front_end") else FrontEndConfig()
    metadata = {
        "checkpoint": {
            "file": checkpoint.name,
            "sha256": digest,
            "epoch": ckpt.get("epoch"),
            "metrics": ckpt.get("metrics"),
            "model_config": ckpt.get("model_config"),
        }
    }
    return export_model(
        model,
        name,
        out_dir,
        formats=formats,
        front_end=front_end,
        spec=ckpt.get("spec"),
        version=f"{out_dir.name}-{digest[:8]}",
        tolerance=tolerance,
        metadata=metadata,
    )
