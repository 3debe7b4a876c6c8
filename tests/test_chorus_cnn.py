"""chorus-cnn: the architecture's promises, the Vital song synthesis, and the task in the engine."""

import json

import h5py
import numpy as np
import pytest
import torch
from torch import nn

import zoo
from training.config import TrainConfig
from training.data.songs import BARS, CHORUS, FRONT_END, N_FRAMES, VERSE, SongRenderer, frame_labels, plan_song
from training.run_logging import read_metrics
from training.tasks.chorus import evaluate_checkpoint, split_songs
from training.trainer import Trainer


def test_one_prediction_per_frame_for_any_length():
    model = zoo.create_model("chorus-cnn").eval()
    for t in (1, 37, N_FRAMES):
        assert model(torch.randn(2, 64, t)).shape == (2, 2, t)


def test_fixes_of_the_note_are_in_the_architecture():
    model = zoo.create_model("chorus-cnn")
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert any(isinstance(m, nn.LayerNorm) for m in model.modules())
    assert not model.classifier.bias.any()  # starts at 50/50, not leaning to one class
    block = model.blocks[0]
    nn.init.zeros_(block.conv2.weight)
    nn.init.zeros_(block.conv2.bias)
    h = torch.randn(3, 64, 20)
    torch.testing.assert_close(block(h), h)  # unscaled skip: a zero branch is exactly the identity


def test_input_normalisation_lives_in_the_model():
    model = zoo.create_model("chorus-cnn", center=False).eval()
    x = torch.rand(2, 64, 50) * 5 + 3
    mean, std = x.mean(dim=(0, 2)), x.std(dim=(0, 2))
    standardised = model((x - mean[:, None]) / std[:, None])
    model.fit_input_stats(x)
    torch.testing.assert_close(model(x), standardised, rtol=1e-4, atol=1e-5)


def test_centring_ignores_what_is_constant_over_a_song():
    model = zoo.create_model("chorus-cnn").eval()
    x = torch.rand(2, 64, 80)
    offset = torch.randn(2, 64, 1)  # a per-song, per-band level: another mix, another preset's colour
    torch.testing.assert_close(model(x + offset), model(x), rtol=1e-4, atol=1e-4)


def test_receptive_field_is_what_the_docstring_says():
    model = zoo.create_model("chorus-cnn", center=False).eval()  # centring uses every frame on purpose
    assert model.receptive_field == 253
    x = torch.randn(1, 64, 600)
    y = x.clone()
    y[:, :, 300] += 10.0
    changed = (model(x) - model(y)).abs().amax(dim=1)[0] > 1e-6
    frames = torch.nonzero(changed).flatten()
    assert frames.min() >= 300 - 126 and frames.max() <= 300 + 126 and 300 in frames


def test_song_plans_are_reproducible_and_labels_follow_sections():
    a, b, c = plan_song(0, 5), plan_song(0, 5), plan_song(1, 5)
    assert a == b and a != c
    assert sum(s["bars"] for s in a["sections"]) == BARS
    labels = frame_labels(a["sections"])
    assert labels.shape == (N_FRAMES,)
    seconds = FRONT_END.hop_length / FRONT_END.sample_rate
    for section in a["sections"]:
        mid = (section["start_bar"] + section["bars"] / 2) * 2.0  # seconds
        assert labels[int(mid / seconds)] == section["kind"]
    kinds = {s["kind"] for i in range(20) for s in plan_song(0, i)["sections"]}
    assert kinds == {VERSE, CHORUS}


def test_a_song_renders_with_vital_into_features():
    renderer = SongRenderer(seed=0)
    audio, drawn = renderer.render(plan_song(0, 0))
    assert audio.shape == (BARS * 2 * 44100,) and np.isfinite(audio).all()
    assert float(np.sqrt(np.mean(audio**2))) > 0.01
    assert set(drawn) >= {"0", "2"}  # a verse lead and a bass at least
    features = renderer.features(audio)
    assert features.shape == (64, N_FRAMES) and np.isfinite(features).all()


def _toy_songs(path, n_songs=12, seed=0):
    """Songs whose chorus frames are louder in the upper bands (no Vital needed)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((n_songs, 64), dtype=np.uint8)
    for i in range(n_songs):
        cut = rng.integers(16, 48)
        labels[i, cut:] = 1
    features = rng.normal(size=(n_songs, 16, 64)).astype(np.float32) + 2.0 * labels[:, None, :] * (
        np.arange(16)[None, :, None] >= 8
    )
    with h5py.File(path, "w") as f:
        f["features"], f["labels"] = features, labels
        f.attrs["front_end"] = json.dumps(FRONT_END.to_dict())
    return path


def test_split_is_by_song_and_covers_every_song():
    idx = split_songs(192)
    assert [len(idx[k]) for k in ("train", "val", "test")] == [154, 19, 19]
    assert len(np.unique(np.concatenate(list(idx.values())))) == 192
    with pytest.raises(ValueError, match="at least 3 songs"):
        split_songs(2)


def test_task_trains_in_the_engine_and_logs_chorus_share_and_grad_norm(tmp_path, monkeypatch):
    from training.tasks import chorus

    monkeypatch.setattr(chorus.ChorusTask, "crop", 48)
    data = _toy_songs(tmp_path / "toy.h5")
    cfg = TrainConfig(model="chorus-cnn", data=data, epochs=4, batch_size=4, lr=3e-3, out=tmp_path, run_name="r")
    summary = Trainer(cfg).fit()
    epochs = [r for r in read_metrics(tmp_path / "chorus-cnn" / "r" / "metrics.jsonl") if r["kind"] == "epoch"]
    assert len(epochs) == 4
    for key in ("train_loss", "train_grad_norm", "train_chorus_pct", "val_chorus_pct", "val_frame_acc"):
        assert key in epochs[-1]
    assert 0.0 <= epochs[-1]["val_chorus_pct"] <= 100.0
    report = evaluate_checkpoint(tmp_path / "chorus-cnn" / "r" / "best.pt", data)
    assert report["n_frames"] == len(split_songs(12)["test"]) * 64
    assert report["frame_acc"] > 0.7  # the toy cue is easy
    assert summary["skipped_steps"] == 0
    from training.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "chorus-cnn" / "r" / "best.pt")["front_end"] == FRONT_END.to_dict()


def test_chorus_report_puts_the_command_first_and_the_held_out_accuracy_in_the_table():
    from training.experiments.chorus_verse import chorus_markdown

    report = {
        "data": "songs.h5", "n_frames": 1034, "frame_acc": 0.9, "chorus_pct": 40.0, "true_chorus_pct": 45.0,
        "chorus_precision": 0.8, "chorus_recall": 0.85, "per_song_acc": [0.95, 0.85],
    }  # fmt: skip
    epochs = [{"epoch": 0, "val_loss": 0.5, "val_frame_acc": 0.8, "val_chorus_pct": 30.0, "train_loss": 0.6}]
    info = {"n_songs": 20, "n_train": 16, "n_val": 2, "n_params": 10, "epochs": 1, "train_seconds": 3.0}
    text = chorus_markdown(report, epochs, "zoo experiment chorus-verse", info)
    assert text.splitlines()[3] == "zoo experiment chorus-verse"
    assert "**90.0 %**" in text and "55.0 %" in text  # accuracy, and the majority-class baseline


def test_song_generation_refuses_an_empty_request(tmp_path):
    from typer.testing import CliRunner

    from zoo.cli import app

    result = CliRunner().invoke(app, ["data", "songs", "--n-songs", "0", "--out", str(tmp_path / "s.h5")])
    assert result.exit_code == 1
    assert "n_songs must be at least 1" in result.output
    assert not (tmp_path / "s.h5").exists()
