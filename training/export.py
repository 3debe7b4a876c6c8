"""Export a model to TorchScript and ONNX (dynamic batch axis), and check parity with eager.

``export_checkpoint`` writes an artifact bundle (``zoo export``): ``model.onnx`` and/or ``model.ts`` and a
``card.json`` (:class:`zoo.artifact.ArtifactCard`) that says everything a runtime needs. For a model whose
input is the log-mel, the exported graph takes the raw 44.1 kHz waveform (B, 88200) and contains the loudness
normalisation and the log-mel front end (:class:`zoo.waveform_model.WaveformModel`), so no client reproduces
preprocessing. Parity between eager, TorchScript and ONNX Runtime is measured at export on audio rendered
with Vital (``training.parity``), and export fails above tolerance.
"""

from __future__ import annotations

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

from training.parity import PARITY_NOTES, PARITY_TOLERANCE, as_outputs, measure_parity, render_parity_audio
from zoo.artifact import (
    CARD_FILE,
    ArtifactCard,
    CheckpointInfo,
    InputInfo,
    ModelFile,
    ModelInfo,
    Parity,
    TensorInfo,
    sha256_file,
)
from zoo.audio import PEAK_LIMIT, TARGET_RMS_DB, FrontEndConfig
from zoo.errors import CheckpointError, ExportError
from zoo.files import replace_atomically
from zoo.waveform_model import WaveformModel


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


# --------------------------------------------------------------------------------------------------
# Artifact bundles: the graph to export, its files, parity, card.json

FILES = {"onnx": "model.onnx", "torchscript": "model.ts"}
ONNX_OPSET = 18
ONNX_MAX_BATCH = 4096


@dataclass
class ExportResult:
    """What ``export_checkpoint`` wrote: the bundle folder, its files by format, and the card."""

    out_dir: Path
    files: dict[str, Path]
    card: ArtifactCard


@dataclass
class ExportGraph:
    """The module to export with its input and output names, the inputs that trace it and the parity inputs."""

    module: nn.Module
    input: InputInfo
    output_names: list[str]
    example: tuple[torch.Tensor, ...]
    parity_inputs: tuple[torch.Tensor, ...]
    parity_source: str

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.input.tensors]


def takes_log_mel(model_name: str) -> bool:
    """True for registered models whose single input is the log-mel of ``zoo.audio`` (these are exported
    with the waveform front end in the graph)."""
    from zoo.registry import model_entry

    inputs = model_entry(model_name).inputs
    return len(inputs) == 1 and tuple(inputs[0].shape) == FrontEndConfig().output_shape


def default_artifact_dir(checkpoint: str | Path, model_name: str, root: str | Path = "artifacts") -> Path:
    """``artifacts/<model>/<run>`` for a checkpoint under ``runs/<model>/<run>/``, else
    ``artifacts/<model>/<timestamp>``."""
    path = Path(checkpoint).resolve()
    run = path.parent.name if path.parent.parent.name == model_name else time.strftime("%Y%m%d-%H%M%S")
    return Path(root) / model_name / run


def waveform_graph(
    model: nn.Module, output_names: list[str], front_end: FrontEndConfig, parity_audio: np.ndarray | None
) -> ExportGraph:
    """A log-mel model wrapped in :class:`WaveformModel`: raw waveform in; parity on Vital renders."""
    audio = parity_audio if parity_audio is not None else render_parity_audio()
    waveforms = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))  # (B, 88200)
    module = WaveformModel(model, front_end).eval()
    input_info = InputInfo(
        kind="waveform",
        tensors=(TensorInfo("waveform", ("batch", front_end.n_samples)),),
        front_end=front_end,
        stft=module.front_end.stft,
        loudness={"target_rms_db": TARGET_RMS_DB, "peak": PEAK_LIMIT},
        preprocessing=(
            "none required: loudness normalisation (-20 dBFS RMS, 0.99 peak) and the log-mel front end are in the "
            "graph; the server feeds it the main note's 2 s window as recorded (zoo.notes.cut_phrase_clip)"
        ),
    )
    source = (
        f"random Tier-1 presets rendered by Vital at MIDI notes {list(PARITY_NOTES)}"
        if parity_audio is None
        else "given audio"
    )
    return ExportGraph(module, input_info, [*output_names, "mel"], (waveforms[:2],), (waveforms,), source)


def tensor_graph(model: nn.Module, output_names: list[str], card_info: Any) -> ExportGraph:
    """A model exported with its own inputs; the registry card's random example inputs serve for parity."""
    tensors = tuple(TensorInfo(s.name, ("batch", *s.shape), s.dtype) for s in card_info.inputs)
    return ExportGraph(
        model,
        InputInfo(kind="tensor", tensors=tensors),
        output_names,
        card_info.example_inputs(batch_size=2, seed=0),
        card_info.example_inputs(batch_size=3, seed=1),
        "random inputs of the registry card (seed 1)",
    )


def write_model_files(graph: ExportGraph, formats: Sequence[str], folder: Path) -> dict[str, Path]:
    """Export ``graph.module`` into ``folder`` in each format; the ONNX file passes onnx.checker."""
    files = {}
    if "torchscript" in formats:
        files["torchscript"] = folder / FILES["torchscript"]
        export_torchscript(graph.module, graph.example).save(str(files["torchscript"]))
    if "onnx" in formats:
        path = folder / FILES["onnx"]
        files["onnx"] = export_onnx(graph.module, graph.example, path, graph.input_names, graph.output_names)
        check_onnx(path)
    return files


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


def build_card(
    model: ModelInfo,
    graph: ExportGraph,
    reference: Sequence[torch.Tensor],
    files: dict[str, Path],
    parity: Parity,
    spec: dict | None,
    checkpoint: CheckpointInfo | None,
) -> ArtifactCard:
    """The card of a bundle whose files were just written (checksums taken now)."""
    return ArtifactCard(
        model=model,
        input=graph.input,
        outputs=tuple(
            TensorInfo(name, ("batch", *t.shape[1:]), "float32", _output_role(name))
            for name, t in zip(graph.output_names, reference, strict=True)
        ),
        files=tuple(ModelFile.of(path.parent, path.name, fmt) for fmt, path in files.items()),
        parity=parity,
        spec=spec,
        onnx_opset=ONNX_OPSET if "onnx" in files else None,
        max_batch=ONNX_MAX_BATCH if "onnx" in files else None,
        checkpoint=checkpoint,
        exported_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        versions=_runtime_versions(),
    )


def _check_request(model_name: str, formats: Sequence[str], out_dir: Path) -> Any:
    """The registry card of ``model_name``, once the export request is known to be possible."""
    from zoo.registry import model_card

    unknown = [f for f in formats if f not in FILES]
    if unknown or not formats:
        raise ValueError(f"`--format` takes {', '.join(FILES)} (comma separated), got {', '.join(formats) or 'none'}")
    card_info = model_card(model_name)
    if not card_info.exportable:
        raise ExportError(f"{model_name} is not exportable (its registry card says so)")
    if (out_dir / CARD_FILE).exists():
        raise ExportError(f"{out_dir} already holds an artifact; choose another `--out`")
    return card_info


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
    checkpoint: CheckpointInfo | None = None,
) -> ExportResult:
    """Export ``model`` (a registered ``model_name``) into ``out_dir`` and write its card.

    Log-mel models are wrapped in :class:`WaveformModel`; others are exported with their own inputs (the
    registry's example inputs serve for parity). Every runtime's outputs on the parity inputs are compared
    with eager; above ``tolerance`` a :class:`ParityError` is raised and nothing is left in ``out_dir``.
    The bundle is written to a temporary sibling folder and renamed into place when complete."""
    out_dir = Path(out_dir)
    card_info = _check_request(model_name, formats, out_dir)
    model = model.eval()
    names = list(getattr(model, "output_names", None) or [f"output_{i}" for i in range(len(card_info.outputs))])
    if takes_log_mel(model_name):
        graph = waveform_graph(model, names, front_end or FrontEndConfig(), parity_audio)
    else:
        graph = tensor_graph(model, names, card_info)
    with torch.no_grad():
        reference = as_outputs(graph.module(*graph.parity_inputs))
    if len(reference) != len(graph.output_names):
        raise ExportError(f"{model_name} returns {len(reference)} outputs but names {len(graph.output_names)}")
    info = ModelInfo(model_name, version or out_dir.name, card_info.family, card_info.task, card_info.n_params)

    tmp_dir = out_dir.parent / f".{out_dir.name}.partial"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    try:
        files = write_model_files(graph, formats, tmp_dir)
        parity = measure_parity(
            files,
            graph.parity_inputs,
            graph.input_names,
            reference,
            graph.output_names,
            source=graph.parity_source,
            name=model_name,
            tolerance=tolerance,
        )
        card = build_card(info, graph, reference, files, parity, spec, checkpoint)
        card.write(tmp_dir)
        replace_atomically(tmp_dir, out_dir)  # an empty folder at out_dir is replaced, a non-empty one refused
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return ExportResult(out_dir, {fmt: out_dir / FILES[fmt] for fmt in files}, card)


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
    try:
        front_end = FrontEndConfig(**ckpt["front_end"]) if ckpt.get("front_end") else FrontEndConfig()
    except TypeError as e:
        raise CheckpointError(f"{checkpoint}: its front_end is not a front-end configuration ({e})") from None
    epoch, metrics = ckpt.get("epoch"), ckpt.get("metrics")
    info = CheckpointInfo(
        file=checkpoint.name,
        sha256=digest,
        epoch=epoch if isinstance(epoch, int) else None,
        metrics=metrics if isinstance(metrics, dict) else None,
        model_config=ckpt["model_config"],
    )
    return export_model(
        model,
        name,
        out_dir,
        formats=formats,
        front_end=front_end,
        spec=ckpt.get("spec"),
        version=f"{out_dir.name}-{digest[:8]}",
        tolerance=tolerance,
        checkpoint=info,
    )
