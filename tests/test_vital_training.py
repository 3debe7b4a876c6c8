"""vital-resnet18's task on real Vital renders: the masked loss, training, evaluation against baselines."""

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from training.config import TrainConfig
from training.losses import VitalLoss
from training.trainer import Trainer
from zoo.audio import FrontEndConfig
from zoo.cli import app


def test_loss_ignores_parameters_of_modules_switched_off():
    # Two continuous parameters: the first gated by categorical 0 (a switch), the second ungated.
    loss_fn = VitalLoss(continuous_gate_ids=[0, -1], categorical_gate_ids=[-1, 0])
    target = torch.tensor([[0.5, 0.5]])
    logits = [torch.tensor([[0.0, 5.0]]), torch.tensor([[0.0, 0.0, 0.0]])]
    switch_off = torch.tensor([[0, 2]])  # module off: its continuous parameter and option cannot be heard
    far_on_gated = torch.tensor([[1.0, 0.5]])
    _, logs_off = loss_fn(far_on_gated, logits, target, switch_off)
    _, logs_on = loss_fn(far_on_gated, logits, target, torch.tensor([[1, 2]]))
    assert logs_off["continuous_mse"] == 0  # the gated error is masked out
    assert logs_on["continuous_mse"] == pytest.approx(0.25 / 2)  # (1.0 - 0.5)^2 averaged over 2 unmasked
    # The categorical parameter gated by the switch is masked too; the switch itself always counts.
    switch_wrong, switch_right, uniform3 = math.log1p(math.exp(5)), math.log1p(math.exp(-5)), math.log(3)
    assert logs_off["categorical_ce"] == pytest.approx((switch_wrong + 0.0) / 2, rel=1e-5)
    assert logs_on["categorical_ce"] == pytest.approx((switch_right + uniform3) / 2, rel=1e-5)
    # Ungated errors always count.
    _, logs = loss_fn(torch.tensor([[0.5, 1.0]]), logits, target, switch_off)
    assert logs["continuous_mse"] == pytest.approx(0.25)


def test_conditional_mask_can_be_switched_off():
    loss_fn = VitalLoss([0], [-1], conditional_mask=False)
    _, logs = loss_fn(torch.tensor([[1.0]]), [torch.zeros(1, 2)], torch.tensor([[0.0]]), torch.tensor([[0]]))
    assert logs["continuous_mse"] == 1.0


@pytest.fixture(scope="module")
def trained_checkpoint(tiny_vital_h5, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    cfg = TrainConfig(
        model="vital-resnet18",
        data=tiny_vital_h5,
        epochs=1,
        max_steps=2,
        batch_size=4,
        warmup_epochs=0,
        device="cpu",
        out=out,
        run_name="t",
        val_fraction=0.25,
    )
    summary = Trainer(cfg).fit()
    return out / "vital-resnet18" / "t" / "best.pt", summary


def test_vital_resnet18_trains_on_rendered_data(trained_checkpoint):
    from training.checkpoint import load_checkpoint
    from zoo.vital.spec import VitalParamSpec
    from zoo.vital.tier1 import tier1_spec

    path, summary = trained_checkpoint
    assert summary["steps"] == 2 and summary["skipped_steps"] == 0
    ckpt = load_checkpoint(path)
    assert VitalParamSpec.from_dict(ckpt["spec"]) == tier1_spec()
    assert ckpt["model_config"]["n_continuous"] == tier1_spec().n_continuous
    assert ckpt["front_end"] == FrontEndConfig().to_dict()  # the dataset's, which made the mels
    assert {"val_loss", "val_categorical_accuracy", "val_continuous_mse"} <= set(ckpt["metrics"])
    assert any(k.startswith("val_mse_osc_1") for k in ckpt["metrics"])


def test_evaluate_renders_predictions_against_every_baseline(trained_checkpoint, tiny_vital_h5, tmp_path):
    path, _ = trained_checkpoint
    result = CliRunner().invoke(
        app, ["evaluate", str(path), "--data", str(tiny_vital_h5), "--out", str(tmp_path), "--n-audio", "2"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    audio = report["audio"]
    for method in ("model", "nearest_neighbour", "mean_preset", "random_preset", "init_preset"):
        assert method in audio and method in result.output
    assert audio["n_clips"] == 2
    assert audio["model"]["mean"] is not None and audio["model"]["mean"] > 0
    assert 0.0 <= audio["init_preset"]["model_closer_share"] <= 1.0
    assert "osc_1" in report["parameters"]["group_mse"]
    assert len(report["parameters"]["categorical_accuracy"]) == 24
    assert (tmp_path / "spectrograms.png").stat().st_size > 10_000
    assert len(list((tmp_path / "wavs").glob("*.wav"))) == 4


def test_evaluate_scores_the_split_training_held_out(trained_checkpoint, tiny_vital_h5):
    from training.checkpoint import load_checkpoint
    from training.evaluate import _train_split
    from training.tasks.vital import VitalTask

    path, _ = trained_checkpoint
    train_config = load_checkpoint(path)["train_config"]
    cfg = TrainConfig(model="vital-resnet18", data=tiny_vital_h5, val_fraction=0.25, batch_size=4, epochs=1)
    trained_on, held_out = VitalTask(cfg).datasets()
    _, train_set, val_set = _train_split(train_config, tiny_vital_h5)
    assert held_out.indices.tolist() == val_set.indices.tolist() and len(val_set) > 0
    assert trained_on.indices.tolist() == train_set.indices.tolist()


def test_evaluate_needs_data_or_presets(trained_checkpoint):
    path, _ = trained_checkpoint
    result = CliRunner().invoke(app, ["evaluate", str(path)])
    assert result.exit_code == 1
    assert "give `--data PATH`" in result.output


def test_training_with_augmentations_reads_audio_and_computes_mels(tiny_vital_h5, tmp_path):
    from training.data.augment import AUGMENTATIONS, AugmentedAudioDataset

    cfg = TrainConfig(
        model="vital-resnet18", data=tiny_vital_h5, epochs=1, max_steps=2, batch_size=4, warmup_epochs=0,
        device="cpu", out=tmp_path, run_name="aug", val_fraction=0.25, augment=["all"],
    )  # fmt: skip
    trainer = Trainer(cfg)
    summary = trainer.fit()
    assert summary["steps"] == 2 and summary["skipped_steps"] == 0
    assert isinstance(trainer.train_set, AugmentedAudioDataset)
    assert "audio" in trainer.train_set[0] and "mel" in trainer.val_set[0]  # validation stays clean
    from training.checkpoint import load_checkpoint

    assert load_checkpoint(tmp_path / "vital-resnet18" / "aug" / "best.pt")["train_config"]["augment"] == list(
        AUGMENTATIONS
    )


def _tier1_preset_list(folder, n=2):
    from zoo.vital.preset import preset_from_vector
    from zoo.vital.sampler import PresetSampler

    (folder / "set").mkdir(parents=True)
    sampler = PresetSampler(seed=3, prior="simple")
    for i in range(n):
        (folder / "set" / f"p{i}.vital").write_text(json.dumps(preset_from_vector(*sampler.sample(i))))
    listing = folder / "list.txt"
    listing.write_text("".join(f"set/p{i}.vital\n" for i in range(n)))
    return listing


def test_evaluate_on_a_preset_list_scores_the_tier1_projection(trained_checkpoint, tmp_path):
    path, _ = trained_checkpoint
    listing = _tier1_preset_list(tmp_path)
    result = CliRunner().invoke(app, ["evaluate", str(path), "--presets", str(listing), "--out", str(tmp_path / "e")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    audio = report["audio"]
    assert report["n_presets"] == 2 and audio["n_clips"] == 6 and "tier1_projection" in result.output
    # Presets that are Tier-1 vectors project onto themselves: only render-to-render variation is left.
    assert audio["tier1_projection"]["mean"] < 1.0 < audio["init_preset"]["mean"]
    assert len(audio["distances"]["model"]) == 6


def test_evaluate_scores_a_bundle_folder_or_a_registered_name(untrained_artifact, tmp_path, monkeypatch):
    listing = _tier1_preset_list(tmp_path, n=1)
    args = ["--presets", str(listing), "--out", str(tmp_path / "a")]
    result = CliRunner().invoke(app, ["evaluate", str(untrained_artifact.path), *args])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "a" / "report.json").read_text())["model"] == "vital-resnet18"
    monkeypatch.chdir(tmp_path)  # nothing exported here: the name means the shipped bundle
    result = CliRunner().invoke(app, ["evaluate", "vital-resnet18", "--presets", str(listing), "--out", "n"])
    assert result.exit_code == 0, result.output
    assert "zoo/weights/vital-resnet18" in json.loads((tmp_path / "n" / "report.json").read_text())["checkpoint"]
    result = CliRunner().invoke(app, ["evaluate", "vital-resnet18", "--data", "x.h5"])
    assert result.exit_code == 1 and "needs a checkpoint" in result.output
