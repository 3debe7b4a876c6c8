"""Parity of exported runtimes with eager PyTorch, measured by ``zoo export`` on real synth audio.

Every exported file (TorchScript, ONNX through ONNX Runtime) runs the parity inputs; the largest absolute
difference from eager on each output goes into the card (:class:`zoo.artifact.Parity`), and above the tolerance
export fails with a :class:`~zoo.errors.ParityError`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zoo.artifact import Parity
from zoo.audio import AUDIBLE_MARGIN_DB, fit_length, is_silent, normalize_loudness
from zoo.errors import ExportError, ParityError
from zoo.runtime import run_onnx

PARITY_NOTES = (36, 48, 60, 72, 84)
# Max absolute difference allowed between eager and an exported runtime, on every output (continuous values
# in [0, 1], logits, and the log1p mel). Float32 reassociation in the DFT matmuls and the ResNet
# stays about two orders of magnitude below this.
PARITY_TOLERANCE = 1e-3
REFERENCE = "eager PyTorch (float32, CPU)"


def render_parity_audio(notes: Sequence[int] = PARITY_NOTES, seed: int = 0) -> np.ndarray:
    """Real synth audio for parity checks: one random Tier-1 preset per note (the dataset's sampler),
    rendered with Vital and loudness-normalised like the training clips. (len(notes), 88200) float32.
    Presets that render (nearly) silence are replaced by the sampler's next attempt."""
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
            if np.isfinite(audio).all() and not is_silent(audio, AUDIBLE_MARGIN_DB):
                clips.append(normalize_loudness(audio))
                break
        else:
            raise ExportError(f"no audible parity preset at note {note} in 20 draws (seed {seed})")
    return np.stack(clips)


def as_outputs(out: Any) -> tuple[torch.Tensor, ...]:
    """A module's output as a tuple of tensors."""
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def max_errors(
    reference: Sequence[torch.Tensor], got: Sequence[np.ndarray | torch.Tensor], names: Sequence[str]
) -> dict[str, float]:
    """Largest absolute difference per output name; a shape change is a :class:`ParityError`."""
    errors = {}
    for name, ref, value in zip(names, reference, got, strict=True):
        value = value if isinstance(value, torch.Tensor) else torch.from_numpy(np.asarray(value))
        if value.shape != ref.shape:
            raise ParityError(f"output {name!r} has shape {tuple(value.shape)}, eager gives {tuple(ref.shape)}")
        errors[name] = float((value.float() - ref.float()).abs().max())
    return errors


def _run_torchscript(path: Path, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated upstream, still supported
        loaded = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return as_outputs(loaded(*inputs))


def measure_parity(
    files: dict[str, Path],
    inputs: tuple[torch.Tensor, ...],
    input_names: Sequence[str],
    reference: Sequence[torch.Tensor],
    output_names: Sequence[str],
    *,
    source: str,
    name: str = "model",
    tolerance: float = PARITY_TOLERANCE,
) -> Parity:
    """Run each exported file (``files`` by format: ``torchscript``, ``onnx``) on ``inputs`` and compare its
    outputs with eager's ``reference``. Raises :class:`ParityError` above ``tolerance``; ``source`` says what the
    inputs are, ``name`` what the model is (both for the card and the messages)."""
    errors: dict[str, dict[str, float]] = {}
    if "torchscript" in files:
        errors["torchscript"] = max_errors(reference, _run_torchscript(files["torchscript"], inputs), output_names)
    if "onnx" in files:
        got = run_onnx(files["onnx"], dict(zip(input_names, inputs, strict=True)))
        errors["onnxruntime"] = max_errors(reference, got, output_names)
    worst = {runtime: max(errs.values()) for runtime, errs in errors.items()}
    failed = {runtime: err for runtime, err in worst.items() if not err <= tolerance}
    if failed:
        detail = ", ".join(f"{runtime} {err:.3g}" for runtime, err in failed.items())
        raise ParityError(f"exported {name} differs from eager above tolerance {tolerance:g}: {detail}")
    return Parity(REFERENCE, source, int(inputs[0].shape[0]), tolerance, worst, errors)
