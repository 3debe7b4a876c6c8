"""`zoo train` flags that must reach the trainer: `--init-from` loads its weights, a missing file is one line."""

import re

import torch
from typer.testing import CliRunner

import zoo
from training.checkpoint import save_checkpoint
from zoo.cli import app


def test_init_from_loads_the_checkpoint_weights(tmp_path):
    torch.manual_seed(123)
    model = zoo.create_model("residual-mlp")
    ckpt = save_checkpoint(
        tmp_path / "start.pt",
        {"model_name": "residual-mlp", "model_config": {}, "model": model.state_dict(), "epoch": 0},
    )
    args = ["train", "residual-mlp", "--epochs", "1", "--max-steps", "1", "--out", str(tmp_path / "runs")]
    result = CliRunner().invoke(app, [*args, "--run-name", "warm", "--init-from", str(ckpt)])
    assert result.exit_code == 0, result.output
    loaded = re.search(r"--init-from \S+start.pt: loaded (\d+) tensors", result.output.replace("\n", ""))
    assert loaded and int(loaded.group(1)) > 0, result.output  # without the flag passed on, nothing is loaded
    config = (tmp_path / "runs" / "residual-mlp" / "warm" / "config.json").read_text()
    assert str(ckpt) in config


def test_init_from_a_missing_file_is_one_line(tmp_path):
    result = CliRunner().invoke(app, ["train", "residual-mlp", "--init-from", str(tmp_path / "nope.pt")])
    assert result.exit_code == 1
    assert "`--init-from`" in result.output and "no such checkpoint file" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "runs").exists()


def test_a_recipe_that_starts_from_another_names_the_run_to_train_first(tmp_path):
    """`--recipe large` starts from the shipped recipe's run; without it, one line says how to make it."""
    result = CliRunner().invoke(app, ["train", "vital-resnet18", "--recipe", "large", "--out", str(tmp_path)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "zoo train vital-resnet18 --recipe shipped --run-name shipped" in result.output.replace("\n", "")


def test_the_shipped_card_command_trains_the_run_a_recipe_starts_from_first():
    from training.ship import _train_command

    command = _train_command("vital-resnet18", {"recipe": "large"})
    assert command == (
        "zoo train vital-resnet18 --recipe shipped --run-name shipped && zoo train vital-resnet18 --recipe large"
    )
    assert _train_command("vital-resnet18", {"recipe": "shipped"}) == "zoo train vital-resnet18 --recipe shipped"
