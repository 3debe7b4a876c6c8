"""`zoo export`: waveform-in graphs, parity with eager on rendered audio, card.json, failure modes."""

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import zoo
from training.checkpoint import model_from_checkpoint
from training.export import (
    check_onnx,
    default_artifact_dir,
    export_model,
    export_onnx,
    takes_log_mel,
)
from training.parity import PARITY_TOLERANCE, render_parity_audio
from zoo.artifact import load_artifact, sha256_file
from zoo.audio import CLIP_SAMPLES, FrontEndConfig, LogMelFrontEnd, normalize_loudness
from zoo.errors import ExportError, ParityError
from zoo.runtime import run_onnx
from zoo.waveform_model import WaveformModel

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")  # deprecated upstream, still supported

EXPORTABLE = [name for name in zoo.list_models() if zoo.model_card(name).exportable]


@pytest.fixture(scope="module")
def audio():
    """Real synth audio: Vital renders at two notes (loudness-normalised)."""
    return render_parity_audio(notes=(45, 67), seed=3)


def test_card_says_what_a_runtime_needs(untrained_artifact):
    out_dir, card = untrained_artifact.path, untrained_artifact.card
    assert card["model"]["name"] == "vital-resnet18"
    assert card["model"]["version"].startswith("untrained-")  # the run folder, then the checkpoint's hash
    assert out_dir.parent.name == "vital-resnet18" and out_dir.name == "untrained"
    assert card["input"]["shape"] == ["batch", CLIP_SAMPLES] and card["input"]["sample_rate"] == 44100
    assert card["input"]["stft"] == "factored"  # the front end formulation inside the graph
    names = [o["name"] for o in card["outputs"]]
    assert names[0] == "continuous" and names[-1] == "mel" and all(n.startswith("cat_") for n in names[1:-1])
    assert set(card["files"]) == {"model.onnx", "model.ts"}
    for name, info in card["files"].items():
        assert sha256_file(out_dir / name) == info["sha256"]
        assert (out_dir / name).stat().st_size == info["bytes"]
    assert card["parity"]["tolerance"] == PARITY_TOLERANCE
    assert set(card["parity"]["max_abs_error"]) == {"torchscript", "onnxruntime"}
    assert all(0 <= e <= PARITY_TOLERANCE for e in card["parity"]["max_abs_error"].values())
    assert card["checkpoint"]["sha256"] and card["checkpoint"]["epoch"] == 0
    assert not list(out_dir.parent.glob(".*partial"))  # the temporary folder is gone


def test_onnx_output_names_never_clash_with_intermediate_values(tmp_path):
    """Outputs named like the exporter's own values (``cat_1`` beside a second ``torch.cat``) stay one each."""

    class TwoConcats(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            y = torch.cat([torch.cat([x, x], dim=-1), x], dim=-1)
            return y.sum(dim=-1, keepdim=True), y.amax(dim=-1, keepdim=True)

    x = torch.randn(2, 3)
    path = export_onnx(TwoConcats(), (x,), tmp_path / "m.onnx", ["x"], ["cat_0", "cat_1"])
    check_onnx(path)  # single static assignment holds
    got = run_onnx(path, {"x": x})
    np.testing.assert_allclose(got[0], 3 * x.sum(dim=-1, keepdim=True).numpy(), rtol=1e-5)
    np.testing.assert_allclose(got[1], x.amax(dim=-1, keepdim=True).numpy(), rtol=1e-6)


def test_onnx_graph_is_checked_and_has_a_dynamic_batch(untrained_artifact, audio):
    out_dir = untrained_artifact.path
    check_onnx(out_dir / "model.onnx")
    model, _ = model_from_checkpoint(untrained_artifact.checkpoint)
    reference = WaveformModel(model).eval()
    for batch in (1, 3):  # the export used 2
        x = torch.from_numpy(np.concatenate([audio, audio])[:batch])
        with torch.no_grad():
            expected = reference(x)
        got = run_onnx(out_dir / "model.onnx", {"waveform": x})
        assert len(got) == len(expected)
        for e, g in zip(expected, got, strict=True):
            np.testing.assert_allclose(g, e.numpy(), atol=PARITY_TOLERANCE, rtol=0)


def test_exported_front_end_equals_the_training_front_end(untrained_artifact, audio):
    """The graph's mel output (loudness normalisation + log-mel inside the graph) equals LogMelFrontEnd on the
    normalised clip, for raw audio at any level and for already-normalised audio."""
    out_dir = untrained_artifact.path
    raw = np.stack([0.05 * audio[0], 3.0 * audio[1]]).astype(np.float32)  # quiet, and clipping-loud
    expected = LogMelFrontEnd()(torch.from_numpy(np.stack([normalize_loudness(a) for a in raw]))).numpy()
    for x in (raw, audio):
        mel = run_onnx(out_dir / "model.onnx", {"waveform": torch.from_numpy(x)})[-1]
        assert mel.shape == (2, 1, 128, 173)
        np.testing.assert_allclose(mel, expected, atol=2e-4, rtol=1e-4)
    ts = torch.jit.load(str(out_dir / "model.ts"))
    with torch.no_grad():
        np.testing.assert_allclose(ts(torch.from_numpy(raw))[-1].numpy(), expected, atol=2e-4, rtol=1e-4)


def test_exported_front_end_equals_precomputed_training_mels(untrained_artifact, tiny_vital_h5):
    """The features stored by the dataset pipeline (training.data generate + precompute) are the features
    the exported graph computes from the stored audio."""
    import h5py

    with h5py.File(tiny_vital_h5, "r") as f:
        audio = f["audio"][:6].astype(np.float32)
        stored = f["features/mel_spectrogram"][:6]
    mel = run_onnx(untrained_artifact.path / "model.onnx", {"waveform": torch.from_numpy(audio)})[-1]
    np.testing.assert_allclose(mel, stored, atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("name", EXPORTABLE)
def test_every_exportable_model_passes_parity(name, untrained_artifact, tmp_path, audio):
    """Eager vs TorchScript vs ONNX Runtime on rendered audio (log-mel models) or the card's inputs."""
    if name == "vital-resnet18":
        parity = load_artifact(untrained_artifact.path).card.parity
    else:
        torch.manual_seed(0)
        parity = export_model(zoo.create_model(name), name, tmp_path / name, parity_audio=audio).card.parity
    assert set(parity.max_abs_error) == {"torchscript", "onnxruntime"}
    assert max(parity.max_abs_error.values()) <= PARITY_TOLERANCE
    if takes_log_mel(name):
        assert parity.batch_size >= 2


class _TinyHead(torch.nn.Module):
    """A stand-in for a log-mel model: one output, cheap to trace."""

    output_names = ["continuous"]

    def forward(self, mel):
        return (torch.sigmoid(mel.mean(dim=(1, 2, 3))).unsqueeze(1),)


def test_parity_failure_is_an_error_and_leaves_nothing(tmp_path, monkeypatch, audio):
    import training.export as export

    real = export.export_torchscript

    def drifting(module, example):  # a runtime that is off by 1e-2 on every output
        traced = real(module, example)

        class Drift(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.inner = traced

            def forward(self, x):
                return tuple(t + 1e-2 for t in self.inner(x))

        return torch.jit.trace(Drift(), example, check_trace=False)

    monkeypatch.setattr(export, "export_torchscript", drifting)
    out = tmp_path / "artifacts" / "m"
    with pytest.raises(ParityError, match=r"torchscript 0\.01"):
        export_model(_TinyHead(), "vital-resnet18", out, formats=["torchscript"], parity_audio=audio)
    assert not out.exists() and not list(out.parent.iterdir())


def test_bad_requests_are_refused(untrained_artifact, tmp_path):
    out_dir = untrained_artifact.path
    model = zoo.create_model("vital-resnet18")
    with pytest.raises(ValueError, match="--format"):
        export_model(model, "vital-resnet18", tmp_path / "x", formats=["tflite"])
    with pytest.raises(ExportError, match="already holds an artifact"):
        export_model(model, "vital-resnet18", out_dir, formats=["torchscript"])


def test_default_folder_follows_the_run(tmp_path):
    assert default_artifact_dir("runs/vital-resnet18/exp7/best.pt", "vital-resnet18") == Path(
        "artifacts/vital-resnet18/exp7"
    )
    stamped = default_artifact_dir(tmp_path / "model.pt", "vital-resnet18", root="out")
    assert stamped.parent.as_posix() == "out/vital-resnet18" and re.fullmatch(r"\d{8}-\d{6}", stamped.name)


def test_waveform_model_normalises_like_the_training_path():
    x = torch.from_numpy(0.01 * np.random.default_rng(0).standard_normal((2, CLIP_SAMPLES)).astype(np.float32))
    mel = WaveformModel(torch.nn.Identity(), FrontEndConfig())(x)[-1]
    expected = LogMelFrontEnd()(torch.from_numpy(np.stack([normalize_loudness(a) for a in x.numpy()])))
    torch.testing.assert_close(mel, expected, atol=1e-4, rtol=1e-4)


def test_cli_export_prints_files_and_next_command(untrained_artifact, tmp_path):
    from zoo.cli import app

    printed = untrained_artifact.output.replace("\n", "")
    for name in ("model.onnx", "model.ts", "card.json", "parity vs eager"):
        assert name in printed
    assert f"zoo serve {untrained_artifact.path}" in printed
    missing = CliRunner().invoke(app, ["export", str(tmp_path / "nope.pt")])
    assert missing.exit_code == 1 and "no such checkpoint" in missing.output and "Traceback" not in missing.output
    bad = CliRunner().invoke(app, ["export", str(untrained_artifact.checkpoint), "--format", "tflite"])
    assert bad.exit_code == 1 and "`--format` takes onnx, torchscript" in bad.output
