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
    melody = tmp_path / "melody.wav"
    sf.write(melody, np.concatenate([_note(60, 0.4), _note(64, 0.4), _note(67, 0.8)]), SR)
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF not really")
    out = tmp_path / "presets"
    args = ["predict", str(good), str(melody), str(bad), "-o", str(out), "--preview"]
    args += ["--artifact", str(untrained_artifact.path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output  # one of the two files is broken
    assert "broken.wav" in result.output and "Traceback" not in result.output
    assert "A3 (57)" in result.output
    preset = json.loads((out / "lead.vital").read_text())
    assert vita.Synth().load_json(json.dumps(preset))
    preview, rate = sf.read(out / "lead.preview.wav")
    assert rate == SR and preview.shape == (88200,)  # as long as the recording
    assert not preview[: int(0.45 * SR)].any()  # the preset plays the note where it was played: at 0.5 s
    assert preview[int(0.5 * SR) :].any() or "silent" in result.output
    assert "C4 E4 G4" in result.output  # every note of the melody
    assert sf.info(out / "melody.preview.wav").frames == int(1.6 * SR)
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


def test_predict_reports_each_bad_file_in_one_line_and_goes_on(untrained_artifact, tmp_path, monkeypatch):
    """Bad files among good ones: one line each, every good file still gets its preset, exit code 1 at the end;
    an unexpected error (a bug) on one file is reported the same way instead of a traceback."""
    import serving.pipeline as pipeline
    from benchmarks.bad_inputs import encode, odd_but_valid, tone

    files = {
        "first.wav": encode(tone(1.5), SR),
        "text.wav": b"not a recording at all " * 10,
        "many-channels.wav": encode(tone(0.3, channels=9), SR),
        "tiny.wav": odd_but_valid()["300 samples"],
        "loud.wav": odd_but_valid()["samples near 3e38 (float WAV)"],
        "buggy.wav": encode(tone(1.5), SR),
        "last.flac": encode(tone(1.5), SR, "FLAC"),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    real = pipeline.decode_recording

    def decode(data, limits, label="the uploaded audio"):
        if label.endswith("buggy.wav"):
            raise IndexError("list index out of range")
        return real(data, limits, label)

    monkeypatch.setattr(pipeline, "decode_recording", decode)
    out = tmp_path / "presets"
    paths = [str(tmp_path / name) for name in files]
    result = CliRunner().invoke(app, ["predict", *paths, "-o", str(out), "--artifact", str(untrained_artifact.path)])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 3, result.output
    assert any("text.wav" in e and "could not be decoded" in e for e in errors)
    assert any("many-channels.wav" in e and "9 channels" in e for e in errors)
    assert any("buggy.wav" in e and "unexpected IndexError" in e for e in errors)
    assert sorted(p.name for p in out.glob("*.vital")) == ["first.vital", "last.vital", "loud.vital", "tiny.vital"]
    assert "3 of 7 recordings failed" in result.output


def test_when_every_recording_fails_nothing_claims_presets_were_written(untrained_artifact, tmp_path):
    out = tmp_path / "presets"
    result = CliRunner().invoke(
        app, ["predict", str(tmp_path / "missing.wav"), "-o", str(out), "--artifact", str(untrained_artifact.path)]
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "no such audio file" in result.output and "1 of 1 recordings failed" in result.output
    assert "presets written" not in result.output and not list(out.glob("*.vital"))
