"""`zoo predict`: the server's pipeline on files, without HTTP."""

import json

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

pytest.importorskip("zoo.vital", reason="the Vital domain (zoo.vital) writes the presets")

from zoo.cli import app  # noqa: E402

SR = 44100


def _note(midi: int, seconds: float = 1.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    f = 440.0 * 2 ** ((midi - 69) / 12)
    wave = sum(np.sin(2 * np.pi * k * f * t) / k for k in range(1, 30))
    return (0.2 * wave * np.minimum(1.0, t / 0.01) * np.minimum(1.0, (seconds - t) / 0.2)).astype(np.float32)


def test_predict_writes_loadable_presets_and_previews(untrained_artifact, tmp_path):
    import vita

    good = tmp_path / "lead.flac"
    sf.write(good, np.concatenate([np.zeros(SR // 2, np.float32), _note(57)]), SR)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really")
    out = tmp_path / "presets"
    args = ["predict", str(good), str(bad), "-o", str(out), "--preview", "--artifact", str(untrained_artifact.path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output  # one of the two files is broken
    assert "broken.wav" in result.output and "Traceback" not in result.output
    assert "A3 (57)" in result.output
    preset = json.loads((out / "lead.vital").read_text())
    assert vita.Synth().load_json(json.dumps(preset))
    preview, rate = sf.read(out / "lead.preview.wav")
    assert rate == SR and preview.shape == (88200,)
    assert not (out / "broken.vital").exists()


def test_predict_without_an_exported_model_uses_the_shipped_one(tmp_path, monkeypatch):
    import zoo.weights

    monkeypatch.chdir(tmp_path)  # no artifacts/ here
    sound = tmp_path / "pluck.wav"
    sf.write(sound, _note(60), SR)
    result = CliRunner().invoke(app, ["predict", str(sound), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "model vital-resnet18 vital-resnet18-" in result.output  # the shipped bundle's version
    assert json.loads((tmp_path / "out" / "pluck.vital").read_text())["settings"]
    monkeypatch.setattr(zoo.weights, "WEIGHTS_DIR", tmp_path / "nothing-shipped")
    result = CliRunner().invoke(app, ["predict", str(sound)])
    assert result.exit_code == 1
    assert "zoo export" in result.output
