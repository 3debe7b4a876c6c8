"""Serving runtimes and artifact loading: ONNX Runtime and TorchScript agree; bad bundles are refused."""

import dataclasses
import json
import shutil

import numpy as np
import pytest

from serving.backends import DeviceError, create_backend, resolve_device
from serving.pipeline import AudioLimits, decode_recording, wav_truncation
from zoo.artifact import latest_artifact, load_artifact
from zoo.errors import ArtifactError, AudioDecodeError, AudioTooLongError


@pytest.fixture(scope="module")
def clips():
    from training.export import render_parity_audio

    return render_parity_audio(notes=(40, 64, 76), seed=7)


def test_onnx_runtime_and_torchscript_agree(untrained_artifact, clips):
    artifact = load_artifact(untrained_artifact.path)
    onnx = create_backend(artifact, "onnx", "cpu", threads=1).run(clips)
    ts = create_backend(artifact, "torchscript", "cpu", threads=1).run(clips)
    assert [o.shape for o in onnx] == [t.shape for t in ts]
    for a, b in zip(onnx, ts, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=0)


def test_the_served_clip_is_normalised_once_by_the_graph(untrained_artifact, clips):
    """`zoo serve` and `zoo predict` feed the graph the note's window as recorded (its loudness normalisation is the
    only one), and the outputs are those of the normalised clip, as before."""
    import io

    import soundfile as sf

    from serving.pipeline import prepare_recording
    from zoo.audio import normalize_loudness, rms_db

    recording = np.concatenate([np.zeros(8820, np.float32), 0.02 * clips[1], np.zeros(22050, np.float32)])
    buf = io.BytesIO()
    sf.write(buf, recording, 44100, format="WAV", subtype="FLOAT")
    prepared = prepare_recording(buf.getvalue())
    assert rms_db(prepared.clip) < -45  # the recorded level (-54 dBFS), not the -20 dBFS of a normalised clip
    backend = create_backend(load_artifact(untrained_artifact.path), "onnx", "cpu", threads=1)
    served, normalised = backend.run(prepared.clip[None]), backend.run(normalize_loudness(prepared.clip)[None])
    for a, b in zip(served, normalised, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


def test_cpu_is_always_available_and_cuda_is_refused_clearly_without_a_gpu():
    import onnxruntime as ort

    assert resolve_device("onnx", "cpu")[0] == "cpu"
    device, why = resolve_device("onnx", "auto")
    assert device in ("cpu", "cuda") and why
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert device == "cpu" and "onnxruntime-gpu" in why
        with pytest.raises(DeviceError, match="--device cuda"):
            resolve_device("onnx", "cuda")
    with pytest.raises(ValueError, match="--backend"):
        resolve_device("tensorrt", "auto")


@pytest.mark.gpu
def test_cuda_execution_provider_matches_cpu(untrained_artifact, clips):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers() or resolve_device("onnx", "auto")[0] != "cuda":
        pytest.skip("needs onnxruntime-gpu and an NVIDIA GPU")
    artifact = load_artifact(untrained_artifact.path)
    gpu = create_backend(artifact, "onnx", "cuda:0").run(clips)
    cpu = create_backend(artifact, "onnx", "cpu").run(clips)
    for a, b in zip(gpu, cpu, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-3, rtol=0)


def test_bundles_are_verified(untrained_artifact, tmp_path):
    copy = tmp_path / "artifacts" / "m" / "v1"
    shutil.copytree(untrained_artifact.path, copy)
    assert latest_artifact(tmp_path / "artifacts") == copy
    with open(copy / "model.ts", "r+b") as f:  # one flipped byte
        f.seek(1000)
        byte = f.read(1)
        f.seek(1000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ArtifactError, match="sha256"):
        load_artifact(copy)
    card = json.loads((copy / "card.json").read_text())
    (copy / "card.json").write_text(json.dumps({**card, "format": "something-else/9"}))
    with pytest.raises(ArtifactError, match="format"):
        load_artifact(copy)
    with pytest.raises(ArtifactError, match="zoo export"):
        latest_artifact(tmp_path / "empty")
    bundle = load_artifact(untrained_artifact.path, verify=False)
    onnx_file = bundle.card.file_for("onnx")
    onnx_only = dataclasses.replace(bundle, card=dataclasses.replace(bundle.card, files=(onnx_file,)))
    with pytest.raises(ArtifactError, match="no torchscript file"):
        onnx_only.file_for("torchscript")


def test_recording_checks():
    import io

    import soundfile as sf

    tone = (0.3 * np.sin(np.arange(44100 * 3) * 0.05)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, tone, 44100, format="WAV")
    data = buf.getvalue()
    assert wav_truncation(data) is None
    assert "truncated" in wav_truncation(data[:-100])
    assert decode_recording(data).shape == (44100 * 3,)
    with pytest.raises(AudioTooLongError, match="limit is 2 s"):
        decode_recording(data, AudioLimits(max_seconds=2))
    with pytest.raises(AudioDecodeError, match="truncated"):
        decode_recording(data[: len(data) // 3])
    with pytest.raises(AudioDecodeError, match="empty"):
        decode_recording(b"")
    with pytest.raises(ValueError, match="--max-seconds"):
        AudioLimits(max_seconds=0)


def test_serve_refuses_bad_options_in_one_line(untrained_artifact, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import zoo.weights
    from zoo.cli import app

    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(zoo.weights, "WEIGHTS_DIR", tmp_path / "nothing-shipped")
    cases = [
        ([], "zoo export"),  # no artifacts/ here and no shipped model
        ([str(tmp_path)], "not an artifact bundle"),
        ([str(untrained_artifact.path), "--port", "80"], "`--port`"),
        ([str(untrained_artifact.path), "--host", "10.0.0.1"], "`--host`"),
        ([str(untrained_artifact.path), "--max-batch-size", "0"], "`--max-batch-size`"),
        ([str(untrained_artifact.path), "--max-seconds", "0"], "`--max-seconds`"),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["serve", *args])
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output and "Traceback" not in result.output
